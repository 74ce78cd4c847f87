"""Order types, time in force and the fill rules, plus the layout of the kernel's order book.

Fill rules on a bar with prices (open, high, low, close), for an order placed at the close of an
earlier bar (never the same bar: no look-ahead):

* market: fills at the open (plus slippage).
* limit buy at L: open <= L fills at the open (the market gapped through the limit), else
  low <= L fills at L. Limit sell mirrors it (open >= L at the open, else high >= L at L).
* stop buy at S: open >= S fills at the open, else high >= S fills at S (then slippage).
  Stop sell mirrors it.
* stop-limit buy (S, L): triggered when the open or the high reaches S. Triggered at the open, it
  is a limit order for the rest of the bar (open <= L at the open, else low <= L at L).
  Triggered inside the bar, it fills at S if S <= L; otherwise it stays working as a plain limit
  order from the next bar (the path after the trigger is unknown). Sells mirror it.
* bracket exits: an entry with `take_profit`/`stop_loss` (fractions of the first fill price)
  creates a limit and a stop order that close the position, one-cancels-other, working from
  the bar after the entry fill.

Time in force: GTC works until filled or cancelled; DAY is cancelled at the first bar of a new
UTC day; IOC gets exactly one bar (the next one) and its unfilled remainder is cancelled.
A volume participation cap limits each bar's fill to `cap * bar volume` units (all orders of a
symbol share it); the remainder keeps working according to its time in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Order types.
MARKET, LIMIT, STOP, STOP_LIMIT = range(4)
ORDER_TYPES = {"market": MARKET, "limit": LIMIT, "stop": STOP, "stop_limit": STOP_LIMIT}
ORDER_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}

# Time in force.
GTC, DAY, IOC = range(3)
TIFS = {"GTC": GTC, "DAY": DAY, "IOC": IOC}

# What placed the order (decides which orders an exit or a flat position cancels).
TAG_ENTRY, TAG_EXIT, TAG_BRACKET, TAG_TARGET, TAG_USER = range(5)

# Columns of the order book (a float64 array; rows [0, n_orders) in placement order).
(
    O_SYM,
    O_SIDE,
    O_TYPE,
    O_TIF,
    O_QTY,  # remaining quantity; NaN until sized at the first fill
    O_KIND,  # sizing mode (sizing.SIZE_*)
    O_VAL,  # sizing value
    O_LIMIT,
    O_STOP,
    O_TRIG,  # stop-limit already triggered
    O_BAR,  # bar index of the decision that placed it
    O_DAY,  # UTC day number of that bar
    O_TP,  # bracket take-profit fraction (NaN = none)
    O_SL,  # bracket stop-loss fraction (NaN = none)
    O_ID,
    O_TAG,
    O_GROUP,  # one-cancels-other group (bracket children), -1 = none
    O_FILLED,
    O_PENDING,  # 1 while waiting for the pre-trade check
) = range(19)
N_ORDER_FIELDS = 19

# Columns of the fills ledger.
F_BAR, F_SYM, F_SIDE, F_QTY, F_PRICE, F_FEE, F_ORDER, F_TYPE, F_MAKER, F_TAG = range(10)
N_FILL_FIELDS = 10


@dataclass(frozen=True, slots=True)
class Order:
    """An order a Python strategy places through its context.

    `quantity` may be None with `close=True` (close the whole position at fill time).
    """

    symbol: str
    side: int  # +1 buy, -1 sell
    quantity: float | None
    order_type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "GTC"
    take_profit: float | None = None
    stop_loss: float | None = None
    close: bool = False

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError("side must be +1 (buy) or -1 (sell)")
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"unknown order type {self.order_type!r}")
        if self.tif not in TIFS:
            raise ValueError(f"unknown time in force {self.tif!r}")
        if self.quantity is None and not self.close:
            raise ValueError("quantity is required unless close=True")
        if self.quantity is not None and not (self.quantity > 0 and math.isfinite(self.quantity)):
            raise ValueError("quantity must be a positive number")
        if self.order_type in ("limit", "stop_limit") and self.limit_price is None:
            raise ValueError(f"{self.order_type} order needs limit_price")
        if self.order_type in ("stop", "stop_limit") and self.stop_price is None:
            raise ValueError(f"{self.order_type} order needs stop_price")

    @property
    def reference_price(self) -> float | None:
        return self.limit_price if self.limit_price is not None else self.stop_price

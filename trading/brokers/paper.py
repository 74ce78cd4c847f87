"""The paper broker: orders fill against the live feed's next bars with the engine's own rules.

A paper deployment must behave exactly like its backtest, so this adapter does not re-implement
fills: it keeps one account in the engine's compiled order book (`trading.engine.core`) and, for
every bar handed to `on_bar`, runs the same `fill_bar` step a backtest runs — market orders at
the next open, limit/stop rules, time in force, slippage, commission, the volume cap, no
leverage and (unless allowed) no short selling. Orders carry their quantity from placement
(a real broker needs one), so the all-cash clip of the kernel is what keeps a buy affordable.

The whole account serialises to JSON (`state()` / `from_state()`), so it is saved with the
deployment between steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trading.engine import core
from trading.engine.costs import Commission, Slippage, cost_params
from trading.engine.orders import (
    F_FEE,
    F_MAKER,
    F_ORDER,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_SYM,
    N_ORDER_FIELDS,
    O_FILLED,
    O_ID,
    O_QTY,
    ORDER_TYPES,
    TAG_USER,
)
from trading.engine.orders import TIFS as ENGINE_TIFS
from trading.engine.sizing import SIZE_QTY

from .base import Bar, BrokerAdapter, BrokerFill, BrokerOrder, OrderRejected, validate_order

NS_PER_DAY = 86_400 * 10**9


class PaperBroker(BrokerAdapter):
    """A simulated account, filling on the bars it is given. Cash is in the symbols' quote
    currency (`quote_currency` for symbols without one); fees are charged in it."""

    name = "paper"
    KEEP = 500  # finished orders and fills kept in the saved account

    def __init__(self, symbols: list[str], *, cash: float = 100_000.0,
                 commission: Commission | None = None, slippage: Slippage | None = None,
                 participation: float = 0.0, whole_units: bool = True,
                 allow_short: bool = False, quote_currency: str = "USD") -> None:
        if not symbols:
            raise ValueError("a paper account needs at least one symbol")
        self.symbols = list(symbols)
        self._index = {s: j for j, s in enumerate(self.symbols)}
        self.commission = commission or Commission()
        self.slippage = slippage or Slippage()
        self.quote_currency = quote_currency
        self._settings = {"participation": participation, "whole_units": whole_units,
                          "allow_short": allow_short}
        self._pr = core.params_vector(
            cost_params(self.commission, self.slippage), cap=participation,
            whole_units=whole_units, allow_short=allow_short, entry_tif=0, size_kind=SIZE_QTY,
            size_value=0.0, take_profit=None, stop_loss=None)
        s = len(self.symbols)
        self._book = core.Book(1, s, cash, self._pr)
        self._orders: dict[str, BrokerOrder] = {}
        self._by_engine_id: dict[int, str] = {}
        self._fills: list[BrokerFill] = []
        self._pending: dict[str, Bar] = {}
        self._last_ts: int | None = None
        self._fill_seq = 0

    # -- orders -------------------------------------------------------------------------------
    def place_order(self, client_order_id: str, symbol: str, side: str, quantity: float,
                    order_type: str = "market", limit_price: float | None = None,
                    stop_price: float | None = None, tif: str = "GTC") -> BrokerOrder:
        known = self._orders.get(client_order_id)
        if known is not None:
            return known
        validate_order(symbol, side, quantity, order_type, limit_price, stop_price, tif)
        if symbol not in self._index:
            raise OrderRejected(f"unknown symbol {symbol!r} for this paper account")
        b = self._book
        b.ensure_order_room(1)
        row = core.add_order(
            b.ob, b.st, self._index[symbol], 1.0 if side == "buy" else -1.0,
            ORDER_TYPES[order_type], ENGINE_TIFS[tif], float(quantity), SIZE_QTY,
            float(quantity), np.nan if limit_price is None else float(limit_price),
            np.nan if stop_price is None else float(stop_price), -1, np.nan, np.nan, TAG_USER,
            -1.0, 0.0)
        order = BrokerOrder(
            client_order_id=client_order_id, symbol=symbol, side=side, quantity=float(quantity),
            order_type=order_type, status="accepted",
            broker_order_id=f"paper-{int(b.ob[row, O_ID])}", limit_price=limit_price,
            stop_price=stop_price, tif=tif, timestamp=self._last_ts or 0)
        self._orders[client_order_id] = order
        self._by_engine_id[int(b.ob[row, O_ID])] = client_order_id
        return order

    def cancel_order(self, client_order_id: str) -> BrokerOrder:
        order = self._orders.get(client_order_id)
        if order is None:
            raise OrderRejected(f"unknown order {client_order_id!r}")
        if not order.is_open:
            return order
        b = self._book
        ob = b.orders_view()
        engine_id = int(order.broker_order_id.removeprefix("paper-"))
        keep = ob[:, O_ID] != engine_id
        n = int(keep.sum())
        b.ob[:n] = ob[keep]
        b.st[core.S_NORD] = n
        order.status = "cancelled"
        order.reason = "cancelled by request"
        return order

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self._orders.get(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return [o for o in self._orders.values() if o.is_open]

    def balances(self) -> dict[str, float]:
        return {self.quote_currency: self._book.cash}

    def positions(self) -> dict[str, float]:
        return {s: float(self._book.pos[j]) for s, j in self._index.items()
                if self._book.pos[j] != 0.0}

    def fills(self, since: int | None = None) -> list[BrokerFill]:
        if since is None:
            return list(self._fills)
        return [f for f in self._fills if f.timestamp >= since]

    @property
    def cash(self) -> float:
        return self._book.cash

    # -- the market ---------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """Fill working orders on a finished bar. Bars of one timestamp are collected until
        every symbol has one (or a later timestamp arrives), then filled together in
        placement order, as the backtest does."""
        if bar.symbol not in self._index:
            return
        if self._last_ts is not None and bar.timestamp <= self._last_ts:
            return  # a bar already traded on (a re-run step): never fill twice
        if self._pending and next(iter(self._pending.values())).timestamp != bar.timestamp:
            self._fill_pending()
        self._pending[bar.symbol] = bar
        if len(self._pending) == len(self.symbols):
            self._fill_pending()

    def on_bars(self, bars: list[Bar]) -> None:
        for bar in bars:
            self.on_bar(bar)
        self._fill_pending()

    def _fill_pending(self) -> None:
        if not self._pending:
            return
        bars = self._pending
        self._pending = {}
        ts = next(iter(bars.values())).timestamp
        s = len(self.symbols)
        arr = np.full((5, 1, s), np.nan)
        for sym, bar in bars.items():
            arr[:, 0, self._index[sym]] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        # a symbol without a bar this time cannot trade: park its orders for the bar
        quiet = [j for j in range(s) if math.isnan(arr[0, 0, j])]
        b = self._book
        saved = None
        if quiet:
            ob = b.orders_view()
            parked = np.isin(ob[:, 0], quiet)
            saved = ob[parked].copy()
            n = int((~parked).sum())
            b.ob[:n] = ob[~parked]
            b.st[core.S_NORD] = n
        day = np.array([float(ts // NS_PER_DAY)])
        b.ensure_fill_room(b.n_orders + 4)
        before_fills = b.n_fills
        before_ids = {int(i): float(q) for i, q in zip(b.orders_view()[:, O_ID],
                                                      b.orders_view()[:, O_FILLED], strict=True)}
        core.fill_bar(0, arr[0], arr[1], arr[2], arr[3], arr[4], day, b.ob, b.st, b.pos,
                      b.fills, b.pr, b.used)
        if saved is not None and len(saved):
            b.ensure_order_room(len(saved))
            n = b.n_orders
            b.ob[n:n + len(saved)] = saved
            b.st[core.S_NORD] = n + len(saved)
            # keep placement order (engine ids grow with placement)
            ob = b.orders_view()
            b.ob[:b.n_orders] = ob[np.argsort(ob[:, O_ID], kind="stable")]
        self._last_ts = ts
        self._record(ts, before_fills, before_ids)

    def _quote_of(self, j: int) -> str:
        symbol = self.symbols[j]
        return symbol.split("/", 1)[1] if "/" in symbol else self.quote_currency

    def _record(self, ts: int, before_fills: int, before_ids: dict[int, float]) -> None:
        b = self._book
        for k in range(before_fills, b.n_fills):
            row = b.fills[k]
            coid = self._by_engine_id.get(int(row[F_ORDER]), "")
            order = self._orders.get(coid)
            qty, px = float(row[F_QTY]), float(row[F_PRICE])
            self._fill_seq += 1
            fill = BrokerFill(
                fill_id=f"paper-fill-{self._fill_seq}", client_order_id=coid,
                symbol=self.symbols[int(row[F_SYM])],
                side="buy" if row[F_SIDE] > 0 else "sell", quantity=qty, price=px,
                fee=float(row[F_FEE]), fee_currency=self._quote_of(int(row[F_SYM])), timestamp=ts,
                broker_order_id=order.broker_order_id if order else "",
                maker=bool(row[F_MAKER]))
            self._fills.append(fill)
            if order is not None:
                done = order.filled_quantity
                order.average_price = px if not done else (
                    (order.average_price or 0.0) * done + px * qty) / (done + qty)
                order.filled_quantity = done + qty
                order.status = "partially_filled"
                order.timestamp = ts
        alive = {int(i): float(q) for i, q in zip(b.orders_view()[:, O_ID],
                                                 b.orders_view()[:, O_QTY], strict=True)}
        for engine_id in before_ids:
            if engine_id in alive:
                continue
            order = self._orders.get(self._by_engine_id.get(engine_id, ""))
            if order is None or not order.is_open:
                continue
            order.timestamp = ts
            if order.filled_quantity >= order.quantity - 1e-9 * order.quantity:
                order.status = "filled"
            else:
                # IOC/DAY expiry, or nothing left to sell / no cash left to buy
                order.status = "cancelled"
                order.reason = "expired or not fillable (time in force, cash or position)"
        b.st[core.S_NFILL] = 0  # the ledger rows are recorded above; keep the book small
        self._prune()

    def _prune(self) -> None:
        """Bound the saved account: keep the latest finished orders and fills (idempotency of
        a re-delivered step needs only the recent ones)."""
        if len(self._fills) > self.KEEP:
            del self._fills[: len(self._fills) - self.KEEP]
        if len(self._orders) > 2 * self.KEEP:
            done = [k for k, o in self._orders.items() if not o.is_open]
            for k in done[: len(self._orders) - self.KEEP]:
                del self._orders[k]
            live = set(self._orders)
            self._by_engine_id = {i: c for i, c in self._by_engine_id.items() if c in live}

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The account as JSON-ready data (pending bars are filled first)."""
        self._fill_pending()
        b = self._book
        return {
            "symbols": self.symbols,
            "settings": self._settings,
            "quote_currency": self.quote_currency,
            "commission": self.commission.describe() | {"maker_rate": self.commission.maker_rate},
            "slippage": self.slippage.describe(),
            "orders_book": b.orders_view().tolist(),
            "engine_state": b.st.tolist(),
            "positions": b.pos.tolist(),
            "orders": [o.to_dict() for o in self._orders.values()],
            "by_engine_id": {str(k): v for k, v in self._by_engine_id.items()},
            "fills": [f.to_dict() for f in self._fills],
            "fill_seq": self._fill_seq,
            "last_ts": self._last_ts,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PaperBroker:
        broker = cls(state["symbols"], cash=float(state["engine_state"][core.S_CASH]),
                     commission=Commission(**state["commission"]),
                     slippage=Slippage(**state["slippage"]),
                     quote_currency=state["quote_currency"], **state["settings"])
        b = broker._book
        rows = np.asarray(state["orders_book"], dtype=np.float64).reshape(-1, N_ORDER_FIELDS)
        b.ensure_order_room(len(rows))
        b.ob[: len(rows)] = rows
        b.st[:] = state["engine_state"]
        b.pos[:] = state["positions"]
        broker._fill_seq = int(state["fill_seq"])
        broker._orders = {o["client_order_id"]: BrokerOrder.from_dict(o)
                          for o in state["orders"]}
        broker._by_engine_id = {int(k): v for k, v in state["by_engine_id"].items()}
        broker._fills = [BrokerFill.from_dict(f) for f in state["fills"]]
        broker._last_ts = state["last_ts"]
        return broker

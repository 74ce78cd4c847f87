"""Portfolio accounting derived from the fills ledger: round-trip trades, P&L, exposure.

The kernel keeps cash and positions; everything else is recomputed from the fills, so there is
one source of truth. A round trip opens when a symbol's position leaves zero and closes when it
returns to zero (a fill that crosses zero closes one trade and opens the next, its fee split
pro rata). A trade's P&L is the sum of its fills' cash flows (fees included) plus, for a trade
still open at the end, the position marked at the last close (unrealised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .orders import F_BAR, F_FEE, F_PRICE, F_QTY, F_SIDE, F_SYM


@dataclass(slots=True)
class Trade:
    symbol: str
    side: int  # +1 long, -1 short
    entry_bar: int
    entry_price: float  # quantity-weighted average of the entry fills
    quantity: float  # total quantity entered
    exit_bar: int | None = None
    exit_price: float | None = None
    pnl: float = 0.0
    fees: float = 0.0
    entry_value: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.exit_bar is None

    @property
    def return_(self) -> float:
        return self.pnl / self.entry_value if self.entry_value else 0.0


def cash_flows(fills: np.ndarray) -> np.ndarray:
    """Cash change of each fill: sells bring price*qty, buys cost it; fees always cost."""
    return -fills[:, F_SIDE] * fills[:, F_QTY] * fills[:, F_PRICE] - fills[:, F_FEE]


@njit(cache=True)
def _round_trips(fills, n_symbols, last_close):
    """Compiled pairing of fills into round trips; one row per trade (see `round_trips`)."""
    m = fills.shape[0]
    # columns: sym, side, entry_bar, entry_value, qty, exit_bar, exit_value, exit_qty, pnl, fees
    out = np.zeros((m, 10))
    pos = np.zeros(n_symbols)
    current = np.full(n_symbols, -1, dtype=np.int64)
    k = 0
    for r in range(m):
        s = int(fills[r, F_SYM])
        bar = fills[r, F_BAR]
        side = fills[r, F_SIDE]
        px = fills[r, F_PRICE]
        remaining = fills[r, F_QTY]
        fee_left = fills[r, F_FEE]
        while remaining > 0.0:
            p = pos[s]
            if p == 0.0 or (p > 0.0) == (side > 0.0):
                i = current[s]
                if i < 0:
                    i = k
                    k += 1
                    current[s] = i
                    out[i, 0] = s
                    out[i, 1] = side
                    out[i, 2] = bar
                    out[i, 5] = -1.0
                out[i, 3] += remaining * px
                out[i, 4] += remaining
                out[i, 8] += -side * remaining * px - fee_left
                out[i, 9] += fee_left
                pos[s] = p + side * remaining
                break
            i = current[s]
            closing = min(remaining, abs(p))
            part_fee = fee_left * (closing / remaining)
            out[i, 8] += -side * closing * px - part_fee
            out[i, 9] += part_fee
            out[i, 6] += closing * px
            out[i, 7] += closing
            fee_left -= part_fee
            remaining -= closing
            pos[s] = p + side * closing
            if abs(pos[s]) <= 1e-12 * out[i, 4]:
                pos[s] = 0.0
                out[i, 5] = bar
                current[s] = -1
    for s in range(n_symbols):
        i = current[s]
        if i >= 0:
            out[i, 8] += pos[s] * last_close[s]
    return out[:k]


def round_trips(fills: np.ndarray, symbols: list[str], last_close: np.ndarray) -> list[Trade]:
    rows = _round_trips(np.ascontiguousarray(fills, dtype=np.float64), len(symbols),
                        np.ascontiguousarray(last_close, dtype=np.float64))
    trades = []
    for sym, side, entry_bar, entry_value, qty, exit_bar, exit_value, exit_qty, pnl, fees in (
            rows.tolist()):
        closed = exit_bar >= 0
        trades.append(Trade(
            symbol=symbols[int(sym)], side=int(side), entry_bar=int(entry_bar),
            entry_price=entry_value / qty, quantity=qty,
            exit_bar=int(exit_bar) if closed else None,
            exit_price=exit_value / exit_qty if closed else None,
            pnl=pnl, fees=fees, entry_value=entry_value))
    return trades


def positions_per_bar(fills: np.ndarray, n_bars: int, n_symbols: int) -> np.ndarray:
    """Signed position of each symbol at each bar's close, shape (n, s)."""
    delta = np.zeros((n_bars, n_symbols))
    if len(fills):
        np.add.at(delta, (fills[:, F_BAR].astype(np.int64), fills[:, F_SYM].astype(np.int64)),
                  fills[:, F_SIDE] * fills[:, F_QTY])
    return np.cumsum(delta, axis=0)


def traded_notional(fills: np.ndarray, n_bars: int) -> np.ndarray:
    if not len(fills):
        return np.zeros(n_bars)
    return np.bincount(fills[:, F_BAR].astype(np.int64),
                       weights=fills[:, F_QTY] * fills[:, F_PRICE], minlength=n_bars)

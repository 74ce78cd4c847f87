"""Run events for progress bars, live charts and logs, delivered to an `on_event(dict)` callback.

Events are small JSON-ready dicts with a `type`:
`progress` (bar, n_bars, fraction; at most every 1 % of the bars), `equity` (timestamp, equity;
with each progress event), `fill` (as fills happen; on the compiled path they are delivered at
the next progress point, in order), `rejection` and `halt` (pre-trade check outcomes) and `done`.
The emitter is cheap when nobody listens: with no callback every method returns at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .orders import F_BAR, F_FEE, F_PRICE, F_QTY, F_SIDE, F_SYM, F_TYPE, ORDER_TYPE_NAMES

EventCallback = Callable[[dict[str, Any]], None]


def iso(ns: int) -> str:
    s = np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s" if ns % 10**9 == 0 else "ns")
    return s + "Z"


def fill_record(row: np.ndarray, symbols: list[str], timestamps: np.ndarray) -> dict[str, Any]:
    return {
        "timestamp": iso(int(timestamps[int(row[F_BAR])])),
        "symbol": symbols[int(row[F_SYM])],
        "side": "buy" if row[F_SIDE] > 0 else "sell",
        "quantity": float(row[F_QTY]),
        "price": float(row[F_PRICE]),
        "commission": float(row[F_FEE]),
        "order_type": ORDER_TYPE_NAMES[int(row[F_TYPE])],
    }


class Emitter:
    def __init__(self, callback: EventCallback | None, n_bars: int, symbols: list[str],
                 timestamps: np.ndarray) -> None:
        self.callback = callback
        self.n_bars = n_bars
        self.symbols = symbols
        self.timestamps = timestamps
        self.step = max(1, n_bars // 100)
        self.fills_sent = 0
        self.next_progress = 0

    @property
    def active(self) -> bool:
        return self.callback is not None

    def emit(self, event: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(event)

    def fills(self, fills: np.ndarray) -> None:
        if self.callback is None:
            return
        for row in fills[self.fills_sent:]:
            self.callback({"type": "fill", **fill_record(row, self.symbols, self.timestamps)})
        self.fills_sent = len(fills)

    def progress(self, bars_done: int, equity: float, *, force: bool = False) -> None:
        """Report that `bars_done` bars are processed (throttled unless forced)."""
        if self.callback is None or (bars_done < self.next_progress and not force):
            return
        self.next_progress = bars_done + self.step
        t = bars_done - 1
        self.callback({"type": "progress", "bar": bars_done, "n_bars": self.n_bars,
                       "fraction": bars_done / self.n_bars if self.n_bars else 1.0})
        if t >= 0:
            self.callback({"type": "equity", "timestamp": iso(int(self.timestamps[t])),
                           "equity": float(equity)})

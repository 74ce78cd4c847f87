"""Event-driven Python strategies: `on_bar(ctx)` sees the bars up to now and places any order.

This is the path for local custom strategies and for logic that cannot be vectorised (market
making, adaptive quoting). It runs one Python call per bar, so it is much slower than a
`VectorStrategy` (tens of thousands of bars per second rather than millions), but it shares the
compiled fill rules, costs and accounting with the fast path: the same orders fill the same way.

Orders placed in `on_bar` at bar t are decisions at t's close and fill from bar t+1 on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..orders import Order
from ..types import BarSet, Param, VectorStrategy, validate_params

if TYPE_CHECKING:
    from ..core import Book

__all__ = ["Context", "Strategy", "VectorStrategy"]


class Context:
    """What a strategy may see and do at the close of bar `t` (nothing after it)."""

    def __init__(self, bars: BarSet, book: Book) -> None:
        self._bars = bars
        self._book = book
        self._index = {s: j for j, s in enumerate(bars.symbols)}
        self.t = 0
        self.orders: list[Order] = []
        self.cancels: list[str] = []
        self.state: dict[str, Any] = {}

    # --- what the strategy sees --------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._bars.symbols)

    @property
    def timestamp(self) -> int:
        return int(self._bars.timestamps[self.t])

    @property
    def cash(self) -> float:
        return self._book.cash

    @property
    def equity(self) -> float:
        return float(self._book.equity[self.t])

    @property
    def tick_size(self) -> float | None:
        return self._bars.tick_size

    def position(self, symbol: str) -> float:
        return float(self._book.pos[self._index[symbol]])

    def bar(self, symbol: str) -> dict[str, float]:
        j, t = self._index[symbol], self.t
        b = self._bars
        return {"open": float(b.open[t, j]), "high": float(b.high[t, j]),
                "low": float(b.low[t, j]), "close": float(b.close[t, j]),
                "volume": float(b.volume[t, j])}

    def history(self, field: str, symbol: str, n: int | None = None) -> np.ndarray:
        """The last `n` values (all when None) of a field up to and including bar t (a view)."""
        if field not in ("open", "high", "low", "close", "volume"):
            raise ValueError(f"unknown field {field!r}")
        col = getattr(self._bars, field)[: self.t + 1, self._index[symbol]]
        return col if n is None else col[-n:]

    def working_orders(self, symbol: str) -> int:
        from ..orders import O_SYM

        return int((self._book.orders_view()[:, O_SYM] == self._index[symbol]).sum())

    # --- what the strategy does --------------------------------------------------------------
    def order(self, order: Order) -> None:
        if order.symbol not in self._index:
            raise KeyError(f"unknown symbol {order.symbol!r}")
        self.orders.append(order)

    def buy(self, symbol: str, quantity: float, **kw: Any) -> None:
        self.order(Order(symbol, 1, quantity, **kw))

    def sell(self, symbol: str, quantity: float, **kw: Any) -> None:
        self.order(Order(symbol, -1, quantity, **kw))

    def close_position(self, symbol: str) -> None:
        """Market order for the whole position at the next open (sized at the fill)."""
        p = self.position(symbol)
        if p != 0:
            self.order(Order(symbol, -1 if p > 0 else 1, None, close=True))

    def cancel_all(self, symbol: str) -> None:
        """Cancel the symbol's working orders (takes effect before this bar's new orders)."""
        self.cancels.append(symbol)


class Strategy:
    """Base class of event-driven strategies; override `on_bar` (and optionally `on_start`)."""

    name: ClassVar[str] = "custom"
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: Any) -> None:
        self.values = validate_params(self.params, values, strategy=self.name)

    def on_start(self, ctx: Context) -> None:
        """Called once before the first bar."""

    def on_bar(self, ctx: Context) -> None:
        raise NotImplementedError

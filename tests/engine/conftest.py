"""Shared helpers of the engine tests: tiny hand-written bar sets and a scripted strategy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from trading.engine.orders import Order
from trading.engine.strategies.base import Context, Strategy
from trading.engine.types import BarSet

MINUTE_NS = 60 * 10**9
DAY_NS = 86_400 * 10**9
T0 = int(np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64))


def make_bars(rows: Sequence[tuple[float, float, float, float, float]], *,
              step_ns: int = MINUTE_NS, symbols: Sequence[str] = ("AAA",),
              tick_size: float | None = None) -> BarSet:
    """Bars from (open, high, low, close, volume) rows; one symbol, or the same rows for
    every symbol when several are named."""
    a = np.asarray(rows, dtype=np.float64)
    n, s = len(a), len(symbols)
    ts = T0 + np.arange(n, dtype=np.int64) * step_ns
    cols = [np.repeat(a[:, k:k + 1], s, axis=1) for k in range(5)]
    return BarSet(ts, list(symbols), *cols, tick_size=tick_size)


def flat_bars(n: int, price: float = 100.0, volume: float = 1_000.0) -> BarSet:
    return make_bars([(price, price, price, price, volume)] * n)


class Scripted(Strategy):
    """Places the given orders at the close of the given bars (bar index -> orders)."""

    name = "scripted"

    def __init__(self, script: dict[int, list[Order]] | None = None) -> None:
        super().__init__()
        self.script = script or {}
        self.seen_positions: list[float] = []

    def on_bar(self, ctx: Context) -> None:
        self.seen_positions.append(ctx.position(ctx.symbols[0]))
        for order in self.script.get(ctx.t, []):
            ctx.order(order)


@pytest.fixture
def scripted() -> type[Scripted]:
    return Scripted

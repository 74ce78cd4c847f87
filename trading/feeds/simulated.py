"""Feeds that need no exchange: a real-time synthetic random walk, and replay of stored bars.

`SyntheticFeed` publishes one bar per symbol at each interval boundary of its clock, from a
seeded geometric random walk (numpy's PCG64), shaped like the engine's synthetic bars (open =
previous close, wicks beyond open and close, whole-number volumes) — the same seed and start
give the same bars. `ReplayFeed` plays a `BarSet` back at `speed` times real time (0 = as fast
as the consumer takes them); both sleep on the injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from trading.engine.types import BarSet

from .base import NS, Bar, Feed, align


class SyntheticFeed(Feed):
    def __init__(self, symbols: Iterable[str], interval_seconds: int = 60, *, seed: int = 0,
                 s0: float = 100.0, volatility: float = 0.001, decimals: int = 4,
                 mean_volume: float = 1000.0, wick: float = 0.0005,
                 max_bars: int | None = None, **kw: Any) -> None:
        super().__init__(symbols, interval_seconds, **kw)
        self.rng = np.random.default_rng(seed)
        self.volatility, self.decimals = volatility, decimals
        self.mean_volume, self.wick = mean_volume, wick
        self.max_bars = max_bars
        self._close = np.full(len(self.symbols), float(s0))

    def _next(self) -> np.ndarray:
        s = len(self.symbols)
        r = -0.5 * self.volatility**2 + self.volatility * self.rng.standard_normal(s)
        o = self._close
        c = np.maximum(np.round(o * np.exp(r), self.decimals), 10.0 ** -self.decimals)
        up = np.abs(self.rng.standard_normal(s)) * self.wick
        down = np.abs(self.rng.standard_normal(s)) * self.wick
        h = np.maximum(np.round(np.maximum(o, c) * (1 + up), self.decimals), np.maximum(o, c))
        lo = np.minimum(np.round(np.minimum(o, c) * (1 - down), self.decimals),
                        np.minimum(o, c))
        v = np.floor(self.rng.lognormal(np.log(self.mean_volume), 0.5, s))
        self._close = c
        return np.stack([o, h, lo, c, v])

    def produce(self) -> Iterator[Bar]:
        now = self.clock.now_ns()
        start = align(now, self.interval_ns)
        if start != now:  # the interval under way began before us: start at the next one
            start += self.interval_ns
        k = 0
        while self.max_bars is None or k < self.max_bars:
            if self.stopped:
                return
            ts = start + k * self.interval_ns
            wait = (ts + self.interval_ns - self.clock.now_ns()) / NS
            self.clock.sleep(wait)  # the bar is final once its interval has passed
            values = self._next()
            for j, sym in enumerate(self.symbols):
                yield Bar(sym, ts, *(float(x) for x in values[:, j]))
            k += 1


class ReplayFeed(Feed):
    def __init__(self, bars: BarSet, *, speed: float = 0.0, interval_seconds: int | None = None,
                 **kw: Any) -> None:
        if bars.n_bars == 0:
            raise ValueError("nothing to replay")
        if interval_seconds is None:
            steps = np.diff(bars.timestamps)
            interval_seconds = int(np.min(steps) // NS) if len(steps) else 60
        super().__init__(bars.symbols, interval_seconds, **kw)
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.bars, self.speed = bars, speed

    def produce(self) -> Iterator[Bar]:
        b = self.bars
        prev: int | None = None
        for t in range(b.n_bars):
            ts = int(b.timestamps[t])
            if self.speed > 0 and prev is not None:
                self.clock.sleep((ts - prev) / NS / self.speed)
            prev = ts
            for j, sym in enumerate(b.symbols):
                if np.isnan(b.close[t, j]):
                    continue
                yield Bar(sym, ts, float(b.open[t, j]), float(b.high[t, j]), float(b.low[t, j]),
                          float(b.close[t, j]), float(b.volume[t, j]))

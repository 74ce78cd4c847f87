"""The common shape of every market-data feed: normalised bars through a bounded buffer.

A feed produces finished bars — symbol in the platform's `BASE/QUOTE` form, timestamp the
bar's *open* time in int64 nanoseconds UTC, floored to the bar interval, so the bar stamped T
covers [T, T + interval) and is published once T + interval has passed. `Feed.publish` is the
single door every implementation goes through:

* duplicates (a timestamp not newer than the symbol's last one, as polling re-reads) are
  dropped and counted in `duplicates`;
* gaps (missing intervals between two bars of a symbol) are recorded in `gaps`, passed to
  `on_gap`, and counted; the bar after the gap is still delivered;
* the bar goes into a bounded `BarBuffer`. Its overflow policy decides what a slow consumer
  costs: "block" (default) makes the producer wait for room — with `block_timeout` set, a bar
  that still finds no room after that long is dropped; "drop_oldest" discards the oldest
  buffered bar (freshest data wins, right for live decisions); "drop_newest" refuses the new
  bar. Every discarded bar is counted in `BarBuffer.dropped`.

Consumers iterate the feed (or call `get`). A `Clock` is injected so that tests of real-time
feeds run instantly.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from trading.engine.types import BarSet

from .symbols import normalise_symbol

NS = 1_000_000_000
OVERFLOW_POLICIES = ("block", "drop_oldest", "drop_newest")


@dataclass(frozen=True, slots=True)
class Bar:
    """One finished OHLCV bar of one symbol."""

    symbol: str
    timestamp: int  # ns UTC, the bar's open time
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Bars missing between two delivered bars of `symbol`: `first` .. `last` inclusive."""

    symbol: str
    first: int
    last: int
    missing: int


def to_ns(value: int | float | datetime, *, unit: str = "ns") -> int:
    """A timestamp in ns UTC from ns/ms/s numbers or an aware (or UTC-naive) datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return int(np.datetime64(value, "ns").astype(np.int64))
        return int(round(value.timestamp() * 1_000_000)) * 1000
    factor = {"ns": 1, "us": 1000, "ms": 1_000_000, "s": NS}[unit]
    return int(value) * factor


def align(ts: int, interval_ns: int) -> int:
    return ts - ts % interval_ns


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock for tests: `sleep` moves time forward at once."""

    def __init__(self, start_ns: int) -> None:
        self.now = int(start_ns)
        self.slept = 0.0

    def now_ns(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += int(round(seconds * NS))
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


class BufferClosed(Exception):
    """The feed has finished and everything buffered has been read."""


class BarBuffer:
    """A bounded, thread-safe FIFO of bars with an overflow policy (see the module doc)."""

    def __init__(self, maxsize: int = 1024, overflow: str = "block",
                 block_timeout: float | None = None) -> None:
        if maxsize < 1:
            raise ValueError("buffer size must be >= 1")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self.maxsize, self.overflow, self.block_timeout = maxsize, overflow, block_timeout
        self._items: deque[Bar] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.high_water = 0
        self.waits = 0  # times a producer had to wait for room

    def __len__(self) -> int:
        return len(self._items)

    def put(self, bar: Bar) -> bool:
        """Add a bar; False when this bar was discarded (drop_oldest discards an older one
        instead, which is counted the same way)."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                if self.overflow == "drop_newest":
                    self.dropped += 1
                    return False
                if self.overflow == "drop_oldest":
                    self._items.popleft()
                    self.dropped += 1
                else:
                    self.waits += 1
                    ok = self._cond.wait_for(
                        lambda: len(self._items) < self.maxsize or self._closed,
                        timeout=self.block_timeout)
                    if not ok or self._closed:
                        self.dropped += 1
                        return False
            self._items.append(bar)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> Bar | None:
        """The oldest bar; None after `timeout` seconds without one; `BufferClosed` once the
        producer has finished and the buffer is empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout=timeout)
            if self._items:
                bar = self._items.popleft()
                self._cond.notify_all()
                return bar
            if self._closed:
                raise BufferClosed
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Feed(ABC):
    """Base of every feed: implement `produce()` (yield bars as they become final)."""

    def __init__(self, symbols: Iterable[str], interval_seconds: int = 60, *,
                 buffer_size: int = 1024, overflow: str = "block",
                 block_timeout: float | None = None, clock: Clock | None = None,
                 on_gap: Callable[[Gap], None] | None = None) -> None:
        self.symbols = [normalise_symbol(s) for s in symbols]
        if interval_seconds <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.interval_seconds = interval_seconds
        self.interval_ns = int(interval_seconds) * NS
        self.buffer = BarBuffer(buffer_size, overflow, block_timeout)
        self.clock: Clock = clock or SystemClock()
        self.on_gap = on_gap
        self.gaps: list[Gap] = []
        self.duplicates = 0
        self.published = 0
        self._last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @abstractmethod
    def produce(self) -> Iterator[Bar]:
        """Yield finished bars (any symbol spelling, any timestamp inside the bar)."""

    # -- the producer side --------------------------------------------------------------------
    def publish(self, bar: Bar) -> Bar | None:
        """Normalise, deduplicate, detect gaps and buffer one bar; the buffered bar, or None
        when it was a duplicate or the buffer discarded it."""
        symbol = normalise_symbol(bar.symbol)
        ts = align(int(bar.timestamp), self.interval_ns)
        last = self._last.get(symbol)
        if last is not None and ts <= last:
            self.duplicates += 1
            return None
        if last is not None and ts > last + self.interval_ns:
            missing = (ts - last) // self.interval_ns - 1
            gap = Gap(symbol, last + self.interval_ns, ts - self.interval_ns, int(missing))
            self.gaps.append(gap)
            if self.on_gap is not None:
                self.on_gap(gap)
        self._last[symbol] = ts
        if symbol != bar.symbol or ts != bar.timestamp:
            bar = Bar(symbol, ts, float(bar.open), float(bar.high), float(bar.low),
                      float(bar.close), float(bar.volume))
        self.published += 1
        return bar if self.buffer.put(bar) else None

    def run(self) -> None:
        """Produce until exhausted or stopped, then close the buffer (blocking call)."""
        try:
            for bar in self.produce():
                if self._stop.is_set():
                    break
                self.publish(bar)
        except BaseException as exc:  # handed to the consumer, never lost in a thread
            self.error = exc
            raise
        finally:
            self.buffer.close()

    def start(self) -> Feed:
        self._thread = threading.Thread(target=self._run_quietly, name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        return self

    def _run_quietly(self) -> None:
        try:
            self.run()
        except BaseException:  # noqa: S110 - kept in self.error and re-raised to the consumer
            pass

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the consumer side --------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Bar | None:
        try:
            return self.buffer.get(timeout)
        except BufferClosed:
            if self.error is not None:
                raise self.error from None
            raise

    def __iter__(self) -> Iterator[Bar]:
        while True:
            try:
                bar = self.get()
            except BufferClosed:
                return
            if bar is not None:
                yield bar

    @property
    def dropped(self) -> int:
        return self.buffer.dropped


def to_barset(bars: Iterable[Bar], symbols: list[str], *, tick_size: float | None = None
              ) -> BarSet:
    """Bars of several symbols as a `BarSet` of the timestamps where every symbol has a bar
    (what `live_engine.advance` takes); incomplete timestamps are left out."""
    rows: dict[int, dict[str, Bar]] = {}
    for bar in bars:
        rows.setdefault(bar.timestamp, {})[bar.symbol] = bar
    full = sorted(ts for ts, r in rows.items() if all(s in r for s in symbols))
    n, s = len(full), len(symbols)
    cols = np.empty((5, n, s))
    for i, ts in enumerate(full):
        for j, sym in enumerate(symbols):
            b = rows[ts][sym]
            cols[:, i, j] = (b.open, b.high, b.low, b.close, b.volume)
    return BarSet(np.asarray(full, dtype=np.int64), list(symbols), cols[0], cols[1], cols[2],
                  cols[3], cols[4], tick_size=tick_size)

"""Bars polled from a ccxt exchange (`fetch_ohlcv` with `since`).

Each poll asks for candles from the last delivered bar's open time on, keeps only candles that
have closed by the exchange's clock (the latest one is still forming), and publishes them
through `Feed.publish`, which drops the candle already delivered (the overlap is deliberate: it
catches a late correction of nothing and costs one candle) and records gaps when the exchange
skipped intervals (an outage or a halted market).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import ccxt

from trading.brokers.ccxt_broker import _mapped

from .base import Bar, Feed

TIMEFRAMES = {60: "1m", 180: "3m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h",
              7200: "2h", 14400: "4h", 21600: "6h", 43200: "12h", 86400: "1d"}


class CcxtPollingFeed(Feed):
    def __init__(self, exchange: ccxt.Exchange, symbols: Iterable[str],
                 interval_seconds: int = 60, *, since: int | None = None,
                 poll_seconds: float | None = None, limit: int = 500,
                 max_polls: int | None = None, **kw: Any) -> None:
        super().__init__(symbols, interval_seconds, **kw)
        if interval_seconds not in TIMEFRAMES:
            raise ValueError(f"no ccxt timeframe for {interval_seconds} s bars "
                             f"(supported: {sorted(TIMEFRAMES)})")
        self.exchange = exchange
        self.timeframe = TIMEFRAMES[interval_seconds]
        self.since = since  # ns; where the first poll starts
        self.poll_seconds = poll_seconds if poll_seconds is not None else interval_seconds / 4
        self.limit, self.max_polls = limit, max_polls
        self.polls = 0

    def poll_once(self) -> list[Bar]:
        """One round of requests; returns the finished candles read (before dedup)."""
        now = self.clock.now_ns()
        out: list[Bar] = []
        for symbol in self.symbols:
            last = self._last.get(symbol)
            start = last if last is not None else self.since
            rows = _mapped(self.exchange.fetch_ohlcv, symbol, self.timeframe,
                           None if start is None else start // 1_000_000, self.limit)
            for row in rows:
                ts = int(row[0]) * 1_000_000
                if ts + self.interval_ns > now:
                    continue  # still forming
                out.append(Bar(symbol, ts, float(row[1]), float(row[2]), float(row[3]),
                               float(row[4]), float(row[5] or 0.0)))
        self.polls += 1
        return out

    def produce(self) -> Iterator[Bar]:
        while not self.stopped and (self.max_polls is None or self.polls < self.max_polls):
            yield from self.poll_once()
            if self.max_polls is None or self.polls < self.max_polls:
                self.clock.sleep(self.poll_seconds)

    def fetch_new(self) -> list[Bar]:
        """Poll once and publish synchronously; the bars delivered (new ones, in order)."""
        out = []
        for bar in sorted(self.poll_once(), key=lambda b: (b.timestamp, b.symbol)):
            delivered = self.publish(bar)
            if delivered is not None:
                out.append(delivered)
        return out

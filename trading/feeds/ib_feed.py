"""Bars from Interactive Brokers through ib_async: history, then 5-second real-time bars.

`load_history()` asks `reqHistoricalData` for the recent bars of every contract (bars still
forming by the clock are left out) and `subscribe()` asks `reqRealTimeBars` for IB's 5-second
bars, which this feed aggregates into bars of its own interval (open of the first, highest
high, lowest low, close of the last, summed volume). An interval is published when its last
5-second bar arrives, or when a bar of a later interval does; an interval without a single
5-second bar shows up as a gap. `run()` does both and then lets ib_async's event loop deliver
updates until `stop()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from ib_async import Contract

from trading.brokers.ib import contract_symbol, ns_of

from .base import NS, Bar, Feed, align

BAR_SIZES = {5: "5 secs", 10: "10 secs", 15: "15 secs", 30: "30 secs", 60: "1 min",
             120: "2 mins", 180: "3 mins", 300: "5 mins", 900: "15 mins", 1800: "30 mins",
             3600: "1 hour", 86400: "1 day"}
REALTIME_SECONDS = 5


class IbFeed(Feed):
    def __init__(self, ib: Any, contracts: list[Contract] | Mapping[str, Contract],
                 interval_seconds: int = 60, *, history_duration: str = "1 D",
                 what_to_show: str = "TRADES", use_rth: bool = False, **kw: Any) -> None:
        if interval_seconds not in BAR_SIZES or interval_seconds % REALTIME_SECONDS:
            raise ValueError(f"no IB bar size for {interval_seconds} s bars")
        if isinstance(contracts, Mapping):
            self.contracts = dict(contracts)
        else:
            self.contracts = {contract_symbol(c): c for c in contracts}
        super().__init__(list(self.contracts), interval_seconds, **kw)
        self.ib = ib
        self.history_duration, self.what_to_show, self.use_rth = (
            history_duration, what_to_show, use_rth)
        self._partial: dict[str, list[float]] = {}  # symbol -> [bucket, o, h, l, c, v]
        self._subscriptions: list[Any] = []

    def load_history(self) -> list[Bar]:
        now = self.clock.now_ns()
        delivered = []
        for symbol, contract in self.contracts.items():
            bars = self.ib.reqHistoricalData(
                contract, endDateTime="", durationStr=self.history_duration,
                barSizeSetting=BAR_SIZES[self.interval_seconds], whatToShow=self.what_to_show,
                useRTH=self.use_rth, formatDate=2)
            for b in bars:
                day = b.date if isinstance(b.date, datetime) else datetime.combine(
                    b.date, dtime(), UTC)  # daily bars carry a date
                ts = ns_of(day)
                if ts + self.interval_ns > now:
                    continue  # still forming
                bar = self.publish(Bar(symbol, ts, b.open, b.high, b.low, b.close,
                                       float(b.volume)))
                if bar is not None:
                    delivered.append(bar)
        return delivered

    def subscribe(self) -> None:
        for symbol, contract in self.contracts.items():
            bars = self.ib.reqRealTimeBars(contract, REALTIME_SECONDS, self.what_to_show,
                                           self.use_rth)
            bars.updateEvent += self._handler(symbol)
            self._subscriptions.append(bars)

    def _handler(self, symbol: str):
        def on_update(bars: Any, has_new_bar: bool) -> None:
            if has_new_bar and bars:
                self.on_realtime_bar(symbol, bars[-1])
        return on_update

    def on_realtime_bar(self, symbol: str, rt: Any) -> None:
        """Fold one 5-second `RealTimeBar` into the symbol's interval bar."""
        ts = ns_of(rt.time)
        bucket = align(ts, self.interval_ns)
        cur = self._partial.get(symbol)
        if cur is not None and bucket != cur[0]:
            self._flush(symbol)
            cur = None
        if cur is None:
            self._partial[symbol] = [bucket, rt.open_, rt.high, rt.low, rt.close,
                                     float(rt.volume)]
        else:
            cur[2] = max(cur[2], rt.high)
            cur[3] = min(cur[3], rt.low)
            cur[4] = rt.close
            cur[5] += float(rt.volume)
        if ts + REALTIME_SECONDS * NS >= bucket + self.interval_ns:
            self._flush(symbol)  # the interval's last 5 seconds are in

    def _flush(self, symbol: str) -> None:
        cur = self._partial.pop(symbol, None)
        if cur is not None:
            self.publish(Bar(symbol, int(cur[0]), *cur[1:]))

    def cancel(self) -> None:
        for bars in self._subscriptions:
            self.ib.cancelRealTimeBars(bars)
        self._subscriptions.clear()

    def produce(self) -> Iterator[Bar]:
        self.load_history()
        self.subscribe()
        try:
            while not self.stopped:
                self.ib.sleep(0.2)  # ib_async's loop runs the update handlers
        finally:
            self.cancel()
        yield from ()  # bars reach the buffer from the update handlers, not from here

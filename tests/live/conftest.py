"""Fixtures of the live-trading tests: local fake venues started per test, tiny bar sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from tests.live.fakes.binance import API_KEY, SECRET, FakeBinance
from trading.brokers.ccxt_broker import CcxtBroker, binance_exchange
from trading.engine.types import BarSet

MINUTE_NS = 60 * 10**9
T0 = int(np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64))


def make_bars(rows: Sequence[tuple[float, float, float, float, float]], *,
              symbols: Sequence[str] = ("BTC/USDT",), start: int = T0,
              step_ns: int = MINUTE_NS) -> BarSet:
    a = np.asarray(rows, dtype=np.float64)
    n, s = len(a), len(symbols)
    ts = start + np.arange(n, dtype=np.int64) * step_ns
    cols = [np.repeat(a[:, k:k + 1], s, axis=1) for k in range(5)]
    return BarSet(ts, list(symbols), *cols)


def one_bar(bars: BarSet, t: int) -> BarSet:
    return BarSet(bars.timestamps[t:t + 1], list(bars.symbols), bars.open[t:t + 1],
                  bars.high[t:t + 1], bars.low[t:t + 1], bars.close[t:t + 1],
                  bars.volume[t:t + 1], tick_size=bars.tick_size)


@pytest.fixture
def fake_binance() -> Iterator[FakeBinance]:
    fake = FakeBinance().start()
    yield fake
    fake.stop()


@pytest.fixture
def binance_broker(fake_binance: FakeBinance) -> CcxtBroker:
    return CcxtBroker(binance_exchange(API_KEY, SECRET, base_url=fake_binance.url),
                      ["BTC/USDT", "ETH/USDT"])

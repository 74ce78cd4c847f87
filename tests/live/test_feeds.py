"""Feeds: symbol and timestamp normalisation, the bounded buffer, gaps, and each source."""

from __future__ import annotations

import time

import pytest

from tests.live.conftest import MINUTE_NS, T0, make_bars
from tests.live.fakes.binance import API_KEY, SECRET
from trading.brokers.ccxt_broker import binance_exchange
from trading.feeds.base import Bar, BarBuffer, Feed, ManualClock, to_barset
from trading.feeds.ccxt_feed import CcxtPollingFeed
from trading.feeds.simulated import ReplayFeed, SyntheticFeed
from trading.feeds.symbols import SymbolError, exchange_symbol, normalise_symbol

T0_MS = T0 // 1_000_000


class ListFeed(Feed):
    def __init__(self, bars, **kw):
        super().__init__(["BTC/USDT"], 60, **kw)
        self.bars = bars

    def produce(self):
        yield from self.bars


def raw(minute: int, symbol: str = "btcusdt", second: int = 0, close: float = 100.0) -> Bar:
    return Bar(symbol, T0 + minute * MINUTE_NS + second * 10**9, close, close, close, close, 1.0)


@pytest.mark.parametrize("spelling", ["BTCUSDT", "btc-usdt", "BTC_USDT", "btc/usdt", " BTC/USDT "])
def test_symbols_are_normalised_to_base_slash_quote(spelling):
    assert normalise_symbol(spelling) == "BTC/USDT"


def test_concatenated_symbols_split_on_the_longest_quote():
    assert normalise_symbol("ETHBTC") == "ETH/BTC"
    assert normalise_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert exchange_symbol("eth/usdt") == "ETHUSDT"
    with pytest.raises(SymbolError):
        normalise_symbol("XYZ")


def test_published_bars_are_normalised_and_aligned_to_the_interval():
    feed = ListFeed([raw(0, second=59), raw(1, symbol="BTC-USDT", second=1)])
    feed.run()
    bars = list(feed)
    assert [(b.symbol, b.timestamp) for b in bars] == [("BTC/USDT", T0),
                                                       ("BTC/USDT", T0 + MINUTE_NS)]


def test_duplicates_are_dropped_and_counted():
    feed = ListFeed([raw(0), raw(1), raw(1), raw(0), raw(2)])
    feed.run()
    assert [b.timestamp for b in feed] == [T0, T0 + MINUTE_NS, T0 + 2 * MINUTE_NS]
    assert feed.duplicates == 2


def test_gaps_are_reported_with_the_missing_intervals():
    seen = []
    feed = ListFeed([raw(0), raw(1), raw(5), raw(6), raw(8)], on_gap=seen.append)
    feed.run()
    assert [(g.first, g.last, g.missing) for g in feed.gaps] == [
        (T0 + 2 * MINUTE_NS, T0 + 4 * MINUTE_NS, 3), (T0 + 7 * MINUTE_NS, T0 + 7 * MINUTE_NS, 1)]
    assert seen == feed.gaps
    assert len(list(feed)) == 5  # the bars after a gap are still delivered


def test_drop_oldest_keeps_the_freshest_bars_and_counts_drops():
    feed = ListFeed([raw(i) for i in range(10)], buffer_size=3, overflow="drop_oldest")
    feed.run()  # nobody reads while it produces
    assert [b.timestamp for b in feed] == [T0 + i * MINUTE_NS for i in (7, 8, 9)]
    assert feed.dropped == 7


def test_drop_newest_keeps_the_first_bars_and_counts_drops():
    feed = ListFeed([raw(i) for i in range(10)], buffer_size=4, overflow="drop_newest")
    feed.run()
    assert [b.timestamp for b in feed] == [T0 + i * MINUTE_NS for i in range(4)]
    assert feed.dropped == 6


def test_block_policy_makes_the_producer_wait_for_a_slow_consumer():
    feed = ListFeed([raw(i) for i in range(20)], buffer_size=2, overflow="block").start()
    got = []
    for bar in feed:
        got.append(bar.timestamp)
        time.sleep(0.002)  # a slow consumer
    assert got == [T0 + i * MINUTE_NS for i in range(20)]
    assert feed.dropped == 0
    assert feed.buffer.high_water == 2 and feed.buffer.waits > 0


def test_block_with_timeout_drops_what_finds_no_room():
    buffer = BarBuffer(1, "block", block_timeout=0.01)
    assert buffer.put(raw(0)) is True
    assert buffer.put(raw(1)) is False  # nobody reads: gives up after 10 ms
    assert buffer.dropped == 1 and len(buffer) == 1


def test_a_waiting_producer_is_released_by_stop():
    feed = ListFeed([raw(i) for i in range(5)], buffer_size=1, overflow="block").start()
    time.sleep(0.05)
    feed.stop()
    assert not feed._thread.is_alive()


def test_synthetic_feed_is_seeded_and_runs_on_the_injected_clock():
    def bars(seed):
        clock = ManualClock(T0 + 30 * 10**9)  # 30 s into a minute
        feed = SyntheticFeed(["BTCUSDT", "eth-usdt"], 60, seed=seed, max_bars=3, clock=clock)
        feed.run()
        return list(feed), clock

    first, clock = bars(4)
    again, _ = bars(4)
    other, _ = bars(5)
    assert first == again and first != other
    # the first whole minute starts at T0 + 60 s; three bars end at T0 + 240 s
    assert [b.timestamp for b in first[::2]] == [T0 + k * MINUTE_NS for k in (1, 2, 3)]
    assert clock.now_ns() == T0 + 4 * MINUTE_NS
    assert {b.symbol for b in first} == {"BTC/USDT", "ETH/USDT"}
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in first)
    assert first[2].open == first[0].close  # the walk continues from the previous close


def test_replay_feed_plays_a_barset_at_the_chosen_speed():
    stored = make_bars([(1, 2, 0.5, 1.5, 10), (1.5, 2, 1, 1.8, 11), (1.8, 1.9, 1.7, 1.7, 12)])
    clock = ManualClock(0)
    feed = ReplayFeed(stored, speed=60.0, clock=clock)
    feed.run()
    assert [b.close for b in feed] == [1.5, 1.8, 1.7]
    assert clock.slept == pytest.approx(2.0)  # two 60 s steps at 60x speed

    fast = ReplayFeed(stored, speed=0, clock=ManualClock(0))
    fast.run()
    assert fast.clock.slept == 0 and len(list(fast)) == 3


def test_to_barset_keeps_timestamps_every_symbol_has():
    bars = [Bar("A/USD", 1, 1, 1, 1, 1, 1), Bar("B/USD", 1, 2, 2, 2, 2, 2),
            Bar("A/USD", 2, 3, 3, 3, 3, 3)]
    out = to_barset(bars, ["A/USD", "B/USD"])
    assert out.timestamps.tolist() == [1] and out.close.tolist() == [[1.0, 2.0]]


def test_ccxt_polling_feed_reads_finished_candles_dedups_and_finds_gaps(fake_binance):
    fake_binance.add_klines("BTCUSDT", [(T0_MS + k * 60_000, 100 + k, 101 + k, 99 + k,
                                         100.5 + k, 5) for k in (0, 1, 2)])
    clock = ManualClock(T0 + 3 * MINUTE_NS + 5 * 10**9)
    feed = CcxtPollingFeed(binance_exchange(API_KEY, SECRET, base_url=fake_binance.url),
                           ["BTC/USDT"], 60, since=T0, clock=clock)
    first = feed.fetch_new()
    assert [(b.symbol, b.timestamp, b.close) for b in first] == [
        ("BTC/USDT", T0 + k * MINUTE_NS, 100.5 + k) for k in (0, 1, 2)]

    # the exchange skips minutes 3 and 4; minute 6 is still forming at 06:30
    fake_binance.add_klines("BTCUSDT", [(T0_MS + k * 60_000, 200, 201, 199, 200, 5)
                                        for k in (5, 6)])
    clock.now = T0 + 6 * MINUTE_NS + 30 * 10**9
    second = feed.fetch_new()
    assert [b.timestamp for b in second] == [T0 + 5 * MINUTE_NS]
    assert feed.duplicates == 1  # the candle of minute 2, asked for again with `since`
    assert [(g.first, g.missing) for g in feed.gaps] == [(T0 + 3 * MINUTE_NS, 2)]
    since = [int(p["startTime"]) for p in fake_binance.calls("GET", "/api/v3/klines")]
    assert since == [T0_MS, T0_MS + 2 * 60_000]


def test_ccxt_polling_feed_runs_in_a_thread_until_stopped(fake_binance):
    fake_binance.add_klines("ETHUSDT", [(T0_MS + k * 60_000, 10, 11, 9, 10, 1) for k in range(4)])
    feed = CcxtPollingFeed(binance_exchange(base_url=fake_binance.url), ["ETH/USDT"], 60,
                           since=T0, clock=ManualClock(T0 + 10 * MINUTE_NS), max_polls=3)
    feed.start()
    got = [b.timestamp for b in feed]
    assert got == [T0 + k * MINUTE_NS for k in range(4)] and feed.polls == 3

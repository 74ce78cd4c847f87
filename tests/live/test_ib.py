"""Interactive Brokers: the adapter and the feed against a fake `IB` fed ib_async objects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from ib_async import BarData, Forex, Stock

from tests.live.fakes.ib import FakeIB
from trading.brokers.base import OrderRejected
from trading.brokers.ib import IbBroker, contract_symbol, default_contract
from trading.feeds.base import ManualClock
from trading.feeds.ib_feed import IbFeed

NOON = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
NOON_NS = int(NOON.timestamp()) * 10**9
MIN = 60 * 10**9


def test_symbols_map_to_contracts_and_back():
    stock = default_contract("AAPL/USD")
    assert (type(stock), stock.symbol, stock.exchange, stock.currency) == (
        Stock, "AAPL", "SMART", "USD")
    fx = default_contract("EUR/USD")
    assert isinstance(fx, Forex) and contract_symbol(fx) == "EUR/USD"
    assert contract_symbol(Stock("MSFT", "SMART", "USD")) == "MSFT/USD"


def test_order_is_placed_with_the_client_id_as_order_ref():
    ib = FakeIB(mode="submit")
    broker = IbBroker(ib)
    order = broker.place_order("nx-1", "AAPL/USD", "buy", 10, "limit", limit_price=189.5,
                               tif="DAY")
    [(contract, sent)] = ib.placed
    assert (contract.symbol, sent.action, sent.totalQuantity, sent.orderType, sent.lmtPrice,
            sent.tif, sent.orderRef) == ("AAPL", "BUY", 10, "LMT", 189.5, "DAY", "nx-1")
    assert (order.status, order.broker_order_id) == ("accepted", "9001")
    assert [o.client_order_id for o in broker.open_orders()] == ["nx-1"]


def test_the_same_client_id_is_placed_once():
    ib = FakeIB(mode="submit")
    broker = IbBroker(ib)
    broker.place_order("nx-2", "AAPL/USD", "buy", 10)
    broker.place_order("nx-2", "AAPL/USD", "buy", 10)
    assert len(ib.placed) == 1


def test_a_restarted_adapter_finds_a_finished_order_among_completed_orders():
    ib = FakeIB(mode="fill")
    IbBroker(ib).place_order("nx-3", "AAPL/USD", "buy", 10)
    ib.reconnect()
    assert ib.trades() == []
    again = IbBroker(ib).place_order("nx-3", "AAPL/USD", "buy", 10)
    assert again.status == "filled" and len(ib.placed) == 1


def test_partial_then_full_executions_become_fills_and_a_position():
    ib = FakeIB(mode="submit")
    broker = IbBroker(ib)
    broker.place_order("nx-4", "AAPL/USD", "buy", 10)
    trade = ib.trades()[0]
    ib.execute(trade, 4, 190.0)
    assert (broker.get_order("nx-4").status, broker.get_order("nx-4").filled_quantity) == (
        "partially_filled", 4.0)
    ib.execute(trade, 6, 191.0)
    final = broker.get_order("nx-4")
    # (4 x 190 + 6 x 191) / 10 = 190.6
    assert (final.status, final.filled_quantity, final.average_price) == (
        "filled", 10.0, pytest.approx(190.6))
    fills = broker.fills()
    assert [(f.client_order_id, f.side, f.quantity, f.price, f.fee) for f in fills] == [
        ("nx-4", "buy", 4.0, 190.0, 0.02), ("nx-4", "buy", 6.0, 191.0, 0.03)]
    assert broker.positions() == {"AAPL/USD": 10.0}


def test_cancel_of_a_working_order():
    ib = FakeIB(mode="submit")
    broker = IbBroker(ib)
    broker.place_order("nx-5", "AAPL/USD", "sell", 5, "stop", stop_price=180.0)
    assert broker.cancel_order("nx-5").status == "cancelled"
    assert broker.open_orders() == [] and ib.cancelled == [1]
    broker.cancel_order("nx-5")  # already cancelled: nothing more is sent
    assert ib.cancelled == [1]


def test_rejection_raises_with_ibs_reason_and_creates_no_position():
    ib = FakeIB(mode="reject")
    broker = IbBroker(ib)
    with pytest.raises(OrderRejected, match="insufficient buying power"):
        broker.place_order("nx-6", "AAPL/USD", "buy", 10_000)
    assert broker.positions() == {} and broker.fills() == []


def test_balances_come_from_total_cash_balance():
    assert IbBroker(FakeIB()).balances() == {"USD": 100_000.0}


def test_history_is_normalised_and_the_forming_bar_left_out():
    ib = FakeIB()
    ib.history["AAPL"] = [BarData(NOON + timedelta(minutes=k), 190 + k, 191 + k, 189 + k,
                                  190.5 + k, 100, 190.2, 12) for k in range(3)]
    clock = ManualClock(NOON_NS + 2 * MIN + 30 * 10**9)  # minute 2 is still forming
    feed = IbFeed(ib, [Stock("AAPL", "SMART", "USD")], 60, clock=clock)
    bars = feed.load_history()
    assert [(b.symbol, b.timestamp, b.close) for b in bars] == [
        ("AAPL/USD", NOON_NS, 190.5), ("AAPL/USD", NOON_NS + MIN, 191.5)]


def test_daily_history_bars_are_stamped_at_midnight_utc():
    ib = FakeIB()
    ib.history["AAPL"] = [BarData(date(2024, 1, 2), 1, 2, 0.5, 1.5, 10, 1.2, 5)]
    feed = IbFeed(ib, [Stock("AAPL", "SMART", "USD")], 86400,
                  clock=ManualClock(NOON_NS + 2 * 86400 * 10**9))
    [bar] = feed.load_history()
    assert bar.timestamp == int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) * 10**9


def test_realtime_5_second_bars_aggregate_into_minutes_and_gaps_are_seen():
    ib = FakeIB()
    feed = IbFeed(ib, [Stock("AAPL", "SMART", "USD")], 60, clock=ManualClock(NOON_NS))
    feed.subscribe()
    for k in range(12):  # 12:00:00 .. 12:00:55, closes 100 .. 111
        ib.push_realtime("AAPL", NOON + timedelta(seconds=5 * k), 100 + k - 0.5, 100 + k + 1,
                         100 + k - 1, 100 + k, 10)
    [minute] = list(_drain(feed))
    # open of the first (99.5), highest high (112), lowest low (99), last close (111), 12 x 10
    assert (minute.timestamp, minute.open, minute.high, minute.low, minute.close,
            minute.volume) == (NOON_NS, 99.5, 112, 99, 111, 120)

    # nothing for 12:01; a 5-second bar at 12:02:10, then one at 12:03:00 closes 12:02
    ib.push_realtime("AAPL", NOON + timedelta(minutes=2, seconds=10), 1, 2, 0.5, 1.5, 1)
    ib.push_realtime("AAPL", NOON + timedelta(minutes=3), 1, 2, 0.5, 1.5, 1)
    [late] = list(_drain(feed))
    assert late.timestamp == NOON_NS + 2 * MIN
    assert [(g.first, g.missing) for g in feed.gaps] == [(NOON_NS + MIN, 1)]


def _drain(feed):
    while len(feed.buffer):
        yield feed.get(timeout=0)

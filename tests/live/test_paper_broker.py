"""The paper broker fills with the engine's fill and cost models on the bars it is given."""

from __future__ import annotations

import json

import pytest

from tests.live.conftest import MINUTE_NS, T0
from trading.brokers.base import Bar, OrderRejected
from trading.brokers.paper import PaperBroker
from trading.engine.costs import Commission, bps_commission


def bar(t: int, o: float, h: float, lo: float, c: float, v: float = 1_000.0,
        symbol: str = "BTC/USDT") -> Bar:
    return Bar(symbol, T0 + t * MINUTE_NS, o, h, lo, c, v)


def test_market_order_fills_at_the_next_open_with_commission():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0, commission=bps_commission(10))
    order = broker.place_order("p1", "BTC/USDT", "buy", 10)
    assert order.status == "accepted" and broker.fills() == []

    broker.on_bar(bar(1, 101.0, 102.0, 100.0, 101.5))

    # 10 x 101 = 1,010 plus 10 bps = 1.01 -> cash 10,000 - 1,011.01 = 8,988.99
    assert order.status == "filled" and order.average_price == 101.0
    assert broker.cash == pytest.approx(8_988.99, abs=1e-9)
    assert broker.positions() == {"BTC/USDT": 10.0}
    [fill] = broker.fills()
    assert (fill.price, fill.quantity, fill.fee, fill.timestamp) == (
        101.0, 10.0, pytest.approx(1.01), T0 + MINUTE_NS)


def test_limit_buy_rests_until_the_low_reaches_it_and_fills_at_the_limit():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0,
                         commission=Commission(rate=0.001, maker_rate=0.0))
    order = broker.place_order("p2", "BTC/USDT", "buy", 5, "limit", limit_price=99.0)
    broker.on_bar(bar(1, 101.0, 102.0, 100.0, 101.0))  # low 100 > 99: no fill
    assert order.status == "accepted"
    broker.on_bar(bar(2, 100.5, 101.0, 98.5, 99.5))  # low 98.5 <= 99: fills at 99
    assert (order.status, order.average_price) == ("filled", 99.0)
    assert broker.fills()[0].maker is True and broker.cash == 10_000.0 - 5 * 99.0


def test_volume_cap_fills_partially_then_completes():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0, participation=0.1)
    order = broker.place_order("p3", "BTC/USDT", "buy", 8)
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0, v=50.0))  # cap 0.1 x 50 = 5 units
    assert (order.status, order.filled_quantity) == ("partially_filled", 5.0)
    broker.on_bar(bar(2, 100.0, 101.0, 99.0, 100.0, v=50.0))
    assert (order.status, order.filled_quantity) == ("filled", 8.0)
    assert [f.quantity for f in broker.fills()] == [5.0, 3.0]


def test_cancel_removes_a_working_order():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    broker.place_order("p4", "BTC/USDT", "buy", 5, "limit", limit_price=90.0)
    cancelled = broker.cancel_order("p4")
    broker.on_bar(bar(1, 89.0, 89.0, 85.0, 86.0))  # would have filled
    assert cancelled.status == "cancelled"
    assert broker.fills() == [] and broker.open_orders() == []


def test_ioc_remainder_is_cancelled_after_one_bar():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    order = broker.place_order("p5", "BTC/USDT", "buy", 5, "limit", limit_price=90.0, tif="IOC")
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0))
    assert order.status == "cancelled" and broker.positions() == {}


def test_sell_without_a_position_never_creates_a_short():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    order = broker.place_order("p6", "BTC/USDT", "sell", 5)
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0))
    assert order.status == "cancelled" and broker.positions() == {} and broker.fills() == []


def test_unknown_symbol_is_rejected():
    broker = PaperBroker(["BTC/USDT"])
    with pytest.raises(OrderRejected):
        broker.place_order("p7", "DOGE/USDT", "buy", 5)


def test_same_client_order_id_is_placed_once():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    a = broker.place_order("p8", "BTC/USDT", "buy", 5)
    b = broker.place_order("p8", "BTC/USDT", "buy", 5)
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0))
    assert a is b and broker.positions() == {"BTC/USDT": 5.0}


def test_saved_account_continues_exactly():
    def run(save_between: bool) -> tuple[float, dict[str, float], list[float]]:
        broker = PaperBroker(["BTC/USDT", "ETH/USDT"], cash=10_000.0,
                             commission=bps_commission(10))
        broker.place_order("a", "BTC/USDT", "buy", 3)
        broker.place_order("b", "ETH/USDT", "buy", 2, "limit", limit_price=95.0)
        broker.on_bars([bar(1, 100.0, 101.0, 99.0, 100.0),
                        bar(1, 100.0, 101.0, 97.0, 98.0, symbol="ETH/USDT")])
        if save_between:
            broker = PaperBroker.from_state(json.loads(json.dumps(broker.state())))
        broker.on_bars([bar(2, 100.0, 101.0, 99.0, 100.0),
                        bar(2, 98.0, 99.0, 94.0, 96.0, symbol="ETH/USDT")])
        return broker.cash, broker.positions(), [f.price for f in broker.fills()]

    assert run(True) == run(False)
    cash, positions, prices = run(False)
    assert positions == {"BTC/USDT": 3.0, "ETH/USDT": 2.0} and prices == [100.0, 95.0]


def test_a_bar_seen_twice_fills_once():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0, participation=0.1)
    broker.place_order("p9", "BTC/USDT", "buy", 8)
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0, v=50.0))
    broker.on_bar(bar(1, 100.0, 101.0, 99.0, 100.0, v=50.0))
    assert [f.quantity for f in broker.fills()] == [5.0]

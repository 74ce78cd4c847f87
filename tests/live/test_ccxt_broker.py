"""The ccxt adapter against a local fake of Binance's spot REST API."""

from __future__ import annotations

import decimal

import pytest

from tests.live.fakes.binance import API_KEY, SECRET, FakeBinance
from trading.brokers.base import OrderRejected
from trading.brokers.ccxt_broker import CcxtBroker, binance_exchange


def test_market_order_is_sent_once_signed_and_filled(fake_binance, binance_broker):
    order = binance_broker.place_order("nx-a1", "BTC/USDT", "buy", 0.5)

    assert (order.status, order.filled_quantity, order.average_price) == ("filled", 0.5, 50_000.0)
    posted = fake_binance.calls("POST", "/api/v3/order")
    assert len(posted) == 1
    assert posted[0]["newClientOrderId"] == "nx-a1"
    assert posted[0]["signature"] and posted[0]["timestamp"]
    # 0.5 BTC at 50,000 = 25,000 USDT, fee 0.1 % = 25 -> 100,000 - 25,025 = 74,975
    assert binance_broker.balances() == {"USDT": 74_975.0, "BTC": 0.5}
    assert binance_broker.positions() == {"BTC/USDT": 0.5}


def test_orders_leave_the_threads_decimal_context_as_it_was(fake_binance, binance_broker):
    # ccxt rounds amounts on the current decimal context and sets its rounding to HALF_UP;
    # the adapter must keep that away from the tax and statement arithmetic of the thread.
    before = decimal.getcontext().copy()
    binance_broker.place_order("nx-ctx", "BTC/USDT", "buy", 0.123456789)
    binance_broker.open_orders()

    after = decimal.getcontext()
    assert after.rounding == before.rounding == decimal.ROUND_HALF_EVEN
    assert after.prec == before.prec
    assert not after.traps[decimal.Underflow]
    assert decimal.Decimal("2.5").quantize(decimal.Decimal("1")) == decimal.Decimal("2")


def test_placing_the_same_client_order_id_twice_sends_once(fake_binance, binance_broker):
    first = binance_broker.place_order("nx-a2", "BTC/USDT", "buy", 0.1)
    again = binance_broker.place_order("nx-a2", "BTC/USDT", "buy", 0.1)

    assert again.broker_order_id == first.broker_order_id
    assert len(fake_binance.calls("POST", "/api/v3/order")) == 1
    assert binance_broker.positions() == {"BTC/USDT": 0.1}


def test_limit_order_rests_fills_partially_then_cancels(fake_binance, binance_broker):
    binance_broker.place_order("nx-buy", "BTC/USDT", "buy", 1.0)
    order = binance_broker.place_order("nx-lim", "BTC/USDT", "sell", 0.4, "limit", 60_000.0)
    assert order.status == "accepted"
    assert [o.client_order_id for o in binance_broker.open_orders()] == ["nx-lim"]

    fake_binance.trade("BTCUSDT", 60_000.0, 0.1)  # prints only 0.1 through the limit
    partial = binance_broker.get_order("nx-lim")
    assert (partial.status, partial.filled_quantity) == ("partially_filled", 0.1)

    cancelled = binance_broker.cancel_order("nx-lim")
    assert (cancelled.status, cancelled.filled_quantity) == ("cancelled", 0.1)
    assert binance_broker.open_orders() == []
    # bought 1.0, sold 0.1 of the 0.4 before the cancel -> 0.9 BTC, nothing locked
    assert binance_broker.positions() == {"BTC/USDT": 0.9}
    fills = binance_broker.fills()
    assert [(f.client_order_id, f.side, f.quantity, f.price, f.maker) for f in fills] == [
        ("nx-buy", "buy", 1.0, 50_000.0, False), ("nx-lim", "sell", 0.1, 60_000.0, True)]


def test_an_order_that_fills_while_it_is_being_cancelled_comes_back_filled(
        fake_binance, binance_broker, monkeypatch):
    binance_broker.place_order("nx-buy", "BTC/USDT", "buy", 1.0)
    binance_broker.place_order("nx-race", "BTC/USDT", "sell", 0.4, "limit", 60_000.0)
    cancel = fake_binance._cancel

    def filled_just_before(params):  # the print reaches the book before the cancel does
        fake_binance.trade("BTCUSDT", 60_000.0, 0.4)
        return cancel(params)  # -> -2011 "Unknown order sent."

    monkeypatch.setattr(fake_binance, "_cancel", filled_just_before)

    final = binance_broker.cancel_order("nx-race")

    assert (final.status, final.filled_quantity) == ("filled", 0.4)
    assert binance_broker.positions() == {"BTC/USDT": 0.6}


def test_exchange_errors_never_carry_the_credentials(fake_binance, binance_broker):
    # An exchange (or a proxy in front of it) that quotes the request back in its error
    fake_binance.inject("POST", "/api/v3/order", 400,
                        {"code": -1013, "msg": f"Filter failure for key {API_KEY} / {SECRET}"})

    with pytest.raises(OrderRejected) as refused:
        binance_broker.place_order("nx-echo", "BTC/USDT", "buy", 0.1)

    assert API_KEY not in str(refused.value) and SECRET not in str(refused.value)
    assert "Filter failure for key ••••" in str(refused.value)


def test_rejection_raises_and_creates_no_position(fake_binance, binance_broker):
    # 3 BTC at 50,000 needs 150,150 USDT with the fee; the account has 100,000
    with pytest.raises(OrderRejected, match="insufficient balance"):
        binance_broker.place_order("nx-big", "BTC/USDT", "buy", 3.0)

    assert binance_broker.positions() == {}
    assert binance_broker.fills() == []


def test_injected_rejection_is_an_order_rejected(fake_binance, binance_broker):
    fake_binance.inject("POST", "/api/v3/order", 400,
                        {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
    with pytest.raises(OrderRejected, match="LOT_SIZE"):
        binance_broker.place_order("nx-lot", "BTC/USDT", "buy", 0.1)
    assert binance_broker.positions() == {}


def test_malformed_answer_is_reported_and_creates_no_position(fake_binance, binance_broker):
    from trading.brokers.base import MalformedResponse

    fake_binance.inject("POST", "/api/v3/order", 200, "{\"orderId\": 12, \"stat", raw=True)
    with pytest.raises(MalformedResponse):
        binance_broker.place_order("nx-bad", "BTC/USDT", "buy", 0.1)
    assert binance_broker.get_order("nx-bad") is None
    assert binance_broker.positions() == {}


def test_unsigned_requests_are_refused_by_the_fake(fake_binance):
    broker = CcxtBroker(binance_exchange(API_KEY, "wrong-secret", base_url=fake_binance.url),
                        ["BTC/USDT"])
    with pytest.raises(OrderRejected, match="Signature"):
        broker.place_order("nx-sig", "BTC/USDT", "buy", 0.1)
    assert fake_binance.orders == []


def test_stop_orders_are_refused_before_sending(fake_binance, binance_broker):
    with pytest.raises(OrderRejected, match="stop orders are not supported"):
        binance_broker.place_order("nx-stop", "BTC/USDT", "sell", 0.1, "stop",
                                   stop_price=45_000.0)
    assert fake_binance.calls("POST", "/api/v3/order") == []


def test_day_limit_orders_are_refused_rather_than_silently_made_gtc(fake_binance,
                                                                   binance_broker):
    with pytest.raises(OrderRejected, match="DAY"):
        binance_broker.place_order("nx-day", "BTC/USDT", "buy", 0.1, "limit", 40_000.0,
                                   tif="DAY")
    assert fake_binance.calls("POST", "/api/v3/order") == []


def test_testnet_mode_points_at_the_testnet():
    exchange = binance_exchange("k", "s", testnet=True)
    assert exchange.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"


def test_base_url_replaces_the_host_of_every_endpoint():
    exchange = binance_exchange(base_url="http://127.0.0.1:9")
    assert exchange.urls["api"]["private"] == "http://127.0.0.1:9/api/v3"
    assert exchange.urls["api"]["sapi"] == "http://127.0.0.1:9/sapi/v1"


def test_fake_keeps_rejections_out_of_its_books():
    fake = FakeBinance()
    status, body = fake._place({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                "quantity": "5"})
    assert (status, body["code"]) == (400, -2010)
    assert fake.orders == [] and fake.balances["BTC"] == [0.0, 0.0]


def test_a_busy_shared_account_is_read_page_after_page_and_each_order_looked_up_once(
        fake_binance):
    order_ids: dict[str, str] = {}  # kept by the platform per account, across steps

    def broker():
        return CcxtBroker(binance_exchange(API_KEY, SECRET, base_url=fake_binance.url),
                          ["BTC/USDT"], order_ids=order_ids)

    fake_binance.now_ms = 1_700_000_000_000
    # 2,500 trades of another order in the same millisecond: more than two pages of 1,000
    fake_binance.foreign_trades("BTCUSDT", 2500, 50_000.0)
    fake_binance.now_ms += 1_000
    broker().place_order("nx-mine", "BTC/USDT", "buy", 0.01)

    fills = broker().fills(since=1_700_000_000_000 * 10**6)

    assert len(fills) == 2501 and len({f.fill_id for f in fills}) == 2501
    assert [f.client_order_id for f in fills][-1] == "nx-mine"
    assert {f.client_order_id for f in fills[:-1]} == {"someone-else-1001"}
    assert len(fake_binance.calls("GET", "/api/v3/myTrades")) == 3  # 1000 + 1000 + 501
    lookups = len(fake_binance.calls("GET", "/api/v3/order"))
    broker().fills(since=1_700_000_000_000 * 10**6)  # a later step, a new adapter
    assert len(fake_binance.calls("GET", "/api/v3/order")) == lookups  # nothing looked up again

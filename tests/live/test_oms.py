"""The order manager: state machine, deterministic ids, the risk gate, reconciliation."""

from __future__ import annotations

import pytest

from risk.core import RiskLimits, Rulebook
from trading.brokers.base import BrokerOrder, BrokerUnavailable, MalformedResponse
from trading.brokers.paper import PaperBroker
from trading.engine.hooks import OrderIntent, PortfolioSnapshot
from trading.oms import (
    IllegalTransition,
    ManagedOrder,
    OrderManager,
    client_order_id,
    deployment_prefix,
    reconcile,
)

T = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z in ns


def snapshot(cash: float = 10_000.0) -> PortfolioSnapshot:
    return PortfolioSnapshot(timestamp=T, cash=cash, equity=cash, prices={"BTC/USDT": 100.0},
                             day_start_equity=cash, peak_equity=cash)


def intent(qty: float = 10.0, side: int = 1) -> OrderIntent:
    return OrderIntent(symbol="BTC/USDT", side=side, quantity=qty, price=100.0, timestamp=T)


def test_client_order_id_is_deterministic_and_fits_binance():
    a = client_order_id("dep-7", T, "BTC/USDT:entry")
    assert a == client_order_id("dep-7", T, "BTC/USDT:entry")
    assert a != client_order_id("dep-7", T + 1, "BTC/USDT:entry")
    assert a != client_order_id("dep-8", T, "BTC/USDT:entry")
    assert a != client_order_id("dep-7", T, "BTC/USDT:exit")
    assert len(a) == 36 and a.startswith(deployment_prefix("dep-7"))
    assert not a.startswith(deployment_prefix("dep-8"))


@pytest.mark.parametrize("path", [
    ["accepted", "partially_filled", "partially_filled", "filled"],
    ["accepted", "cancelled"],
    ["accepted", "partially_filled", "cancelled"],
    ["rejected"],
    ["accepted", "rejected"],
])
def test_legal_paths_of_the_state_machine(path):
    order = ManagedOrder("c", "BTC/USDT", "buy", 1.0)
    for status in path:
        order.move(status)
    assert order.status == path[-1]


@pytest.mark.parametrize("path", [
    ["filled"],  # new cannot fill before the broker accepted it
    ["accepted", "filled", "cancelled"],  # finished orders stay finished
    ["rejected", "accepted"],
    ["accepted", "partially_filled", "accepted"],
    ["cancelled"],
])
def test_illegal_transitions_raise(path):
    order = ManagedOrder("c", "BTC/USDT", "buy", 1.0)
    with pytest.raises(IllegalTransition):
        for status in path:
            order.move(status)


def test_broker_reporting_filled_at_once_walks_through_accepted():
    order = ManagedOrder("c", "BTC/USDT", "buy", 1.0)
    order.advance_to("filled")
    assert order.history == ["new", "accepted", "filled"]


def test_risk_refusal_is_recorded_and_never_sent():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    rulebook = Rulebook(RiskLimits(max_order_notional=500.0))
    oms = OrderManager("dep", broker, rulebook)

    order = oms.submit(intent(qty=10.0), snapshot())  # 10 x 100 = 1,000 > 500

    assert order.status == "rejected"
    assert order.reason.startswith("risk max_order_notional")
    assert oms.refusals[0].rule == "max_order_notional"
    assert broker.open_orders() == [] and broker.get_order(order.client_order_id) is None


def test_accepted_order_is_sent_once_even_if_submitted_twice():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    oms = OrderManager("dep", broker, Rulebook(RiskLimits(max_order_notional=5_000.0)))

    first = oms.submit(intent(qty=10.0), snapshot())
    second = oms.submit(intent(qty=10.0), snapshot())

    assert first is second and first.status == "accepted"
    assert len(broker.open_orders()) == 1


def test_a_second_manager_reuses_the_brokers_order_after_a_crash():
    broker = PaperBroker(["BTC/USDT"], cash=10_000.0)
    OrderManager("dep", broker).submit(intent(qty=3.0), snapshot())
    # the process died before saving: a fresh manager with no orders decides the same thing
    again = OrderManager("dep", broker).submit(intent(qty=3.0), snapshot())
    assert again.status == "accepted"
    assert len(broker.open_orders()) == 1


def test_reconcile_broker_wins_and_logs_each_difference():
    local = {
        "a": ManagedOrder("a", "BTC/USDT", "buy", 2.0, status="accepted",
                          history=["new", "accepted"]),
        "b": ManagedOrder("b", "BTC/USDT", "sell", 1.0, status="accepted",
                          history=["new", "accepted"]),
        "c": ManagedOrder("c", "ETH/USDT", "buy", 5.0, status="accepted",
                          history=["new", "accepted"]),
    }
    broker_open = [
        BrokerOrder("a", "BTC/USDT", "buy", 2.0, status="partially_filled", filled_quantity=0.5),
        BrokerOrder("z", "ETH/USDT", "sell", 1.0, order_type="limit", limit_price=3_100.0),
    ]
    finished = {"b": BrokerOrder("b", "BTC/USDT", "sell", 1.0, status="filled",
                                 filled_quantity=1.0)}

    result = reconcile(local, {"BTC/USDT": 1.0, "ETH/USDT": 2.0}, broker_open,
                       {"BTC/USDT": 0.5}, lookup=finished.get)

    assert {k: (o.status, o.filled_quantity) for k, o in result.orders.items()} == {
        "a": ("partially_filled", 0.5), "b": ("filled", 1.0), "c": ("cancelled", 0.0),
        "z": ("accepted", 0.0)}
    assert result.positions == {"BTC/USDT": 0.5}
    assert result.log == [
        "order a (buy 2 BTC/USDT): local accepted with 0 filled, broker partially_filled "
        "with 0.5 filled: updated",
        "order z (sell 1 ETH/USDT) is open at the broker but was unknown locally: adopted as "
        "accepted",
        "order b (sell 1 BTC/USDT): local accepted with 0 filled, broker filled with 1 filled: "
        "updated",
        "order c (buy 5 ETH/USDT) was accepted locally but is unknown to the broker: marked "
        "cancelled",
        "position BTC/USDT: local 1, broker 0.5: set to 0.5",
        "position ETH/USDT: local 2, broker 0: set to 0",
    ]
    assert local["a"].status == "accepted"  # the input is left alone


def test_reconcile_of_matching_books_logs_nothing():
    local = {"a": ManagedOrder("a", "BTC/USDT", "buy", 2.0, status="accepted")}
    result = reconcile(local, {"BTC/USDT": 1.0},
                       [BrokerOrder("a", "BTC/USDT", "buy", 2.0, status="accepted")],
                       {"BTC/USDT": 1.0})
    assert result.log == []
    assert result.positions == {"BTC/USDT": 1.0}


def test_cancelling_an_order_of_unknown_outcome_asks_the_broker_first():
    class Flaky(PaperBroker):
        def place_order(self, *args, **kwargs):
            super().place_order(*args, **kwargs)  # the broker takes it ...
            raise MalformedResponse("truncated answer")  # ... and the answer is lost

    broker = Flaky(["BTC/USDT"], cash=10_000.0)
    oms = OrderManager("dep", broker)
    order = oms.submit(intent(qty=2.0), snapshot())
    assert order.status == "new" and len(broker.open_orders()) == 1

    oms.cancel(order.client_order_id)

    assert order.status == "cancelled" and order.history == ["new", "accepted", "cancelled"]
    assert broker.open_orders() == []


def test_cancelling_an_order_that_never_reached_the_broker_rejects_it_locally():
    class Down(PaperBroker):
        def place_order(self, *args, **kwargs):
            raise BrokerUnavailable("connection refused")

    oms = OrderManager("dep", Down(["BTC/USDT"], cash=10_000.0))
    order = oms.submit(intent(qty=2.0), snapshot())
    oms.cancel(order.client_order_id)
    assert (order.status, order.reason) == ("rejected", "cancelled before it was sent")

"""The FIX 4.4 session and broker against a local acceptor speaking simplefix."""

from __future__ import annotations

import time

import pytest

from tests.live.fakes.fix_acceptor import FixAcceptor
from trading.brokers.base import BrokerError, BrokerUnavailable, OrderRejected
from trading.brokers.fix import FixBroker, FixSession


def tags(msg, *numbers):
    return tuple((msg.get(n) or b"").decode() for n in numbers)


@pytest.fixture
def acceptor():
    venue = FixAcceptor()
    yield venue
    venue.stop()


def connect(venue: FixAcceptor, *, heartbeat: int = 30) -> FixBroker:
    session = FixSession("127.0.0.1", venue.port, "NEXOW", "VENUE",
                         heartbeat_interval=heartbeat, timeout=2.0)
    return FixBroker(session, answer_timeout=2.0).connect()


def test_logon_resets_numbers_and_is_answered(acceptor):
    broker = connect(acceptor, heartbeat=30)
    [logon] = acceptor.wait_for("A")
    assert tags(logon, 8, 34, 49, 56, 98, 108, 141) == (
        "FIX.4.4", "1", "NEXOW", "VENUE", "0", "30", "Y")
    assert broker.session.logged_on.is_set()
    assert (broker.session.next_out, broker.session.next_in) == (2, 2)
    broker.session.logout()
    assert acceptor.wait_for("5")


def test_outgoing_sequence_numbers_increase_by_one(acceptor):
    broker = connect(acceptor)
    broker.place_order("c1", "AAPL/USD", "buy", 10)
    broker.place_order("c2", "AAPL/USD", "sell", 4)
    assert [int(tags(m, 34)[0]) for m in acceptor.received] == list(
        range(1, len(acceptor.received) + 1))


def test_a_quiet_session_sends_heartbeats_and_answers_test_requests(acceptor):
    broker = connect(acceptor, heartbeat=1)
    acceptor.send("1", [(112, "PING-7")])
    beats = acceptor.wait_for("0", count=2, timeout=3.0)  # the answer, then a timed beat
    assert "PING-7" in [tags(m, 112)[0] for m in beats]
    assert any(tags(m, 112)[0] == "" for m in beats)
    assert broker.session.closed.is_set() is False


def test_an_unanswered_test_request_drops_the_session():
    venue = FixAcceptor(answer_test_requests=False)
    try:
        broker = connect(venue, heartbeat=1)
        venue.wait_for("1", timeout=3.0)  # silence from the venue: we ask
        assert broker.session.closed.wait(3.0)
        assert "test request" in broker.session.error
    finally:
        venue.stop()


def test_a_sequence_gap_triggers_a_resend_request_and_is_filled(acceptor):
    broker = connect(acceptor)
    acceptor.skip_next()  # the order's acknowledgement is numbered one too high
    order = broker.place_order("c3", "AAPL/USD", "buy", 10)
    [resend] = acceptor.wait_for("2")
    # logon answer was 1, so 2 was expected and 3 arrived: resend from 2, to the end (0)
    assert tags(resend, 7, 16) == ("2", "0")
    deadline = time.monotonic() + 2
    while order.status != "filled" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (order.status, order.filled_quantity) == ("filled", 10.0)
    assert broker.session.next_in == acceptor.next_out
    assert [f.quantity for f in broker.fills()] == [5.0, 5.0]  # each execution once


def test_a_resend_request_from_the_venue_is_gap_filled(acceptor):
    broker = connect(acceptor)
    acceptor.send("2", [(7, 1), (16, 0)])
    deadline = time.monotonic() + 2
    gap = []
    while not gap and time.monotonic() < deadline:
        gap = [m for m in acceptor.received if tags(m, 35) == ("4",)]
        time.sleep(0.01)
    assert tags(gap[0], 34, 43, 123, 36) == ("1", "Y", "Y", str(broker.session.next_out))


def test_new_order_fills_partially_then_fully(acceptor):
    broker = connect(acceptor)
    order = broker.place_order("c4", "AAPL/USD", "buy", 10, "limit", limit_price=101.5)
    [nos] = acceptor.wait_for("D")
    assert tags(nos, 11, 55, 54, 38, 40, 44, 59) == (
        "c4", "AAPL/USD", "1", "10", "2", "101.5", "1")
    deadline = time.monotonic() + 2
    while order.status != "filled" and time.monotonic() < deadline:
        time.sleep(0.01)
    fills = broker.fills()
    assert [(f.quantity, f.price, f.fee) for f in fills] == [(5.0, 100.0, 0.05),
                                                             (5.0, 100.0, 0.05)]
    assert (order.status, order.filled_quantity, order.average_price) == ("filled", 10.0, 100.0)
    assert broker.positions() == {"AAPL/USD": 10.0}


def test_rejected_order_raises_and_creates_no_position():
    venue = FixAcceptor(mode="reject")
    try:
        broker = connect(venue)
        with pytest.raises(OrderRejected, match="exceeds limit"):
            broker.place_order("c5", "AAPL/USD", "buy", 10)
        assert broker.positions() == {} and broker.fills() == []
    finally:
        venue.stop()


def test_a_garbled_execution_report_changes_nothing():
    venue = FixAcceptor(mode="garble")
    try:
        session = FixSession("127.0.0.1", venue.port, "NEXOW", "VENUE", timeout=2.0)
        broker = FixBroker(session, answer_timeout=0.3).connect()
        with pytest.raises(BrokerUnavailable, match="no FIX answer"):
            broker.place_order("c9", "AAPL/USD", "buy", 10)
        assert broker.positions() == {} and broker.fills() == []
        assert broker.open_orders() == []
        assert "could not process" in session.rejects[0]
        assert session.logged_on.is_set()  # the session survives a bad message
    finally:
        venue.stop()


def test_working_order_is_cancelled_and_a_second_cancel_is_harmless():
    venue = FixAcceptor(mode="rest")
    try:
        broker = connect(venue)
        order = broker.place_order("c6", "AAPL/USD", "sell", 3, "limit", limit_price=120.0)
        assert order.status == "accepted" and broker.open_orders() == [order]
        cancelled = broker.cancel_order("c6")
        [cancel] = venue.wait_for("F")
        assert tags(cancel, 41, 55, 54) == ("c6", "AAPL/USD", "2")
        assert cancelled.status == "cancelled" and broker.open_orders() == []
        assert broker.cancel_order("c6").status == "cancelled"
        assert len(venue.wait_for("F")) == 1
    finally:
        venue.stop()


def test_same_client_order_id_is_sent_once_even_from_a_new_session(acceptor):
    broker = connect(acceptor)
    broker.place_order("c7", "AAPL/USD", "buy", 2)
    broker.place_order("c7", "AAPL/USD", "buy", 2)
    assert len(acceptor.wait_for("D")) == 1

    # a restarted process knows nothing: it asks the venue (35=H) before sending
    fresh = FixBroker(broker.session, answer_timeout=2.0)
    known = fresh.place_order("c7", "AAPL/USD", "buy", 2)
    assert known.status == "filled"
    assert len(acceptor.wait_for("H")) == 2  # one lookup by each process before its send
    assert len([m for m in acceptor.received if tags(m, 35) == ("D",)]) == 1


def test_unknown_ids_are_looked_up_then_sent(acceptor):
    broker = connect(acceptor)
    broker.place_order("c8", "AAPL/USD", "buy", 1)
    [status_request] = acceptor.wait_for("H")
    assert tags(status_request, 11) == ("c8",)
    assert len(acceptor.wait_for("D")) == 1


def test_balances_are_not_available_over_fix(acceptor):
    broker = connect(acceptor)
    with pytest.raises(BrokerError, match="no balances"):
        broker.balances()


def test_connecting_to_nothing_is_a_clear_unavailable_error():
    venue = FixAcceptor()
    port = venue.port
    venue.stop()
    with pytest.raises(BrokerUnavailable):
        FixSession("127.0.0.1", port, "NEXOW", "VENUE", timeout=0.5).connect()

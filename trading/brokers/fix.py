"""FIX 4.4 order routing: an initiator session and a broker adapter on top of it (simplefix).

`FixSession` is the session layer: it connects, logs on (35=A, optionally resetting sequence
numbers), numbers every outgoing message (34), checks every incoming number, sends a heartbeat
(0) when it has been quiet for the agreed interval, answers test requests (1) and sends its own
when the counterparty goes quiet (and drops the connection when that goes unanswered too), and
handles gaps:

* an incoming number higher than expected is a gap — the message is not processed, a
  ResendRequest (2) for everything from the expected number is sent once, and the resent
  messages (PossDupFlag 43=Y) or a SequenceReset (4) fill it;
* a number lower than expected without PossDupFlag is a fatal error (logout);
* a ResendRequest from the counterparty is answered with SequenceReset-GapFill: orders are never
  replayed, since a stale order re-sent later is worse than one not sent.

`FixBroker` speaks the application messages: NewOrderSingle (D), OrderCancelRequest (F),
OrderStatusRequest (H, to look an id up before sending it) and ExecutionReport (8) /
OrderCancelReject (9), which it folds into order state and fills. FIX 4.4 carries no account
balances in this profile, so `balances()` refuses; positions are the fills seen by the session
added to the `initial_positions` given at start.
"""

from __future__ import annotations

import calendar
import itertools
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import simplefix

from .base import (
    BrokerAdapter,
    BrokerError,
    BrokerFill,
    BrokerOrder,
    BrokerUnavailable,
    OrderRejected,
    validate_order,
)

BEGIN_STRING = "FIX.4.4"
SIDE = {"buy": "1", "sell": "2"}
SIDE_NAME = {v: k for k, v in SIDE.items()}
ORD_TYPE = {"market": "1", "limit": "2", "stop": "3", "stop_limit": "4"}
ORD_TYPE_NAME = {v: k for k, v in ORD_TYPE.items()}
TIF = {"DAY": "0", "GTC": "1", "IOC": "3"}
TIF_NAME = {v: k for k, v in TIF.items()}
ORD_STATUS = {"0": "accepted", "1": "partially_filled", "2": "filled", "4": "cancelled",
              "8": "rejected", "C": "cancelled", "A": "accepted", "E": "accepted",
              "6": "accepted"}
ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})


def _text(msg: simplefix.FixMessage, tag: int, default: str = "") -> str:
    value = msg.get(tag)
    return default if value is None else value.decode(errors="replace")


def _float(msg: simplefix.FixMessage, tag: int, default: float = 0.0) -> float:
    value = msg.get(tag)
    return default if value in (None, b"") else float(value)


def _fmt(x: float) -> str:
    return f"{x:.10f}".rstrip("0").rstrip(".")


def _sending_time_ns(msg: simplefix.FixMessage) -> int:
    raw = _text(msg, 60) or _text(msg, 52)
    if not raw:
        return time.time_ns()
    day, _, clock = raw.partition("-")
    whole, _, frac = clock.partition(".")
    t = time.strptime(f"{day}-{whole}", "%Y%m%d-%H:%M:%S")
    return calendar.timegm(t) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


class FixSession:
    """A FIX 4.4 initiator session over TCP (see the module doc)."""

    def __init__(self, host: str, port: int, sender_comp_id: str, target_comp_id: str, *,
                 heartbeat_interval: int = 30, reset_on_logon: bool = True,
                 timeout: float = 5.0,
                 on_app_message: Callable[[simplefix.FixMessage], None] | None = None) -> None:
        self.host, self.port = host, port
        self.sender, self.target = sender_comp_id, target_comp_id
        self.heartbeat_interval = heartbeat_interval
        self.reset_on_logon, self.timeout = reset_on_logon, timeout
        self.on_app_message = on_app_message
        self.next_out = 1
        self.next_in = 1
        self.logged_on = threading.Event()
        self.closed = threading.Event()
        self.sent: list[simplefix.FixMessage] = []
        self.received: list[simplefix.FixMessage] = []
        self.rejects: list[str] = []
        self.error: str | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._last_sent = self._last_received = time.monotonic()
        self._test_request: tuple[str, float] | None = None
        self._resend_from: int | None = None
        self._ids = itertools.count(1)

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> FixSession:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise BrokerUnavailable(f"FIX connection to {self.host}:{self.port}: {exc}") from exc
        self._sock.settimeout(0.2)
        threading.Thread(target=self._read_loop, daemon=True, name="fix-reader").start()
        threading.Thread(target=self._timer_loop, daemon=True, name="fix-timer").start()
        logon = self.new_message("A")
        logon.append_pair(98, "0")
        logon.append_pair(108, str(self.heartbeat_interval))
        if self.reset_on_logon:
            logon.append_pair(141, "Y")
        self.send(logon)
        if not self.logged_on.wait(self.timeout):
            self.close()
            raise BrokerUnavailable(f"no Logon answer from {self.target} "
                                    f"({self.error or 'timeout'})")
        return self

    def logout(self, text: str = "") -> None:
        if self.logged_on.is_set() and not self.closed.is_set():
            msg = self.new_message("5")
            if text:
                msg.append_pair(58, text)
            self.send(msg)
            self.closed.wait(self.timeout)
        self.close()

    def close(self) -> None:
        self.logged_on.clear()
        self.closed.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    # -- sending ------------------------------------------------------------------------------
    def new_message(self, msg_type: str) -> simplefix.FixMessage:
        msg = simplefix.FixMessage()
        msg.append_pair(8, BEGIN_STRING, header=True)
        msg.append_pair(35, msg_type, header=True)
        return msg

    def send(self, msg: simplefix.FixMessage) -> int:
        """Number, stamp and send one message; returns its sequence number."""
        if self._sock is None or self.closed.is_set():
            raise BrokerUnavailable("FIX session is not connected")
        with self._send_lock:
            seq = self.next_out
            msg.append_pair(49, self.sender, header=True)
            msg.append_pair(56, self.target, header=True)
            msg.append_pair(34, str(seq), header=True)
            msg.append_utc_timestamp(52, precision=3, header=True)
            try:
                self._sock.sendall(msg.encode())
            except OSError as exc:
                self.close()
                raise BrokerUnavailable(f"FIX send failed: {exc}") from exc
            self.next_out += 1
            self.sent.append(msg)
            self._last_sent = time.monotonic()
            return seq

    # -- receiving ----------------------------------------------------------------------------
    def _read_loop(self) -> None:
        parser = simplefix.FixParser()
        while not self.closed.is_set():
            try:
                data = self._sock.recv(65536) if self._sock else b""
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            parser.append_buffer(data)
            while (msg := parser.get_message()) is not None:
                self._last_received = time.monotonic()
                try:
                    self._on_message(msg)
                except Exception as exc:  # a bad message must not kill the session
                    self.rejects.append(f"could not process message: {exc}")
        self.close()

    def _on_message(self, msg: simplefix.FixMessage) -> None:
        self.received.append(msg)
        msg_type = _text(msg, 35)
        seq = int(_text(msg, 34, "0"))
        if msg_type == "4" and _text(msg, 123) != "Y":  # SequenceReset-Reset: ignore numbers
            self.next_in = int(_text(msg, 36))
            return
        if seq > self.next_in:
            if msg_type == "A":
                self.logged_on.set()  # a logon is honoured, then the gap before it is asked for
            if self._resend_from != self.next_in:
                self._resend_from = self.next_in
                req = self.new_message("2")
                req.append_pair(7, str(self.next_in))
                req.append_pair(16, "0")  # everything from there on
                self.send(req)
            if msg_type == "5":
                self.close()
            return
        if seq < self.next_in:
            if _text(msg, 43) == "Y":
                return  # a duplicate we already processed
            self.error = f"MsgSeqNum too low: got {seq}, expected {self.next_in}"
            self.logout(self.error)
            return
        self.next_in = seq + 1
        if self._resend_from is not None and seq >= self._resend_from:
            self._resend_from = None
        if msg_type == "4":  # SequenceReset-GapFill
            self.next_in = int(_text(msg, 36))
        elif msg_type == "A":
            self.logged_on.set()
        elif msg_type == "0":
            if self._test_request and _text(msg, 112) == self._test_request[0]:
                self._test_request = None
        elif msg_type == "1":
            hb = self.new_message("0")
            hb.append_pair(112, _text(msg, 112))
            self.send(hb)
        elif msg_type == "2":
            self._answer_resend(int(_text(msg, 7)))
        elif msg_type == "3":
            self.rejects.append(_text(msg, 58) or f"session reject of seq {_text(msg, 45)}")
        elif msg_type == "5":
            if self.logged_on.is_set() and not self.closed.is_set():
                try:
                    self.send(self.new_message("5"))
                except BrokerError:
                    pass
            self.close()
        elif self.on_app_message is not None:
            self.on_app_message(msg)

    def _answer_resend(self, begin: int) -> None:
        with self._send_lock:
            gap = simplefix.FixMessage()
            gap.append_pair(8, BEGIN_STRING, header=True)
            gap.append_pair(35, "4", header=True)
            gap.append_pair(49, self.sender, header=True)
            gap.append_pair(56, self.target, header=True)
            gap.append_pair(34, str(begin), header=True)
            gap.append_pair(43, "Y", header=True)
            gap.append_utc_timestamp(52, precision=3, header=True)
            gap.append_pair(123, "Y")
            gap.append_pair(36, str(self.next_out))
            if self._sock is not None:
                self._sock.sendall(gap.encode())
            self.sent.append(gap)

    def _timer_loop(self) -> None:
        while not self.closed.wait(0.05):
            if not self.logged_on.is_set():
                continue
            now = time.monotonic()
            hb = self.heartbeat_interval
            try:
                if now - self._last_sent >= hb:
                    self.send(self.new_message("0"))
                if self._test_request is None and now - self._last_received >= hb * 1.2:
                    ident = f"TEST-{next(self._ids)}"
                    req = self.new_message("1")
                    req.append_pair(112, ident)
                    self.send(req)
                    self._test_request = (ident, now)
                elif self._test_request is not None and now - self._test_request[1] >= hb:
                    self.error = "counterparty did not answer a test request"
                    self.close()
            except BrokerError:
                return


class FixBroker(BrokerAdapter):
    """Orders over a `FixSession` (connected by the caller, or by `connect()`)."""

    name = "fix"

    def __init__(self, session: FixSession, *, account: str = "",
                 initial_positions: Mapping[str, float] | None = None,
                 answer_timeout: float = 5.0, lookup_before_send: bool = True) -> None:
        self.session = session
        session.on_app_message = self._on_app_message
        self.account = account
        self.answer_timeout = answer_timeout
        self.lookup_before_send = lookup_before_send
        self._orders: dict[str, BrokerOrder] = {}
        self._fills: list[BrokerFill] = []
        self._fill_ids: set[str] = set()
        self._positions = {k: float(v) for k, v in (initial_positions or {}).items()}
        self._cond = threading.Condition()
        self._status: dict[str, BrokerOrder | None] = {}  # answers to OrderStatusRequest
        self._cancel_rejects: dict[str, str] = {}
        self._cancel_ids = itertools.count(1)

    def connect(self) -> FixBroker:
        self.session.connect()
        return self

    # -- application messages -----------------------------------------------------------------
    def _on_app_message(self, msg: simplefix.FixMessage) -> None:
        msg_type = _text(msg, 35)
        with self._cond:
            if msg_type == "8":
                self._execution_report(msg)
            elif msg_type == "9":
                orig = _text(msg, 41)
                self._cancel_rejects[orig] = _text(msg, 58, "cancel rejected")
            elif msg_type == "j":
                ref = _text(msg, 379)
                if ref:
                    self._status[ref] = None
            self._cond.notify_all()

    def _execution_report(self, msg: simplefix.FixMessage) -> None:
        # Read every field first: a garbled report raises here, before any state changes.
        exec_type = _text(msg, 150)
        coid = _text(msg, 41) if exec_type in ("4", "6") and msg.get(41) else _text(msg, 11)
        status = ORD_STATUS.get(_text(msg, 39), "accepted")
        quantity, cum, avg = _float(msg, 38), _float(msg, 14), _float(msg, 6)
        last_qty, last_px, fee = _float(msg, 32), _float(msg, 31), _float(msg, 12)
        limit, stop = _float(msg, 44), _float(msg, 99)
        when = _sending_time_ns(msg)
        if not coid:
            raise ValueError("execution report without ClOrdID")
        if exec_type == "I" and _text(msg, 37) in ("", "NONE") and status == "rejected":
            self._status[coid] = None  # the venue does not know the id
            return
        order = self._orders.get(coid)
        if order is None:
            order = BrokerOrder(
                client_order_id=coid, symbol=_text(msg, 55),
                side=SIDE_NAME.get(_text(msg, 54), "buy"), quantity=quantity,
                order_type=ORD_TYPE_NAME.get(_text(msg, 40), "market"),
                limit_price=limit or None, stop_price=stop or None,
                tif=TIF_NAME.get(_text(msg, 59), "DAY"))
            self._orders[coid] = order
        order.broker_order_id = _text(msg, 37) or order.broker_order_id
        order.filled_quantity = cum
        order.average_price = avg or order.average_price
        order.timestamp = when
        if status == "rejected" or exec_type == "8":
            order.status = "rejected"
            order.reason = _text(msg, 58, "rejected")
        elif order.status not in ("filled", "cancelled", "rejected") or exec_type == "I":
            order.status = status
        if exec_type == "4":
            order.reason = _text(msg, 58, "cancelled")
        if exec_type in ("F", "1", "2") and last_qty > 0:
            exec_id = _text(msg, 17)
            if exec_id not in self._fill_ids:
                self._fill_ids.add(exec_id)
                fill = BrokerFill(
                    fill_id=exec_id, client_order_id=coid, symbol=order.symbol,
                    side=order.side, quantity=last_qty, price=last_px, fee=fee,
                    fee_currency=_text(msg, 479), timestamp=when,
                    broker_order_id=order.broker_order_id)
                self._fills.append(fill)
                self._positions[order.symbol] = (self._positions.get(order.symbol, 0.0)
                                                 + fill.signed_quantity)
        if exec_type == "I":
            self._status[coid] = order

    def _wait(self, predicate: Callable[[], Any], what: str) -> Any:
        with self._cond:
            ok = self._cond.wait_for(predicate, timeout=self.answer_timeout)
        if not ok:
            raise BrokerUnavailable(f"no FIX answer to {what} within {self.answer_timeout} s")
        return ok

    # -- the adapter --------------------------------------------------------------------------
    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        with self._cond:
            if client_order_id in self._orders:
                return self._orders[client_order_id]
            self._status.pop(client_order_id, None)
        msg = self.session.new_message("H")
        msg.append_pair(11, client_order_id)
        msg.append_pair(790, client_order_id)  # OrdStatusReqID
        self.session.send(msg)
        self._wait(lambda: client_order_id in self._status, "OrderStatusRequest")
        with self._cond:
            return self._status.pop(client_order_id)

    def place_order(self, client_order_id: str, symbol: str, side: str, quantity: float,
                    order_type: str = "market", limit_price: float | None = None,
                    stop_price: float | None = None, tif: str = "GTC") -> BrokerOrder:
        validate_order(symbol, side, quantity, order_type, limit_price, stop_price, tif)
        with self._cond:
            known = self._orders.get(client_order_id)
        if known is not None:
            return known
        if self.lookup_before_send:
            known = self.get_order(client_order_id)
            if known is not None:
                return known
        msg = self.session.new_message("D")
        msg.append_pair(11, client_order_id)
        if self.account:
            msg.append_pair(1, self.account)
        msg.append_pair(21, "1")  # automated execution, no broker intervention
        msg.append_pair(55, symbol)
        msg.append_pair(54, SIDE[side])
        msg.append_utc_timestamp(60, precision=3)
        msg.append_pair(38, _fmt(quantity))
        msg.append_pair(40, ORD_TYPE[order_type])
        if limit_price is not None:
            msg.append_pair(44, _fmt(limit_price))
        if stop_price is not None:
            msg.append_pair(99, _fmt(stop_price))
        msg.append_pair(59, TIF[tif])
        self.session.send(msg)
        self._wait(lambda: client_order_id in self._orders, "NewOrderSingle")
        with self._cond:
            order = self._orders[client_order_id]
        if order.status == "rejected":
            raise OrderRejected(order.reason)
        return order

    def cancel_order(self, client_order_id: str) -> BrokerOrder:
        with self._cond:
            order = self._orders.get(client_order_id)
        if order is None:
            raise OrderRejected(f"unknown order {client_order_id!r}")
        if not order.is_open:
            return order
        msg = self.session.new_message("F")
        msg.append_pair(11, f"{client_order_id}-c{next(self._cancel_ids)}")
        msg.append_pair(41, client_order_id)
        msg.append_pair(55, order.symbol)
        msg.append_pair(54, SIDE[order.side])
        msg.append_utc_timestamp(60, precision=3)
        msg.append_pair(38, _fmt(order.quantity))
        self.session.send(msg)
        self._wait(lambda: not order.is_open or client_order_id in self._cancel_rejects,
                   "OrderCancelRequest")
        with self._cond:
            reason = self._cancel_rejects.pop(client_order_id, None)
        if reason is not None and order.is_open:
            raise OrderRejected(f"cancel refused: {reason}")
        return order

    def open_orders(self) -> list[BrokerOrder]:
        with self._cond:
            return [o for o in self._orders.values() if o.is_open]

    def balances(self) -> dict[str, float]:
        raise BrokerError("this FIX 4.4 profile carries no balances; read them from the "
                          "venue's account API")

    def positions(self) -> dict[str, float]:
        with self._cond:
            return {k: v for k, v in self._positions.items() if v != 0.0}

    def fills(self, since: int | None = None) -> list[BrokerFill]:
        with self._cond:
            return [f for f in self._fills if since is None or f.timestamp >= since]

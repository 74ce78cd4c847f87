"""A FIX 4.4 acceptor for tests: a socket server in a thread speaking simplefix.

It answers Logon, answers TestRequests with Heartbeats, keeps its own sequence numbers and a
store of what it sent (resending on ResendRequest with PossDupFlag, gap-filling what it never
sent), and plays a venue: a NewOrderSingle is acknowledged and then, per `mode`, filled in two
executions ("fill": half then the rest), left working ("rest"), refused ("reject"), or
answered with an unreadable report ("garble");
OrderCancelRequest cancels a working order or is refused with OrderCancelReject; an
OrderStatusRequest is answered with the order's state, or "unknown order". `skip_next()` makes
the next outgoing message skip a sequence number, to provoke the initiator's resend request.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Any

import simplefix


def _t(msg: simplefix.FixMessage, tag: int) -> str:
    v = msg.get(tag)
    return "" if v is None else v.decode()


class FixAcceptor:
    def __init__(self, *, sender: str = "VENUE", target: str = "NEXOW", mode: str = "fill",
                 fill_price: float = 100.0, answer_test_requests: bool = True) -> None:
        self.sender, self.target = sender, target
        self.mode, self.fill_price = mode, fill_price
        self.answer_test_requests = answer_test_requests
        self.reject_reason = "Order exceeds limit"
        self.received: list[simplefix.FixMessage] = []
        self.store: dict[int, simplefix.FixMessage] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.next_out = 1
        self.expected_in = 1
        self._skip = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.port = self._srv.getsockname()[1]
        self._conn: socket.socket | None = None
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    # -- control ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        for s in (self._conn, self._srv):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def skip_next(self, n: int = 1) -> None:
        self._skip += n

    def types_received(self) -> list[str]:
        return [_t(m, 35) for m in self.received]

    def wait_for(self, msg_type: str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [m for m in self.received if _t(m, 35) == msg_type]
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"no {count} x 35={msg_type} received; got {self.types_received()}")

    # -- sending ------------------------------------------------------------------------------
    def send(self, msg_type: str, pairs: list[tuple[int, Any]], *, seq: int | None = None,
             poss_dup: bool = False) -> None:
        with self._lock:
            if seq is None:
                self.next_out += self._skip
                self._skip = 0
                seq = self.next_out
                self.next_out += 1
            msg = simplefix.FixMessage()
            msg.append_pair(8, "FIX.4.4", header=True)
            msg.append_pair(35, msg_type, header=True)
            msg.append_pair(49, self.sender, header=True)
            msg.append_pair(56, self.target, header=True)
            msg.append_pair(34, seq, header=True)
            if poss_dup:
                msg.append_pair(43, "Y", header=True)
            msg.append_utc_timestamp(52, precision=3, header=True)
            for tag, value in pairs:
                msg.append_pair(tag, value)
            if not poss_dup:
                self.store[seq] = (msg_type, pairs)
            if self._conn is not None and not self._stop.is_set():
                try:
                    self._conn.sendall(msg.encode())
                except OSError:  # the test ended and closed the socket under us
                    pass

    def _report(self, order: dict[str, Any], exec_type: str, *, last_qty: float = 0.0,
                text: str = "", coid: str | None = None, orig: str | None = None) -> None:
        pairs: list[tuple[int, Any]] = [
            (37, order["order_id"]), (11, coid or order["coid"]), (17, f"E{next(self._ids)}"),
            (150, exec_type), (39, order["status"]), (55, order["symbol"]),
            (54, order["side"]), (38, order["qty"]), (40, order["type"]),
            (14, order["cum"]), (151, order["qty"] - order["cum"]),
            (6, self.fill_price if order["cum"] else 0)]
        if orig:
            pairs.append((41, orig))
        if last_qty:
            pairs += [(32, last_qty), (31, self.fill_price), (12, round(last_qty * 0.01, 8)),
                      (479, "USD")]
        if text:
            pairs.append((58, text))
        self.send("8", pairs)

    # -- receiving ----------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            self._conn, _ = self._srv.accept()
        except OSError:
            return
        parser = simplefix.FixParser()
        self._conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = self._conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            parser.append_buffer(data)
            while (msg := parser.get_message()) is not None:
                with self._lock:
                    self.received.append(msg)
                    self._handle(msg)

    def _handle(self, msg: simplefix.FixMessage) -> None:
        kind = _t(msg, 35)
        seq = int(_t(msg, 34))
        if kind == "A" and _t(msg, 141) == "Y":
            self.expected_in = 1
            self.next_out = 1
        self.expected_in = max(self.expected_in, seq + 1)
        if kind == "A":
            self.send("A", [(98, 0), (108, _t(msg, 108))])
        elif kind == "1" and self.answer_test_requests:
            self.send("0", [(112, _t(msg, 112))])
        elif kind == "2":
            begin = int(_t(msg, 7))
            end = self.next_out - 1
            s = begin
            while s <= end:
                if s in self.store and self.store[s][0] not in ("0", "1", "A", "2", "4", "5"):
                    mtype, pairs = self.store[s]
                    self.send(mtype, pairs, seq=s, poss_dup=True)
                    s += 1
                else:  # admin messages and numbers never sent are gap-filled
                    nxt = s
                    while nxt <= end and not (nxt in self.store and self.store[nxt][0] not in (
                            "0", "1", "A", "2", "4", "5")):
                        nxt += 1
                    self.send("4", [(123, "Y"), (36, nxt)], seq=s, poss_dup=True)
                    s = nxt
        elif kind == "5":
            self.send("5", [])
        elif kind == "D":
            self._new_order(msg)
        elif kind == "F":
            orig = _t(msg, 41)
            order = self.orders.get(orig)
            if order is None or order["status"] in ("2", "4", "8"):
                self.send("9", [(37, order["order_id"] if order else "NONE"), (11, _t(msg, 11)),
                                (41, orig), (39, order["status"] if order else "8"),
                                (434, 1), (102, 0 if order else 1),
                                (58, "Too late to cancel" if order else "Unknown order")])
                return
            order["status"] = "4"
            self._report(order, "4", coid=_t(msg, 11), orig=orig)
        elif kind == "H":
            coid = _t(msg, 11)
            order = self.orders.get(coid)
            if order is None:
                self.send("8", [(37, "NONE"), (11, coid), (17, f"E{next(self._ids)}"),
                                (150, "I"), (39, "8"), (55, _t(msg, 55) or "?"), (54, "1"),
                                (14, 0), (151, 0), (6, 0), (58, "Unknown order")])
            else:
                self._report(order, "I")

    def _new_order(self, msg: simplefix.FixMessage) -> None:
        coid = _t(msg, 11)
        qty = float(_t(msg, 38))
        order = {"coid": coid, "order_id": f"V{next(self._ids)}", "symbol": _t(msg, 55),
                 "side": _t(msg, 54), "qty": qty, "type": _t(msg, 40), "cum": 0.0,
                 "status": "0"}
        if self.mode == "reject":
            order["status"] = "8"
            self.orders[coid] = order
            self._report(order, "8", text=self.reject_reason)
            return
        self.orders[coid] = order
        if self.mode == "garble":  # an acknowledgement whose quantities are not numbers
            self.send("8", [(37, order["order_id"]), (11, coid), (17, "E0"), (150, "F"),
                            (39, "2"), (55, order["symbol"]), (54, order["side"]),
                            (38, "ten"), (14, "ten"), (32, "ten"), (31, "1OO")])
            return
        self._report(order, "0")
        if self.mode == "fill":
            half = qty / 2
            order["cum"] = half
            order["status"] = "1"
            self._report(order, "F", last_qty=half)
            order["cum"] = qty
            order["status"] = "2"
            self._report(order, "F", last_qty=qty - half)

"""The order manager of live and paper deployments: order states, ids, risk gate, reconciliation.

Every order a deployment sends goes through `OrderManager.submit`, which

1. derives the client order id from (deployment id, decision timestamp, leg) — a re-delivered
   "advance" task regenerates the same id, and the broker adapters are idempotent on it, so a
   step replayed after a crash never sends an order twice;
2. asks the risk `PreTradeCheck` (the rulebook) and records a refusal, with its reason, as a
   rejected order that never reaches the broker;
3. sends it and follows the broker's answer through the state machine

       new -> accepted -> partially_filled -> filled | cancelled | rejected

   (`new` also goes straight to `rejected`; any other move raises `IllegalTransition`).

Positions are never taken from an order's answer, only from fills, so a rejected or unreadable
answer cannot create a position. `reconcile` runs after a restart: the broker wins, and every
difference from the local books comes back as a human-readable log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trading.brokers.base import (
    OPEN_STATUSES,
    BrokerAdapter,
    BrokerError,
    BrokerFill,
    BrokerOrder,
    MalformedResponse,
    OrderRejected,
)
from trading.engine.hooks import OrderIntent, PortfolioSnapshot, PreTradeCheck

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"partially_filled", "filled", "cancelled", "rejected"}),
    "partially_filled": frozenset({"partially_filled", "filled", "cancelled"}),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
}
# The legal path from `new` towards each status, used to follow a broker that reports a later
# state at once (a market order often comes back already filled).
_PATH = {
    "new": ("new",),
    "accepted": ("new", "accepted"),
    "partially_filled": ("new", "accepted", "partially_filled"),
    "filled": ("new", "accepted", "filled"),
    "cancelled": ("new", "accepted", "cancelled"),
    "rejected": ("new", "rejected"),
}
_QTY_EPS = 1e-9


class IllegalTransition(ValueError):
    def __init__(self, client_order_id: str, old: str, new: str) -> None:
        super().__init__(f"order {client_order_id}: illegal transition {old} -> {new}")
        self.client_order_id, self.old, self.new = client_order_id, old, new


def deployment_prefix(deployment_id: str | int) -> str:
    """The start shared by every client order id of one deployment, so its orders can be told
    apart in an account that other deployments use too."""
    return "nx-" + hashlib.sha256(f"{deployment_id}".encode()).hexdigest()[:8] + "-"


def client_order_id(deployment_id: str | int, decision_timestamp: int, leg: int | str) -> str:
    """A deterministic id that fits every venue (Binance allows 36 characters of
    `[A-Za-z0-9._:/-]`; IB's orderRef and FIX ClOrdID are wider): the deployment's prefix
    and 96 bits of a hash of (deployment, decision timestamp, leg)."""
    key = f"{deployment_id}|{int(decision_timestamp)}|{leg}".encode()
    return deployment_prefix(deployment_id) + hashlib.sha256(key).hexdigest()[:24]


@dataclass(slots=True)
class ManagedOrder:
    """The deployment's record of one order."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    order_type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "GTC"
    decision_timestamp: int = 0
    leg: str = "0"
    status: str = "new"
    filled_quantity: float = 0.0
    average_price: float | None = None
    broker_order_id: str = ""
    reason: str = ""
    history: list[str] = field(default_factory=lambda: ["new"])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def move(self, status: str) -> None:
        """One step of the state machine (raises `IllegalTransition`)."""
        if status == self.status and status != "partially_filled":
            return
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.client_order_id, self.status, status)
        self.status = status
        self.history.append(status)

    def advance_to(self, status: str) -> None:
        """Follow the legal path to `status`, skipping steps the broker did not report."""
        if status == self.status:
            return
        path = _PATH[status]
        start = path.index(self.status) + 1 if self.status in path else len(path) - 1
        for step in path[start:]:
            self.move(step)

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies recursively and dominates a live step
        d = {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]
        d["history"] = list(self.history)
        return d

    def copy(self) -> ManagedOrder:
        c = ManagedOrder(*[getattr(self, f) for f in self.__slots__])  # type: ignore[attr-defined]
        c.history = list(self.history)
        return c

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManagedOrder:
        return cls(**{**data, "history": list(data.get("history", ()))})


@dataclass(frozen=True, slots=True)
class Refusal:
    client_order_id: str
    symbol: str
    rule: str
    reason: str
    halt: bool = False


class OrderManager:
    """The orders of one deployment and the path of each one to the broker."""

    def __init__(self, deployment_id: str | int, broker: BrokerAdapter,
                 checker: PreTradeCheck | None = None,
                 orders: Mapping[str, ManagedOrder] | None = None) -> None:
        self.deployment_id = deployment_id
        self.broker = broker
        self.checker = checker
        self.orders: dict[str, ManagedOrder] = dict(orders or {})
        self.refusals: list[Refusal] = []

    def open_orders(self, symbol: str | None = None) -> list[ManagedOrder]:
        return [o for o in self.orders.values()
                if o.is_open and (symbol is None or o.symbol == symbol)]

    def submit(self, intent: OrderIntent, snapshot: PortfolioSnapshot | None, *,
               leg: int | str = 0, limit_price: float | None = None,
               stop_price: float | None = None, tif: str = "GTC") -> ManagedOrder:
        """Check and send one order decided at `intent.timestamp` (see the module doc)."""
        coid = client_order_id(self.deployment_id, intent.timestamp, leg)
        order = self.orders.get(coid)
        if order is not None and order.status != "new":
            return order  # this decision was already handled
        if order is None:
            order = ManagedOrder(
                client_order_id=coid, symbol=intent.symbol,
                side="buy" if intent.side > 0 else "sell", quantity=float(intent.quantity),
                order_type=intent.order_type, limit_price=limit_price, stop_price=stop_price,
                tif=tif, decision_timestamp=int(intent.timestamp), leg=str(leg))
            self.orders[coid] = order
        if self.checker is not None and snapshot is not None:
            refusal = self.checker.check(intent, snapshot)
            if refusal is not None:
                order.reason = f"risk {refusal.rule}: {refusal.reason}"
                order.move("rejected")
                self.refusals.append(Refusal(coid, intent.symbol, refusal.rule, refusal.reason,
                                             refusal.halt))
                return order
        self._send(order)
        return order

    def _send(self, order: ManagedOrder) -> None:
        try:
            answer = self.broker.place_order(
                order.client_order_id, order.symbol, order.side, order.quantity,
                order.order_type, order.limit_price, order.stop_price, order.tif)
        except OrderRejected as exc:
            order.reason = f"broker: {exc}"
            order.move("rejected")
            return
        except MalformedResponse as exc:
            # The order may or may not exist at the broker: stay `new` and look it up by its
            # client id at the next step (`refresh`), never guess.
            order.reason = f"unknown outcome: {exc}"
            return
        except BrokerError as exc:
            order.reason = f"not sent: {exc}"
            return
        self.apply_order(answer)

    def settle_unsent(self, *, resend: bool = False) -> list[ManagedOrder]:
        """Orders left `new` by a failure: look each up by client id and adopt the broker's
        answer. One the broker has never seen is sent now when `resend`, else rejected (a
        decision taken for an earlier bar is stale)."""
        touched = []
        for order in [o for o in self.orders.values() if o.status == "new"]:
            try:
                known = self.broker.get_order(order.client_order_id)
            except BrokerError as exc:
                order.reason = f"lookup failed: {exc}"
                continue
            if known is not None:
                self.apply_order(known)
            elif resend:
                self._send(order)
            else:
                order.reason = f"never sent ({order.reason or 'broker unavailable'}); stale now"
                order.move("rejected")
            touched.append(order)
        return touched

    def cancel(self, client_order_id: str) -> ManagedOrder:
        order = self.orders[client_order_id]
        if not order.is_open:
            return order
        if order.status == "new":
            # its send may have reached the broker even though the answer did not reach us
            known = self.broker.get_order(client_order_id)
            if known is None:
                order.reason = "cancelled before it was sent"
                order.move("rejected")
                return order
            self.apply_order(known)
            if not order.is_open:
                return order
        self.apply_order(self.broker.cancel_order(client_order_id))
        return order

    def apply_order(self, answer: BrokerOrder) -> ManagedOrder | None:
        """Move the local order to the broker's status. Quantities are counted from fills
        only (`apply_fill`), so an answer and its fills are never counted twice."""
        order = self.orders.get(answer.client_order_id)
        if order is None:
            return None
        if answer.broker_order_id:
            order.broker_order_id = answer.broker_order_id
        if answer.reason:
            order.reason = answer.reason
        status = answer.status
        if status == "partially_filled" and order.status == "partially_filled":
            return order
        if order.status not in OPEN_STATUSES:
            return order  # a finished order never reopens
        order.advance_to(status)
        return order

    def apply_fill(self, fill: BrokerFill) -> ManagedOrder | None:
        """Count one execution against its order (the deployment's positions are built from
        the same fills by the caller)."""
        order = self.orders.get(fill.client_order_id)
        if order is None:
            return None
        done = order.filled_quantity
        if fill.quantity > 0:
            order.average_price = fill.price if not done else (
                (order.average_price or 0.0) * done + fill.price * fill.quantity
            ) / (done + fill.quantity)
            order.filled_quantity = done + fill.quantity
        if order.is_open:
            full = order.filled_quantity >= order.quantity * (1 - _QTY_EPS)
            order.advance_to("filled" if full else "partially_filled")
        return order

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"orders": [o.to_dict() for o in self.orders.values()]}

    @staticmethod
    def orders_from_state(state: Mapping[str, Any]) -> dict[str, ManagedOrder]:
        return {o["client_order_id"]: ManagedOrder.from_dict(o) for o in state.get("orders", ())}


def _qty(x: float) -> str:
    text = f"{x:,.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(slots=True)
class Reconciliation:
    orders: dict[str, ManagedOrder]
    positions: dict[str, float]
    log: list[str]


def reconcile(local_orders: Mapping[str, ManagedOrder], local_positions: Mapping[str, float],
              broker_open_orders: Iterable[BrokerOrder], broker_positions: Mapping[str, float],
              lookup: Callable[[str], BrokerOrder | None] | None = None) -> Reconciliation:
    """Align the local books with the broker after a restart; the broker wins.

    `lookup(client_order_id) -> BrokerOrder | None` (usually `broker.get_order`) settles local
    open orders that the broker no longer lists as open; without it they are taken as cancelled.
    Returns the corrected orders and positions and one log line per difference.
    """
    orders = {k: v.copy() for k, v in local_orders.items()}
    log: list[str] = []
    remote = {o.client_order_id: o for o in broker_open_orders}
    for coid, answer in remote.items():
        order = orders.get(coid)
        if order is None:
            orders[coid] = ManagedOrder(
                client_order_id=coid, symbol=answer.symbol, side=answer.side,
                quantity=answer.quantity, order_type=answer.order_type,
                limit_price=answer.limit_price, stop_price=answer.stop_price, tif=answer.tif,
                status="new", broker_order_id=answer.broker_order_id,
                reason="adopted from the broker")
            orders[coid].advance_to(answer.status)
            orders[coid].filled_quantity = answer.filled_quantity
            log.append(f"order {coid} ({answer.side} {_qty(answer.quantity)} {answer.symbol}) is "
                       f"open at the broker but was unknown locally: adopted as {answer.status}")
            continue
        _settle(order, answer, log)
    for coid, order in orders.items():
        if not order.is_open or coid in remote:
            continue
        found: BrokerOrder | None = lookup(coid) if lookup is not None else None
        if found is None:
            if order.status == "new":
                log.append(f"order {coid} ({order.side} {_qty(order.quantity)} {order.symbol}) "
                           "never reached the broker: marked rejected")
                order.reason = "never reached the broker"
                order.advance_to("rejected")
            else:
                log.append(f"order {coid} ({order.side} {_qty(order.quantity)} {order.symbol}) "
                           f"was {order.status} locally but is unknown to the broker: "
                           "marked cancelled")
                order.reason = "unknown to the broker at reconciliation"
                order.advance_to("cancelled")
            continue
        _settle(order, found, log)
    positions: dict[str, float] = {}
    for symbol in sorted(set(local_positions) | set(broker_positions)):
        mine = float(local_positions.get(symbol, 0.0))
        theirs = float(broker_positions.get(symbol, 0.0))
        if abs(mine - theirs) > _QTY_EPS * max(1.0, abs(theirs)):
            log.append(f"position {symbol}: local {_qty(mine)}, broker {_qty(theirs)}: "
                       f"set to {_qty(theirs)}")
        if theirs != 0.0:
            positions[symbol] = theirs
    return Reconciliation(orders, positions, log)


def _settle(order: ManagedOrder, answer: BrokerOrder, log: list[str]) -> None:
    before = (order.status, order.filled_quantity)
    if answer.filled_quantity != order.filled_quantity:
        order.filled_quantity = answer.filled_quantity
        order.average_price = answer.average_price
    if answer.broker_order_id:
        order.broker_order_id = answer.broker_order_id
    if answer.status != order.status:
        if order.is_open:
            order.advance_to(answer.status)
        else:
            # a finished local order the broker reports otherwise: the broker wins
            order.status = answer.status
            order.history.append(f"{answer.status} (reconciled)")
    if (order.status, order.filled_quantity) != before:
        log.append(f"order {order.client_order_id} ({order.side} {_qty(order.quantity)} "
                   f"{order.symbol}): local {before[0]} with {_qty(before[1])} filled, broker "
                   f"{answer.status} with {_qty(answer.filled_quantity)} filled: updated")

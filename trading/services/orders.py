"""Orders a person places or cancels on a deployment: manual order, cancel, cancel all, flatten.

Each is one transaction on the locked deployment: the saved state and account are loaded, the
order manager acts (a manual order passes the same risk rulebook as the strategy's), and the
state, the orders and the events are saved with an audit entry. A manual order's client id
comes from the deployment, its latest bar and a caller-chosen or random leg, so retrying the
same request with the same ``leg`` cannot send it twice.
"""

from __future__ import annotations

import math
import uuid

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import User
from nexow_site.errors import ApplicationError, Conflict
from trading.engine.hooks import OrderIntent, PortfolioSnapshot
from trading.live_engine import Action, _order_data
from trading.models import Deployment, DeploymentStatus, LiveOrder
from trading.oms import OrderManager
from trading.services.deployments import (
    _last_close,
    _locked,
    cancel_open_orders,
    load_session,
    save_session,
)

ACTIVE = (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED)
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
MAX_VALUE = 1e12  # quantities and prices are stored with 18 integer digits


def _active(deployment: Deployment) -> Deployment:
    dep = _locked(deployment.pk)
    if dep.status not in ACTIVE or not dep.state:
        raise Conflict(f"The deployment is {dep.status}; orders need it running or paused.",
                       code="bad_state")
    return dep


def order_place(*, deployment: Deployment, actor: User | None, symbol: str, side: str,
                quantity: float, order_type: str = "market", limit_price: float | None = None,
                stop_price: float | None = None, leg: str = "", request=None) -> LiveOrder:
    """A manual order on the deployment's account, checked by its risk rulebook."""
    from risk.services import rulebook_for

    if side not in ("buy", "sell"):
        raise ApplicationError("side must be buy or sell.", fields={"side": ["buy or sell."]})
    if order_type not in ORDER_TYPES:
        raise ApplicationError("Unknown order type.", fields={"order_type": list(ORDER_TYPES)})
    for name, value in (("quantity", quantity), ("limit_price", limit_price),
                        ("stop_price", stop_price)):
        if value is not None and not (math.isfinite(value) and 0 < value <= MAX_VALUE):
            raise ApplicationError(f"{name} must be positive.",
                                   fields={name: [f"Greater than 0, at most {MAX_VALUE:g}."]})
    if order_type in ("limit", "stop_limit") and limit_price is None:
        raise ApplicationError("A limit order needs limit_price.",
                               fields={"limit_price": ["Required for this order type."]})
    if order_type in ("stop", "stop_limit") and stop_price is None:
        raise ApplicationError("A stop order needs stop_price.",
                               fields={"stop_price": ["Required for this order type."]})
    with transaction.atomic():
        dep = _active(deployment)
        if symbol not in dep.symbols:
            raise ApplicationError("The deployment does not trade this symbol.",
                                   fields={"symbol": [f"One of {', '.join(dep.symbols)}."]})
        state, broker = load_session(dep)
        ts = state.last_timestamp or 0
        close = _last_close(dep, state)
        prices = {s: float(close[j]) for j, s in enumerate(dep.symbols)}
        ref = limit_price if limit_price is not None else stop_price \
            if stop_price is not None else prices[symbol]
        snapshot = PortfolioSnapshot(
            timestamp=ts, cash=state.cash, equity=state.equity,
            positions={s: p for s, p in state.positions.items() if p},
            prices=prices, day_start_equity=state.day_start_equity,
            peak_equity=max(state.peak_equity, state.equity))
        checker = rulebook_for(organization=dep.organization,
                               strategy=dep.strategy_version.strategy_id, deployment=dep.pk)
        if state.risk_state is not None and hasattr(checker, "restore"):
            checker.restore(state.risk_state)
        oms = OrderManager(state.deployment_id, broker, checker, state.orders)
        intent = OrderIntent(symbol=symbol, side=1 if side == "buy" else -1,
                             quantity=float(quantity), price=float(ref), timestamp=ts,
                             order_type=order_type, strategy="manual")
        order = oms.submit(intent, snapshot, leg=f"manual:{leg or uuid.uuid4().hex}",
                           limit_price=limit_price, stop_price=stop_price)
        state.orders = oms.orders
        kind = "refused" if order.reason.startswith("risk ") else "order"
        save_session(dep, state, broker, [Action(kind, ts, _order_data(order) | {
            "manual": True})])
        audit_record(organization=dep.organization, actor=actor, action="order.placed",
                     target=dep, request=request,
                     metadata={"client_order_id": order.client_order_id, "symbol": symbol,
                               "side": side, "quantity": quantity, "order_type": order_type,
                               "status": order.status, "reason": order.reason})
    return LiveOrder.objects.get(client_order_id=order.client_order_id)


def order_cancel(*, order: LiveOrder, actor: User | None, request=None) -> LiveOrder:
    with transaction.atomic():
        dep = _locked(order.deployment_id)
        if not dep.state:
            raise Conflict("The deployment has not been started.", code="not_started")
        state, broker = load_session(dep)
        managed = state.orders.get(order.client_order_id)
        if managed is None or not managed.is_open:
            raise Conflict(f"The order is {order.status}; only working orders cancel.",
                           code="not_open")
        oms = OrderManager(state.deployment_id, broker, None, state.orders)
        oms.cancel(order.client_order_id)
        state.orders = oms.orders
        save_session(dep, state, broker, [Action("cancel", state.last_timestamp or 0,
                                                 _order_data(managed))])
        audit_record(organization=dep.organization, actor=actor, action="order.cancelled",
                     target=dep, request=request,
                     metadata={"client_order_id": order.client_order_id})
    return LiveOrder.objects.get(pk=order.pk)


def orders_cancel_all(*, deployment: Deployment, actor: User | None, symbol: str | None = None,
                      request=None) -> int:
    with transaction.atomic():
        dep = _locked(deployment.pk)
        cancelled = cancel_open_orders(dep, symbol=symbol, reason="cancel all")
        audit_record(organization=dep.organization, actor=actor, action="order.cancelled_all",
                     target=dep, request=request,
                     metadata={"symbol": symbol or "",
                               "cancelled": [o.client_order_id for o in cancelled]})
    return len(cancelled)


def deployment_flatten(*, deployment: Deployment, actor: User | None,
                       request=None) -> list[LiveOrder]:
    """Cancel every working order and close every position with market orders."""
    with transaction.atomic():
        dep = _active(deployment)
        cancel_open_orders(dep, reason="flatten")
        state = load_session(dep)[0]
        placed = []
        for symbol, qty in sorted(state.positions.items()):
            if qty:
                placed.append(order_place(deployment=dep, actor=actor, symbol=symbol,
                                          side="sell" if qty > 0 else "buy",
                                          quantity=abs(qty), leg=f"flatten:{uuid.uuid4().hex}",
                                          request=request))
        audit_record(organization=dep.organization, actor=actor, action="deployment.flattened",
                     target=dep, request=request,
                     metadata={"orders": [o.client_order_id for o in placed]})
    return placed

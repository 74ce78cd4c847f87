"""Live and paper deployments: their lifecycle, their step, their event log.

A deployment runs one immutable strategy version on one broker account. Every write here is
one transaction that locks the deployment row, checks the tenant, writes its audit entry and
schedules its task and live events on commit. `deployment_advance` is the step the
``trading.advance_deployment`` task calls: it loads the saved `DeploymentState` and the paper
account, feeds `live_engine.advance` the bars that became final since the last step, and saves
state, orders, fills and events in the same transaction — a worker killed mid-step leaves
nothing behind, the re-delivered task re-runs the step, and the deterministic client order ids
(with the brokers' idempotency on them) mean no order is sent twice.

The paper feed is a synthetic random walk aligned to the deployment's bar interval: bar ``k``
starts at ``anchor + k * bar_seconds`` and its move is drawn from a generator seeded with
``(seed, k)``, its open being the previous bar's close, so any worker regenerates the same bar
from the saved state.

Live accounts (ccxt) take the same step with the venue's broker and bars
(`trading.services.venues`): no account blob is saved, the exchange is the truth. A broker
failure inside the step rolls the whole step back and the next tick runs it again; the
deployment is reconciled with the exchange (the broker wins, the differences are logged,
audited and sent as ``deployment.reconciled``) at start and resume, before a stop cancels its
orders, and at the first step after a silence of `RECONCILE_AFTER_BARS` bars (a worker restart,
an outage).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, User
from nexow_site.errors import ApplicationError, Conflict, Forbidden
from trading.brokers.base import BrokerAdapter, BrokerError, BrokerUnavailable, OrderRejected
from trading.brokers.paper import PaperBroker
from trading.engine.hooks import PortfolioSnapshot
from trading.engine.sizing import Sizing
from trading.engine.types import BarSet
from trading.live_engine import (
    Action,
    DeploymentState,
    LiveConfig,
    advance,
    reconcile_deployment,
    warm_up,
)
from trading.models import (
    AccountMode,
    BrokerAccount,
    BrokerKind,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    LiveFill,
    LiveOrder,
    StrategyVersion,
)
from trading.oms import ManagedOrder, OrderManager
from trading.services.events import stream_event_append, stream_event_message
from trading.services.strategies import _commission_slippage, engine_strategy
from trading.services.venues import deployment_bars, is_live, scrub

STREAM_KIND = "deployment"
NS = 10**9
MAX_BARS_PER_STEP = 500  # a step after a long outage catches up in bounded transactions
DEFAULTS: dict[str, Any] = {"cash": 100_000.0, "bar_seconds": 60, "lookback": 200,
                            "warm_bars": 60, "volatility": 0.002, "s0": 100.0}
_K_OFFSET = 1 << 20  # keeps warm-up indices (k < 0) non-negative for the generator's seed
# A live deployment silent for this many bars (and at least RECONCILE_MIN_SECONDS) is
# reconciled with its exchange before its next step: its worker died, or the venue was down.
RECONCILE_AFTER_BARS = 3
RECONCILE_MIN_SECONDS = 30
logger = logging.getLogger("nexow.trading.deployments")


# --- events -------------------------------------------------------------------------------------

def event_message(event: DeploymentEvent, organization_id: int) -> dict[str, Any]:
    return stream_event_message(event, field="deployment", stream_kind=STREAM_KIND,
                                organization_id=organization_id)


def deployment_event_append(*, deployment_id: int, organization_id: int, type: str,
                            payload: dict[str, Any] | None = None) -> DeploymentEvent:
    """Append one event to the deployment's stream; broadcast only once it commits."""
    return stream_event_append(model=DeploymentEvent, field="deployment",  # type: ignore[return-value]
                               object_id=deployment_id, organization_id=organization_id,
                               stream_kind=STREAM_KIND, type=type, payload=payload)


def _event(dep: Deployment, type: str, **payload: Any) -> None:
    deployment_event_append(deployment_id=dep.pk, organization_id=dep.organization_id,
                            type=type, payload=payload)


# --- the paper feed -----------------------------------------------------------------------------

def _config(dep: Deployment) -> dict[str, Any]:
    return {**DEFAULTS, "seed": dep.pk, **(dep.config or {})}


def synthetic_bar(seed: int, k: int, prev_close: np.ndarray, *, volatility: float,
                  decimals: int = 4) -> np.ndarray:
    """Bar ``k`` of the walk as (open, high, low, close, volume) × symbols, from
    ``(seed, k)`` and the previous close alone."""
    rng = np.random.default_rng([int(seed), int(k) + _K_OFFSET])
    s = prev_close.shape[0]
    r = -0.5 * volatility**2 + volatility * rng.standard_normal(s)
    o = prev_close
    c = np.maximum(np.round(o * np.exp(r), decimals), 10.0 ** -decimals)
    wick = volatility / 4
    h = np.maximum(np.round(np.maximum(o, c) * (1 + np.abs(rng.standard_normal(s)) * wick),
                            decimals), np.maximum(o, c))
    lo = np.minimum(np.round(np.minimum(o, c) * (1 - np.abs(rng.standard_normal(s)) * wick),
                             decimals), np.minimum(o, c))
    v = np.floor(rng.lognormal(np.log(1000.0), 0.5, s))
    return np.stack([o, h, lo, c, v])


def synthetic_bars(dep: Deployment, k_from: int, k_to: int, prev_close: np.ndarray
                   ) -> BarSet:
    """Bars ``k_from .. k_to - 1`` of the deployment's feed."""
    cfg = _config(dep)
    step = int(cfg["bar_seconds"]) * NS
    n, s = max(0, k_to - k_from), len(dep.symbols)
    cols = np.empty((5, n, s))
    close = np.asarray(prev_close, dtype=np.float64)
    for i, k in enumerate(range(k_from, k_to)):
        cols[:, i, :] = synthetic_bar(int(cfg["seed"]), k, close,
                                      volatility=float(cfg["volatility"]))
        close = cols[3, i, :]
    ts = np.asarray([dep.feed_anchor_ns + k * step for k in range(k_from, k_to)], dtype=np.int64)
    return BarSet(ts, list(dep.symbols), cols[0], cols[1], cols[2], cols[3], cols[4],
                  tick_size=1e-4)


def _last_close(dep: Deployment, state: DeploymentState) -> np.ndarray:
    if state.ohlcv is not None and state.ohlcv.shape[1]:
        return state.ohlcv[3, -1, :].copy()
    return np.full(len(dep.symbols), float(_config(dep)["s0"]))


def _index_of(dep: Deployment, ts: int) -> int:
    return (ts - dep.feed_anchor_ns) // (int(_config(dep)["bar_seconds"]) * NS)


def latest_final_index(dep: Deployment, now_ns: int) -> int:
    """The newest bar whose interval has passed at `now_ns` (a bar is final once it ends)."""
    step = int(_config(dep)["bar_seconds"]) * NS
    return (now_ns - dep.feed_anchor_ns) // step - 1


# --- state and broker ---------------------------------------------------------------------------

def _new_state(dep: Deployment) -> DeploymentState:
    cfg = _config(dep)
    version = dep.strategy_version
    commission, _ = _commission_slippage(version.costs or {})
    config = LiveConfig(cash=float(cfg["cash"]), sizing=Sizing(**(version.sizing or {})),
                        fee_rate=commission.rate, lookback=int(cfg["lookback"]))
    return DeploymentState.new(dep.pk, list(dep.symbols), config,
                               strategy=engine_strategy(version))


def _new_broker(dep: Deployment) -> BrokerAdapter:
    if is_live(dep):
        from trading.services.venues import deployment_broker

        return deployment_broker(dep)
    commission, slippage = _commission_slippage(dep.strategy_version.costs or {})
    return PaperBroker(list(dep.symbols), cash=float(_config(dep)["cash"]),
                       commission=commission, slippage=slippage)


def load_session(dep: Deployment) -> tuple[DeploymentState, BrokerAdapter]:
    """The saved state and the broker of a started deployment."""
    if not dep.state:
        raise Conflict("The deployment has not been started.", code="not_started")
    state = DeploymentState.from_json(dep.state)
    if dep.broker_account.kind == BrokerKind.PAPER:
        broker: BrokerAdapter = (PaperBroker.from_state(json.loads(dep.broker_state))
                                 if dep.broker_state else _new_broker(dep))
    else:
        broker = _new_broker(dep)
    return state, broker


def save_session(dep: Deployment, state: DeploymentState, broker: BrokerAdapter,
                 actions: list[Action]) -> None:
    """Persist the state, the account and what the actions did (inside the caller's
    transaction, with `dep` locked)."""
    dep.state = state.to_json()
    if isinstance(broker, PaperBroker):
        dep.broker_state = json.dumps(broker.state(), separators=(",", ":"))
    dep.last_bar_ts = state.last_timestamp
    dep.equity, dep.cash = _dec(state.equity), _dec(state.cash)
    dep.heartbeat_at = timezone.now()
    dep.save(update_fields=["state", "broker_state", "last_bar_ts", "equity", "cash",
                            "heartbeat_at"])
    _store_orders(dep, state.orders.values())
    for action in actions:
        if action.kind == "fill":
            _store_fill(dep, action.data)
        _event(dep, f"deployment.{action.kind}", ts=action.timestamp, **action.data)


def _dec(x: float | None) -> Decimal | None:
    """The engine's float as stored (``Decimal(str(x))``); an unset or non-finite one as NULL."""
    return None if x is None or not math.isfinite(x) else Decimal(str(x))


def _store_orders(dep: Deployment, orders: Any) -> None:
    now = timezone.now()
    for o in orders:
        fields = {"symbol": o.symbol, "side": o.side, "quantity": _dec(o.quantity),
                  "order_type": o.order_type, "limit_price": _dec(o.limit_price),
                  "stop_price": _dec(o.stop_price), "status": o.status,
                  "filled_quantity": _dec(o.filled_quantity),
                  "average_price": _dec(o.average_price),
                  "broker_order_id": o.broker_order_id, "leg": o.leg[:80],
                  "reason": o.reason, "decision_ts": o.decision_timestamp, "updated_at": now}
        LiveOrder.objects.update_or_create(
            client_order_id=o.client_order_id,
            defaults=fields, create_defaults={**fields, "organization_id": dep.organization_id,
                                              "deployment_id": dep.pk})


def _store_fill(dep: Deployment, f: dict[str, Any]) -> None:
    LiveFill.objects.get_or_create(
        deployment_id=dep.pk, fill_id=f["fill_id"],
        defaults={"organization_id": dep.organization_id,
                  "client_order_id": f["client_order_id"], "symbol": f["symbol"],
                  "side": f["side"], "quantity": _dec(f["quantity"]),
                  "price": _dec(f["price"]), "fee": _dec(f.get("fee") or 0.0),
                  "fee_currency": f.get("fee_currency", ""),
                  "ts": f["timestamp"]})


def _locked(deployment_id: int) -> Deployment:
    return (Deployment.objects.select_for_update()
            .select_related("strategy_version__strategy", "broker_account")
            .get(pk=deployment_id))


# --- live accounts: failures, credentials, reconciliation ---------------------------------------

def _broker_failure(dep: Deployment, exc: BrokerError) -> ApplicationError:
    """The API's answer to a venue failing during a lifecycle change (nothing was changed):
    a 503 to retry while it is down, a 422 when it refused (bad keys, permissions)."""
    text = scrub(str(exc), dep.broker_account)[:300]
    if isinstance(exc, OrderRejected):
        return ApplicationError(f"The exchange refused: {text}", code="broker_refused",
                                status_code=422)
    return ApplicationError(f"The exchange is unavailable; try again. ({text})",
                            code="broker_unavailable", status_code=503,
                            headers={"Retry-After": "30"} if isinstance(
                                exc, BrokerUnavailable) else None)


def _credentials_used(dep: Deployment, *, purpose: str, actor: User | None,
                      request=None) -> None:
    """Audit a use of the account's credentials by a lifecycle change (the steps in between
    use them too, under the deployment's running status; they are not audited one by one)."""
    if not is_live(dep):
        return
    account = dep.broker_account
    audit_record(organization=dep.organization, actor=actor,
                 action="broker_account.credentials_used", target=account, request=request,
                 metadata={"deployment": dep.pk, "purpose": purpose, "kind": account.kind,
                           "mode": account.mode})


def _reconcile_locked(dep: Deployment, state: DeploymentState, broker: BrokerAdapter, *,
                      reason: str, actor: User | None = None, request=None,
                      always_record: bool = False) -> tuple[DeploymentState, list[Action]]:
    """Align a live deployment's orders (and, on a dedicated account, positions) with the
    exchange; the exchange wins. Each difference goes to the log, and — when there is one, or
    `always_record` — to an audit entry and a ``deployment.reconciled`` event.

    The fills of the deployment's known orders are taken in first (they move cash as well as
    positions), so only what the fills do not explain is a difference. On a dedicated account
    the exchange's holdings then become the positions and every fill it lists is marked seen:
    a fill already in those holdings is never counted a second time. Returns the new state
    and the fill actions to save with it."""
    from trading.live_engine import _sync
    from trading.services.venues import account_is_dedicated

    dedicated = account_is_dedicated(dep)
    caught = state.copy()
    oms = OrderManager(caught.deployment_id, broker, None, caught.orders)
    actions: list[Action] = []
    _sync(caught, oms, broker, caught.last_timestamp or 0, actions)
    caught.orders = oms.orders
    new, differences = reconcile_deployment(caught, broker, account_is_dedicated=dedicated)
    if dedicated:
        listed = broker.fills(new.fill_cursor)
        if listed:
            newest = max(f.timestamp for f in listed)
            seen = set(new.seen_fills) if new.fill_cursor == newest else set()
            new.fill_cursor = newest
            new.seen_fills = sorted(seen | {f.fill_id for f in listed
                                            if f.timestamp == newest})
    logger.info("deployment %s reconciled (%s): %s", dep.pk, reason,
                json.dumps(differences) if differences else "no differences",
                extra={"deployment_id": dep.pk, "organization_id": dep.organization_id,
                       "reason": reason, "differences": differences})
    if differences or always_record:
        audit_record(organization=dep.organization, actor=actor, action="deployment.reconciled",
                     target=dep, request=request,
                     metadata={"reason": reason, "differences": differences})
        _event(dep, "deployment.reconciled", reason=reason, differences=differences,
               positions=new.positions)
    return new, actions


def _needs_reconcile(dep: Deployment) -> bool:
    if not is_live(dep):
        return False  # the paper account is saved with the deployment: nothing can drift
    if dep.heartbeat_at is None:
        return True
    quiet = (timezone.now() - dep.heartbeat_at).total_seconds()
    return quiet > max(RECONCILE_AFTER_BARS * int(_config(dep)["bar_seconds"]),
                       RECONCILE_MIN_SECONDS)


# --- lifecycle ----------------------------------------------------------------------------------

def broker_account_create(*, organization: Organization, actor: User | None, name: str,
                          kind: str, mode: str, credentials: dict[str, Any] | None = None,
                          options: dict[str, Any] | None = None,
                          request=None) -> BrokerAccount:
    from trading.crypto import credentials_hint, encrypt_credentials

    if kind == BrokerKind.PAPER and mode != AccountMode.PAPER:
        raise ApplicationError("A paper account trades in paper mode.",
                               fields={"mode": ["A paper account is always in paper mode."]})
    with transaction.atomic():
        if BrokerAccount.objects.filter(organization=organization, name=name).exists():
            raise Conflict("A broker account with this name exists.", code="duplicate_name")
        account = BrokerAccount(organization=organization, name=name, kind=kind, mode=mode,
                                options=dict(options or {}), created_by=actor)
        if credentials:
            account.credentials_encrypted = encrypt_credentials(credentials)
            account.credentials_hint = credentials_hint(credentials)
        account.full_clean()
        account.save()
        audit_record(organization=organization, actor=actor, action="broker_account.created",
                     target=account, request=request,
                     metadata={"kind": kind, "mode": mode, "has_credentials": bool(credentials)})
    return account


def broker_account_update(*, account: BrokerAccount, actor: User | None, request=None,
                          **changes: Any) -> BrokerAccount:
    from trading.crypto import credentials_hint, encrypt_credentials

    with transaction.atomic():
        account = BrokerAccount.objects.select_for_update().get(pk=account.pk)
        changed = []
        if "name" in changes and changes["name"] != account.name:
            if BrokerAccount.objects.filter(organization_id=account.organization_id,
                                            name=changes["name"]).exists():
                raise Conflict("A broker account with this name exists.", code="duplicate_name")
            account.name = changes["name"]
            changed.append("name")
        if "options" in changes and dict(changes["options"] or {}) != account.options:
            # The options say which venue and network the deployments trade on: changing them
            # under a deployment would move it to another venue with the old state.
            if account.deployments.exclude(status=DeploymentStatus.STOPPED).exists():
                raise Conflict("The account's options cannot change while a deployment uses "
                               "it; stop its deployments first.", code="in_use")
            account.options = dict(changes["options"] or {})
            changed.append("options")
        if changes.get("credentials"):
            account.credentials_encrypted = encrypt_credentials(changes["credentials"])
            account.credentials_hint = credentials_hint(changes["credentials"])
            changed.append("credentials")
        account.full_clean()
        account.save()
        audit_record(organization=account.organization, actor=actor,
                     action="broker_account.updated", target=account, request=request,
                     metadata={"changed": changed})
    return account


def broker_account_delete(*, account: BrokerAccount, actor: User | None, request=None) -> None:
    with transaction.atomic():
        if account.deployments.exists():
            raise Conflict("The account has deployments; stop and keep them, or delete them "
                           "first.", code="in_use")
        audit_record(organization=account.organization, actor=actor,
                     action="broker_account.deleted", target=account, request=request,
                     metadata={"name": account.name})
        account.delete()


# Each configuration field: its type and its inclusive range.
CONFIG_FIELDS: dict[str, tuple[type, float, float]] = {
    "cash": (float, 1.0, 1e12), "bar_seconds": (int, 1, 86_400), "lookback": (int, 10, 5000),
    "warm_bars": (int, 0, 5000), "seed": (int, 0, 2**63 - 1), "volatility": (float, 0.0, 0.2),
    "s0": (float, 1e-4, 1e9),
}


def config_validate(config: dict[str, Any] | None) -> dict[str, Any]:
    """A deployment's configuration with each field checked (a 400 names the bad ones)."""
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in dict(config or {}).items():
        if name not in CONFIG_FIELDS:
            errors[f"config.{name}"] = ["Unknown field."]
            continue
        kind, lo, hi = CONFIG_FIELDS[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and (kind is float or float(value).is_integer())
        if not ok or not lo <= value <= hi:
            errors[f"config.{name}"] = [f"A{'n integer' if kind is int else ' number'} "
                                        f"from {lo:g} to {hi:g}."]
            continue
        out[name] = kind(value)
    if errors:
        raise ApplicationError("Invalid configuration.", fields=errors)
    lookback = out.get("lookback", DEFAULTS["lookback"])
    if out.get("warm_bars", DEFAULTS["warm_bars"]) > lookback:
        raise ApplicationError("warm_bars cannot exceed lookback.",
                               fields={"config.warm_bars": ["At most lookback."]})
    return out


def deployment_create(*, organization: Organization, actor: User | None,
                      strategy_version: StrategyVersion, broker_account: BrokerAccount,
                      symbols: list[str], name: str = "", config: dict[str, Any] | None = None,
                      request=None) -> Deployment:
    if strategy_version.strategy.organization_id != organization.pk or \
            broker_account.organization_id != organization.pk:
        raise ApplicationError("Unknown strategy version or broker account.", code="not_found",
                               status_code=404)
    symbols = [str(s).strip() for s in symbols if str(s).strip()]
    if not symbols or len(set(symbols)) != len(symbols):
        raise ApplicationError("Give one or more distinct symbols.",
                               fields={"symbols": ["One or more distinct symbols."]})
    config = config_validate(config)
    from trading.services.venues import check_deployable

    symbols = check_deployable(broker_account, symbols=symbols,
                               bar_seconds=int(config.get("bar_seconds",
                                                          DEFAULTS["bar_seconds"])))
    with transaction.atomic():
        dep = Deployment.objects.create(organization=organization, name=name,
                                        strategy_version=strategy_version,
                                        broker_account=broker_account, symbols=symbols,
                                        config=config, created_by=actor)
        _new_state(dep)  # the version builds a strategy (fails here, not in the worker)
        audit_record(organization=organization, actor=actor, action="deployment.created",
                     target=dep, request=request,
                     metadata={"strategy_version": strategy_version.pk, "symbols": symbols,
                               "broker_account": broker_account.pk})
        _event(dep, "deployment.created", status=dep.status)
    return dep


def _enqueue_advance(deployment_id: int) -> Callable[[], None]:
    def go() -> None:
        from trading.tasks import advance_deployment

        advance_deployment.delay(deployment_id)
    return go


def deployment_start(*, deployment: Deployment, actor: User | None, caller: Any = None,
                     request=None, now_ns: int | None = None) -> Deployment:
    """pending or paused → running; a halted deployment resumes only for an admin
    (``deployments:admin``)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    with transaction.atomic():
        dep = _locked(deployment.pk)
        was = dep.status
        if was == DeploymentStatus.HALTED:
            if caller is None or not caller.has_scope("deployments:admin"):
                raise Forbidden("A halted deployment is resumed only by an owner or admin.",
                                code="resume_forbidden")
        elif was not in (DeploymentStatus.PENDING, DeploymentStatus.PAUSED):
            raise Conflict(f"The deployment is {was}.", code="bad_state")
        step = int(_config(dep)["bar_seconds"]) * NS
        try:
            if not dep.state:
                dep.feed_anchor_ns = now_ns - now_ns % step
                state = _new_state(dep)
                warm = int(_config(dep)["warm_bars"])
                broker = _new_broker(dep)
                state = warm_up(state, deployment_bars(dep, -warm, 0, now_ns=now_ns,
                                                       state=state))
            else:
                state, broker = load_session(dep)
                # Bars that went by while paused or halted are history, not decisions.
                k_last = _index_of(dep, state.last_timestamp) \
                    if state.last_timestamp is not None else -1
                k_now = latest_final_index(dep, now_ns)
                if k_now > k_last:
                    k_from = max(k_last + 1, k_now + 1 - state.config.lookback)
                    state = warm_up(state, deployment_bars(dep, k_from, k_now + 1,
                                                           now_ns=now_ns, state=state))
                state.halted = None
            caught_up: list[Action] = []
            if is_live(dep):
                _credentials_used(dep, purpose="deployment.resumed" if dep.state
                                  else "deployment.started", actor=actor, request=request)
                state, caught_up = _reconcile_locked(
                    dep, state, broker, reason="start" if not dep.state else "resume",
                    actor=actor, request=request, always_record=True)
        except BrokerError as exc:
            raise _broker_failure(dep, exc) from None
        dep.status = DeploymentStatus.RUNNING
        dep.halt_reason = ""
        dep.started_at = dep.started_at or timezone.now()
        dep.save(update_fields=["status", "halt_reason", "started_at", "feed_anchor_ns"])
        save_session(dep, state, broker, caught_up)
        audit_record(organization=dep.organization, actor=actor,
                     action="deployment.resumed" if was != DeploymentStatus.PENDING
                     else "deployment.started", target=dep, request=request,
                     metadata={"from": was})
        _event(dep, "deployment.status", status=dep.status, previous=was)
        transaction.on_commit(_enqueue_advance(dep.pk))
    return dep


def deployment_pause(*, deployment: Deployment, actor: User | None, request=None) -> Deployment:
    with transaction.atomic():
        dep = _locked(deployment.pk)
        if dep.status != DeploymentStatus.RUNNING:
            raise Conflict(f"The deployment is {dep.status}.", code="bad_state")
        dep.status = DeploymentStatus.PAUSED
        dep.save(update_fields=["status"])
        audit_record(organization=dep.organization, actor=actor, action="deployment.paused",
                     target=dep, request=request)
        _event(dep, "deployment.status", status=dep.status, previous="running")
    return dep


def cancel_open_orders(dep: Deployment, *, symbol: str | None = None, reason: str,
                       reconcile: bool = False, actor: User | None = None,
                       request=None) -> list[ManagedOrder]:
    """Cancel the deployment's working orders at its broker (dep locked, in a transaction).
    With `reconcile`, a live deployment first adopts the exchange's view, so an order the
    exchange has and the saved state lost is cancelled too. A venue failure is a 503 (422
    when it refuses) and changes nothing."""
    if not dep.state:
        return []
    state, broker = load_session(dep)
    ts = state.last_timestamp or 0
    actions: list[Action] = []
    cancelled = []
    try:
        if reconcile and is_live(dep):
            state, actions = _reconcile_locked(dep, state, broker, reason=reason, actor=actor,
                                               request=request)
        oms = OrderManager(state.deployment_id, broker, None, state.orders)
        for order in oms.open_orders(symbol):
            oms.cancel(order.client_order_id)
            cancelled.append(order)
            actions.append(Action("cancel", ts, {"client_order_id": order.client_order_id,
                                                 "symbol": order.symbol,
                                                 "status": order.status, "reason": reason}))
    except BrokerError as exc:
        raise _broker_failure(dep, exc) from None
    state.orders = oms.orders
    save_session(dep, state, broker, actions)
    return cancelled


def deployment_stop(*, deployment: Deployment, actor: User | None, request=None) -> Deployment:
    """Stop for good; its working orders are cancelled at the broker first."""
    with transaction.atomic():
        dep = _locked(deployment.pk)
        if dep.status == DeploymentStatus.STOPPED:
            raise Conflict("The deployment is already stopped.", code="bad_state")
        was = dep.status
        _credentials_used(dep, purpose="deployment.stopped", actor=actor, request=request)
        cancelled = cancel_open_orders(dep, reason="deployment stopped", reconcile=True,
                                       actor=actor, request=request)
        dep.status = DeploymentStatus.STOPPED
        dep.stopped_at = timezone.now()
        dep.save(update_fields=["status", "stopped_at"])
        audit_record(organization=dep.organization, actor=actor, action="deployment.stopped",
                     target=dep, request=request,
                     metadata={"from": was, "cancelled": [o.client_order_id for o in cancelled]})
        _event(dep, "deployment.status", status=dep.status, previous=was,
               cancelled=len(cancelled))
    return dep


def _halt_locked(dep: Deployment, *, rule: str, reason: str, at_ns: int) -> None:
    from risk.services import breach_record

    was = dep.status
    dep.status = DeploymentStatus.HALTED
    dep.halt_reason = f"{rule}: {reason}"
    dep.save(update_fields=["status", "halt_reason"])
    # Recording the same halt twice returns the stored breach: one alert per halt.
    breach_record(organization=dep.organization, source="deployment", source_id=dep.pk,
                  rule=rule, reason=reason, at=at_ns, halted=True)
    audit_record(organization=dep.organization, actor=None, action="deployment.halted",
                 target=dep, metadata={"rule": rule, "reason": reason, "from": was})
    _event(dep, "deployment.status", status=dep.status, previous=was, rule=rule, reason=reason)


def deployment_halt(*, deployment: Deployment, rule: str, reason: str) -> Deployment:
    """Halt from risk (the rulebook or the organisation's kill switch): cancel working orders
    and stop deciding until an admin resumes it."""
    with transaction.atomic():
        dep = _locked(deployment.pk)
        if dep.status in (DeploymentStatus.STOPPED, DeploymentStatus.HALTED):
            return dep
        try:
            with transaction.atomic():
                cancel_open_orders(dep, reason=f"halted: {rule}")
        except ApplicationError as exc:
            # The halt must not wait for the venue: it stops the decisions now, and the
            # orders left working are cancelled by whoever resumes or stops it.
            logger.warning("deployment %s halted with its orders not cancelled: %s", dep.pk,
                           exc.message)
        _halt_locked(dep, rule=rule, reason=reason, at_ns=dep.last_bar_ts or time.time_ns())
    return dep


# --- the step -----------------------------------------------------------------------------------

def deployment_advance(*, deployment_id: int, until_ns: int | None = None) -> str:
    """Advance a running deployment through the bars final at `until_ns` (default now).

    A venue failing anywhere in the step (bars, fills, order states, reconciliation) rolls
    the whole step back: the deployment stays running and the next tick takes the step again,
    with the same client order ids."""
    until_ns = time.time_ns() if until_ns is None else until_ns
    try:
        return _advance(deployment_id, until_ns)
    except BrokerError as exc:
        account = BrokerAccount.objects.filter(deployments=deployment_id).first()
        text = scrub(str(exc), account) if account is not None else type(exc).__name__
        logger.warning("deployment %s: step not taken, the exchange failed (%s: %s); the next "
                       "tick retries", deployment_id, type(exc).__name__, text[:300],
                       extra={"deployment_id": deployment_id})
        return f"retry later: {type(exc).__name__}"
    except ApplicationError as exc:  # the account can no longer trade (options, credentials)
        # Retrying would fail the same way at every tick: halt, visibly and with an alert, until
        # the account is mended and an admin resumes it.
        logger.warning("deployment %s: step not taken, halted: %s", deployment_id, exc.message,
                       extra={"deployment_id": deployment_id})
        deployment_halt(deployment=Deployment(pk=deployment_id), rule="broker_account",
                        reason=exc.message)
        return f"halted: {exc.code}"


def _advance(deployment_id: int, until_ns: int) -> str:
    from risk.services import breach_record, rulebook_for

    with transaction.atomic():
        try:
            dep = _locked(deployment_id)
        except Deployment.DoesNotExist:
            return "missing"
        if dep.status != DeploymentStatus.RUNNING or not dep.state:
            return f"skipped: {dep.status}"
        state, broker = load_session(dep)
        k_last = _index_of(dep, state.last_timestamp) if state.last_timestamp is not None \
            else -1
        k_to = min(latest_final_index(dep, until_ns) + 1, k_last + 1 + MAX_BARS_PER_STEP)
        if k_to <= k_last + 1:
            return "up to date"
        reconciled = _needs_reconcile(dep)
        caught_up: list[Action] = []
        if reconciled:
            state, caught_up = _reconcile_locked(dep, state, broker, reason="restart")
        bars = deployment_bars(dep, k_last + 1, k_to, now_ns=until_ns, state=state)
        if bars.n_bars == 0:  # the exchange has not published the candles yet
            if reconciled:
                save_session(dep, state, broker, caught_up)
            return "waiting for bars"
        rulebook = rulebook_for(organization=dep.organization,
                                strategy=dep.strategy_version.strategy_id, deployment=dep.pk)
        strategy = engine_strategy(dep.strategy_version)
        new_state, actions = advance(state, bars, strategy, broker, rulebook)
        save_session(dep, new_state, broker, caught_up + actions)
        for action in actions:
            if action.kind == "refused":
                rule, _, reason = action.data.get("reason", "").removeprefix("risk ") \
                    .partition(": ")
                breach_record(organization=dep.organization, source="deployment",
                              source_id=dep.pk, rule=rule or "risk", reason=reason,
                              at=action.timestamp, symbol=action.data.get("symbol", ""),
                              order={"side": action.data.get("side"),
                                     "quantity": action.data.get("quantity")})
        halt = next((a for a in actions if a.kind == "halt"), None)
        if halt is not None:
            _halt_locked(dep, rule=halt.data["rule"], reason=halt.data["reason"],
                         at_ns=halt.timestamp)
        _utilisation_record(dep, rulebook, new_state)
        _event(dep, "deployment.step", last_bar_ts=new_state.last_timestamp,
               equity=new_state.equity, cash=new_state.cash, positions=new_state.positions)
    return f"advanced {bars.n_bars} bar(s)"


def _utilisation_record(dep: Deployment, rulebook: Any, state: DeploymentState) -> None:
    """How much of its limits the deployment uses after this step (the risk page's and the
    dashboard's bars): one row per deployment, replaced at each step; nothing when no limit
    applies."""
    from risk.models import UtilisationSnapshot
    from risk.services import utilisation_rows

    if state.last_timestamp is None:
        return
    close = _last_close(dep, state)
    snapshot = PortfolioSnapshot(
        timestamp=state.last_timestamp, cash=state.cash, equity=state.equity,
        positions={s: p for s, p in state.positions.items() if p != 0.0},
        prices={sym: float(close[j]) for j, sym in enumerate(dep.symbols)},
        day_start_equity=state.day_start_equity, peak_equity=state.peak_equity)
    rows = utilisation_rows(rulebook, snapshot)
    if not rows:
        return
    at = datetime.fromtimestamp(state.last_timestamp / NS, tz=UTC)
    UtilisationSnapshot.objects.update_or_create(
        organization_id=dep.organization_id, source="deployment", source_id=dep.pk,
        defaults={"at": at, "equity": float(state.equity), "rows": rows,
                  "recorded_at": timezone.now()})


def running_deployment_ids() -> list[int]:
    return list(Deployment.objects.filter(status=DeploymentStatus.RUNNING)
                .values_list("id", flat=True))

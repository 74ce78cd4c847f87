"""Every action that changes risk state, and the rulebook the trading app runs with.

* limits — `limit_set_save`, `limit_set_delete` (owners and admins only: ``risk:admin``);
* the rulebook of a run — `rulebook_for` (effective limits of the organisation, strategy and
  deployment levels, with the organisation's emergency switch);
* the organisation's kill switch — `kill_switch_trip` (the roles `risk.core.killswitch` allows,
  holding ``risk:write``),
  `kill_switch_rearm` (owners and admins, with a reason), `kill_switch_configure`;
* breaches — `breach_record` (one event) and `run_breaches_record` (a finished run's halt and
  refusals), idempotent, alerting and broadcasting on commit; `utilisation_record`;
* alert targets — `alert_target_create/update/delete`, and `alert_deliver`, which the
  ``risk.deliver_alert`` task calls to send one alert (e-mail, or a webhook pinned to the
  addresses the SSRF check approved, redirects validated hop by hop);
* risk measures of a return or equity series — `measures_compute`.

Each write is one transaction with its audit entry; tasks and live events leave on commit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from scipy import stats

from accounts.audit import audit_record
from accounts.models import Organization, User
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError, Conflict, Forbidden
from nexow_site.realtime import broadcast, org_group
from risk import selectors
from risk.core import measures as m
from risk.core import ssrf
from risk.core.alerts import AlertEvent, build_payload
from risk.core.checks import Rulebook, utilisation
from risk.core.killswitch import REARM, TRIP, role_may
from risk.core.killswitch import KillSwitch as CoreSwitch
from risk.core.killswitch import KillSwitchEvent as CoreSwitchEvent
from risk.core.ssrf import UnsafeURLError, ValidatedURL, validate_redirect, validate_webhook_url
from risk.models import (
    AlertDelivery,
    AlertEvents,
    AlertKind,
    AlertTarget,
    Breach,
    DeliveryStatus,
    Escalation,
    KillSwitch,
    KillSwitchEvent,
    Level,
    RiskLimitSet,
    Source,
    SwitchState,
    UtilisationSnapshot,
)
from trading.engine.hooks import PortfolioSnapshot

logger = logging.getLogger("nexow.risk")

NS_PER_SECOND = 1_000_000_000
MAX_REDIRECTS = 3
WEBHOOK_TIMEOUT_SECONDS = 10.0
# A run refused by a position limit on every bar would otherwise store thousands of rows; the
# halt is always kept, and the audit entry says how many refusals were left out.
MAX_RUN_REFUSALS = 500
MAX_SERIES_LENGTH = 100_000
MAX_BACKTEST_PERIODS = 5_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now_ns() -> int:
    return time.time_ns()


def _to_datetime(at: datetime | int | float) -> datetime:
    if isinstance(at, datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return _EPOCH + timedelta(microseconds=int(at) // 1000)


def _to_ns(at: datetime) -> int:
    # Integer arithmetic: a float of nanoseconds since 1970 cannot hold every microsecond.
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def _require_scope(caller: Caller, scope: str, what: str) -> None:
    if not caller.has_scope(scope):
        raise Forbidden(f"Your role ({caller.role}) cannot {what}: it needs '{scope}'.")


def _validation_error(exc: ValidationError) -> ApplicationError:
    fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    first = next(iter(fields.items()))
    message = f"{first[0]}: {first[1][0]}" if first[1] else "The request is invalid."
    return ApplicationError(message, fields=fields)


# --- limits ---------------------------------------------------------------------------------

def limit_set_save(*, organization: Organization, level: str, ref_id: int | None = None,
                   limits: Mapping[str, Any], note: str = "", caller: Caller,
                   request=None) -> RiskLimitSet:
    """Create or replace the limits of one level (owners and admins: ``risk:admin``).

    `limits` replaces the level's limits as a whole; each invalid field is reported by name.
    """
    _require_scope(caller, "risk:admin", "change risk limits")
    if level not in Level.values:
        raise ApplicationError(f"level must be one of {', '.join(Level.values)}.",
                               fields={"level": [f"Unknown level {level!r}."]})
    with transaction.atomic():
        existing = (RiskLimitSet.objects.select_for_update()
                    .filter(organization=organization, level=level, ref_id=ref_id).first())
        limit_set = existing or RiskLimitSet(organization=organization, level=level,
                                             ref_id=ref_id, created_by=caller.user)
        before = dict(existing.limits) if existing else None
        limit_set.limits = dict(limits)
        limit_set.note = note
        limit_set.updated_by = caller.user
        limit_set.updated_at = timezone.now()
        if existing:
            limit_set.version += 1
        try:
            limit_set.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            raise _limits_error(exc) from None
        try:
            with transaction.atomic():
                limit_set.save()
        except IntegrityError:
            raise Conflict("These limits were created concurrently; retry.") from None
        audit_record(organization=organization, actor=caller.user,
                     action="risk.limits.updated" if existing else "risk.limits.created",
                     target=limit_set, request=request,
                     metadata={"level": level, "ref_id": ref_id, "before": before,
                               "after": limit_set.limits, "version": limit_set.version})
    return limit_set


def _limits_error(exc: ValidationError) -> ApplicationError:
    """Limit errors named by their own field (``max_drawdown``), as the API reports them."""
    fields: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        if name == "limits":
            for message in messages:
                field, _, text = message.partition(": ")
                fields.setdefault(f"limits.{field}", []).append(text)
        else:
            fields.setdefault(name, []).extend(messages)
    first_field, first_messages = next(iter(fields.items()))
    return ApplicationError(f"{first_field}: {first_messages[0]}", fields=fields)


def limit_set_delete(*, limit_set: RiskLimitSet, caller: Caller, request=None) -> None:
    _require_scope(caller, "risk:admin", "change risk limits")
    with transaction.atomic():
        audit_record(organization=limit_set.organization, actor=caller.user,
                     action="risk.limits.deleted", target=limit_set, request=request,
                     metadata={"level": limit_set.level, "ref_id": limit_set.ref_id,
                               "before": limit_set.limits})
        limit_set.delete()


# --- the rulebook of a run ------------------------------------------------------------------

def core_switch(switch: KillSwitch) -> CoreSwitch:
    """The organisation's switch as the rulebook sees it (an emergency switch).

    A tripped switch carries its trip as the last history event, which is what the rulebook
    uses to report the halt exactly once.
    """
    core = CoreSwitch(scope="organisation", name=switch.organization.slug)
    if switch.tripped and switch.tripped_at is not None:
        at = _to_ns(switch.tripped_at)
        core.state = "tripped"
        core.reason = switch.reason
        core.rule = switch.rule
        core.tripped_at = at
        core.tripped_by = switch.tripped_by_label
        core.history.append(CoreSwitchEvent(TRIP, switch.tripped_by_label or "system",
                                            switch.reason, at, switch.rule))
    return core


def rulebook_for(*, organization: Organization, strategy: Any = None, deployment: Any = None,
                 instruments: Mapping[str, Mapping[str, str]] | None = None,
                 include_emergency: bool = True) -> Rulebook:
    """The rulebook guarding a simulation or a deployment step of this organisation.

    Its limits are the most restrictive of the organisation's, the strategy's and the
    deployment's (ids or model instances; each level only if set), and — unless
    `include_emergency` is false — the organisation's kill switch stops it while tripped.
    `instruments` maps symbol to ``{"asset_class": ..., "sector": ...}``.
    """
    limits = selectors.effective_limits(organization=organization, strategy=strategy,
                                        deployment=deployment)
    switches = []
    if include_emergency:
        switches.append(core_switch(selectors.kill_switch_get(organization=organization)))
    return Rulebook(limits, instruments or {}, emergency_switches=switches)


# --- the organisation's kill switch ---------------------------------------------------------

def _locked_switch(organization: Organization) -> KillSwitch:
    KillSwitch.objects.get_or_create(organization=organization)
    return KillSwitch.objects.select_for_update(of=("self",)).select_related("organization").get(
        organization=organization)


def _next_seq(switch: KillSwitch) -> int:
    switch.event_seq += 1
    KillSwitch.objects.filter(pk=switch.pk).update(event_seq=switch.event_seq)
    return switch.event_seq


def _broadcast_on_commit(switch: KillSwitch, event: dict[str, Any]) -> None:
    message = {"stream": "risk", "seq": _next_seq(switch),
               "organization": switch.organization_id, **event}
    group = org_group(switch.organization_id)
    transaction.on_commit(lambda: broadcast([group], message))


def _may_stop_trading(caller: Caller) -> bool:
    # The role rule of risk.core.killswitch and the scope of the permission matrix both apply:
    # a key narrowed to read-only access cannot stop trading even if its creator could.
    return role_may(TRIP, caller.role) and caller.has_scope("risk:write")


def kill_switch_trip(*, organization: Organization, reason: str, caller: Caller,
                     request=None) -> KillSwitch:
    """Stop all of the organisation's trading now. Refused (409) if already tripped: the first
    reason is the one that stays."""
    if not _may_stop_trading(caller):
        raise Forbidden(f"Your role ({caller.role}) cannot trip the kill switch.")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("reason: a reason is required.",
                               fields={"reason": ["Say why trading is being stopped."]})
    with transaction.atomic():
        switch = _locked_switch(organization)
        event = _trip_locked(switch, reason=reason, rule="manual", actor=caller.user,
                             actor_label=caller.user.email)
        audit_record(organization=organization, actor=caller.user,
                     action="risk.kill_switch.tripped", target=switch, request=request,
                     metadata={"reason": reason})
        _schedule_alerts(organization=organization, kill_event=event)
        _broadcast_on_commit(switch, {"type": "risk.kill", "state": switch.state,
                                      "reason": reason, "by": caller.user.email})
    return switch


def _trip_locked(switch: KillSwitch, *, reason: str, rule: str, actor: User | None,
                 actor_label: str, breach: Breach | None = None,
                 at: datetime | None = None) -> KillSwitchEvent:
    if switch.tripped:
        raise Conflict("The kill switch is already tripped.", code="already_tripped")
    now = at or timezone.now()
    switch.state = SwitchState.TRIPPED
    switch.reason, switch.rule = reason, rule
    switch.tripped_at, switch.tripped_by, switch.tripped_by_label = now, actor, actor_label
    switch.updated_at = timezone.now()
    switch.save()
    return KillSwitchEvent.objects.create(
        organization_id=switch.organization_id, transition=KillSwitchEvent.Transition.TRIP,
        actor=actor, actor_label=actor_label, reason=reason, rule=rule, breach=breach, at=now)


def kill_switch_rearm(*, organization: Organization, reason: str, caller: Caller,
                      request=None) -> KillSwitch:
    """Let trading resume. Only owners and admins, and only with a reason (audited)."""
    if not (role_may(REARM, caller.role) and caller.has_scope("risk:admin")):
        raise Forbidden(f"Your role ({caller.role}) cannot re-arm the kill switch; an owner or "
                        "admin must.", code="rearm_forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("reason: a reason is required to re-arm.",
                               fields={"reason": ["Say why it is safe to resume trading."]})
    with transaction.atomic():
        switch = _locked_switch(organization)
        if not switch.tripped:
            raise Conflict("The kill switch is not tripped.", code="not_tripped")
        was = {"reason": switch.reason, "rule": switch.rule, "by": switch.tripped_by_label,
               "at": switch.tripped_at.isoformat() if switch.tripped_at else None}
        now = timezone.now()
        switch.state = SwitchState.ARMED
        switch.reason, switch.rule = "", ""
        switch.tripped_at, switch.tripped_by, switch.tripped_by_label = None, None, ""
        switch.rearmed_at, switch.rearmed_by, switch.rearm_reason = now, caller.user, reason
        switch.updated_at = now
        switch.save()
        event = KillSwitchEvent.objects.create(
            organization=organization, transition=KillSwitchEvent.Transition.REARM,
            actor=caller.user, actor_label=caller.user.email, reason=reason, at=now)
        audit_record(organization=organization, actor=caller.user,
                     action="risk.kill_switch.rearmed", target=switch, request=request,
                     metadata={"reason": reason, "was_tripped": was})
        _schedule_alerts(organization=organization, kill_event=event)
        _broadcast_on_commit(switch, {"type": "risk.rearm", "state": switch.state,
                                      "reason": reason, "by": caller.user.email})
    return switch


def kill_switch_configure(*, organization: Organization, escalate: str, caller: Caller,
                          request=None) -> KillSwitch:
    """Choose which automatic halts also trip the organisation's switch (owners and admins)."""
    _require_scope(caller, "risk:admin", "configure the kill switch")
    if escalate not in Escalation.values:
        raise ApplicationError(f"escalate must be one of {', '.join(Escalation.values)}.",
                               fields={"escalate": [f"Unknown value {escalate!r}."]})
    with transaction.atomic():
        switch = _locked_switch(organization)
        before = switch.escalate
        if before != escalate:
            switch.escalate = escalate
            switch.updated_at = timezone.now()
            switch.save(update_fields=["escalate", "updated_at"])
            audit_record(organization=organization, actor=caller.user,
                         action="risk.kill_switch.configured", target=switch, request=request,
                         metadata={"escalate": {"from": before, "to": escalate}})
    return switch


# --- breaches -------------------------------------------------------------------------------

def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def breach_record(*, organization: Organization, source: str, source_id: int, rule: str,
                  reason: str, at: datetime | int, halted: bool = False, symbol: str = "",
                  order: Mapping[str, Any] | None = None) -> Breach:
    """Record one refusal or halt of a simulation or deployment, once.

    `at` is a datetime or nanoseconds since the epoch (the engine's timestamps). Recording the
    same event again returns the stored breach and sends nothing. A new breach is audited,
    broadcast as ``risk.breach`` (``risk.kill`` for a halt) and alerted; a halt also trips the
    organisation's switch when its escalation policy covers the source.
    """
    breach, created = _breach_store(organization=organization, source=source,
                                    source_id=source_id, rule=rule, reason=reason, at=at,
                                    halted=halted, symbol=symbol, order=order, audit=True)
    return breach


def _breach_store(*, organization: Organization, source: str, source_id: int, rule: str,
                  reason: str, at: datetime | int, halted: bool, symbol: str,
                  order: Mapping[str, Any] | None, audit: bool) -> tuple[Breach, bool]:
    if source not in Source.values:
        raise ApplicationError(f"source must be one of {', '.join(Source.values)}.",
                               fields={"source": [f"Unknown source {source!r}."]})
    moment = _to_datetime(at)
    order = dict(order or {})
    fingerprint = _fingerprint(source, int(source_id), rule, _to_ns(moment), symbol, halted,
                               order)
    with transaction.atomic():
        switch = _locked_switch(organization)  # serialises recorders of one organisation
        existing = Breach.objects.filter(organization=organization,
                                         fingerprint=fingerprint).first()
        if existing is not None:
            return existing, False
        breach = Breach.objects.create(
            organization=organization, source=source, source_id=int(source_id), rule=rule,
            reason=reason, halted=halted, at=moment, symbol=symbol, order=order,
            fingerprint=fingerprint)
        escalated = False
        if halted and not switch.tripped and (
                switch.escalate == Escalation.ALL
                or (switch.escalate == Escalation.LIVE and source == Source.DEPLOYMENT)):
            _trip_locked(switch, reason=reason, rule=rule, actor=None, actor_label="system",
                         breach=breach)
            escalated = True
            audit_record(organization=organization, actor=None,
                         action="risk.kill_switch.tripped", target=switch,
                         metadata={"by": "system", "reason": reason, "rule": rule,
                                   "breach": breach.pk, "escalate": switch.escalate})
        if audit:
            audit_record(organization=organization, actor=None, action="risk.breach.recorded",
                         target=breach,
                         metadata={"source": source, "source_id": int(source_id), "rule": rule,
                                   "halted": halted, "symbol": symbol,
                                   "tripped_organization_switch": escalated})
        _schedule_alerts(organization=organization, breach=breach)
        _broadcast_on_commit(switch, {
            "type": "risk.kill" if halted else "risk.breach", "breach": breach.pk,
            "source": source, "source_id": int(source_id), "rule": rule, "reason": reason,
            "symbol": symbol, "at": moment.isoformat(),
            "state": switch.state})
    return breach, True


def run_breaches_record(*, organization: Organization, source: str, source_id: int,
                        result: Any) -> list[Breach]:
    """Record what the rulebook did in a finished run (a `BacktestResult` or anything with
    ``halted_at`` and ``rejections``): the halt, and every refusal before it.

    Refusals at or after the halt are its consequence (the engine refuses everything once
    halted) and are not recorded again. At most `MAX_RUN_REFUSALS` refusals are stored; one
    audit entry summarises the run. Idempotent: recording the same run twice adds nothing.
    """
    halted_at = getattr(result, "halted_at", None)
    rejections = list(getattr(result, "rejections", []) or [])
    before_halt = [r for r in rejections if halted_at is None or r.timestamp < halted_at]
    recorded: list[Breach] = []
    new = 0
    with transaction.atomic():
        for rejection in before_halt[:MAX_RUN_REFUSALS]:
            breach, created = _breach_store(
                organization=organization, source=source, source_id=source_id,
                rule=rejection.rule, reason=rejection.reason, at=rejection.timestamp,
                halted=False, symbol=rejection.symbol,
                order={"side": "buy" if rejection.side > 0 else "sell",
                       "quantity": rejection.quantity}, audit=False)
            recorded.append(breach)
            new += created
        if halted_at is not None:
            halt = _halt_of(result, halted_at, rejections)
            breach, created = _breach_store(
                organization=organization, source=source, source_id=source_id, rule=halt[0],
                reason=halt[1], at=halted_at, halted=True, symbol="", order=None, audit=False)
            recorded.append(breach)
            new += created
        if new:
            audit_record(organization=organization, actor=None, action="risk.breach.recorded",
                         metadata={"source": source, "source_id": int(source_id),
                                   "breaches": new, "halted": halted_at is not None,
                                   "refusals_not_stored": max(0, len(before_halt)
                                                              - MAX_RUN_REFUSALS)})
    return recorded


def _halt_of(result: Any, halted_at: int, rejections: Sequence[Any]) -> tuple[str, str]:
    """The rule and reason of a run's halt: from ``result.halt`` when the result carries it,
    else from the first refusal at or after the halt (the engine refuses with the halt's own
    rule and reason), else a generic text."""
    halt = getattr(result, "halt", None)
    if halt is not None:
        return halt.rule, halt.reason
    for rejection in rejections:
        if rejection.timestamp >= halted_at:
            return rejection.rule, rejection.reason
    return "halted", "trading was halted by the risk rulebook"


def utilisation_rows(rulebook: Rulebook, snapshot: PortfolioSnapshot) -> list[dict[str, Any]]:
    """How much of each limit the portfolio uses, as stored rows."""
    return [{"rule": u.rule, "subject": u.subject, "current": _finite(u.current),
             "limit": u.limit, "fraction": _finite(u.fraction), "level": u.level}
            for u in rulebook.utilisation(snapshot)]


def utilisation_record(*, organization: Organization, source: str, source_id: int,
                       rulebook: Rulebook, snapshot: PortfolioSnapshot) -> UtilisationSnapshot:
    """Store how much of each limit a run or deployment uses now (shown on the risk page)."""
    rows = utilisation_rows(rulebook, snapshot)
    return UtilisationSnapshot.objects.create(
        organization=organization, source=source, source_id=int(source_id),
        at=_to_datetime(snapshot.timestamp), equity=float(snapshot.equity), rows=rows)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# --- alerts: targets ------------------------------------------------------------------------

def webhook_validate(url: str) -> ValidatedURL:
    """`risk.core.ssrf.validate_webhook_url`, plus, when the test-only setting
    ``RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS`` is on, hosts that are or resolve only to loopback
    addresses (so the suite can deliver to a server on 127.0.0.1). Private and every other
    refused address stay refused."""
    return _validate(lambda resolver: validate_webhook_url(url, resolver=resolver), url)


def _webhook_redirect(current: ValidatedURL, location: str, *, hops: int) -> ValidatedURL:
    from urllib.parse import urljoin

    target = urljoin(current.url, location.strip())
    return _validate(lambda resolver: validate_redirect(
        current, location, hops=hops, resolver=resolver, max_redirects=MAX_REDIRECTS), target)


def _validate(check, url: str) -> ValidatedURL:
    if not getattr(settings, "RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS", False):
        return check(None)
    seen: list[str] = []

    def resolve_once(host: str, port: int) -> list[str]:
        # The name is resolved once; the loopback exception below reuses that answer.
        seen.extend(ssrf.system_resolver(host, port))
        return seen

    try:
        return check(resolve_once)
    except UnsafeURLError as exc:
        if str(exc).startswith("too many") or "https to http" in str(exc):
            raise
        allowed = _loopback_only(url, seen)
        if allowed is None:
            raise
        return allowed


def _loopback_only(url: str, resolved: Sequence[str]) -> ValidatedURL | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        addresses = [str(ipaddress.ip_address(parts.hostname))]
    except ValueError:
        addresses = list(resolved)
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ValidatedURL(url, parts.scheme, parts.hostname, port, tuple(addresses))


def _target_clean(target: AlertTarget) -> None:
    try:
        target.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise _validation_error(exc) from None


_TARGET_FIELDS = ("name", "kind", "format", "email", "url", "telegram_chat_id", "secret",
                  "events", "enabled")


def alert_target_create(*, organization: Organization, caller: Caller, request=None,
                        **values: Any) -> AlertTarget:
    _require_scope(caller, "risk:admin", "configure alert targets")
    unknown = set(values) - set(_TARGET_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", fields={k: ["Unknown field."] for k in unknown})
    target = AlertTarget(organization=organization, created_by=caller.user, **values)
    _target_clean(target)
    with transaction.atomic():
        target.save()
        audit_record(organization=organization, actor=caller.user,
                     action="risk.alert_target.created", target=target, request=request,
                     metadata={"kind": target.kind, "format": target.format,
                               "destination": mask_destination(target)})
    return target


def alert_target_update(*, target: AlertTarget, caller: Caller, request=None,
                        **values: Any) -> AlertTarget:
    _require_scope(caller, "risk:admin", "configure alert targets")
    unknown = set(values) - set(_TARGET_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", fields={k: ["Unknown field."] for k in unknown})
    changed = sorted(k for k, v in values.items() if getattr(target, k) != v)
    for key, value in values.items():
        setattr(target, key, value)
    target.updated_at = timezone.now()
    _target_clean(target)
    with transaction.atomic():
        target.save()
        # Names of changed fields only: a new URL or secret is not copied into the audit log.
        audit_record(organization=target.organization, actor=caller.user,
                     action="risk.alert_target.updated", target=target, request=request,
                     metadata={"changed": changed, "destination": mask_destination(target)})
    return target


def alert_target_delete(*, target: AlertTarget, caller: Caller, request=None) -> None:
    _require_scope(caller, "risk:admin", "configure alert targets")
    with transaction.atomic():
        audit_record(organization=target.organization, actor=caller.user,
                     action="risk.alert_target.deleted", target=target, request=request,
                     metadata={"kind": target.kind, "destination": mask_destination(target)})
        target.delete()


def mask_destination(target: AlertTarget) -> str:
    if target.kind == AlertKind.EMAIL:
        return target.email
    return mask_url(target.url)


def mask_url(url: str) -> str:
    """A webhook URL with its path and query hidden: they carry the token (Slack's
    ``/services/T…/B…/secret``, Discord's ``/webhooks/<id>/<token>``, Telegram's ``bot<token>``).
    Scheme and host stay visible, and the last four characters to tell targets apart."""
    parts = urlsplit(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}"):]
    if not rest or rest == "/":
        return url
    tail = rest[-4:] if len(rest) >= 12 else ""
    return f"{parts.scheme}://{parts.netloc}/…{tail}"


# --- alerts: scheduling and delivery --------------------------------------------------------

def _schedule_alerts(*, organization: Organization, breach: Breach | None = None,
                     kill_event: KillSwitchEvent | None = None) -> list[AlertDelivery]:
    """Create one delivery per enabled target (inside the caller's transaction) and enqueue
    the task for each once it commits."""
    if kill_event is not None and kill_event.breach_id is not None:
        return []  # an escalated halt is alerted once, for its breach
    targets = AlertTarget.objects.filter(organization=organization, enabled=True)
    if breach is not None and not breach.halted:
        # Refused orders alert only from live deployments, and only targets that asked.
        if breach.source != Source.DEPLOYMENT:
            return []
        targets = targets.filter(events=AlertEvents.ALL)
    deliveries = []
    for target in targets:
        delivery, created = AlertDelivery.objects.get_or_create(
            organization=organization, target=target, breach=breach, kill_event=kill_event)
        if created:
            deliveries.append(delivery)
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: _enqueue_deliveries(ids))
    return deliveries


def _enqueue_deliveries(ids: Iterable[int]) -> None:
    from risk.tasks import deliver_alert

    for delivery_id in ids:
        try:
            deliver_alert.apply_async(args=[delivery_id])
        except Exception:  # noqa: BLE001 - broker down: the row stays pending for the sweeper
            logger.warning("alert %s not enqueued; the sweeper will retry it", delivery_id)


class TransientDeliveryError(Exception):
    """Worth retrying later: a timeout, a refused connection, a 5xx, 408 or 429."""


def _event_for(delivery: AlertDelivery) -> AlertEvent:
    org = delivery.organization
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    # Chat services refuse relative links in buttons, so no link rather than a broken one.
    portal = f"{site}/orgs/{org.slug}/risk/" if site else ""
    if delivery.breach is not None:
        b = delivery.breach
        return AlertEvent(kind="kill" if b.halted else "breach", rule=b.rule, reason=b.reason,
                          at=_to_ns(b.at), organisation=org.name,
                          deployment=f"{b.source} {b.source_id}",
                          actor="system" if b.halted else "", url=portal)
    e = delivery.kill_event
    assert e is not None
    return AlertEvent(kind="kill" if e.transition == KillSwitchEvent.Transition.TRIP else "rearm",
                      rule=e.rule, reason=e.reason, at=_to_ns(e.at), organisation=org.name,
                      actor=e.actor_label, url=portal)


def alert_deliver(*, delivery_id: int, final_attempt: bool = False) -> str:
    """Send one alert, at most once. Returns "delivered", "already delivered", "failed",
    "disabled" or "missing"; raises `TransientDeliveryError` for the task to retry, after the
    attempt and its error are saved. The row is locked while sending, so two workers cannot
    both send it, and a delivered alert is never sent again."""
    retry: TransientDeliveryError | None = None
    with transaction.atomic():
        delivery = (AlertDelivery.objects.select_for_update(of=("self",))
                    .select_related("target", "organization", "breach", "kill_event")
                    .filter(pk=delivery_id).first())
        if delivery is None:
            return "missing"
        if delivery.status == DeliveryStatus.DELIVERED:
            return "already delivered"
        if delivery.status == DeliveryStatus.FAILED:
            return "failed"
        target = delivery.target
        if not target.enabled:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, "target disabled"
            delivery.save(update_fields=["status", "last_error"])
            return "disabled"
        delivery.attempts += 1
        try:
            event = _event_for(delivery)
            if target.kind == AlertKind.EMAIL:
                _send_email(target, event)
            else:
                _send_webhook(target, event, delivery_id=delivery.pk)
        except TransientDeliveryError as exc:
            delivery.last_error = str(exc)[:1000]
            if final_attempt:
                delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["attempts", "last_error", "status"])
            if final_attempt:
                logger.warning("alert %s failed after %s attempts: %s", delivery.pk,
                               delivery.attempts, exc)
                return "failed"
            retry = exc
        except (UnsafeURLError, PermanentDeliveryError, ValueError) as exc:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, str(exc)[:1000]
            delivery.save(update_fields=["attempts", "status", "last_error"])
            logger.warning("alert %s failed permanently: %s", delivery.pk, exc)
            return "failed"
        else:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.last_error = ""
            delivery.save(update_fields=["attempts", "status", "delivered_at", "last_error"])
            return "delivered"
    # Raised after the commit, so the attempt count and the error survive for the retry.
    raise retry


class PermanentDeliveryError(Exception):
    """Not worth retrying: the receiver refused the alert (4xx) or redirected badly."""


def _send_email(target: AlertTarget, event: AlertEvent) -> None:
    subject = f"[Nexow] {event.title} ({event.organisation})"
    lines = [event.title, "", event.reason, "", f"Where: {event.where()}",
             f"When: {event.occurred_at}"]
    if event.actor:
        lines.append(f"By: {event.actor}")
    if event.url:
        lines += ["", f"Open the risk page: {event.url}"]
    try:
        send_mail(subject, "\n".join(lines), None, [target.email], fail_silently=False)
    except OSError as exc:  # SMTP down or refusing: try again later
        raise TransientDeliveryError(f"e-mail not sent: {exc}") from exc


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _send_webhook(target: AlertTarget, event: AlertEvent, *, delivery_id: int) -> None:
    payload = build_payload(target.format, event,
                            telegram_chat_id=target.telegram_chat_id or None)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Nexow-Alerts/1",
               "X-Nexow-Delivery": str(delivery_id)}
    if target.secret:
        stamp = str(int(time.time()))
        headers["X-Nexow-Timestamp"] = stamp
        headers["X-Nexow-Signature"] = _signature(target.secret, stamp, body)
    current = webhook_validate(target.url)
    # trust_env=False: an HTTP(S)_PROXY from the environment would resolve the name itself
    # and undo the pinning to the checked addresses.
    with httpx.Client(follow_redirects=False, timeout=WEBHOOK_TIMEOUT_SECONDS,
                      trust_env=False) as client:
        for hops in range(MAX_REDIRECTS + 1):
            response = _post_pinned(client, current, body, headers)
            if response.is_redirect:
                location = response.headers.get("location", "")
                if not location:
                    raise PermanentDeliveryError(f"HTTP {response.status_code} without Location")
                current = _webhook_redirect(current, location, hops=hops)
                continue
            status = response.status_code
            if 200 <= status < 300:
                return
            if status >= 500 or status in (408, 429):
                raise TransientDeliveryError(f"HTTP {status} from {current.host}")
            raise PermanentDeliveryError(f"HTTP {status} from {current.host}")
    raise PermanentDeliveryError("too many redirects")  # pragma: no cover - bounded above


def _post_pinned(client: httpx.Client, target: ValidatedURL, body: bytes,
                 headers: Mapping[str, str]) -> httpx.Response:
    """POST to one of the checked addresses, keeping the original host name for the Host
    header and for TLS (SNI and certificate check), so DNS is not consulted a second time."""
    url = httpx.URL(target.url)
    host_header = url.netloc.decode("ascii")
    last_error: Exception | None = None
    for address in target.addresses:
        pinned = url.copy_with(host=address)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            return client.post(str(pinned), content=body,
                               headers={**headers, "Host": host_header}, extensions=extensions)
        except (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
            last_error = exc
    raise TransientDeliveryError(f"could not reach {target.host}: {last_error}")


def alert_deliveries_pending(*, older_than_seconds: int = 300) -> list[int]:
    """Deliveries still pending after a while (lost messages, broker outage): re-enqueued by
    the sweeper task."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    ids = list(AlertDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lt=cutoff)
               .values_list("id", flat=True)[:500])
    _enqueue_deliveries(ids)
    return ids


# --- risk measures --------------------------------------------------------------------------

def returns_from_equity(equity: Sequence[float]) -> np.ndarray:
    e = np.asarray(equity, dtype=float)
    if e.ndim != 1 or e.size < 3:
        raise ApplicationError("equity: needs at least 3 values.",
                               fields={"equity": ["Needs at least 3 values."]})
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ApplicationError("equity: values must be positive and finite.",
                               fields={"equity": ["Values must be positive and finite."]})
    return e[1:] / e[:-1] - 1.0


def rolling_var_forecasts(r: np.ndarray, method: str, window: int, confidence: float
                          ) -> np.ndarray:
    """One-period VaR forecast for each period t >= window from the `window` returns before it,
    computed for all windows at once (in chunks, to bound memory). Each value equals
    `risk.core.measures.value_at_risk(r[t - window:t], method, confidence=confidence).var`."""
    alpha = 1.0 - confidence
    windows = np.lib.stride_tricks.sliding_window_view(r, window)[:-1]
    out = np.empty(windows.shape[0])
    z = float(stats.norm.ppf(alpha))
    # The same rounding as the core's empirical estimator (n·α computed in floating point).
    k = max(math.ceil(round(window * alpha, 9)), 1)
    for start in range(0, windows.shape[0], 512):
        w = windows[start:start + 512]
        if method == "historical":
            out[start:start + 512] = -np.partition(w, k - 1, axis=1)[:, k - 1]
            continue
        mu, sigma = w.mean(axis=1), w.std(axis=1, ddof=1)
        if method == "parametric":
            out[start:start + 512] = -(mu + z * sigma)
        elif method == "cornish_fisher":
            skew = stats.skew(w, axis=1, bias=False)
            kurt = stats.kurtosis(w, axis=1, fisher=True, bias=False)
            out[start:start + 512] = -(mu + m.cornish_fisher_z(z, skew, kurt) * sigma)
        else:
            raise ValueError(f"no rolling forecast for {method}")
    return out


def measures_compute(*, organization: Organization, returns: Sequence[float] | None = None,
                     equity: Sequence[float] | None = None, confidence: float = 0.99,
                     horizon: int = 1, methods: Sequence[str] | None = None,
                     backtest_window: int = 250, n_simulations: int = 20_000, seed: int = 0,
                     var_forecasts: Sequence[float] | None = None,
                     asset_returns: Mapping[str, Sequence[float]] | None = None,
                     weights: Mapping[str, float] | None = None,
                     positions: Mapping[str, float] | None = None,
                     prices: Mapping[str, float] | None = None,
                     instruments: Mapping[str, Mapping[str, str]] | None = None,
                     portfolio_equity: float | None = None) -> dict[str, Any]:
    """VaR/CVaR by each method, a Kupiec backtest, and — when given the data — correlation,
    exposures and the utilisation of the organisation's limits.

    The Kupiec backtest uses `var_forecasts` when given (one per return), else one-period
    forecasts from a rolling window of `backtest_window` past returns, for the historical,
    parametric and Cornish-Fisher methods (Monte Carlo is left out: one simulation per period
    would be slow for no insight the parametric one lacks).
    """
    if (returns is None) == (equity is None):
        raise ApplicationError("Give either returns or equity.",
                               fields={"returns": ["Give either returns or equity."]})
    r = returns_from_equity(equity) if equity is not None else np.asarray(returns, dtype=float)
    if r.size > MAX_SERIES_LENGTH:
        raise ApplicationError(f"At most {MAX_SERIES_LENGTH} values.", code="too_large",
                               status_code=413)
    methods = list(methods or m.METHODS)
    out: dict[str, Any] = {"observations": int(r.size), "confidence": confidence,
                           "horizon": horizon, "estimates": {}, "backtest": {}}
    try:
        m.portfolio_returns(r)
        for method in methods:
            kwargs: dict[str, Any] = {"confidence": confidence, "horizon": horizon}
            if method == "monte_carlo":
                kwargs.update(n_simulations=n_simulations, seed=seed)
            est = m.value_at_risk(r, method, **kwargs)
            out["estimates"][method] = {"var": est.var, "cvar": est.cvar,
                                        "observations": est.observations}
        if var_forecasts is not None:
            result = m.var_backtest(r, np.asarray(var_forecasts, dtype=float), confidence)
            out["backtest"]["given"] = _kupiec_dict(result)
        else:
            window = int(backtest_window)
            tested = r[-(MAX_BACKTEST_PERIODS + window):]
            if window >= 20 and tested.size > window:
                for method in ("historical", "parametric", "cornish_fisher"):
                    if method not in methods:
                        continue
                    forecasts = rolling_var_forecasts(tested, method, window, confidence)
                    result = m.var_backtest(tested[window:], forecasts, confidence)
                    out["backtest"][method] = {**_kupiec_dict(result), "window": window}
        if asset_returns:
            names = list(asset_returns)
            if len({len(v) for v in asset_returns.values()}) > 1:
                raise ApplicationError(
                    "asset_returns: every asset needs the same number of returns.",
                    fields={"asset_returns": ["Every asset needs the same number of returns."]})
            matrix = np.column_stack([np.asarray(asset_returns[k], dtype=float) for k in names])
            out["correlation"] = {"assets": names,
                                  "matrix": m.correlation_matrix(matrix).round(6).tolist()}
            if weights:
                w = [float(weights.get(k, 0.0)) for k in names]
                est = m.historical_var(matrix, confidence=confidence, horizon=horizon, weights=w)
                out["portfolio"] = {"var": est.var, "cvar": est.cvar,
                                    "weights": dict(zip(names, w, strict=True))}
        if positions:
            exp = m.exposures(positions, prices or {}, instruments, equity=portfolio_equity)
            out["exposures"] = _exposures_dict(exp)
            if portfolio_equity:
                limits = selectors.effective_limits(organization=organization)
                snapshot = PortfolioSnapshot(
                    timestamp=_now_ns(), cash=0.0, equity=float(portfolio_equity),
                    positions={k: float(v) for k, v in positions.items()},
                    prices={k: float(v) for k, v in (prices or {}).items()},
                    day_start_equity=float(portfolio_equity),
                    peak_equity=float(portfolio_equity))
                out["utilisation"] = [
                    {"rule": u.rule, "subject": u.subject, "current": _finite(u.current),
                     "limit": u.limit, "fraction": _finite(u.fraction), "level": u.level}
                    for u in utilisation(limits, snapshot, instruments)]
    except m.MeasureError as exc:
        raise ApplicationError(str(exc), fields={"returns": [str(exc)]}) from None
    return out


def _kupiec_dict(k: m.KupiecResult) -> dict[str, Any]:
    return {"observations": k.observations, "breaches": k.breaches,
            "expected_rate": k.expected_rate, "observed_rate": k.observed_rate,
            "likelihood_ratio": k.likelihood_ratio, "p_value": k.p_value, "reject": k.reject,
            "significance": k.significance}


def _exposures_dict(e: m.Exposures) -> dict[str, Any]:
    def g(x: m.GroupExposure) -> dict[str, Any]:
        return {"long": x.long, "short": x.short, "gross": x.gross, "net": x.net,
                "gross_fraction": x.gross_fraction, "net_fraction": x.net_fraction}

    return {"total": g(e.total), "by_asset": {k: g(v) for k, v in e.by_asset.items()},
            "by_asset_class": {k: g(v) for k, v in e.by_asset_class.items()},
            "by_sector": {k: g(v) for k, v in e.by_sector.items()}}

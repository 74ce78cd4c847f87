"""Reads of risk data, always scoped by organisation: limit sets and the effective limits they
merge into, the kill switch, breaches, utilisation snapshots and alert targets."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from risk.core.limits import EffectiveLimits, merge_limits
from risk.models import (
    LEVEL_NAMES,
    AlertDelivery,
    AlertTarget,
    Breach,
    KillSwitch,
    KillSwitchEvent,
    Level,
    RiskLimitSet,
    UtilisationSnapshot,
)


def object_id(value: Any) -> int | None:
    """An id given as an int, a numeric string or a model instance (anything with `pk`)."""
    if value is None:
        return None
    if hasattr(value, "pk"):
        return int(value.pk)
    return int(value)


def limit_set_list(*, organization: Organization, level: str | None = None,
                   ref_id: int | None = None) -> QuerySet[RiskLimitSet]:
    qs = RiskLimitSet.objects.filter(organization=organization)
    if level:
        qs = qs.filter(level=level)
    if ref_id is not None:
        qs = qs.filter(ref_id=ref_id)
    return qs.select_related("updated_by").order_by("level", "ref_id", "id")


def limit_sets_for(*, organization: Organization, strategy: Any = None, deployment: Any = None
                   ) -> list[RiskLimitSet]:
    """The limit sets that apply to a run: the organisation's, then the strategy's, then the
    deployment's (broadest first, the order `merge_limits` expects), those that exist."""
    wanted = [(Level.ORG, None)]
    if strategy is not None:
        wanted.append((Level.STRATEGY, object_id(strategy)))
    if deployment is not None:
        wanted.append((Level.DEPLOYMENT, object_id(deployment)))
    rows = {(s.level, s.ref_id): s for s in RiskLimitSet.objects.filter(
        organization=organization, level__in=[level for level, _ in wanted])}
    return [rows[key] for key in wanted if key in rows]


def effective_limits(*, organization: Organization, strategy: Any = None, deployment: Any = None
                     ) -> EffectiveLimits:
    """The limits in force for a run: the most restrictive of every level that is set."""
    sets = limit_sets_for(organization=organization, strategy=strategy, deployment=deployment)
    return merge_limits(*[(LEVEL_NAMES[s.level], s.to_limits()) for s in sets])


def kill_switch_get(*, organization: Organization) -> KillSwitch:
    """The organisation's switch; an unsaved armed one if it has never been moved."""
    switch = KillSwitch.objects.filter(organization=organization).first()
    return switch if switch is not None else KillSwitch(organization=organization)


def kill_switch_event_list(*, organization: Organization) -> QuerySet[KillSwitchEvent]:
    return KillSwitchEvent.objects.filter(organization=organization).order_by("-at", "-id")


def breach_list(*, organization: Organization, source: str | None = None,
                source_id: int | None = None, halted: bool | None = None) -> QuerySet[Breach]:
    qs = Breach.objects.filter(organization=organization)
    if source:
        qs = qs.filter(source=source)
    if source_id is not None:
        qs = qs.filter(source_id=source_id)
    if halted is not None:
        qs = qs.filter(halted=halted)
    return qs.order_by("-at", "-id")


def utilisation_top(*, organization: Organization, limit: int = 5,
                    recent: int = 50) -> list[dict[str, Any]]:
    """The limits most used across the organisation's latest snapshots (one per running
    deployment), highest fraction first, each with the snapshot's source: the dashboard's
    bars."""
    rows = []
    for snap in UtilisationSnapshot.objects.filter(organization=organization)[:recent]:
        rows += [dict(r, source=snap.source, source_id=snap.source_id, at=snap.at)
                 for r in snap.rows if r.get("fraction") is not None]
    rows.sort(key=lambda r: -r["fraction"])
    return rows[:limit]


def utilisation_latest(*, organization: Organization) -> UtilisationSnapshot | None:
    return (UtilisationSnapshot.objects.filter(organization=organization)
            .order_by("-recorded_at", "-id").first())


def alert_target_list(*, organization: Organization) -> QuerySet[AlertTarget]:
    return AlertTarget.objects.filter(organization=organization).order_by("name", "id")


def alert_delivery_list(*, organization: Organization) -> QuerySet[AlertDelivery]:
    return (AlertDelivery.objects.filter(organization=organization)
            .select_related("target").order_by("-created_at", "-id"))

"""Tenant-isolation cases of the risk API routes, merged into tests/test_tenant_isolation.py:
for each route, how to create organisation A's object and the string that shows it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from risk.models import AlertDelivery, AlertTarget, Breach, KillSwitch, RiskLimitSet
from tests.test_tenant_isolation import RouteCase, Target, World


def _limit_set(w: World) -> Target:
    # A distinctive note marks A's set; the body is a valid change, so a 404 is the only refusal.
    note = f"a-limits-{uuid.uuid4().hex[:10]}"
    limit_set = RiskLimitSet.objects.create(organization=w.org_a, level="strategy",
                                            ref_id=990001, limits={"max_drawdown": 0.2},
                                            note=note)
    body = {"limits": {"max_drawdown": 0.05}}
    return Target(kwargs={"pk": limit_set.pk}, marker=note,
                  bodies={"PUT": body, "PATCH": body,
                          "POST": {"level": "org", "limits": {"max_drawdown": 0.05}}})


def _breach(w: World) -> Target:
    reason = f"max_drawdown: a-breach-{uuid.uuid4().hex[:10]}"
    breach = Breach.objects.create(organization=w.org_a, source="simulation", source_id=990002,
                                   rule="max_drawdown", reason=reason, halted=True,
                                   at=datetime(2024, 1, 2, tzinfo=UTC),
                                   fingerprint=uuid.uuid4().hex)
    return Target(kwargs={"pk": breach.pk}, marker=reason)


def _alert_target(w: World) -> Target:
    email = f"a-desk-{uuid.uuid4().hex[:8]}@example.com"
    target = AlertTarget.objects.create(organization=w.org_a, name="A desk", kind="email",
                                        email=email)
    return Target(kwargs={"pk": target.pk}, marker=email,
                  bodies={"PATCH": {"enabled": False},
                          "POST": {"name": "B", "kind": "email", "email": "b@example.com"}})


def _collection(make):
    def inner(w: World) -> Target:
        target = make(w)
        return Target(marker=target.marker, bodies=target.bodies)
    return inner


def _kill_switch(w: World) -> Target:
    reason = f"a-kill-{uuid.uuid4().hex[:10]}"
    KillSwitch.objects.create(organization=w.org_a, state="tripped", reason=reason,
                              tripped_at=datetime(2024, 1, 2, tzinfo=UTC),
                              tripped_by_label="system")
    return Target(marker=reason, bodies={"POST": {"reason": "B stops A"},
                                         "PATCH": {"escalate": "off"}})


def _effective(w: World) -> Target:
    # 0.0123 appears only in A's effective limits.
    RiskLimitSet.objects.create(organization=w.org_a, level="org",
                                limits={"daily_loss_fraction": 0.0123})
    return Target(marker="0.0123")


def _delivery(w: World) -> Target:
    email = f"a-deliveries-{uuid.uuid4().hex[:8]}@example.com"
    target = AlertTarget.objects.create(organization=w.org_a, name=email, kind="email",
                                        email=email)
    breach = _breach(w)
    AlertDelivery.objects.create(organization=w.org_a, target=target,
                                 breach_id=breach.kwargs["pk"])
    return Target(marker=email)


ROUTE_CASES: dict[str, RouteCase] = {
    "risk-api:limit-list": RouteCase(_collection(_limit_set)),
    "risk-api:limit-detail": RouteCase(_limit_set),
    "risk-api:limit-effective": RouteCase(_effective),
    "risk-api:breach-list": RouteCase(_collection(_breach)),
    "risk-api:breach-detail": RouteCase(_breach),
    "risk-api:kill-switch": RouteCase(_kill_switch),
    "risk-api:kill-switch-rearm": RouteCase(lambda w: Target(
        bodies={"POST": {"reason": "B re-arms A"}})),
    "risk-api:measures": RouteCase(lambda w: Target(
        bodies={"POST": {"returns": [0.01, -0.02, 0.005, 0.0]}})),
    "risk-api:alert-target-list": RouteCase(_collection(_alert_target)),
    "risk-api:alert-target-detail": RouteCase(_alert_target),
    "risk-api:alert-delivery-list": RouteCase(_delivery),
}

"""Tenant-isolation cases of the reporting API routes, merged into tests/test_tenant_isolation.py:
for each route, how to create organisation A's object and the string that shows it."""

from __future__ import annotations

import uuid

from accounts.models import Membership
from reporting.models import ReportDelivery, ReportSubscription
from tests.reporting.support import stored_report
from tests.test_tenant_isolation import RouteCase, Target, World


def _report(w: World) -> Target:
    report = stored_report(w.org_a, requested_by=w.owner_a,
                           title=f"a-report-{uuid.uuid4().hex[:10]}")
    return Target(kwargs={"pk": report.pk}, marker=report.title,
                  bodies={"POST": {"kind": "statement", "parameters": {}}})


def _download(w: World) -> Target:
    marker = f"a-file-{uuid.uuid4().hex}"
    report = stored_report(w.org_a, content=marker.encode())
    return Target(kwargs={"pk": report.pk}, marker=marker)


def _subscription(w: World) -> Target:
    member = Membership.objects.get(organization=w.org_a, user=w.owner_a)
    marker = f"a-sub-{uuid.uuid4().hex[:10]}"
    sub = ReportSubscription.objects.create(organization=w.org_a, member=member,
                                            kind="monthly_statement",
                                            parameters={"note": marker})
    return Target(kwargs={"pk": sub.pk}, marker=marker,
                  bodies={"PATCH": {"active": False},
                          "POST": {"kind": "weekly_performance", "parameters": {}}})


def _delivery(w: World) -> Target:
    member = Membership.objects.get(organization=w.org_a, user=w.owner_a)
    sub = ReportSubscription.objects.create(organization=w.org_a, member=member,
                                            kind="monthly_statement")
    period = f"a-{uuid.uuid4().hex[:10]}"
    ReportDelivery.objects.create(organization=w.org_a, subscription=sub, period=period,
                                  recipient=w.owner_a.email)
    return Target(marker=period)


def _collection(make):
    def inner(w: World) -> Target:
        target = make(w)
        return Target(marker=target.marker, bodies=target.bodies)
    return inner


ROUTE_CASES: dict[str, RouteCase] = {
    "reporting-api:report-list": RouteCase(_collection(_report)),
    "reporting-api:report-detail": RouteCase(_report),
    "reporting-api:report-download": RouteCase(_download),
    "reporting-api:subscription-list": RouteCase(_collection(_subscription)),
    "reporting-api:subscription-detail": RouteCase(_subscription),
    "reporting-api:delivery-list": RouteCase(_delivery),
}

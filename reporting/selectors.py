"""Reads of the reporting app, always scoped by organisation and, for reports, by what the
caller's role may see (`reporting.models.KIND_ROLES`; the requester always sees their own)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Organization
from accounts.permissions import Role
from accounts.selectors import Caller
from reporting.models import (
    Report,
    ReportDelivery,
    ReportSubscription,
    kinds_visible_to,
)

# Members who manage everyone's subscriptions and see every delivery.
SUBSCRIPTION_MANAGERS = frozenset({Role.OWNER, Role.ADMIN, Role.COMPLIANCE})


def report_visibility(caller: Caller) -> Q:
    return Q(kind__in=kinds_visible_to(caller.role)) | Q(requested_by=caller.user)


def report_list(*, organization: Organization, caller: Caller) -> QuerySet[Report]:
    return Report.objects.filter(organization=organization).filter(
        report_visibility(caller)).select_related("requested_by")


def subscription_list(*, organization: Organization, caller: Caller
                      ) -> QuerySet[ReportSubscription]:
    qs = ReportSubscription.objects.filter(organization=organization).select_related(
        "member__user")
    if caller.role not in SUBSCRIPTION_MANAGERS:
        qs = qs.filter(member=caller.membership)
    return qs


def delivery_list(*, organization: Organization, caller: Caller) -> QuerySet[ReportDelivery]:
    qs = ReportDelivery.objects.filter(organization=organization).select_related(
        "subscription__member__user")
    if caller.role not in SUBSCRIPTION_MANAGERS:
        qs = qs.filter(subscription__member=caller.membership)
    return qs

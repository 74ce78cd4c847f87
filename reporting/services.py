"""Every write of the reporting app: requesting and generating reports, managing subscriptions,
and delivering scheduled e-mails exactly once.

Each service is one transaction that validates, writes and records its audit entry; tasks are
enqueued with `transaction.on_commit`. Delivery follows claim-then-send: the `ReportDelivery`
row for (subscription, period) is created or locked and moved to ``sending`` in a transaction
*before* the e-mail goes out, so a second run of the same task (a re-delivered message, a beat
tick twice) finds it ``sent`` or ``sending`` and sends nothing. A failed send is marked
``failed`` with ``last_error`` and retried by the task with backoff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization, User
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError, Forbidden, NotFound
from reporting import sources
from reporting.models import (
    KIND_FORMATS,
    KIND_ROLES,
    SUBSCRIPTION_REPORT_KIND,
    DeliveryStatus,
    Report,
    ReportDelivery,
    ReportStatus,
    ReportSubscription,
    SubscriptionKind,
)

logger = logging.getLogger("nexow.reporting")
UNSUBSCRIBE_SALT = "reporting.unsubscribe"


class TransientDeliveryError(Exception):
    """Sending failed for a reason that may pass (SMTP or network trouble): retry later."""


def _enqueue_generation(report_id: int) -> None:
    from reporting.tasks import generate_report

    generate_report.delay(report_id)


# --- reports --------------------------------------------------------------------------------

def report_kind_allowed(*, kind: str, role: str) -> bool:
    return role in KIND_ROLES.get(kind, frozenset())


def report_request(*, organization: Organization, caller: Caller, kind: str,
                   fmt: str | None = None, parameters: dict[str, Any] | None = None,
                   request=None) -> Report:
    """Queue a report; the caller's role must be allowed to see its kind."""
    if kind not in KIND_ROLES:
        raise ApplicationError(f"unknown report kind {kind!r}", fields={"kind": ["unknown"]})
    if not report_kind_allowed(kind=kind, role=caller.role):
        raise Forbidden(f"Your role ({caller.role}) may not request {kind} reports.",
                        code="kind_not_allowed")
    fmt = fmt or KIND_FORMATS[kind][0]
    if fmt not in KIND_FORMATS[kind]:
        raise ApplicationError(f"{kind} reports come as {', '.join(KIND_FORMATS[kind])}",
                               fields={"format": [f"not available for {kind}"]})
    with transaction.atomic():
        report = Report(organization=organization, kind=kind, format=fmt,
                        parameters=parameters or {}, requested_by=caller.user)
        report.full_clean(exclude=["file"])
        report.save()
        audit_record(organization=organization, actor=caller.user, action="report.requested",
                     target=report, request=request,
                     metadata={"kind": kind, "format": fmt})
        transaction.on_commit(lambda: _enqueue_generation(report.pk))
    return report


def report_generate(*, report_id: int) -> str:
    """Produce the report's file (the task body). Idempotent: a finished report is left alone."""
    with transaction.atomic():
        report = Report.objects.select_for_update(of=("self",)).select_related("organization") \
            .filter(pk=report_id).first()
        if report is None:
            return "missing"
        if report.status in (ReportStatus.SUCCEEDED, ReportStatus.FAILED):
            return report.status
        report.status, report.started_at = ReportStatus.RUNNING, timezone.now()
        report.attempts += 1
        report.save(update_fields=["status", "started_at", "attempts"])
    try:
        content, title = sources.report_build(organization=report.organization,
                                              kind=report.kind, fmt=report.format,
                                              parameters=report.parameters)
    except sources.ReportParameterError as exc:
        return _report_failed(report, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure must land on the row, visibly
        logger.exception("report %s failed", report.pk)
        return _report_failed(report, f"{type(exc).__name__}: {exc}")
    return _report_store(report, content, title)


def _report_store(report: Report, content: bytes, title: str) -> str:
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        if locked.status == ReportStatus.SUCCEEDED:
            return locked.status  # another attempt finished first
        if locked.file:
            locked.file.delete(save=False)
        locked.file.save(locked.filename, ContentFile(content), save=False)
        locked.sha256 = hashlib.sha256(content).hexdigest()
        locked.size = len(content)
        locked.title = title[:200]
        locked.status, locked.finished_at, locked.error = ReportStatus.SUCCEEDED, \
            timezone.now(), ""
        locked.save()
        audit_record(organization=locked.organization, actor=None, action="report.generated",
                     target=locked, metadata={"sha256": locked.sha256, "size": locked.size})
    report.refresh_from_db()
    return ReportStatus.SUCCEEDED


def _report_failed(report: Report, error: str) -> str:
    with transaction.atomic():
        Report.objects.filter(pk=report.pk).update(status=ReportStatus.FAILED, error=error[:4000],
                                                   finished_at=timezone.now())
        audit_record(organization=report.organization, actor=None, action="report.failed",
                     target=report, metadata={"error": error[:300]})
    report.refresh_from_db()
    return ReportStatus.FAILED


def report_delete(*, report: Report, actor: User, request=None) -> None:
    with transaction.atomic():
        audit_record(organization=report.organization, actor=actor, action="report.deleted",
                     target=report, request=request, metadata={"sha256": report.sha256})
        name = report.file.name if report.file else ""
        report.delete()
        if name:
            storage = Report._meta.get_field("file").storage
            transaction.on_commit(lambda: storage.delete(name))


# --- subscriptions --------------------------------------------------------------------------

def subscription_create(*, organization: Organization, caller: Caller, kind: str,
                        parameters: dict[str, Any] | None = None, request=None
                        ) -> ReportSubscription:
    """Subscribe the caller themself to a kind of scheduled report."""
    report_kind = SUBSCRIPTION_REPORT_KIND.get(kind)
    if report_kind is None:
        raise ApplicationError(f"unknown subscription kind {kind!r}", fields={"kind": ["unknown"]})
    if not report_kind_allowed(kind=report_kind, role=caller.role):
        raise Forbidden(f"Your role ({caller.role}) may not receive {kind} reports.",
                        code="kind_not_allowed")
    with transaction.atomic():
        sub = ReportSubscription(organization=organization, member=caller.membership,
                                 kind=kind, parameters=parameters or {})
        sub.full_clean()
        sub.save()
        audit_record(organization=organization, actor=caller.user,
                     action="report.subscription.created", target=sub, request=request,
                     metadata={"kind": kind})
    periodic_tasks_ensure()
    return sub


def subscription_update(*, subscription: ReportSubscription, actor: User,
                        active: bool | None = None, parameters: dict[str, Any] | None = None,
                        request=None) -> ReportSubscription:
    with transaction.atomic():
        changed = {}
        if active is not None and active != subscription.active:
            subscription.active = active
            changed["active"] = active
        if parameters is not None:
            subscription.parameters = parameters
            changed["parameters"] = True
        subscription.save()
        audit_record(organization=subscription.organization, actor=actor,
                     action="report.subscription.updated", target=subscription,
                     request=request, metadata=changed)
    return subscription


def subscription_delete(*, subscription: ReportSubscription, actor: User, request=None) -> None:
    with transaction.atomic():
        audit_record(organization=subscription.organization, actor=actor,
                     action="report.subscription.deleted", target=subscription, request=request)
        subscription.delete()


def unsubscribe_token(subscription: ReportSubscription) -> str:
    return signing.dumps({"s": subscription.pk, "n": subscription.unsubscribe_nonce},
                         salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(subscription: ReportSubscription) -> str:
    path = reverse("reporting:unsubscribe", kwargs={"token": unsubscribe_token(subscription)})
    return settings.SITE_URL.rstrip("/") + path


def subscription_unsubscribe(*, token: str, request=None) -> ReportSubscription:
    """Deactivate the subscription named by a signed token (no login needed)."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise NotFound("This unsubscribe link is not valid.") from None
    with transaction.atomic():
        sub = ReportSubscription.objects.select_for_update(of=("self",)).select_related(
            "organization", "member__user").filter(pk=data.get("s"),
                                                   unsubscribe_nonce=data.get("n")).first()
        if sub is None:
            raise NotFound("This unsubscribe link is not valid any more.")
        if sub.active:
            sub.active = False
            sub.save(update_fields=["active"])
            audit_record(organization=sub.organization, actor=None,
                         action="report.subscription.unsubscribed", target=sub, request=request,
                         metadata={"via": "link", "email": sub.member.user.email})
    return sub


# --- schedules and deliveries ---------------------------------------------------------------

def period_for(kind: str, today: dt.date) -> str:
    """The period a run on `today` reports: the one that has just ended."""
    if kind == SubscriptionKind.MONTHLY_STATEMENT:
        last = today.replace(day=1) - dt.timedelta(days=1)
        return f"{last:%Y-%m}"
    if kind == SubscriptionKind.WEEKLY_PERFORMANCE:
        iso = (today - dt.timedelta(days=7)).isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if kind == SubscriptionKind.ANNUAL_TAX:
        return str(today.year - 1)
    return (today - dt.timedelta(days=1)).isoformat()


def period_bounds(kind: str, period: str) -> tuple[dt.date, dt.date]:
    if kind == SubscriptionKind.MONTHLY_STATEMENT:
        start = dt.date.fromisoformat(period + "-01")
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        return start, nxt - dt.timedelta(days=1)
    if kind == SubscriptionKind.WEEKLY_PERFORMANCE:
        year, week = period.split("-W")
        start = dt.date.fromisocalendar(int(year), int(week), 1)
        return start, start + dt.timedelta(days=6)
    if kind == SubscriptionKind.ANNUAL_TAX:
        return dt.date(int(period), 1, 1), dt.date(int(period), 12, 31)
    day = dt.date.fromisoformat(period)
    return day, day


def subscription_report_parameters(sub: ReportSubscription, period: str) -> dict[str, Any]:
    """The report parameters of one scheduled period."""
    start, end = period_bounds(sub.kind, period)
    params = dict(sub.parameters)
    if sub.kind == SubscriptionKind.MONTHLY_STATEMENT and isinstance(params.get("account"), dict):
        account = dict(params["account"])
        account["period_start"], account["period_end"] = start.isoformat(), end.isoformat()
        in_period = lambda d: start.isoformat() <= str(d)[:10] <= end.isoformat()  # noqa: E731
        account["fills"] = [f for f in account.get("fills", []) if in_period(f.get("time"))]
        account["cash_flows"] = [c for c in account.get("cash_flows", [])
                                 if in_period(c.get("date"))]
        params["account"] = account
    elif sub.kind == SubscriptionKind.MONTHLY_STATEMENT:
        params["start"], params["end"] = start.isoformat(), end.isoformat()  # simulation source
    elif sub.kind == SubscriptionKind.ANNUAL_TAX:
        params["year"] = start.year
    elif sub.kind == SubscriptionKind.RISK_ALERTS:
        params["start"], params["end"] = start.isoformat(), end.isoformat()
    return params


def subscriptions_due(*, kind: str, today: dt.date) -> list[tuple[int, str]]:
    """(subscription id, period) of every active subscription of `kind` for the run of `today`."""
    period = period_for(kind, today)
    ids = ReportSubscription.objects.filter(kind=kind, active=True).values_list("pk", flat=True)
    return [(pk, period) for pk in ids]


def _claim(subscription_id: int, period: str) -> ReportDelivery | str:
    with transaction.atomic():
        sub = ReportSubscription.objects.select_related("member__user", "organization") \
            .filter(pk=subscription_id).first()
        if sub is None or not sub.active:
            return "inactive"
        delivery, _ = ReportDelivery.objects.get_or_create(
            subscription=sub, period=period,
            defaults={"organization": sub.organization, "recipient": sub.member.user.email})
        delivery = ReportDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.SENDING):
            return delivery.status
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts"])
    delivery.subscription = sub
    return delivery


def delivery_run(*, subscription_id: int, period: str, final_attempt: bool = True) -> str:
    """Send one subscription's report for one period, at most once (see the module docstring).
    Raises TransientDeliveryError when the send may succeed later (and it is not the final
    attempt); the delivery is then ``failed`` until the retry claims it again."""
    claimed = _claim(subscription_id, period)
    if isinstance(claimed, str):
        return claimed
    delivery = claimed
    sub = delivery.subscription
    from reporting.email import subscription_email

    try:
        report = delivery.report
        if report is None or report.status != ReportStatus.SUCCEEDED:
            report_kind = SUBSCRIPTION_REPORT_KIND[sub.kind]
            with transaction.atomic():
                report = Report.objects.create(
                    organization=sub.organization, kind=report_kind,
                    format=KIND_FORMATS[report_kind][0],
                    parameters=subscription_report_parameters(sub, period),
                    requested_by=sub.member.user)
                ReportDelivery.objects.filter(pk=delivery.pk).update(report=report)
            report_generate(report_id=report.pk)
            report.refresh_from_db()
        if report.status != ReportStatus.SUCCEEDED:
            _delivery_failed(delivery, f"report {report.pk} failed: {report.error}")
            return DeliveryStatus.FAILED
        with report.file.open("rb") as handle:
            content = handle.read()
        message = subscription_email(subscription=sub, report=report, period=period,
                                     content=content, unsubscribe_url=unsubscribe_url(sub))
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        _delivery_failed(delivery, f"{type(exc).__name__}: {exc}")
        if final_attempt:
            return DeliveryStatus.FAILED
        raise TransientDeliveryError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - a failure must land on the row, visibly
        logger.exception("delivery %s failed", delivery.pk)
        _delivery_failed(delivery, f"{type(exc).__name__}: {exc}")
        return DeliveryStatus.FAILED
    with transaction.atomic():
        ReportDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error="")
        audit_record(organization=sub.organization, actor=None, action="report.delivery.sent",
                     target=delivery, metadata={"period": period, "report": report.pk,
                                                "recipient": sub.member.user.email})
    return DeliveryStatus.SENT


def _delivery_failed(delivery: ReportDelivery, error: str) -> None:
    with transaction.atomic():
        ReportDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED,
                                                             last_error=error[:4000])
        audit_record(organization=delivery.organization, actor=None,
                     action="report.delivery.failed", target=delivery,
                     metadata={"period": delivery.period, "error": error[:300]})


# The beat schedule of each subscription kind (UTC crontab fields).
SCHEDULES: dict[str, dict[str, str]] = {
    SubscriptionKind.MONTHLY_STATEMENT: {"minute": "0", "hour": "6", "day_of_month": "1",
                                         "month_of_year": "*", "day_of_week": "*"},
    SubscriptionKind.WEEKLY_PERFORMANCE: {"minute": "0", "hour": "6", "day_of_month": "*",
                                          "month_of_year": "*", "day_of_week": "1"},
    SubscriptionKind.ANNUAL_TAX: {"minute": "0", "hour": "6", "day_of_month": "15",
                                  "month_of_year": "1", "day_of_week": "*"},
    SubscriptionKind.RISK_ALERTS: {"minute": "30", "hour": "6", "day_of_month": "*",
                                   "month_of_year": "*", "day_of_week": "*"},
}


def periodic_tasks_ensure(apps: Any = None) -> int:
    """Create (or leave) one django-celery-beat PeriodicTask per subscription kind; returns how
    many were created. Used by the data migration and on first subscription."""
    import json

    if apps is None:
        from django_celery_beat.models import CrontabSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")  # noqa: N806
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")  # noqa: N806
    created = 0
    for kind, cron in SCHEDULES.items():
        name = f"reporting: {kind}"
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        schedule, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **cron)
        PeriodicTask.objects.create(name=name, task="reporting.run_subscriptions",
                                    crontab=schedule, kwargs=json.dumps({"kind": kind}))
        created += 1
    return created


def membership_for(*, organization: Organization, user: User) -> Membership | None:
    return Membership.objects.filter(organization=organization, user=user).first()

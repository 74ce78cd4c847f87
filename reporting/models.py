"""Reporting data: the archive of generated reports, e-mail subscriptions and their deliveries.

* `Report` — one generated document of an organisation (kind, parameters, who asked, status,
  the file under MEDIA_ROOT with its sha256 and size, or the error). Generation is a Celery task
  (`reporting.generate_report`), idempotent by report id.
* `ReportSubscription` — a member receives a kind of report by e-mail on a schedule
  (django-celery-beat); it carries a random nonce that, signed, forms its unsubscribe link.
* `ReportDelivery` — one e-mail of one subscription for one period. Unique per (subscription,
  period) and claimed in a transaction before sending, so a period is mailed exactly once even
  if its task runs twice; failures keep ``status`` and ``last_error`` visible.

Who may see which kind of report is one table, `KIND_ROLES` (documented in docs/reporting.md):
compliance, owners and admins see every kind; other members see performance reports, statements
and trade exports; anyone sees the reports they requested themselves.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Membership, Organization
from accounts.permissions import Role


class ReportKind(models.TextChoices):
    PERFORMANCE = "performance", "Performance report"
    STATEMENT = "statement", "Account statement"
    TRADES = "trades", "Trades export"
    TAX = "tax", "Tax report"
    RTS22 = "rts22", "MiFIR RTS 22 transaction report"
    BEST_EXECUTION = "best_execution", "Best-execution report"
    RISK_BREACHES = "risk_breaches", "Risk-limit breach report"
    AUDIT = "audit", "Audit log export"


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    CSV = "csv", "CSV"
    XML = "xml", "XML"
    XLSX = "xlsx", "Excel"
    JSON = "json", "JSON"


# Formats each kind can be produced in; the first is the default.
KIND_FORMATS: dict[str, tuple[str, ...]] = {
    ReportKind.PERFORMANCE: ("pdf",),
    ReportKind.STATEMENT: ("pdf", "xlsx"),
    ReportKind.TRADES: ("xlsx", "csv"),
    ReportKind.TAX: ("pdf", "csv", "xlsx", "json"),
    ReportKind.RTS22: ("xml", "csv"),
    ReportKind.BEST_EXECUTION: ("pdf", "csv", "xlsx"),
    ReportKind.RISK_BREACHES: ("pdf", "csv", "xlsx"),
    ReportKind.AUDIT: ("csv", "pdf"),
}

_EVERYONE = frozenset(Role.values)
_OVERSIGHT = frozenset({Role.OWNER, Role.ADMIN, Role.COMPLIANCE})
# Which roles may see (list, download, subscribe to) each kind; the requester always sees theirs.
KIND_ROLES: dict[str, frozenset[str]] = {
    ReportKind.PERFORMANCE: _EVERYONE,
    ReportKind.STATEMENT: _EVERYONE,
    ReportKind.TRADES: _EVERYONE,
    ReportKind.TAX: _OVERSIGHT,
    ReportKind.RTS22: _OVERSIGHT,
    ReportKind.BEST_EXECUTION: _OVERSIGHT,
    ReportKind.RISK_BREACHES: _OVERSIGHT,
    ReportKind.AUDIT: _OVERSIGHT,
}

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "xml": "application/xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def kinds_visible_to(role: str) -> list[str]:
    return [kind for kind, roles in KIND_ROLES.items() if role in roles]


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


def report_upload_to(instance: Report, filename: str) -> str:
    return f"reports/org-{instance.organization_id}/{filename}"


class Report(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="reports")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    format = models.CharField(max_length=5, choices=ReportFormat.choices,
                              default=ReportFormat.PDF)
    title = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=ReportStatus.choices,
                              default=ReportStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=report_upload_to, blank=True, max_length=255)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "kind", "created_at"]),
                   models.Index(fields=["organization", "status"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ReportKind.values),
                                   name="reporting_report_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=ReportStatus.values),
                                   name="reporting_report_status_valid"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} #{self.pk}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"nexow-{self.kind}-{self.pk}.{self.format}"


class SubscriptionKind(models.TextChoices):
    MONTHLY_STATEMENT = "monthly_statement", "Monthly statement"
    WEEKLY_PERFORMANCE = "weekly_performance", "Weekly performance report"
    ANNUAL_TAX = "annual_tax", "Annual tax report"
    RISK_ALERTS = "risk_alerts", "Daily risk-limit breach report"


# The report kind each subscription produces (and so who may subscribe, through KIND_ROLES).
SUBSCRIPTION_REPORT_KIND: dict[str, str] = {
    SubscriptionKind.MONTHLY_STATEMENT: ReportKind.STATEMENT,
    SubscriptionKind.WEEKLY_PERFORMANCE: ReportKind.PERFORMANCE,
    SubscriptionKind.ANNUAL_TAX: ReportKind.TAX,
    SubscriptionKind.RISK_ALERTS: ReportKind.RISK_BREACHES,
}


def _nonce() -> str:
    return secrets.token_urlsafe(16)


class ReportSubscription(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="report_subscriptions")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE,
                               related_name="report_subscriptions")
    kind = models.CharField(max_length=24, choices=SubscriptionKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    # Signed into the unsubscribe link; rotating it invalidates links already sent.
    unsubscribe_nonce = models.CharField(max_length=32, default=_nonce, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "kind", "active"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=SubscriptionKind.values),
                                   name="reporting_subscription_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.member.user.email}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class ReportDelivery(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="report_deliveries")
    subscription = models.ForeignKey(ReportSubscription, on_delete=models.CASCADE,
                                     related_name="deliveries")
    period = models.CharField(max_length=16)  # "2024-01", "2024-W05", "2024", "2024-01-31"
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="deliveries")
    recipient = models.EmailField(blank=True)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period"],
                                    name="reporting_delivery_once_per_period"),
        ]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return f"{self.subscription} {self.period} ({self.status})"

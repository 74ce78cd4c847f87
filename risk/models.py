"""Risk data of an organisation: limit sets per level, the organisation's kill switch and its
history, recorded breaches, utilisation snapshots, alert targets and alert deliveries.

The rules themselves live in `risk.core` (no Django); these models store what configures them and
what they produced. Strategies and deployments are referred to by plain integer ids rather than
foreign keys, so that this app does not depend on the trading app's tables. Writes go through
`risk.services`; the invariants that can live in the database are constraints here.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from risk.core.alerts import FORMATS
from risk.core.limits import LimitsValidationError, RiskLimits


class Level(models.TextChoices):
    ORG = "org", "Organisation"
    STRATEGY = "strategy", "Strategy"
    DEPLOYMENT = "deployment", "Deployment"


# The names `risk.core.merge_limits` gives each level, which appear in refusal reasons.
LEVEL_NAMES: dict[str, str] = {
    Level.ORG: "organisation",
    Level.STRATEGY: "strategy",
    Level.DEPLOYMENT: "deployment",
}


class RiskLimitSet(models.Model):
    """The limits set at one level: the organisation's own, or one strategy's or deployment's.

    `limits` holds only the limits that are set, in the JSON form of `RiskLimits.to_dict()`;
    `clean()` validates it with `RiskLimits.from_dict`, naming each offending field.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_limit_sets")
    level = models.CharField(max_length=16, choices=Level.choices)
    ref_id = models.PositiveBigIntegerField(
        null=True, blank=True,
        help_text="Id of the strategy or deployment (empty for the organisation level).")
    limits = models.JSONField(default=dict)
    note = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization_id", "level", "ref_id", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(level__in=Level.values),
                                   name="risk_limitset_level_valid"),
            # The organisation level names no object; the other levels name exactly one.
            models.CheckConstraint(
                condition=(models.Q(level=Level.ORG, ref_id__isnull=True)
                           | (~models.Q(level=Level.ORG) & models.Q(ref_id__isnull=False))),
                name="risk_limitset_ref_matches_level"),
            models.UniqueConstraint(fields=["organization"], condition=models.Q(level=Level.ORG),
                                    name="risk_limitset_one_org_level"),
            models.UniqueConstraint(fields=["organization", "level", "ref_id"],
                                    condition=models.Q(ref_id__isnull=False),
                                    name="risk_limitset_one_per_object"),
        ]
        indexes = [models.Index(fields=["organization", "level", "ref_id"])]

    def __str__(self) -> str:
        where = self.get_level_display()
        return where if self.ref_id is None else f"{where} {self.ref_id}"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.level == Level.ORG and self.ref_id is not None:
            errors["ref_id"] = "The organisation level does not name a strategy or deployment."
        if self.level in (Level.STRATEGY, Level.DEPLOYMENT) and self.ref_id is None:
            errors["ref_id"] = f"The {self.level} level needs the {self.level}'s id."
        problems = limits_problems(self.limits)
        if problems:
            errors["limits"] = [f"{field}: {message}" for field, message in problems.items()]
        else:
            self.limits = compact_limits(RiskLimits.from_dict(self.limits or {}))
        if errors:
            raise ValidationError(errors)

    def to_limits(self) -> RiskLimits:
        return RiskLimits.from_dict(self.limits or {})


def limits_problems(data: Any) -> dict[str, str]:
    """Every problem of a limits object, by field: unknown keys and invalid values together
    (`RiskLimits.from_dict` stops at unknown keys)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        return {"__all__": "limits must be a JSON object"}
    known = {f.name for f in fields(RiskLimits)}
    problems = {key: "unknown limit" for key in data if key not in known}
    try:
        RiskLimits.from_dict({k: v for k, v in data.items() if k in known})
    except LimitsValidationError as exc:
        problems.update(exc.errors)
    return dict(sorted(problems.items()))


def compact_limits(limits: RiskLimits) -> dict[str, Any]:
    """The JSON of the limits that are set (unset ones and empty collections left out)."""
    return {k: v for k, v in limits.to_dict().items() if v not in (None, [], {})}


class SwitchState(models.TextChoices):
    ARMED = "armed", "Armed"
    TRIPPED = "tripped", "Tripped"


class Escalation(models.TextChoices):
    """Which automatic halts also trip the organisation's switch (stopping every deployment)."""

    OFF = "off", "Never: a halt stops only the run that breached"
    LIVE = "live", "Halts of live deployments"
    ALL = "all", "Halts of live deployments and of simulations"


class KillSwitch(models.Model):
    """The organisation's emergency kill switch: while tripped, every rulebook of the
    organisation refuses every order. Tripped by a person (or by an escalated halt); re-armed
    only by an owner or admin with a reason. Every move is also a `KillSwitchEvent`."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE,
                                        related_name="risk_kill_switch")
    state = models.CharField(max_length=8, choices=SwitchState.choices,
                             default=SwitchState.ARMED)
    escalate = models.CharField(max_length=8, choices=Escalation.choices,
                                default=Escalation.LIVE)
    reason = models.TextField(blank=True)
    rule = models.CharField(max_length=64, blank=True)
    tripped_at = models.DateTimeField(null=True, blank=True)
    tripped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    tripped_by_label = models.CharField(max_length=254, blank=True)  # "system" for a halt
    rearmed_at = models.DateTimeField(null=True, blank=True)
    rearmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    rearm_reason = models.TextField(blank=True)
    # Sequence number of the organisation's "risk" live stream (breach, kill and re-arm events);
    # a client that sees a gap re-fetches from REST.
    event_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=SwitchState.values),
                                   name="risk_killswitch_state_valid"),
            models.CheckConstraint(
                condition=models.Q(state=SwitchState.ARMED)
                | (models.Q(tripped_at__isnull=False) & ~models.Q(reason="")),
                name="risk_killswitch_tripped_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Kill switch of {self.organization} ({self.state})"

    @property
    def tripped(self) -> bool:
        return self.state == SwitchState.TRIPPED


class KillSwitchEvent(models.Model):
    """One move of the organisation's switch (trip or re-arm), kept for the portal and alerts."""

    class Transition(models.TextChoices):
        TRIP = "trip", "Tripped"
        REARM = "rearm", "Re-armed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_kill_switch_events")
    transition = models.CharField(max_length=8, choices=Transition.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=254)
    reason = models.TextField()
    rule = models.CharField(max_length=64, blank=True)
    # Set when an automatic halt escalated: the alert then goes out once, for the breach.
    breach = models.ForeignKey("Breach", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "-at"])]

    def __str__(self) -> str:
        return f"{self.get_transition_display()} by {self.actor_label}"


class Source(models.TextChoices):
    SIMULATION = "simulation", "Simulation"
    DEPLOYMENT = "deployment", "Deployment"


class Breach(models.Model):
    """A limit that refused an order, or a per-bar rule that halted a run (`halted`).

    `fingerprint` identifies the event (source, rule, time, order) so that recording the same
    event twice — a re-delivered task, a re-run step — stores it once.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_breaches")
    source = models.CharField(max_length=16, choices=Source.choices)
    source_id = models.PositiveBigIntegerField()
    rule = models.CharField(max_length=64)
    reason = models.TextField()
    halted = models.BooleanField(default=False)
    at = models.DateTimeField()
    symbol = models.CharField(max_length=64, blank=True)
    order = models.JSONField(default=dict, blank=True)  # side, quantity, price, order type
    fingerprint = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "fingerprint"],
                                    name="risk_breach_recorded_once"),
            models.CheckConstraint(condition=models.Q(source__in=Source.values),
                                   name="risk_breach_source_valid"),
        ]
        indexes = [
            models.Index(fields=["organization", "-at"]),
            models.Index(fields=["organization", "source", "source_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.rule} in {self.source} {self.source_id}"


class UtilisationSnapshot(models.Model):
    """How much of each limit a run or deployment used at one moment (the portal's bars)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_utilisation_snapshots")
    source = models.CharField(max_length=16, choices=Source.choices)
    source_id = models.PositiveBigIntegerField()
    at = models.DateTimeField()
    equity = models.FloatField()
    rows = models.JSONField(default=list)  # [{rule, subject, current, limit, fraction, level}]
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["organization", "-recorded_at"])]

    def __str__(self) -> str:
        return f"Utilisation of {self.source} {self.source_id} at {self.at:%Y-%m-%d %H:%M}"


class AlertKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class AlertEvents(models.TextChoices):
    HALTS = "halts", "Halts and kill-switch moves"
    ALL = "all", "Also every refused order of a live deployment"


class AlertTarget(models.Model):
    """Where an organisation's risk alerts go: an e-mail address or a webhook.

    The webhook URL is checked against SSRF by `clean()` (which the services always run); it is
    checked again, with a fresh resolution, when an alert is sent.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_alert_targets")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=AlertKind.choices)
    format = models.CharField(max_length=10, choices=[(f, f) for f in FORMATS], default="json")
    email = models.EmailField(blank=True)
    url = models.CharField(max_length=2048, blank=True)
    telegram_chat_id = models.CharField(max_length=64, blank=True)
    secret = models.CharField(max_length=200, blank=True)  # signs JSON webhooks (HMAC-SHA256)
    events = models.CharField(max_length=8, choices=AlertEvents.choices,
                              default=AlertEvents.HALTS)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization_id", "name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=AlertKind.values),
                                   name="risk_alerttarget_kind_valid"),
            models.CheckConstraint(
                condition=(models.Q(kind=AlertKind.EMAIL) & ~models.Q(email=""))
                | (models.Q(kind=AlertKind.WEBHOOK) & ~models.Q(url="")),
                name="risk_alerttarget_has_destination"),
        ]
        indexes = [models.Index(fields=["organization", "enabled"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from risk.services import webhook_validate

        errors: dict[str, str] = {}
        if self.kind == AlertKind.EMAIL:
            if not self.email:
                errors["email"] = "An e-mail target needs an address."
            self.url = ""
        elif self.kind == AlertKind.WEBHOOK:
            self.email = ""
            if not self.url:
                errors["url"] = "A webhook target needs a URL."
            else:
                try:
                    webhook_validate(self.url)
                except ValueError as exc:
                    errors["url"] = str(exc)
            if self.format == "telegram" and not self.telegram_chat_id:
                errors["telegram_chat_id"] = "The telegram format needs the chat id."
        if errors:
            raise ValidationError(errors)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):
    """One alert to one target, for a breach or a kill-switch move: sent at most once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="risk_alert_deliveries")
    target = models.ForeignKey(AlertTarget, on_delete=models.CASCADE, related_name="deliveries")
    breach = models.ForeignKey(Breach, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="deliveries")
    kill_event = models.ForeignKey(KillSwitchEvent, null=True, blank=True,
                                   on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["breach", "target"],
                                    condition=models.Q(breach__isnull=False),
                                    name="risk_delivery_once_per_breach"),
            models.UniqueConstraint(fields=["kill_event", "target"],
                                    condition=models.Q(kill_event__isnull=False),
                                    name="risk_delivery_once_per_kill_event"),
            models.CheckConstraint(
                condition=(models.Q(breach__isnull=False, kill_event__isnull=True)
                           | models.Q(breach__isnull=True, kill_event__isnull=False)),
                name="risk_delivery_one_subject"),
        ]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return f"Alert to {self.target} ({self.status})"

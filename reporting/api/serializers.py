"""Input and output serializers of the reporting API (separate: a caller never sets the
organisation, the requester, the status or the file)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from reporting.models import (
    Report,
    ReportDelivery,
    ReportFormat,
    ReportKind,
    ReportSubscription,
    SubscriptionKind,
)

PARAMETERS_HELP = (
    "The report's source and options (docs/reporting.md lists them per kind). Sources: "
    "`deployment` (id of one of your deployments) or `broker_account` (id of one of your broker "
    "accounts: all its deployments' fills) for statement (with `start`, `end`), tax (with "
    "`year`, `jurisdiction`, `method`, `digital_assets`), rts22 (with `executing_entity` LEI, "
    "`counterparty`, `isins`, `venue`, `decision_maker`), best_execution and performance "
    "(deployment only); `simulation_id` for a stored simulation; `account` (an account-activity "
    "object) for a statement; `trades_csv` for a tax report. An id of another organisation is "
    "a 400 naming the field.")


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    format = serializers.ChoiceField(choices=ReportFormat.choices, required=False)
    parameters = serializers.JSONField(required=False, default=dict, help_text=PARAMETERS_HELP)

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("parameters must be a JSON object")
        return value


class ReportOutSerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "format", "title", "parameters", "status", "requested_by",
                  "created_at", "started_at", "finished_at", "sha256", "size", "error",
                  "attempts", "download_url"]

    def get_requested_by(self, obj: Report) -> str | None:
        return obj.requested_by.email if obj.requested_by_id else None

    def get_download_url(self, obj: Report) -> str | None:
        if obj.status != "succeeded":
            return None
        return reverse("reporting-api:report-download",
                       kwargs={"org_slug": obj.organization.slug, "pk": obj.pk})


class SubscriptionCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SubscriptionKind.choices)
    parameters = serializers.JSONField(
        required=False, default=dict,
        help_text="The parameters of the report each period produces (as for generating one; "
                  "the schedule sets the period: start/end or year).")

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("parameters must be a JSON object")
        return value


class SubscriptionUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(required=False)
    parameters = serializers.JSONField(required=False)


class SubscriptionOutSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="member.user.email", read_only=True)

    class Meta:
        model = ReportSubscription
        fields = ["id", "kind", "parameters", "active", "email", "created_at"]


class DeliveryOutSerializer(serializers.ModelSerializer):
    subscription_kind = serializers.CharField(source="subscription.kind", read_only=True)

    class Meta:
        model = ReportDelivery
        fields = ["id", "subscription", "subscription_kind", "period", "recipient", "status",
                  "attempts", "last_error", "sent_at", "report", "created_at"]

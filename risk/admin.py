"""Admin console registrations for risk: the operator's staff can inspect limits, kill switches,
breaches and alerts. Breaches, kill-switch events and deliveries are records and stay read-only;
alert targets never show a webhook's secret or its URL's token."""

from __future__ import annotations

from django.contrib import admin

from risk.models import (
    AlertDelivery,
    AlertTarget,
    Breach,
    KillSwitch,
    KillSwitchEvent,
    RiskLimitSet,
    UtilisationSnapshot,
)
from risk.services import mask_url


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RiskLimitSet)
class RiskLimitSetAdmin(ReadOnlyAdmin):
    # Limits change through the services (role checks, audit), i.e. the portal or the API.
    list_display = ["organization", "level", "ref_id", "version", "updated_by", "updated_at"]
    list_filter = ["level"]
    search_fields = ["organization__name", "organization__slug"]


@admin.register(KillSwitch)
class KillSwitchAdmin(ReadOnlyAdmin):
    list_display = ["organization", "state", "rule", "tripped_at", "tripped_by_label",
                    "rearmed_at", "escalate"]
    list_filter = ["state", "escalate"]
    search_fields = ["organization__name", "organization__slug"]


@admin.register(KillSwitchEvent)
class KillSwitchEventAdmin(ReadOnlyAdmin):
    list_display = ["organization", "transition", "actor_label", "rule", "at"]
    list_filter = ["transition"]
    search_fields = ["organization__name", "reason"]


@admin.register(Breach)
class BreachAdmin(ReadOnlyAdmin):
    list_display = ["organization", "source", "source_id", "rule", "halted", "symbol", "at"]
    list_filter = ["source", "halted", "rule"]
    search_fields = ["organization__name", "reason", "symbol"]
    date_hierarchy = "at"


@admin.register(UtilisationSnapshot)
class UtilisationSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["organization", "source", "source_id", "at", "equity"]


@admin.register(AlertTarget)
class AlertTargetAdmin(ReadOnlyAdmin):
    list_display = ["organization", "name", "kind", "format", "destination", "events",
                    "enabled"]
    list_filter = ["kind", "format", "enabled"]
    search_fields = ["organization__name", "name"]
    exclude = ["url", "secret"]
    readonly_fields = ["destination"]

    @admin.display(description="Destination")
    def destination(self, obj: AlertTarget) -> str:
        return obj.email or mask_url(obj.url)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["organization", "target", "breach", "kill_event", "status", "attempts",
                    "delivered_at"]
    list_filter = ["status"]

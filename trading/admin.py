"""Admin console views of the trading data: read-mostly, for the operator's staff."""

from __future__ import annotations

from django.contrib import admin

from trading.models import (
    Analysis,
    BrokerAccount,
    Dataset,
    Deployment,
    Instrument,
    LiveOrder,
    Simulation,
    SimulationEvent,
    Strategy,
    StrategyVersion,
)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "organization", "asset_class", "exchange", "currency", "calendar")
    list_filter = ("asset_class", "calendar")
    search_fields = ("symbol", "organization__slug")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "source", "rows", "bar_seconds", "start", "end")
    list_filter = ("source",)
    search_fields = ("name", "organization__slug")
    readonly_fields = ("rows", "start", "end", "source", "source_detail", "created_by")


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "kind", "created_at")
    search_fields = ("name", "organization__slug")


@admin.register(StrategyVersion)
class StrategyVersionAdmin(admin.ModelAdmin):
    list_display = ("strategy", "number", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # versions are immutable


@admin.register(Simulation)
class SimulationAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "status", "attempts", "progress", "created_at",
                    "finished_at")
    list_filter = ("status",)
    search_fields = ("organization__slug",)
    readonly_fields = [f.name for f in Simulation._meta.fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # state changes go through the services (cancel, re-run)


@admin.register(SimulationEvent)
class SimulationEventAdmin(admin.ModelAdmin):
    list_display = ("simulation", "seq", "type", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "kind", "status", "n_children", "n_done", "n_failed")
    list_filter = ("kind", "status")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    """Credentials are never shown: only their masked last characters."""

    list_display = ("name", "organization", "kind", "mode", "masked_credentials", "created_at")
    list_filter = ("kind", "mode")
    search_fields = ("name", "organization__slug")
    exclude = ("credentials_encrypted", "credentials_hint")
    readonly_fields = ("masked_credentials",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # credentials are changed through the API, which re-encrypts them


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "name", "status", "equity", "last_bar_ts", "heartbeat_at")
    list_filter = ("status",)
    search_fields = ("name", "organization__slug")
    exclude = ("state", "broker_state")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # start/pause/stop go through the services (audited)


@admin.register(LiveOrder)
class LiveOrderAdmin(admin.ModelAdmin):
    list_display = ("client_order_id", "deployment", "symbol", "side", "quantity", "status")
    list_filter = ("status", "side")
    search_fields = ("client_order_id", "symbol")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

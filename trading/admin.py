"""Admin console views of the trading data: read-mostly, for the operator's staff."""

from __future__ import annotations

from django.contrib import admin

from trading.models import (
    Analysis,
    Dataset,
    Instrument,
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

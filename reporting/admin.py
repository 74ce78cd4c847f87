"""Read-mostly admin console views of reports, subscriptions and deliveries (for support)."""

from django.contrib import admin

from reporting.models import Report, ReportDelivery, ReportSubscription


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "kind", "format", "status", "created_at", "size")
    list_filter = ("kind", "status", "format")
    search_fields = ("organization__slug", "title", "sha256")
    readonly_fields = ("organization", "kind", "format", "parameters", "requested_by", "status",
                       "attempts", "file", "sha256", "size", "error", "created_at", "started_at",
                       "finished_at", "title")


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "member", "kind", "active", "created_at")
    list_filter = ("kind", "active")
    readonly_fields = ("organization", "member", "kind", "created_at")


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "subscription", "period", "status", "attempts",
                    "sent_at")
    list_filter = ("status",)
    readonly_fields = ("organization", "subscription", "period", "report", "recipient",
                       "status", "attempts", "last_error", "sent_at", "created_at")

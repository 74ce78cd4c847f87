"""Reporting API routes, mounted under /api/v1/ (namespace ``reporting-api``); everything lives
under ``orgs/<org_slug>/reports/``."""

from django.urls import path

from reporting.api import views

REPORTS = "orgs/<slug:org_slug>/reports/"

_report_list = views.ReportViewSet.as_view({"get": "list", "post": "create"})
_report_detail = views.ReportViewSet.as_view({"get": "retrieve", "delete": "destroy"})
_report_download = views.ReportViewSet.as_view({"get": "download"})
_sub_list = views.SubscriptionViewSet.as_view({"get": "list", "post": "create"})
_sub_detail = views.SubscriptionViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
_delivery_list = views.DeliveryViewSet.as_view({"get": "list"})

urlpatterns = [
    path(REPORTS, _report_list, name="report-list"),
    path(REPORTS + "<int:pk>/", _report_detail, name="report-detail"),
    path(REPORTS + "<int:pk>/download/", _report_download, name="report-download"),
    path(REPORTS + "subscriptions/", _sub_list, name="subscription-list"),
    path(REPORTS + "subscriptions/<int:pk>/", _sub_detail, name="subscription-detail"),
    path(REPORTS + "deliveries/", _delivery_list, name="delivery-list"),
]

"""Risk API routes, mounted under /api/v1/ (namespace ``risk-api``); everything lives under
``orgs/<org_slug>/risk/`` and is served by views built on `accounts.api.base`."""

from django.urls import path

from risk.api import views

_limit_list = views.LimitSetViewSet.as_view({"get": "list", "post": "create"})
_limit_detail = views.LimitSetViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"})
_breach_list = views.BreachViewSet.as_view({"get": "list"})
_breach_detail = views.BreachViewSet.as_view({"get": "retrieve"})
_target_list = views.AlertTargetViewSet.as_view({"get": "list", "post": "create"})
_target_detail = views.AlertTargetViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
_delivery_list = views.AlertDeliveryViewSet.as_view({"get": "list"})

RISK = "orgs/<slug:org_slug>/risk/"

urlpatterns = [
    path(RISK + "limits/", _limit_list, name="limit-list"),
    path(RISK + "limits/effective/", views.EffectiveLimitsView.as_view(), name="limit-effective"),
    path(RISK + "limits/<int:pk>/", _limit_detail, name="limit-detail"),
    path(RISK + "breaches/", _breach_list, name="breach-list"),
    path(RISK + "breaches/<int:pk>/", _breach_detail, name="breach-detail"),
    path(RISK + "kill-switch/", views.KillSwitchView.as_view(), name="kill-switch"),
    path(RISK + "kill-switch/rearm/", views.KillSwitchRearmView.as_view(),
         name="kill-switch-rearm"),
    path(RISK + "measures/", views.MeasuresView.as_view(), name="measures"),
    path(RISK + "alert-targets/", _target_list, name="alert-target-list"),
    path(RISK + "alert-targets/<int:pk>/", _target_detail, name="alert-target-detail"),
    path(RISK + "alert-deliveries/", _delivery_list, name="alert-delivery-list"),
]

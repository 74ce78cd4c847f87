"""Portal pages of risk: the organisation's risk page and its kill-switch forms."""

from django.urls import include, path

from risk import views

portal_patterns = [
    path("orgs/<slug:slug>/risk/", views.risk_page, name="page"),
    path("orgs/<slug:slug>/risk/kill-switch/trip/", views.kill_switch_trip, name="trip"),
    path("orgs/<slug:slug>/risk/kill-switch/rearm/", views.kill_switch_rearm, name="rearm"),
]

urlpatterns = [path("", include((portal_patterns, "risk")))]

"""Portal pages of reporting (namespace ``reporting``)."""

from django.urls import path

from reporting import views

app_name = "reporting"

urlpatterns = [
    path("orgs/<slug:slug>/reports/", views.reports, name="reports"),
    path("orgs/<slug:slug>/reports/<int:pk>/download/", views.report_download,
         name="report-download"),
    path("orgs/<slug:slug>/reports/subscriptions/", views.subscriptions, name="subscriptions"),
    path("orgs/<slug:slug>/reports/subscriptions/<int:pk>/toggle/", views.subscription_toggle,
         name="subscription-toggle"),
    path("reports/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]

"""Portal pages of the trading app (namespace ``trading``), all under ``orgs/<slug>/``."""

from django.urls import include, path

from trading import views

ORG = "orgs/<slug:slug>/"

portal_patterns = [
    path(ORG + "dashboard/", views.dashboard, name="dashboard"),
    path(ORG + "market-data/", views.datasets, name="datasets"),
    path(ORG + "market-data/import/", views.dataset_import, name="dataset-import"),
    path(ORG + "market-data/generate/", views.dataset_generate, name="dataset-generate"),
    path(ORG + "market-data/<int:pk>/", views.dataset_detail, name="dataset"),
    path(ORG + "strategies/", views.strategies, name="strategies"),
    path(ORG + "strategies/new/", views.strategy_create, name="strategy-create"),
    path(ORG + "strategies/rules/check/", views.rules_validate, name="rules-validate"),
    path(ORG + "strategies/<int:pk>/", views.strategy_detail, name="strategy"),
    path(ORG + "simulations/", views.simulations, name="simulations"),
    path(ORG + "simulations/new/", views.simulation_create, name="simulation-create"),
    path(ORG + "simulations/compare/", views.simulation_compare, name="simulation-compare"),
    path(ORG + "simulations/<int:pk>/", views.simulation_detail, name="simulation"),
    path(ORG + "simulations/<int:pk>/results/", views.simulation_results,
         name="simulation-results"),
    path(ORG + "simulations/<int:pk>/trades/", views.simulation_trades, name="simulation-trades"),
    path(ORG + "simulations/<int:pk>/cancel/", views.simulation_cancel, name="simulation-cancel"),
    path(ORG + "simulations/<int:pk>/rerun/", views.simulation_rerun, name="simulation-rerun"),
]

urlpatterns = [path("", include((portal_patterns, "trading")))]

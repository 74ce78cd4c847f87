"""Portal pages of the trading app (namespace ``trading``), all under ``orgs/<slug>/``."""

from django.urls import include, path

from trading import views, views_analyses, views_deployments, views_divergence

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
    path(ORG + "analyses/", views_analyses.analyses, name="analyses"),
    path(ORG + "analyses/new/", views_analyses.analysis_create, name="analysis-create"),
    path(ORG + "analyses/<int:pk>/", views_analyses.analysis_detail, name="analysis"),
    path(ORG + "deployments/", views_deployments.deployments, name="deployments"),
    path(ORG + "deployments/new/", views_deployments.deployment_create, name="deployment-create"),
    path(ORG + "deployments/<int:pk>/", views_deployments.deployment_detail, name="deployment"),
    path(ORG + "deployments/<int:pk>/start/", views_deployments.deployment_start,
         name="deployment-start"),
    path(ORG + "deployments/<int:pk>/pause/", views_deployments.deployment_pause,
         name="deployment-pause"),
    path(ORG + "deployments/<int:pk>/stop/", views_deployments.deployment_stop,
         name="deployment-stop"),
    path(ORG + "deployments/<int:pk>/orders/", views_deployments.deployment_order,
         name="deployment-order"),
    path(ORG + "deployments/<int:pk>/cancel-all/", views_deployments.deployment_cancel_all,
         name="deployment-cancel-all"),
    path(ORG + "deployments/<int:pk>/flatten/", views_deployments.deployment_flatten,
         name="deployment-flatten"),
    path(ORG + "deployments/<int:pk>/divergence/", views_divergence.deployment_divergence, name="deployment-divergence"),
    path(ORG + "deployments/orders/<int:pk>/cancel/", views_deployments.order_cancel,
         name="order-cancel"),
    path(ORG + "deployments/accounts/", views_deployments.broker_accounts,
         name="broker-accounts"),
    path(ORG + "deployments/accounts/new/", views_deployments.broker_account_create,
         name="broker-account-create"),
]

urlpatterns = [path("", include((portal_patterns, "trading")))]

"""Trading API routes, mounted under /api/v1/; everything lives under ``orgs/<org_slug>/``."""

from django.urls import path

from trading.api import deployments as live
from trading.api import views

ORG = "orgs/<slug:org_slug>/"

_instruments = views.InstrumentViewSet.as_view({"get": "list", "post": "create"})
_instrument = views.InstrumentViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
_datasets = views.DatasetViewSet.as_view({"get": "list"})
_dataset = views.DatasetViewSet.as_view({"get": "retrieve", "delete": "destroy"})
_dataset_import = views.DatasetViewSet.as_view({"post": "import_file"})
_dataset_synthetic = views.DatasetViewSet.as_view({"post": "synthetic"})
_dataset_bars = views.DatasetViewSet.as_view({"get": "bars"})
_dataset_export = views.DatasetViewSet.as_view({"get": "export"})
_strategy_types = views.StrategyTypeViewSet.as_view({"get": "list"})
_strategies = views.StrategyViewSet.as_view({"get": "list", "post": "create"})
_strategy = views.StrategyViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
_versions = views.StrategyVersionViewSet.as_view({"get": "list", "post": "create"})
_version = views.StrategyVersionViewSet.as_view({"get": "retrieve"})
_simulations = views.SimulationViewSet.as_view({"get": "list", "post": "create"})
_simulation = views.SimulationViewSet.as_view({"get": "retrieve"})
_sim_compare = views.SimulationViewSet.as_view({"get": "compare"})
_sim_cancel = views.SimulationViewSet.as_view({"post": "cancel"})
_sim_rerun = views.SimulationViewSet.as_view({"post": "rerun"})
_sim_trades = views.SimulationViewSet.as_view({"get": "trades"})
_sim_trades_csv = views.SimulationViewSet.as_view({"get": "trades_csv"})
_sim_fills = views.SimulationViewSet.as_view({"get": "fills"})
_sim_equity = views.SimulationViewSet.as_view({"get": "equity"})
_sim_events = views.SimulationViewSet.as_view({"get": "events"})
_analyses = views.AnalysisViewSet.as_view({"get": "list", "post": "create"})
_analysis = views.AnalysisViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    path(ORG + "instruments/", _instruments, name="instrument-list"),
    path(ORG + "instruments/<int:pk>/", _instrument, name="instrument-detail"),
    path(ORG + "datasets/", _datasets, name="dataset-list"),
    path(ORG + "datasets/import/", _dataset_import, name="dataset-import"),
    path(ORG + "datasets/synthetic/", _dataset_synthetic, name="dataset-synthetic"),
    path(ORG + "datasets/<int:pk>/", _dataset, name="dataset-detail"),
    path(ORG + "datasets/<int:pk>/bars/", _dataset_bars, name="dataset-bars"),
    path(ORG + "datasets/<int:pk>/export.<str:fmt>", _dataset_export, name="dataset-export"),
    path(ORG + "strategy-types/", _strategy_types, name="strategy-type-list"),
    path(ORG + "strategies/", _strategies, name="strategy-list"),
    path(ORG + "strategies/<int:pk>/", _strategy, name="strategy-detail"),
    path(ORG + "strategies/<int:strategy_pk>/versions/", _versions, name="strategy-version-list"),
    path(ORG + "strategies/<int:strategy_pk>/versions/<int:number>/", _version,
         name="strategy-version-detail"),
    path(ORG + "simulations/", _simulations, name="simulation-list"),
    path(ORG + "simulations/compare/", _sim_compare, name="simulation-compare"),
    path(ORG + "simulations/<int:pk>/", _simulation, name="simulation-detail"),
    path(ORG + "simulations/<int:pk>/cancel/", _sim_cancel, name="simulation-cancel"),
    path(ORG + "simulations/<int:pk>/rerun/", _sim_rerun, name="simulation-rerun"),
    path(ORG + "simulations/<int:pk>/trades/", _sim_trades, name="simulation-trades"),
    path(ORG + "simulations/<int:pk>/trades.csv", _sim_trades_csv, name="simulation-trades-csv"),
    path(ORG + "simulations/<int:pk>/fills/", _sim_fills, name="simulation-fills"),
    path(ORG + "simulations/<int:pk>/equity/", _sim_equity, name="simulation-equity"),
    path(ORG + "simulations/<int:pk>/events/", _sim_events, name="simulation-events"),
    path(ORG + "analyses/", _analyses, name="analysis-list"),
    path(ORG + "analyses/<int:pk>/", _analysis, name="analysis-detail"),
]

# --- live and paper trading (trading/api/deployments.py) ---
_accounts = live.BrokerAccountViewSet.as_view({"get": "list", "post": "create"})
_account = live.BrokerAccountViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
_deployments = live.DeploymentViewSet.as_view({"get": "list", "post": "create"})
_deployment = live.DeploymentViewSet.as_view({"get": "retrieve"})
_orders = live.OrderViewSet.as_view({"get": "list", "post": "create"})

urlpatterns += [
    path(ORG + "broker-accounts/", _accounts, name="broker-account-list"),
    path(ORG + "broker-accounts/<int:pk>/", _account, name="broker-account-detail"),
    path(ORG + "deployments/", _deployments, name="deployment-list"),
    path(ORG + "deployments/<int:pk>/", _deployment, name="deployment-detail"),
    *[path(ORG + f"deployments/<int:pk>/{verb.replace('_', '-')}/",
           live.DeploymentViewSet.as_view({"post": verb}), name=f"deployment-{verb.replace('_', '-')}")
      for verb in ("start", "pause", "stop", "cancel_all", "flatten")],
    path(ORG + "deployments/<int:pk>/events/", live.DeploymentViewSet.as_view({"get": "events"}),
         name="deployment-events"),
    path(ORG + "deployments/<int:pk>/divergence/",
         live.DeploymentViewSet.as_view({"get": "divergence"}), name="deployment-divergence"),
    path(ORG + "orders/", _orders, name="live-order-list"),
    path(ORG + "orders/<int:pk>/", live.OrderViewSet.as_view({"get": "retrieve"}),
         name="live-order-detail"),
    path(ORG + "orders/<int:pk>/cancel/", live.OrderViewSet.as_view({"post": "cancel"}),
         name="live-order-cancel"),
    path(ORG + "fills/", live.FillViewSet.as_view({"get": "list"}), name="live-fill-list"),
    path(ORG + "positions/", live.PositionViewSet.as_view({"get": "list"}),
         name="position-list"),
]

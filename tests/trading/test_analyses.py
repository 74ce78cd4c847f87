"""Analyses fanned out as Celery groups (run eagerly here): the fanned-out results equal the
engine's in-process analyses, children are idempotent, partial failures are reported."""

from __future__ import annotations

import pytest
from django.urls import reverse

from nexow_site.celery import app
from tests.fixtures_accounts import session_client
from trading.engine import analyses as engine
from trading.models import Analysis, AnalysisChild
from trading.selectors import simulation_equity
from trading.services import analyses
from trading.services.simulations import simulation_load_inputs

from .support import finished_simulation, org_with_owner, sma_version, synthetic_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = previous


def test_a_sweep_fans_out_one_child_per_parameter_set_and_finds_the_engines_best(eager):
    org, owner = org_with_owner()
    version, dataset = sma_version(org, owner), synthetic_dataset(org, owner, n_bars=500)
    space = {"fast": [3, 5, 8], "slow": [20, 30]}
    with eager():
        resp = session_client(owner).post(
            reverse("trading-api:analysis-list", kwargs={"org_slug": org.slug}),
            {"kind": "sweep", "strategy_version": version.pk, "dataset": dataset.pk,
             "spec": {"space": space, "objective": "total_return"}}, format="json")
    assert resp.status_code == 201, resp.content
    analysis = Analysis.objects.get(pk=resp.json()["id"])
    assert (analysis.status, analysis.n_children, analysis.n_done) == ("succeeded", 6, 6)
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    bars, _, config = simulation_load_inputs(simulation=sim)
    direct = engine.optimize(bars, "sma_cross", space, objective="total_return", config=config)
    assert analysis.result["best_params"] == direct["best_params"]
    assert analysis.result["best_value"] == pytest.approx(direct["best_value"], rel=1e-12)
    assert [t["value"] for t in analysis.result["trials"]] == pytest.approx(
        [t["value"] for t in direct["trials"]], rel=1e-12)


def test_a_monte_carlo_over_chunks_equals_the_engines_in_process_run(eager):
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner, dataset=synthetic_dataset(org, owner, n_bars=500))
    with eager():
        analysis = analyses.analysis_create(organization=org, actor=owner, kind="monte_carlo",
                                            simulation=sim,
                                            spec={"n_sims": 200, "n_chunks": 4, "seed": 5})
    analysis.refresh_from_db()
    assert analysis.status == "succeeded" and analysis.n_done == 4
    equity = simulation_equity(simulation=sim)[1]
    direct = engine.monte_carlo(equity=equity, n_sims=200, n_chunks=4, seed=5)
    assert analysis.result["final_return"] == pytest.approx(direct["final_return"], rel=1e-12)
    assert analysis.result["probability_of_loss"] == direct["probability_of_loss"]


def test_a_child_delivered_twice_is_stored_once():
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner, dataset=synthetic_dataset(org, owner, n_bars=300))
    analysis = analyses.analysis_create(organization=org, actor=owner, kind="monte_carlo",
                                        simulation=sim, spec={"n_sims": 10, "n_chunks": 2})
    assert analyses.analysis_child_execute(analysis_id=analysis.pk, index=0) == "succeeded"
    assert analyses.analysis_child_execute(analysis_id=analysis.pk, index=0) == "skipped"
    stored = AnalysisChild.objects.filter(analysis=analysis, status="succeeded")
    assert list(stored.values_list("index", flat=True)) == [0]
    analysis.refresh_from_db()
    assert (analysis.n_done, analysis.progress) == (1, 0.5)


def test_invalid_parameter_sets_are_reported_per_trial_and_the_rest_ranked(eager):
    org, owner = org_with_owner()
    version, dataset = sma_version(org, owner), synthetic_dataset(org, owner, n_bars=300)
    with eager():
        # slow=1 is below the engine's minimum (2) for sma_cross: those trials fail.
        analysis = analyses.analysis_create(
            organization=org, actor=owner, kind="sweep", strategy_version=version,
            dataset=dataset, spec={"space": {"fast": [3, 5], "slow": [1, 20]}})
    analysis.refresh_from_db()
    by_params = {(t["params"]["fast"], t["params"]["slow"]): t for t in analysis.result["trials"]}
    assert analysis.status == "succeeded"
    assert "must be >= 2" in by_params[(3, 1)]["error"]
    assert by_params[(3, 20)]["error"] is None and by_params[(3, 20)]["value"] is not None
    assert analysis.result["best_params"]["slow"] == 20


def test_children_that_fail_are_listed_and_an_all_failed_analysis_fails(eager):
    org, owner = org_with_owner()
    # A flat market: the SMA strategy closes fewer than 2 trades, which the trades Monte Carlo
    # needs, so every child fails.
    sim = finished_simulation(org, owner, dataset=synthetic_dataset(org, owner, n_bars=300,
                                                                    volatility=0.0),
                              version=sma_version(org, owner, name="flat"))
    with eager():
        analysis = analyses.analysis_create(organization=org, actor=owner, kind="monte_carlo",
                                            simulation=sim,
                                            spec={"method": "trades", "n_sims": 10,
                                                  "n_chunks": 2})
    analysis.refresh_from_db()
    assert (analysis.status, analysis.n_failed) == ("failed", 2)
    assert [c["index"] for c in analysis.result["failed_children"]] == [0, 1]
    assert "at least 2 closed trades" in analysis.error


def test_a_walk_forward_fans_out_one_child_per_window_and_matches_the_engine(eager):
    org, owner = org_with_owner()
    version, dataset = sma_version(org, owner), synthetic_dataset(org, owner, n_bars=800)
    space = {"fast": [3, 8], "slow": [20, 40]}
    with eager():
        analysis = analyses.analysis_create(
            organization=org, actor=owner, kind="walk_forward", strategy_version=version,
            dataset=dataset, spec={"space": space, "n_windows": 3, "objective": "total_return"})
    analysis.refresh_from_db()
    assert (analysis.status, analysis.n_children) == ("succeeded", 3)
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    bars, _, config = simulation_load_inputs(simulation=sim)
    direct = engine.walk_forward(bars, "sma_cross", space, n_windows=3,
                                 objective="total_return", config=config)
    assert [w["best_params"] for w in analysis.result["windows"]] == \
        [w["best_params"] for w in direct["windows"]]
    assert [w["out_of_sample"] for w in analysis.result["windows"]] == pytest.approx(
        [w["out_of_sample"] for w in direct["windows"]], rel=1e-12)
    assert analysis.result["metrics"]["total_return"] == pytest.approx(
        direct["metrics"]["total_return"], rel=1e-12)

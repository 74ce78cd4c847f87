"""The analyses pages: list, create forms per kind, and the detail page with live progress and
the result charts — each compared with the analysis' own stored aggregate."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager

import pytest

from nexow_site.celery import app
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.trading.support import finished_simulation, sma_version, synthetic_dataset
from trading import analysis_charts
from trading.models import Analysis
from trading.selectors import simulation_equity
from trading.services import analyses

SPACE = {"fast": [3, 5, 8], "slow": [20, 30]}


@pytest.fixture
def run_now(django_capture_on_commit_callbacks):
    """Runs the analyses created inside it to the end: children and aggregate, in-process."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True

    @contextmanager
    def run():
        with django_capture_on_commit_callbacks(execute=True):
            yield

    try:
        yield run
    finally:
        app.conf.task_always_eager = previous


def _finished(run_now, org, owner, **kwargs) -> Analysis:
    with run_now():
        analysis = analyses.analysis_create(organization=org, actor=owner, **kwargs)
    analysis.refresh_from_db()
    assert analysis.status == "succeeded", analysis.error
    return analysis


@pytest.fixture
def sweep(run_now, org, owner, dataset, version):
    return _finished(run_now, org, owner, kind="sweep", strategy_version=version,
                     dataset=dataset, spec={"space": SPACE, "objective": "total_return"})


@pytest.fixture
def walk_forward(run_now, org, owner, dataset, version):
    return _finished(run_now, org, owner, kind="walk_forward", strategy_version=version,
                     dataset=dataset, spec={"space": SPACE, "objective": "total_return",
                                            "n_windows": 3})


@pytest.fixture
def monte_carlo(run_now, org, owner, finished):
    return _finished(run_now, org, owner, kind="monte_carlo", simulation=finished,
                     spec={"n_sims": 300, "n_chunks": 3, "seed": 4})


def _page(client, org, path: str = "") -> str:
    response = client.get(f"/orgs/{org.slug}/analyses/{path}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _json(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      html, re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


def _rows(html: str, table_id: str) -> list[str]:
    table = html[html.index(f'id="{table_id}"'):]
    table = table[:table.index("</table>")]
    return re.findall(r"<tr[^>]*>.*?</tr>", table[table.index("<tbody>"):], re.S)


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                                   row, re.S)]


# --- list ----------------------------------------------------------------------------------------

def test_the_list_shows_kind_strategy_dataset_status_and_progress(owner_web, org, sweep):
    html = _page(owner_web, org)
    row = next(r for r in re.findall(r"<tr data-analysis=.*?</tr>", html, re.S)
               if f'data-analysis="{sweep.pk}"' in r)
    cells = _cells(row)
    assert cells[:5] == [f"#{sweep.pk}", "Parameter sweep", "sma v1", "gbm daily", "succeeded"]
    assert "100%" in cells[5] and "6/6" in cells[5]
    assert 'data-status="succeeded"' in row and 'data-seq="7"' in row  # 6 children + final


def test_a_queued_analysis_is_listed_for_live_updates(owner_web, org, owner, finished):
    queued = analyses.analysis_create(organization=org, actor=owner, kind="monte_carlo",
                                      simulation=finished, spec={"n_sims": 10, "n_chunks": 2})
    html = _page(owner_web, org)
    assert (f'<tr data-analysis="{queued.pk}" data-org="alpha" data-seq="0" '
            f'data-status="queued" data-total="2">') in html
    assert "0/2" in html
    assert 'src="/static/nexow/analysis.js"' in html


def test_an_empty_list_says_what_to_do_next(owner_web, viewer_web, org):
    assert "No analysis yet." in _page(owner_web, org)
    assert f'href="/orgs/{org.slug}/analyses/new/"' in _page(owner_web, org)
    assert "Analyses started by your colleagues appear here." in _page(viewer_web, org)


def test_the_navigation_lists_analyses_after_simulations(owner_web, org):
    html = _page(owner_web, org)
    nav = html[html.index('id="portal-nav"'):]
    assert nav.index(">Simulations<") < nav.index(">Analyses<") < nav.index(">Risk<")
    assert f'href="/orgs/{org.slug}/analyses/" aria-current="page"' in nav


# --- sweep -----------------------------------------------------------------------------------------

def test_the_highlighted_row_is_the_aggregates_best_parameter_set(owner_web, org, sweep):
    html = _page(owner_web, org, f"{sweep.pk}/")
    rows = _rows(html, "sweep-table")
    assert len(rows) == 6
    best = [r for r in rows if 'class="best-row"' in r]
    assert len(best) == 1
    cells = _cells(best[0])
    assert [int(cells[1]), int(cells[2])] == [sweep.result["best_params"]["fast"],
                                              sweep.result["best_params"]["slow"]]
    assert cells[3] == f"{sweep.result['best_value'] * 100:.2f}%"
    assert rows[0] == best[0]  # best first
    values = [t["value"] for t in sweep.result["trials"]]
    assert cells[3] == f"{max(values) * 100:.2f}%"


def test_the_heatmap_is_the_aggregates_grid(owner_web, org, sweep):
    data = _json(_page(owner_web, org, f"{sweep.pk}/"), "sweep-heatmap-data")
    (grid,) = data["grids"]
    assert (grid["x"], grid["y"], grid["xs"], grid["ys"]) == ("fast", "slow", [3, 5, 8], [20, 30])
    by_pair = {(t["params"]["fast"], t["params"]["slow"]): t["value"]
               for t in sweep.result["trials"]}
    for i, slow in enumerate(grid["ys"]):
        for j, fast in enumerate(grid["xs"]):
            assert grid["z"][i][j] == pytest.approx(by_pair[(fast, slow)], rel=1e-12)
    best = sweep.result["best_params"]
    assert grid["best"] == [best["fast"], best["slow"]]


def test_a_heatmap_cell_shared_by_several_sets_shows_the_best_of_them():
    trials = [{"params": {"a": 1, "b": 1, "c": c}, "value": v} for c, v in ((1, 0.2), (2, 0.5))]
    trials += [{"params": {"a": 2, "b": 1, "c": 1}, "value": None}]
    assert analysis_charts.swept_parameters(trials) == ["a", "c"]
    grid = analysis_charts.sweep_grid(trials, "a", "b", maximize=True)
    assert grid["z"] == [[0.5, None]]
    assert analysis_charts.sweep_grid(trials, "a", "b", maximize=False)["z"] == [[0.2, None]]


# --- walk-forward ----------------------------------------------------------------------------------

def test_the_walk_forward_page_draws_the_stitched_curve_with_window_boundaries(
        owner_web, org, walk_forward):
    html = _page(owner_web, org, f"{walk_forward.pk}/")
    chart = _json(html, "wf-equity-data")
    assert len(chart["boundaries"]) == 3 and chart["labels"] == ["W1", "W2", "W3"]
    assert chart["x"][0] == chart["boundaries"][0]  # the curve starts where window 1 does
    assert chart["boundaries"] == sorted(chart["boundaries"])
    assert chart["y"][-1] == pytest.approx(walk_forward.result["equity"][-1], rel=1e-9)
    rows = _rows(html, "windows-heading")
    assert len(rows) == 3
    for row, window in zip(rows, walk_forward.result["windows"], strict=True):
        cells = _cells(row)
        assert cells[0] == f"W{window['window'] + 1}"
        assert cells[4].split() == [f"{k}={v}" for k, v in window["best_params"].items()]
        assert cells[5] == f"{window['in_sample'] * 100:.2f}%"
        assert cells[6] == f"{window['out_of_sample'] * 100:.2f}%"


# --- Monte Carlo -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["returns", "trades"])
def test_the_fans_final_percentiles_are_the_aggregates(run_now, owner_web, org, owner, finished,
                                                      method):
    analysis = _finished(run_now, org, owner, kind="monte_carlo", simulation=finished,
                         spec={"n_sims": 250, "n_chunks": 3, "seed": 9, "method": method})
    fan = _json(_page(owner_web, org, f"{analysis.pk}/"), "mc-fan-data")
    initial = float(simulation_equity(simulation=finished)[1][0])
    final = analysis.result["final_return"]
    for p in ("p5", "p25", "p50", "p75", "p95"):
        assert fan[p][-1] == pytest.approx(initial * (1 + final[p]), rel=1e-6), p
        assert fan[p][0] == pytest.approx(initial)
    assert fan["p5"][-1] <= fan["p25"][-1] <= fan["p50"][-1] <= fan["p75"][-1] <= fan["p95"][-1]


def test_a_fan_of_very_many_paths_is_drawn_from_the_first_ones_in_the_worker(
        run_now, owner_web, org, owner, finished, monkeypatch, django_assert_max_num_queries):
    from trading import analysis_charts

    monkeypatch.setattr(analysis_charts, "FAN_MAX_PATHS", 100)
    analysis = _finished(run_now, org, owner, kind="monte_carlo", simulation=finished,
                         spec={"n_sims": 250, "n_chunks": 3, "seed": 9, "method": "returns"})
    assert analysis.result["fan"]["paths"] == 100  # stored by the aggregate step
    html = _page(owner_web, org, f"{analysis.pk}/")
    assert "The bands summarise the first 100 of the 250 paths" in html
    fan = _json(html, "mc-fan-data")
    assert fan["p5"][-1] <= fan["p50"][-1] <= fan["p95"][-1]


def test_the_percentile_table_and_histograms_show_the_distribution(owner_web, org, monte_carlo):
    html = _page(owner_web, org, f"{monte_carlo.pk}/")
    rows = [_cells(r) for r in _rows(html, "mc-percentiles")]
    final, dd = monte_carlo.result["final_return"], monte_carlo.result["max_drawdown"]
    assert rows[0][0] == "Final return"
    assert rows[0][1:8] == [f"{final[k] * 100:.2f}%"
                            for k in ("p5", "p25", "p50", "p75", "p95", "mean", "actual")]
    assert rows[1][1:6] == [f"{dd[k] * 100:.2f}%" for k in ("p5", "p25", "p50", "p75", "p95")]
    assert sum(_json(html, "mc-final-data")["y"]) == 300
    assert sum(_json(html, "mc-dd-data")["y"]) == 300
    assert "probability of a loss " + f"{monte_carlo.result['probability_of_loss'] * 100:.2f}%" \
        in html


# --- live progress and partial failures ------------------------------------------------------------

def test_a_running_analysis_shows_its_progress_for_the_live_updates(owner_web, org, owner,
                                                                   finished):
    analysis = analyses.analysis_create(organization=org, actor=owner, kind="monte_carlo",
                                        simulation=finished, spec={"n_sims": 40, "n_chunks": 4})
    analyses.analysis_child_execute(analysis_id=analysis.pk, index=0)
    html = _page(owner_web, org, f"{analysis.pk}/")
    assert (f'data-analysis="{analysis.pk}" data-org="alpha" data-seq="1" data-status="running" '
            f'data-total="4"') in html
    assert f'data-finish-url="/orgs/alpha/analyses/{analysis.pk}/"' in html
    assert 'value="25"' in html and "1/4" in html
    assert 'src="/static/nexow/analysis.js"' in html


def test_failed_children_are_listed_and_the_rest_shown(run_now, owner_web, org, owner, finished,
                                                      monkeypatch):
    original = analyses._CHILD["monte_carlo"]

    def flaky(analysis, index):
        if index == 1:
            raise RuntimeError("worker ran out of memory")
        return original(analysis, index)

    monkeypatch.setitem(analyses._CHILD, "monte_carlo", flaky)
    analysis = _finished(run_now, org, owner, kind="monte_carlo", simulation=finished,
                         spec={"n_sims": 60, "n_chunks": 3})
    html = _page(owner_web, org, f"{analysis.pk}/")
    assert "1 of 3 job(s) failed" in html
    failed = re.search(r"<table data-failed-children>.*?</table>", html, re.S).group(0)
    assert [_cells(r) for r in re.findall(r"<tr>.*?</tr>", failed[failed.index("<tbody>"):])] \
        == [["1", "RuntimeError: worker ran out of memory"]]
    assert sum(_json(html, "mc-final-data")["y"]) == 40


def test_the_results_panel_alone_answers_htmx(owner_web, org, sweep):
    response = owner_web.get(f"/orgs/{org.slug}/analyses/{sweep.pk}/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith("<div id=\"analysis-results\">")
    assert 'id="portal-nav"' not in html and 'id="sweep-table"' in html


# --- create ----------------------------------------------------------------------------------------

def test_the_sweep_form_offers_a_range_per_strategy_parameter(owner_web, org, version, dataset):
    html = _page(owner_web, org, "new/?kind=sweep")
    for name in ("fast", "slow"):
        for end in ("from", "to", "step"):
            assert f'name="p_{name}_{end}"' in html
            assert f'<label for="id_p_{name}_{end}">' in html
    assert f'<input type="hidden" name="strategy_version" value="{version.pk}">' in html


def test_a_sweep_started_from_the_form_runs_the_grid(owner_web, org, owner, version, dataset):
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "sweep", "strategy_version": version.pk, "dataset": dataset.pk,
        "objective": "sharpe", "maximize": "true", "method": "grid", "seed": "0",
        "p_fast_from": "3", "p_fast_to": "9", "p_fast_step": "3",
        "p_slow_from": "20", "p_slow_to": "30", "p_slow_step": "10"})
    analysis = Analysis.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{org.slug}/analyses/{analysis.pk}/"
    assert analysis.spec["space"] == {"fast": [3, 6, 9], "slow": [20, 30]}
    assert (analysis.kind, analysis.n_children, analysis.created_by) == ("sweep", 6, owner)


def test_a_walk_forward_from_the_form_carries_its_windows(owner_web, org, version, dataset):
    owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "walk_forward", "strategy_version": version.pk, "dataset": dataset.pk,
        "objective": "total_return", "maximize": "true", "method": "grid",
        "n_windows": "4", "test_bars": "50", "anchored": "on",
        "p_fast_from": "3", "p_fast_to": "5"})
    analysis = Analysis.objects.get()
    assert analysis.spec["space"] == {"fast": [3, 4, 5]}
    assert (analysis.spec["n_windows"], analysis.spec["test_bars"], analysis.spec["anchored"],
            analysis.n_children) == (4, 50, True, 4)


def test_a_monte_carlo_from_the_form(owner_web, org, finished):
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "monte_carlo", "simulation": finished.pk, "method": "returns", "n_sims": "500",
        "n_chunks": "5", "seed": "3"})
    analysis = Analysis.objects.get()
    assert response.status_code == 302
    assert (analysis.simulation_id, analysis.spec["n_sims"], analysis.n_children) == (
        finished.pk, 500, 5)


def _field_errors(html: str, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error" role="alert">(.*?)</ul>',
                      html, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


def test_a_service_refusal_appears_under_its_field_and_nothing_is_saved(owner_web, org,
                                                                        finished):
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "monte_carlo", "simulation": finished.pk, "method": "returns", "n_sims": "5",
        "n_chunks": "8", "seed": "0"})
    html = response.content.decode()
    assert response.status_code == 400
    assert _field_errors(html, "n_chunks") == ["Between 1 and n_sims."]
    assert 'aria-invalid="true"' in html
    assert Analysis.objects.count() == 0


@pytest.mark.parametrize("grid, message", [
    ({}, "A parameter space is required."),
    ({"p_fast_from": "2", "p_fast_to": "200", "p_slow_from": "20", "p_slow_to": "30"},
     "At most 500 parameter sets per analysis."),
])
def test_a_sweep_the_service_refuses_saves_nothing(owner_web, org, version, dataset, grid,
                                                   message):
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "sweep", "strategy_version": version.pk, "dataset": dataset.pk,
        "objective": "sharpe", "maximize": "true", "method": "grid", **grid})
    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'<ul class="errorlist nonfield" role="alert"><li>(.*?)</li>', html) \
        .group(1) == message
    assert Analysis.objects.count() == 0


def test_a_range_with_one_end_is_refused_by_the_form(owner_web, org, version, dataset):
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "sweep", "strategy_version": version.pk, "dataset": dataset.pk,
        "objective": "sharpe", "maximize": "true", "method": "grid", "p_fast_from": "3"})
    assert response.status_code == 400
    assert _field_errors(response.content.decode(), "p_fast_to") == [
        "Give both ends of the range (or neither)."]
    assert Analysis.objects.count() == 0


def test_the_create_pages_say_what_is_missing_first(owner_web, org):
    assert "You need a strategy first." in _page(owner_web, org, "new/?kind=sweep")
    assert "You need a finished simulation first." in _page(owner_web, org,
                                                            "new/?kind=monte_carlo")


# --- who may see and do what -------------------------------------------------------------------

def test_a_viewer_sees_results_but_no_run_button_and_cannot_start_one(viewer_web, org, sweep,
                                                                       finished):
    listing = _page(viewer_web, org)
    detail = _page(viewer_web, org, f"{sweep.pk}/")
    assert f"#{sweep.pk}" in listing and 'id="sweep-table"' in detail
    for html in (listing, detail):
        assert "/analyses/new/" not in html
    assert viewer_web.get(f"/orgs/{org.slug}/analyses/new/?kind=sweep").status_code == 403
    response = viewer_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "monte_carlo", "simulation": finished.pk, "n_sims": "10", "n_chunks": "2"})
    assert response.status_code == 403
    assert Analysis.objects.count() == 1


def test_another_organisations_analysis_is_not_found(owner_web, org, sweep, finished):
    other = OrganizationFactory(slug="beta")
    other_owner = MembershipFactory(organization=other, role="owner", user=UserFactory()).user
    theirs = analyses.analysis_create(
        organization=other, actor=other_owner, kind="sweep",
        strategy_version=sma_version(other, other_owner),
        dataset=synthetic_dataset(other, other_owner, n_bars=200), spec={"space": SPACE})
    assert owner_web.get(f"/orgs/{org.slug}/analyses/{theirs.pk}/").status_code == 404
    assert owner_web.get(f"/orgs/beta/analyses/{theirs.pk}/").status_code == 404
    assert owner_web.get("/orgs/beta/analyses/").status_code == 404
    assert f"#{theirs.pk}<" not in _page(owner_web, org)
    # Another organisation's version or simulation in a form is missing too, and starts nothing.
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "sweep", "strategy_version": theirs.strategy_version_id,
        "dataset": sweep.dataset_id, "objective": "sharpe", "maximize": "true",
        "method": "grid", "p_fast_from": "3", "p_fast_to": "4"})
    assert response.status_code == 404
    other_sim = finished_simulation(other, other_owner,
                                    dataset=synthetic_dataset(other, other_owner, n_bars=200))
    response = owner_web.post(f"/orgs/{org.slug}/analyses/new/", {
        "kind": "monte_carlo", "simulation": other_sim.pk, "n_sims": "10", "n_chunks": "2"})
    assert response.status_code == 400
    assert Analysis.objects.filter(organization=org).count() == 1


# --- query counts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, pin", [("list", 8), ("sweep", 8), ("walk_forward", 8),
                                       ("monte_carlo", 8)])
def test_page_query_counts_are_pinned(owner_web, org, sweep, walk_forward, monte_carlo, name,
                                      pin, django_assert_max_num_queries):
    path = {"list": "", "sweep": f"{sweep.pk}/", "walk_forward": f"{walk_forward.pk}/",
            "monte_carlo": f"{monte_carlo.pk}/"}[name]
    owner_web.get(f"/orgs/{org.slug}/dashboard/")  # warm-up: the session is written once
    with django_assert_max_num_queries(pin):
        html = _page(owner_web, org, path)
    assert ('id="sweep-table"' in html) == (name == "sweep")

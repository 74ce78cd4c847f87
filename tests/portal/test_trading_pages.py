"""The trading pages: what each shows, what each action does, and who may do it."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import OrganizationFactory
from tests.trading.support import finished_simulation, queued_simulation, sma_version
from trading.models import Dataset, RunStatus, Simulation, Strategy, StrategyVersion

GOOD_CSV = ("timestamp,open,high,low,close,volume\n"
            "2024-01-01T00:00:00Z,10,11,9,10.5,100\n"
            "2024-01-01T00:01:00Z,10.5,11,10,10.8,120\n"
            "2024-01-01T00:02:00Z,10.8,11.2,10.6,11,90\n")
# Line 3: close is not a number; line 4: high below open (and low above it).
BAD_CSV = ("timestamp,open,high,low,close,volume\n"
           "2024-01-01T00:00:00Z,10,11,9,10.5,100\n"
           "2024-01-01T00:01:00Z,10,11,9,abc,100\n"
           "2024-01-01T00:02:00Z,10,9,11,10,100\n")


def _json_script(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html,
                      re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


# --- dashboard -------------------------------------------------------------------------------

def test_dashboard_shows_a_queued_run_with_a_live_progress_bar(owner_web, org, owner, dataset,
                                                              version):
    sim = queued_simulation(org, owner, dataset=dataset, version=version)
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    row = re.search(rf'<tr data-sim="{sim.pk}" data-org="alpha" data-seq="(\d+)" '
                    r'data-status="queued">', html)
    assert row, "the run's row carries what the WebSocket client needs"
    sim.refresh_from_db()
    assert int(row.group(1)) == sim.last_seq == 1  # the "simulation.queued" event
    assert f'aria-label="Progress of simulation #{sim.pk}"' in html and 'value="0"' in html


def test_dashboard_of_an_empty_organisation_says_what_to_do_next(owner_web, org):
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    assert "No simulation is running." in html
    assert 'href="/orgs/alpha/simulations/new/"' in html


def test_another_organisations_pages_are_not_found(owner_web, owner):
    other = OrganizationFactory(slug="beta")
    sim = finished_simulation(other)
    assert owner_web.get("/orgs/beta/dashboard/").status_code == 404
    assert owner_web.get(f"/orgs/alpha/simulations/{sim.pk}/").status_code in (404,)


# --- roles -----------------------------------------------------------------------------------

def test_viewer_sees_results_but_no_trading_action(viewer_web, org, finished):
    pages = [f"/orgs/{org.slug}/dashboard/", f"/orgs/{org.slug}/market-data/",
             f"/orgs/{org.slug}/strategies/", f"/orgs/{org.slug}/simulations/",
             f"/orgs/{org.slug}/simulations/{finished.pk}/"]
    for url in pages:
        response = viewer_web.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for action in ("/simulations/new/", "/market-data/import/", "/strategies/new/",
                       "/rerun/", "/cancel/"):
            assert action not in html, (url, action)


@pytest.mark.parametrize("method, path", [
    ("get", "simulations/new/"), ("post", "simulations/new/"), ("post", "market-data/import/"),
    ("post", "market-data/generate/"), ("get", "strategies/new/?kind=sma_cross"),
])
def test_viewer_is_refused_trading_actions(viewer_web, org, method, path):
    response = getattr(viewer_web, method)(f"/orgs/{org.slug}/{path}")
    assert response.status_code == 403


# --- market data -----------------------------------------------------------------------------

def test_rejected_import_lists_each_bad_row_by_line_and_column_and_imports_nothing(owner_web,
                                                                                   org):
    upload = SimpleUploadedFile("bad.csv", BAD_CSV.encode(), content_type="text/csv")
    response = owner_web.post(f"/orgs/{org.slug}/market-data/import/", {
        "name": "bad", "file": upload, "asset_class": "equity", "calendar": "24/7"})
    assert response.status_code == 400
    html = response.content.decode()
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><code>(\w+)</code></td><td>(.*?)</td>',
                      html)
    assert [(line, column) for line, column, _ in rows] == [("3", "close"), ("4", "high"),
                                                            ("4", "low")]
    assert "cannot parse &#x27;abc&#x27; as a number" in rows[0][2]
    assert "Nothing was imported" in html
    assert not Dataset.objects.filter(organization=org).exists()


def test_valid_import_creates_the_dataset_and_opens_its_chart(owner_web, org):
    upload = SimpleUploadedFile("acme.csv", GOOD_CSV.encode(), content_type="text/csv")
    response = owner_web.post(f"/orgs/{org.slug}/market-data/import/", {
        "name": "Acme minutes", "file": upload, "asset_class": "equity", "calendar": "24/7"},
        follow=True)
    dataset = Dataset.objects.get(organization=org, name="Acme minutes")
    assert response.redirect_chain[-1][0] == f"/orgs/alpha/market-data/{dataset.pk}/"
    html = response.content.decode()
    candles = _json_script(html, "candles-data")
    assert candles["symbol"] == "ACME"  # from the file name
    assert candles["close"] == [10.5, 10.8, 11.0] and candles["volume"] == [100, 120, 90]
    assert 'data-chart="candles"' in html


def test_generated_dataset_appears_in_the_list(owner_web, org):
    owner_web.post(f"/orgs/{org.slug}/market-data/generate/", {
        "name": "Synthetic", "generator": "gbm", "n_bars": "300", "seed": "3"})
    html = owner_web.get(f"/orgs/{org.slug}/market-data/").content.decode()
    assert ">Synthetic</a>" in html


# --- strategies ------------------------------------------------------------------------------

def test_strategy_form_has_a_field_per_engine_parameter_with_its_help(owner_web, org):
    from trading.engine.strategies import get_strategy

    html = owner_web.get(f"/orgs/{org.slug}/strategies/new/?kind=bollinger").content.decode()
    for param in get_strategy("bollinger").params:
        assert f'name="param_{param.name}"' in html, param.name
        if param.help:
            assert param.help.replace("'", "&#x27;") in html
    assert 'name="param_window" value="20"' in html  # the engine's default


def test_out_of_range_parameter_is_reported_at_its_field_and_nothing_saved(owner_web, org):
    response = owner_web.post(f"/orgs/{org.slug}/strategies/new/?kind=sma_cross", {
        "kind": "sma_cross", "name": "Bad", "param_fast": "-3", "param_slow": "20",
        "sizing_mode": "all-cash", "sizing_value": "1", "commission_bps": "0",
        "slippage_bps": "0"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_param_fast_error"', html)
    assert not Strategy.objects.filter(organization=org).exists()


def test_creating_a_strategy_saves_version_one_with_the_form_values(owner_web, org):
    response = owner_web.post(f"/orgs/{org.slug}/strategies/new/?kind=sma_cross", {
        "kind": "sma_cross", "name": "Trend", "param_fast": "7", "param_slow": "30",
        "sizing_mode": "percent-equity", "sizing_value": "0.5", "commission_bps": "5",
        "slippage_bps": "2"})
    strategy = Strategy.objects.get(organization=org, name="Trend")
    assert response.status_code == 302
    version = strategy.versions.get()
    assert version.number == 1 and version.params == {"fast": 7, "slow": 30}
    assert version.sizing == {"mode": "percent-equity", "value": 0.5}
    assert version.costs == {"commission_bps": 5.0, "slippage_bps": 2.0}


def test_rules_editor_points_at_the_bad_token(owner_web, org):
    text = "entry: crossover(sma(close, 10), sma(close, 50))\nexit: close >> 3\n"
    response = owner_web.post(f"/orgs/{org.slug}/strategies/rules/check/", {"rules_text": text},
                              HTTP_HX_REQUEST="true")
    html = response.content.decode()
    match = re.search(r"Line (\d+), column (\d+):</strong>", html)
    assert match and match.group(1) == "2"
    column = int(match.group(2))
    # The caret sits under that column of the quoted line.
    caret_line = re.search(r'\n( *)<span class="caret">\^</span>', html)
    assert caret_line and len(caret_line.group(1)) == column - 1
    assert "exit: close &gt;&gt; 3" in html


def test_saving_invalid_rules_keeps_the_text_and_points_at_the_token(owner_web, org):
    text = "entry: close > sma(close, 20)\nexit: close <\n"
    response = owner_web.post(f"/orgs/{org.slug}/strategies/new/?kind=rules", {
        "kind": "rules", "name": "Broken", "rules_text": text, "sizing_mode": "all-cash",
        "sizing_value": "1", "commission_bps": "0", "slippage_bps": "0"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r"Line 2, column \d+:</strong>", html)
    assert "exit: close &lt;" in html  # the text is kept in the editor
    assert not Strategy.objects.filter(organization=org).exists()


def test_valid_rules_are_confirmed(owner_web, org):
    text = "entry: crossover(sma(close, 10), sma(close, 50))\n"
    html = owner_web.post(f"/orgs/{org.slug}/strategies/rules/check/",
                          {"rules_text": text}).content.decode()
    assert "The rules are valid." in html


def test_new_version_starts_from_the_latest_and_is_listed(owner_web, org, version):
    url = f"/orgs/{org.slug}/strategies/{version.strategy_id}/"
    html = owner_web.get(url).content.decode()
    assert 'name="param_fast" value="5"' in html  # the latest version's value, not the default
    owner_web.post(url, {"param_fast": "8", "param_slow": "21", "sizing_mode": "all-cash",
                         "sizing_value": "1", "commission_bps": "0", "slippage_bps": "0",
                         "note": "slower"})
    newest = StrategyVersion.objects.filter(strategy_id=version.strategy_id).order_by(
        "-number").first()
    assert (newest.number, newest.params, newest.note) == (2, {"fast": 8, "slow": 21}, "slower")
    assert "slower" in owner_web.get(url).content.decode()


# --- simulations -----------------------------------------------------------------------------

def test_simulate_queues_the_run_and_opens_its_live_page(owner_web, org, dataset, version):
    response = owner_web.post(f"/orgs/{org.slug}/simulations/new/", {
        "strategy_version": version.pk, "dataset": dataset.pk, "cash": "50000"})
    sim = Simulation.objects.get(organization=org)
    assert response.status_code == 302 and response.url == f"/orgs/alpha/simulations/{sim.pk}/"
    assert sim.status == RunStatus.QUEUED and sim.config == {"cash": 50000.0}
    assert sim.strategy_version_id == version.pk  # costs unchanged: the same version
    html = owner_web.get(response.url).content.decode()
    assert f'data-finish-url="/orgs/alpha/simulations/{sim.pk}/results/"' in html
    assert f'data-live-equity="{sim.pk}"' in html


def test_changing_costs_on_the_simulate_form_runs_a_new_version(owner_web, org, dataset,
                                                                version):
    owner_web.post(f"/orgs/{org.slug}/simulations/new/", {
        "strategy_version": version.pk, "dataset": dataset.pk, "cash": "50000",
        "commission_bps": "10"})
    sim = Simulation.objects.get(organization=org)
    ran = sim.strategy_version
    assert ran.pk != version.pk and ran.number == 2
    assert ran.costs == {"commission_bps": 10.0} and ran.params == version.params


def test_a_refused_run_saves_no_new_version(owner_web, org, dataset, version, settings):
    # A dataset larger than the per-run limit: the run is refused (413 in the API).
    settings.NEXOW_SIM_MAX_SIZE = 10
    response = owner_web.post(f"/orgs/{org.slug}/simulations/new/", {
        "strategy_version": version.pk, "dataset": dataset.pk, "cash": "1000",
        "commission_bps": "25"})
    assert response.status_code == 400
    assert "At most 10 bars × symbols per run." in response.content.decode()
    assert StrategyVersion.objects.filter(strategy=version.strategy).count() == 1


def test_simulate_form_reports_an_inverted_period_inline(owner_web, org, dataset, version):
    response = owner_web.post(f"/orgs/{org.slug}/simulations/new/", {
        "strategy_version": version.pk, "dataset": dataset.pk, "cash": "1000",
        "period_start": "2024-05-01", "period_end": "2024-01-01"})
    assert response.status_code == 400
    assert "The period ends before it starts." in response.content.decode()
    assert not Simulation.objects.filter(organization=org).exists()


def test_result_page_shows_metrics_charts_trades_and_export(owner_web, org, finished):
    html = owner_web.get(f"/orgs/{org.slug}/simulations/{finished.pk}/").content.decode()
    equity = _json_script(html, "equity-data")
    assert equity["y"][-1] == pytest.approx(finished.metrics["end_equity"], rel=1e-9)
    drawdown = _json_script(html, "drawdown-data")
    assert max(drawdown["y"]) == 0.0 and min(drawdown["y"]) == pytest.approx(
        finished.metrics["max_drawdown"], abs=1e-6)
    assert "Total return" in html and "Sharpe" in html
    assert f"/api/v1/orgs/alpha/simulations/{finished.pk}/trades.csv" in html
    assert finished.n_trades > 0
    trades_html = html[html.index('id="trades-table"'):]
    body = trades_html[trades_html.index("<tbody>"):trades_html.index("</tbody>")]
    assert body.count("<tr>") == min(finished.n_trades, 50)  # the first page of 50


def test_trades_sort_by_pnl_descending(owner_web, org, finished):
    html = owner_web.get(f"/orgs/{org.slug}/simulations/{finished.pk}/trades/?sort=-pnl",
                         HTTP_HX_REQUEST="true").content.decode()
    pnls = [float(x.replace(",", "")) for x in
            re.findall(r'<td class="num (?:pos|neg|)">(-?[\d,.]+)</td>', html)]
    best = max(t.pnl for t in finished.trades.all())
    assert pnls and pnls == sorted(pnls, reverse=True)
    assert pnls[0] == pytest.approx(best, abs=0.005)
    assert 'aria-sort="descending"' in html


def test_monthly_heatmap_matches_the_equity_curve(owner_web, org, finished):
    import numpy as np

    from trading import selectors
    from trading.engine.metrics import monthly_returns_table

    html = owner_web.get(f"/orgs/{org.slug}/simulations/{finished.pk}/").content.decode()
    heatmap = _json_script(html, "heatmap-data")
    ts, eq = selectors.simulation_equity(simulation=finished)
    table = monthly_returns_table(eq, ts)
    first_year = sorted(table)[0]
    first_month = next(i for i, v in enumerate(table[first_year][:12]) if v is not None)
    assert heatmap["years"][0] == str(first_year)
    assert heatmap["z"][0][first_month] == pytest.approx(
        round(float(table[first_year][first_month]) * 100, 2))
    assert np.isfinite(heatmap["z"][0][first_month])


def test_compare_puts_runs_side_by_side(owner_web, org, owner, dataset, finished):
    other = finished_simulation(org, owner, dataset=dataset,
                                version=sma_version(org, owner, params={"fast": 3, "slow": 12}))
    html = owner_web.get(f"/orgs/{org.slug}/simulations/compare/?ids={finished.pk},{other.pk}"
                         ).content.decode()
    chart = _json_script(html, "compare-data")
    assert [s["name"].split()[0] for s in chart["series"]] == [f"#{finished.pk}", f"#{other.pk}"]
    assert all(s["y"][0] == 1.0 for s in chart["series"])  # both start at 1
    row = re.search(r'<th scope="row">Total return</th>(.*?)</tr>', html, re.S).group(1)
    expected = [f"{s.metrics['total_return'] * 100:.2f}%" for s in (finished, other)]
    assert re.findall(r'<td class="num">(.*?)</td>', row) == expected

"""The divergence monitor: a paper deployment next to its backtest on the same bars."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.permissions import Role
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_accounts import session_client
from tests.trading.support import org_with_owner, sma_version
from trading.models import Deployment, LiveFill
from trading.services import deployments, orders
from trading.services.divergence import deployment_divergence

from .support import MINUTE, T0, paper_account, paper_deployment

pytestmark = pytest.mark.django_db

FIXED_10 = {"mode": "fixed-quantity", "value": 10}


def _deployment(org, owner, *, sizing=None, costs=None, seed=11) -> Deployment:
    """A started SMA 5/20 paper deployment on SYN (a version with its own sizing and costs)."""
    version = sma_version(org, owner, name=f"sma-{seed}", sizing=sizing or {}, costs=costs or {})
    dep = deployments.deployment_create(
        organization=org, actor=owner, strategy_version=version,
        broker_account=paper_account(org, owner, name=f"paper-{seed}"), symbols=["SYN"],
        config={"seed": seed, "volatility": 0.004})
    deployments.deployment_start(deployment=dep, actor=owner, now_ns=T0)
    dep.refresh_from_db()
    return dep


def _advance(dep: Deployment, *minutes: int) -> Deployment:
    for m in minutes:
        deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + m * MINUTE)
    dep.refresh_from_db()
    return dep


def test_a_paper_deployment_without_manual_orders_does_not_diverge():
    org, owner = org_with_owner()
    dep = _advance(paper_deployment(org, owner), 100, 200, 300)

    d = deployment_divergence(dep).to_dict()

    n_fills = LiveFill.objects.filter(deployment=dep).count()
    assert n_fills > 6  # several round trips are compared
    assert (d["bars"], d["from_ts"], d["to_ts"]) == (300, T0, T0 + 299 * MINUTE)
    assert d["summary"]["matched"] == n_fills
    assert (d["summary"]["live_only"], d["summary"]["backtest_only"]) == (0, 0)
    assert d["summary"]["pnl_drift"] == 0.0
    assert d["summary"]["max_equity_gap"] == 0.0
    assert d["summary"]["mean_slippage_bps"] == 0.0
    assert d["summary"]["first_divergence_ts"] is None
    assert d["live"]["fills"] == d["backtest"]["fills"] == n_fills
    assert d["live"]["final_equity"] == d["backtest"]["final_equity"] == \
        round(float(dep.equity), 2)
    # one live point per step, the backtest's at every bar
    assert [p[0] for p in d["live"]["equity"]] == [T0 + 99 * MINUTE, T0 + 199 * MINUTE,
                                                   T0 + 299 * MINUTE]
    assert len(d["backtest"]["equity"]) == 300
    assert all(f["live_ts"] == f["backtest_ts"] and f["price_diff"] == 0.0
               and f["live_quantity"] == f["backtest_quantity"] for f in d["fills"])


def test_a_manual_order_is_live_only_with_its_pnl_effect():
    org, owner = org_with_owner()
    dep = _advance(_deployment(org, owner, sizing=FIXED_10), 300)
    orders.order_place(deployment=dep, actor=owner, symbol="SYN", side="buy", quantity=5)
    dep = _advance(dep, 301)  # the manual buy fills at the open of the last bar

    d = deployment_divergence(dep).to_dict()

    manual = [f for f in d["fills"] if f["manual"]]
    assert len(manual) == 1
    (m,) = manual
    assert (m["status"], m["side"], m["live_quantity"], m["live_ts"]) == \
        ("live_only", "buy", 5.0, T0 + 300 * MINUTE)
    assert m["backtest_ts"] is None and m["slippage_bps"] is None
    last_close = deployments.synthetic_bars(dep, -60, 301, [100.0]).close[-1, 0]
    # its effect: 5 units marked at the last close, less what they cost (no commission here)
    assert m["pnl_effect"] == round(5 * (last_close - m["live_price"]), 2)
    # the strategy's own fills all match, and the manual fill explains the whole drift
    assert d["summary"]["live_only"] == 1 and d["summary"]["backtest_only"] == 0
    assert d["summary"]["matched"] == LiveFill.objects.filter(deployment=dep).count() - 1
    assert d["summary"]["pnl_drift"] == m["pnl_effect"] != 0.0
    assert d["summary"]["first_divergence_ts"] == T0 + 300 * MINUTE


def test_worse_fills_than_the_backtests_show_as_measured_slippage():
    org, owner = org_with_owner()
    dep = _deployment(org, owner, sizing=FIXED_10)
    # the venue fills 10 bps worse than the version's cost model (no slippage) expects
    account = json.loads(dep.broker_state)
    account["slippage"] = {**account["slippage"], "bps": 10.0}
    Deployment.objects.filter(pk=dep.pk).update(broker_state=json.dumps(account))
    dep = _advance(dep, 300)

    d = deployment_divergence(dep).to_dict()

    matched = [f for f in d["fills"] if f["status"] == "matched"]
    assert len(matched) == LiveFill.objects.filter(deployment=dep).count() > 6
    for f in matched:
        # market orders: the backtest fills at the open, the venue 10 bps against the trader
        sign = 1 if f["side"] == "buy" else -1
        assert f["live_price"] == pytest.approx(f["backtest_price"] * (1 + sign * 0.001),
                                                abs=1e-9)
        assert f["slippage_bps"] == 10.0
    assert d["summary"]["mean_slippage_bps"] == 10.0
    # the drift is what the worse prices cost: 10 units times the price difference, per fill
    cost = sum(f["live_quantity"] * abs(f["live_price"] - f["backtest_price"]) for f in matched)
    assert d["summary"]["pnl_drift"] == round(-cost, 2) < 0
    assert d["summary"]["first_divergence_ts"] == matched[0]["live_ts"]


def test_a_deployment_that_has_not_decided_yet_has_nothing_to_compare():
    org, owner = org_with_owner()
    d = deployment_divergence(paper_deployment(org, owner)).to_dict()
    assert (d["bars"], d["fills"], d["summary"]["matched"], d["summary"]["pnl_drift"]) == \
        (0, [], 0, 0.0)


# --- API and portal ---------------------------------------------------------------------------

def _api_url(dep: Deployment) -> str:
    return f"/api/v1/orgs/{dep.organization.slug}/deployments/{dep.pk}/divergence/"


def _portal_url(dep: Deployment) -> str:
    return reverse("trading:deployment-divergence", args=[dep.organization.slug, dep.pk])


def test_the_api_returns_the_comparison_to_a_reader():
    org, owner = org_with_owner()
    dep = _advance(paper_deployment(org, owner), 300)
    viewer = MembershipFactory(organization=org, role=Role.VIEWER, user=UserFactory()).user

    response = session_client(viewer).get(_api_url(dep))

    assert response.status_code == 200
    body = response.json()
    assert body["bars"] == 300
    assert body["summary"]["matched"] == LiveFill.objects.filter(deployment=dep).count() > 0
    assert body["summary"]["pnl_drift"] == 0.0
    assert set(body["fills"][0]) >= {"symbol", "side", "status", "live_ts", "live_price",
                                     "live_quantity", "backtest_ts", "backtest_price",
                                     "backtest_quantity", "price_diff", "slippage_bps"}


def test_the_portal_partial_shows_the_summary_chart_data_and_fills():
    org, owner = org_with_owner()
    dep = _advance(paper_deployment(org, owner), 300)
    n = LiveFill.objects.filter(deployment=dep).count()

    response = session_client(owner).get(_portal_url(dep), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="divergence-data"' in html and "data-divergence-chart" in html
    assert "<script>" not in html  # the chart is drawn by divergence.js from the JSON
    assert html.count('data-status="matched"') == n
    assert f"{n} matched" in html


def test_another_organisation_gets_404_from_the_api_and_the_portal():
    org, owner = org_with_owner()
    dep = _advance(paper_deployment(org, owner), 100)
    _, stranger = org_with_owner()

    assert session_client(stranger).get(_api_url(dep)).status_code == 404
    other = reverse("trading:deployment-divergence",
                    args=[stranger.memberships.first().organization.slug, dep.pk])
    assert session_client(stranger).get(other, HTTP_HX_REQUEST="true").status_code == 404
    assert session_client(stranger).get(_portal_url(dep),
                                        HTTP_HX_REQUEST="true").status_code == 404

"""The live-trading API by role: accounts with write-only secrets, deployments, manual orders."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.permissions import Role
from tests.fixtures_accounts import member, session_client
from tests.trading.support import org_with_owner, sma_version
from trading.models import Deployment, LiveOrder

from .support import MINUTE, T0, paper_account, paper_deployment

pytestmark = pytest.mark.django_db
SECRET = "binance-secret-value-4321"


def _url(name, org, **kw):
    return reverse(f"trading-api:{name}", kwargs={"org_slug": org.slug, **kw})


def test_credentials_are_write_only_and_masked_in_every_response():
    org, owner = org_with_owner()
    client = session_client(owner)
    resp = client.post(_url("broker-account-list", org), {
        "name": "binance", "kind": "ccxt", "mode": "live",
        "credentials": {"api_key": "public-key-2468", "secret": SECRET}}, format="json")
    assert resp.status_code == 201, resp.content
    # the last four of the key id tell keys apart; no character of the secret is shown
    assert resp.json()["credentials"] == "••••2468"
    pk = resp.json()["id"]
    for url in (_url("broker-account-list", org), _url("broker-account-detail", org, pk=pk)):
        body = client.get(url).content.decode()
        assert SECRET not in body and "public-key" not in body and "••••2468" in body
        assert "4321" not in body
    # replacing the credentials changes the mask, still without revealing them
    resp = client.patch(_url("broker-account-detail", org, pk=pk),
                        {"credentials": {"api_key": "other-key-0007", "secret": "other-secret"}},
                        format="json")
    assert resp.json()["credentials"] == "••••0007"


def test_a_trader_deploys_starts_and_reads_the_events():
    org, owner = org_with_owner()
    trader = member(org, Role.TRADER)
    client = session_client(trader)
    version = sma_version(org, owner)
    account = paper_account(org, owner)
    resp = client.post(_url("deployment-list", org), {
        "strategy_version": version.pk, "broker_account": account.pk, "symbols": ["SYN"],
        "config": {"bar_seconds": 1}}, format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["status"] == "pending"
    pk = resp.json()["id"]
    resp = client.post(_url("deployment-start", org, pk=pk))
    assert resp.status_code == 200 and resp.json()["status"] == "running"
    events = client.get(_url("deployment-events", org, pk=pk) + "?since=1").json()
    # 1 = created; 2 = the status change to running
    assert [(e["seq"], e["type"]) for e in events["events"]] == [(2, "deployment.status")]
    assert client.post(_url("deployment-pause", org, pk=pk)).json()["status"] == "paused"
    assert client.post(_url("deployment-stop", org, pk=pk)).json()["status"] == "stopped"


def test_another_organisations_version_or_account_is_refused():
    org, owner = org_with_owner()
    other, other_owner = org_with_owner()
    resp = session_client(owner).post(_url("deployment-list", org), {
        "strategy_version": sma_version(other, other_owner).pk,
        "broker_account": paper_account(other, other_owner).pk, "symbols": ["SYN"]},
        format="json")
    assert resp.status_code == 400
    assert not Deployment.objects.exists()


def test_traders_place_manual_orders_and_analysts_may_not():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    body = {"deployment": dep.pk, "symbol": "SYN", "side": "buy", "quantity": 2}
    assert session_client(member(org, Role.ANALYST)).post(
        _url("live-order-list", org), body, format="json").status_code == 403
    resp = session_client(member(org, Role.TRADER)).post(_url("live-order-list", org), body,
                                                         format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["status"] == "accepted" and float(resp.json()["quantity"]) == 2.0


def test_a_filled_manual_order_shows_in_fills_and_positions():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    client = session_client(member(org, Role.VIEWER))
    from trading.services import deployments, orders

    orders.order_place(deployment=dep, actor=owner, symbol="SYN", side="buy", quantity=3)
    # the market order fills at the open of the next bar (k = 0, final at T0 + 1 min)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + MINUTE)
    fills = client.get(_url("live-fill-list", org)).json()["results"]
    assert [(f["side"], float(f["quantity"])) for f in fills] == [("buy", 3.0)]
    positions = client.get(_url("position-list", org)).json()["results"]
    assert [(p["symbol"], p["quantity"]) for p in positions] == [("SYN", 3.0)]


def test_cancelling_a_working_order_through_the_api():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    from trading.services import orders

    order = orders.order_place(deployment=dep, actor=owner, symbol="SYN", side="buy",
                               quantity=1, order_type="limit", limit_price=1.0)
    client = session_client(member(org, Role.TRADER))
    resp = client.post(_url("live-order-cancel", org, pk=order.pk))
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert client.post(_url("live-order-cancel", org, pk=order.pk)).status_code == 409
    assert LiveOrder.objects.get(pk=order.pk).status == "cancelled"


@pytest.mark.parametrize("route", ["deployment-list", "live-order-list", "live-fill-list"])
def test_list_endpoints_cost_the_same_queries_for_one_or_many_rows(route):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from trading.services import deployments, orders

    org, owner = org_with_owner()
    client = session_client(owner)

    def traded() -> None:
        dep = paper_deployment(org, owner, seed=Deployment.objects.count() + 1)
        orders.order_place(deployment=dep, actor=owner, symbol="SYN", side="buy", quantity=1)
        deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + MINUTE)

    traded()
    with CaptureQueriesContext(connection) as one:
        assert client.get(_url(route, org)).json()["count"] == 1
    traded()
    traded()
    with CaptureQueriesContext(connection) as three:
        assert client.get(_url(route, org)).json()["count"] == 3
    assert len(three.captured_queries) == len(one.captured_queries)


@pytest.mark.parametrize("config,field", [
    ({"bar_seconds": "abc"}, "config.bar_seconds"), ({"bar_seconds": 0}, "config.bar_seconds"),
    ({"lookback": 2.5}, "config.lookback"), ({"colour": 1}, "config.colour"),
    ({"warm_bars": 100, "lookback": 50}, "config.warm_bars")])
def test_a_bad_configuration_is_a_400_naming_the_field(config, field):
    org, owner = org_with_owner()
    resp = session_client(owner).post(_url("deployment-list", org), {
        "strategy_version": sma_version(org, owner).pk,
        "broker_account": paper_account(org, owner).pk, "symbols": ["SYN"],
        "config": config}, format="json")
    assert resp.status_code == 400
    assert field in resp.content.decode()

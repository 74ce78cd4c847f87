"""The deployment pages: what each shows, what each action does through the services, and who may
do it. Deployments are built with the services and started at a known time (T0), so each test
decides which bars are final and the pages show numbers a person can check."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from accounts.permissions import Role
from tests.deployments.support import MINUTE, T0, paper_account, paper_deployment
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.portal.conftest import signed_in
from tests.trading.support import sma_version
from trading.models import BrokerAccount, Deployment, LiveFill, LiveOrder
from trading.services import deployments as services
from trading.services import orders as order_services


def _json_script(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html,
                      re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


def _member(org, role):
    return MembershipFactory(organization=org, role=role, user=UserFactory()).user


def _actions(org, *names):
    return list(AuditEvent.objects.filter(organization=org, action__in=names)
                .order_by("sequence").values_list("action", flat=True))


@pytest.fixture
def traded(org, owner):
    """A running paper deployment that has traded 300 one-minute bars after T0."""
    dep = paper_deployment(org, owner, name="Trend on SYN")
    services.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 300 * MINUTE)
    dep.refresh_from_db()
    return dep


@pytest.fixture
def trader_web(org):
    return signed_in(_member(org, Role.TRADER))


def _state(dep):
    return json.loads(Deployment.objects.get(pk=dep.pk).state)


# --- the list ------------------------------------------------------------------------------------

def test_list_shows_each_deployment_with_its_status_setup_equity_pnl_and_last_bar(owner_web, org,
                                                                                 traded):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/").content.decode()
    row = re.search(rf'<tr data-deployment-row data-deployment="{traded.pk}".*?</tr>', html, re.S)
    assert row, "the running deployment has a live row"
    row = row.group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                   re.S)]
    pnl = traded.equity - Decimal("100000")
    assert cells[0] == f"Trend on SYN #{traded.pk}"
    assert cells[1] == "Running"
    assert cells[2] == "sma v1"
    assert cells[3].startswith(traded.broker_account.name) and cells[3].endswith("paper")
    assert cells[4] == "SYN"
    assert cells[5] == f"{traded.equity:,.2f}"
    assert cells[6] == f"{pnl:,.2f} ({pnl / 1000:.2f}%)"
    assert cells[7] == "2026-01-01 04:59:00 UTC"  # bar 299 opens at T0 + 299 min
    assert f'data-seq="{traded.last_seq}"' in row and 'data-cash="100000' in row


def test_empty_list_says_what_to_do_next(owner_web, viewer_web, org):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/").content.decode()
    assert "No deployment yet." in html
    assert 'href="/orgs/alpha/deployments/new/"' in html
    viewer_html = viewer_web.get(f"/orgs/{org.slug}/deployments/").content.decode()
    assert "No deployment yet." in viewer_html and "/deployments/new/" not in viewer_html


def test_list_filters_by_status(owner_web, org, owner, traded):
    pending = paper_deployment(org, owner, start=False, seed=3, name="Later")
    html = owner_web.get(f"/orgs/{org.slug}/deployments/?status=pending").content.decode()
    assert f"/deployments/{pending.pk}/" in html and f"/deployments/{traded.pk}/" not in html


# --- creating a deployment -----------------------------------------------------------------------

def test_new_deployment_is_created_and_started_through_the_services(owner_web, org, owner):
    version = sma_version(org, owner)
    account = paper_account(org, owner, name="Paper one")
    response = owner_web.post(f"/orgs/{org.slug}/deployments/new/", {
        "name": "Momentum", "strategy_version": version.pk, "broker_account": account.pk,
        "symbols": "btc/usd, ETH/USD", "cash": "25000", "bar_seconds": "5", "lookback": "100",
        "warm_bars": "40", "seed": "", "volatility": "", "start": "on"})
    dep = Deployment.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/alpha/deployments/{dep.pk}/"
    assert (dep.name, dep.strategy_version_id, dep.broker_account_id) == (
        "Momentum", version.pk, account.pk)
    assert dep.symbols == ["BTC/USD", "ETH/USD"]
    assert dep.config == {"cash": 25000.0, "bar_seconds": 5, "lookback": 100, "warm_bars": 40}
    assert dep.status == "running" and dep.equity == Decimal("25000")
    assert _actions(org, "deployment.created", "deployment.started") == [
        "deployment.created", "deployment.started"]


def test_new_deployment_without_start_stays_pending(owner_web, org, owner):
    version = sma_version(org, owner)
    account = paper_account(org, owner)
    owner_web.post(f"/orgs/{org.slug}/deployments/new/", {
        "strategy_version": version.pk, "broker_account": account.pk, "symbols": "SYN",
        "cash": "100000", "bar_seconds": "60", "lookback": "200", "warm_bars": "60"})
    assert Deployment.objects.get(organization=org).status == "pending"


@pytest.mark.parametrize("change, field, message", [
    ({"symbols": " , "}, "symbols", "Give at least one symbol."),
    ({"symbols": "SYN, syn"}, "symbols", "Each symbol once: SYN is repeated."),
    ({"cash": "0"}, "cash", "greater than or equal to 1"),
    ({"bar_seconds": "1.5"}, "bar_seconds", "Enter a whole number."),
    # The form lets this through; the service refuses it and the error lands at its field.
    ({"warm_bars": "300", "lookback": "100"}, "warm_bars", "At most lookback."),
])
def test_bad_deployment_input_is_reported_at_its_field_and_nothing_is_saved(
        owner_web, org, owner, change, field, message):
    version = sma_version(org, owner)
    account = paper_account(org, owner)
    response = owner_web.post(f"/orgs/{org.slug}/deployments/new/", {
        "strategy_version": version.pk, "broker_account": account.pk, "symbols": "SYN",
        "cash": "100000", "bar_seconds": "60", "lookback": "200", "warm_bars": "60",
        "start": "on", **change})
    assert response.status_code == 400
    html = response.content.decode()
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error" role="alert">(.*?)</ul>',
                       html, re.S)
    assert errors and message in errors.group(1)
    widget = re.search(rf'<input [^>]*name="{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in widget and f'aria-describedby="id_{field}_' in widget
    assert not Deployment.objects.filter(organization=org).exists()


def test_another_organisations_version_cannot_be_deployed(owner_web, org, owner):
    other = OrganizationFactory(slug="beta")
    foreign = sma_version(other)
    account = paper_account(org, owner)
    sma_version(org, owner)
    response = owner_web.post(f"/orgs/{org.slug}/deployments/new/", {
        "strategy_version": foreign.pk, "broker_account": account.pk, "symbols": "SYN",
        "cash": "100000", "bar_seconds": "60", "lookback": "200", "warm_bars": "60"})
    assert response.status_code == 400
    assert 'id="id_strategy_version_error"' in response.content.decode()
    assert not Deployment.objects.exists()


def test_new_deployment_page_says_what_is_missing_first(owner_web, org, owner):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/new/").content.decode()
    assert "You need a strategy first." in html
    sma_version(org, owner)
    html = owner_web.get(f"/orgs/{org.slug}/deployments/new/").content.decode()
    assert "You need a broker account first." in html
    assert 'href="/orgs/alpha/deployments/accounts/new/"' in html


# --- broker accounts -----------------------------------------------------------------------------

def test_accounts_list_shows_the_credentials_hint_never_the_secret(owner_web, org, owner):
    services.broker_account_create(organization=org, actor=owner, name="Binance", kind="ccxt",
                                   mode="live", credentials={"api_key": "AK-public-1234",
                                                             "secret": "s3cret-value-9876"})
    paper_account(org, owner, name="Paper")
    html = owner_web.get(f"/orgs/{org.slug}/deployments/accounts/").content.decode()
    account = BrokerAccount.objects.get(name="Binance")
    assert account.credentials_hint == "1234"
    assert "<code>••••1234</code>" in html
    assert "s3cret" not in html and "9876" not in html and "AK-public" not in html
    assert ">Paper</td>" in html and ">none</span>" in html


def test_paper_account_is_created_through_the_service_and_audited(owner_web, org):
    response = owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Sandbox", "kind": "paper", "mode": "paper"})
    assert response["Location"] == "/orgs/alpha/deployments/accounts/"
    account = BrokerAccount.objects.get(organization=org)
    assert (account.name, account.kind, account.mode, account.credentials_encrypted) == (
        "Sandbox", "paper", "paper", "")
    assert _actions(org, "broker_account.created") == ["broker_account.created"]


def test_live_account_credentials_are_stored_encrypted_with_their_hint(owner_web, org):
    from trading.crypto import decrypt_credentials

    owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Exchange", "kind": "ccxt", "mode": "live", "api_key": "key-0001",
        "api_secret": "secret-abcdef", "exchange": "binance", "dedicated": "on"})
    account = BrokerAccount.objects.get(organization=org)
    assert decrypt_credentials(account.credentials_encrypted) == {
        "api_key": "key-0001", "secret": "secret-abcdef"}
    assert account.options == {"exchange": "binance", "testnet": False, "dedicated": True}
    assert account.masked_credentials == "••••0001"


def test_an_exchange_account_made_in_the_portal_can_run_a_deployment(owner_web, org):
    from trading.services import venues

    response = owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Testnet", "kind": "ccxt", "mode": "paper", "api_key": "key-0001",
        "api_secret": "secret-abcdef", "exchange": "binance", "testnet": "on"})
    assert response.status_code == 302
    account = BrokerAccount.objects.get(organization=org)
    # what the worker needs: credentials it can read and options it accepts
    assert venues.check_deployable(account, symbols=["BTCUSDT"], bar_seconds=60) == ["BTC/USDT"]
    assert venues.ccxt_options(account).testnet is True


def test_an_exchange_account_in_paper_mode_must_use_the_testnet(owner_web, org):
    response = owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Testnet", "kind": "ccxt", "mode": "paper", "api_key": "key-0001",
        "api_secret": "secret-abcdef", "exchange": "binance"})
    assert response.status_code == 400
    assert "An exchange account in paper mode trades on the testnet." in \
        response.content.decode()
    assert not BrokerAccount.objects.filter(organization=org).exists()


def test_a_refused_account_form_does_not_send_the_secret_back(owner_web, org, owner):
    paper_account(org, owner, name="Taken")
    response = owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Taken", "kind": "ccxt", "mode": "live", "api_key": "key-0001",
        "api_secret": "secret-abcdef"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_name_error" role="alert"><li>A broker account with this name', html)
    assert 'type="password"' in html
    assert "secret-abcdef" not in html and "key-0001" not in html
    assert BrokerAccount.objects.filter(organization=org).count() == 1


def test_a_paper_account_in_live_mode_is_refused_inline(owner_web, org):
    response = owner_web.post(f"/orgs/{org.slug}/deployments/accounts/new/", {
        "name": "Odd", "kind": "paper", "mode": "live"})
    assert response.status_code == 400
    assert re.search(r'id="id_mode_error" role="alert"><li>A paper account is always in paper',
                     response.content.decode())
    assert not BrokerAccount.objects.exists()


# --- one deployment ------------------------------------------------------------------------------

def test_detail_chart_has_the_closes_the_fills_and_the_equity_of_the_deployment(owner_web, org,
                                                                                traded):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/{traded.pk}/").content.decode()
    chart = _json_script(html, "deployment-chart-data")
    state = _state(traded)
    assert chart["symbol"] == "SYN"
    assert chart["price"]["ts"][-1] == state["last_timestamp"] == T0 + 299 * MINUTE
    assert chart["price"]["x"][-1] == "2026-01-01T04:59:00Z"
    assert len(chart["price"]["close"]) == state["history"]["n"]
    fills = LiveFill.objects.filter(deployment=traded)
    buys = sorted(float(f.price) for f in fills if f.side == "buy")
    sells = sorted(float(f.price) for f in fills if f.side == "sell")
    assert buys and sells
    assert sorted(chart["buys"]["y"]) == buys and sorted(chart["sells"]["y"]) == sells
    # one equity point per step: the single step of 300 bars ends at the deployment's equity
    assert chart["equity"]["ts"][-1] == T0 + 299 * MINUTE
    assert chart["equity"]["y"][-1] == pytest.approx(float(traded.equity))
    assert 'data-deployment-chart data-chart-source="deployment-chart-data"' in html
    assert 'src="/static/nexow/deployment.js"' in html and 'src="/static/vendor/plotly.min.js"' \
        in html


def test_detail_loads_the_divergence_panel_with_htmx_and_has_no_inline_script(owner_web, org,
                                                                            traded):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/{traded.pk}/").content.decode()
    assert re.search(rf'<section [^>]*id="divergence"[^>]*\s+hx-get="/orgs/alpha/deployments/'
                     rf'{traded.pk}/divergence/" hx-trigger="load"', html)
    assert 'src="/static/nexow/divergence.js"' in html
    for attrs in re.findall(r"<script([^>]*)>", html):
        assert 'src="/static/' in attrs or 'type="application/json"' in attrs, attrs


def test_detail_shows_the_numbers_and_the_books(owner_web, org, traded):
    html = owner_web.get(f"/orgs/{org.slug}/deployments/{traded.pk}/").content.decode()
    assert f'<dd data-field="equity">{traded.equity:,.2f}</dd>' in html
    assert f'<dd data-field="cash">{traded.cash:,.2f}</dd>' in html
    assert '<span class="badge status-running" data-dep-status>Running</span>' in html
    orders = LiveOrder.objects.filter(deployment=traded)
    fills = LiveFill.objects.filter(deployment=traded)
    orders_table = html[html.index('id="orders-heading"'):]
    assert orders_table.count("<tr>") - 1 == min(orders.count(), 50)  # minus the header row
    fills_table = html[html.index('id="fills-heading"'):html.index('id="orders-heading"')]
    assert fills_table.count("<tr>") - 1 == min(fills.count(), 50)
    position = _state(traded)["positions"].get("SYN", 0.0)
    if position:
        assert f"<td>SYN</td><td class=\"num\">{position:g}" in html.replace("\n", "")
    else:
        assert "Flat: no open position." in html


def test_detail_live_parts_answer_what_the_page_asks(owner_web, org, traded):
    url = f"/orgs/{org.slug}/deployments/{traded.pk}/"
    after = T0 + 296 * MINUTE
    prices = owner_web.get(f"{url}?part=prices&symbol=SYN&after={after}").json()
    assert prices["ts"] == [T0 + 297 * MINUTE, T0 + 298 * MINUTE, T0 + 299 * MINUTE]
    assert len(prices["close"]) == 3
    books = owner_web.get(f"{url}?part=books").content.decode()
    assert books.strip().startswith('<div id="dep-books">') and "<html" not in books
    controls = owner_web.get(f"{url}?part=controls").content.decode()
    assert 'id="dep-controls"' in controls and "/pause/" in controls
    assert owner_web.get(f"{url}?symbol=NOPE").status_code == 404


def test_start_pause_resume_stop_go_through_the_services_and_are_audited(owner_web, org, owner):
    dep = paper_deployment(org, owner, start=False)
    url = f"/orgs/{org.slug}/deployments/{dep.pk}/"
    html = owner_web.get(url).content.decode()
    assert f'action="{url}start/"' in html and f'action="{url}pause/"' not in html
    for action, status in (("start", "running"), ("pause", "paused"), ("start", "running"),
                           ("stop", "stopped")):
        response = owner_web.post(f"{url}{action}/")
        assert response.status_code == 302 and response["Location"] == url
        dep.refresh_from_db()
        assert dep.status == status, action
    assert _actions(org, "deployment.started", "deployment.paused", "deployment.resumed",
                    "deployment.stopped") == ["deployment.started", "deployment.paused",
                                              "deployment.resumed", "deployment.stopped"]
    html = owner_web.get(url).content.decode()
    assert "/start/" not in html and "/stop/" not in html and "Stopped" in html


def test_a_refused_transition_is_reported_not_raised(owner_web, org, owner):
    dep = paper_deployment(org, owner, start=False)
    response = owner_web.post(f"/orgs/{org.slug}/deployments/{dep.pk}/pause/", follow=True)
    assert "The deployment is pending." in response.content.decode()
    dep.refresh_from_db()
    assert dep.status == "pending"


def test_manual_order_is_placed_through_the_risk_checked_service(trader_web, org, traded):
    url = f"/orgs/{org.slug}/deployments/{traded.pk}/"
    before = LiveOrder.objects.filter(deployment=traded).count()
    response = trader_web.post(f"{url}orders/", {
        "symbol": "SYN", "side": "buy", "quantity": "2", "order_type": "limit",
        "limit_price": "0.5", "leg": "form1"})
    assert response["Location"] == url
    order = LiveOrder.objects.filter(deployment=traded).order_by("-id").first()
    assert LiveOrder.objects.filter(deployment=traded).count() == before + 1
    assert (order.symbol, order.side, order.quantity, order.order_type, order.limit_price) == (
        "SYN", "buy", Decimal("2"), "limit", Decimal("0.5"))
    assert order.status == "accepted"  # far below the market: it rests
    assert _actions(org, "order.placed") == ["order.placed"]
    # The same form sent twice (same leg) is one order.
    trader_web.post(f"{url}orders/", {"symbol": "SYN", "side": "buy", "quantity": "2",
                                      "order_type": "limit", "limit_price": "0.5",
                                      "leg": "form1"})
    assert LiveOrder.objects.filter(deployment=traded).count() == before + 1


@pytest.mark.parametrize("data, field, message", [
    ({"order_type": "limit", "limit_price": ""}, "limit_price", "A limit order needs a limit"),
    ({"quantity": "0"}, "quantity", "greater than or equal to"),
    ({"symbol": "ETH/USD"}, "symbol", "Select a valid choice."),
])
def test_bad_order_is_reported_at_its_field_and_nothing_is_placed(trader_web, org, traded, data,
                                                                  field, message):
    before = LiveOrder.objects.filter(deployment=traded).count()
    response = trader_web.post(f"/orgs/{org.slug}/deployments/{traded.pk}/orders/", {
        "symbol": "SYN", "side": "buy", "quantity": "1", "order_type": "market", "leg": "x1",
        **data})
    assert response.status_code == 400
    errors = re.search(rf'id="id_{field}_error" role="alert">(.*?)</ul>',
                       response.content.decode(), re.S)
    assert errors and message in errors.group(1)
    assert LiveOrder.objects.filter(deployment=traded).count() == before


def test_cancel_one_order_and_cancel_all(trader_web, org, owner, traded):
    url = f"/orgs/{org.slug}/deployments/{traded.pk}/"
    orders = [order_services.order_place(deployment=traded, actor=owner, symbol="SYN",
                                         side="buy", quantity=1, order_type="limit",
                                         limit_price=price) for price in (0.5, 0.6, 0.7)]
    html = trader_web.get(url).content.decode()
    assert f'action="/orgs/alpha/deployments/orders/{orders[0].pk}/cancel/"' in html
    response = trader_web.post(f"/orgs/{org.slug}/deployments/orders/{orders[0].pk}/cancel/")
    assert response["Location"] == url
    assert [LiveOrder.objects.get(pk=o.pk).status for o in orders] == [
        "cancelled", "accepted", "accepted"]
    response = trader_web.post(f"{url}cancel-all/", follow=True)
    assert "2 working orders cancelled." in response.content.decode()
    assert {LiveOrder.objects.get(pk=o.pk).status for o in orders} == {"cancelled"}
    assert _actions(org, "order.cancelled", "order.cancelled_all") == [
        "order.cancelled", "order.cancelled_all"]


def test_flatten_closes_the_position_at_market(trader_web, org, owner, traded):
    order_services.order_place(deployment=traded, actor=owner, symbol="SYN", side="buy",
                               quantity=3)
    services.deployment_advance(deployment_id=traded.pk, until_ns=T0 + 301 * MINUTE)
    held = _state(traded)["positions"]["SYN"]
    assert held > 0
    response = trader_web.post(f"/orgs/{org.slug}/deployments/{traded.pk}/flatten/",
                               follow=True)
    assert "Flattening: 1 closing order placed." in response.content.decode()
    closing = LiveOrder.objects.filter(deployment=traded, leg__startswith="manual:flatten")
    assert [(o.side, float(o.quantity)) for o in closing] == [("sell", held)]
    assert _actions(org, "deployment.flattened") == ["deployment.flattened"]


# --- halts and the kill switch -------------------------------------------------------------------

def test_a_halted_deployment_shows_its_reason_and_only_admins_may_resume(org, traded):
    services.deployment_halt(deployment=traded, rule="max_drawdown", reason="drawdown 12% > 10%")
    url = f"/orgs/{org.slug}/deployments/{traded.pk}/"
    trader = signed_in(_member(org, Role.TRADER))
    html = trader.get(url).content.decode()
    assert "Halted by the risk rules:</strong> max_drawdown: drawdown 12% &gt; 10%" in html
    assert f'action="{url}start/"' not in html and "Only an owner or admin can resume it." in html
    assert trader.post(f"{url}start/").status_code == 403
    traded.refresh_from_db()
    assert traded.status == "halted"

    admin = signed_in(_member(org, Role.ADMIN))
    html = admin.get(url).content.decode()
    assert f'action="{url}start/"' in html and ">Resume</button>" in html
    assert admin.post(f"{url}start/")["Location"] == url
    traded.refresh_from_db()
    assert traded.status == "running" and traded.halt_reason == ""
    assert _actions(org, "deployment.halted", "deployment.resumed") == [
        "deployment.halted", "deployment.resumed"]


def test_kill_switch_is_offered_to_roles_that_may_pull_it(org, traded):
    url = f"/orgs/{org.slug}/deployments/{traded.pk}/"
    trader_html = signed_in(_member(org, Role.TRADER)).get(url).content.decode()
    assert 'href="/orgs/alpha/risk/#kill-switch"' in trader_html
    assert '<span class="badge active">armed</span>' in trader_html
    analyst_html = signed_in(_member(org, Role.ANALYST)).get(url).content.decode()
    assert "#kill-switch" not in analyst_html


# --- roles and tenancy ---------------------------------------------------------------------------

ACTIONS = ("/start/", "/pause/", "/stop/", "/orders/", "/cancel-all/", "/flatten/", "/cancel/",
           "/deployments/new/", "/accounts/new/", "#kill-switch")


def test_viewer_sees_every_deployment_page_but_no_trading_action(viewer_web, org, owner, traded):
    order_services.order_place(deployment=traded, actor=owner, symbol="SYN", side="buy",
                               quantity=1, order_type="limit", limit_price=0.5)
    paper_account(org, owner, name="Visible account")
    for path in ("deployments/", f"deployments/{traded.pk}/", "deployments/accounts/",
                 "dashboard/"):
        response = viewer_web.get(f"/orgs/{org.slug}/{path}")
        assert response.status_code == 200, path
        html = response.content.decode()
        for action in ACTIONS:
            assert action not in html, (path, action)
    html = viewer_web.get(f"/orgs/{org.slug}/deployments/{traded.pk}/").content.decode()
    assert f"{traded.equity:,.2f}" in html and "Visible account" not in html  # not linked here
    assert "Visible account" in viewer_web.get(
        f"/orgs/{org.slug}/deployments/accounts/").content.decode()


def _routes(dep, order):
    return [
        ("post", f"deployments/{dep.pk}/start/"), ("post", f"deployments/{dep.pk}/pause/"),
        ("post", f"deployments/{dep.pk}/stop/"), ("post", f"deployments/{dep.pk}/orders/"),
        ("post", f"deployments/{dep.pk}/cancel-all/"),
        ("post", f"deployments/{dep.pk}/flatten/"),
        ("post", f"deployments/orders/{order.pk}/cancel/"),
        ("get", "deployments/new/"), ("post", "deployments/new/"),
        ("get", "deployments/accounts/new/"), ("post", "deployments/accounts/new/"),
    ]


def test_viewer_is_refused_every_action_with_403_and_nothing_changes(viewer_web, org, owner,
                                                                     traded):
    order = order_services.order_place(deployment=traded, actor=owner, symbol="SYN", side="buy",
                                       quantity=1, order_type="limit", limit_price=0.5)
    audit = AuditEvent.objects.count()
    for method, path in _routes(traded, order):
        response = getattr(viewer_web, method)(f"/orgs/{org.slug}/{path}", {
            "symbol": "SYN", "side": "buy", "quantity": "1", "order_type": "market",
            "leg": "v1"})
        assert response.status_code == 403, path
    traded.refresh_from_db()
    assert traded.status == "running"
    assert LiveOrder.objects.get(pk=order.pk).status == "accepted"
    assert AuditEvent.objects.count() == audit


def test_another_organisations_deployment_is_not_found_on_every_page_and_action(owner_web, org,
                                                                                owner):
    other = OrganizationFactory(slug="beta")
    theirs = paper_deployment(other, None, name="Theirs")
    order = order_services.order_place(deployment=theirs, actor=None, symbol="SYN", side="buy",
                                       quantity=1, order_type="limit", limit_price=0.5)
    gets = [f"deployments/{theirs.pk}/", f"deployments/{theirs.pk}/?part=books",
            f"deployments/{theirs.pk}/?part=controls",
            f"deployments/{theirs.pk}/?part=prices&symbol=SYN"]
    for path in gets:
        assert owner_web.get(f"/orgs/alpha/{path}").status_code == 404, path
    for method, path in _routes(theirs, order)[:7]:
        assert getattr(owner_web, method)(f"/orgs/alpha/{path}").status_code == 404, path
    # and their organisation's pages are not found for a non-member
    for path in ("deployments/", "deployments/accounts/", f"deployments/{theirs.pk}/"):
        assert owner_web.get(f"/orgs/beta/{path}").status_code == 404, path
    theirs.refresh_from_db()
    assert theirs.status == "running"
    assert LiveOrder.objects.get(pk=order.pk).status == "accepted"
    assert not AuditEvent.objects.filter(organization=other, actor__isnull=False).exists()


# --- the dashboard card --------------------------------------------------------------------------

def test_dashboard_lists_running_deployments_with_live_equity_and_pnl(owner_web, org, owner,
                                                                      traded):
    stopped = paper_deployment(org, owner, seed=4, name="Old one")
    services.deployment_stop(deployment=stopped, actor=owner)
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    card = html[html.index('id="deployments-heading"'):html.index('id="recent-heading"')]
    pnl = traded.equity - Decimal("100000")
    assert f'data-deployment="{traded.pk}" data-org="alpha" data-seq="{traded.last_seq}"' in card
    assert f'<td class="num" data-field="equity">{traded.equity:,.2f}</td>' in card
    assert f"{pnl:,.2f} <span class=\"small\">({pnl / 1000:.2f}%)</span>" in card
    assert "Old one" not in card
    assert 'src="/static/nexow/deployment.js"' in html


def test_dashboard_without_running_deployments_says_what_to_do_next(owner_web, org):
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    assert "No deployment is running." in html
    assert 'href="/orgs/alpha/deployments/new/"' in html
    assert "nexow/deployment.js" not in html


# --- query counts --------------------------------------------------------------------------------

@pytest.fixture
def busy_deployments(org, owner):
    deps = [paper_deployment(org, owner, seed=seed, name=f"d{seed}") for seed in range(1, 5)]
    for dep in deps[:2]:
        services.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 120 * MINUTE)
    paper_deployment(org, owner, seed=9, start=False)
    return deps


@pytest.mark.parametrize("path, pin", [
    ("deployments/", 8), ("deployment", 11), ("deployments/accounts/", 7), ("dashboard/", 15),
    ("deployments/new/", 12),
])
def test_page_query_count_is_pinned(owner_web, org, busy_deployments, path, pin,
                                    django_assert_max_num_queries):
    if path == "deployment":
        path = f"deployments/{busy_deployments[0].pk}/"
    owner_web.get(f"/orgs/{org.slug}/dashboard/")  # warm-up: the session is written once
    with django_assert_max_num_queries(pin):
        response = owner_web.get(f"/orgs/{org.slug}/{path}")
    assert response.status_code == 200


def test_dashboard_shows_the_most_used_limits_the_kill_switch_and_recent_reports(
        owner_web, viewer_web, org, owner):
    from accounts.selectors import caller_for
    from reporting.models import Report
    from risk.services import limit_set_save

    dep = paper_deployment(org, owner, seed=3, name="Limited")
    limit_set_save(organization=org, level="org", limits={"max_drawdown": 0.5},
                   caller=caller_for(user=owner, organization=org))
    services.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 60 * MINUTE)
    Report.objects.create(organization=org, kind="statement", title="Statement January",
                          requested_by=owner, status="succeeded")
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    usage = html[html.index('id="dashboard-utilisation"'):]
    assert "<code>max_drawdown</code>" in usage
    assert f'href="/orgs/alpha/deployments/{dep.pk}/">deployment #{dep.pk}</a>' in usage
    assert "armed</span> trading is allowed." in html
    reports = html[html.index('id="dashboard-reports"'):]
    assert "Statement January" in reports and "/reports/" in reports
    # a viewer reads both cards too (risk:read, reports:read), with nothing to act on
    viewer_html = viewer_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    assert 'id="dashboard-utilisation"' in viewer_html and "Kill switch" in viewer_html

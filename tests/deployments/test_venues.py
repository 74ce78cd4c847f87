"""Deployments on live accounts: a ccxt (Binance spot) account trading against the local fake
exchange — orders, fills and P&L through the step, stop, crash re-runs, reconciliation after a
restart, outages, rejected and malformed answers, and credentials that never leak."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from tests.fixtures_accounts import session_client
from tests.live.fakes import binance as fake_module
from tests.live.fakes.binance import FakeBinance
from tests.trading.support import org_with_owner, sma_version
from trading.brokers.ccxt_broker import CcxtBroker, binance_exchange
from trading.models import Deployment, DeploymentEvent, LiveFill, LiveOrder
from trading.oms import client_order_id
from trading.services import deployments, orders, venues

from .support import MINUTE, T0

pytestmark = pytest.mark.django_db

KEY = "venue-api-key-0b1c2d"
SECRET = "venue-secret-value-9f8e7d"
# Warm-up closes fall, so SMA 2 < SMA 3; bar 0 jumps above (entry), bar 1 rises (the fill is
# marked at it), bar 2 falls through (exit).
WARM = [50_500.0, 50_400.0, 50_300.0, 50_200.0, 50_100.0]
CLOSES = [51_000.0, 52_000.0, 49_000.0]


@pytest.fixture
def fake(monkeypatch, settings):
    monkeypatch.setattr(fake_module, "API_KEY", KEY)
    monkeypatch.setattr(fake_module, "SECRET", SECRET)
    exchange = FakeBinance().start()
    settings.NEXOW_CCXT_BASE_URLS = [exchange.url]
    minute_ms = MINUTE // 1_000_000
    rows = []
    for k, close in enumerate(WARM + CLOSES, start=-len(WARM)):
        t = (T0 + k * MINUTE) // 1_000_000
        rows.append((t, close, close + 10, close - 10, close, 5.0))
    exchange.add_klines("BTCUSDT", rows, interval_ms=minute_ms)
    yield exchange
    exchange.stop()


def ccxt_deployment(org, owner, fake, *, dedicated=False, start=True):
    account = deployments.broker_account_create(
        organization=org, actor=owner, name=f"binance-{Deployment.objects.count()}",
        kind="ccxt", mode="live", credentials={"api_key": KEY, "secret": SECRET},
        options={"exchange": "binance", "base_url": fake.url, "dedicated": dedicated})
    dep = deployments.deployment_create(
        organization=org, actor=owner,
        strategy_version=sma_version(org, owner, params={"fast": 2, "slow": 3},
                                     sizing={"mode": "fixed-quantity", "value": 1}),
        broker_account=account, symbols=["BTCUSDT"],
        config={"warm_bars": len(WARM), "lookback": 50})
    if start:
        deployments.deployment_start(deployment=dep, actor=owner, now_ns=T0)
    dep.refresh_from_db()
    return dep


def step(dep, bars_final: int) -> str:
    """Advance to the moment `bars_final` bars (k = 0 ..) have closed, with the fake's price
    at the last one's close (where its market orders fill)."""
    return deployments.deployment_advance(deployment_id=dep.pk,
                                          until_ns=T0 + bars_final * MINUTE)


def entry_id(dep, k: int = 0) -> str:
    return client_order_id(str(dep.pk), T0 + k * MINUTE, "BTC/USDT:entry")


def test_a_ccxt_deployment_trades_at_the_exchange_and_books_fills_and_pnl(fake):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    assert (dep.status, dep.symbols, dep.broker_state) == ("running", ["BTC/USDT"], "")
    # the warm-up came from the exchange's candles k = -5 .. -1
    assert json.loads(dep.state)["history"]["n"] == 5 and dep.last_bar_ts == T0 - MINUTE

    fake.prices["BTCUSDT"] = CLOSES[0]
    assert step(dep, 1) == "advanced 1 bar(s)"
    posted = fake.calls("POST", "/api/v3/order")
    assert [(p["newClientOrderId"], p["side"], p["type"], float(p["quantity"]))
            for p in posted] == [(entry_id(dep), "BUY", "MARKET", 1.0)]
    assert LiveOrder.objects.get(deployment=dep).status == "filled"

    fake.prices["BTCUSDT"] = CLOSES[1]
    step(dep, 2)  # the fill is read back from the exchange at the next bar
    fill = LiveFill.objects.get(deployment=dep)
    assert (fill.client_order_id, fill.side, fill.quantity, fill.price, fill.fee,
            fill.fee_currency) == (entry_id(dep), "buy", Decimal("1"), Decimal("51000"),
                                   Decimal("51"), "USDT")
    dep.refresh_from_db()
    # cash 100,000 - 51,000 - 51 fee; marked at bar 1's close of 52,000: P&L +949
    assert dep.cash == Decimal("48949") and dep.equity == Decimal("100949")
    assert json.loads(dep.state)["positions"] == {"BTC/USDT": 1.0}

    fake.prices["BTCUSDT"] = CLOSES[2]
    step(dep, 3)  # SMA 2 falls below SMA 3: the exit sells at 49,000
    assert [p["side"] for p in fake.calls("POST", "/api/v3/order")] == ["BUY", "SELL"]
    # the credentials were audited at the start, not at each step
    assert AuditEvent.objects.filter(organization=org,
                                     action="broker_account.credentials_used").count() == 1


def test_stop_cancels_the_working_orders_at_the_exchange(fake):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    order = orders.order_place(deployment=dep, actor=owner, symbol="BTC/USDT", side="buy",
                               quantity=1, order_type="limit", limit_price=40_000.0,
                               leg="low-bid")
    assert order.status == "accepted" and fake.order(order.client_order_id).status == "NEW"

    deployments.deployment_stop(deployment=dep, actor=owner)

    assert fake.order(order.client_order_id).status == "CANCELED"
    assert len(fake.calls("DELETE", "/api/v3/order")) == 1
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert Deployment.objects.get(pk=dep.pk).status == "stopped"
    # the USDT the bid locked is free again
    assert fake.balances["USDT"] == [100_000.0, 0.0]


def test_a_step_rerun_after_a_crash_sends_no_order_twice(fake, monkeypatch):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    fake.prices["BTCUSDT"] = CLOSES[0]
    saved = deployments.save_session

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed before the commit")

    monkeypatch.setattr(deployments, "save_session", killed)
    with pytest.raises(RuntimeError):
        step(dep, 1)
    # the exchange took the order; the database kept nothing of the step
    assert len(fake.calls("POST", "/api/v3/order")) == 1
    assert not LiveOrder.objects.filter(deployment=dep).exists()
    assert Deployment.objects.get(pk=dep.pk).last_bar_ts == T0 - MINUTE

    monkeypatch.setattr(deployments, "save_session", saved)
    assert step(dep, 1) == "advanced 1 bar(s)"
    assert len(fake.calls("POST", "/api/v3/order")) == 1  # looked up by its id, not re-sent
    order = LiveOrder.objects.get(deployment=dep)
    assert (order.client_order_id, order.status) == (entry_id(dep), "filled")
    fake.prices["BTCUSDT"] = CLOSES[1]
    step(dep, 2)
    assert LiveFill.objects.filter(deployment=dep).count() == 1
    assert len(fake.order(entry_id(dep)).fills) == 1


def test_reconcile_after_a_restart_adopts_the_exchanges_order_and_position(fake, caplog):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake, dedicated=True)
    fake.prices["BTCUSDT"] = CLOSES[0]
    step(dep, 1)  # the entry: 1 BTC bought at 51,000
    # While the worker was down: a bid of this deployment reached the exchange but not the
    # database (its step never committed), and 0.5 BTC arrived in the account.
    lost = client_order_id(str(dep.pk), T0 + MINUTE, "BTC/USDT:manual")
    CcxtBroker(binance_exchange(KEY, SECRET, base_url=fake.url), ["BTC/USDT"]).place_order(
        lost, "BTC/USDT", "buy", 0.5, "limit", 40_000.0)
    fake.balances["BTC"][0] += 0.5
    Deployment.objects.filter(pk=dep.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10))
    posts = len(fake.calls("POST", "/api/v3/order"))

    fake.prices["BTCUSDT"] = CLOSES[1]
    with caplog.at_level(logging.INFO, logger="nexow.trading.deployments"):
        assert step(dep, 2) == "advanced 1 bar(s)"

    adopted = LiveOrder.objects.get(client_order_id=lost)
    assert (adopted.status, adopted.quantity, adopted.reason) == (
        "accepted", Decimal("0.5"), "adopted from the broker")
    state = json.loads(Deployment.objects.get(pk=dep.pk).state)
    # the entry's fill is counted once (1 BTC), the deposit comes from the exchange (+0.5)
    assert state["positions"] == {"BTC/USDT": 1.5}
    event = DeploymentEvent.objects.get(deployment=dep, type="deployment.reconciled",
                                        payload__reason="restart")
    assert event.payload["differences"] == [
        f"order {lost} (buy 0.5 BTC/USDT) is open at the broker but was unknown locally: "
        "adopted as accepted",
        "position BTC/USDT: local 1, broker 1.5: set to 1.5"]
    audit = AuditEvent.objects.get(organization=org, action="deployment.reconciled",
                                   metadata__reason="restart")
    assert audit.metadata["differences"] == event.payload["differences"]
    assert any("set to 1.5" in r.getMessage() for r in caplog.records)
    assert len(fake.calls("POST", "/api/v3/order")) == posts  # reconciling sends nothing


def test_without_the_dedicated_option_the_exchanges_holdings_are_not_taken(fake):
    org, owner = org_with_owner()
    fake.balances["BTC"][0] = 2.0  # coins of the account's owner, not of the deployment
    dep = ccxt_deployment(org, owner, fake)
    assert json.loads(dep.state)["positions"] == {}
    event = DeploymentEvent.objects.get(deployment=dep, type="deployment.reconciled")
    assert (event.payload["reason"], event.payload["differences"]) == ("start", [])


@pytest.mark.parametrize("outage", ["503", "connection closed"])
def test_an_exchange_outage_leaves_the_deployment_running_and_the_next_step_succeeds(
        fake, outage, monkeypatch):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    fake.prices["BTCUSDT"] = CLOSES[0]
    step(dep, 1)
    before = Deployment.objects.get(pk=dep.pk)
    if outage == "503":
        fake.inject("GET", "/api/v3/myTrades", 503, "<html>503 Service Unavailable</html>",
                    raw=True)
    else:
        dispatch = fake._dispatch

        def hang_up(handler):
            if handler.path.startswith("/api/v3/myTrades"):
                monkeypatch.setattr(fake, "_dispatch", dispatch)
                handler.close_connection = True
                return  # no answer at all: the socket closes
            dispatch(handler)

        monkeypatch.setattr(fake, "_dispatch", hang_up)

    fake.prices["BTCUSDT"] = CLOSES[1]
    assert step(dep, 2) == "retry later: BrokerUnavailable"
    after = Deployment.objects.get(pk=dep.pk)
    assert (after.status, after.state, after.last_seq, after.last_bar_ts) == (
        "running", before.state, before.last_seq, before.last_bar_ts)
    assert not LiveFill.objects.filter(deployment=dep).exists()

    assert step(dep, 2) == "advanced 1 bar(s)"
    assert LiveFill.objects.filter(deployment=dep).count() == 1
    assert Deployment.objects.get(pk=dep.pk).last_bar_ts == T0 + MINUTE


def test_an_outage_at_start_is_a_503_and_starts_nothing(fake):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake, start=False)
    fake.inject("GET", "/api/v3/klines", 502, "<html>Bad gateway</html>", raw=True)
    with pytest.raises(Exception) as caught:
        deployments.deployment_start(deployment=dep, actor=owner, now_ns=T0)
    assert (caught.value.status_code, caught.value.code) == (503, "broker_unavailable")
    dep.refresh_from_db()
    assert (dep.status, dep.state) == ("pending", "")


@pytest.mark.parametrize("answer", ["rejected", "malformed"])
def test_a_rejected_or_malformed_answer_never_creates_a_position(fake, answer):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    if answer == "rejected":
        fake.inject("POST", "/api/v3/order", 400, {"code": -1013, "msg": "Filter failure: "
                                                   "LOT_SIZE"})
    else:
        fake.inject("POST", "/api/v3/order", 200, "{\"symbol\": \"BTCU", raw=True)
    fake.prices["BTCUSDT"] = CLOSES[0]
    step(dep, 1)
    fake.prices["BTCUSDT"] = CLOSES[1]
    step(dep, 2)  # a malformed answer is settled here, by looking the id up

    order = LiveOrder.objects.get(client_order_id=entry_id(dep))
    assert order.status == "rejected"
    assert ("LOT_SIZE" if answer == "rejected" else "stale") in order.reason
    dep.refresh_from_db()
    assert json.loads(dep.state)["positions"] == {} and dep.cash == Decimal("100000")
    assert not LiveFill.objects.filter(deployment=dep).exists()
    assert fake.balances["BTC"] == [0.0, 0.0]


def test_credentials_never_appear_in_logs_events_audit_or_responses(fake, caplog):
    org, owner = org_with_owner()
    # INFO: ccxt's own DEBUG log prints raw exchange traffic and is kept off in production
    with caplog.at_level(logging.INFO):
        dep = ccxt_deployment(org, owner, fake)
        fake.prices["BTCUSDT"] = CLOSES[0]
        step(dep, 1)
        fake.inject("GET", "/api/v3/myTrades", 500, {"code": -1000, "msg": "echo " + SECRET})
        step(dep, 2)  # an exchange error quoting the secret back
    client = session_client(owner)
    bodies = [client.get(reverse(f"trading-api:{name}", kwargs={"org_slug": org.slug, **kw}))
              .content.decode()
              for name, kw in [("broker-account-list", {}), ("deployment-list", {}),
                               ("deployment-detail", {"pk": dep.pk}),
                               ("deployment-events", {"pk": dep.pk}),
                               ("live-order-list", {})]]
    texts = ([r.getMessage() for r in caplog.records] + bodies
             + [json.dumps(e.payload) for e in DeploymentEvent.objects.all()]
             + [json.dumps(a.metadata) for a in AuditEvent.objects.all()]
             + [Deployment.objects.get(pk=dep.pk).state])
    assert any("echo ••••" in t for t in texts)  # the error was logged, scrubbed
    for secret in (KEY, SECRET):
        assert not [t for t in texts if secret in t]


@pytest.mark.parametrize("kind,missing", [("fix", "persistent message store"),
                                          ("ib", "long-lived ib_async connection")])
def test_fix_and_ib_accounts_are_refused_naming_what_is_missing(kind, missing):
    org, owner = org_with_owner()
    account = deployments.broker_account_create(organization=org, actor=owner, name=kind,
                                                kind=kind, mode="live")
    with pytest.raises(Exception) as caught:
        deployments.deployment_create(organization=org, actor=owner,
                                      strategy_version=sma_version(org, owner),
                                      broker_account=account, symbols=["AAPL/USD"])
    assert (caught.value.status_code, caught.value.code) == (422, "broker_unsupported")
    assert missing in caught.value.message
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("options,mode,field", [
    ({"exchange": "kraken"}, "live", "options.exchange"),
    ({"base_url": "http://169.254.169.254"}, "live", "options.base_url"),
    ({}, "paper", "options.testnet"),
    ({"dedicated": "yes"}, "live", "options.dedicated")])
def test_a_ccxt_account_with_bad_options_is_refused_naming_them(options, mode, field):
    org, owner = org_with_owner()
    account = deployments.broker_account_create(
        organization=org, actor=owner, name="ccxt", kind="ccxt", mode=mode,
        credentials={"api_key": KEY, "secret": SECRET}, options=options)
    with pytest.raises(Exception) as caught:
        deployments.deployment_create(organization=org, actor=owner,
                                      strategy_version=sma_version(org, owner),
                                      broker_account=account, symbols=["BTC/USDT"])
    assert caught.value.status_code == 422 and field in caught.value.fields


def test_a_ccxt_deployment_needs_an_exchange_candle_length(fake):
    org, owner = org_with_owner()
    account = deployments.broker_account_create(
        organization=org, actor=owner, name="ccxt", kind="ccxt", mode="live",
        credentials={"api_key": KEY, "secret": SECRET}, options={"base_url": fake.url})
    with pytest.raises(Exception) as caught:
        deployments.deployment_create(organization=org, actor=owner,
                                      strategy_version=sma_version(org, owner),
                                      broker_account=account, symbols=["BTC/USDT"],
                                      config={"bar_seconds": 7})
    assert caught.value.status_code == 400 and "config.bar_seconds" in caught.value.fields


def test_deployment_bars_of_a_paper_deployment_are_the_bars_it_traded():
    from .support import paper_deployment

    org, owner = org_with_owner()
    dep = paper_deployment(org, owner, seed=3)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 30 * MINUTE)
    dep.refresh_from_db()
    saved = deployments.DeploymentState.from_json(dep.state).history()
    # the window holds warm-up bars -60 .. -1 and traded bars 0 .. 29
    bars = venues.deployment_bars(dep, 0, 30)
    assert bars.n_bars == 30 and bars.timestamps[0] == T0
    assert (bars.close == saved.close[-30:]).all()
    # before the window: regenerated from the start of the walk, the same numbers
    assert (venues.deployment_bars(dep, -60, -50).close == saved.close[:10]).all()
    # after it: the walk the next step will trade
    ahead = venues.deployment_bars(dep, 30, 33)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 33 * MINUTE)
    dep.refresh_from_db()
    assert (deployments.DeploymentState.from_json(dep.state).history().close[-3:]
            == ahead.close).all()
    assert deployments.deployment_bars is venues.deployment_bars


def test_deployment_bars_of_a_ccxt_deployment_are_the_exchanges_closed_candles(fake):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    # at T0 + 2 min bars 0 and 1 have closed; bar 2 is still forming
    bars = venues.deployment_bars(dep, -2, 3, now_ns=T0 + 2 * MINUTE)
    assert list(bars.timestamps) == [T0 + k * MINUTE for k in (-2, -1, 0, 1)]
    assert list(bars.close[:, 0]) == [50_200.0, 50_100.0, 51_000.0, 52_000.0]


def test_an_account_that_can_no_longer_trade_halts_its_deployment_visibly(fake):
    from trading.models import BrokerAccount

    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    # The credentials were encrypted under a key the platform no longer has.
    BrokerAccount.objects.filter(pk=dep.broker_account_id).update(
        credentials_encrypted="gAAAAA-not-a-token")

    assert step(dep, 1) == "halted: broker_unsupported"

    dep.refresh_from_db()
    assert dep.status == "halted" and dep.halt_reason.startswith("broker_account:")
    assert "do not decrypt" in dep.halt_reason
    halted = DeploymentEvent.objects.filter(deployment=dep, type="deployment.status").last()
    assert (halted.payload["status"], halted.payload["rule"]) == ("halted", "broker_account")
    assert fake.calls("POST", "/api/v3/order") == []


def test_the_venue_options_cannot_change_under_a_deployment(fake):
    from nexow_site.errors import Conflict

    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    account = dep.broker_account
    with pytest.raises(Conflict, match="stop its deployments first"):
        deployments.broker_account_update(account=account, actor=owner,
                                          options={**account.options, "testnet": True})
    # rotating the keys is allowed
    deployments.broker_account_update(account=account, actor=owner,
                                      credentials={"api_key": KEY, "secret": SECRET})
    deployments.deployment_stop(deployment=dep, actor=owner)
    updated = deployments.broker_account_update(account=account, actor=owner,
                                                options={**account.options, "dedicated": True})
    assert updated.options["dedicated"] is True


def test_the_divergence_of_a_ccxt_deployment_is_a_503_while_the_exchange_is_down(fake):
    org, owner = org_with_owner()
    dep = ccxt_deployment(org, owner, fake)
    fake.prices["BTCUSDT"] = CLOSES[0]
    step(dep, 1)
    client = session_client(owner)
    url = reverse("trading-api:deployment-divergence", kwargs={"org_slug": org.slug, "pk": dep.pk})
    assert client.get(url).json()["bars"] == 1  # the exchange's candle k = 0

    fake.inject("GET", "/api/v3/klines", 502, "<html>Bad gateway</html>", raw=True)
    resp = client.get(url)
    assert resp.status_code == 503 and resp["Retry-After"] == "30"
    assert resp.json()["error"]["code"] == "service_unavailable"

    fake.inject("GET", "/api/v3/klines", 502, "<html>Bad gateway</html>", raw=True)
    panel = client.get(f"/orgs/{org.slug}/deployments/{dep.pk}/divergence/",
                       HTTP_HX_REQUEST="true")
    assert panel.status_code == 200  # htmx swaps it in: the panel says what happened
    assert "The exchange did not return the deployment&#x27;s bars" in panel.content.decode()

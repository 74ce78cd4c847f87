"""Risk services: the rulebook a run gets, recording breaches once, escalation of halts to the
organisation's switch, live events, and utilisation snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from accounts.models import AuditEvent
from accounts.permissions import Role
from accounts.selectors import caller_for
from nexow_site.errors import Conflict, Forbidden
from nexow_site.realtime import org_group
from risk import services
from risk.models import Breach, KillSwitch, RiskLimitSet, UtilisationSnapshot
from tests.factories import OrganizationFactory
from tests.fixtures_accounts import member
from trading.engine.backtest import Rejection
from trading.engine.hooks import OrderIntent, PortfolioSnapshot

T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC, in ns
MINUTE = 60_000_000_000


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def owner(org):
    return caller_for(user=member(org, Role.OWNER), organization=org)


@pytest.fixture
def events(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "broadcast",
                        lambda groups, event: sent.append((list(groups), event)) or True)
    return sent


def _snapshot(**kw):
    base = dict(timestamp=T0, cash=0.0, equity=100_000.0, day_start_equity=100_000.0,
                peak_equity=100_000.0)
    return PortfolioSnapshot(**{**base, **kw})


def test_the_rulebook_merges_the_three_levels_and_names_the_level_that_refuses(org, owner):
    for level, ref, limits in (("org", None, {"max_order_notional": 10_000}),
                               ("strategy", 3, {"max_order_notional": 8_000}),
                               ("deployment", 9, {"restricted_symbols": ["GME"]})):
        services.limit_set_save(organization=org, level=level, ref_id=ref, limits=limits,
                                caller=owner)
    rules = services.rulebook_for(organization=org, strategy=3, deployment=9)
    buy = OrderIntent(symbol="AAPL", side=1, quantity=90, price=100.0, timestamp=T0)
    # 90 x 100 = 9,000: under the organisation's 10,000 but over the strategy's 8,000.
    assert rules.check(buy, _snapshot()).reason == (
        "max_order_notional: order notional 9,000.00 exceeds the limit 8,000.00 (strategy)")
    gme = OrderIntent(symbol="GME", side=1, quantity=1, price=10.0, timestamp=T0)
    assert rules.check(gme, _snapshot()).reason == "restricted_symbols: GME is restricted " \
                                                   "(deployment)"
    # Another strategy's limits do not apply.
    other = services.rulebook_for(organization=org, strategy=4)
    assert other.check(buy, _snapshot()) is None


def test_a_tripped_organisation_switch_stops_every_rulebook_with_its_reason(org, owner):
    services.kill_switch_trip(organization=org, reason="venue outage", caller=owner)
    rules = services.rulebook_for(organization=org)
    result = rules.check(OrderIntent(symbol="A", side=1, quantity=1, price=1.0, timestamp=T0),
                         _snapshot())
    assert result.rule == "halted" and result.halt is True
    assert result.reason.startswith(
        "halted: trading is stopped by the organisation kill switch since ")
    assert result.reason.endswith(" UTC: venue outage")
    unguarded = services.rulebook_for(organization=org, include_emergency=False)
    assert unguarded.check(OrderIntent(symbol="A", side=1, quantity=1, price=1.0,
                                       timestamp=T0), _snapshot()) is None


def test_a_breach_is_recorded_once_however_often_it_is_reported(
        org, events, django_capture_on_commit_callbacks):
    kwargs = dict(organization=org, source="deployment", source_id=5, rule="max_order_notional",
                  reason="too big", at=T0, symbol="AAPL",
                  order={"side": "buy", "quantity": 90.0})
    with django_capture_on_commit_callbacks(execute=True):
        first = services.breach_record(**kwargs)
        second = services.breach_record(**kwargs)
    assert first.pk == second.pk
    assert Breach.objects.filter(organization=org).count() == 1
    assert first.at == datetime(2024, 1, 1, tzinfo=UTC)
    assert [(g, e["type"], e["seq"], e["rule"]) for g, e in events] == [
        ([org_group(org.pk)], "risk.breach", 1, "max_order_notional")]


def test_a_live_halt_trips_the_organisation_switch_by_default(
        org, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.breach_record(organization=org, source="deployment", source_id=5,
                               rule="daily_loss_fraction", reason="loss today 3 %", at=T0,
                               halted=True)
    switch = KillSwitch.objects.get(organization=org)
    assert (switch.state, switch.rule, switch.reason, switch.tripped_by_label) == (
        "tripped", "daily_loss_fraction", "loss today 3 %", "system")
    trip = AuditEvent.objects.get(organization=org, action="risk.kill_switch.tripped")
    assert (trip.actor_id, trip.metadata["by"], trip.metadata["rule"]) == (
        None, "system", "daily_loss_fraction")
    assert [e["type"] for _, e in events] == ["risk.kill"]
    # A second deployment halting meanwhile is recorded; the first reason stays.
    with django_capture_on_commit_callbacks(execute=True):
        services.breach_record(organization=org, source="deployment", source_id=6,
                               rule="max_drawdown", reason="drawdown 30 %", at=T0 + MINUTE,
                               halted=True)
    assert KillSwitch.objects.get(organization=org).reason == "loss today 3 %"
    assert [e["seq"] for _, e in events] == [1, 2]


def test_with_escalation_off_a_live_halt_stops_only_its_deployment(org, owner):
    services.kill_switch_configure(organization=org, escalate="off", caller=owner)
    services.breach_record(organization=org, source="deployment", source_id=5,
                           rule="max_drawdown", reason="dd", at=T0, halted=True)
    assert KillSwitch.objects.get(organization=org).state == "armed"


def test_a_runs_refusals_before_the_halt_are_recorded_and_those_after_are_not(org):
    result = SimpleNamespace(halted_at=T0 + 2 * MINUTE, rejections=[
        Rejection(T0, "AAPL", 1, 90.0, "max_order_notional", "too big"),
        Rejection(T0 + MINUTE, "GME", 1, 1.0, "restricted_symbols", "GME is restricted"),
        Rejection(T0 + 3 * MINUTE, "AAPL", -1, 90.0, "max_drawdown", "drawdown 20 %"),
    ])
    services.run_breaches_record(organization=org, source="simulation", source_id=1,
                                 result=result)
    services.run_breaches_record(organization=org, source="simulation", source_id=1,
                                 result=result)
    rows = list(Breach.objects.filter(organization=org).order_by("at")
                .values_list("rule", "halted", "symbol", "reason"))
    assert rows == [
        ("max_order_notional", False, "AAPL", "too big"),
        ("restricted_symbols", False, "GME", "GME is restricted"),
        # The halt takes the rule and reason the engine refused with after it.
        ("max_drawdown", True, "", "drawdown 20 %"),
    ]


def test_only_owners_and_admins_change_limits_and_rearm(org):
    for role in (Role.TRADER, Role.ANALYST, Role.COMPLIANCE, Role.VIEWER):
        caller = caller_for(user=member(org, role), organization=org)
        with pytest.raises(Forbidden):
            services.limit_set_save(organization=org, level="org", limits={}, caller=caller)
        with pytest.raises(Forbidden):
            services.kill_switch_rearm(organization=org, reason="go", caller=caller)
    assert not RiskLimitSet.objects.filter(organization=org).exists()


def test_rearming_an_armed_switch_is_a_conflict(org, owner):
    with pytest.raises(Conflict):
        services.kill_switch_rearm(organization=org, reason="go", caller=owner)


def test_utilisation_is_stored_for_the_risk_page(org, owner):
    services.limit_set_save(organization=org, level="org",
                            limits={"max_gross_exposure": 2.0, "max_drawdown": 0.2},
                            caller=owner)
    rules = services.rulebook_for(organization=org)
    # 500 x 100 = 50,000 gross on equity 90,000 after a peak of 100,000:
    # gross 55.6 % of equity (27.8 % of the 200 % limit), drawdown 10 % (half the limit).
    snap = _snapshot(equity=90_000.0, positions={"AAA": 500.0}, prices={"AAA": 100.0})
    stored = services.utilisation_record(organization=org, source="deployment", source_id=2,
                                         rulebook=rules, snapshot=snap)
    rows = {r["rule"]: r for r in UtilisationSnapshot.objects.get(pk=stored.pk).rows}
    assert rows["max_gross_exposure"]["fraction"] == pytest.approx(50_000 / 90_000 / 2.0)
    assert rows["max_drawdown"]["current"] == pytest.approx(0.1)
    assert rows["max_drawdown"]["fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["historical", "parametric", "cornish_fisher"])
def test_rolling_forecasts_equal_the_core_estimator_window_by_window(method):
    import numpy as np

    from risk.core.measures import value_at_risk

    r = np.random.default_rng(3).standard_t(4, 160) * 0.01
    fast = services.rolling_var_forecasts(r, method, 60, 0.95)
    slow = [value_at_risk(r[t - 60:t], method, confidence=0.95).var for t in range(60, 160)]
    assert fast.shape == (100,)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-12)

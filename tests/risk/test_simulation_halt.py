"""End to end: organisation limits → `rulebook_for` → an engine backtest that breaches its
drawdown limit → the breach recorded once, one alert delivered once, the organisation's switch
tripped, and re-armed only by an admin."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.core import mail

from accounts.audit import verify_chain
from accounts.models import AuditEvent
from accounts.permissions import Role
from accounts.selectors import caller_for
from nexow_site.errors import ApplicationError, Forbidden
from risk import services
from risk.models import AlertDelivery, Breach, DeliveryStatus, KillSwitch, KillSwitchEvent
from risk.tasks import deliver_alert
from tests.factories import OrganizationFactory
from tests.fixtures_accounts import member
from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.synthetic import bars_from_closes
from trading.engine.types import Signals, VectorStrategy

# All cash (100,000) buys 1,000 units at bar 1's open (= bar 0's close, 100); equity then
# follows close x 1,000: 90,000 at bar 3 (drawdown 10 %, under the 15 % limit), 80,000 at bar 4
# (drawdown 20 % > 15 %): the kill switch fires at bar 4.
CLOSES = np.array([100, 100, 100, 90, 80, 85, 86, 88, 90, 92.0])
HALT_BAR = 4
HALT_REASON = ("max_drawdown: drawdown 20.00% (equity 80,000.00 against the peak 100,000.00) "
               "exceeds the limit 15.00% (organisation)")
SIMULATION_ID = 4242


class _BuyThenTryToExit(VectorStrategy):
    name = "risk_e2e_buy_then_exit"

    def signals(self, bars):
        entries = np.zeros((bars.n_bars, 1), dtype=bool)
        exits = np.zeros((bars.n_bars, 1), dtype=bool)
        entries[0] = True
        exits[5] = True  # after the halt: refused
        exits[7] = True  # still long (the first exit was refused): refused again
        return Signals(entries=entries, exits=exits)


@pytest.fixture
def world(db):
    org = OrganizationFactory()
    people = {role: member(org, role) for role in (Role.OWNER, Role.ADMIN, Role.TRADER)}
    callers = {role: caller_for(user=user, organization=org) for role, user in people.items()}
    services.limit_set_save(organization=org, level="org", limits={"max_drawdown": 0.15},
                            caller=callers[Role.OWNER])
    # Simulations' halts also stop the organisation (the default escalates live halts only).
    services.kill_switch_configure(organization=org, escalate="all", caller=callers[Role.OWNER])
    services.alert_target_create(organization=org, caller=callers[Role.OWNER], name="desk",
                                 kind="email", email="desk@example.com")
    return org, people, callers


def _run(org):
    bars = bars_from_closes(CLOSES, np.random.default_rng(0), symbols=["SYN"])
    rules = services.rulebook_for(organization=org,
                                  instruments={"SYN": {"asset_class": "equity"}})
    return bars, run_backtest(bars, _BuyThenTryToExit(), BacktestConfig(), pre_trade=rules)


def test_a_drawdown_breach_halts_records_alerts_once_and_needs_an_admin_to_rearm(
        world, django_capture_on_commit_callbacks):
    org, people, callers = world
    bars, result = _run(org)

    # Trading halts at the bar of the breach, and later orders are refused with its reason.
    assert result.halted_at == bars.timestamps[HALT_BAR]
    assert [(r.timestamp, r.rule, r.reason) for r in result.rejections] == [
        (bars.timestamps[5], "max_drawdown", HALT_REASON),
        (bars.timestamps[7], "max_drawdown", HALT_REASON),
    ]

    # Recording the run twice (a re-delivered task) stores the halt once.
    with django_capture_on_commit_callbacks(execute=True):
        services.run_breaches_record(organization=org, source="simulation",
                                     source_id=SIMULATION_ID, result=result)
        services.run_breaches_record(organization=org, source="simulation",
                                     source_id=SIMULATION_ID, result=result)
    breach = Breach.objects.get(organization=org)
    assert (breach.rule, breach.reason, breach.halted) == ("max_drawdown", HALT_REASON, True)
    # Bars start at 2024-01-01 00:00 UTC, one a minute: bar 4 is 00:04.
    assert breach.at == datetime(2024, 1, 1, 0, 4, tzinfo=UTC)

    # One alert, delivered once even when the task runs twice.
    delivery = AlertDelivery.objects.get(breach=breach)
    assert deliver_alert.apply(args=[delivery.pk]).get() == "delivered"
    assert deliver_alert.apply(args=[delivery.pk]).get() == "already delivered"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["desk@example.com"]
    assert HALT_REASON in mail.outbox[0].body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)

    # The escalated halt tripped the organisation's switch; the next run is refused outright.
    switch = KillSwitch.objects.get(organization=org)
    assert (switch.state, switch.reason, switch.tripped_by_label) == (
        "tripped", HALT_REASON, "system")
    _, second = _run(org)
    assert second.halted_at == bars.timestamps[0]
    assert second.rejections[0].reason.startswith(
        "halted: trading is stopped by the organisation kill switch since ")
    assert second.rejections[0].reason.endswith(HALT_REASON)

    # A trader may not re-arm; an admin must, with a reason; the re-arm is audited.
    with pytest.raises(Forbidden):
        services.kill_switch_rearm(organization=org, reason="looks fine",
                                   caller=callers[Role.TRADER])
    with pytest.raises(ApplicationError) as missing_reason:
        services.kill_switch_rearm(organization=org, reason="  ", caller=callers[Role.ADMIN])
    assert "reason" in missing_reason.value.fields
    assert KillSwitch.objects.get(organization=org).state == "tripped"

    services.kill_switch_rearm(organization=org, reason="drawdown reviewed with the PM",
                               caller=callers[Role.ADMIN])
    switch.refresh_from_db()
    assert (switch.state, switch.rearmed_by, switch.rearm_reason) == (
        "armed", people[Role.ADMIN], "drawdown reviewed with the PM")
    audit = AuditEvent.objects.get(organization=org, action="risk.kill_switch.rearmed")
    assert audit.actor == people[Role.ADMIN]
    assert audit.metadata["reason"] == "drawdown reviewed with the PM"
    assert audit.metadata["was_tripped"]["reason"] == HALT_REASON
    assert list(KillSwitchEvent.objects.filter(organization=org).order_by("at", "id")
                .values_list("transition", "actor_label")) == [
        ("trip", "system"), ("rearm", people[Role.ADMIN].email)]

    assert verify_chain(org).intact

    # Armed again: the same data runs into the same limit, and halts at the same bar.
    _, third = _run(org)
    assert third.halted_at == bars.timestamps[HALT_BAR]


def test_with_the_default_policy_a_simulation_halt_leaves_the_organisation_switch_armed(world):
    org, _, callers = world
    services.kill_switch_configure(organization=org, escalate="live",
                                   caller=callers[Role.OWNER])
    _, result = _run(org)
    services.run_breaches_record(organization=org, source="simulation",
                                 source_id=SIMULATION_ID, result=result)
    assert Breach.objects.get(organization=org).halted is True
    assert KillSwitch.objects.get(organization=org).state == "armed"

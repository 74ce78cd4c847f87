"""The kill switch state machine and its permission data."""

import pytest

from risk.core.killswitch import (
    ARMED,
    TRIPPED,
    KillSwitch,
    KillSwitchError,
    first_tripped,
    role_may,
)

T0 = 1_700_000_000_000_000_000


def test_trip_records_reason_time_and_actor():
    switch = KillSwitch()
    assert switch.state == ARMED
    switch.trip(reason="drawdown 12 %", at=T0, rule="max_drawdown")
    assert (switch.state, switch.reason, switch.tripped_at, switch.tripped_by, switch.rule) == (
        TRIPPED,
        "drawdown 12 %",
        T0,
        "system",
        "max_drawdown",
    )


def test_a_tripped_switch_cannot_be_tripped_again_and_keeps_the_first_reason():
    switch = KillSwitch()
    switch.trip(reason="first", at=T0)
    with pytest.raises(KillSwitchError, match="cannot trip a switch that is tripped"):
        switch.trip(reason="second", at=T0 + 1)
    assert switch.reason == "first"


def test_rearm_needs_an_actor_and_a_reason_and_clears_the_trip():
    switch = KillSwitch()
    switch.trip(reason="loss", at=T0)
    with pytest.raises(KillSwitchError, match="rearm needs an actor"):
        switch.rearm(actor="", reason="ok", at=T0 + 1)
    with pytest.raises(KillSwitchError, match="rearm needs a reason"):
        switch.rearm(actor="alice", reason="  ", at=T0 + 1)
    switch.rearm(actor="alice", reason="limits reviewed", at=T0 + 2)
    assert (switch.state, switch.reason, switch.tripped_at) == (ARMED, "", None)
    assert [(e.transition, e.actor) for e in switch.history] == [
        ("trip", "system"),
        ("rearm", "alice"),
    ]


def test_an_armed_switch_cannot_be_rearmed():
    with pytest.raises(KillSwitchError, match="cannot rearm a switch that is armed"):
        KillSwitch().rearm(actor="alice", reason="just in case", at=T0)


def test_only_owners_and_admins_may_rearm_but_traders_may_trip():
    assert role_may("rearm", "admin") and role_may("rearm", "owner")
    assert not role_may("rearm", "trader")
    assert not role_may("rearm", "system")
    assert role_may("trip", "trader") and role_may("trip", "compliance")
    assert not role_may("trip", "viewer")
    assert not role_may("explode", "owner")


def test_the_organisation_switch_is_reported_before_the_deployment_switch():
    org = KillSwitch(scope="organisation", name="acme")
    deployment = KillSwitch()
    assert first_tripped([org, deployment]) is None
    deployment.trip(reason="drawdown", at=T0)
    org.trip(reason="emergency stop", at=T0 + 1, actor="bob")
    assert first_tripped([org, deployment]) is org


def test_switch_round_trips_through_a_dict():
    switch = KillSwitch(scope="organisation", name="acme")
    switch.trip(reason="emergency", at=T0, actor="bob")
    copy = KillSwitch.from_dict(switch.to_dict())
    assert copy == switch
    with pytest.raises(KillSwitchError, match="scope must be one of"):
        KillSwitch(scope="planet")

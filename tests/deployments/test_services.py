"""The deployment services on SQLite: lifecycle, the step, its idempotency, stop and halts."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditEvent
from tests.trading.support import org_with_owner
from trading.models import Deployment, DeploymentEvent, LiveFill, LiveOrder
from trading.services import deployments

from .support import MINUTE, T0, paper_deployment

pytestmark = pytest.mark.django_db


def test_a_started_deployment_is_running_with_its_warm_up_history():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    assert dep.status == "running"
    assert dep.feed_anchor_ns == T0
    # 60 warm-up bars (k = -60 .. -1) end one minute before the anchor
    assert json.loads(dep.state)["history"]["n"] == 60
    assert dep.last_bar_ts == T0 - MINUTE


def test_advance_trades_the_bars_that_became_final():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    result = deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 300 * MINUTE)
    # bar k spans [T0 + k min, T0 + (k+1) min): at T0 + 300 min bars 0..299 have ended
    assert result == "advanced 300 bar(s)"
    dep.refresh_from_db()
    assert dep.last_bar_ts == T0 + 299 * MINUTE
    assert LiveOrder.objects.filter(deployment=dep).count() > 0
    assert LiveFill.objects.filter(deployment=dep).count() > 0
    # cash only moves by fills: cash + position value at the last close = equity
    assert float(dep.equity) == pytest.approx(json.loads(dep.state)["equity"])


def test_advancing_again_to_the_same_time_does_nothing():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 300 * MINUTE)
    orders = LiveOrder.objects.count()
    events = DeploymentEvent.objects.filter(deployment=dep).count()
    assert deployments.deployment_advance(deployment_id=dep.pk,
                                          until_ns=T0 + 300 * MINUTE) == "up to date"
    assert (LiveOrder.objects.count(), DeploymentEvent.objects.filter(
        deployment=dep).count()) == (orders, events)


def test_the_feed_regenerates_the_same_bars_so_a_replayed_step_sends_nothing_new():
    # Two deployments of the same seed: one steps 300 bars at once, the other in 3 steps
    # with a step re-run from its saved state (a worker killed before commit).
    org, owner = org_with_owner()
    a = paper_deployment(org, owner, seed=5)
    b = paper_deployment(org, owner, seed=5)
    deployments.deployment_advance(deployment_id=a.pk, until_ns=T0 + 300 * MINUTE)
    deployments.deployment_advance(deployment_id=b.pk, until_ns=T0 + 100 * MINUTE)
    b.refresh_from_db()
    saved = (b.state, b.broker_state, b.last_seq)
    deployments.deployment_advance(deployment_id=b.pk, until_ns=T0 + 200 * MINUTE)
    Deployment.objects.filter(pk=b.pk).update(state=saved[0], broker_state=saved[1])
    deployments.deployment_advance(deployment_id=b.pk, until_ns=T0 + 300 * MINUTE)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.equity == b.equity
    n_a = LiveFill.objects.filter(deployment=a).count()
    assert n_a > 0 and LiveFill.objects.filter(deployment=b).count() == n_a


def test_stop_cancels_the_open_orders():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 50 * MINUTE)
    from trading.services import orders

    # A buy limit far below the market stays working.
    order = orders.order_place(deployment=dep, actor=owner, symbol="SYN", side="buy",
                               quantity=1, order_type="limit", limit_price=1.0)
    assert order.status == "accepted"
    deployments.deployment_stop(deployment=dep, actor=owner)
    order.refresh_from_db()
    dep.refresh_from_db()
    assert dep.status == "stopped" and order.status == "cancelled"
    assert AuditEvent.objects.filter(organization=org, action="deployment.stopped").exists()
    assert deployments.deployment_advance(deployment_id=dep.pk,
                                          until_ns=T0 + 60 * MINUTE) == "skipped: stopped"


def test_pause_stops_stepping_and_resume_skips_the_bars_it_missed():
    org, owner = org_with_owner()
    dep = paper_deployment(org, owner)
    deployments.deployment_pause(deployment=dep, actor=owner)
    assert deployments.deployment_advance(deployment_id=dep.pk,
                                          until_ns=T0 + 10 * MINUTE) == "skipped: paused"
    deployments.deployment_start(deployment=dep, actor=owner, now_ns=T0 + 10 * MINUTE)
    dep.refresh_from_db()
    # bar k spans [T0 + k min, T0 + (k+1) min): bars 0..9 had ended at the resume and are
    # loaded as history, not traded
    assert dep.last_bar_ts == T0 + 9 * MINUTE
    assert not LiveOrder.objects.filter(deployment=dep).exists()

"""The simulation service end to end on the embedded database: results stored once, events in
sequence, metrics equal to the engine's own run, cancellation, failure and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from trading.engine.backtest import run_backtest
from trading.engine.fingerprint import clean
from trading.models import Simulation, SimulationEvent, SimulationResult, SimulationTrade
from trading.services import simulations
from trading.services.simulations import simulation_load_inputs

from .support import finished_simulation, org_with_owner, queued_simulation

pytestmark = pytest.mark.django_db


def test_a_run_stores_the_metrics_the_engine_computes_directly():
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner)
    bars, strategy, config = simulation_load_inputs(simulation=sim)
    direct = run_backtest(bars, strategy, config)
    assert sim.metrics == clean(direct.metrics)
    assert sim.result_hash == direct.result_hash
    assert sim.n_trades == len(direct.trades) > 0
    assert SimulationTrade.objects.filter(simulation=sim).count() == len(direct.trades)


def test_events_are_numbered_from_one_without_gaps_and_end_with_completed():
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner)
    events = list(SimulationEvent.objects.filter(simulation=sim).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "simulation.queued"
    assert events[1].type == "simulation.started"
    assert events[-1].type == "simulation.completed"
    assert events[-1].payload["metrics"] == sim.metrics
    assert sim.last_seq == len(events)


def test_executing_a_finished_run_again_stores_nothing_twice():
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner)
    trades = SimulationTrade.objects.filter(simulation=sim).count()
    assert simulations.simulation_execute(simulation_id=sim.pk, task_id="again") == "skipped"
    assert SimulationTrade.objects.filter(simulation=sim).count() == trades
    assert SimulationResult.objects.filter(simulation=sim).count() == 1


def test_a_redelivered_task_reruns_a_run_left_running_and_stores_one_result():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    # The first delivery marked the run running, then its worker was killed (no result).
    began = simulations._begin(sim.pk, "task-1")
    assert began is not None
    # The broker re-delivers the same message (same task id) to another worker.
    assert simulations.simulation_execute(simulation_id=sim.pk, task_id="task-1") == "succeeded"
    sim.refresh_from_db()
    assert (sim.status, sim.attempts) == ("succeeded", 2)
    assert SimulationResult.objects.filter(simulation=sim).count() == 1
    assert SimulationTrade.objects.filter(simulation=sim).count() == sim.n_trades


def test_a_duplicate_message_leaves_a_live_run_alone():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    simulations._begin(sim.pk, "task-1")  # alive: fresh heartbeat
    assert simulations.simulation_execute(simulation_id=sim.pk, task_id="task-2") == "skipped"
    sim.refresh_from_db()
    assert (sim.status, sim.attempts) == ("running", 1)


def test_the_sweeper_requeues_a_run_whose_heartbeat_is_stale_and_fails_it_after_max_attempts(
        settings):
    settings.NEXOW_SIM_MAX_ATTEMPTS = 2
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    simulations._begin(sim.pk, "task-1")
    Simulation.objects.filter(pk=sim.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert simulations.simulation_sweep_stale(stale_seconds=60)["requeued"] == [sim.pk]
    sim.refresh_from_db()
    assert (sim.status, sim.attempt_token) == ("queued", "")
    simulations._begin(sim.pk, "task-2")  # second attempt, also lost
    Simulation.objects.filter(pk=sim.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert simulations.simulation_sweep_stale(stale_seconds=60)["failed"] == [sim.pk]
    sim.refresh_from_db()
    assert sim.status == "failed" and "lost 2 times" in sim.error


def test_a_superseded_attempt_cannot_store_its_result():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    _, token = simulations._begin(sim.pk, "task-1")
    Simulation.objects.filter(pk=sim.pk).update(attempt_token="someone-else")
    progress = simulations._Progress(sim.pk, org.pk, token)
    with pytest.raises(simulations.AttemptSuperseded):
        progress.flush()


def test_cancelling_a_queued_run_finishes_it_at_once():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    simulations.simulation_cancel(simulation=sim, actor=owner)
    sim.refresh_from_db()
    assert sim.status == "cancelled"
    assert simulations.simulation_execute(simulation_id=sim.pk, task_id="t") == "skipped"
    assert sim.events.order_by("-seq").first().type == "simulation.cancelled"


def test_a_running_run_stops_at_its_next_progress_point_when_cancelled():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    _, token = simulations._begin(sim.pk, "task-1")
    Simulation.objects.filter(pk=sim.pk).update(cancel_requested=True)
    progress = simulations._Progress(sim.pk, org.pk, token)
    with pytest.raises(simulations.SimulationCancelled):
        progress.flush()


def test_a_run_whose_inputs_fail_is_marked_failed_with_the_reason():
    org, owner = org_with_owner()
    sim = queued_simulation(org, owner)
    # The period moved past the data after admission: loading finds no bar.
    Simulation.objects.filter(pk=sim.pk).update(period_start=timezone.now())
    assert simulations.simulation_execute(simulation_id=sim.pk, task_id="t") == "failed"
    sim.refresh_from_db()
    assert sim.status == "failed" and "no bars" in sim.error
    assert sim.events.order_by("-seq").first().type == "simulation.failed"


@pytest.mark.parametrize(("kind", "size", "expected"), [
    ("sma_cross", 2_000, False),  # a few milliseconds: one compiled pass, nothing to watch
    ("sma_cross", simulations.PROGRESS_MIN_SIZE, True),
    ("market_making", 2_000, True),  # event-driven: seconds on the same bars
    ("random_forest", 2_000, True),  # fits models while it runs
])
def test_which_runs_stream_progress(kind, size, expected):
    from trading.engine.strategies import load_all
    from trading.engine.strategies.registry import create_strategy

    load_all()
    assert simulations.reports_progress(create_strategy(kind), size) is expected


def test_one_heartbeat_thread_beats_every_running_run_until_it_leaves(monkeypatch):
    import threading
    import time

    monkeypatch.setattr(simulations, "HEARTBEAT_INTERVAL", 0.05)
    beats = {"a": 0, "b": 0}
    with simulations.Heartbeat("a", lambda: beats.__setitem__("a", beats["a"] + 1)):
        threads = threading.active_count()
        with simulations.Heartbeat("b", lambda: beats.__setitem__("b", beats["b"] + 1)):
            assert threading.active_count() == threads  # no thread per run
            time.sleep(0.4)
        time.sleep(0.01)  # a beat already under way when it left may still land
        after_b = beats["b"]
        time.sleep(0.2)
    assert beats["b"] == after_b >= 3  # beat while registered, never after leaving
    assert beats["a"] >= 5
    time.sleep(0.01)
    after_a = beats["a"]
    time.sleep(0.2)
    assert beats["a"] == after_a

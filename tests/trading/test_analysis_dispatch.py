"""Analysis children go through the organisation's fair-share dispatcher, and the sweeper
recovers children and aggregates that were lost.

The broker is modelled as one FIFO list of messages, consumed by one worker in order: exactly
what a single `celery worker -Q sims` does with Redis.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from trading.models import Analysis, AnalysisChild, Simulation
from trading.services import analyses, simulations

from .support import org_with_owner, queued_simulation, sma_version, synthetic_dataset

pytestmark = pytest.mark.django_db


class Broker:
    """Records what the platform hands to Celery, in order, instead of sending it."""

    def __init__(self, monkeypatch) -> None:
        self.messages: list[tuple] = []
        monkeypatch.setattr(simulations, "_enqueue",
                            lambda sim_id: self.messages.append(("sim", sim_id)))
        monkeypatch.setattr(simulations, "_enqueue_children", self._children)
        monkeypatch.setattr(analyses, "_enqueue_children", self._children)
        monkeypatch.setattr(analyses, "_enqueue_aggregate",
                            lambda analysis_id: self.messages.append(("aggregate", analysis_id)))

    def _children(self, pairs) -> None:
        self.messages += [("child", a, i) for a, i in pairs]

    def deliver(self, message: tuple) -> str:
        kind, *args = message
        if kind == "sim":
            return simulations.simulation_execute(simulation_id=args[0], task_id="t")
        if kind == "child":
            return analyses.analysis_child_execute(analysis_id=args[0], index=args[1])
        return analyses.analysis_aggregate_execute(analysis_id=args[0])


def _sweep(org, owner, n_children: int) -> Analysis:
    fast = list(range(2, 2 + n_children))
    return analyses.analysis_create(
        organization=org, actor=owner, kind="sweep", strategy_version=sma_version(org, owner),
        dataset=synthetic_dataset(org, owner, n_bars=120),
        spec={"space": {"fast": fast, "slow": [40]}, "objective": "total_return"})


def _in_flight(org) -> int:
    sims = Simulation.objects.filter(organization=org, status__in=("queued", "running"),
                                     dispatched_at__isnull=False).count()
    children = AnalysisChild.objects.filter(analysis__organization=org,
                                            status__in=("queued", "running")).count()
    return sims + children


def test_a_big_sweep_holds_only_its_organisations_slots(monkeypatch, settings,
                                                       django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_MAX_RUNNING_PER_ORG = 3
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    with django_capture_on_commit_callbacks(execute=True):
        analysis = _sweep(org, owner, 20)
    assert analysis.n_children == 20
    assert broker.messages == [("child", analysis.pk, 0), ("child", analysis.pk, 1),
                               ("child", analysis.pk, 2)]
    assert AnalysisChild.objects.filter(analysis=analysis).count() == 3
    # Each finished child admits exactly one more, never more than three at once.
    while broker.messages:
        with django_capture_on_commit_callbacks(execute=True):
            broker.deliver(broker.messages.pop(0))
        assert _in_flight(org) <= 3
    analysis.refresh_from_db()
    assert (analysis.status, analysis.n_done, analysis.n_failed) == ("succeeded", 20, 0)
    assert len(analysis.result["trials"]) == 20


def test_another_organisations_run_starts_before_a_big_sweeps_children_are_done(
        monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_MAX_RUNNING_PER_ORG = 2
    broker = Broker(monkeypatch)
    busy, busy_owner = org_with_owner()
    quiet, quiet_owner = org_with_owner()
    with django_capture_on_commit_callbacks(execute=True):
        sweep = _sweep(busy, busy_owner, 30)
    version = sma_version(quiet, quiet_owner)
    dataset = synthetic_dataset(quiet, quiet_owner, n_bars=120)
    with django_capture_on_commit_callbacks(execute=True):
        quiet_run = queued_simulation(quiet, quiet_owner, version=version, dataset=dataset)
    # The quiet organisation's run is behind only the busy one's two in-flight children.
    assert broker.messages.index(("sim", quiet_run.pk)) == 2
    done_when_quiet_finished = None
    while broker.messages:
        message = broker.messages.pop(0)
        with django_capture_on_commit_callbacks(execute=True):
            broker.deliver(message)
        if message == ("sim", quiet_run.pk):
            done_when_quiet_finished = Analysis.objects.get(pk=sweep.pk).n_done
    quiet_run.refresh_from_db()
    assert quiet_run.status == "succeeded"
    assert done_when_quiet_finished == 2  # of 30: the sweep was far from done
    assert Analysis.objects.get(pk=sweep.pk).status == "succeeded"


def test_a_sweep_and_a_later_simulation_of_one_organisation_share_its_slots_in_order(
        monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_MAX_RUNNING_PER_ORG = 2
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    with django_capture_on_commit_callbacks(execute=True):
        sweep = _sweep(org, owner, 3)
        later = queued_simulation(org, owner)
    assert later.dispatched_at is None  # both slots hold children of the older sweep
    with django_capture_on_commit_callbacks(execute=True):
        broker.deliver(broker.messages.pop(0))
    # The third child is older than the simulation: it takes the freed slot first.
    assert broker.messages == [("child", sweep.pk, 1), ("child", sweep.pk, 2)]
    with django_capture_on_commit_callbacks(execute=True):
        broker.deliver(broker.messages.pop(0))
    assert broker.messages == [("child", sweep.pk, 2), ("sim", later.pk)]


def _all_children_finished_long_ago(analysis: Analysis) -> None:
    for index in range(analysis.n_children):
        assert analyses.analysis_child_execute(analysis_id=analysis.pk, index=index) == \
            "succeeded"
    AnalysisChild.objects.filter(analysis=analysis).update(
        finished_at=timezone.now() - timedelta(hours=1))


def test_the_sweeper_resends_the_aggregate_of_an_analysis_whose_children_are_all_done(
        monkeypatch):
    # (No on-commit callback runs in these sweeper tests unless captured: the aggregate that
    # the last child enqueues is "lost".)
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 3)
    _all_children_finished_long_ago(analysis)
    broker.messages.clear()  # the aggregate's message was lost with its worker
    assert Analysis.objects.get(pk=analysis.pk).status == "running"
    swept = analyses.analysis_sweep_stale(stale_seconds=60)
    assert swept["aggregates_resent"] == [analysis.pk]
    assert broker.messages == [("aggregate", analysis.pk)]
    # Delivered twice (the sweeper ran again before a worker took it): stored once.
    assert broker.deliver(("aggregate", analysis.pk)) == "succeeded"
    assert broker.deliver(("aggregate", analysis.pk)) == "skipped"
    analysis.refresh_from_db()
    assert analysis.status == "succeeded" and len(analysis.result["trials"]) == 3
    assert analyses.analysis_sweep_stale(stale_seconds=60)["aggregates_resent"] == []


def test_the_sweeper_leaves_a_recently_completed_analysis_to_its_own_aggregate(monkeypatch):
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 2)
    for index in range(2):
        analyses.analysis_child_execute(analysis_id=analysis.pk, index=index)
    assert analyses.analysis_sweep_stale(stale_seconds=60)["aggregates_resent"] == []
    assert ("aggregate", analysis.pk) not in broker.messages


def test_the_sweeper_requeues_a_child_whose_worker_died_and_fails_it_after_max_attempts(
        monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_MAX_ATTEMPTS = 2
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 2)
    analyses.analysis_child_execute(analysis_id=analysis.pk, index=1)
    broker.messages.clear()
    stale = timezone.now() - timedelta(hours=1)
    # Child 0 started on a worker that was then killed: running, heartbeat long gone.
    assert analyses._child_start(analysis.pk, 0)
    AnalysisChild.objects.filter(analysis=analysis, index=0).update(finished_at=stale)
    with django_capture_on_commit_callbacks(execute=True):
        swept = analyses.analysis_sweep_stale(stale_seconds=60)
    assert swept["children_requeued"] == [[analysis.pk, 0]]
    assert broker.messages == [("child", analysis.pk, 0)]
    child = AnalysisChild.objects.get(analysis=analysis, index=0)
    assert child.status == "queued"
    # Sweeping again at once finds nothing: the re-sent child is not stale.
    assert analyses.analysis_sweep_stale(stale_seconds=60)["children_requeued"] == []
    # The second attempt dies too: out of attempts, the child fails and the set is complete.
    assert analyses._child_start(analysis.pk, 0)
    AnalysisChild.objects.filter(analysis=analysis, index=0).update(finished_at=stale)
    broker.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        swept = analyses.analysis_sweep_stale(stale_seconds=60)
    assert swept["children_failed"] == [[analysis.pk, 0]]
    child.refresh_from_db()
    assert child.status == "failed" and "lost 2 times" in child.error
    analysis.refresh_from_db()
    assert (analysis.n_done, analysis.n_failed) == (1, 1)
    assert ("aggregate", analysis.pk) in broker.messages
    assert broker.deliver(("aggregate", analysis.pk)) == "succeeded"
    analysis.refresh_from_db()
    assert analysis.result["failed_children"][0]["index"] == 0


def test_the_sweeper_resends_a_child_whose_message_was_lost(
        monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_DISPATCH_STALE_SECONDS = 600
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 2)
    broker.messages.clear()
    AnalysisChild.objects.filter(analysis=analysis, index=1).update(
        finished_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        swept = analyses.analysis_sweep_stale(stale_seconds=60)
    assert swept["children_resent"] == [[analysis.pk, 1]]
    assert broker.messages == [("child", analysis.pk, 1)]
    assert analyses.analysis_sweep_stale(stale_seconds=60)["children_resent"] == []
    # A late duplicate of the original message and the re-sent one store the child once.
    assert broker.deliver(("child", analysis.pk, 1)) == "succeeded"
    assert broker.deliver(("child", analysis.pk, 1)) == "skipped"
    assert AnalysisChild.objects.get(analysis=analysis, index=1).status == "succeeded"


def test_the_periodic_sweeper_admits_children_never_handed_to_the_broker(
        monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.NEXOW_SIM_MAX_RUNNING_PER_ORG = 2
    broker = Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 4)
    # The two in-flight children finished, but the transaction admitting the next ones was lost.
    AnalysisChild.objects.filter(analysis=analysis).update(status="succeeded", result={})
    broker.messages.clear()
    from trading.tasks import sweep_simulations

    with django_capture_on_commit_callbacks(execute=True):
        swept = sweep_simulations()
    assert swept["children_resent"] == [] and swept["aggregates_resent"] == []
    assert broker.messages == [("child", analysis.pk, 2), ("child", analysis.pk, 3)]


def test_a_second_delivery_of_a_running_child_does_not_run_it_again(monkeypatch):
    Broker(monkeypatch)
    org, owner = org_with_owner()
    analysis = _sweep(org, owner, 2)
    assert analyses._child_start(analysis.pk, 0)  # a worker took it and is beating
    # The same message again (the broker's redelivery, a re-send of a slow message): skipped,
    # the attempt not counted, the child still the first worker's.
    assert analyses.analysis_child_execute(analysis_id=analysis.pk, index=0) == "skipped"
    child = AnalysisChild.objects.get(analysis=analysis, index=0)
    assert (child.status, child.result) == ("running", {"attempts": 1})
    # Once its heartbeat is stale the worker is presumed dead: a delivery takes it over.
    AnalysisChild.objects.filter(pk=child.pk).update(
        finished_at=timezone.now() - timedelta(hours=1))
    assert analyses.analysis_child_execute(analysis_id=analysis.pk, index=0) == "succeeded"

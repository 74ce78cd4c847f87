"""Celery entry points of the trading app; thin: they take ids and call the services.

Queues are routed in settings (`CELERY_TASK_ROUTES`). ``trading.run_simulation`` runs on the ``sims`` queue with late acknowledgement (a worker killed
mid-run leaves the message to be re-delivered), time limits, and bounded retries with exponential
backoff for transient database errors; after the last retry the run is marked failed.
``trading.sweep_simulations`` is the periodic sweeper (every minute, ``CELERY_BEAT_SCHEDULE``): stale
and lost simulations, stale and lost analysis children, aggregates that never ran, and a top-up of
every organisation's free slots.
``trading.analysis_child`` / ``trading.analysis_aggregate`` are the fan-out and join of analyses.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from trading.services import analyses, simulations

TRANSIENT = (OperationalError, InterfaceError)
SIM_TIME_LIMIT = 3600
SIM_SOFT_TIME_LIMIT = 3540


class SimulationTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Retries exhausted, time limit or a bug: the run must not be left "running".
        if args:
            simulations.simulation_fail(simulation_id=int(args[0]),
                                        message=f"{type(exc).__name__}: {exc}")


@shared_task(bind=True, base=SimulationTask, name="trading.run_simulation", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             time_limit=SIM_TIME_LIMIT, soft_time_limit=SIM_SOFT_TIME_LIMIT,
             autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=60, retry_jitter=True,
             max_retries=5)
def run_simulation(self, simulation_id: int) -> str:
    return simulations.simulation_execute(simulation_id=simulation_id,
                                          task_id=self.request.id or "")


@shared_task(name="trading.sweep_simulations", ignore_result=True,
             time_limit=120, soft_time_limit=100)
def sweep_simulations() -> dict:
    # Analyses first: a child put back in the queue is then counted by the dispatcher's top-up.
    swept = analyses.analysis_sweep_stale()
    swept.update(simulations.simulation_sweep_stale())
    return swept


@shared_task(name="trading.analysis_child", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True, time_limit=SIM_TIME_LIMIT,
             soft_time_limit=SIM_SOFT_TIME_LIMIT, autoretry_for=TRANSIENT, retry_backoff=2,
             retry_backoff_max=60, max_retries=5)
def analysis_child(analysis_id: int, index: int) -> str:
    return analyses.analysis_child_execute(analysis_id=analysis_id, index=index)


@shared_task(name="trading.analysis_aggregate", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True, time_limit=600,
             soft_time_limit=570, autoretry_for=TRANSIENT, retry_backoff=2, max_retries=5)
def analysis_aggregate(analysis_id: int) -> str:
    return analyses.analysis_aggregate_execute(analysis_id=analysis_id)


# --- live and paper deployments (queue "live") ----------------------------------------------
# The step is one transaction on the locked deployment row, so a re-delivered message (late
# acknowledgement: a worker killed mid-step) re-runs it and the deterministic client order ids
# keep the broker from seeing an order twice; running it again when up to date does nothing.

@shared_task(name="trading.advance_deployment", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, time_limit=120, soft_time_limit=100,
             autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=20, max_retries=5)
def advance_deployment(deployment_id: int) -> str:
    from trading.services import deployments

    return deployments.deployment_advance(deployment_id=int(deployment_id))


@shared_task(name="trading.tick_deployments", ignore_result=True, time_limit=30,
             soft_time_limit=25)
def tick_deployments() -> int:
    from trading.services import deployments

    ids = deployments.running_deployment_ids()
    for deployment_id in ids:
        advance_deployment.apply_async((deployment_id,), expires=30)
    return len(ids)

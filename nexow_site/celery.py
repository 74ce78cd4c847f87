"""The Celery application, and the in-process worker thread of embedded mode.

In services mode ``celery -A nexow_site worker`` and ``celery -A nexow_site beat`` run as separate
processes on the Redis broker. In embedded mode the web process consumes the in-memory transport
with a worker thread (and runs beat in a thread), so that tasks are real Celery tasks in both modes.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")

app = Celery("nexow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("nexow.celery")


@signals.before_task_publish.connect
def _propagate_request_id(headers=None, **_):
    # Infrastructure, not domain flow: carry the request id into the task's log lines.
    from nexow_site.observability import request_id_var

    if headers is not None:
        headers.setdefault("nexow_request_id", request_id_var.get())


@signals.task_prerun.connect
def _adopt_request_id(task=None, **_):
    from nexow_site.observability import request_id_var

    rid = getattr(task.request, "nexow_request_id", None) if task else None
    request_id_var.set(rid or (task.request.id if task else "-"))


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_db_connections(task=None, **_):
    """Database connections across tasks, as Django keeps them across requests.

    Celery's Django fix-up closes every connection before and after every task unless
    ``CELERY_DB_REUSE_MAX`` is set (the settings set it), so each task would open a new
    PostgreSQL connection (measured: about a tenth of a short simulation's task). Instead, as
    Django does at each request's start and end, a connection is closed only when it is unusable
    (an error occurred), older than ``CONN_MAX_AGE``, or fails its health check on next use.
    Eager tasks run inside their caller's transaction and are left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections, connections

    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        close_old_connections()


_embedded_lock = threading.Lock()
_embedded_started = False


def start_embedded_worker() -> None:
    """Starts a worker thread (and a beat thread) consuming the in-memory transport, once."""
    global _embedded_started
    with _embedded_lock:
        if _embedded_started:
            return
        _embedded_started = True

    def run_worker() -> None:
        worker = app.WorkController(
            pool_cls="solo", concurrency=1, loglevel="INFO", hostname="embedded@nexow",
            without_heartbeat=True, without_mingle=True, without_gossip=True,
        )
        try:
            worker.start()
        except Exception:  # noqa: BLE001 - a crashed thread must be visible in the log
            logger.exception("embedded worker stopped")

    threading.Thread(target=run_worker, name="celery-embedded-worker", daemon=True).start()
    if os.environ.get("NEXOW_EMBEDDED_BEAT", "1") == "1":
        from celery.beat import EmbeddedService
        from django.conf import settings

        # A daemon thread running beat with the database scheduler (django-celery-beat).
        EmbeddedService(app, thread=True, scheduler_cls=app.conf.beat_scheduler,
                        schedule_filename=str(settings.VAR_DIR / "celerybeat-schedule")).start()
    logger.info("embedded Celery worker and beat threads started")

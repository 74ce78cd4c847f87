"""A Celery worker keeps its PostgreSQL connection from one task to the next, as Django keeps
it from one request to the next, and still drops a connection that failed or grew too old.

Celery's Django fix-up is driven here as a worker drives it (its task_prerun and task_postrun
handlers), each followed by the project's own handler connected to the same signals.
"""

from __future__ import annotations

import time
import weakref

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from nexow_site.celery import _recycle_db_connections, app
from trading.tasks import run_simulation

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def run_task():
    """Runs the bookkeeping a worker does around one task (no task body)."""
    fixup = DjangoWorkerFixup(app)
    task = run_simulation

    def run() -> None:
        fixup.on_task_prerun(sender=task)
        _recycle_db_connections(task=task)
        fixup.on_task_postrun(sender=task)
        _recycle_db_connections(task=task)

    return run


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_fixup_is_told_to_leave_connections_open():
    assert app.conf.get("CELERY_DB_REUSE_MAX") == 1000
    for signal in (signals.task_prerun, signals.task_postrun):
        receivers = [r() if isinstance(r, weakref.ReferenceType) else r
                     for _, r in signal.receivers]
        assert _recycle_db_connections in receivers


def test_consecutive_tasks_use_the_same_database_session(run_task):
    before = _backend_pid()
    for _ in range(3):
        run_task()
        assert _backend_pid() == before


def test_a_connection_that_failed_is_replaced_before_the_next_task(run_task):
    before = _backend_pid()
    connection.connection.close()  # the server went away under it
    connection.errors_occurred = True  # as Django marks it when a query fails
    run_task()
    assert connection.connection is None
    assert _backend_pid() != before


def test_a_connection_older_than_conn_max_age_is_replaced(run_task):
    before = _backend_pid()
    connection.close_at = time.monotonic() - 1
    run_task()
    assert _backend_pid() != before

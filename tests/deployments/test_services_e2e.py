"""A paper deployment through real processes (PostgreSQL, Redis, uvicorn, a Celery worker and
Celery beat): SMA on the 1-second synthetic feed trades, its orders, fills and P&L show over
the API and the WebSocket; a worker SIGKILLed while stepping is replaced and the deployment
carries on without sending any order twice; stopping cancels its working order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from django.db import connection, transaction

from tests.factories import ApiKeyFactory
from tests.support.procs import (
    PY,
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
    worker_argv,
)
from tests.trading.support import org_with_owner, sma_version
from trading.models import Deployment
from trading.services import deployments

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _call(method: str, url: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _a_step_waits_for_the_row() -> bool:
    """Another session of the test database (the worker's step) waits for a row lock."""
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is a snapshot: take a fresh one each time.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def _beat_argv(tmp_path) -> list[str]:
    return [PY, "-m", "celery", "-A", "nexow_site", "beat", "--loglevel", "INFO",
            "--schedule", str(tmp_path / "beat-schedule")]


async def _first_fill_event(url: str, origin: str, key: str, deployment_id: int) -> dict:
    import websockets

    async with websockets.connect(url, origin=origin, open_timeout=10,
                                  additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=90))
            if event.get("deployment") == deployment_id and event["type"] == "deployment.fill":
                return event


def test_a_paper_deployment_trades_survives_a_killed_worker_and_stops(tmp_path):
    org, owner = org_with_owner()
    key = ApiKeyFactory(organization=org, created_by=owner).plaintext
    version = sma_version(org, owner, params={"fast": 2, "slow": 5})
    account = deployments.broker_account_create(organization=org, actor=owner, name="paper",
                                                kind="paper", mode="paper")
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/orgs/{org.slug}"
    env = base_env(DATABASE_URL=_database_url(), NEXOW_EMBEDDED_WORKER="0",
                   NEXOW_VAR_DIR=str(tmp_path / "var"))
    with process(web_server_argv(port), env, tmp_path / "web.log") as web, \
            process(_beat_argv(tmp_path), env, tmp_path / "beat.log"):
        wait_for(lambda: web.poll() is None
                 and http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60,
                 message="web server ready")
        status, dep = _call("POST", f"{base}/deployments/", key, {
            "strategy_version": version.pk, "broker_account": account.pk, "symbols": ["SYN"],
            "config": {"bar_seconds": 1, "volatility": 0.01, "lookback": 50,
                       "warm_bars": 10}})
        assert status == 201, dep
        dep_id = dep["id"]
        with process(worker_argv("doomed", queues="live"), env, tmp_path / "w1.log") as doomed:
            wait_for(lambda: "ready" in (tmp_path / "w1.log").read_text(), 60,
                     message="worker ready")
            assert _call("POST", f"{base}/deployments/{dep_id}/start/", key)[0] == 200
            fill = asyncio.run(_first_fill_event(
                f"ws://127.0.0.1:{port}/ws/v1/orgs/{org.slug}/", f"http://127.0.0.1:{port}",
                key, dep_id))
            assert fill["symbol"] == "SYN" and fill["quantity"] > 0
            # Kill it in the middle of a step: a step takes milliseconds, so the test holds the
            # deployment's row; the next step (the beat enqueues one every 2 s) then waits for
            # it inside its transaction, and PostgreSQL shows that wait before the kill.
            with transaction.atomic():
                Deployment.objects.select_for_update().get(pk=dep_id)
                wait_for(_a_step_waits_for_the_row, 20, message="a step under way")
                os.killpg(doomed.pid, signal.SIGKILL)
                doomed.wait(timeout=10)
        before = _call("GET", f"{base}/deployments/{dep_id}/", key)[1]["last_bar_ts"]
        with process(worker_argv("rescuer", queues="live"), env, tmp_path / "w2.log"):
            wait_for(lambda: _call("GET", f"{base}/deployments/{dep_id}/", key)[1]
                     ["last_bar_ts"] > before + 5 * 10**9, 90,
                     message="the deployment carries on after the kill")
            fills = _call("GET", f"{base}/fills/?deployment={dep_id}&page_size=500", key)[1]
            orders = _call("GET", f"{base}/orders/?deployment={dep_id}&page_size=500", key)[1]
            # A working order to be cancelled by the stop: a buy limit far below the market.
            status, working = _call("POST", f"{base}/orders/", key, {
                "deployment": dep_id, "symbol": "SYN", "side": "buy", "quantity": 1,
                "order_type": "limit", "limit_price": 0.01})
            assert status == 201 and working["status"] == "accepted", working
            status, stopped = _call("POST", f"{base}/deployments/{dep_id}/stop/", key)
            assert status == 200 and stopped["status"] == "stopped"

    # No order was sent twice: each order's fills add up to at most its quantity, and the
    # deployment's books (cash + positions) agree with its fills.
    filled: dict[str, float] = defaultdict(float)
    for f in fills["results"]:
        filled[f["client_order_id"]] += float(f["quantity"])
    by_id = {o["client_order_id"]: o for o in orders["results"]}
    assert filled and all(q <= float(by_id[c]["quantity"]) + 1e-9 for c, q in filled.items())
    assert len({f["fill_id"] for f in fills["results"]}) == len(fills["results"])
    from trading.models import LiveOrder

    row = Deployment.objects.get(pk=dep_id)
    assert row.status == "stopped" and row.equity is not None
    assert LiveOrder.objects.get(client_order_id=working["client_order_id"]).status == \
        "cancelled"

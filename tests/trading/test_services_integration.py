"""Simulations through real processes (PostgreSQL, Redis, a uvicorn web server and Celery worker
processes): events reach a WebSocket client in order with the engine's own metrics; a worker
SIGKILLed mid-run leaves a run that a new worker completes exactly once; 50 concurrent identical
POSTs with one Idempotency-Key create one simulation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import urllib.error
import urllib.request

import pytest
from django.db import connection

from tests.factories import ApiKeyFactory
from tests.support.procs import (
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
    worker_argv,
)
from trading.engine.backtest import run_backtest
from trading.engine.fingerprint import clean
from trading.models import Simulation, SimulationResult, SimulationTrade
from trading.services.simulations import simulation_load_inputs

from .support import org_with_owner, sma_version, synthetic_dataset

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _env(tmp_path, **extra: str) -> dict[str, str]:
    return base_env(DATABASE_URL=_database_url(), NEXOW_EMBEDDED_WORKER="0",
                    NEXOW_VAR_DIR=str(tmp_path / "var"), **extra)


def _post(url: str, key: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                 **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_web(web, port: int) -> None:
    wait_for(lambda: web.poll() is None
             and http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60,
             message="web server ready")


def _wait_worker(log) -> None:
    wait_for(lambda: "ready" in log.read_text(), 60, message="worker ready")


def _world(n_bars: int):
    org, owner = org_with_owner()
    key = ApiKeyFactory(organization=org, created_by=owner)
    return org, owner, key, sma_version(org, owner), synthetic_dataset(org, owner, n_bars=n_bars)


async def _events_until_completed(url: str, origin: str, key: str, start_run) -> list[dict]:
    import websockets

    async with websockets.connect(url, origin=origin, open_timeout=10,
                                  additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        sim_id = await asyncio.get_running_loop().run_in_executor(None, start_run)
        received = []
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            if event.get("simulation") != sim_id:
                continue
            received.append(event)
            if event["type"] in ("simulation.completed", "simulation.failed"):
                return received


def test_a_simulation_runs_on_a_worker_and_streams_its_events_in_order(tmp_path):
    org, owner, key, version, dataset = _world(200_000)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/orgs/{org.slug}"

    def start_run() -> int:
        status, body = _post(f"{base}/simulations/", key.plaintext,
                             {"strategy_version": version.pk, "dataset": dataset.pk})
        assert status == 201, body
        return body["id"]

    env = _env(tmp_path)
    with process(web_server_argv(port), env, tmp_path / "web.log") as web, \
            process(worker_argv("sims"), env, tmp_path / "worker.log"):
        _wait_web(web, port)
        _wait_worker(tmp_path / "worker.log")
        events = asyncio.run(_events_until_completed(
            f"ws://127.0.0.1:{port}/ws/v1/orgs/{org.slug}/", f"http://127.0.0.1:{port}",
            key.plaintext, start_run))

    types = [e["type"] for e in events]
    assert types[0] == "simulation.queued" and types[1] == "simulation.started"
    assert types[-1] == "simulation.completed"
    assert set(types[2:-1]) <= {"simulation.progress"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    progress = [e["progress"] for e in events if e["type"] == "simulation.progress"]
    assert progress == sorted(progress)
    sim = Simulation.objects.get(pk=events[0]["simulation"])
    bars, strategy, config = simulation_load_inputs(simulation=sim)
    direct = run_backtest(bars, strategy, config)
    assert events[-1]["metrics"] == clean(direct.metrics) == sim.metrics
    assert events[-1]["result_hash"] == direct.result_hash


def test_a_run_whose_worker_is_killed_completes_exactly_once_on_a_new_worker(tmp_path):
    org, owner, key, version, dataset = _world(1_000_000)
    port = free_port()
    # The new worker restores messages unacknowledged for longer than this (the killed
    # worker's) to the queue; in production the visibility timeout is longer than a run.
    env = _env(tmp_path, CELERY_VISIBILITY_TIMEOUT="5")
    with process(web_server_argv(port), env, tmp_path / "web.log") as web:
        _wait_web(web, port)
        with process(worker_argv("doomed"), env, tmp_path / "w1.log") as doomed:
            _wait_worker(tmp_path / "w1.log")
            status, body = _post(f"http://127.0.0.1:{port}/api/v1/orgs/{org.slug}/simulations/",
                                 key.plaintext, {"strategy_version": version.pk,
                                                 "dataset": dataset.pk})
            assert status == 201, body
            sim_id = body["id"]
            wait_for(lambda: Simulation.objects.get(pk=sim_id).status == "running", 60,
                     interval=0.05, message="the run to start")
            threading.Event().wait(1.0)  # well inside the run (loading and computing)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
        killed = Simulation.objects.get(pk=sim_id)
        assert (killed.status, killed.attempts) == ("running", 1)
        assert not SimulationResult.objects.filter(simulation_id=sim_id).exists()
        with process(worker_argv("rescuer"), env, tmp_path / "w2.log"):
            wait_for(lambda: Simulation.objects.get(pk=sim_id).status in
                     ("succeeded", "failed"), 120, interval=0.5, message="the run to finish")
            # Give a duplicate delivery (restored while the rescuer worked) time to be consumed.
            threading.Event().wait(2.0)

    sim = Simulation.objects.get(pk=sim_id)
    assert sim.status == "succeeded", sim.error
    assert sim.attempts == 2
    assert SimulationResult.objects.filter(simulation=sim).count() == 1
    trades = SimulationTrade.objects.filter(simulation=sim)
    assert trades.count() == sim.n_trades > 0
    assert trades.values("index").distinct().count() == sim.n_trades
    assert sim.events.filter(type="simulation.completed").count() == 1
    bars, strategy, config = simulation_load_inputs(simulation=sim)
    assert sim.result_hash == run_backtest(bars, strategy, config).result_hash


def test_fifty_concurrent_identical_posts_with_one_key_create_one_simulation(tmp_path):
    org, owner, key, version, dataset = _world(500)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/orgs/{org.slug}/simulations/"
    body = {"strategy_version": version.pk, "dataset": dataset.pk}
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def post() -> None:
        start.wait()
        outcome = _post(url, key.plaintext, body, {"Idempotency-Key": "one-run-please"})
        with lock:
            results.append(outcome)

    with process([*web_server_argv(port), "--workers", "4"], _env(tmp_path),
                 tmp_path / "web.log") as web:
        _wait_web(web, port)
        threads = [threading.Thread(target=post) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    assert len(results) == 50
    statuses = sorted({code for code, _ in results})
    assert set(statuses) <= {201, 409}, statuses
    created = {b["id"] for code, b in results if code == 201}
    assert len(created) == 1
    assert Simulation.objects.filter(organization=org).count() == 1

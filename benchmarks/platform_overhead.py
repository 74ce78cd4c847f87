"""Platform overhead per simulation, and the cost of storing a 1M-point equity curve.

Overhead: the time from the API request creating a simulation to the ``simulation.completed``
event arriving on a WebSocket client, minus the engine's own time for the same run (loading the
bars from the database plus `run_backtest`, measured in-process on warm code). What remains is
the platform: HTTP and authentication, admission, the broker hop, the worker's bookkeeping,
storing results and events, and the channel layer. Target: < 50 ms per simulation.

Storage: packing (zlib) and inserting the timestamps and equity of a 1M-bar run, in one
transaction. Target: < 1 s.

Needs services mode (DATABASE_URL of a migrated database, REDIS_URL); starts its own uvicorn
server and Celery worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexow_dev REDIS_URL=redis://127.0.0.1:6379/11 \\
        python benchmarks/platform_overhead.py [--runs 30] [--bars 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from accounts import keys  # noqa: E402
from accounts.models import ApiKey, Membership, Organization, User  # noqa: E402
from tests.support.procs import (  # noqa: E402
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
    worker_argv,
)
from trading.engine import synthetic  # noqa: E402
from trading.engine.backtest import run_backtest  # noqa: E402
from trading.models import Simulation, SimulationResult  # noqa: E402
from trading.services import marketdata, results, simulations, strategies  # noqa: E402


def _world(n_bars: int):
    from datetime import timedelta

    from django.utils import timezone

    tag = uuid.uuid4().hex[:8]
    user = User.objects.create_user(f"overhead-{tag}@example.com")
    org = Organization.objects.create(name=f"Overhead {tag}", slug=f"overhead-{tag}")
    Membership.objects.create(user=user, organization=org, role="owner")
    plaintext = keys.generate_key()
    ApiKey.objects.create(organization=org, created_by=user, name="bench",
                          prefix=keys.visible_prefix(plaintext),
                          hashed_key=keys.hash_key(plaintext), scopes=["org:read", "simulations:write"],
                          expires_at=timezone.now() + timedelta(days=1))
    dataset = marketdata.dataset_generate(organization=org, actor=user, name="overhead",
                                          generator="gbm", n_bars=n_bars, seed=3,
                                          options={"volatility": 0.003})
    strategy = strategies.strategy_create(organization=org, actor=user, name="sma",
                                          kind="sma_cross")
    version = strategies.version_create(strategy=strategy, actor=user,
                                        params={"fast": 5, "slow": 20})
    return org, plaintext, dataset, version


def _engine_seconds(sim: Simulation, repeat: int = 20) -> float:
    """Median in-process time of what the engine needs: load the bars and run."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        bars, strategy, config = simulations.simulation_load_inputs(simulation=sim)
        run_backtest(bars, strategy, config)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _end_to_end(port: int, org: Organization, key: str, body: dict, runs: int
                      ) -> list[dict]:
    """One dict per run: the simulation id, seconds end to end, seconds of the POST request, and
    the wall-clock time the completion event arrived (to place it against the database's
    timestamps)."""
    import websockets

    url = f"http://127.0.0.1:{port}/api/v1/orgs/{org.slug}/simulations/"
    out = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/v1/orgs/{org.slug}/",
                                  origin=f"http://127.0.0.1:{port}", open_timeout=10,
                                  additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        loop = asyncio.get_running_loop()
        for _ in range(runs):
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {key}"})
            start = time.perf_counter()
            resp = await loop.run_in_executor(None, lambda r=request: urllib.request.urlopen(
                r, timeout=30).read())
            posted = time.perf_counter() - start
            sim_id = json.loads(resp)["id"]
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                if event.get("simulation") == sim_id and event["type"] in (
                        "simulation.completed", "simulation.failed"):
                    break
            out.append({"id": sim_id, "seconds": time.perf_counter() - start,
                        "post_seconds": posted, "received": time.time()})
    return out


def _store_curve(n: int) -> dict:
    bars = synthetic.gbm(n, seed=1)
    eq = bars.close[:, 0] * 1000.0
    start = time.perf_counter()
    with transaction.atomic():
        sim = Simulation.objects.order_by("-id").first()
        blob_ts, blob_eq = results.pack_timestamps(bars.timestamps), results.pack(eq, "<f8")
        packed = time.perf_counter() - start
        row = SimulationResult(simulation=sim, n_points=n, timestamps_blob=blob_ts,
                               equity_blob=blob_eq, fills_blob=results.pack(eq[:0], "<f8"),
                               fills_shape=[0, 10], symbols=["SYN"])
        # Measure the insert without keeping it (the simulation already has its result).
        SimulationResult.objects.filter(simulation=sim).delete()
        row.save()
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    return {"points": n, "pack_seconds": round(packed, 4), "pack_and_insert_seconds":
            round(elapsed, 4), "compressed_bytes": len(blob_ts) + len(blob_eq),
            "raw_bytes": 16 * n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--logs", help="keep the server and worker logs in this directory")
    args = parser.parse_args()
    org, key, dataset, version = _world(args.bars)
    body = {"strategy_version": version.pk, "dataset": dataset.pk}
    env = base_env(NEXOW_EMBEDDED_WORKER="0", LOG_LEVEL="WARNING")
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.logs or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        with process(web_server_argv(port), env, Path(tmp) / "web.log") as web, \
                process(worker_argv("overhead", queues="sims"), env, Path(tmp) / "w.log"):
            wait_for(lambda: web.poll() is None
                     and http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60,
                     message="web ready")
            wait_for(lambda: "ready" in (Path(tmp) / "w.log").read_text(), 60,
                     message="worker ready")
            asyncio.run(_end_to_end(port, org, key, body, 3))  # warm-up (imports, JIT)
            e2e = asyncio.run(_end_to_end(port, org, key, body, args.runs))
    sims = Simulation.objects.in_bulk([r["id"] for r in e2e])
    sim = sims[e2e[-1]["id"]]
    engine = _engine_seconds(sim)
    seconds = [r["seconds"] for r in e2e]

    def median_ms(values) -> float:
        return round(statistics.median(values) * 1000, 1)

    def p90_ms(values) -> float:
        return round(sorted(values)[int(0.9 * (len(values) - 1))] * 1000, 1)

    # Where the time goes: the request, request → picked up by the worker (measured from the
    # row's insert, inside the request), the worker's whole execution (includes the engine),
    # and the worker's commit → the event on the client's socket.
    rows = [sims[r["id"]] for r in e2e]
    report = {
        "benchmark": "platform_overhead", "bars": args.bars, "runs": args.runs,
        "end_to_end_median_ms": median_ms(seconds),
        "end_to_end_p90_ms": p90_ms(seconds),
        "engine_median_ms": round(engine * 1000, 1),
        "overhead_median_ms": round((statistics.median(seconds) - engine) * 1000, 1),
        "overhead_p90_ms": round((sorted(seconds)[int(0.9 * (len(seconds) - 1))] - engine)
                                 * 1000, 1),
        "post_request_median_ms": median_ms([r["post_seconds"] for r in e2e]),
        "created_to_started_median_ms": median_ms(
            [(s.started_at - s.created_at).total_seconds() for s in rows]),
        "started_to_finished_median_ms": median_ms(
            [(s.finished_at - s.started_at).total_seconds() for s in rows]),
        "finished_to_event_received_median_ms": median_ms(
            [r["received"] - sims[r["id"]].finished_at.timestamp() for r in e2e]),
        "equity_curve_storage": _store_curve(1_000_000),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

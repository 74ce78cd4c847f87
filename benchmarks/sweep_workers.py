"""Parameter sweep fan-out benchmark: 50 parameter sets run as Celery children on 1 worker
process, then on 2, through the real stack (PostgreSQL, Redis, `celery worker` processes).

Needs services mode (DATABASE_URL of a migrated database, REDIS_URL). It creates a throw-away
organisation with a synthetic dataset, starts the workers itself (concurrency 1 each, queue
"sims"), creates one sweep analysis per run and times it from creation to its aggregate result.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexow_dev REDIS_URL=redis://127.0.0.1:6379/11 \\
        python benchmarks/sweep_workers.py [--bars 200000] [--sets 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")

import django  # noqa: E402

django.setup()

from accounts.models import Membership, Organization, User  # noqa: E402
from tests.support.procs import base_env, process, wait_for, worker_argv  # noqa: E402
from trading.models import Analysis  # noqa: E402
from trading.services import analyses, marketdata, strategies  # noqa: E402


def _world(n_bars: int):
    tag = uuid.uuid4().hex[:8]
    user = User.objects.create_user(f"bench-{tag}@example.com")
    org = Organization.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    Membership.objects.create(user=user, organization=org, role="owner")
    dataset = marketdata.dataset_generate(organization=org, actor=user, name="bench",
                                          generator="gbm", n_bars=n_bars, seed=11,
                                          options={"volatility": 0.002})
    strategy = strategies.strategy_create(organization=org, actor=user, name="sma",
                                          kind="sma_cross")
    version = strategies.version_create(strategy=strategy, actor=user,
                                        params={"fast": 10, "slow": 50})
    return org, user, dataset, version


def _space(n_sets: int) -> dict:
    # 10 fast windows × 5 slow windows = 50 parameter sets (fewer when asked).
    fast = list(range(5, 55, 5))
    slow = [60, 80, 100, 150, 200]
    grid = [(f, s) for f in fast for s in slow][:n_sets]
    return {"fast": sorted({f for f, _ in grid}), "slow": sorted({s for _, s in grid})}


def _run_sweep(org, user, dataset, version, space) -> tuple[float, Analysis]:
    start = time.perf_counter()
    analysis = analyses.analysis_create(organization=org, actor=user, kind="sweep",
                                        strategy_version=version, dataset=dataset,
                                        spec={"space": space, "objective": "sharpe"})
    wait_for(lambda: Analysis.objects.get(pk=analysis.pk).status in ("succeeded", "failed"),
             1800, interval=0.05, message="the sweep to finish")
    elapsed = time.perf_counter() - start
    return elapsed, Analysis.objects.get(pk=analysis.pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--sets", type=int, default=50)
    args = parser.parse_args()
    org, user, dataset, version = _world(args.bars)
    space = _space(args.sets)
    env = base_env(NEXOW_EMBEDDED_WORKER="0")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n_workers in (1, 2):
            with contextlib.ExitStack() as stack:
                logs = []
                for i in range(n_workers):
                    log = Path(tmp) / f"w{n_workers}-{i}.log"
                    log.touch()
                    stack.enter_context(process(worker_argv(f"bench{n_workers}{i}",
                                                            queues="sims"), env, log))
                    logs.append(log)
                for log in logs:
                    wait_for(lambda log=log: "ready" in log.read_text(), 120,
                             message="worker ready")
                # A warm-up sweep so numba compilation and imports are not timed.
                _run_sweep(org, user, dataset, version, {"fast": [5], "slow": [60]})
                elapsed, analysis = _run_sweep(org, user, dataset, version, space)
                results[n_workers] = {"seconds": round(elapsed, 3),
                                      "children": analysis.n_children,
                                      "status": analysis.status,
                                      "best_params": analysis.result.get("best_params")}
    report = {
        "benchmark": "sweep_workers", "bars": args.bars, "parameter_sets": results[1]["children"],
        "one_worker": results[1], "two_workers": results[2],
        "speedup": round(results[1]["seconds"] / results[2]["seconds"], 2),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Random Forest walk-forward benchmark: the strategy's total time against the time
scikit-learn itself spends fitting and predicting the same models on the same matrices.

The difference is the engine's own overhead (feature engineering, the walk-forward plan,
hashing, assembling signals). Target: total within 2x of scikit-learn's time.

    python benchmarks/engine_rf.py [--bars 100000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trading.engine import synthetic  # noqa: E402
from trading.engine.backtest import run_backtest  # noqa: E402
from trading.engine.strategies.random_forest import (  # noqa: E402
    RandomForestStrategy,
    feature_matrix,
)

PARAMS = dict(train_window=2000, retrain_every=1000, n_estimators=50, max_depth=6, n_jobs=1,
              seed=0)


def sklearn_only(strategy: RandomForestStrategy, bars) -> tuple[float, float]:
    """(wall, CPU) seconds scikit-learn spends on the strategy's own fits and predictions."""
    plan = strategy.walk_forward_plan(bars)
    features = feature_matrix(bars.close[:, 0], strategy.values["n_lags"])
    wall = cpu = 0.0
    for step in plan:
        X_pred = features[step.predict_start:step.predict_stop]
        X_pred = X_pred[np.isfinite(X_pred).all(axis=1)]
        model = strategy._model()
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(step.X, step.y)
        model.predict_proba(X_pred)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    bars = synthetic.gbm(args.bars, seed=42)
    results = []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        sig = RandomForestStrategy(**PARAMS).signals(bars)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        sk, sk_cpu = sklearn_only(RandomForestStrategy(**PARAMS), bars)
        t0 = time.perf_counter()
        run_backtest(bars, RandomForestStrategy(**PARAMS))
        with_backtest = time.perf_counter() - t0
        results.append((total_cpu, total, sk_cpu, sk, with_backtest,
                        sig.info["model_version"]["n_models"]))
    total_cpu, total, sk_cpu, sk, bt, n_models = min(results)
    # CPU time is reported too: on a shared machine wall time includes waiting for a core.
    print(json.dumps({
        "bars": args.bars, "params": PARAMS, "models_fitted": n_models,
        "strategy_signals_wall_s": round(total, 3), "sklearn_fit_predict_wall_s": round(sk, 3),
        "ratio_wall": round(total / sk, 3),
        "strategy_signals_cpu_s": round(total_cpu, 3), "sklearn_fit_predict_cpu_s": round(sk_cpu, 3),
        "ratio_cpu": round(total_cpu / sk_cpu, 3),
        "run_backtest_total_wall_s": round(bt, 3),
        "python": platform.python_version(), "sklearn": sklearn.__version__,
        "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()

"""Random Forest direction classifier, retrained walk-forward without seeing the future.

For every symbol a scikit-learn `RandomForestClassifier` predicts whether the close `horizon`
bars ahead will be above today's close, from engineered features known at today's close: lagged
returns, rolling volatilities, RSI and moving-average ratios. Every `retrain_every` bars the model
is refitted on the trailing `train_window` bars whose label is already known at that time (bar t's
label needs the close of bar t + horizon, so a model fitted at bar T uses t <= T - horizon). It
then predicts for bars T .. T + retrain_every - 1. The retraining schedule depends only on bar
positions, so truncating the data never changes earlier decisions.

Fitted models are cached under (symbol, training bar, hash of the training data): a live
deployment exports the cache with `export_state()` after a step and restores it with
`import_state()` before the next, so it refits only when a new training point is reached.
Setting `live_bars` limits decisions (and so fits and the exported state) to the last few bars,
which is all a live step needs.
"""

from __future__ import annotations

import base64
import hashlib
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier

from trading.engine import indicators as ind
from trading.engine.strategies.registry import register
from trading.engine.types import BarSet, Param, ParamError, Signals, VectorStrategy

STATE_VERSION = 1
LONGEST_FEATURE_WINDOW = 50


def feature_names(n_lags: int) -> list[str]:
    return [
        *(f"return_lag_{k}" for k in range(n_lags)),
        "volatility_10",
        "volatility_30",
        "rsi_14",
        "close_over_sma_10",
        "close_over_sma_50",
        "sma_10_over_sma_50",
    ]


def feature_matrix(close: np.ndarray, n_lags: int) -> np.ndarray:
    """Features of one symbol's closes, shape (n, n_features); NaN rows during warm-up.

    Row t uses closes up to t only.
    """
    c = np.asarray(close, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = c / ind.shift(c, 1) - 1.0
        sma10, sma50 = ind.sma(c, 10), ind.sma(c, 50)
        cols = [ind.shift(r, k) for k in range(n_lags)]
        cols += [
            ind.rolling_volatility(c, 10),
            ind.rolling_volatility(c, 30),
            ind.rsi(c, 14) / 100.0,
            c / sma10 - 1.0,
            c / sma50 - 1.0,
            sma10 / sma50 - 1.0,
        ]
    return np.column_stack(cols)


def direction_labels(close: np.ndarray, horizon: int) -> np.ndarray:
    """1.0 where close[t + horizon] > close[t], 0.0 otherwise, NaN where the future is unknown."""
    c = np.asarray(close, dtype=np.float64)
    y = np.full(c.shape, np.nan)
    if c.size > horizon:
        now, later = c[:-horizon], c[horizon:]
        known = np.isfinite(now) & np.isfinite(later)
        y[:-horizon] = np.where(known, (later > now).astype(np.float64), np.nan)
    return y


@dataclass(slots=True)
class TrainingStep:
    """One walk-forward step for one symbol: fit on (X, y), predict rows [start, stop)."""

    symbol: str
    trained_at: int  # bar index of the training decision
    X: np.ndarray
    y: np.ndarray
    predict_start: int
    predict_stop: int
    data_hash: str


def _hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@register
class RandomForestStrategy(VectorStrategy):
    name = "random_forest"
    description = "Random Forest direction classifier on engineered features, walk-forward."
    cheap_signals = False
    params = (
        Param("train_window", int, 1000, min=100, max=100_000,
              help="Bars of labelled history each model is fitted on."),
        Param("retrain_every", int, 250, min=10, max=100_000,
              help="Refit the model every this many bars."),
        Param("horizon", int, 1, min=1, max=100, help="Bars ahead whose direction is predicted."),
        Param("n_lags", int, 5, min=1, max=50, help="Lagged returns used as features."),
        Param("min_train_samples", int, 200, min=20, max=100_000,
              help="Do not trade until a model can be fitted on this many labelled bars."),
        Param("n_estimators", int, 50, min=1, max=1000, help="Trees in the forest."),
        Param("max_depth", int, 6, min=1, max=64, help="Maximum depth of each tree."),
        Param("min_samples_leaf", int, 5, min=1, max=10_000, help="Minimum samples per leaf."),
        Param("entry_threshold", float, 0.55, min=0.5, max=1.0,
              help="Go long when P(up) exceeds this (short when P(up) < 1 - this)."),
        Param("exit_threshold", float, 0.5, min=0.0, max=1.0,
              help="Leave a long when P(up) falls below this (a short when above 1 - this)."),
        Param("allow_short", bool, False, help="Also trade predicted declines short."),
        Param("seed", int, 0, min=0, max=2**31 - 1, help="random_state of the forest."),
        Param("n_jobs", int, 1, min=1, max=64, help="Cores used to fit and predict."),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.values["min_train_samples"] > self.values["train_window"]:
            raise ParamError(self.name, "min_train_samples", "must not exceed train_window")
        self._models: dict[tuple[str, int, str], RandomForestClassifier] = {}
        self.last_fit: dict[str, Any] | None = None
        # Live steps set this: only the walk-forward steps that predict the last `live_bars`
        # bars run (bars before those steps get no decision), so only the models a live step
        # needs are fitted, kept and exported.
        self.live_bars: int | None = None

    # -- the walk-forward plan --------------------------------------------------------------

    def walk_forward_plan(self, bars: BarSet, *, from_bar: int = 0) -> list[TrainingStep]:
        """Every (training set, rows to predict) pair the strategy will use, in time order;
        with `from_bar`, only the steps that predict bars at or after it."""
        v = self.values
        h, every, window = v["horizon"], v["retrain_every"], v["train_window"]
        n = bars.n_bars
        steps: list[TrainingStep] = []
        for j, symbol in enumerate(bars.symbols):
            close = bars.close[:, j]
            X_all = feature_matrix(close, v["n_lags"])
            y_all = direction_labels(close, h)
            ok = np.isfinite(X_all).all(axis=1)
            for T in range(every, n, every):
                if min(T + every, n) <= from_bar:
                    continue
                lo, hi = max(0, T - h - window + 1), T - h + 1  # labels known at bar T
                if hi <= lo:
                    continue
                rows = np.arange(lo, hi)[ok[lo:hi] & np.isfinite(y_all[lo:hi])]
                if rows.size < v["min_train_samples"]:
                    continue
                X, y = X_all[rows], y_all[rows].astype(np.int8)
                steps.append(TrainingStep(symbol, T, X, y, T, min(T + every, n),
                                          _hash(X, y)))
        return steps

    def _model(self) -> RandomForestClassifier:
        v = self.values
        return RandomForestClassifier(
            n_estimators=v["n_estimators"], max_depth=v["max_depth"],
            min_samples_leaf=v["min_samples_leaf"], random_state=v["seed"], n_jobs=v["n_jobs"],
        )

    def _fitted(self, step: TrainingStep) -> RandomForestClassifier:
        key = (step.symbol, step.trained_at, step.data_hash)
        model = self._models.get(key)
        if model is None:
            model = self._model().fit(step.X, step.y)
            self._models[key] = model
        return model

    def signals(self, bars: BarSet) -> Signals:
        v = self.values
        n, s = bars.close.shape
        proba = np.full((n, s), np.nan)
        features = {sym: feature_matrix(bars.close[:, j], v["n_lags"])
                    for j, sym in enumerate(bars.symbols)}
        col = {sym: j for j, sym in enumerate(bars.symbols)}
        last: dict[str, Any] | None = None
        used: set[tuple[str, int, str]] = set()
        from_bar = max(0, n - self.live_bars) if self.live_bars else 0
        for step in self.walk_forward_plan(bars, from_bar=from_bar):
            model = self._fitted(step)
            used.add((step.symbol, step.trained_at, step.data_hash))
            X_pred = features[step.symbol][step.predict_start : step.predict_stop]
            ok = np.isfinite(X_pred).all(axis=1)
            p = np.full(X_pred.shape[0], np.nan)
            if ok.any():
                probs = model.predict_proba(X_pred[ok])
                classes = list(model.classes_)
                # A window with only one outcome yields a one-column forest.
                p[ok] = probs[:, classes.index(1)] if 1 in classes else 0.0
            proba[step.predict_start : step.predict_stop, col[step.symbol]] = p
            last = {"symbol": step.symbol, "trained_at_bar": step.trained_at,
                    "trained_at": int(bars.timestamps[step.trained_at]),
                    "training_rows": int(step.y.size), "data_hash": step.data_hash}
        # Keep only models this data can still use, so a live cache does not grow forever.
        self._models = {k: m for k, m in self._models.items() if k in used}
        self.last_fit = last

        with np.errstate(invalid="ignore"):
            sig = Signals(entries=proba > v["entry_threshold"], exits=proba < v["exit_threshold"])
            if v["allow_short"]:
                sig.short_entries = proba < 1.0 - v["entry_threshold"]
                sig.short_exits = proba > 1.0 - v["exit_threshold"]
        sig.info["model_version"] = {
            "model": "sklearn.ensemble.RandomForestClassifier",
            "sklearn_version": sklearn.__version__,
            "features": feature_names(v["n_lags"]),
            "label": f"close[t+{v['horizon']}] > close[t]",
            "train_window": v["train_window"],
            "retrain_every": v["retrain_every"],
            "params": dict(v),
            "data_hash": _hash(bars.timestamps, bars.close),
            "n_models": len(used),
            "latest_fit": last,
        }
        sig.info["probability_up"] = proba
        return sig

    # -- persistence between live steps ------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """The fitted models as JSON-ready data (pickles in base64), with the parameters.

        Only load state that this platform wrote itself: unpickling runs code.
        """
        return {
            "version": STATE_VERSION,
            "strategy": self.name,
            "sklearn_version": sklearn.__version__,
            "params": dict(self.values),
            "models": [
                {"symbol": sym, "trained_at_bar": t, "data_hash": h,
                 "model": base64.b64encode(pickle.dumps(m, protocol=5)).decode("ascii")}
                for (sym, t, h), m in self._models.items()
            ],
        }

    def import_state(self, state: dict[str, Any]) -> None:
        """Restore models from `export_state()`; refuses state from other parameters."""
        if state.get("version") != STATE_VERSION or state.get("strategy") != self.name:
            raise ValueError("not a random_forest model state of this version")
        if state.get("params") != dict(self.values):
            raise ValueError("model state was fitted with different parameters")
        for item in state["models"]:
            model = pickle.loads(base64.b64decode(item["model"]))  # noqa: S301 - own state
            self._models[(item["symbol"], int(item["trained_at_bar"]), item["data_hash"])] = model

    @property
    def n_cached_models(self) -> int:
        return len(self._models)

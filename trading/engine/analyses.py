"""Analyses built on many backtests: optimisation, walk-forward, Monte Carlo, hold-out,
comparison and attribution.

Every analysis that runs more than one backtest takes an `executor`: anything with
`map(fn, iterable)` (default: the builtin `map`; a `concurrent.futures` executor, or the
platform's Celery fan-out). The functions it maps (`run_trial`, `_mc_trades_chunk`,
`_mc_returns_chunk`) are module-level pure functions of picklable arguments, so each child can
run in another process or on another machine and the result is the same as in-process:
randomness is drawn from `numpy.random.SeedSequence(seed).spawn(...)`, one stream per child.

A strategy is given as its registry name or its class plus a parameter dict. Out-of-sample runs
see the in-sample bars for their indicators' warm-up, but may not open a position before the
first out-of-sample bar (see `WarmupMasked`), so their equity is that of the out-of-sample
period alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from scipy import stats

from trading.engine.metrics import compute_metrics, periods_per_year
from trading.engine.types import BarSet, MetricInputs, ParamError, Signals, VectorStrategy


class Executor(Protocol):
    def map(self, fn: Callable[..., Any], iterable: Iterable[Any]) -> Iterable[Any]: ...


class _BuiltinMap:
    def map(self, fn: Callable[..., Any], iterable: Iterable[Any]) -> Iterable[Any]:
        return map(fn, iterable)


BUILTIN = _BuiltinMap()
StrategyRef = str | type


def _executor(executor: Executor | None) -> Executor:
    return executor if executor is not None else BUILTIN


def resolve_strategy(ref: StrategyRef) -> type:
    if isinstance(ref, str):
        from trading.engine.strategies import get_strategy

        return get_strategy(ref)
    return ref


def _slice(bars: BarSet, lo: int, hi: int) -> BarSet:
    return replace(bars, **{k: getattr(bars, k)[lo:hi]
                            for k in ("timestamps", "open", "high", "low", "close", "volume")})


class WarmupMasked(VectorStrategy):
    """Wraps a vectorised strategy so that it opens nothing before bar `start`.

    The bars before `start` only warm up its indicators (they are in the past, so this is not
    look-ahead); exits stay as computed, and target weights are flat before `start`.
    """

    name = "warmup_masked"

    def __init__(self, inner: VectorStrategy, start: int) -> None:  # noqa: D107
        self.inner, self.start = inner, int(start)
        self.name = inner.name  # type: ignore[misc]
        self.values = inner.values
        self.params = inner.params  # type: ignore[misc]

    def signals(self, bars: BarSet) -> Signals:
        sig = self.inner.signals(bars)
        s = self.start
        out = replace(sig, entries=np.array(sig.entries, dtype=bool, copy=True))
        out.entries[:s] = False
        if sig.short_entries is not None:
            out.short_entries = np.array(sig.short_entries, dtype=bool, copy=True)
            out.short_entries[:s] = False
        if sig.target_weight is not None:
            out.target_weight = np.array(sig.target_weight, dtype=np.float64, copy=True)
            out.target_weight[:s] = 0.0
        if sig.limit_price is not None:
            out.limit_price = np.array(sig.limit_price, dtype=np.float64, copy=True)
        return out


# --- one backtest, as a pure child function -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trial:
    """One backtest to run: strategy and parameters on bars[lo:hi], measured from `start`."""

    strategy: StrategyRef
    params: Mapping[str, Any]
    bars: BarSet
    config: Any = None  # a BacktestConfig; None = defaults
    lo: int = 0
    hi: int | None = None
    start: int | None = None  # first measured bar (absolute); None = lo
    keep_equity: bool = False
    tag: Any = None  # passed back untouched (e.g. the walk-forward window)


def segment_metrics(result: Any, closes: np.ndarray, local_start: int, ppy: float,
                    risk_free: float = 0.0, n_params: int = 0) -> dict[str, Any]:
    """Metrics of a backtest result measured from bar `local_start` (equity from the bar
    before it, so the first measured return is that of bar `local_start`)."""
    from trading.engine.orders import F_BAR, F_PRICE, F_QTY
    from trading.engine.portfolio import positions_per_bar

    first = max(local_start - 1, 0)
    eq = result.equity[first:]
    closed = [t for t in result.trades if not t.is_open and t.entry_bar >= local_start]
    n, s = len(result.equity), len(result.symbols)
    fills = result.fills
    notional = np.zeros(n)
    if len(fills):
        np.add.at(notional, fills[:, F_BAR].astype(np.int64), fills[:, F_QTY] * fills[:, F_PRICE])
    return compute_metrics(MetricInputs(
        equity=eq, timestamps=result.timestamps[first:], periods_per_year=ppy,
        trade_pnl=np.array([t.pnl for t in closed]),
        trade_return=np.array([t.return_ for t in closed]),
        exposure=_exposure(result.equity, closes, positions_per_bar(fills, n, s))[first:],
        traded_notional=notional[first:], risk_free_annual=risk_free, n_params=n_params,
    ))


def _exposure(equity: np.ndarray, closes: np.ndarray, pos: np.ndarray) -> np.ndarray:
    # Gross position value over equity at each close (the backtest's own definition).
    gross = np.abs(pos * closes).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(equity != 0, gross / equity, 0.0)


def run_trial(trial: Trial) -> dict[str, Any]:
    """Run one Trial; never raises for bad parameters (the error is in the result)."""
    from trading.engine.backtest import BacktestConfig, run_backtest
    from trading.engine.data import bar_seconds

    cls = resolve_strategy(trial.strategy)
    hi = trial.bars.n_bars if trial.hi is None else trial.hi
    start = trial.lo if trial.start is None else trial.start
    out: dict[str, Any] = {"params": dict(trial.params), "tag": trial.tag, "error": None,
                           "metrics": None}
    try:
        strategy = cls(**trial.params)
    except (ParamError, ValueError) as err:
        out["error"] = str(err)
        return out
    bars = _slice(trial.bars, trial.lo, hi)
    local_start = start - trial.lo
    if local_start > 0:
        strategy = WarmupMasked(strategy, local_start)
    config = trial.config or BacktestConfig()
    try:
        result = run_backtest(bars, strategy, config)
    except ValueError as err:  # e.g. short signals without allow_short: a bad combination
        out["error"] = str(err)
        return out
    ppy = periods_per_year(config.calendar, bar_seconds(bars))
    out["metrics"] = segment_metrics(result, bars.close, local_start, ppy, config.risk_free,
                                     len(getattr(cls, "params", ())))
    out["n_trades"] = out["metrics"]["n_trades"]
    if trial.keep_equity:
        first = max(local_start - 1, 0)
        out["equity"] = result.equity[first:].copy()
        out["timestamps"] = bars.timestamps[first:].copy()
        out["trades"] = [
            {"symbol": t.symbol, "side": t.side, "pnl": t.pnl, "return": t.return_,
             "entry_bar": t.entry_bar + trial.lo,
             "exit_bar": None if t.exit_bar is None else t.exit_bar + trial.lo}
            for t in result.trades if t.entry_bar >= local_start
        ]
    return out


def _score(metrics: Mapping[str, Any] | None, objective: str, maximize: bool) -> float:
    if not metrics:
        return -math.inf
    if objective not in metrics:
        raise KeyError(f"unknown objective metric {objective!r}")
    v = metrics[objective]
    if v is None or not isinstance(v, int | float) or not math.isfinite(v):
        return -math.inf
    return float(v) if maximize else -float(v)


# --- parameter optimisation --------------------------------------------------------------------


def parameter_grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in a stable order."""
    names = list(space)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(list(space[n]) for n in names))]


def random_parameters(space: Mapping[str, Any], n: int, *, seed: int,
                      types: Mapping[str, type] | None = None) -> list[dict[str, Any]]:
    """`n` random draws: a list is sampled uniformly; a (low, high) tuple is a uniform range,
    of integers when the parameter (or both bounds) is an int."""
    rng = np.random.default_rng(seed)
    types = types or {}
    out = []
    for _ in range(n):
        draw: dict[str, Any] = {}
        for name, dom in space.items():
            if isinstance(dom, tuple) and len(dom) == 2:
                lo, hi = dom
                if types.get(name) is int or (isinstance(lo, int) and isinstance(hi, int)):
                    draw[name] = int(rng.integers(lo, hi + 1))
                else:
                    draw[name] = float(rng.uniform(lo, hi))
            else:
                values = list(dom)
                draw[name] = values[int(rng.integers(len(values)))]
        out.append(draw)
    return out


def _candidates(strategy: StrategyRef, space: Mapping[str, Any], method: str, n_samples: int,
                seed: int) -> list[dict[str, Any]]:
    if method == "grid":
        return parameter_grid(space)
    if method == "random":
        types = {p.name: p.type for p in getattr(resolve_strategy(strategy), "params", ())}
        return random_parameters(space, n_samples, seed=seed, types=types)
    raise ValueError(f"unknown search method {method!r} (expected 'grid' or 'random')")


def _best(trials: list[dict[str, Any]], objective: str, maximize: bool) -> dict[str, Any] | None:
    scored = [(t, _score(t["metrics"], objective, maximize)) for t in trials]
    # max() keeps the first of equal scores, so ties go to the earlier candidate (stable).
    best = max(scored, key=lambda ts: ts[1], default=None)
    if best is None or best[1] == -math.inf:
        return None
    return best[0]


def optimize(bars: BarSet, strategy: StrategyRef, space: Mapping[str, Any], *,
             method: str = "grid", n_samples: int = 50, objective: str = "sharpe",
             maximize: bool = True, config: Any = None, seed: int = 0,
             executor: Executor | None = None, lo: int = 0, hi: int | None = None,
             fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Grid or random search of `space` on bars[lo:hi], ranked by the metric `objective`."""
    cands = [{**(fixed or {}), **c} for c in _candidates(strategy, space, method, n_samples, seed)]
    trials = list(_executor(executor).map(
        run_trial, [Trial(strategy, c, bars, config, lo, hi) for c in cands]))
    best = _best(trials, objective, maximize)
    return {
        "method": method, "objective": objective, "maximize": maximize,
        "n_trials": len(trials),
        "best_params": best["params"] if best else None,
        "best_value": best["metrics"][objective] if best else None,
        "best_metrics": best["metrics"] if best else None,
        "trials": [{"params": t["params"], "value": (t["metrics"] or {}).get(objective),
                    "n_trades": t.get("n_trades"), "error": t["error"]} for t in trials],
    }


# --- walk-forward ------------------------------------------------------------------------------


def walk_forward_windows(n_bars: int, *, n_windows: int = 5, train_bars: int | None = None,
                         test_bars: int | None = None, anchored: bool = False
                         ) -> list[tuple[int, int, int, int]]:
    """(train_lo, train_hi, test_lo, test_hi) for each window, test windows back to back.

    Defaults: test windows of n / (n_windows + 3) bars after a training window three times as
    long. Anchored windows always train from bar 0.
    """
    if test_bars is None:
        test_bars = n_bars // (n_windows + 3)
    if train_bars is None:
        train_bars = 3 * test_bars
    if test_bars < 2 or train_bars < 2:
        raise ValueError("not enough bars for the walk-forward windows")
    out: list[tuple[int, int, int, int]] = []
    test_lo = train_bars
    while test_lo + test_bars <= n_bars and len(out) < n_windows:
        train_lo = 0 if anchored else test_lo - train_bars
        out.append((train_lo, test_lo, test_lo, test_lo + test_bars))
        test_lo += test_bars
    if not out:
        raise ValueError("not enough bars for one walk-forward window")
    return out


def _stitch(pieces: list[tuple[np.ndarray, np.ndarray]], initial: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Chain out-of-sample equity pieces: each continues from where the previous ended."""
    eq_parts = [np.array([initial])]
    level = initial
    for eq, _ in pieces:
        growth = eq[1:] / eq[0]
        eq_parts.append(level * growth)
        level = level * growth[-1] if growth.size else level
    # Each piece starts at the bar before its test window, which is the previous piece's last
    # bar: keep the first piece's start, then every measured bar.
    ts_all = np.concatenate([pieces[0][1][:1]] + [ts[1:] for _, ts in pieces])
    return np.concatenate(eq_parts), ts_all


def walk_forward(bars: BarSet, strategy: StrategyRef, space: Mapping[str, Any], *,
                 n_windows: int = 5, train_bars: int | None = None,
                 test_bars: int | None = None, anchored: bool = False, method: str = "grid",
                 n_samples: int = 30, objective: str = "sharpe", maximize: bool = True,
                 config: Any = None, seed: int = 0, executor: Executor | None = None
                 ) -> dict[str, Any]:
    """Optimise in-sample, run the winner out-of-sample, window after window; stitch the
    out-of-sample equity. All in-sample trials of all windows fan out in one map."""
    from trading.engine.backtest import BacktestConfig
    from trading.engine.data import bar_seconds

    ex = _executor(executor)
    config = config or BacktestConfig()
    windows = walk_forward_windows(bars.n_bars, n_windows=n_windows, train_bars=train_bars,
                                   test_bars=test_bars, anchored=anchored)
    cands = _candidates(strategy, space, method, n_samples, seed)
    jobs = [Trial(strategy, c, bars, config, w[0], w[1], tag=i)
            for i, w in enumerate(windows) for c in cands]
    by_window: dict[int, list[dict[str, Any]]] = {}
    for res in ex.map(run_trial, jobs):
        by_window.setdefault(res["tag"], []).append(res)
    oos_jobs: list[Trial] = []
    rows: list[dict[str, Any]] = []
    for i, (trlo, trhi, telo, tehi) in enumerate(windows):
        best = _best(by_window.get(i, []), objective, maximize)
        rows.append({"train": [trlo, trhi], "test": [telo, tehi],
                     "train_start": int(bars.timestamps[trlo]),
                     "test_start": int(bars.timestamps[telo]),
                     "best_params": best["params"] if best else None,
                     "in_sample": best["metrics"][objective] if best else None})
        if best:
            oos_jobs.append(Trial(strategy, best["params"], bars, config, trlo, tehi, start=telo,
                                  keep_equity=True, tag=i))
    pieces = []
    for res in ex.map(run_trial, oos_jobs):
        row = rows[res["tag"]]
        row["out_of_sample"] = res["metrics"][objective]
        row["out_of_sample_metrics"] = res["metrics"]
        pieces.append((res["tag"], res["equity"], res["timestamps"], res["trades"]))
    pieces.sort(key=lambda p: p[0])
    out: dict[str, Any] = {"objective": objective, "anchored": anchored, "windows": rows,
                           "equity": None, "timestamps": None, "metrics": None}
    if pieces:
        eq, ts = _stitch([(p[1], p[2]) for p in pieces], config.cash)
        trades = [t for p in pieces for t in p[3] if t["exit_bar"] is not None]
        ppy = periods_per_year(config.calendar, bar_seconds(bars))
        out["equity"], out["timestamps"] = eq, ts
        out["metrics"] = compute_metrics(MetricInputs(
            eq, ts, ppy, trade_pnl=np.array([t["pnl"] for t in trades]),
            trade_return=np.array([t["return"] for t in trades]),
            risk_free_annual=config.risk_free))
        ins = [float(r["in_sample"]) for r in rows if r["in_sample"] is not None]
        oos = [float(r["out_of_sample"]) for r in rows if r.get("out_of_sample") is not None]
        out["mean_in_sample"] = float(np.mean(ins)) if ins else None
        out["mean_out_of_sample"] = float(np.mean(oos)) if oos else None
    return out


# --- out-of-sample hold-out ----------------------------------------------------------------------


def holdout(bars: BarSet, strategy: StrategyRef, space: Mapping[str, Any], *,
            holdout_fraction: float = 0.3, method: str = "grid", n_samples: int = 30,
            objective: str = "sharpe", maximize: bool = True, config: Any = None, seed: int = 0,
            executor: Executor | None = None) -> dict[str, Any]:
    """Optimise on the first part of the data, then run the winner once on the held-out end."""
    if not 0.05 <= holdout_fraction <= 0.9:
        raise ValueError("holdout_fraction must be between 0.05 and 0.9")
    split = int(round(bars.n_bars * (1 - holdout_fraction)))
    opt = optimize(bars, strategy, space, method=method, n_samples=n_samples,
                   objective=objective, maximize=maximize, config=config, seed=seed,
                   executor=executor, lo=0, hi=split)
    out = {"split_bar": split, "split_time": int(bars.timestamps[split]), "objective": objective,
           "best_params": opt["best_params"], "in_sample": opt["best_value"],
           "in_sample_metrics": opt["best_metrics"], "out_of_sample": None,
           "out_of_sample_metrics": None, "n_trials": opt["n_trials"]}
    if opt["best_params"] is not None:
        (res,) = list(_executor(executor).map(run_trial, [Trial(
            strategy, opt["best_params"], bars, config, 0, bars.n_bars, start=split)]))
        out["out_of_sample_metrics"] = res["metrics"]
        out["out_of_sample"] = res["metrics"][objective]
    return out


# --- comparison ---------------------------------------------------------------------------------


def compare(bars: BarSet, candidates: Sequence[Mapping[str, Any]], *, config: Any = None,
            objective: str = "sharpe", maximize: bool = True,
            executor: Executor | None = None) -> dict[str, Any]:
    """Run several strategies on the same bars and rank them.

    `candidates` are dicts {"strategy": name or class, "params": {...}, "label": "..."}.
    """
    jobs = [Trial(c["strategy"], c.get("params", {}), bars, config, keep_equity=True,
                  tag=c.get("label") or (c["strategy"] if isinstance(c["strategy"], str)
                                         else c["strategy"].name))
            for c in candidates]
    rows = []
    for res in _executor(executor).map(run_trial, jobs):
        rows.append({"label": res["tag"], "params": res["params"], "error": res["error"],
                     "metrics": res["metrics"], "equity": res.get("equity")})
    ranked = sorted(range(len(rows)), key=lambda i: -_score(rows[i]["metrics"], objective,
                                                             maximize))
    for rank, i in enumerate(ranked, start=1):
        rows[i]["rank"] = rank
    return {"objective": objective, "rows": rows}


# --- Monte Carlo ---------------------------------------------------------------------------------


def _max_drawdowns(paths: np.ndarray) -> np.ndarray:
    """Max drawdown of each row of equity paths (that start at their first column)."""
    peak = np.maximum.accumulate(paths, axis=1)
    return (paths / peak - 1.0).min(axis=1)


def _mc_trades_chunk(args: tuple[np.ndarray, float, int, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap trade P&L sequences: (final returns, max drawdowns) of `n` simulations."""
    pnl, initial, n, seed = args
    rng = np.random.default_rng(seed)
    finals, dds = np.empty(n), np.empty(n)
    batch = max(1, 2_000_000 // max(pnl.size, 1))
    for a in range(0, n, batch):
        b = min(n, a + batch)
        draws = pnl[rng.integers(0, pnl.size, (b - a, pnl.size))]
        paths = initial + np.concatenate([np.zeros((b - a, 1)), np.cumsum(draws, axis=1)], 1)
        finals[a:b] = paths[:, -1] / initial - 1.0
        # Equity cannot recover from zero: a path that hits it is ruined (drawdown -100 %).
        paths = np.maximum(paths, 0.0)
        dds[a:b] = _max_drawdowns(paths)
    return finals, dds


def block_bootstrap_indices(rng: np.random.Generator, n: int, block: int, n_sims: int
                            ) -> np.ndarray:
    """Moving-block bootstrap: rows of n indices made of random blocks of `block` periods."""
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, (n_sims, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_sims, -1)
    return idx[:, :n]


def _mc_returns_chunk(args: tuple[np.ndarray, int, int, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Block-bootstrap per-period returns: (final returns, max drawdowns) of `n` simulations."""
    returns, block, n, seed = args
    rng = np.random.default_rng(seed)
    finals, dds = np.empty(n), np.empty(n)
    batch = max(1, 2_000_000 // max(returns.size, 1))
    for a in range(0, n, batch):
        b = min(n, a + batch)
        idx = block_bootstrap_indices(rng, returns.size, block, b - a)
        paths = np.cumprod(1.0 + returns[idx], axis=1)
        paths = np.concatenate([np.ones((b - a, 1)), paths], axis=1)
        finals[a:b] = paths[:, -1] - 1.0
        dds[a:b] = _max_drawdowns(paths)
    return finals, dds


def _summary(values: np.ndarray, actual: float) -> dict[str, Any]:
    return {
        "mean": float(values.mean()),
        "p5": float(np.percentile(values, 5)),
        "p25": float(np.percentile(values, 25)),
        "p50": float(np.percentile(values, 50)),
        "p75": float(np.percentile(values, 75)),
        "p95": float(np.percentile(values, 95)),
        "actual": float(actual),
        # Share of simulations at or below the actual value, in percent.
        "actual_percentile": float(stats.percentileofscore(values, actual, kind="weak")),
    }


def monte_carlo(*, equity: np.ndarray | None = None, trade_pnl: np.ndarray | None = None,
                method: str = "returns", n_sims: int = 1000, block: int | None = None,
                seed: int = 0, n_chunks: int = 8, executor: Executor | None = None,
                keep_samples: bool = False) -> dict[str, Any]:
    """Distributions of final return and max drawdown under resampling, with the actual run's
    percentile in each.

    method "trades": bootstrap (with replacement) of closed-trade P&L from the starting equity
    `equity[0]`; "returns": moving-block bootstrap of per-period returns (block length `block`,
    default about n ** (1/3)), which keeps short-range autocorrelation.
    """
    if equity is None or len(equity) < 2:
        raise ValueError("monte_carlo needs the equity curve of the run")
    eq = np.asarray(equity, dtype=np.float64)
    initial = float(eq[0])
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    sizes = [n_sims // n_chunks + (1 if i < n_sims % n_chunks else 0) for i in range(n_chunks)]
    if method == "trades":
        pnl = np.asarray(trade_pnl if trade_pnl is not None else [], dtype=np.float64)
        if pnl.size < 2:
            raise ValueError("the trades Monte Carlo needs at least 2 closed trades")
        jobs = [(pnl, initial, k, s) for k, s in zip(sizes, seeds, strict=True) if k]
        fn: Callable[..., Any] = _mc_trades_chunk
        path = initial + np.concatenate([[0.0], np.cumsum(pnl)])
        actual_final = path[-1] / initial - 1.0
        actual_dd = float(_max_drawdowns(np.maximum(path, 0.0)[None, :])[0])
        block_used = None
    elif method == "returns":
        r = eq[1:] / eq[:-1] - 1.0
        block_used = int(block or max(1, round(r.size ** (1 / 3))))
        jobs = [(r, block_used, k, s) for k, s in zip(sizes, seeds, strict=True) if k]
        fn = _mc_returns_chunk
        # The actual path built exactly like the simulated ones, so equal paths compare equal.
        path = np.concatenate([[1.0], np.cumprod(1.0 + r)])
        actual_final = path[-1] - 1.0
        actual_dd = float(_max_drawdowns(path[None, :])[0])
    else:
        raise ValueError(f"unknown Monte Carlo method {method!r} (expected 'trades' or 'returns')")
    parts = list(_executor(executor).map(fn, jobs))
    finals = np.concatenate([p[0] for p in parts])
    dds = np.concatenate([p[1] for p in parts])
    out = {"method": method, "n_sims": int(finals.size), "block": block_used, "seed": seed,
           "final_return": _summary(finals, actual_final),
           "max_drawdown": _summary(dds, actual_dd),
           "probability_of_loss": float(np.mean(finals < 0))}
    if keep_samples:
        out["samples"] = {"final_return": finals, "max_drawdown": dds}
    return out


# --- attribution ----------------------------------------------------------------------------------


def attribution(result: Any) -> dict[str, Any]:
    """P&L of a backtest by symbol, by direction and by calendar month (of the trade's exit).

    Closed trades count realised P&L; trades still open are listed under "open" with their
    mark-to-market P&L. Month totals are UTC calendar months.
    """
    ts = np.asarray(result.timestamps)

    def bucket() -> dict[str, Any]:
        return {"pnl": 0.0, "n_trades": 0, "wins": 0}

    by_symbol: dict[str, dict[str, Any]] = {}
    by_side: dict[str, dict[str, Any]] = {"long": bucket(), "short": bucket()}
    by_month: dict[str, dict[str, Any]] = {}
    open_trades = bucket()
    for tr in result.trades:
        side = "long" if tr.side > 0 else "short"
        targets = [by_symbol.setdefault(tr.symbol, bucket()), by_side[side]]
        if tr.is_open:
            targets.append(open_trades)
        else:
            month = str(np.datetime64(int(ts[tr.exit_bar]), "ns").astype("datetime64[M]"))
            targets.append(by_month.setdefault(month, bucket()))
        for b in targets:
            b["pnl"] += float(tr.pnl)
            b["n_trades"] += 1
            b["wins"] += int(tr.pnl > 0)
    total = float(sum(b["pnl"] for b in by_symbol.values()))
    for group in (by_symbol, by_side, by_month, {"open": open_trades}):
        for b in group.values():
            b["win_rate"] = b["wins"] / b["n_trades"] if b["n_trades"] else None
            b["share_of_pnl"] = b["pnl"] / total if total else None
    return {"total_pnl": total, "by_symbol": by_symbol, "by_side": by_side,
            "by_month": dict(sorted(by_month.items())), "open": open_trades}


__all__ = [
    "BUILTIN", "Trial", "WarmupMasked", "attribution", "block_bootstrap_indices", "compare",
    "holdout", "monte_carlo", "optimize", "parameter_grid", "random_parameters", "run_trial",
    "segment_metrics", "walk_forward", "walk_forward_windows",
]

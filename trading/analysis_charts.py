"""Chart data of finished analyses, computed from their stored results (plain numpy, no Django).

* sweep — the objective over every pair of swept parameters as a grid (cells that several
  parameter sets share, because a third parameter varies too, show the best of them);
* walk-forward — the out-of-sample equity of the windows chained into one curve, with the time
  each window starts;
* Monte Carlo — percentile bands of the simulated equity paths over time (a fan chart) and
  histograms of the final returns and maximum drawdowns.

The Monte Carlo children store only the final return and drawdown of each path, not the paths.
`monte_carlo_fan` draws the paths again with the same seeds, chunk sizes and batch order as the
engine's chunk functions (`trading.engine.analyses._mc_returns_chunk` / `_mc_trades_chunk`), so
the fan's paths are the analysis' own. The aggregate step computes it once, in the worker, from
the first `FAN_MAX_PATHS` paths (in chunk order): with at most that many paths the fan's last
column is exactly the distribution the analysis stored, its percentiles equal to the
aggregate's final-return percentiles (a test pins this); with more, the bands are those of
that sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from trading.engine import analyses as engine_analyses

PERCENTILES = (5, 25, 50, 75, 95)
FAN_MAX_COLUMNS = 300  # time points of the fan: plenty for a screen
FAN_MAX_PATHS = 10_000  # paths drawn again for the fan (percentile bands of a display)
FAN_VALUE_BUDGET = 4_000_000  # paths × kept columns held in memory at once (32 MB of float64)
HISTOGRAM_BINS = 40


# --- sweep ---------------------------------------------------------------------------------------

def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (2, str(value))


def swept_parameters(trials: Sequence[Mapping[str, Any]]) -> list[str]:
    """Parameters that take more than one value across the trials, in the spec's order."""
    names: list[str] = []
    for trial in trials:
        for name in trial.get("params") or {}:
            if name not in names:
                names.append(name)
    return [n for n in names
            if len({repr((t.get("params") or {}).get(n)) for t in trials}) > 1]


def _better(a: float | None, b: float | None, maximize: bool) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if maximize else min(a, b)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def sweep_grid(trials: Sequence[Mapping[str, Any]], x: str, y: str, *, maximize: bool
               ) -> dict[str, Any]:
    """The objective of each (x, y) pair of values: rows are y values, columns x values, a cell
    with no finished trial is None, and a cell several trials share holds the best of them."""
    xs = sorted({t["params"][x] for t in trials if x in t["params"]}, key=_sort_key)
    ys = sorted({t["params"][y] for t in trials if y in t["params"]}, key=_sort_key)
    col = {repr(v): i for i, v in enumerate(xs)}
    row = {repr(v): i for i, v in enumerate(ys)}
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for t in trials:
        params = t["params"]
        if x not in params or y not in params:
            continue
        i, j = row[repr(params[y])], col[repr(params[x])]
        z[i][j] = _better(z[i][j], _finite(t.get("value")), maximize)
    return {"x": x, "y": y, "xs": xs, "ys": ys, "z": z}


def sweep_line(trials: Sequence[Mapping[str, Any]], x: str, *, maximize: bool
               ) -> dict[str, Any]:
    """The objective by the values of one parameter (the best where several trials share one)."""
    xs = sorted({t["params"][x] for t in trials if x in t["params"]}, key=_sort_key)
    pos = {repr(v): i for i, v in enumerate(xs)}
    y: list[float | None] = [None] * len(xs)
    for t in trials:
        if x in t["params"]:
            i = pos[repr(t["params"][x])]
            y[i] = _better(y[i], _finite(t.get("value")), maximize)
    return {"x": x, "xs": xs, "y": y}


def sweep_grids(trials: Sequence[Mapping[str, Any]], *, maximize: bool) -> list[dict[str, Any]]:
    """`sweep_grid` for every pair of swept parameters (the page lets people choose one)."""
    names = swept_parameters(trials)
    return [sweep_grid(trials, x, y, maximize=maximize)
            for x, y in itertools.combinations(names, 2)]


# --- walk-forward ------------------------------------------------------------------------------

def walk_forward_curve(windows: Iterable[Mapping[str, Any]], initial: float
                       ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(stitched equity, timestamps ns, start time of each window's test period in ns) of the
    windows that ran out of sample, chained as the aggregate chains them."""
    pieces = [(np.asarray(w["equity"], dtype=np.float64),
               np.asarray(w["timestamps"], dtype=np.int64))
              for w in windows if w.get("equity")]
    if not pieces:
        return np.empty(0), np.empty(0, dtype=np.int64), []
    equity, ts = engine_analyses._stitch(pieces, initial)
    # Each piece starts at the bar before its test window: the boundary is that bar's time.
    return equity, ts, [int(p[1][0]) for p in pieces]


# --- Monte Carlo ---------------------------------------------------------------------------------

def _columns(n_points: int, n_sims: int) -> np.ndarray:
    k = min(n_points, FAN_MAX_COLUMNS, max(16, FAN_VALUE_BUDGET // max(n_sims, 1)))
    return np.unique(np.linspace(0, n_points - 1, max(k, 2)).round().astype(np.int64))


def monte_carlo_fan(*, equity: np.ndarray, trade_pnl: np.ndarray, method: str, n_sims: int,
                    n_chunks: int, seed: int, block: int | None = None,
                    max_paths: int | None = None) -> dict[str, Any]:
    """Percentile bands (5, 25, 50, 75, 95) of the simulated equity at evenly spaced points,
    over the first `max_paths` (default `FAN_MAX_PATHS`) paths of the analysis, in chunk
    order.

    `points` are bar numbers (returns method: the run's bars) or trade numbers (trades method);
    the bands are in the run's currency, starting from its first equity value; `paths` is the
    number of paths they summarise.
    """
    equity = np.asarray(equity, dtype=np.float64)
    initial = float(equity[0])
    seeds = np.random.SeedSequence(int(seed)).spawn(n_chunks)
    sizes = [n_sims // n_chunks + (1 if i < n_sims % n_chunks else 0) for i in range(n_chunks)]
    wanted = min(n_sims, FAN_MAX_PATHS if max_paths is None else max_paths)
    if method == "trades":
        pnl = np.asarray(trade_pnl, dtype=np.float64)
        if pnl.size < 2:
            raise ValueError("the trades Monte Carlo needs at least 2 closed trades")
        n_points, step_size = pnl.size + 1, pnl.size
    else:
        returns = equity[1:] / equity[:-1] - 1.0
        block = int(block or max(1, round(returns.size ** (1 / 3))))
        n_points, step_size = returns.size + 1, returns.size
    cols = _columns(n_points, wanted)
    kept = np.empty((wanted, cols.size))
    row = 0
    for size, chunk_seed in zip(sizes, seeds, strict=True):
        if row >= wanted:
            break
        rng = np.random.default_rng(chunk_seed)
        batch = max(1, 2_000_000 // max(step_size, 1))  # the engine's batches: same draws
        for a in range(0, size, batch):
            if row >= wanted:
                break
            b = min(size, a + batch, a + wanted - row)
            if method == "trades":
                draws = pnl[rng.integers(0, pnl.size, (b - a, pnl.size))]
                paths = initial + np.concatenate([np.zeros((b - a, 1)),
                                                  np.cumsum(draws, axis=1)], 1)
            else:
                idx = engine_analyses.block_bootstrap_indices(rng, returns.size, block, b - a)
                paths = np.cumprod(1.0 + returns[idx], axis=1)
                paths = initial * np.concatenate([np.ones((b - a, 1)), paths], axis=1)
            kept[row:row + (b - a)] = paths[:, cols]
            row += b - a
    bands = np.percentile(kept[:row], PERCENTILES, axis=0)
    return {"points": cols.tolist(), "paths": row,
            "bands": {f"p{p}": bands[i].tolist() for i, p in enumerate(PERCENTILES)}}


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
    """Bin centres, counts and bin width of `values` (finite ones only)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"x": [], "y": [], "width": 0.0}
    counts, edges = np.histogram(values, bins=bins)
    return {"x": ((edges[:-1] + edges[1:]) / 2).tolist(), "y": counts.tolist(),
            "width": float(edges[1] - edges[0])}

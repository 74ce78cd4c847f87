"""Robustness checks attached to every run: is the result more than luck and over-fitting?

Three questions, each answered with numbers and plain-language warnings:

* Monte Carlo: where does the actual equity curve sit among resampled ones (final return and
  max drawdown percentiles, block bootstrap of returns and bootstrap of trades)?
* Degrees of freedom: how many trades per tunable parameter back the result?
* Significance: is the mean per-period return distinguishable from zero (one-sample t-test)?
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from trading.engine.analyses import Executor, monte_carlo

# Fewer closed trades than this per tunable parameter and the fit may be noise.
MIN_TRADES_PER_PARAM = 10
SIGNIFICANCE_LEVEL = 0.05


def mean_return_significance(returns: np.ndarray) -> dict[str, Any]:
    """One-sample t-test of mean per-period return = 0 (scipy.stats.ttest_1samp).

    t = mean / (std(ddof=1) / sqrt(n)); `p_value` is two-sided, `p_value_positive` tests
    mean > 0 (one-sided).
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    out: dict[str, Any] = {"n": int(r.size), "mean": float(r.mean()) if r.size else None,
                           "t_stat": None, "p_value": None, "p_value_positive": None,
                           "significant": False}
    if r.size < 3 or np.std(r) == 0:
        return out
    res = stats.ttest_1samp(r, 0.0)
    t, p = float(res.statistic), float(res.pvalue)
    out.update(t_stat=t, p_value=p, p_value_positive=float(stats.t.sf(t, r.size - 1)),
               significant=p < SIGNIFICANCE_LEVEL)
    return out


def parameters_vs_trades(n_params: int, n_trades: int,
                         min_trades_per_param: int = MIN_TRADES_PER_PARAM) -> dict[str, Any]:
    """Trades per tunable parameter, with a warning below `min_trades_per_param`."""
    per = n_trades / n_params if n_params else None
    warn = None
    if n_params and n_trades < min_trades_per_param * n_params:
        warn = (f"{n_trades} trades for {n_params} parameters: fewer than "
                f"{min_trades_per_param} trades per parameter, the result may be over-fitted")
    return {"n_params": n_params, "n_trades": n_trades, "trades_per_param": per,
            "min_trades_per_param": min_trades_per_param, "warning": warn}


def robustness_report(equity: np.ndarray, *, trade_pnl: np.ndarray | None = None,
                      n_params: int = 0, n_sims: int = 500, seed: int = 0,
                      block: int | None = None, executor: Executor | None = None
                      ) -> dict[str, Any]:
    """All checks for one run; `warnings` lists what a reader should be told."""
    eq = np.asarray(equity, dtype=np.float64)
    pnl = np.asarray(trade_pnl if trade_pnl is not None else [], dtype=np.float64)
    returns = eq[1:] / eq[:-1] - 1.0 if eq.size >= 2 else np.empty(0)
    warnings: list[str] = []
    out: dict[str, Any] = {"significance": mean_return_significance(returns),
                           "parameters_vs_trades": parameters_vs_trades(n_params, int(pnl.size)),
                           "monte_carlo_returns": None, "monte_carlo_trades": None}
    if returns.size >= 10:
        out["monte_carlo_returns"] = monte_carlo(equity=eq, method="returns", n_sims=n_sims,
                                                 block=block, seed=seed, executor=executor)
        pct = out["monte_carlo_returns"]["max_drawdown"]["actual_percentile"]
        if pct <= 10:
            warnings.append(f"the actual max drawdown is worse than {100 - pct:.0f}% of "
                            "resampled paths: the run may have been unlucky, or the strategy "
                            "has an exposure the resampling breaks up")
    if pnl.size >= 5:
        out["monte_carlo_trades"] = monte_carlo(equity=eq, trade_pnl=pnl, method="trades",
                                                n_sims=n_sims, seed=seed, executor=executor)
        ruin = out["monte_carlo_trades"]["max_drawdown"]["p5"]
        if ruin <= -0.5:
            warnings.append(f"1 in 20 reshuffled trade sequences draws down {-ruin:.0%} or more")
    sig = out["significance"]
    if sig["p_value"] is not None and not sig["significant"]:
        warnings.append(f"mean return is not significantly different from zero "
                        f"(t = {sig['t_stat']:.2f}, p = {sig['p_value']:.2f})")
    if out["parameters_vs_trades"]["warning"]:
        warnings.append(out["parameters_vs_trades"]["warning"])
    if pnl.size < 30:
        warnings.append(f"only {pnl.size} closed trades: too few for reliable statistics")
    out["warnings"] = warnings
    out["passed"] = not warnings
    for key in ("monte_carlo_returns", "monte_carlo_trades"):
        if out[key] is not None and not math.isfinite(out[key]["final_return"]["mean"]):
            out[key] = None
    return out

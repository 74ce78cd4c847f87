"""Performance metrics: the one implementation the whole platform uses.

Backtests, live accounts, the PDF reports and the portal all compute their figures here, from a
`MetricInputs` (an equity curve plus optional trades, exposure, turnover and a benchmark).
Conventions follow empyrical/quantstats and are written out in docs/engine-quant.md:

* returns are simple per-period returns of the equity curve, ``r_t = E_t / E_{t-1} - 1``;
* standard deviations are sample standard deviations (``ddof=1``);
* the annual risk-free rate is converted per period as ``(1 + rf) ** (1 / ppy) - 1``;
* the Sortino downside deviation is taken over ALL periods,
  ``sqrt(mean(min(r - target, 0) ** 2))`` (empyrical's ``downside_risk``);
* CAGR uses ``years = n_periods / ppy``; Calmar is ``CAGR / |max drawdown|``.

Anything that cannot be computed (no trades, a zero standard deviation, ...) is ``None`` rather
than a made-up number, and annualised figures from less than about three months of data are
returned with ``annualised_meaningful = False`` and a warning.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from trading.engine.types import MetricInputs

NS_PER_DAY = 86_400 * 10**9
EXCHANGE_DAYS = 252
EXCHANGE_SESSION_SECONDS = 6.5 * 3600
# Annualised ratios from less than this many years of data are flagged as not meaningful.
MIN_MEANINGFUL_YEARS = 0.25

Number = float | int | None
# A per-period standard or downside deviation below this is floating-point noise from dividing
# equal equity values, not risk: ratios over it would be astronomically large and meaningless.
NUMERICAL_ZERO = 1e-12


def periods_per_year(calendar: str, bar_seconds: float) -> float:
    """How many bars of `bar_seconds` make a year on a calendar.

    "exchange": 252 trading days of 6.5 h. Intraday bars count session time only (1-minute bars:
    252 * 390); daily to sub-weekly bars count trading days (daily: 252); weekly and longer bars
    count weeks of 52 a year (weekly: 52, 4-weekly: 13).
    "24/7" (crypto): 365 days of 24 h of continuous trading (daily: 365, hourly: 8760).
    """
    if not bar_seconds or bar_seconds <= 0 or not math.isfinite(bar_seconds):
        raise ValueError(f"bar_seconds must be a positive number, got {bar_seconds!r}")
    if calendar == "24/7":
        return 365 * 86_400 / bar_seconds
    if calendar != "exchange":
        raise ValueError(f"unknown calendar {calendar!r} (expected 'exchange' or '24/7')")
    if bar_seconds < 86_400:
        # A bar longer than the session (e.g. 8 h) still means one bar per trading day at most.
        return EXCHANGE_DAYS * EXCHANGE_SESSION_SECONDS / min(bar_seconds, EXCHANGE_SESSION_SECONDS)
    if bar_seconds < 7 * 86_400:
        return EXCHANGE_DAYS * 86_400 / bar_seconds
    return 52 * 7 * 86_400 / bar_seconds


def simple_returns(equity: np.ndarray) -> np.ndarray:
    """Per-period simple returns of an equity curve (length n - 1)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size < 2:
        return np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return eq[1:] / eq[:-1] - 1.0


def risk_free_per_period(risk_free_annual: float, ppy: float) -> float:
    """Annual risk-free rate compounded down to one period: (1 + rf) ** (1 / ppy) - 1."""
    return (1.0 + risk_free_annual) ** (1.0 / ppy) - 1.0


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Fractional drawdown at each bar from the running peak: E_t / max(E_0..E_t) - 1 (<= 0)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return np.empty(0)
    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return eq / peak - 1.0


def max_drawdown_info(equity: np.ndarray, timestamps: np.ndarray | None = None) -> dict[str, Any]:
    """The deepest drawdown and the longest time spent under a previous peak.

    Duration is counted from the bar of the peak to the bar that first regains it (or the last
    bar when the curve never recovers), in bars and, given timestamps, in calendar days.
    """
    eq = np.asarray(equity, dtype=np.float64)
    out: dict[str, Any] = {
        "max_drawdown": 0.0,
        "max_drawdown_peak_bar": None,
        "max_drawdown_trough_bar": None,
        "max_drawdown_duration_bars": 0,
        "max_drawdown_duration_days": 0.0,
        "max_drawdown_recovered": True,
    }
    if eq.size == 0:
        return out
    dd = drawdown_series(eq)
    trough = int(np.argmin(dd))
    out["max_drawdown"] = float(dd[trough])
    if dd[trough] < 0:
        out["max_drawdown_trough_bar"] = trough
        peak = int(np.argmax(eq[: trough + 1]))
        out["max_drawdown_peak_bar"] = peak
        out["max_drawdown_recovered"] = bool(np.any(eq[trough:] >= eq[peak]))
    # Longest underwater stretch: runs of dd < 0, each starting one bar after its peak.
    under = dd < 0
    if under.any():
        padded = np.concatenate(([False], under, [False]))
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        starts, ends = edges[::2], edges[1::2]  # run is [start, end)
        # The peak is the bar before the run; recovery is the bar `end` (if it exists).
        peak_bars = starts - 1
        recovery_bars = np.minimum(ends, eq.size - 1)
        lengths = recovery_bars - peak_bars
        k = int(np.argmax(lengths))
        out["max_drawdown_duration_bars"] = int(lengths[k])
        if timestamps is not None and len(timestamps) == eq.size:
            ts = np.asarray(timestamps, dtype=np.int64)
            days = (ts[recovery_bars[k]] - ts[peak_bars[k]]) / NS_PER_DAY
            out["max_drawdown_duration_days"] = float(days)
    return out


def drawdown_periods(equity: np.ndarray, timestamps: np.ndarray | None = None,
                     top: int = 5) -> list[dict[str, Any]]:
    """The `top` deepest distinct drawdowns, deepest first.

    A drawdown runs from a peak to the bar that regains it (`recovery_bar` None if it never
    does); `depth` is the trough's fractional loss from the peak, `duration_bars` counts from
    the peak to the recovery (or the last bar).
    """
    eq = np.asarray(equity, dtype=np.float64)
    dd = drawdown_series(eq)
    under = dd < 0
    if not under.any():
        return []
    padded = np.concatenate(([False], under, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    periods = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        trough = int(start + np.argmin(dd[start:end]))
        peak, recovered = int(start - 1), bool(end < eq.size)
        last = int(end) if recovered else eq.size - 1
        row: dict[str, Any] = {
            "peak_bar": peak, "trough_bar": trough, "recovery_bar": int(end) if recovered else None,
            "depth": float(dd[trough]), "duration_bars": last - peak,
        }
        if timestamps is not None and len(timestamps) == eq.size:
            ts = np.asarray(timestamps, dtype=np.int64)
            row.update(peak_time=int(ts[peak]), trough_time=int(ts[trough]),
                       recovery_time=int(ts[end]) if recovered else None,
                       duration_days=float((ts[last] - ts[peak]) / NS_PER_DAY))
        periods.append(row)
    periods.sort(key=lambda r: r["depth"])
    return periods[:top]


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _ratio(num: float, den: float) -> float | None:
    if den == 0 or not math.isfinite(den) or not math.isfinite(num):
        return None
    return float(num / den)


def sharpe_ratio(returns: np.ndarray, ppy: float, rf_period: float = 0.0) -> float | None:
    """Annualised Sharpe: mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)."""
    r = np.asarray(returns, dtype=np.float64) - rf_period
    if r.size < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd <= NUMERICAL_ZERO or not math.isfinite(sd):
        return None
    return float(np.mean(r) / sd * math.sqrt(ppy))


def downside_deviation(returns: np.ndarray, target: float = 0.0) -> float | None:
    """Per-period downside deviation over all periods: sqrt(mean(min(r - target, 0)^2))."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        return None
    return float(np.sqrt(np.mean(np.minimum(r - target, 0.0) ** 2)))


def sortino_ratio(returns: np.ndarray, ppy: float, target: float = 0.0) -> float | None:
    """Annualised Sortino: mean(r - target) * ppy / (downside deviation * sqrt(ppy))."""
    r = np.asarray(returns, dtype=np.float64)
    dd = downside_deviation(r, target)
    if dd is None or dd <= NUMERICAL_ZERO:
        return None
    return float(np.mean(r - target) * ppy / (dd * math.sqrt(ppy)))


def cagr(total_return: float, n_periods: int, ppy: float) -> float | None:
    """Compound annual growth rate with years = n_periods / ppy (empyrical's convention)."""
    if n_periods <= 0 or total_return <= -1:
        return None if n_periods <= 0 else -1.0
    years = n_periods / ppy
    # A short intraday run annualised can exceed the float range; that is "not meaningful",
    # reported as None (the caller already flags short samples), never an OverflowError.
    try:
        value = math.exp(math.log1p(total_return) / years) - 1.0
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def probabilistic_sharpe_ratio(returns: np.ndarray, benchmark_sharpe: float = 0.0) -> float | None:
    """Probability that the true per-period Sharpe exceeds `benchmark_sharpe` (Bailey & López de
    Prado, 2012): Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2)), with
    SR the non-annualised Sharpe, g3 the skewness and g4 the (non-excess) kurtosis of returns.
    """
    r = np.asarray(returns, dtype=np.float64)
    n = r.size
    if n < 3:
        return None
    sd = float(np.std(r, ddof=1))
    if sd <= NUMERICAL_ZERO:
        return None
    sr = float(np.mean(r)) / sd
    g3 = float(stats.skew(r, bias=True))
    g4 = float(stats.kurtosis(r, fisher=False, bias=True))
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    if not math.isfinite(var) or var <= 0:
        return None
    return float(stats.norm.cdf((sr - benchmark_sharpe) * math.sqrt(n - 1) / math.sqrt(var)))


def alpha_beta(
    returns: np.ndarray, benchmark_returns: np.ndarray, ppy: float, rf_period: float = 0.0
) -> tuple[float | None, float | None]:
    """CAPM alpha (annualised, compounded like empyrical) and beta against a benchmark.

    beta = cov(r - rf, b - rf) / var(b - rf); alpha = (1 + mean((r - rf) - beta (b - rf)))^ppy - 1.
    """
    r = np.asarray(returns, dtype=np.float64) - rf_period
    b = np.asarray(benchmark_returns, dtype=np.float64) - rf_period
    ok = np.isfinite(r) & np.isfinite(b)
    r, b = r[ok], b[ok]
    if r.size < 2:
        return None, None
    var_b = float(np.var(b, ddof=1))
    if var_b <= NUMERICAL_ZERO**2:
        return None, None
    beta = float(np.cov(r, b, ddof=1)[0, 1] / var_b)
    alpha = float((1.0 + np.mean(r - beta * b)) ** ppy - 1.0)
    return _finite(alpha), beta


def compute_metrics(inputs: MetricInputs) -> dict[str, Number | bool | list[str]]:
    """All headline metrics of one run, as a flat JSON-ready dict (None = not computable)."""
    eq = np.asarray(inputs.equity, dtype=np.float64)
    ppy = float(inputs.periods_per_year)
    if ppy <= 0:
        raise ValueError("periods_per_year must be positive")
    warnings: list[str] = []
    r = simple_returns(eq)
    n_periods = int(r.size)
    years = n_periods / ppy
    rf = risk_free_per_period(inputs.risk_free_annual, ppy)
    m: dict[str, Any] = {
        "n_bars": int(eq.size),
        "n_periods": n_periods,
        "years": years,
        "periods_per_year": ppy,
        "risk_free_annual": float(inputs.risk_free_annual),
        "start_equity": _finite(eq[0]) if eq.size else None,
        "end_equity": _finite(eq[-1]) if eq.size else None,
    }

    total = float(eq[-1] / eq[0] - 1.0) if eq.size >= 2 and eq[0] != 0 else 0.0
    m["total_return"] = total
    m["cagr"] = cagr(total, n_periods, ppy) if eq.size >= 2 else None
    m["volatility_annual"] = (
        float(np.std(r, ddof=1) * math.sqrt(ppy)) if n_periods >= 2 else None
    )
    m["sharpe"] = sharpe_ratio(r, ppy, rf)
    m["sortino"] = sortino_ratio(r, ppy, rf)
    m["downside_deviation_annual"] = (
        dd * math.sqrt(ppy) if (dd := downside_deviation(r, rf)) is not None else None
    )
    m.update(max_drawdown_info(eq, inputs.timestamps))
    m["calmar"] = (
        _ratio(m["cagr"], abs(m["max_drawdown"])) if m["cagr"] is not None else None
    )
    m["probabilistic_sharpe"] = probabilistic_sharpe_ratio(r)
    if n_periods >= 3 and np.std(r) > NUMERICAL_ZERO:
        m["skew"] = float(stats.skew(r, bias=True))
        m["kurtosis_excess"] = float(stats.kurtosis(r, fisher=True, bias=True))
    else:
        m["skew"] = m["kurtosis_excess"] = None
    m["best_period"] = float(r.max()) if n_periods else None
    m["worst_period"] = float(r.min()) if n_periods else None

    # Per period (quantstats: zero-return periods are neither wins nor losses).
    nonzero = r[r != 0]
    m["win_rate_periods"] = float(np.mean(nonzero > 0)) if nonzero.size else None
    m["profit_factor_periods"] = _ratio(float(r[r > 0].sum()), abs(float(r[r < 0].sum())))

    # Per closed trade.
    pnl = np.asarray(inputs.trade_pnl, dtype=np.float64)
    tr = np.asarray(inputs.trade_return, dtype=np.float64)
    m["n_trades"] = int(pnl.size)
    m["win_rate_trades"] = float(np.mean(pnl > 0)) if pnl.size else None
    m["profit_factor_trades"] = _ratio(float(pnl[pnl > 0].sum()), abs(float(pnl[pnl < 0].sum())))
    m["expectancy"] = float(pnl.mean()) if pnl.size else None
    m["expectancy_return"] = float(tr.mean()) if tr.size else None
    m["avg_win"] = float(pnl[pnl > 0].mean()) if (pnl > 0).any() else None
    m["avg_loss"] = float(pnl[pnl < 0].mean()) if (pnl < 0).any() else None

    if inputs.exposure is not None and len(inputs.exposure):
        ex = np.abs(np.asarray(inputs.exposure, dtype=np.float64))
        m["exposure_time"] = float(np.mean(ex > 0))
        m["exposure_avg"] = float(np.mean(ex))
    else:
        m["exposure_time"] = m["exposure_avg"] = None
    if inputs.traded_notional is not None and eq.size:
        traded = float(np.nansum(inputs.traded_notional))
        mean_eq = float(np.mean(eq))
        m["turnover"] = _ratio(traded, mean_eq)
        m["turnover_annual"] = (
            m["turnover"] / years if m["turnover"] is not None and years > 0 else None
        )
    else:
        m["turnover"] = m["turnover_annual"] = None

    if inputs.benchmark_equity is not None:
        b = simple_returns(np.asarray(inputs.benchmark_equity, dtype=np.float64))
        if b.size != r.size:
            raise ValueError("benchmark_equity must be aligned with equity (same length)")
        m["alpha"], m["beta"] = alpha_beta(r, b, ppy, rf)
        bench = inputs.benchmark_equity
        m["benchmark_total_return"] = float(bench[-1] / bench[0] - 1.0) if b.size else None
    else:
        m["alpha"] = m["beta"] = m["benchmark_total_return"] = None

    m["n_params"] = int(inputs.n_params)
    meaningful = years >= MIN_MEANINGFUL_YEARS
    m["annualised_meaningful"] = meaningful
    if not meaningful:
        warnings.append(
            f"only {years * 12:.1f} months of data: annualised figures (CAGR, volatility, "
            "Sharpe, Sortino, Calmar, alpha) are not meaningful below about 3 months"
        )
    if pnl.size and pnl.size < 30:
        warnings.append(f"only {pnl.size} closed trades: per-trade statistics are noisy")
    for key, value in list(m.items()):
        if isinstance(value, float) and not math.isfinite(value):
            m[key] = None
    m["warnings"] = warnings
    return m


# --- helpers for reports and the portal ---------------------------------------------------------


def monthly_returns(equity: np.ndarray, timestamps: np.ndarray) -> list[dict[str, Any]]:
    """Compounded return of each calendar month (UTC): month-end equity / previous month-end - 1.

    The first month is measured from the first equity value. Returns rows
    ``{"year", "month", "return"}`` in time order, ready for a year x month table.
    """
    eq = np.asarray(equity, dtype=np.float64)
    ts = np.asarray(timestamps, dtype=np.int64)
    if eq.size == 0:
        return []
    months = ts.astype("datetime64[ns]").astype("datetime64[M]")
    # Last bar of every month: where the month changes, plus the final bar.
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    prev_eq = np.concatenate(([eq[0]], eq[last[:-1]]))
    rets = eq[last] / prev_eq - 1.0
    rows = []
    for idx, ret in zip(last, rets, strict=True):
        y, mth = str(months[idx]).split("-")
        rows.append({"year": int(y), "month": int(mth), "return": float(ret)})
    return rows


def monthly_returns_table(equity: np.ndarray, timestamps: np.ndarray) -> dict[int, list[Any]]:
    """Year -> 12 monthly returns (None where no data) plus the compounded year total at [12]."""
    table: dict[int, list[Any]] = {}
    for row in monthly_returns(equity, timestamps):
        table.setdefault(row["year"], [None] * 13)[row["month"] - 1] = row["return"]
    for values in table.values():
        known = [v for v in values[:12] if v is not None]
        values[12] = float(np.prod([1 + v for v in known]) - 1) if known else None
    return table


def _rolling_windows(returns: np.ndarray, window: int) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if window < 2:
        raise ValueError("window must be at least 2")
    if r.size < window:
        return np.empty((0, window))
    return np.lib.stride_tricks.sliding_window_view(r, window)


def rolling_volatility(returns: np.ndarray, window: int, ppy: float) -> np.ndarray:
    """Annualised rolling volatility (ddof=1); NaN for the first window - 1 periods."""
    r = np.asarray(returns, dtype=np.float64)
    out = np.full(r.size, np.nan)
    win = _rolling_windows(r, window)
    if win.size:
        out[window - 1 :] = win.std(axis=1, ddof=1) * math.sqrt(ppy)
    return out


def rolling_sharpe(
    returns: np.ndarray, window: int, ppy: float, risk_free_annual: float = 0.0
) -> np.ndarray:
    """Annualised rolling Sharpe over `window` periods; NaN during warm-up or zero volatility."""
    r = np.asarray(returns, dtype=np.float64) - risk_free_per_period(risk_free_annual, ppy)
    out = np.full(r.size, np.nan)
    win = _rolling_windows(r, window)
    if win.size:
        sd = win.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = win.mean(axis=1) / sd * math.sqrt(ppy)
        out[window - 1 :] = np.where(sd > 0, vals, np.nan)
    return out


def returns_distribution(returns: np.ndarray, bins: int = 50) -> dict[str, Any]:
    """Histogram and summary statistics of per-period returns, for the distribution chart."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return {"counts": [], "edges": [], "percentiles": {}, "mean": None, "std": None,
                "skew": None, "kurtosis_excess": None, "var_95": None, "cvar_95": None}
    counts, edges = np.histogram(r, bins=bins)
    pct = {str(p): float(np.percentile(r, p)) for p in (1, 5, 25, 50, 75, 95, 99)}
    var95 = float(np.percentile(r, 5))
    has_spread = r.size >= 3 and np.std(r) > 0
    return {
        "counts": counts.tolist(),
        "edges": edges.tolist(),
        "percentiles": pct,
        "mean": float(r.mean()),
        "std": float(r.std(ddof=1)) if r.size > 1 else None,
        "skew": float(stats.skew(r)) if has_spread else None,
        "kurtosis_excess": float(stats.kurtosis(r)) if has_spread else None,
        # Historical value at risk / expected shortfall at 95 %: the 5th percentile return and
        # the mean of the returns at or below it.
        "var_95": var95,
        "cvar_95": float(r[r <= var95].mean()),
    }

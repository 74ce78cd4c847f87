"""Portfolio risk measures: VaR and CVaR, correlation, exposures, and VaR backtesting.

Conventions (docs/risk.md has every formula): returns are simple periodic returns (0.01 = 1 %);
VaR and CVaR are reported as positive losses, as fractions of portfolio value, at
`confidence` c over `horizon` h periods, with tail probability α = 1 - c. A 2-D return array
(periods x assets) needs `weights` and is turned into the portfolio's return series
(weights held constant, i.e. rebalanced every period).

Horizon: parametric, Cornish-Fisher and (by default) historical estimates scale with the
square root of time from one-period statistics — mean x h, volatility x √h — and the
historical one can instead use overlapping compounded h-period returns. Monte Carlo compounds
h simulated periods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

METHODS: tuple[str, ...] = ("historical", "parametric", "cornish_fisher", "monte_carlo")


class MeasureError(ValueError):
    """Bad input to a risk measure; the message says which."""


@dataclass(frozen=True, slots=True)
class RiskEstimate:
    """VaR and CVaR (expected shortfall) as positive fractional losses."""

    method: str
    confidence: float
    horizon: int
    var: float
    cvar: float
    observations: int


def _alpha(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise MeasureError("confidence must be at least 0.5 and below 1 (e.g. 0.99)")
    return 1.0 - confidence


def _horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise MeasureError("horizon must be a whole number of periods, at least 1")
    return int(horizon)


def portfolio_returns(
    returns: Any, weights: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """A 1-D return series: as given, or a 2-D (periods x assets) array combined by weights."""
    r = np.asarray(returns, dtype=float)
    if r.ndim == 2:
        if weights is None:
            raise MeasureError("returns for several assets need weights")
        w = np.asarray(weights, dtype=float)
        if w.shape != (r.shape[1],):
            raise MeasureError(f"weights need one value per asset ({r.shape[1]})")
        r = r @ w
    elif r.ndim != 1:
        raise MeasureError("returns must be a series or a periods x assets array")
    if r.size < 2:
        raise MeasureError("returns need at least 2 observations")
    if not np.all(np.isfinite(r)):
        raise MeasureError("returns must be finite (drop or fill missing values first)")
    return r


def horizon_returns(returns: Any, horizon: int) -> np.ndarray:
    """Overlapping compounded h-period returns: ∏(1 + r_t..r_{t+h-1}) - 1, one per start t."""
    r = np.asarray(returns, dtype=float)
    h = _horizon(horizon)
    if h == 1:
        return r.copy()
    if r.size < h:
        raise MeasureError(f"need at least {h} returns for a {h}-period horizon")
    log_growth = np.log1p(r)
    window = np.convolve(log_growth, np.ones(h), mode="valid")
    return np.expm1(window)


def empirical_var_cvar(sample: np.ndarray, alpha: float) -> tuple[float, float]:
    """Historical VaR and expected shortfall of a sample at tail probability alpha.

    With the sample sorted ascending x(1) <= ... <= x(n) and k = n·α:
    VaR = -x(⌈k⌉) (the lower empirical α-quantile), and
    ES = -(x(1) + ... + x(⌊k⌋) + (k - ⌊k⌋)·x(⌊k⌋+1)) / k (Acerbi & Tasche, 2002),
    which is the mean of the ⌊k⌋ worst outcomes when k is whole.
    """
    x = np.sort(np.asarray(sample, dtype=float))
    n = x.size
    # Rounding keeps 20 x (1 - 0.95) = 1.0000000000000009 from counting as more than 1.
    k = round(n * alpha, 9)
    var = -x[max(math.ceil(k), 1) - 1]
    whole = math.floor(k)
    tail = x[:whole].sum()
    if k > whole:
        tail += (k - whole) * x[whole]
    cvar = -tail / k if k > 0 else -x[0]
    return float(var), float(cvar)


def historical_var(
    returns: Any,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    weights: Sequence[float] | np.ndarray | None = None,
    scaling: str = "overlapping",
) -> RiskEstimate:
    """Historical simulation. `scaling` "overlapping" uses overlapping compounded h-period
    returns; "sqrt" multiplies the one-period figures by √h."""
    alpha = _alpha(confidence)
    h = _horizon(horizon)
    r = portfolio_returns(returns, weights)
    if scaling == "overlapping":
        sample = horizon_returns(r, h)
        var, cvar = empirical_var_cvar(sample, alpha)
    elif scaling == "sqrt":
        sample = r
        var, cvar = (v * math.sqrt(h) for v in empirical_var_cvar(r, alpha))
    else:
        raise MeasureError('scaling must be "overlapping" or "sqrt"')
    return RiskEstimate("historical", confidence, h, var, cvar, int(sample.size))


def _moments(r: np.ndarray, include_mean: bool) -> tuple[float, float]:
    mean = float(r.mean()) if include_mean else 0.0
    sigma = float(r.std(ddof=1))
    return mean, sigma


def parametric_var(
    returns: Any,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    weights: Sequence[float] | np.ndarray | None = None,
    include_mean: bool = True,
) -> RiskEstimate:
    """Normal (variance-covariance) VaR: -(hμ + z_α σ√h); CVaR: -(hμ - σ√h φ(z_α)/α)."""
    alpha = _alpha(confidence)
    h = _horizon(horizon)
    r = portfolio_returns(returns, weights)
    mu, sigma = _moments(r, include_mean)
    var, cvar = normal_var_cvar(mu * h, sigma * math.sqrt(h), alpha)
    return RiskEstimate("parametric", confidence, h, var, cvar, int(r.size))


def normal_var_cvar(mean: float, sigma: float, alpha: float) -> tuple[float, float]:
    z = float(stats.norm.ppf(alpha))
    var = -(mean + z * sigma)
    cvar = -(mean - sigma * float(stats.norm.pdf(z)) / alpha)
    return var, cvar


def cornish_fisher_z(z: float, skewness: float, excess_kurtosis: float) -> float:
    """The Cornish-Fisher expansion of a standard normal quantile z for skew S, excess kurt K:
    z + (z²-1)S/6 + (z³-3z)K/24 - (2z³-5z)S²/36."""
    s, k = skewness, excess_kurtosis
    return (
        z
        + (z * z - 1.0) * s / 6.0
        + (z**3 - 3.0 * z) * k / 24.0
        - (2.0 * z**3 - 5.0 * z) * s * s / 36.0
    )


def cornish_fisher_tail_mean(alpha: float, skewness: float, excess_kurtosis: float) -> float:
    """(1/α)∫₀^α z_cf(Φ⁻¹(u)) du: the mean of the Cornish-Fisher quantile over the tail.

    With Z standard normal, z = Φ⁻¹(α) and the partial moments M_j = E[Z^j; Z < z]
    (M0 = α, M1 = -φ(z), M2 = α - zφ(z), M3 = -(z²+2)φ(z)), the integral is
    [M1 + S(M2 - M0)/6 + K(M3 - 3M1)/24 - S²(2M3 - 5M1)/36] / α.
    """
    z = float(stats.norm.ppf(alpha))
    phi = float(stats.norm.pdf(z))
    m0, m1, m2, m3 = alpha, -phi, alpha - z * phi, -(z * z + 2.0) * phi
    s, k = skewness, excess_kurtosis
    return (
        m1 + s * (m2 - m0) / 6.0 + k * (m3 - 3.0 * m1) / 24.0 - s * s * (2.0 * m3 - 5.0 * m1) / 36.0
    ) / alpha


def cornish_fisher_var(
    returns: Any,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    weights: Sequence[float] | np.ndarray | None = None,
    include_mean: bool = True,
    skewness: float | None = None,
    excess_kurtosis: float | None = None,
) -> RiskEstimate:
    """Modified (Cornish-Fisher) VaR: -(hμ + z_cf σ√h), with the sample skewness and excess
    kurtosis (bias-corrected, as pandas' skew()/kurt()) unless given. CVaR is the tail mean of
    the same quantile function."""
    alpha = _alpha(confidence)
    h = _horizon(horizon)
    r = portfolio_returns(returns, weights)
    mu, sigma = _moments(r, include_mean)
    if skewness is None:
        if r.size < 4:
            raise MeasureError("Cornish-Fisher needs at least 4 returns to estimate kurtosis")
        skewness = float(stats.skew(r, bias=False))
    if excess_kurtosis is None:
        if r.size < 4:
            raise MeasureError("Cornish-Fisher needs at least 4 returns to estimate kurtosis")
        excess_kurtosis = float(stats.kurtosis(r, fisher=True, bias=False))
    z_cf = cornish_fisher_z(float(stats.norm.ppf(alpha)), skewness, excess_kurtosis)
    mean_h, sigma_h = mu * h, sigma * math.sqrt(h)
    var = -(mean_h + z_cf * sigma_h)
    cvar = -(mean_h + cornish_fisher_tail_mean(alpha, skewness, excess_kurtosis) * sigma_h)
    return RiskEstimate("cornish_fisher", confidence, h, var, cvar, int(r.size))


def monte_carlo_var(
    returns: Any,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    weights: Sequence[float] | np.ndarray | None = None,
    n_simulations: int = 100_000,
    seed: int = 0,
    model: str = "normal",
) -> RiskEstimate:
    """Simulated h-period compounded returns, then the empirical VaR/ES of the simulation.

    `model` "normal" draws each period from the normal fitted to the returns (multivariate,
    with the sample covariance, when a periods x assets array and weights are given);
    "bootstrap" resamples whole historical periods with replacement. Deterministic per seed.
    """
    alpha = _alpha(confidence)
    h = _horizon(horizon)
    if n_simulations < 100:
        raise MeasureError("n_simulations must be at least 100")
    raw = np.asarray(returns, dtype=float)
    portfolio_returns(raw, weights)  # validates shapes and values
    if model not in ("normal", "bootstrap"):
        raise MeasureError('model must be "normal" or "bootstrap"')
    rng = np.random.default_rng(seed)
    log_growth = np.zeros(n_simulations)
    if raw.ndim == 2:
        w = np.asarray(weights, dtype=float)
        mean = raw.mean(axis=0)
        cov = np.atleast_2d(np.cov(raw, rowvar=False))
        for _ in range(h):
            if model == "normal":
                draws = rng.multivariate_normal(mean, cov, size=n_simulations, method="eigh") @ w
            else:
                draws = raw[rng.integers(0, raw.shape[0], size=n_simulations)] @ w
            # A simulated period cannot lose more than everything.
            log_growth += np.log1p(np.maximum(draws, -1.0 + 1e-12))
    else:
        mu, sigma = float(raw.mean()), float(raw.std(ddof=1))
        for _ in range(h):
            if model == "normal":
                draws = rng.normal(mu, sigma, size=n_simulations)
            else:
                draws = raw[rng.integers(0, raw.size, size=n_simulations)]
            log_growth += np.log1p(np.maximum(draws, -1.0 + 1e-12))
    var, cvar = empirical_var_cvar(np.expm1(log_growth), alpha)
    return RiskEstimate("monte_carlo", confidence, h, var, cvar, int(raw.shape[0]))


_ESTIMATORS: dict[str, Callable[..., RiskEstimate]] = {
    "historical": historical_var,
    "parametric": parametric_var,
    "cornish_fisher": cornish_fisher_var,
    "monte_carlo": monte_carlo_var,
}


def value_at_risk(returns: Any, method: str = "historical", **kwargs: Any) -> RiskEstimate:
    """VaR and CVaR by the named method (one of `METHODS`)."""
    try:
        estimator = _ESTIMATORS[method]
    except KeyError:
        raise MeasureError(f"method must be one of {', '.join(METHODS)}") from None
    return estimator(returns, **kwargs)


def correlation_matrix(returns: Any, *, method: str = "pearson") -> np.ndarray:
    """Correlation of the columns of a periods x assets return array (pearson or spearman)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[0] < 3 or r.shape[1] < 1:
        raise MeasureError("returns must be a periods x assets array with at least 3 periods")
    if not np.all(np.isfinite(r)):
        raise MeasureError("returns must be finite")
    if np.any(r.std(axis=0) == 0):
        raise MeasureError("an asset with constant returns has no correlation")
    if method == "spearman":
        r = stats.rankdata(r, axis=0)
    elif method != "pearson":
        raise MeasureError('method must be "pearson" or "spearman"')
    return np.atleast_2d(np.corrcoef(r, rowvar=False))


@dataclass(frozen=True, slots=True)
class GroupExposure:
    long: float
    short: float  # a positive number: the value of the short positions
    gross: float
    net: float
    gross_fraction: float | None = None  # of equity, when equity was given
    net_fraction: float | None = None


@dataclass(frozen=True, slots=True)
class Exposures:
    total: GroupExposure
    by_asset: dict[str, GroupExposure]
    by_asset_class: dict[str, GroupExposure]
    by_sector: dict[str, GroupExposure]


def exposures(
    positions: Mapping[str, float],
    prices: Mapping[str, float],
    instruments: Mapping[str, Mapping[str, str]] | None = None,
    *,
    equity: float | None = None,
) -> Exposures:
    """Long, short, gross and net exposure in total and by asset, asset class and sector."""
    instruments = instruments or {}
    sums: dict[tuple[str, str], list[float]] = {}
    for symbol, quantity in positions.items():
        if not quantity:
            continue
        if symbol not in prices:
            raise MeasureError(f"no price for {symbol}")
        value = float(quantity) * float(prices[symbol])
        meta = instruments.get(symbol, {})
        keys = (
            ("total", ""),
            ("asset", symbol),
            ("asset_class", meta.get("asset_class") or "unclassified"),
            ("sector", meta.get("sector") or "unclassified"),
        )
        for key in keys:
            acc = sums.setdefault(key, [0.0, 0.0])
            if value >= 0:
                acc[0] += value
            else:
                acc[1] -= value

    def group(long: float, short: float) -> GroupExposure:
        gross, net = long + short, long - short
        if equity is not None and equity > 0:
            return GroupExposure(long, short, gross, net, gross / equity, net / equity)
        return GroupExposure(long, short, gross, net)

    def by(kind: str) -> dict[str, GroupExposure]:
        return {name: group(*v) for (k, name), v in sorted(sums.items()) if k == kind}

    total = sums.get(("total", ""), [0.0, 0.0])
    return Exposures(group(*total), by("asset"), by("asset_class"), by("sector"))


@dataclass(frozen=True, slots=True)
class KupiecResult:
    """Kupiec's proportion-of-failures test of a VaR model."""

    observations: int
    breaches: int
    expected_rate: float  # α = 1 - confidence
    observed_rate: float
    likelihood_ratio: float
    p_value: float
    reject: bool  # the model's breach rate is rejected at `significance`
    significance: float


def var_breaches(returns: Any, var_forecasts: Any) -> np.ndarray:
    """Which periods lost more than the VaR forecast made for them (loss = -return > VaR)."""
    r = np.asarray(returns, dtype=float)
    v = np.asarray(var_forecasts, dtype=float)
    if r.shape != v.shape or r.ndim != 1:
        raise MeasureError("returns and VaR forecasts must be series of the same length")
    return -r > v


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def kupiec_pof(
    observations: int, breaches: int, confidence: float, *, significance: float = 0.05
) -> KupiecResult:
    """LR = -2 ln[(1-α)^(T-x) α^x] + 2 ln[(1-x/T)^(T-x) (x/T)^x] ~ χ²(1) under the model.

    T observations, x breaches, α = 1 - confidence; the p-value is the χ²(1) survival
    function at LR, and the model is rejected when p < significance.
    """
    if observations < 1 or not 0 <= breaches <= observations:
        raise MeasureError("need at least 1 observation and 0 <= breaches <= observations")
    alpha = _alpha(confidence)
    t, x = observations, breaches
    rate = x / t
    log_null = _xlogy(t - x, 1 - alpha) + _xlogy(x, alpha)
    log_alt = _xlogy(t - x, 1 - rate) + _xlogy(x, rate)
    lr = max(0.0, -2.0 * (log_null - log_alt))
    p_value = float(stats.chi2.sf(lr, df=1))
    return KupiecResult(t, x, alpha, rate, lr, p_value, p_value < significance, significance)


def var_backtest(
    returns: Any, var_forecasts: Any, confidence: float, *, significance: float = 0.05
) -> KupiecResult:
    """Count breaches of a series of VaR forecasts and run Kupiec's test on them."""
    hits = var_breaches(returns, var_forecasts)
    return kupiec_pof(int(hits.size), int(hits.sum()), confidence, significance=significance)

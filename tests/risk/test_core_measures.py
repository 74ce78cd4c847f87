"""VaR, CVaR, correlation, exposures and VaR backtesting against hand-derived values."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from risk.core.measures import (
    MeasureError,
    cornish_fisher_tail_mean,
    cornish_fisher_var,
    cornish_fisher_z,
    correlation_matrix,
    exposures,
    historical_var,
    horizon_returns,
    kupiec_pof,
    monte_carlo_var,
    parametric_var,
    value_at_risk,
    var_backtest,
    var_breaches,
)

# Twenty daily returns; sorted ascending the worst are -5 %, -4 %, -3 %, -2.5 %, ...
TWENTY = [
    0.012, -0.03, 0.04, -0.005, 0.0, -0.05, 0.02, 0.035, -0.015, 0.025,
    -0.04, 0.005, 0.018, -0.025, 0.03, -0.01, 0.015, 0.022, -0.02, 0.01,
]  # fmt: skip

# Z_01 = Φ⁻¹(0.01) and φ(Z_01), from tables: -2.326348, 0.026652.
Z_01 = -2.3263478740408408
PHI_Z_01 = 0.02665214220345808


def test_historical_var_95_on_twenty_returns_is_the_worst_return():
    # n·α = 20 x 0.05 = 1, so VaR is minus the 1st-smallest return (-5 %) and ES is the mean
    # of the single worst return.
    est = historical_var(TWENTY, confidence=0.95)
    assert est.var == pytest.approx(0.05)
    assert est.cvar == pytest.approx(0.05)
    assert est.observations == 20


def test_historical_var_90_on_twenty_returns_uses_the_two_worst():
    # n·α = 2: VaR = -x(2) = 4 %, ES = mean(5 %, 4 %) = 4.5 %.
    est = historical_var(TWENTY, confidence=0.90)
    assert est.var == pytest.approx(0.04)
    assert est.cvar == pytest.approx(0.045)


def test_historical_cvar_weights_the_fractional_observation():
    # n·α = 20 x 0.075 = 1.5: VaR = -x(⌈1.5⌉) = -x(2) = 4 %;
    # ES = (5 % + 0.5 x 4 %) / 1.5 = 7 % / 1.5 = 4.6667 %.
    est = historical_var(TWENTY, confidence=0.925)
    assert est.var == pytest.approx(0.04)
    assert est.cvar == pytest.approx(0.07 / 1.5)


def test_horizon_returns_compound_overlapping_windows():
    # (1.1)(0.9) - 1 = -1 %, (0.9)(1.05) - 1 = -5.5 %, (1.05)(0.8) - 1 = -16 %.
    assert horizon_returns([0.1, -0.1, 0.05, -0.2], 2) == pytest.approx([-0.01, -0.055, -0.16])


def test_historical_var_over_two_periods_uses_overlapping_returns():
    # Three 2-period returns -1 %, -5.5 %, -16 %; at 2/3 confidence n·α = 3 x 1/3 = 1, so VaR
    # is the worst one, 16 %.
    est = historical_var([0.1, -0.1, 0.05, -0.2], confidence=2 / 3, horizon=2)
    assert est.var == pytest.approx(0.16)
    assert est.observations == 3


def test_historical_var_with_sqrt_scaling_multiplies_the_one_period_figure():
    # One-period 95 % VaR is 5 % (above); over 4 periods x √4 = 10 %.
    est = historical_var(TWENTY, confidence=0.95, horizon=4, scaling="sqrt")
    assert est.var == pytest.approx(0.10)
    assert est.cvar == pytest.approx(0.10)


# Five returns with mean 0.1 % and sample variance (0.02² + 0.01² + 0 + 0.01² + 0.02²) / 4
# = 0.00025, so σ = 1.5811 % and over 10 periods σ√10 = √0.0025 = 5 % exactly.
FIVE = [-0.019, -0.009, 0.001, 0.011, 0.021]


def test_parametric_var_one_period_with_known_z():
    # VaR = -(μ + zσ) = -(0.001 - 2.326348 x 0.0158114) = 0.0357828.
    est = parametric_var(FIVE, confidence=0.99)
    assert est.var == pytest.approx(0.0357828, abs=1e-7)
    # CVaR = -(μ - σ φ(z)/α) = -(0.001 - 0.0158114 x 2.665214) = 0.0411407.
    assert est.cvar == pytest.approx(0.0411407, abs=1e-7)


def test_parametric_var_scales_with_square_root_of_time():
    # μ_h = 10 x 0.1 % = 1 %, σ_h = 5 %: VaR = 2.326348 x 5 % - 1 % = 10.63174 %;
    # CVaR = 5 % x 2.665214 - 1 % = 12.32607 %.
    est = parametric_var(FIVE, confidence=0.99, horizon=10)
    assert est.var == pytest.approx(-(0.01 + Z_01 * 0.05))
    assert est.var == pytest.approx(0.1063174, abs=1e-7)
    assert est.cvar == pytest.approx(0.05 * PHI_Z_01 / 0.01 - 0.01)


def test_parametric_var_without_mean_is_z_sigma():
    est = parametric_var(FIVE, confidence=0.99, horizon=10, include_mean=False)
    assert est.var == pytest.approx(2.3263479 * 0.05, abs=1e-7)


def test_cornish_fisher_quantile_with_known_skew_and_kurtosis():
    # S = -1, K = 3, z = -2.326348 (z² = 5.411894, z³ = -12.589949):
    #   (z² - 1)S/6      = 4.411894 x -1 / 6        = -0.735316
    #   (z³ - 3z)K/24    = (-12.589949 + 6.979044) x 3 / 24 = -0.701363
    #   -(2z³ - 5z)S²/36 = -(-25.179898 + 11.631739) / 36   = +0.376338
    # z_cf = -2.326348 - 0.735316 - 0.701363 + 0.376338 = -3.386689.
    assert cornish_fisher_z(Z_01, -1.0, 3.0) == pytest.approx(-3.386689, abs=1e-6)
    assert cornish_fisher_z(Z_01, 0.0, 0.0) == Z_01


def test_cornish_fisher_var_uses_the_adjusted_quantile():
    # With σ_10 = 5 %, μ_10 = 1 %: VaR = -(0.01 - 3.386689 x 0.05) = 0.1593345.
    est = cornish_fisher_var(FIVE, confidence=0.99, horizon=10, skewness=-1.0, excess_kurtosis=3.0)
    assert est.var == pytest.approx(0.1593345, abs=1e-6)
    assert est.cvar > est.var


def test_cornish_fisher_without_skew_or_kurtosis_is_the_normal():
    cf = cornish_fisher_var(FIVE, confidence=0.99, skewness=0.0, excess_kurtosis=0.0)
    normal = parametric_var(FIVE, confidence=0.99)
    assert cf.var == pytest.approx(normal.var)
    assert cf.cvar == pytest.approx(normal.cvar)


def test_cornish_fisher_tail_mean_matches_numerical_integration():
    # The closed form from normal partial moments against quad over u in (0, α).
    def integrand(u: float) -> float:
        return cornish_fisher_z(float(stats.norm.ppf(u)), -0.8, 2.5)

    numeric, _ = integrate.quad(integrand, 0.0, 0.025, limit=200)
    assert cornish_fisher_tail_mean(0.025, -0.8, 2.5) == pytest.approx(numeric / 0.025, rel=1e-6)


def test_cornish_fisher_estimates_moments_like_pandas():
    # Sample skew/kurtosis with the bias correction pandas' .skew()/.kurt() use.
    data = np.array(TWENTY)
    est = cornish_fisher_var(data, confidence=0.95)
    s = stats.skew(data, bias=False)
    k = stats.kurtosis(data, bias=False)
    z_cf = cornish_fisher_z(float(stats.norm.ppf(0.05)), s, k)
    assert est.var == pytest.approx(-(data.mean() + z_cf * data.std(ddof=1)))


def test_monte_carlo_is_deterministic_per_seed_and_close_to_parametric():
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0005, 0.01, size=500)
    a = monte_carlo_var(returns, confidence=0.99, n_simulations=200_000, seed=3)
    b = monte_carlo_var(returns, confidence=0.99, n_simulations=200_000, seed=3)
    c = monte_carlo_var(returns, confidence=0.99, n_simulations=200_000, seed=4)
    assert a == b
    assert a.var != c.var
    normal = parametric_var(returns, confidence=0.99)
    # Simple returns compound to almost the same loss over one period; sampling error of the
    # 1 % quantile with 200k draws is well under 1 %.
    assert a.var == pytest.approx(normal.var, rel=0.02)
    assert a.cvar == pytest.approx(normal.cvar, rel=0.02)


def test_monte_carlo_multi_asset_horizon_and_bootstrap():
    rng = np.random.default_rng(1)
    returns = rng.normal(0.0, 0.01, size=(400, 3))
    w = [0.5, 0.3, 0.2]
    mc = monte_carlo_var(returns, confidence=0.99, horizon=5, weights=w, seed=0)
    normal = parametric_var(returns, confidence=0.99, horizon=5, weights=w)
    assert mc.var == pytest.approx(normal.var, rel=0.05)
    boot = monte_carlo_var(returns, confidence=0.99, weights=w, model="bootstrap", seed=0)
    hist = historical_var(returns, confidence=0.99, weights=w)
    assert boot.var == pytest.approx(hist.var, rel=0.1)


def test_value_at_risk_dispatches_by_name_and_rejects_unknown():
    assert value_at_risk(TWENTY, "historical", confidence=0.95).var == pytest.approx(0.05)
    with pytest.raises(MeasureError, match="method must be one of"):
        value_at_risk(TWENTY, "garch")


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(MeasureError, match="confidence"):
        historical_var(TWENTY, confidence=1.0)
    with pytest.raises(MeasureError, match="horizon"):
        parametric_var(TWENTY, horizon=0)
    with pytest.raises(MeasureError, match="finite"):
        historical_var([0.01, float("nan"), 0.02])
    with pytest.raises(MeasureError, match="weights"):
        historical_var(np.zeros((5, 2)))


def test_correlation_matrix_pearson_and_spearman():
    x = np.array([0.01, -0.02, 0.03, 0.00, -0.01])
    data = np.column_stack([x, 2 * x, -x, x**3])
    pearson = correlation_matrix(data)
    assert pearson[0, 1] == pytest.approx(1.0)
    assert pearson[0, 2] == pytest.approx(-1.0)
    assert pearson[0, 3] < 1.0  # a cube is not linear
    # Ranks of x and x³ are identical, so their Spearman correlation is exactly 1.
    assert correlation_matrix(data, method="spearman")[0, 3] == pytest.approx(1.0)
    assert np.allclose(np.diag(pearson), 1.0)


def test_exposures_by_asset_class_and_sector():
    positions = {"AAPL": 100.0, "MSFT": -50.0, "BTC": 0.5}
    prices = {"AAPL": 200.0, "MSFT": 400.0, "BTC": 60_000.0}
    instruments = {
        "AAPL": {"asset_class": "equity", "sector": "technology"},
        "MSFT": {"asset_class": "equity", "sector": "technology"},
        "BTC": {"asset_class": "crypto", "sector": "digital assets"},
    }
    exp = exposures(positions, prices, instruments, equity=100_000.0)
    # Long 20,000 + 30,000 = 50,000; short 20,000; gross 70,000; net 30,000.
    assert exp.total.long == 50_000.0
    assert exp.total.short == 20_000.0
    assert exp.total.gross == 70_000.0
    assert exp.total.net == 30_000.0
    assert exp.total.gross_fraction == pytest.approx(0.7)
    equity = exp.by_asset_class["equity"]
    assert (equity.gross, equity.net) == (40_000.0, 0.0)
    assert exp.by_sector["digital assets"].net_fraction == pytest.approx(0.3)
    assert exp.by_asset["MSFT"].net == -20_000.0


def test_kupiec_worked_example_eight_breaches_in_250_days_at_99():
    # T = 250, x = 8, α = 0.01, x/T = 0.032:
    #   ln L0 = 242 ln 0.99 + 8 ln 0.01  = -2.432182 - 36.841361 = -39.273543
    #   ln L1 = 242 ln 0.968 + 8 ln 0.032 = -7.870612 - 27.536155 = -35.406767
    #   LR = -2(ln L0 - ln L1) = 7.733551; P(χ²₁ > 7.7336) = 0.00542 -> rejected at 5 %.
    result = kupiec_pof(250, 8, 0.99)
    assert result.likelihood_ratio == pytest.approx(7.733551, abs=1e-5)
    assert result.p_value == pytest.approx(0.00542, abs=1e-5)
    assert result.reject


def test_kupiec_with_no_breaches_and_with_exactly_the_expected_count():
    # x = 0: LR = -2 x 250 ln 0.99 = 5.025168; p = 0.02498.
    zero = kupiec_pof(250, 0, 0.99)
    assert zero.likelihood_ratio == pytest.approx(5.025168, abs=1e-6)
    assert zero.p_value == pytest.approx(0.02498, abs=1e-5)
    # x = Tα exactly: the observed rate is the model's rate, LR = 0, p = 1.
    exact = kupiec_pof(500, 5, 0.99)
    assert exact.likelihood_ratio == pytest.approx(0.0, abs=1e-9)
    assert exact.p_value == pytest.approx(1.0)
    assert not exact.reject


def test_var_backtest_counts_losses_beyond_the_forecast():
    returns = np.array([-0.03, 0.01, -0.021, -0.02, 0.0])
    forecasts = np.full(5, 0.02)
    # Losses 3 % and 2.1 % exceed 2 %; a 2 % loss equals the forecast and is not a breach.
    assert var_breaches(returns, forecasts).tolist() == [True, False, True, False, False]
    result = var_backtest(returns, forecasts, 0.95)
    assert (result.observations, result.breaches) == (5, 2)
    assert result.observed_rate == pytest.approx(0.4)
    expected_lr = -2 * (3 * math.log(0.95) + 2 * math.log(0.05)) + 2 * (
        3 * math.log(0.6) + 2 * math.log(0.4)
    )
    assert result.likelihood_ratio == pytest.approx(expected_lr)

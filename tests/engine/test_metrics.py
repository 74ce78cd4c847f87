"""Metrics against figures derived by hand on tiny series, and against the textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trading.engine import metrics as mt
from trading.engine.types import MetricInputs

DAY = 86_400 * 10**9

# Four quarterly periods: returns +10 %, -10 %, 0 %, +20 %.
#   100 -> 110 (+0.10) -> 99 (-0.10) -> 99 (0) -> 118.8 (+0.20)
EQUITY = np.array([100.0, 110.0, 99.0, 99.0, 118.8])
QUARTERS = np.arange(5, dtype=np.int64) * 91 * DAY


def _inputs(**kw) -> MetricInputs:
    base = dict(equity=EQUITY, timestamps=QUARTERS, periods_per_year=4.0)
    base.update(kw)
    return MetricInputs(**base)


def test_periods_per_year_follows_the_exchange_and_crypto_calendars():
    assert mt.periods_per_year("exchange", 86_400) == 252
    assert mt.periods_per_year("exchange", 60) == 252 * 390
    assert mt.periods_per_year("exchange", 3600) == pytest.approx(252 * 6.5)
    assert mt.periods_per_year("exchange", 7 * 86_400) == 52
    assert mt.periods_per_year("24/7", 86_400) == 365
    assert mt.periods_per_year("24/7", 3600) == 365 * 24
    with pytest.raises(ValueError, match="unknown calendar"):
        mt.periods_per_year("moon", 60)


def test_return_volatility_and_ratios_match_the_hand_derivation():
    m = mt.compute_metrics(_inputs())
    # total = 118.8 / 100 - 1; four quarters at ppy 4 is one year, so CAGR = total return.
    assert m["total_return"] == pytest.approx(0.188)
    assert m["cagr"] == pytest.approx(0.188)
    # mean = 0.05; deviations .05 -.15 -.05 .15 -> sum of squares 0.05; var = 0.05/3 (ddof=1)
    sd = math.sqrt(0.05 / 3)  # 0.129099
    assert m["volatility_annual"] == pytest.approx(sd * 2)  # sqrt(4) = 2
    assert m["sharpe"] == pytest.approx(0.05 / sd * 2)  # 0.774597
    # Downside over ALL periods: min(r, 0) = 0, -.1, 0, 0 -> sqrt(0.01 / 4) = 0.05
    # Sortino = mean * ppy / (0.05 * sqrt(ppy)) = 0.05 * 4 / 0.1 = 2
    assert m["sortino"] == pytest.approx(2.0)
    # Deepest drawdown: 110 -> 99 = -10 %; Calmar = 0.188 / 0.10
    assert m["max_drawdown"] == pytest.approx(-0.10)
    assert m["calmar"] == pytest.approx(1.88)
    # Underwater from the peak at bar 1 until bar 4 regains it: 3 bars, 3 * 91 days.
    assert m["max_drawdown_duration_bars"] == 3
    assert m["max_drawdown_duration_days"] == pytest.approx(273.0)
    assert m["max_drawdown_recovered"] is True
    assert m["annualised_meaningful"] is True


def test_per_period_win_rate_ignores_flat_periods_and_is_labelled_apart_from_trades():
    m = mt.compute_metrics(_inputs(trade_pnl=np.array([10.0, -5.0, 20.0, -5.0, 0.0])))
    # Periods: 2 wins out of 3 non-zero periods; profit factor (0.1 + 0.2) / 0.1 = 3.
    assert m["win_rate_periods"] == pytest.approx(2 / 3)
    assert m["profit_factor_periods"] == pytest.approx(3.0)
    # Trades: 2 of 5 trades win; (10 + 20) / (5 + 5) = 3; expectancy 20 / 5 = 4 per trade.
    assert m["win_rate_trades"] == pytest.approx(0.4)
    assert m["profit_factor_trades"] == pytest.approx(3.0)
    assert m["expectancy"] == pytest.approx(4.0)
    assert m["n_trades"] == 5


def test_risk_free_rate_is_compounded_down_to_a_period():
    # (1.04)^4 - 1 = 0.16985856, so the per-period rate is exactly 4 %.
    m = mt.compute_metrics(_inputs(risk_free_annual=0.16985856))
    sd = math.sqrt(0.05 / 3)
    # Excess returns .06 -.14 -.04 .16: mean 0.01, same standard deviation.
    assert m["sharpe"] == pytest.approx(0.01 / sd * 2)
    # Downside of excess over all periods: sqrt((.14^2 + .04^2) / 4) = sqrt(0.0053)
    assert m["sortino"] == pytest.approx(0.01 * 4 / (math.sqrt(0.0053) * 2))


def test_alpha_and_beta_against_a_benchmark():
    # r = 2 b + 0.01 exactly, so beta = 2 and alpha = (1 + 0.01)^4 - 1 per year.
    r = np.diff(EQUITY) / EQUITY[:-1]
    b = (r - 0.01) / 2
    bench = 100 * np.concatenate(([1.0], np.cumprod(1 + b)))
    m = mt.compute_metrics(_inputs(benchmark_equity=bench))
    assert m["beta"] == pytest.approx(2.0)
    assert m["alpha"] == pytest.approx(1.01**4 - 1)


def test_probabilistic_sharpe_ratio_matches_bailey_and_lopez_de_prado():
    # SR = 0.05 / sqrt(0.05/3) so SR^2 = 0.15; skew 0 (symmetric deviations);
    # m4 = (2 * .05^4 + 2 * .15^4) / 4 = 0.001025 / 4; kurtosis m4 / m2^2 = m4 / 0.0125^2 = 1.64.
    # PSR = Phi(SR * sqrt(n - 1) / sqrt(1 - 0 + (1.64 - 1) / 4 * 0.15)), n = 4.
    m = mt.compute_metrics(_inputs())
    sr = math.sqrt(0.15)
    expected = stats.norm.cdf(sr * math.sqrt(3) / math.sqrt(1 + 0.64 / 4 * 0.15))
    assert m["probabilistic_sharpe"] == pytest.approx(expected)
    assert 0.74 < expected < 0.75


def test_exposure_and_turnover():
    # In the market on 2 of 5 bars at 50 % and 100 % of equity; traded 220 + 99 over a mean
    # equity of 105.34 across one year.
    m = mt.compute_metrics(
        _inputs(exposure=np.array([0, 0.5, 1.0, 0, 0]),
                traded_notional=np.array([0, 110.0, 0, 99.0, 0]))
    )
    assert m["exposure_time"] == pytest.approx(0.4)
    assert m["exposure_avg"] == pytest.approx(0.3)
    assert m["turnover"] == pytest.approx(209.0 / EQUITY.mean())
    assert m["turnover_annual"] == pytest.approx(209.0 / EQUITY.mean())


def test_short_samples_flag_annualised_figures_as_not_meaningful():
    eq = np.array([100.0, 101.0, 100.5, 102.0])  # three daily returns
    m = mt.compute_metrics(MetricInputs(eq, np.arange(4) * DAY, periods_per_year=252))
    assert m["annualised_meaningful"] is False
    assert any("not meaningful" in w for w in m["warnings"])
    assert m["sharpe"] is not None  # still reported, but flagged


def test_floating_point_noise_is_not_mistaken_for_risk():
    # 100 -> 150 -> 150 * (1 - 6e-15): the tiny "loss" is rounding, so no Sortino of 1e14.
    eq = np.array([100.0, 100.0, 150.0, 150.0 * (1 - 6e-15)])
    m = mt.compute_metrics(MetricInputs(eq, np.arange(4) * DAY, periods_per_year=252))
    assert m["sortino"] is None
    assert m["sharpe"] is not None


def test_undefined_figures_are_none_rather_than_invented():
    flat = np.full(10, 100.0)
    m = mt.compute_metrics(MetricInputs(flat, np.arange(10) * DAY, periods_per_year=252))
    assert m["total_return"] == 0.0
    assert m["sharpe"] is None and m["sortino"] is None and m["calmar"] is None
    assert m["win_rate_trades"] is None and m["profit_factor_periods"] is None
    assert m["max_drawdown"] == 0.0


def test_drawdown_duration_of_a_curve_that_never_recovers_runs_to_the_last_bar():
    eq = np.array([100.0, 120.0, 90.0, 100.0, 110.0])
    info = mt.max_drawdown_info(eq, np.arange(5) * DAY)
    assert info["max_drawdown"] == pytest.approx(90 / 120 - 1)
    assert info["max_drawdown_duration_bars"] == 3  # bar 1 (peak) to bar 4 (last)
    assert info["max_drawdown_recovered"] is False


def test_ratios_on_random_data_agree_with_independent_pandas_formulas():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(7)
    r = rng.normal(0.0005, 0.01, 1000)
    eq = 1000 * np.concatenate(([1.0], np.cumprod(1 + r)))
    m = mt.compute_metrics(MetricInputs(eq, np.arange(eq.size) * DAY, periods_per_year=252))
    s = pd.Series(r)
    assert m["sharpe"] == pytest.approx(s.mean() / s.std() * math.sqrt(252))
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert m["sortino"] == pytest.approx(s.mean() * 252 / (downside * math.sqrt(252)))
    running_max = pd.Series(eq).cummax()
    assert m["max_drawdown"] == pytest.approx((pd.Series(eq) / running_max - 1).min())
    assert m["cagr"] == pytest.approx((eq[-1] / eq[0]) ** (252 / 1000) - 1)


def test_monthly_returns_compound_from_month_end_to_month_end():
    ts = np.array(["2024-01-15", "2024-01-31", "2024-02-10", "2024-02-29", "2024-03-05"],
                  dtype="datetime64[ns]").astype(np.int64)
    eq = np.array([100.0, 110.0, 99.0, 121.0, 133.1])
    rows = mt.monthly_returns(eq, ts)
    # Jan: 110/100 - 1; Feb: 121/110 - 1; Mar: 133.1/121 - 1
    assert [(r["year"], r["month"]) for r in rows] == [(2024, 1), (2024, 2), (2024, 3)]
    assert [r["return"] for r in rows] == pytest.approx([0.10, 0.10, 0.10])
    table = mt.monthly_returns_table(eq, ts)
    assert table[2024][12] == pytest.approx(0.331)  # 1.1^3 - 1
    assert table[2024][5] is None


def test_rolling_sharpe_and_volatility_are_nan_during_warm_up():
    r = np.array([0.1, -0.1, 0.0, 0.2, 0.05])
    vol = mt.rolling_volatility(r, 4, ppy=4)
    assert np.isnan(vol[:3]).all()
    assert vol[3] == pytest.approx(math.sqrt(0.05 / 3) * 2)
    sh = mt.rolling_sharpe(r, 4, ppy=4)
    assert sh[3] == pytest.approx(0.05 / math.sqrt(0.05 / 3) * 2)


def test_returns_distribution_reports_historical_var():
    r = np.arange(-50, 50) / 1000.0  # -5 % .. +4.9 %
    d = mt.returns_distribution(r, bins=10)
    assert sum(d["counts"]) == 100
    assert d["var_95"] == pytest.approx(np.percentile(r, 5))
    assert d["cvar_95"] == pytest.approx(r[r <= d["var_95"]].mean())


def test_drawdown_periods_lists_the_deepest_first():
    # Peak 110 (bar 1) -> 99 (-10 %), recovered at bar 3 (120); peak 120 -> 90 (-25 %), open.
    eq = np.array([100.0, 110.0, 99.0, 120.0, 90.0, 100.0])
    periods = mt.drawdown_periods(eq, np.arange(6) * DAY)
    assert [p["depth"] for p in periods] == pytest.approx([-0.25, -0.10])
    assert periods[0]["peak_bar"] == 3 and periods[0]["recovery_bar"] is None
    assert periods[0]["duration_bars"] == 2 and periods[0]["duration_days"] == 2.0
    assert (periods[1]["peak_bar"], periods[1]["trough_bar"], periods[1]["recovery_bar"]) == (
        1, 2, 3)
    assert mt.drawdown_periods(np.array([1.0, 2.0, 3.0])) == []


def test_metric_invariants_hold_for_any_curve():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # Returns rounded to 1e-6 (a hundredth of a basis point), as quoted prices would give.
    returns = st.lists(st.floats(-0.5, 0.5, allow_nan=False).map(lambda x: round(x, 6)),
                       min_size=3, max_size=60)

    @settings(max_examples=150, deadline=None)
    @given(returns, st.floats(0.5, 1e6))
    def check(rets, scale):
        eq = 100.0 * np.cumprod(np.concatenate(([1.0], 1 + np.array(rets))))
        ts = np.arange(eq.size) * DAY
        m = mt.compute_metrics(MetricInputs(eq, ts, periods_per_year=252))
        scaled = mt.compute_metrics(MetricInputs(eq * scale, ts, periods_per_year=252))
        assert -1.0 <= m["max_drawdown"] <= 0.0
        assert m["total_return"] == pytest.approx(eq[-1] / eq[0] - 1)
        # Ratios do not depend on the account size.
        for key in ("sharpe", "sortino", "max_drawdown", "total_return"):
            if m[key] is None:
                assert scaled[key] is None
            else:
                assert scaled[key] == pytest.approx(m[key], rel=1e-9, abs=1e-12)
        if m["sharpe"] is not None and m["sortino"] is not None:
            # Same numerator; the downside deviation never exceeds the root mean square.
            assert np.sign(m["sharpe"]) == np.sign(m["sortino"]) or m["sharpe"] == 0

    check()


def test_cagr_of_a_few_minute_bars_is_none_instead_of_overflowing():
    # 4 one-minute bars up 2% annualise to 1.02 ** (525600 / 3): beyond any float.
    assert mt.cagr(0.02, 3, 525_600) is None
    # ...while an ordinary case is unchanged: +21% over two years is 10% a year.
    assert mt.cagr(0.21, 504, 252) == pytest.approx(0.10)

"""Position sizing rules against hand-derived values."""

import numpy as np
import pytest

from risk.core.sizing import (
    SizingError,
    equal_risk_contribution,
    fixed_fractional,
    inverse_volatility,
    kelly,
    risk_contributions,
    size_position,
    volatility_target,
)


def test_fixed_fractional_risks_the_fraction_between_entry_and_stop():
    # 1 % of 100,000 = 1,000 at risk; stop 2.00 below entry -> 1,000 / 2 = 500 units.
    assert fixed_fractional(
        equity=100_000, risk_fraction=0.01, entry_price=50, stop_price=48
    ) == pytest.approx(500)


def test_fixed_fractional_for_a_short_and_with_a_point_value():
    # Short at 50 with a stop at 52.5: distance 2.5; a futures point worth 10 -> 1,000 / 25.
    assert fixed_fractional(
        equity=100_000, risk_fraction=0.01, entry_price=50, stop_price=52.5, point_value=10
    ) == pytest.approx(40)


def test_fixed_fractional_rounds_down_to_whole_lots():
    # 1,000 / 3 = 333.3 units -> 3 lots of 100.
    assert fixed_fractional(
        equity=100_000, risk_fraction=0.01, entry_price=50, stop_distance=3, lot_size=100
    ) == pytest.approx(300)


def test_fixed_fractional_needs_exactly_one_stop():
    with pytest.raises(SizingError, match="exactly one of stop_price and stop_distance"):
        fixed_fractional(equity=1e5, risk_fraction=0.01, entry_price=50)
    with pytest.raises(SizingError, match="stop_price must differ"):
        fixed_fractional(equity=1e5, risk_fraction=0.01, entry_price=50, stop_price=50)


def test_kelly_fraction_full_half_and_capped():
    # p = 0.6, b = 2: f* = 0.6 - 0.4 / 2 = 0.4.
    assert kelly(win_rate=0.6, payoff_ratio=2) == pytest.approx(0.4)
    assert kelly(win_rate=0.6, payoff_ratio=2, fraction=0.5) == pytest.approx(0.2)
    assert kelly(win_rate=0.6, payoff_ratio=2, cap=0.25) == pytest.approx(0.25)


def test_kelly_never_goes_negative():
    # p = 0.3, b = 1: f* = 0.3 - 0.7 = -0.4, which means "do not bet", not "go short".
    assert kelly(win_rate=0.3, payoff_ratio=1) == 0.0


def test_volatility_target_from_a_given_volatility():
    # Target 10 % on an asset running at 20 % -> half the equity.
    assert volatility_target(target_volatility=0.10, realised_volatility=0.20) == pytest.approx(0.5)


def test_volatility_target_estimates_volatility_from_returns_and_caps_leverage():
    # Returns -1 %, +1 %: sample variance (0.01² + 0.01²) / 1 = 0.0002, σ = 1.41421 %;
    # annualised with 50 periods: 1.41421 % x √50 = 10 %. Target 20 % -> leverage 2, capped 1.5.
    returns = [-0.01, 0.01]
    assert volatility_target(
        target_volatility=0.2, returns=returns, periods_per_year=50
    ) == pytest.approx(2.0)
    assert volatility_target(
        target_volatility=0.2, returns=returns, periods_per_year=50, max_leverage=1.5
    ) == pytest.approx(1.5)


def test_inverse_volatility_weights():
    # 1/0.1 : 1/0.2 : 1/0.4 = 10 : 5 : 2.5, over 17.5.
    w = inverse_volatility(volatilities=[0.1, 0.2, 0.4])
    assert w == pytest.approx([10 / 17.5, 5 / 17.5, 2.5 / 17.5])
    assert w.sum() == pytest.approx(1.0)


def test_equal_risk_contribution_with_two_assets_is_inverse_volatility():
    # With two assets, w1 (Σw)_1 = w2 (Σw)_2 reduces to w1 σ1 = w2 σ2 whatever the correlation:
    # σ = 10 %, 20 % -> w = 2/3, 1/3.
    cov = np.array([[0.01, 0.5 * 0.1 * 0.2], [0.5 * 0.1 * 0.2, 0.04]])
    assert equal_risk_contribution(covariance=cov) == pytest.approx([2 / 3, 1 / 3], abs=1e-7)


def test_equal_risk_contribution_equalises_risk_with_correlations():
    vols = np.array([0.10, 0.15, 0.25, 0.30])
    corr = np.array(
        [
            [1.0, 0.6, 0.2, 0.0],
            [0.6, 1.0, 0.3, 0.1],
            [0.2, 0.3, 1.0, 0.7],
            [0.0, 0.1, 0.7, 1.0],
        ]
    )
    cov = corr * np.outer(vols, vols)
    w = equal_risk_contribution(covariance=cov)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w > 0)
    assert risk_contributions(w, cov) == pytest.approx([0.25] * 4, abs=1e-8)
    # Correlation moves it away from plain inverse volatility.
    assert not np.allclose(w, inverse_volatility(covariance=cov), atol=1e-3)


def test_equal_risk_contribution_with_a_budget():
    cov = np.diag([0.01, 0.04, 0.09])
    w = equal_risk_contribution(covariance=cov, budget=[2, 1, 1])
    assert risk_contributions(w, cov) == pytest.approx([0.5, 0.25, 0.25], abs=1e-8)
    # Uncorrelated: w_i ∝ √b_i / σ_i = √2/0.1 : 1/0.2 : 1/0.3.
    raw = np.array([2**0.5 / 0.1, 1 / 0.2, 1 / 0.3])
    assert w == pytest.approx(raw / raw.sum(), abs=1e-7)


def test_size_position_selects_a_rule_by_name():
    assert size_position("kelly", win_rate=0.6, payoff_ratio=2) == pytest.approx(0.4)
    w = size_position("risk_parity", covariance=np.diag([0.01, 0.04]))
    assert w == pytest.approx([2 / 3, 1 / 3], abs=1e-7)


def test_size_position_names_unknown_methods_and_parameters():
    with pytest.raises(SizingError, match="unknown sizing method 'martingale'"):
        size_position("martingale")
    with pytest.raises(SizingError, match="kelly does not take leverage"):
        size_position("kelly", win_rate=0.6, payoff_ratio=2, leverage=3)
    with pytest.raises(SizingError, match="kelly needs payoff_ratio"):
        size_position("kelly", win_rate=0.6)
    with pytest.raises(SizingError, match="win_rate must be between 0 and 1"):
        size_position("kelly", win_rate=1.5, payoff_ratio=2)

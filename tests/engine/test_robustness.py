"""Robustness checks: significance, parameters vs trades, and the Monte Carlo percentiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trading.engine.robustness import (
    mean_return_significance,
    parameters_vs_trades,
    robustness_report,
)


def test_t_statistic_and_p_value_of_the_mean_return():
    r = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    # mean 0.03; sample std sqrt(0.001 / 4) = 0.0158114; t = 0.03 / (0.0158114 / sqrt(5))
    # = 3 * sqrt(2) = 4.2426 with 4 degrees of freedom.
    res = mean_return_significance(r)
    assert res["t_stat"] == pytest.approx(3 * math.sqrt(2))
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(3 * math.sqrt(2), 4))
    assert res["p_value_positive"] == pytest.approx(res["p_value"] / 2)
    assert 0.013 < res["p_value"] < 0.014 and res["significant"] is True


def test_noise_is_not_significant_and_too_little_data_gives_no_test():
    rng = np.random.default_rng(0)
    assert mean_return_significance(rng.normal(0, 0.01, 500))["significant"] is False
    assert mean_return_significance(np.array([0.01, 0.02]))["t_stat"] is None


def test_too_few_trades_per_parameter_is_flagged():
    assert parameters_vs_trades(3, 45)["trades_per_param"] == 15
    assert parameters_vs_trades(3, 45)["warning"] is None
    warn = parameters_vs_trades(3, 29)["warning"]
    assert "29 trades for 3 parameters" in warn
    assert parameters_vs_trades(0, 5)["trades_per_param"] is None


def test_report_collects_the_warnings_a_reader_needs():
    rng = np.random.default_rng(1)
    eq = 1000 * np.cumprod(1 + rng.normal(0, 0.01, 300))
    pnl = rng.normal(0, 5, 12)
    rep = robustness_report(eq, trade_pnl=pnl, n_params=3, n_sims=200, seed=2)
    text = " | ".join(rep["warnings"])
    assert "not significantly different from zero" in text
    assert "12 trades for 3 parameters" in text
    assert "only 12 closed trades" in text
    assert rep["passed"] is False
    mc = rep["monte_carlo_returns"]
    assert mc["n_sims"] == 200
    assert 0.0 <= mc["max_drawdown"]["actual_percentile"] <= 100.0
    assert rep["monte_carlo_trades"]["method"] == "trades"


def test_a_strong_steady_run_passes():
    rng = np.random.default_rng(3)
    eq = 1000 * np.cumprod(1 + rng.normal(0.002, 0.005, 500))
    pnl = np.abs(rng.normal(10, 2, 60))
    rep = robustness_report(eq, trade_pnl=pnl, n_params=2, n_sims=200)
    assert rep["significance"]["significant"] is True
    assert rep["warnings"] == [] and rep["passed"] is True

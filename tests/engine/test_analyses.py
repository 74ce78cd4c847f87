"""Analyses: optimisation, walk-forward, hold-out, comparison, Monte Carlo and attribution."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from trading.engine import analyses as an
from trading.engine import synthetic
from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.portfolio import Trade
from trading.engine.strategies import create_strategy

SPACE = {"entry_window": [10, 20], "exit_window": [5, 10]}


@pytest.fixture(scope="module")
def bars():
    return synthetic.gbm(2000, seed=21, drift=0.0002)


def test_parameter_grid_and_random_draws():
    assert an.parameter_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"},
                                                           {"a": 2, "b": "x"}]
    draws = an.random_parameters({"n": (5, 7), "k": (0.5, 1.5), "c": ["u", "v"]}, 50, seed=3)
    assert draws == an.random_parameters({"n": (5, 7), "k": (0.5, 1.5), "c": ["u", "v"]}, 50,
                                         seed=3)
    assert {d["n"] for d in draws} == {5, 6, 7}
    assert all(0.5 <= d["k"] <= 1.5 for d in draws)
    assert {d["c"] for d in draws} == {"u", "v"}


def test_optimisation_picks_the_candidate_a_direct_backtest_ranks_first(bars):
    res = an.optimize(bars, "donchian", SPACE, objective="total_return")
    direct = {}
    for params in an.parameter_grid(SPACE):
        r = run_backtest(bars, create_strategy("donchian", **params))
        direct[tuple(params.values())] = r.metrics["total_return"]
    best = max(direct, key=direct.get)
    assert tuple(res["best_params"].values()) == best
    assert res["best_value"] == pytest.approx(direct[best])
    assert res["n_trials"] == 4
    # Minimising the same objective picks the worst one instead.
    worst = an.optimize(bars, "donchian", SPACE, objective="total_return", maximize=False)
    assert tuple(worst["best_params"].values()) == min(direct, key=direct.get)


def test_random_search_draws_integers_for_integer_parameters_and_is_seeded(bars):
    space = {"entry_window": (5, 40), "exit_window": (3, 15)}
    a = an.optimize(bars, "donchian", space, method="random", n_samples=6, seed=9)
    b = an.optimize(bars, "donchian", space, method="random", n_samples=6, seed=9)
    assert a["trials"] == b["trials"] and a["n_trials"] == 6
    for t in a["trials"]:
        assert isinstance(t["params"]["entry_window"], int) and 5 <= t["params"]["entry_window"] <= 40
        assert t["error"] is None
    values = [t["value"] for t in a["trials"] if t["value"] is not None]
    assert a["best_value"] == max(values)


def test_a_trial_measured_over_all_bars_reproduces_the_backtest_metrics(bars):
    trial = an.run_trial(an.Trial("rsi", {"window": 10}, bars))
    r = run_backtest(bars, create_strategy("rsi", window=10))
    for key in ("total_return", "sharpe", "max_drawdown", "n_trades", "exposure_avg",
                "turnover"):
        assert trial["metrics"][key] == pytest.approx(r.metrics[key]), key


def test_bad_parameters_become_a_failed_trial_not_a_crash(bars):
    res = an.optimize(bars, "rsi", {"oversold": [20, 80], "overbought": [70]},
                      objective="total_return")
    errors = [t["error"] for t in res["trials"]]
    assert errors[0] is None and "below overbought" in errors[1]
    assert res["best_params"] == {"oversold": 20, "overbought": 70}
    # Short signals in a long-only backtest are refused by the engine: also a failed trial.
    shorts = an.optimize(bars, "donchian", {"allow_short": [False, True]},
                         objective="total_return")
    assert shorts["trials"][0]["error"] is None
    assert "allow_short" in shorts["trials"][1]["error"]


def test_an_out_of_sample_run_starts_flat_at_its_first_bar(bars):
    res = an.run_trial(an.Trial("donchian", {}, bars, lo=500, hi=1500, start=1000,
                                keep_equity=True))
    assert res["trades"], "expected some out-of-sample trades"
    assert min(t["entry_bar"] for t in res["trades"]) >= 1000
    assert res["equity"][0] == pytest.approx(100_000.0)  # nothing open before the start
    assert len(res["equity"]) == 1500 - 1000 + 1


def test_walk_forward_windows_roll_or_anchor():
    # n = 100, 3 windows: test = 100 // 6 = 16 bars, train = 48 bars.
    assert an.walk_forward_windows(100, n_windows=3) == [
        (0, 48, 48, 64), (16, 64, 64, 80), (32, 80, 80, 96)]
    assert an.walk_forward_windows(100, n_windows=3, anchored=True) == [
        (0, 48, 48, 64), (0, 64, 64, 80), (0, 80, 80, 96)]
    with pytest.raises(ValueError, match="not enough bars"):
        an.walk_forward_windows(10, n_windows=3, train_bars=20, test_bars=5)


def test_walk_forward_stitches_the_out_of_sample_equity(bars):
    res = an.walk_forward(bars, "donchian", SPACE, n_windows=3, objective="sharpe")
    windows = res["windows"]
    assert len(windows) == 3
    # 2000 // 6 = 333-bar tests after a 999-bar training window.
    assert [w["test"] for w in windows] == [[999, 1332], [1332, 1665], [1665, 1998]]
    assert all(w["best_params"] is not None for w in windows)
    eq, ts = res["equity"], res["timestamps"]
    assert eq.shape == ts.shape == (3 * 333 + 1,)
    assert ts[0] == bars.timestamps[998] and ts[-1] == bars.timestamps[1997]
    # The stitched curve compounds the windows' out-of-sample returns.
    total = np.prod([1 + w["out_of_sample_metrics"]["total_return"] for w in windows]) - 1
    assert res["metrics"]["total_return"] == pytest.approx(total)


def test_fanning_out_over_processes_gives_the_same_answer(bars):
    serial = an.optimize(bars, "donchian", SPACE)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = an.optimize(bars, "donchian", SPACE, executor=pool)
        mc = an.monte_carlo(equity=bars.close[:, 0], n_sims=200, seed=5, executor=pool)
    assert parallel["trials"] == serial["trials"]
    assert mc == an.monte_carlo(equity=bars.close[:, 0], n_sims=200, seed=5)


def test_holdout_optimises_on_the_start_and_tests_on_the_end(bars):
    res = an.holdout(bars, "donchian", SPACE, holdout_fraction=0.25, objective="sharpe")
    assert res["split_bar"] == 1500
    assert res["best_params"] in an.parameter_grid(SPACE)
    direct = an.run_trial(an.Trial("donchian", res["best_params"], bars, start=1500))
    assert res["out_of_sample"] == direct["metrics"]["sharpe"]


def test_compare_ranks_strategies_by_the_objective(bars):
    res = an.compare(bars, [{"strategy": "rsi"}, {"strategy": "donchian", "label": "turtle"}],
                     objective="total_return")
    rows = {r["label"]: r for r in res["rows"]}
    assert set(rows) == {"rsi", "turtle"}
    better = max(rows, key=lambda k: rows[k]["metrics"]["total_return"])
    assert rows[better]["rank"] == 1


def test_monte_carlo_of_a_single_block_reproduces_the_actual_run():
    eq = np.array([100.0, 110.0, 99.0, 108.9, 120.0])
    # block = n: the only block starts at 0, so every path is the actual one.
    res = an.monte_carlo(equity=eq, method="returns", block=4, n_sims=50)
    fr = res["final_return"]
    assert fr["p5"] == fr["p95"] == pytest.approx(0.2)
    assert fr["actual_percentile"] == 100.0
    assert res["max_drawdown"]["p50"] == pytest.approx(-0.1)


def test_monte_carlo_of_trades_bootstraps_the_pnl():
    eq = np.array([100.0, 110.0, 90.0])
    res = an.monte_carlo(equity=eq, trade_pnl=np.array([10.0, -20.0]), method="trades",
                         n_sims=4000, seed=1)
    # Actual: 100 -> 110 -> 90: final -10 %, drawdown 90/110 - 1.
    assert res["final_return"]["actual"] == pytest.approx(-0.10)
    assert res["max_drawdown"]["actual"] == pytest.approx(90 / 110 - 1)
    # Two draws of +10/-20: +20 % (1/4), -10 % (1/2), -40 % (1/4).
    assert res["probability_of_loss"] == pytest.approx(0.75, abs=0.03)
    assert res["final_return"]["p50"] == pytest.approx(-0.10)
    again = an.monte_carlo(equity=eq, trade_pnl=np.array([10.0, -20.0]), method="trades",
                           n_sims=4000, seed=1)
    assert again == res


def test_block_bootstrap_indices_are_contiguous_blocks():
    rng = np.random.default_rng(0)
    idx = an.block_bootstrap_indices(rng, 10, 3, 5)
    assert idx.shape == (5, 10)
    # Within each block of 3 the indices step by one.
    blocks = idx[:, :9].reshape(5, 3, 3)
    assert (np.diff(blocks, axis=2) == 1).all()
    assert idx.max() <= 9


def test_attribution_by_symbol_side_and_month():
    day = 86_400 * 10**9
    ts = np.array(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"],
                  dtype="datetime64[ns]").astype(np.int64)
    assert ts[1] - ts[0] == day
    trades = [
        Trade("A", 1, 0, 10.0, 1.0, exit_bar=1, exit_price=12.0, pnl=2.0),
        Trade("B", -1, 1, 10.0, 1.0, exit_bar=2, exit_price=11.0, pnl=-1.0),
        Trade("A", 1, 2, 10.0, 1.0, exit_bar=3, exit_price=15.0, pnl=5.0),
        Trade("B", 1, 3, 10.0, 1.0, pnl=0.5),  # still open
    ]
    res = an.attribution(SimpleNamespace(timestamps=ts, trades=trades))
    assert res["total_pnl"] == pytest.approx(6.5)
    assert res["by_symbol"]["A"]["pnl"] == 7.0 and res["by_symbol"]["A"]["win_rate"] == 1.0
    assert res["by_symbol"]["B"]["pnl"] == -0.5
    assert res["by_side"]["short"] == {"pnl": -1.0, "n_trades": 1, "wins": 0, "win_rate": 0.0,
                                       "share_of_pnl": pytest.approx(-1 / 6.5)}
    assert {m: b["pnl"] for m, b in res["by_month"].items()} == {"2024-01": 2.0, "2024-02": 4.0}
    assert res["open"]["n_trades"] == 1 and res["open"]["pnl"] == 0.5


def test_configured_costs_reach_the_trials(bars):
    from trading.engine.costs import Commission

    free = an.run_trial(an.Trial("donchian", {}, bars))
    costly = an.run_trial(an.Trial("donchian", {}, bars,
                                   config=BacktestConfig(commission=Commission(fixed=5.0))))
    assert costly["metrics"]["total_return"] < free["metrics"]["total_return"]

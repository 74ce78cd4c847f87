"""The quant strategies: donchian, bollinger, rsi, rules and random_forest."""

from __future__ import annotations

import numpy as np
import pytest

from trading.engine import synthetic
from trading.engine.rules import compile_rules
from trading.engine.strategies import get_strategy
from trading.engine.strategies.bollinger import BollingerReversion
from trading.engine.strategies.donchian import DonchianBreakout
from trading.engine.strategies.random_forest import (
    RandomForestStrategy,
    direction_labels,
    feature_matrix,
)
from trading.engine.strategies.rsi import RsiReversion
from trading.engine.strategies.rules_strategy import RulesStrategy
from trading.engine.types import BarSet, ParamError


def _bars(close, high=None, low=None) -> BarSet:
    c = np.asarray(close, dtype=float).reshape(-1, 1)
    h = c if high is None else np.asarray(high, dtype=float).reshape(-1, 1)
    lo = c if low is None else np.asarray(low, dtype=float).reshape(-1, 1)
    n = c.shape[0]
    return BarSet(np.arange(n, dtype=np.int64) * 86_400_000_000_000, ["X"], c, h, lo, c,
                  np.ones_like(c))


def test_every_quant_strategy_is_registered_by_name():
    assert get_strategy("donchian") is DonchianBreakout
    assert get_strategy("bollinger") is BollingerReversion
    assert get_strategy("rsi") is RsiReversion
    assert get_strategy("rules") is RulesStrategy
    assert get_strategy("random_forest") is RandomForestStrategy


def test_donchian_enters_on_a_break_of_the_previous_highs_and_exits_below_previous_lows():
    high = [10, 11, 10, 12, 13, 12, 9, 8]
    low = [9, 10, 9, 11, 12, 10, 7, 7]
    close = [9.5, 10.5, 9.5, 11.5, 12.5, 11, 8, 7.5]
    sig = DonchianBreakout(entry_window=3, exit_window=2).signals(_bars(close, high, low))
    # Highest high of bars 0-2 is 11; bar 3 closes 11.5 > 11 -> entry. Bar 4: highest of 1-3 is
    # 12, close 12.5 -> entry again (already long, the engine ignores it).
    assert sig.entries[:, 0].tolist() == [False, False, False, True, True, False, False, False]
    # Lowest low of the 2 previous bars: bar 6 -> min(12, 10) = 10, close 8 -> exit; bar 7 ->
    # min(10, 7) = 7, close 7.5 -> no exit.
    assert sig.exits[:, 0].tolist() == [False, False, False, False, False, False, True, False]
    assert sig.short_entries is None


def test_bollinger_buys_a_stretch_below_the_mean_and_sells_the_reversion():
    close = [10, 10, 10, 10, 7, 9, 11]
    sig = BollingerReversion(window=4, entry_z=1.5, exit_z=0.0, allow_short=True).signals(
        _bars(close))
    # Bar 4: window [10,10,10,7], mean 9.25, std sqrt(3*.5625 + 3.0625)/2 = 1.299 -> z = -1.732
    assert sig.entries[:, 0].tolist() == [False, False, False, False, True, False, False]
    # Bar 5: [10,10,7,9] mean 9 -> z = 0 >= 0 exits; bar 6: [10,7,9,11] mean 9.25 -> z > 0
    assert sig.exits[:, 0].tolist() == [False, False, False, False, False, True, True]
    # Bar 6: z = 1.75 / 1.479 = 1.18 < 1.5 -> no short
    assert not sig.short_entries.any()


def test_rsi_buys_oversold_and_sells_overbought():
    close = [10, 9, 8, 7, 6, 7, 8, 9, 10]
    sig = RsiReversion(window=3, oversold=30, overbought=70).signals(_bars(close))
    # Only losses over bars 1-3 -> RSI 0 at bar 3 and 4; gains from bar 5 lift RSI above 70 by
    # bar 7: gains (0,0,0,0,1,1,1) Wilder-smoothed vs losses shrinking by 2/3 each bar.
    assert sig.entries[:, 0].tolist() == [False, False, False, True, True, False, False, False,
                                          False]
    assert sig.exits[:, 0].tolist()[-2:] == [True, True]
    with pytest.raises(ParamError, match="below overbought"):
        RsiReversion(oversold=80, overbought=70)


def test_rules_strategy_runs_its_program_and_rejects_bad_programs_as_parameter_errors():
    bars = synthetic.gbm(500, seed=3)
    program = "entry: close > sma(close, 20)\nexit: close < sma(close, 20)"
    sig = RulesStrategy(program=program).signals(bars)
    np.testing.assert_array_equal(sig.entries, compile_rules(program).evaluate(bars).entries)
    with pytest.raises(ParamError, match=r"line 1, column 8: unknown function 'system'"):
        RulesStrategy(program="entry: system(close)")


# --- Random Forest ----------------------------------------------------------------------------

RF = dict(train_window=300, retrain_every=100, min_train_samples=150, n_estimators=10,
          max_depth=4)


def test_random_forest_labels_need_the_future_and_training_never_uses_unknown_labels():
    close = np.array([1.0, 2.0, 1.5, 3.0])
    # horizon 1: up, down, up, unknown
    np.testing.assert_array_equal(direction_labels(close, 1), [1.0, 0.0, 1.0, np.nan])
    # A missing price (a symbol not yet listed) gives no label rather than "down".
    np.testing.assert_array_equal(direction_labels(np.array([np.nan, 2.0, 3.0]), 1),
                                  [np.nan, 1.0, np.nan])
    bars = synthetic.gbm(1000, seed=2)
    strat = RandomForestStrategy(**RF, horizon=3)
    labels = direction_labels(bars.close[:, 0], 3)
    X_all = feature_matrix(bars.close[:, 0], 5)
    plan = strat.walk_forward_plan(bars)
    # At bar 200 only rows 49..197 have both features (SMA 50 warm-up) and known labels:
    # 149 < min_train_samples, so the first model is fitted at bar 300.
    assert [s.trained_at for s in plan] == [300, 400, 500, 600, 700, 800, 900]
    for step in plan:
        # The newest training row is T - horizon: its label uses close[T], known at T.
        last_row = np.flatnonzero((X_all == step.X[-1]).all(axis=1))[0]
        assert last_row == step.trained_at - 3
        assert step.y[-1] == labels[last_row]
        assert step.predict_start == step.trained_at


def test_random_forest_is_deterministic_for_a_seed_and_records_its_model_version():
    bars = synthetic.gbm(1200, seed=4)
    a = RandomForestStrategy(**RF, seed=7).signals(bars)
    b = RandomForestStrategy(**RF, seed=7).signals(bars)
    np.testing.assert_array_equal(a.info["probability_up"], b.info["probability_up"])
    mv = a.info["model_version"]
    assert mv["features"][:2] == ["return_lag_0", "return_lag_1"]
    assert mv["train_window"] == 300 and mv["retrain_every"] == 100
    assert mv["params"]["seed"] == 7 and len(mv["data_hash"]) == 16
    assert mv["n_models"] == 10  # trained at 200, 300, ..., 1100
    # No model before the first training point: no decisions there.
    assert not a.entries[:200].any() and np.isnan(a.info["probability_up"][:200]).all()
    assert np.isfinite(a.info["probability_up"][200:]).all()


def test_random_forest_decisions_do_not_change_when_the_future_is_cut_off():
    bars = synthetic.gbm(900, seed=5)
    full = RandomForestStrategy(**RF).signals(bars)
    for cut in (350, 555, 899):
        part_bars = BarSet(bars.timestamps[:cut], bars.symbols, bars.open[:cut], bars.high[:cut],
                           bars.low[:cut], bars.close[:cut], bars.volume[:cut])
        part = RandomForestStrategy(**RF).signals(part_bars)
        np.testing.assert_array_equal(part.info["probability_up"],
                                      full.info["probability_up"][:cut])


def test_random_forest_state_round_trips_so_a_live_step_does_not_refit(monkeypatch):
    bars = synthetic.gbm(800, seed=6)
    first = RandomForestStrategy(**RF)
    sig = first.signals(bars)
    state = first.export_state()
    assert len(state["models"]) == 6
    restored = RandomForestStrategy(**RF)
    restored.import_state(state)

    def no_refit():
        raise AssertionError("a restored model must not be refitted")

    monkeypatch.setattr(restored, "_model", no_refit)
    again = restored.signals(bars)
    np.testing.assert_array_equal(again.info["probability_up"], sig.info["probability_up"])
    with pytest.raises(ValueError, match="different parameters"):
        RandomForestStrategy(**{**RF, "seed": 1}).import_state(state)


def test_a_live_step_needs_only_the_latest_model():
    bars = synthetic.gbm(800, seed=8)
    full = RandomForestStrategy(**RF).signals(bars)
    live = RandomForestStrategy(**RF)
    live.live_bars = 1
    sig = live.signals(bars)
    # Models at 200..700; bar 799 is predicted by the model trained at bar 700 only.
    assert live.n_cached_models == 1
    assert len(live.export_state()["models"]) == 1
    assert sig.info["probability_up"][-1, 0] == full.info["probability_up"][-1, 0]
    assert sig.entries[-1, 0] == full.entries[-1, 0]
    assert np.isnan(sig.info["probability_up"][:700]).all()

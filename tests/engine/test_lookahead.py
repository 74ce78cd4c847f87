"""The look-ahead check passes every built-in strategy and catches a strategy that peeks."""

from __future__ import annotations

import numpy as np
import pytest

from trading.engine import synthetic
from trading.engine.lookahead import check_lookahead, cut_points, truncate
from trading.engine.strategies import create_strategy, list_strategies
from trading.engine.strategies.rules_strategy import RulesStrategy
from trading.engine.types import BarSet, Signals, VectorStrategy

# Small but enough for every strategy's warm-up (the Random Forest fits from bar 250).
FAST_PARAMS = {"random_forest": {"train_window": 300, "retrain_every": 150,
                                 "min_train_samples": 150, "n_estimators": 8}}


class PeeksAtTomorrow(VectorStrategy):
    """Buys when tomorrow's close is higher: the textbook look-ahead bug."""

    name = "peeks"

    def signals(self, bars: BarSet) -> Signals:
        nxt = np.full_like(bars.close, np.nan)
        nxt[:-1] = bars.close[1:]
        with np.errstate(invalid="ignore"):
            return Signals(entries=nxt > bars.close, exits=nxt < bars.close)


class NormalisesByTheWholeSeries(VectorStrategy):
    """A subtler leak: z-scores against the mean of ALL bars, future included."""

    name = "global_mean"

    def signals(self, bars: BarSet) -> Signals:
        z = bars.close - bars.close.mean(axis=0)
        return Signals(entries=z < 0, exits=z > 0)


@pytest.fixture(scope="module")
def pair_bars() -> BarSet:
    return synthetic.cointegrated_pair(900, seed=11)


@pytest.mark.parametrize("name", [s["name"] for s in list_strategies() if s["kind"] == "vector"]
                         + [s["name"] for s in list_strategies() if s["kind"] == "event"])
def test_every_registered_strategy_passes_the_lookahead_check(name, pair_bars):
    strategy = create_strategy(name, **FAST_PARAMS.get(name, {}))
    report = check_lookahead(strategy, pair_bars, n_points=8)
    assert report.passed, report.summary()
    assert report.checked_backtest
    assert len(report.cutoffs) >= 8


def test_a_strategy_peeking_at_the_next_bar_fails_at_the_last_bar_it_saw(pair_bars):
    report = check_lookahead(PeeksAtTomorrow(), pair_bars, n_points=5, backtest=False)
    assert not report.passed
    first = report.first_difference
    # With the data cut after bar k-1 the strategy cannot see bar k, so its decision at k-1
    # (the last bar it saw) changes: the earliest cut is the first difference.
    assert first.bar == report.cutoffs[0] - 1
    assert first.field in ("entries", "exits")
    assert "LOOK-AHEAD" in report.summary()


def test_a_leak_through_a_whole_series_statistic_is_caught_in_the_fills_too(pair_bars):
    report = check_lookahead(NormalisesByTheWholeSeries(), pair_bars, n_points=5)
    assert not report.passed
    fields = {d.field for d in report.differences}
    assert "entries" in fields and ("fills" in fields or "equity" in fields)


def test_a_tenants_rules_program_can_be_checked():
    bars = synthetic.gbm(600, seed=2)
    strategy = RulesStrategy(program="entry: crossover(ema(close, 8), sma(close, 40))\n"
                                     "exit: zscore(close, 30) > 1.5")
    assert check_lookahead(strategy, bars, n_points=6).passed


def test_truncation_copies_and_cut_points_include_the_warm_up():
    bars = synthetic.gbm(100, seed=1)
    part = truncate(bars, 10)
    assert part.n_bars == 10 and part.close.base is None
    part.close[:] = 0
    assert bars.close[0, 0] > 0
    pts = cut_points(100, 5, 5)
    assert pts[0] == 5 and pts[-1] == 99 and {6, 7} <= set(pts)

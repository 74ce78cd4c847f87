"""The rulebook guarding a real engine backtest: a backtest shows what the limits would have done."""

import numpy as np

from risk.core import RiskLimits, Rulebook
from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.synthetic import bars_from_closes
from trading.engine.types import Signals, VectorStrategy


class _BuyThenExit(VectorStrategy):
    name = "risk_test_buy_then_exit"

    def signals(self, bars):
        entries = np.zeros((bars.n_bars, 1), dtype=bool)
        exits = np.zeros((bars.n_bars, 1), dtype=bool)
        entries[0] = True  # fills at bar 1's open, 100.00
        exits[5] = True
        return Signals(entries=entries, exits=exits)


def test_a_drawdown_limit_halts_the_backtest_at_the_breaching_bar():
    # All cash (100,000) buys 1,000 units at 100; equity then follows the close x 1,000:
    # 90,000 at bar 3 (drawdown 10 %, under 15 %), 80,000 at bar 4 (20 %): halt at bar 4.
    close = np.array([100, 100, 100, 90, 80, 85, 86, 88, 90, 92.0])
    bars = bars_from_closes(close, np.random.default_rng(0), symbols=["SYN"])
    rules = Rulebook(RiskLimits(max_drawdown=0.15), {"SYN": {"asset_class": "equity"}})
    result = run_backtest(bars, _BuyThenExit(), BacktestConfig(), pre_trade=rules)
    assert result.halted_at == bars.timestamps[4]
    assert rules.kill_switch.tripped_at == bars.timestamps[4]
    # The exit signalled at bar 5 is refused: trading stopped at bar 4.
    assert [(r.timestamp, r.rule) for r in result.rejections] == [
        (bars.timestamps[5], "max_drawdown")
    ]
    assert result.rejections[0].reason == (
        "max_drawdown: drawdown 20.00% (equity 80,000.00 against the peak 100,000.00) exceeds "
        "the limit 15.00%"
    )

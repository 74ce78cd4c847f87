"""Bollinger / z-score mean reversion: buy when the close is `entry_z` standard deviations below
its moving average and sell once it has reverted to `exit_z`; optionally short the mirror image."""

from __future__ import annotations

import numpy as np

from trading.engine import indicators as ind
from trading.engine.strategies.registry import register
from trading.engine.types import BarSet, Param, Signals, VectorStrategy


@register
class BollingerReversion(VectorStrategy):
    name = "bollinger"
    description = "Mean reversion on the rolling z-score of the close (Bollinger bands)."
    params = (
        Param("window", int, 20, min=2, max=1000, help="Bars of the moving average and std."),
        Param("entry_z", float, 2.0, min=0.1, max=10.0,
              help="Enter long below -entry_z (short above +entry_z) standard deviations."),
        Param("exit_z", float, 0.0, min=-10.0, max=10.0,
              help="Exit a long once the z-score is back above -exit_z (a short below +exit_z)."),
        Param("allow_short", bool, False, help="Also fade upward stretches short."),
    )

    def signals(self, bars: BarSet) -> Signals:
        v = self.values
        z = ind.zscore(bars.close, v["window"])
        with np.errstate(invalid="ignore"):
            sig = Signals(entries=z < -v["entry_z"], exits=z >= -v["exit_z"])
            if v["allow_short"]:
                sig.short_entries = z > v["entry_z"]
                sig.short_exits = z <= v["exit_z"]
        return sig

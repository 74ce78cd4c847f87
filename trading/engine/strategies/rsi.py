"""RSI oversold/overbought: buy when Wilder's RSI drops below `oversold`, sell when it rises above
`overbought`; optionally short when overbought and cover when oversold."""

from __future__ import annotations

from typing import Any

import numpy as np

from trading.engine import indicators as ind
from trading.engine.strategies.registry import register
from trading.engine.types import BarSet, Param, ParamError, Signals, VectorStrategy


@register
class RsiReversion(VectorStrategy):
    name = "rsi"
    description = "Buy oversold, sell overbought on Wilder's Relative Strength Index."
    params = (
        Param("window", int, 14, min=2, max=500, help="RSI smoothing window in bars."),
        Param("oversold", float, 30.0, min=1.0, max=99.0, help="Enter long below this RSI."),
        Param("overbought", float, 70.0, min=1.0, max=99.0, help="Exit long above this RSI."),
        Param("allow_short", bool, False,
              help="Also short above `overbought` and cover below `oversold`."),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.values["oversold"] >= self.values["overbought"]:
            raise ParamError(self.name, "oversold", "must be below overbought")

    def signals(self, bars: BarSet) -> Signals:
        v = self.values
        r = ind.rsi(bars.close, v["window"])
        with np.errstate(invalid="ignore"):
            sig = Signals(entries=r < v["oversold"], exits=r > v["overbought"])
            if v["allow_short"]:
                sig.short_entries = r > v["overbought"]
                sig.short_exits = r < v["oversold"]
        return sig

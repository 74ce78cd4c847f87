"""Donchian channel breakout: go long when the close breaks above the highest high of the previous
`entry_window` bars and leave when it falls below the lowest low of the previous `exit_window`
bars (the classic Turtle rule); optionally the mirror image on the short side."""

from __future__ import annotations

import numpy as np

from trading.engine import indicators as ind
from trading.engine.strategies.registry import register
from trading.engine.types import BarSet, Param, Signals, VectorStrategy


@register
class DonchianBreakout(VectorStrategy):
    name = "donchian"
    description = "Breakout of the highest high / lowest low of the previous N bars."
    params = (
        Param("entry_window", int, 20, min=2, max=1000,
              help="Bars whose highest high (lowest low for shorts) the close must break."),
        Param("exit_window", int, 10, min=2, max=1000,
              help="Bars whose lowest low (highest high for shorts) ends the trade."),
        Param("allow_short", bool, False, help="Also trade downside breakouts short."),
    )

    def signals(self, bars: BarSet) -> Signals:
        v = self.values
        close = bars.close
        # The channel of bar t includes bar t's own high/low, so compare with bar t-1's channel.
        _, _, upper_in = ind.donchian(bars.high, bars.low, v["entry_window"])
        lower_in = ind.lowest(bars.low, v["entry_window"])
        lower_out = ind.lowest(bars.low, v["exit_window"])
        upper_out = ind.highest(bars.high, v["exit_window"])
        with np.errstate(invalid="ignore"):
            entries = close > ind.shift(upper_in, 1)
            exits = close < ind.shift(lower_out, 1)
            sig = Signals(entries=entries, exits=exits)
            if v["allow_short"]:
                sig.short_entries = close < ind.shift(lower_in, 1)
                sig.short_exits = close > ind.shift(upper_out, 1)
        return sig

"""Pairs trading on a cointegrated spread: rolling-OLS hedge ratio, z-score entry and exit.

At each bar t, over the last `window` closes (up to and including t), y is regressed on x:
beta = cov(x, y) / var(x), alpha = mean(y) - beta * mean(x); the spread residual
y - alpha - beta * x is scaled by the regression's residual standard deviation to a z-score.
z > entry_z: short the spread (sell y, buy beta x); z < -entry_z: long it; |z| < exit_z: flat.
Positions are expressed as target weights of equity, fixed at entry (gross exposure `gross`,
split between the legs in proportion to their notional y : beta * x) and held until the exit,
so the engine places orders only when the state changes. Needs `allow_short=True`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..types import BarSet, Param, Signals, VectorStrategy
from .registry import register


def rolling_hedge(x: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(beta, z) per bar from a rolling OLS of y on x; NaN during the warm-up."""
    xs, ys = pd.Series(x), pd.Series(y)
    var_x = xs.rolling(window).var(ddof=0)
    var_y = ys.rolling(window).var(ddof=0)
    cov = xs.rolling(window).cov(ys, ddof=0)
    beta = cov / var_x
    alpha = ys.rolling(window).mean() - beta * xs.rolling(window).mean()
    resid_var = (var_y - beta * cov).clip(lower=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (ys - alpha - beta * xs) / np.sqrt(resid_var)
    z = z.where(resid_var > 0)
    return beta.to_numpy(), z.to_numpy()


@register
class Pairs(VectorStrategy):
    name = "pairs"
    description = "Cointegrated pair: rolling OLS hedge ratio, trade the spread's z-score " \
        "(first symbol = x, second = y; needs allow_short)."
    params = (
        Param("window", int, 120, min=10, help="bars in the rolling regression"),
        Param("entry_z", float, 2.0, min=0.0, help="open when |z| exceeds this"),
        Param("exit_z", float, 0.5, min=0.0, help="close when |z| falls below this"),
        Param("gross", float, 1.0, min=0.0, max=2.0, help="gross exposure, fraction of equity"),
    )

    def signals(self, bars: BarSet) -> Signals:
        if bars.n_symbols != 2:
            raise ValueError(f"pairs needs exactly two symbols, got {bars.n_symbols}")
        v = self.values
        x, y = bars.close[:, 0], bars.close[:, 1]
        beta, z = rolling_hedge(x, y, v["window"])
        event = np.full(len(z), np.nan)
        event[np.abs(z) < v["exit_z"]] = 0.0
        event[z > v["entry_z"]] = -1.0  # spread rich: short y, long x
        event[z < -v["entry_z"]] = 1.0
        state = pd.Series(event).ffill().fillna(0.0).to_numpy()
        changed = np.r_[state[0] != 0.0, state[1:] != state[:-1]]
        leg_y = y / (y + np.abs(beta) * x)
        target = np.full((len(z), 2), np.nan)
        target[changed, 1] = state[changed] * v["gross"] * leg_y[changed]
        target[changed, 0] = -state[changed] * v["gross"] * (1.0 - leg_y[changed]) * np.sign(
            beta[changed])
        n = bars.n_bars
        return Signals(entries=np.zeros((n, 2), bool), exits=np.zeros((n, 2), bool),
                       target_weight=target, info={"hedge_ratio_last": float(beta[-1])})

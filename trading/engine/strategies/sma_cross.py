"""The SMA crossover: long when the fast mean crosses above the slow one, flat when below.

This is the reference strategy of the engine benchmark. With a known tick size the means are
compared exactly on integer ticks (sign(slow * K_fast - fast * K_slow), in int64), so exact
ties (diff = 0) are ties; the crossover follows the "last non-zero difference" rule: a bar with
a zero difference is never a signal and does not reset the state. Without a tick size the float
means are compared (ties then depend on rounding).
"""

from __future__ import annotations

import numpy as np

from ..types import BarSet, Param, ParamError, Signals, VectorStrategy
from .registry import register


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Window sums along axis 0; rows before n-1 are zero. Exact for integer dtypes."""
    c = np.cumsum(x, axis=0)
    out = np.zeros_like(c)
    out[n - 1] = c[n - 1]
    out[n:] = c[n:] - c[:-n]
    return out


def crossover(sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross up/down under the last-non-zero-difference rule (sign is -1/0/+1, shape (n, s))."""
    n = sign.shape[0]
    idx = np.where(sign != 0, np.arange(n)[:, None], -1)
    last = np.maximum.accumulate(idx, axis=0)  # row of the latest non-zero sign so far
    last_sign = np.where(last >= 0, np.take_along_axis(sign, np.maximum(last, 0), axis=0), 0)
    prev = np.zeros_like(last_sign)
    prev[1:] = last_sign[:-1]
    return (sign > 0) & (prev < 0), (sign < 0) & (prev > 0)


def sma_diff_sign(close: np.ndarray, fast: int, slow: int, tick: float | None) -> np.ndarray:
    """sign(SMA_fast - SMA_slow), zero where the slow mean is undefined."""
    n = close.shape[0]
    out = np.zeros(close.shape, dtype=np.int8)
    if n < slow:
        return out
    if tick:
        k = np.rint(close / tick).astype(np.int64)
        d = slow * rolling_sum(k, fast) - fast * rolling_sum(k, slow)
    else:
        fast_sum = rolling_sum(close, fast)
        slow_sum = rolling_sum(close, slow)
        d = fast_sum / fast - slow_sum / slow
    out[slow - 1:] = np.sign(d[slow - 1:]).astype(np.int8)
    return out


@register
class SmaCross(VectorStrategy):
    name = "sma_cross"
    description = "Long when the fast simple moving average crosses above the slow one; flat " \
        "when it crosses below (exact tie handling on integer ticks)."
    params = (
        Param("fast", int, 10, min=1, help="fast window, in bars"),
        Param("slow", int, 50, min=2, help="slow window, in bars"),
    )

    def __init__(self, **values: object) -> None:
        super().__init__(**values)
        if self.values["fast"] >= self.values["slow"]:
            raise ParamError(self.name, "fast", "must be smaller than slow")

    def signals(self, bars: BarSet) -> Signals:
        sign = sma_diff_sign(bars.close, self.values["fast"], self.values["slow"], bars.tick_size)
        up, down = crossover(sign)
        return Signals(entries=up, exits=down)

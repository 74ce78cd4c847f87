"""Technical indicators, vectorised over bars and symbols, none of which looks ahead.

Every function takes arrays shaped (n,) or (n_bars, n_symbols) and works along axis 0. The value
at bar t is computed from data at bars <= t only, and is NaN during the warm-up (before a full
window of data is available). Values are prefix-stable: computing on the first k bars gives
exactly the first k values of the full computation, which the look-ahead check relies on.
A window containing a NaN (a symbol that starts trading later) gives NaN.

Windowed statistics use pandas' rolling windows (single pass, O(n) whatever the window, so a
tenant's long window cannot make a worker spin); recursive ones use scipy's `lfilter`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.signal import lfilter


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_window(window: int) -> int:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    return int(window)


def _frame(x: np.ndarray) -> pd.DataFrame | pd.Series:
    return pd.Series(x) if x.ndim == 1 else pd.DataFrame(x)


def _windowed(x: np.ndarray, window: int,
              reducer: Callable[[pd.api.typing.Rolling], pd.DataFrame | pd.Series]) -> np.ndarray:
    """A trailing-window statistic; NaN until `window` valid values are in the window."""
    x = _as_float(x)
    window = _check_window(window)
    rolling = _frame(x).rolling(window, min_periods=window)
    return np.asarray(reducer(rolling).to_numpy(dtype=np.float64)).reshape(x.shape)


def rolling_sum_ticks(ticks: np.ndarray, window: int) -> np.ndarray:
    """Exact trailing sums of integer ticks (int64); the first window-1 rows are 0 and invalid."""
    t = np.asarray(ticks, dtype=np.int64)
    window = _check_window(window)
    c = np.cumsum(t, axis=0)
    out = np.zeros_like(c)
    if t.shape[0] >= window:
        out[window - 1 :] = c[window - 1 :]
        out[window:] -= c[:-window]
    return out


def to_ticks(prices: np.ndarray, tick_size: float) -> np.ndarray:
    """Prices as integer ticks: round(price / tick_size)."""
    return np.rint(_as_float(prices) / tick_size).astype(np.int64)


def sma(x: np.ndarray, window: int, tick_size: float | None = None) -> np.ndarray:
    """Simple moving average of the last `window` values.

    With `tick_size`, prices are summed as exact integer ticks, so two averages of the same
    prices compare exactly (no floating-point drift from a running sum).
    """
    x = _as_float(x)
    window = _check_window(window)
    if tick_size:
        sums = rolling_sum_ticks(to_ticks(x, tick_size), window)
        out = sums.astype(np.float64) * tick_size / window
        out[: window - 1] = np.nan
        return out
    return _windowed(x, window, lambda r: r.mean())


def sma_compare_exact(ticks: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Sign of sma(fast) - sma(slow) computed exactly on integer ticks: -1, 0 or +1.

    sum_fast / fast vs sum_slow / slow is compared as sum_fast * slow vs sum_slow * fast, all in
    int64, so exact ties are recognised as ties. Rows before the slow warm-up are 0.
    """
    a = rolling_sum_ticks(ticks, fast) * slow
    b = rolling_sum_ticks(ticks, slow) * fast
    out = np.sign(a - b)
    out[: max(fast, slow) - 1] = 0
    return out


def _recursive_mean(x: np.ndarray, window: int, alpha: float) -> np.ndarray:
    """y_t = alpha x_t + (1 - alpha) y_{t-1}, seeded with the simple mean of the first `window`
    valid values (the TA-Lib convention for EMA and Wilder's smoothing); NaN before that."""
    x = _as_float(x)
    squeeze = x.ndim == 1
    x2 = x.reshape(x.shape[0], -1)
    out = np.full(x2.shape, np.nan)
    for j in range(x2.shape[1]):
        col = x2[:, j]
        valid = np.flatnonzero(np.isfinite(col))
        if valid.size == 0:
            continue
        start = valid[0]
        seed_end = start + window - 1
        if seed_end >= col.size:
            continue
        seed = col[start : seed_end + 1].mean()
        out[seed_end, j] = seed
        rest = col[seed_end + 1 :]
        if rest.size:
            y, _ = lfilter([alpha], [1.0, alpha - 1.0], rest, zi=[(1.0 - alpha) * seed])
            out[seed_end + 1 :, j] = y
    return out[:, 0] if squeeze else out


def ema(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average with alpha = 2 / (window + 1), seeded by the first SMA."""
    window = _check_window(window)
    return _recursive_mean(x, window, 2.0 / (window + 1))


def wilder(x: np.ndarray, window: int) -> np.ndarray:
    """Wilder's smoothing (an EMA with alpha = 1 / window), seeded by the first SMA."""
    window = _check_window(window)
    return _recursive_mean(x, window, 1.0 / window)


def rsi(close: np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's Relative Strength Index in [0, 100]; first value at bar `window`.

    RSI = 100 - 100 / (1 + avg_gain / avg_loss), where average gains and losses of the price
    changes are Wilder-smoothed. All gains gives 100; no movement at all gives 50.
    """
    c = _as_float(close)
    window = _check_window(window)
    diff = np.full(c.shape, np.nan)
    diff[1:] = c[1:] - c[:-1]
    gain = wilder(np.where(diff > 0, diff, np.where(np.isnan(diff), np.nan, 0.0)), window)
    loss = wilder(np.where(diff < 0, -diff, np.where(np.isnan(diff), np.nan, 0.0)), window)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + gain / loss)
    out = np.where((loss == 0) & (gain > 0), 100.0, out)
    out = np.where((loss == 0) & (gain == 0), 50.0, out)
    return np.where(np.isnan(gain) | np.isnan(loss), np.nan, out)


def rolling_std(x: np.ndarray, window: int, ddof: int = 0) -> np.ndarray:
    """Standard deviation of the last `window` values."""
    out = _windowed(x, window, lambda r: r.std(ddof=ddof))
    # The single-pass algorithm can leave a residue like 1e-9 on a constant window; a window
    # whose values are all equal has no dispersion.
    same = _windowed(x, window, lambda r: r.max()) == _windowed(x, window, lambda r: r.min())
    return np.where(same, 0.0, out)


def bollinger(
    close: np.ndarray, window: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (lower, middle, upper): SMA +/- k population standard deviations."""
    mid = sma(close, window)
    sd = rolling_std(close, window, ddof=0)
    return mid - k * sd, mid, mid + k * sd


def zscore(x: np.ndarray, window: int = 20) -> np.ndarray:
    """(x - SMA) / population std over the last `window` values; NaN when the std is zero."""
    x = _as_float(x)
    mid = sma(x, window)
    sd = rolling_std(x, window, ddof=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (x - mid) / sd, np.nan)


def highest(x: np.ndarray, window: int) -> np.ndarray:
    """Maximum of the last `window` values (including the current one)."""
    return _windowed(x, window, lambda r: r.max())


def lowest(x: np.ndarray, window: int) -> np.ndarray:
    """Minimum of the last `window` values (including the current one)."""
    return _windowed(x, window, lambda r: r.min())


def donchian(
    high: np.ndarray, low: np.ndarray, window: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Donchian channel (lower, middle, upper): lowest low and highest high of `window` bars.

    The channel includes bar t, so a breakout rule compares bar t's close with the channel of
    bar t-1 (see `shift`).
    """
    upper = highest(high, window)
    lower = lowest(low, window)
    return lower, (upper + lower) / 2.0, upper


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high - low, |high - previous close|, |low - previous close|); high - low on bar 0."""
    h, lo, c = _as_float(high), _as_float(low), _as_float(close)
    prev = shift(c, 1)
    tr = np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))
    return tr


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Average True Range, Wilder-smoothed."""
    return wilder(true_range(high, low, close), window)


def shift(x: np.ndarray, periods: int = 1) -> np.ndarray:
    """The value `periods` bars ago (positive only: shifting backwards would look ahead)."""
    if int(periods) != periods or periods < 0:
        raise ValueError("shift periods must be a non-negative integer (no look-ahead)")
    x = _as_float(x)
    if periods == 0:
        return x.copy()
    out = np.full(x.shape, np.nan)
    if periods < x.shape[0]:
        out[periods:] = x[:-periods]
    return out


def log_returns(close: np.ndarray) -> np.ndarray:
    c = _as_float(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(c / shift(c, 1))


def rolling_volatility(close: np.ndarray, window: int = 20, ppy: float | None = None) -> np.ndarray:
    """Sample std (ddof=1) of the last `window` log returns, annualised when `ppy` is given."""
    window = _check_window(window)
    if window < 2:
        raise ValueError("volatility needs a window of at least 2")
    vol = rolling_std(log_returns(close), window, ddof=1)
    return vol * np.sqrt(ppy) if ppy else vol


def rolling_hedge_ratio(y: np.ndarray, x: np.ndarray, window: int = 60) -> np.ndarray:
    """Rolling OLS slope of y on x (with intercept): cov(x, y) / var(x) over `window` bars."""
    window = _check_window(window)
    if window < 2:
        raise ValueError("a hedge ratio needs a window of at least 2")
    y, x = _as_float(y), _as_float(x)
    if y.shape != x.shape:
        raise ValueError("y and x must have the same shape")
    fy, fx = _frame(y), _frame(x)
    cov = fy.rolling(window, min_periods=window).cov(fx)
    var = fx.rolling(window, min_periods=window).var()
    flat = _windowed(x, window, lambda r: r.max()) == _windowed(x, window, lambda r: r.min())
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.asarray((cov / var).to_numpy(dtype=np.float64)).reshape(y.shape)
    return np.where(flat, np.nan, beta)


def crossover(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where a crosses above b: a_t > b_t and a_{t-1} <= b_{t-1}."""
    a, b = np.broadcast_arrays(_as_float(a), _as_float(b))
    with np.errstate(invalid="ignore"):
        return (a > b) & (shift(a, 1) <= shift(b, 1))


def crossunder(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where a crosses below b: a_t < b_t and a_{t-1} >= b_{t-1}."""
    a, b = np.broadcast_arrays(_as_float(a), _as_float(b))
    with np.errstate(invalid="ignore"):
        return (a < b) & (shift(a, 1) >= shift(b, 1))

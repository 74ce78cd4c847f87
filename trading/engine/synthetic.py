"""Deterministic synthetic bars for tests, benchmarks and demos.

Every generator takes a `seed` and returns the same `BarSet` for the same arguments (numpy's
PCG64 through `default_rng`). Prices are rounded to a tick (4 decimals by default) so they can
be written as the reference CSV and read back unchanged; volumes are whole numbers. Bars are
built from a close path: open = previous close, high/low extend beyond open and close by a
random excursion, so every bar satisfies low <= min(open, close) <= max(open, close) <= high.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .types import BarSet

DEFAULT_START = "2024-01-01T00:00:00"


def _timestamps(n: int, start: str, bar_seconds: int) -> np.ndarray:
    t0 = np.datetime64(start, "ns").astype(np.int64)
    return t0 + np.arange(n, dtype=np.int64) * np.int64(bar_seconds * 1_000_000_000)


def _round(x: np.ndarray, decimals: int) -> np.ndarray:
    return np.round(x, decimals)


def bars_from_closes(close: np.ndarray, rng: np.random.Generator, *, symbols: Sequence[str],
                     start: str = DEFAULT_START, bar_seconds: int = 60, decimals: int = 4,
                     wick: float = 0.0005, mean_volume: float = 1000.0) -> BarSet:
    """OHLCV bars around a close path of shape (n, s) (already positive)."""
    close = np.asarray(close, dtype=np.float64)
    if close.ndim == 1:
        close = close[:, None]
    n, s = close.shape
    tick = 10.0 ** -decimals
    c = np.maximum(_round(close, decimals), tick)
    o = np.empty_like(c)
    o[0] = c[0]
    o[1:] = c[:-1]
    up = np.abs(rng.standard_normal((n, s))) * wick
    down = np.abs(rng.standard_normal((n, s))) * wick
    h = np.maximum(_round(np.maximum(o, c) * (1.0 + up), decimals), np.maximum(o, c))
    lo = np.minimum(_round(np.minimum(o, c) * (1.0 - down), decimals), np.minimum(o, c))
    lo = np.maximum(lo, tick)
    vol = np.floor(rng.lognormal(np.log(mean_volume), 0.5, (n, s)))
    return BarSet(_timestamps(n, start, bar_seconds), list(symbols), o, h, lo, c, vol,
                  tick_size=float(f"1e-{decimals}") if decimals else 1.0,
                  meta={"source": "synthetic"})


def gbm(n: int, *, seed: int, s0: float = 100.0, drift: float = 0.0, volatility: float = 0.001,
        symbol: str = "SYN", start: str = DEFAULT_START, bar_seconds: int = 60,
        decimals: int = 4) -> BarSet:
    """Geometric Brownian motion; `drift` and `volatility` are per bar (log-return mean, std)."""
    rng = np.random.default_rng(seed)
    r = (drift - 0.5 * volatility**2) + volatility * rng.standard_normal(n)
    r[0] = 0.0
    close = s0 * np.exp(np.cumsum(r))
    return bars_from_closes(close, rng, symbols=[symbol], start=start, bar_seconds=bar_seconds,
                            decimals=decimals)


def regime_switching(n: int, *, seed: int, s0: float = 100.0,
                     regimes: Sequence[tuple[float, float]] = ((0.0002, 0.0008), (-0.0003, 0.002)),
                     switch_probability: float = 0.005, symbol: str = "SYN",
                     start: str = DEFAULT_START, bar_seconds: int = 60,
                     decimals: int = 4) -> BarSet:
    """A Markov chain over (drift, volatility) regimes; leaves the regime with the given
    probability per bar. The regime path is in `meta["regime"]`."""
    rng = np.random.default_rng(seed)
    k = len(regimes)
    switches = rng.random(n) < switch_probability
    jumps = rng.integers(1, max(k, 2), n) if k > 1 else np.zeros(n, dtype=np.int64)
    state = np.cumsum(np.where(switches, jumps, 0)) % k
    mu = np.array([r[0] for r in regimes])[state]
    sig = np.array([r[1] for r in regimes])[state]
    r = (mu - 0.5 * sig**2) + sig * rng.standard_normal(n)
    r[0] = 0.0
    bars = bars_from_closes(s0 * np.exp(np.cumsum(r)), rng, symbols=[symbol], start=start,
                            bar_seconds=bar_seconds, decimals=decimals)
    bars.meta["regime"] = state
    return bars


def jump_diffusion(n: int, *, seed: int, s0: float = 100.0, drift: float = 0.0,
                   volatility: float = 0.001, jump_intensity: float = 0.001,
                   jump_mean: float = -0.01, jump_std: float = 0.02, symbol: str = "SYN",
                   start: str = DEFAULT_START, bar_seconds: int = 60,
                   decimals: int = 4) -> BarSet:
    """Merton jump diffusion: GBM plus Poisson(jump_intensity per bar) normal log-jumps."""
    rng = np.random.default_rng(seed)
    r = (drift - 0.5 * volatility**2) + volatility * rng.standard_normal(n)
    counts = rng.poisson(jump_intensity, n)
    r += counts * jump_mean + np.sqrt(counts) * jump_std * rng.standard_normal(n)
    r[0] = 0.0
    return bars_from_closes(s0 * np.exp(np.cumsum(r)), rng, symbols=[symbol], start=start,
                            bar_seconds=bar_seconds, decimals=decimals)


def correlated_basket(n: int, *, seed: int, n_assets: int = 4, correlation: float = 0.5,
                      s0: float = 100.0, drift: float = 0.0, volatility: float = 0.001,
                      start: str = DEFAULT_START, bar_seconds: int = 60,
                      decimals: int = 4) -> BarSet:
    """GBMs with equal pairwise correlation of log returns (Cholesky of the correlation)."""
    if not -1.0 / max(n_assets - 1, 1) < correlation < 1.0:
        raise ValueError("correlation must keep the matrix positive definite")
    rng = np.random.default_rng(seed)
    corr = np.full((n_assets, n_assets), correlation)
    np.fill_diagonal(corr, 1.0)
    z = rng.standard_normal((n, n_assets)) @ np.linalg.cholesky(corr).T
    r = (drift - 0.5 * volatility**2) + volatility * z
    r[0] = 0.0
    symbols = [f"A{i}" for i in range(n_assets)]
    return bars_from_closes(s0 * np.exp(np.cumsum(r, axis=0)), rng, symbols=symbols, start=start,
                            bar_seconds=bar_seconds, decimals=decimals)


def cointegrated_pair(n: int, *, seed: int, s0: float = 100.0, hedge_ratio: float = 1.5,
                      intercept: float = 20.0, volatility: float = 0.001,
                      mean_reversion: float = 0.05, spread_volatility: float = 0.3,
                      symbols: tuple[str, str] = ("X", "Y"), start: str = DEFAULT_START,
                      bar_seconds: int = 60, decimals: int = 4) -> BarSet:
    """X follows a GBM; Y = intercept + hedge_ratio * X + u, with u an Ornstein-Uhlenbeck
    spread (AR(1) with coefficient 1 - mean_reversion)."""
    rng = np.random.default_rng(seed)
    r = (-0.5 * volatility**2) + volatility * rng.standard_normal(n)
    r[0] = 0.0
    x = s0 * np.exp(np.cumsum(r))
    eps = spread_volatility * rng.standard_normal(n)
    u = np.empty(n)
    u[0] = 0.0
    phi = 1.0 - mean_reversion
    for t in range(1, n):
        u[t] = phi * u[t - 1] + eps[t]
    y = np.maximum(intercept + hedge_ratio * x + u, 1.0)
    return bars_from_closes(np.column_stack([x, y]), rng, symbols=list(symbols), start=start,
                            bar_seconds=bar_seconds, decimals=decimals)

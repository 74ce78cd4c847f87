"""Indicators: hand-computed values on tiny series, warm-up NaNs, and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading.engine import indicators as ind

X = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def test_sma_averages_the_trailing_window_and_is_nan_during_warm_up():
    np.testing.assert_allclose(ind.sma(X, 3), [np.nan, np.nan, 2.0, 3.0, 4.0])


def test_sma_on_integer_ticks_is_exact_where_floats_drift():
    # 0.1 + 0.2 + 0.3 != 0.6 in floating point; in ticks of 0.1 it is 1 + 2 + 3 = 6 exactly.
    prices = np.array([0.1, 0.2, 0.3, 0.6, 0.0, 0.0])
    exact = ind.sma(prices, 3, tick_size=0.1)
    assert exact[2] == pytest.approx(0.2)
    ticks = ind.to_ticks(prices, 0.1)
    # fast (1 bar) vs slow (3 bars) at bar 3: sum_fast * 3 = 6 * 3 = 18 vs sum_slow * 1 = 11
    assert ind.sma_compare_exact(ticks, 1, 3).tolist() == [0, 0, 1, 1, -1, -1]
    # An exact tie: bar 2 has sma(2) = (2+3)/2 = 2.5 and sma(2) of ticks [2,3]... compare with
    # itself gives 0 everywhere after warm-up.
    assert (ind.sma_compare_exact(ticks, 2, 2) == 0).all()


def test_ema_is_seeded_by_the_first_sma():
    # alpha = 2 / (3 + 1) = 0.5: seed mean(1,2,3) = 2; then .5*4 + .5*2 = 3; .5*5 + .5*3 = 4
    np.testing.assert_allclose(ind.ema(X, 3), [np.nan, np.nan, 2.0, 3.0, 4.0])


def test_rsi_uses_wilder_smoothing():
    close = np.array([1.0, 2.0, 3.0, 2.0, 4.0])
    # changes: +1 +1 -1 +2; window 2 (alpha 1/2)
    # gains: seed (1+1)/2 = 1 at bar 2; bar 3: .5*0 + .5*1 = .5; bar 4: .5*2 + .5*.5 = 1.25
    # losses: seed 0; bar 3: .5*1 = .5; bar 4: .5*0 + .5*.5 = .25
    # RSI: bar 2 all gains -> 100; bar 3: RS 1 -> 50; bar 4: RS 5 -> 100 - 100/6
    np.testing.assert_allclose(ind.rsi(close, 2), [np.nan, np.nan, 100.0, 50.0, 100 - 100 / 6])


def test_zscore_and_bollinger_use_the_population_std():
    # window [1,2,3]: mean 2, std sqrt(2/3); z of 3 = 1 / sqrt(2/3)
    z = ind.zscore(X, 3)
    assert z[2] == pytest.approx(1 / math.sqrt(2 / 3))
    lower, mid, upper = ind.bollinger(X, 3, k=2.0)
    assert upper[2] == pytest.approx(2 + 2 * math.sqrt(2 / 3))
    assert lower[2] == pytest.approx(2 - 2 * math.sqrt(2 / 3))
    assert np.isnan(ind.zscore(np.ones(5), 3)).all()  # no dispersion: no z-score


def test_donchian_channel_and_atr():
    high = np.array([10.0, 12.0, 11.0, 15.0])
    low = np.array([8.0, 9.0, 7.0, 12.0])
    close = np.array([9.0, 11.0, 8.0, 14.0])
    lower, mid, upper = ind.donchian(high, low, 2)
    np.testing.assert_allclose(upper, [np.nan, 12, 12, 15])
    np.testing.assert_allclose(lower, [np.nan, 8, 7, 7])
    # True range: bar0 2; bar1 max(3, |12-9|, |9-9|) = 3; bar2 max(4, 0, 4) = 4;
    # bar3 max(3, |15-8| = 7, 4) = 7. ATR(2): seed (2+3)/2 = 2.5; .5*4+.5*2.5 = 3.25;
    # .5*7 + .5*3.25 = 5.125
    np.testing.assert_allclose(ind.atr(high, low, close, 2), [np.nan, 2.5, 3.25, 5.125])


def test_rolling_hedge_ratio_recovers_a_linear_relation():
    rng = np.random.default_rng(1)
    x = rng.normal(100, 5, 200)
    y = 2.5 * x + 3.0
    beta = ind.rolling_hedge_ratio(y, x, 30)
    assert np.isnan(beta[:29]).all()
    np.testing.assert_allclose(beta[29:], 2.5)


def test_rolling_volatility_is_the_sample_std_of_log_returns():
    close = np.array([100.0, 110.0, 99.0, 108.9])
    lr = np.log(close[1:] / close[:-1])
    vol = ind.rolling_volatility(close, 3, ppy=252)
    assert vol[3] == pytest.approx(np.std(lr, ddof=1) * math.sqrt(252))
    assert np.isnan(vol[:3]).all()


def test_crossover_needs_the_previous_bar_at_or_below():
    a = np.array([1.0, 2.0, 3.0, 2.0, 3.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    assert ind.crossover(a, b).tolist() == [False, False, True, False, True]
    assert ind.crossunder(a, b).tolist() == [False, False, False, False, False]
    assert ind.crossunder(b, a).tolist() == [False, False, True, False, True]


def test_shift_refuses_to_look_forward():
    with pytest.raises(ValueError, match="look-ahead"):
        ind.shift(X, -1)


def test_every_indicator_is_prefix_stable_so_none_looks_ahead():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 2)), axis=0))
    high, low = close * 1.01, close * 0.99
    fns = {
        "sma": lambda c, h, lo: ind.sma(c, 20),
        "ema": lambda c, h, lo: ind.ema(c, 20),
        "rsi": lambda c, h, lo: ind.rsi(c, 14),
        "zscore": lambda c, h, lo: ind.zscore(c, 20),
        "donchian": lambda c, h, lo: ind.donchian(h, lo, 20)[2],
        "atr": lambda c, h, lo: ind.atr(h, lo, c, 14),
        "vol": lambda c, h, lo: ind.rolling_volatility(c, 20),
        "hedge": lambda c, h, lo: ind.rolling_hedge_ratio(c[:, 0], c[:, 1], 40),
    }
    for name, fn in fns.items():
        full = fn(close, high, low)
        assert np.isfinite(full[-1]).all(), name
        for cut in (25, 60, 150, 299):
            part = fn(close[:cut], high[:cut], low[:cut])
            np.testing.assert_array_equal(part, full[:cut], err_msg=name)

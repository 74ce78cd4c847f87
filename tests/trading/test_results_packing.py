"""The compact result encoding: exact round trips and downsampling that keeps both ends."""

from __future__ import annotations

import numpy as np

from trading.services import results


def test_equity_and_timestamps_round_trip_bit_for_bit():
    rng = np.random.default_rng(0)
    equity = 100_000 * np.cumprod(1 + rng.normal(0, 1e-3, 10_000))
    ts = np.int64(1_704_067_200) * 10**9 + np.arange(10_000, dtype=np.int64) * 60 * 10**9
    ts[5000:] += 3600 * 10**9  # an irregular gap must survive delta encoding
    assert np.array_equal(results.unpack(results.pack(equity, "<f8"), "<f8"), equity)
    assert np.array_equal(results.unpack_timestamps(results.pack_timestamps(ts)), ts)


def test_a_regular_grid_of_timestamps_compresses_to_almost_nothing():
    ts = np.arange(1_000_000, dtype=np.int64) * 60 * 10**9
    # 8 MB of int64; delta encoding leaves one repeated step.
    assert len(results.pack_timestamps(ts)) < 100_000


def test_downsampling_keeps_the_first_and_last_point_and_the_order():
    ts = np.arange(1000, dtype=np.int64)
    values = ts.astype(np.float64) ** 2
    small_ts, small = results.downsample(ts, values, 7)
    assert len(small) == 7
    assert (small_ts[0], small_ts[-1]) == (0, 999)
    assert np.all(np.diff(small_ts) > 0)
    assert np.array_equal(small, small_ts.astype(np.float64) ** 2)
    assert results.downsample(ts, values, 0)[1] is values  # 0 = the full curve

"""Reading, validating, gap handling and resampling of bar files."""

from __future__ import annotations

import numpy as np
import pytest

from trading.engine.data import (
    BarValidationError,
    detect_gaps,
    fill_gaps,
    read_bars,
    read_csv,
    read_parquet,
    resample,
    write_csv,
    write_parquet,
)
from trading.engine.synthetic import correlated_basket, gbm

from .conftest import MINUTE_NS, make_bars

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = (
    "2024-01-01T00:00:00Z,10.00,10.50,9.90,10.20,100\n"
    "2024-01-01T00:01:00Z,10.20,10.30,10.10,10.25,120\n"
    "2024-01-01T00:02:00Z,10.25,10.40,10.00,10.05,90\n"
)


def write(tmp_path, text, name="bars.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_iso_csv_with_tick_size(tmp_path):
    bars = read_csv(write(tmp_path, HEADER + GOOD))
    assert bars.n_bars == 3 and bars.symbols == ["bars"]
    assert bars.close[:, 0].tolist() == [10.2, 10.25, 10.05]
    assert bars.timestamps[1] - bars.timestamps[0] == MINUTE_NS
    assert bars.tick_size == 0.01  # two decimals


def test_reads_epoch_seconds_and_milliseconds(tmp_path):
    sec = HEADER + "1704067200,1,1,1,1,0\n1704067260,1,1,1,1,0\n"
    ms = HEADER + "1704067200000,1,1,1,1,0\n1704067260000,1,1,1,1,0\n"
    a, b = read_csv(write(tmp_path, sec, "s.csv")), read_csv(write(tmp_path, ms, "ms.csv"))
    assert a.timestamps.tolist() == b.timestamps.tolist()
    assert a.timestamps[0] == np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64)


def test_high_below_close_is_reported_with_line_and_column(tmp_path):
    text = HEADER + GOOD + "2024-01-01T00:03:00Z,9.8,9.5,9.4,10.0,5\n"
    with pytest.raises(BarValidationError) as err:
        read_csv(write(tmp_path, text))
    # header is line 1, so the fourth bar is line 5
    assert [(e.line, e.column) for e in err.value.errors] == [(5, "high")]
    assert 'line 5, column "high": high 9.5 is below close 10.0' in str(err.value)


def test_every_bad_row_is_reported_at_once(tmp_path):
    text = HEADER + (
        "2024-01-01T00:00:00Z,10,11,9,10,100\n"  # line 2 ok
        "2024-01-01T00:01:00Z,abc,11,9,10,100\n"  # line 3 open unparsable
        "2024-01-01T00:02:00Z,10,11,9,,100\n"  # line 4 close empty
        "2024-01-01T00:03:00Z,10,11,9,10,-5\n"  # line 5 negative volume
        "2024-01-01T00:03:00Z,10,11,9,10,5\n"  # line 6 duplicate timestamp
        "2024-01-01T00:05:00Z,10,11,9.5,9,5\n"  # line 7 low above close
        "2024-01-01T00:06:00Z,10,11,9,nan,5\n"  # line 8 NaN
        "not a date,10,11,9,10,5\n"  # line 9 timestamp
        "2024-01-01T00:08:00Z,10,11,9\n"  # line 10 too few columns
        "2024-01-01T00:09:00Z,-1,11,-2,10,5\n"  # line 11 negative prices
    )
    with pytest.raises(BarValidationError) as err:
        read_csv(write(tmp_path, text))
    got = {(e.line, e.column) for e in err.value.errors}
    assert got == {(3, "open"), (4, "close"), (5, "volume"), (6, "timestamp"), (7, "low"),
                   (8, "close"), (9, "timestamp"), (10, ""), (11, "open"), (11, "low")}
    messages = {(e.line, e.column): e.message for e in err.value.errors}
    assert messages[(3, "open")] == "cannot parse 'abc' as a number"
    assert messages[(4, "close")] == "empty value"
    assert "duplicate timestamp 2024-01-01T00:03:00Z (also on line 5)" == messages[(6, "timestamp")]
    assert messages[(10, "")] == "expected 6 columns, got 4"


def test_unsorted_timestamps_are_rejected(tmp_path):
    text = HEADER + ("2024-01-01T00:01:00Z,1,1,1,1,1\n" "2024-01-01T00:00:00Z,1,1,1,1,1\n")
    with pytest.raises(BarValidationError, match="line 3, column \"timestamp\""):
        read_csv(write(tmp_path, text))


def test_missing_column_and_missing_file(tmp_path):
    with pytest.raises(BarValidationError, match='column "volume": missing column'):
        read_csv(write(tmp_path, "timestamp,open,high,low,close\n2024-01-01,1,1,1,1\n"))
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "absent.csv")


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(BarValidationError, match="no bars"):
        read_csv(write(tmp_path, HEADER))


def test_many_symbols_share_one_index_with_forward_fill(tmp_path):
    text = "timestamp,symbol,open,high,low,close,volume\n" + (
        "2024-01-01T00:00:00Z,B,5,5,5,5,1\n"
        "2024-01-01T00:00:00Z,A,1,1,1,1,1\n"
        "2024-01-01T00:01:00Z,A,2,2,2,2,1\n"
        "2024-01-01T00:02:00Z,A,3,3,3,3,1\n"
        "2024-01-01T00:02:00Z,B,6,6,6,6,1\n"
    )
    bars = read_csv(write(tmp_path, text))
    assert bars.symbols == ["A", "B"]
    assert bars.close.tolist() == [[1, 5], [2, 5], [3, 6]]  # B's missing bar: previous close
    assert bars.volume[1, 1] == 0 and bars.meta["filled_bars"] == 1


def test_csv_round_trip_is_exact():
    bars = gbm(500, seed=11)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        back = read_bars(write_csv(bars, Path(d) / "x.csv"))
    assert np.array_equal(back.close, bars.close) and np.array_equal(back.high, bars.high)
    assert np.array_equal(back.timestamps, bars.timestamps)
    assert back.tick_size == 1e-4


def test_parquet_round_trip_many_symbols(tmp_path):
    bars = correlated_basket(50, seed=3, n_assets=3)
    back = read_parquet(write_parquet(bars, tmp_path / "b.parquet"))
    assert back.symbols == bars.symbols
    assert np.array_equal(back.close, bars.close) and np.array_equal(back.timestamps,
                                                                     bars.timestamps)


def test_gap_detection_and_filling():
    rows = [(1, 1, 1, 1, 5), (2, 2, 2, 2, 5), (3, 3, 3, 3, 5)]
    bars = make_bars(rows)
    bars.timestamps[2] += 3 * MINUTE_NS  # 00:00, 00:01, then 00:05: three bars missing
    gaps = detect_gaps(bars, 60)
    assert len(gaps) == 1 and gaps[0].missing_bars == 3
    filled = fill_gaps(bars, 60)
    assert filled.n_bars == 6
    assert filled.close[:, 0].tolist() == [1, 2, 2, 2, 2, 3]
    assert filled.volume[:, 0].tolist() == [5, 5, 0, 0, 0, 5]


def test_resample_minutes_to_five_minutes():
    rows = [(10, 11, 9, 10.5, 1), (10.5, 12, 10, 11, 2), (11, 11.5, 8, 9, 3),
            (9, 10, 8.5, 9.5, 4), (9.5, 9.6, 9.1, 9.2, 5), (9.2, 9.9, 9.0, 9.8, 6)]
    out = resample(make_bars(rows), "5min")
    assert out.n_bars == 2
    # first bucket: open first 10, high max 12, low min 8, close last 9.2, volume 1+..+5
    assert (out.open[0, 0], out.high[0, 0], out.low[0, 0], out.close[0, 0],
            out.volume[0, 0]) == (10, 12, 8, 9.2, 15)
    assert out.timestamps[1] - out.timestamps[0] == 5 * MINUTE_NS


def test_resample_to_hour_and_day():
    bars = gbm(3 * 1440, seed=5)
    hours, days = resample(bars, "1h"), resample(bars, "1d")
    assert hours.n_bars == 72 and days.n_bars == 3
    assert days.high[0, 0] == bars.high[:1440, 0].max()
    assert days.volume[:, 0].sum() == bars.volume.sum()


def test_unknown_resampling_rule_is_refused():
    with pytest.raises(ValueError, match="unknown resampling rule '7min'"):
        resample(make_bars([(1, 1, 1, 1, 1)]), "7min")

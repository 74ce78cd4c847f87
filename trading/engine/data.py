"""Bar data in and out of the engine: CSV and Parquet readers with validation, gaps, resampling.

Files hold one bar per row, columns `timestamp,open,high,low,close,volume` and optionally
`symbol` (many symbols in one file). Timestamps are ISO 8601 (UTC unless an offset is given) or
epoch seconds / milliseconds. A file is validated as a whole and every bad row is reported at
once, by line (the header is line 1; for Parquet, the row number counted from 1) and column, in
one `BarValidationError`; a rejected file yields no bars.

When all prices are written with fixed decimals the tick size is detected (`BarSet.tick_size`)
so that indicators can work on exact integer ticks (see the SMA crossover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .types import BarSet

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_NAN_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity", "null", "none"}
NS_PER_SECOND = 1_000_000_000
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class BarError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line > 0 else "file"
        return f'{where}, column "{self.column}": {self.message}' if self.column else (
            f"{where}: {self.message}"
        )


class BarValidationError(ValueError):
    """A bar file was rejected; `.errors` lists every problem as (line, column, message)."""

    def __init__(self, errors: list[BarError], source: str = "") -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.column))
        self.source = source
        shown = "; ".join(str(e) for e in self.errors[:MAX_ERRORS_SHOWN])
        more = len(self.errors) - MAX_ERRORS_SHOWN
        if more > 0:
            shown += f"; and {more} more"
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{len(self.errors)} bad value(s): {shown}")


# ---------------------------------------------------------------------------------------------
# readers


def read_bars(path: str | Path, *, symbol: str | None = None) -> BarSet:
    """Read a CSV or Parquet bar file (by extension)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return read_parquet(p, symbol=symbol)
    return read_csv(p, symbol=symbol)


def read_csv(path: str | Path, *, symbol: str | None = None) -> BarSet:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    skipped: list[BarError] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(
            BarError(
                int(row.number or 0),
                "",
                f"expected {row.expected_columns} columns, got {row.actual_columns}",
            )
        )
        return "skip"

    with p.open("rb") as fh:
        header = fh.readline().decode("utf-8", errors="replace").strip()
    names = [h.strip().lower() for h in header.split(",")] if header else []
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise BarValidationError(
            [BarError(1, c, "missing column (header must name it)") for c in missing], str(p)
        )
    try:
        table = pacsv.read_csv(
            p,
            read_options=pacsv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BarValidationError([BarError(0, "", f"unreadable CSV ({exc})")], str(p)) from None
    lines = np.arange(table.num_rows, dtype=np.int64) + 2
    for bad in sorted(e.line for e in skipped):
        lines[lines >= bad] += 1
    errors = list(skipped)
    cols = {n: table.column(n).combine_chunks() for n in names}
    ts = _parse_timestamps(cols["timestamp"], lines, errors)
    values = {c: _parse_numbers(cols[c], c, lines, errors) for c in (*PRICES, "volume")}
    tick = _detect_tick([cols[c] for c in PRICES])
    syms = _symbols(cols.get("symbol"), lines, errors, symbol or p.stem)
    return _assemble(ts, values, syms, lines, errors, tick, str(p))


def read_parquet(path: str | Path, *, symbol: str | None = None) -> BarSet:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BarValidationError([BarError(0, "", f"unreadable Parquet ({exc})")], str(p)) from None
    table = table.rename_columns([n.strip().lower() for n in table.column_names])
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise BarValidationError([BarError(1, c, "missing column") for c in missing], str(p))
    lines = np.arange(table.num_rows, dtype=np.int64) + 1
    errors: list[BarError] = []
    tcol = table.column("timestamp").combine_chunks()
    if pa.types.is_timestamp(tcol.type):
        ts = pc.cast(tcol, pa.timestamp("ns")).to_numpy(zero_copy_only=False).astype(np.int64)
        null = np.asarray(tcol.is_null())
        for i in np.flatnonzero(null):
            errors.append(BarError(int(lines[i]), "timestamp", "empty value"))
    else:
        ts = _parse_timestamps(pc.cast(tcol, pa.string()), lines, errors)
    values = {}
    tick_cols = []
    for c in (*PRICES, "volume"):
        col = pc.cast(table.column(c).combine_chunks(), pa.string())
        values[c] = _parse_numbers(col, c, lines, errors)
        if c in PRICES:
            tick_cols.append(col)
    tick = _detect_tick(tick_cols) if pa.types.is_decimal(table.column("close").type) else None
    sym = table.column("symbol").combine_chunks() if "symbol" in table.column_names else None
    syms = _symbols(None if sym is None else pc.cast(sym, pa.string()), lines, errors,
                    symbol or p.stem)
    return _assemble(ts, values, syms, lines, errors, tick, str(p))


def _parse_numbers(col: pa.Array, name: str, lines: np.ndarray, errors: list[BarError]) -> np.ndarray:
    valid = pc.fill_null(pc.match_substring_regex(col, _NUMBER), False)
    valid_np = np.asarray(valid)
    if not valid_np.all():
        raw = col.to_pylist()
        for i in np.flatnonzero(~valid_np):
            text = (raw[i] or "").strip()
            if not text:
                msg = "empty value"
            elif text.lower() in _NAN_WORDS:
                msg = f"{text!r} is not a finite number"
            else:
                msg = f"cannot parse {text!r} as a number"
            errors.append(BarError(int(lines[i]), name, msg))
    cleaned = pc.if_else(valid, pc.utf8_trim_whitespace(col), "0")
    return pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False)


def _parse_timestamps(col: pa.Array, lines: np.ndarray, errors: list[BarError]) -> np.ndarray:
    text = pc.utf8_trim_whitespace(pc.fill_null(col, ""))
    raw = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    digits = np.asarray(pc.fill_null(pc.match_substring_regex(text, r"^\d{9,}$"), False))
    out = np.zeros(len(raw), dtype=np.int64)
    bad = np.zeros(len(raw), dtype=bool)
    if digits.any():
        nums = pc.cast(pc.if_else(digits, text, "0"), pa.int64()).to_numpy()
        # epoch milliseconds from 1973 on have >= 12 digits; seconds until 5138 have <= 11
        ms = nums >= 100_000_000_000
        out = np.where(ms, nums * 1_000_000, nums * NS_PER_SECOND)
    rest = ~digits
    if rest.any():
        try:  # the common case, all ISO 8601: Arrow's parser is several times faster
            sub = text if digits.sum() == 0 else text.filter(pa.array(rest))
            vals = pc.cast(sub, pa.timestamp("ns", "UTC")).to_numpy(zero_copy_only=False)
            vals = vals.astype("datetime64[ns]").astype(np.int64)
            nat = np.zeros(len(vals), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = pd.to_datetime(pd.Series(raw[rest]), utc=True, format="ISO8601",
                                    errors="coerce")
            vals = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            nat = parsed.isna().to_numpy()
        out[rest] = np.where(nat, 0, vals)
        bad[np.flatnonzero(rest)[nat]] = True
    for i in np.flatnonzero(bad):
        msg = "empty value" if not raw[i] else f"cannot parse {raw[i]!r} as a timestamp"
        errors.append(BarError(int(lines[i]), "timestamp", msg))
    return out


def _detect_tick(cols: list[pa.Array]) -> float | None:
    """The tick of fixed-decimal prices: 10**-d for the largest number of decimals d."""
    d = 0
    for col in cols:
        text = pc.utf8_trim_whitespace(pc.fill_null(col, ""))
        if np.asarray(pc.fill_null(pc.match_substring_regex(text, "[eE]"), False)).any():
            return None
        dot = pc.find_substring(text, ".").to_numpy(zero_copy_only=False)
        length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        dec = np.where(dot >= 0, length - dot - 1, 0)
        if len(dec):
            d = max(d, int(dec.max()))
    if d > 9:
        return None
    return float(f"1e-{d}") if d else 1.0


def _symbols(col: pa.Array | None, lines: np.ndarray, errors: list[BarError],
             default: str) -> np.ndarray:
    if col is None:
        return np.full(len(lines), default, dtype=object)
    raw = np.asarray(pc.utf8_trim_whitespace(pc.fill_null(col, "")).to_numpy(
        zero_copy_only=False), dtype=object)
    for i in np.flatnonzero(raw == ""):
        errors.append(BarError(int(lines[i]), "symbol", "empty value"))
    return raw


def _assemble(ts: np.ndarray, values: dict[str, np.ndarray], syms: np.ndarray, lines: np.ndarray,
              errors: list[BarError], tick: float | None, source: str) -> BarSet:
    if len(ts) == 0 and not errors:
        errors.append(BarError(0, "", "no bars in file"))
    _check_values(ts, values, syms, lines, errors)
    if errors:
        raise BarValidationError(errors, source)
    return _pivot(ts, values, syms, lines, tick, source)


def _check_values(ts: np.ndarray, v: dict[str, np.ndarray], syms: np.ndarray, lines: np.ndarray,
                  errors: list[BarError]) -> None:
    bad_rows = {e.line for e in errors}
    ok = ~np.isin(lines, np.fromiter(bad_rows, dtype=np.int64)) if bad_rows else np.ones(
        len(lines), dtype=bool)
    o, h, lo, c, vol = (v[k] for k in ("open", "high", "low", "close", "volume"))
    for name in PRICES:
        for i in np.flatnonzero(ok & (v[name] <= 0)):
            errors.append(BarError(int(lines[i]), name, f"price {float(v[name][i])!r} must be positive"))
    for i in np.flatnonzero(ok & (vol < 0)):
        errors.append(BarError(int(lines[i]), "volume", f"volume {float(vol[i])!r} is negative"))
    top = np.maximum(o, c)
    for i in np.flatnonzero(ok & (h < top)):
        other = "open" if o[i] >= c[i] else "close"
        errors.append(BarError(int(lines[i]), "high",
                               f"high {float(h[i])!r} is below {other} {float(top[i])!r}"))
    bottom = np.minimum(o, c)
    for i in np.flatnonzero(ok & (lo > bottom)):
        other = "open" if o[i] <= c[i] else "close"
        errors.append(BarError(int(lines[i]), "low",
                               f"low {float(lo[i])!r} is above {other} {float(bottom[i])!r}"))
    # sorted, unique timestamps per symbol (in file order)
    bad_ts = {e.line for e in errors if e.column == "timestamp"}
    ts_ok = ~np.isin(lines, np.fromiter(bad_ts, dtype=np.int64)) if bad_ts else np.ones(
        len(lines), dtype=bool)
    codes, uniques = pd.factorize(syms)
    for code in range(len(uniques)):
        idx = np.flatnonzero((codes == code) & ts_ok) if len(uniques) > 1 else np.flatnonzero(
            ts_ok)
        if len(idx) < 2:
            continue
        t = ts[idx]
        bad = np.flatnonzero(t[1:] <= t[:-1]) + 1
        for j in bad:
            i, prev = idx[j], idx[j - 1]
            when = _iso(int(ts[i]))
            if ts[i] == ts[prev]:
                msg = f"duplicate timestamp {when} (also on line {lines[prev]})"
            else:
                msg = f"timestamp {when} is not after the previous bar's (line {lines[prev]})"
            errors.append(BarError(int(lines[i]), "timestamp", msg))


def _pivot(ts: np.ndarray, v: dict[str, np.ndarray], syms: np.ndarray, lines: np.ndarray,
           tick: float | None, source: str) -> BarSet:
    names = [str(u) for u in pd.unique(syms)]
    if len(names) == 1:
        fields = {k: v[k].reshape(-1, 1).astype(np.float64) for k in (*PRICES, "volume")}
        return BarSet(ts.astype(np.int64), names, fields["open"], fields["high"], fields["low"],
                      fields["close"], fields["volume"], tick_size=tick,
                      meta={"source": source, "filled_bars": 0})
    names.sort()
    index = np.unique(ts)
    n, s = len(index), len(names)
    arrays = {k: np.full((n, s), np.nan) for k in (*PRICES, "volume")}
    errors: list[BarError] = []
    for j, name in enumerate(names):
        sel = np.flatnonzero(syms == name)
        pos = np.searchsorted(index, ts[sel])
        for k in arrays:
            arrays[k][pos, j] = v[k][sel]
        if pos[0] != 0:
            errors.append(BarError(int(lines[sel[0]]), "symbol",
                                   f"{name} starts at {_iso(int(ts[sel[0]]))}, after the file's "
                                   f"first bar {_iso(int(index[0]))}; symbols must share a start"))
    if errors:
        raise BarValidationError(errors, source)
    filled = int(np.isnan(arrays["close"]).sum())
    close = pd.DataFrame(arrays["close"]).ffill().to_numpy()
    for k in PRICES:
        arrays[k] = np.where(np.isnan(arrays[k]), close, arrays[k])
    arrays["volume"] = np.nan_to_num(arrays["volume"], nan=0.0)
    return BarSet(index.astype(np.int64), names, arrays["open"], arrays["high"], arrays["low"],
                  arrays["close"], arrays["volume"], tick_size=tick,
                  meta={"source": source, "filled_bars": filled})


def _iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[s]")) + "Z" if ns % NS_PER_SECOND == 0 \
        else str(np.datetime64(ns, "ns")) + "Z"


def iso_timestamps(ts: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings (`2024-01-01T00:00:00Z`), seconds precision when exact."""
    ts = np.asarray(ts, dtype=np.int64)
    unit = "s" if np.all(ts % NS_PER_SECOND == 0) else "ns"
    stamps = ts.astype("datetime64[ns]").astype(f"datetime64[{unit}]")
    return [s + "Z" for s in np.datetime_as_string(stamps, unit=unit)]  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------------
# writers


def write_csv(bars: BarSet, path: str | Path, *, decimals: int | None = None) -> Path:
    """Write bars in the reader's format (prices with fixed decimals from the tick size)."""
    if decimals is None:
        decimals = max(0, round(-math.log10(bars.tick_size))) if bars.tick_size else 8
    p = Path(path)
    frames = []
    for j, name in enumerate(bars.symbols):
        df = pd.DataFrame({
            "timestamp": iso_timestamps(bars.timestamps),
            "open": bars.open[:, j], "high": bars.high[:, j], "low": bars.low[:, j],
            "close": bars.close[:, j],
            "volume": bars.volume[:, j],
        })
        if bars.n_symbols > 1:
            df.insert(1, "symbol", name)
        frames.append(df)
    out = pd.concat(frames) if len(frames) > 1 else frames[0]
    vol_int = np.all(np.mod(bars.volume, 1.0) == 0)
    if vol_int:
        out["volume"] = out["volume"].astype(np.int64)
    out.to_csv(p, index=False, float_format=f"%.{decimals}f", lineterminator="\n")
    return p


def write_parquet(bars: BarSet, path: str | Path) -> Path:
    p = Path(path)
    n = bars.n_bars
    cols: dict[str, object] = {
        "timestamp": pa.array(np.tile(bars.timestamps, bars.n_symbols), pa.timestamp("ns", "UTC")),
        "symbol": np.repeat(np.array(bars.symbols, dtype=object), n),
    }
    for k in (*PRICES, "volume"):
        cols[k] = getattr(bars, k).T.reshape(-1)
    pq.write_table(pa.table(cols), p)
    return p


# ---------------------------------------------------------------------------------------------
# gaps and resampling


def bar_seconds(bars: BarSet) -> float:
    """The bar length: the median spacing of the timestamps (60.0 for one-minute bars)."""
    if bars.n_bars < 2:
        return 86_400.0
    return float(np.median(np.diff(bars.timestamps))) / NS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Gap:
    after: int  # timestamp (ns) of the last bar before the gap
    before: int  # timestamp (ns) of the first bar after it
    missing_bars: int


def detect_gaps(bars: BarSet, step_seconds: float | None = None) -> list[Gap]:
    """Spacings longer than one step (default: the median spacing)."""
    step = int(round((step_seconds or bar_seconds(bars)) * NS_PER_SECOND))
    d = np.diff(bars.timestamps)
    idx = np.flatnonzero(d > step)
    # ceil(d / step) - 1 bars fit strictly between the two timestamps
    return [Gap(int(bars.timestamps[i]), int(bars.timestamps[i + 1]), int(-(-d[i] // step)) - 1)
            for i in idx]


def fill_gaps(bars: BarSet, step_seconds: float | None = None) -> BarSet:
    """Insert the missing bars of a regular grid: open=high=low=close=previous close, volume 0."""
    step = int(round((step_seconds or bar_seconds(bars)) * NS_PER_SECOND))
    ts = bars.timestamps
    grid = np.arange(ts[0], ts[-1] + 1, step, dtype=np.int64)
    pos = np.searchsorted(ts, grid, side="right") - 1  # last real bar at or before each point
    exact = ts[pos] == grid
    close = bars.close[pos]
    arrays = {}
    for k in PRICES:
        arrays[k] = np.where(exact[:, None], getattr(bars, k)[pos], close)
    arrays["volume"] = np.where(exact[:, None], bars.volume[pos], 0.0)
    if len(np.setdiff1d(ts, grid)):
        raise ValueError("timestamps are not on a regular grid of the given step")
    meta = dict(bars.meta, filled_bars=int(bars.meta.get("filled_bars", 0)) + int((~exact).sum()))
    return BarSet(grid, list(bars.symbols), arrays["open"], arrays["high"], arrays["low"],
                  arrays["close"], arrays["volume"], tick_size=bars.tick_size, meta=meta)


_RULES = {"1min": 60, "5min": 300, "15min": 900, "30min": 1800, "1h": 3600, "4h": 14_400,
          "1d": 86_400}


def resample(bars: BarSet, rule: str | int) -> BarSet:
    """Aggregate to a coarser bar (UTC-aligned buckets labelled by their start).

    open = first, high = max, low = min, close = last, volume = sum.
    """
    if isinstance(rule, str) and rule not in _RULES:
        raise ValueError(f"unknown resampling rule {rule!r} (expected one of {list(_RULES)})")
    seconds = _RULES[rule] if isinstance(rule, str) else int(rule)
    step = seconds * NS_PER_SECOND
    bucket = bars.timestamps // step * step
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)] - 1
    return BarSet(
        bucket[starts].astype(np.int64),
        list(bars.symbols),
        bars.open[starts],
        np.maximum.reduceat(bars.high, starts, axis=0),
        np.minimum.reduceat(bars.low, starts, axis=0),
        bars.close[ends],
        np.add.reduceat(bars.volume, starts, axis=0),
        tick_size=bars.tick_size,
        meta=dict(bars.meta),
    )


def integer_ticks(prices: np.ndarray, tick: float) -> np.ndarray:
    """Prices as integer ticks (float64 holding exact integers)."""
    return np.rint(prices / tick)

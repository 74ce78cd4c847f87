"""Moving bars between the engine's `BarSet` and the ``trading_bar`` table, fast.

Writes use PostgreSQL's ``COPY … FROM STDIN`` in binary format through psycopg 3
(``cursor.copy()``), the rows laid out by numpy, inside the caller's transaction; reads use
``COPY (SELECT …) TO STDOUT`` the same way. On SQLite (embedded mode) they fall back to
``bulk_create`` and ``values_list``. Bars of several symbols are pivoted with pandas into the
engine's (n_bars, n_symbols) arrays, a symbol's missing bar carrying its previous close (as the
engine's multi-symbol reader does).

`timescaledb_available()` tells whether the ``timescaledb`` extension can be used; migration 0002
turns the bars table into a hypertable when it can, and leaves it a plain table with its
(dataset, instrument, ts) unique index otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import connection

from trading.engine.types import BarSet
from trading.models import Bar, Dataset, Instrument

logger = logging.getLogger("nexow.trading.marketdata")

COPY_CHUNK_ROWS = 200_000
BULK_CREATE_BATCH = 5_000
_COLUMNS = ("open", "high", "low", "close", "volume")


def is_postgres(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def timescaledb_available(conn=None) -> bool:
    """Whether the ``timescaledb`` extension is installed or installable in this database."""
    conn = conn or connection
    if not is_postgres(conn):
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        return cur.fetchone() is not None


def bars_table_is_hypertable(conn=None) -> bool:
    conn = conn or connection
    if not is_postgres(conn):
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cur.fetchone() is None:
            return False
        cur.execute("SELECT 1 FROM timescaledb_information.hypertables "
                    "WHERE hypertable_name = %s", [Bar._meta.db_table])
        return cur.fetchone() is not None


# PostgreSQL's binary COPY format: a fixed header, then per row an int16 field count and, per
# field, an int32 byte length and the value, all big-endian; -1 (int16) ends the data. Every
# column written or read here is a fixed-width NOT NULL number, so a row is one record of a numpy
# structured dtype and a million rows convert in milliseconds, without Python-level loops.
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PGCOPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970


def _copy_dtype(fields: Sequence[tuple[str, str]]) -> np.dtype:
    spec: list[tuple[str, str]] = [("n", ">i2")]
    for name, kind in fields:
        spec += [(f"{name}_len", ">i4"), (name, kind)]
    return np.dtype(spec)


_WRITE_FIELDS = (("dataset_id", ">i8"), ("instrument_id", ">i8"), ("ts", ">i8"),
                 *((c, ">f8") for c in _COLUMNS))
_READ_FIELDS = (("instrument_id", ">i8"), ("ts", ">i8"), *((c, ">f8") for c in _COLUMNS))


def bars_bulk_load(*, dataset: Dataset, bars: BarSet, instruments: Sequence[Instrument]) -> int:
    """Insert every bar of `bars` (symbol j → instruments[j]) into `dataset`; returns rows.

    Runs in the caller's transaction, so a failure leaves nothing behind.
    """
    n, s = bars.n_bars, bars.n_symbols
    ids = np.repeat(np.asarray([i.pk for i in instruments], dtype=np.int64), n)
    ts_ns = np.tile(np.asarray(bars.timestamps, dtype=np.int64), s)
    values = {c: np.ascontiguousarray(getattr(bars, c).T.reshape(-1), dtype=np.float64)
              for c in _COLUMNS}
    if is_postgres():
        _copy_binary(dataset.pk, ids, ts_ns, values)
    else:
        _bulk_create(dataset.pk, ids, ts_ns, values)
    return n * s


def _copy_binary(dataset_id: int, ids: np.ndarray, ts_ns: np.ndarray,
                 values: dict[str, np.ndarray]) -> None:
    dtype = _copy_dtype(_WRITE_FIELDS)
    table = Bar._meta.db_table
    cols = ", ".join(name for name, _ in _WRITE_FIELDS)
    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT binary)"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(sql) as copy:
            copy.write(_PGCOPY_HEADER)
            for start in range(0, len(ids), COPY_CHUNK_ROWS):
                sl = slice(start, start + COPY_CHUNK_ROWS)
                rec = np.empty(len(ids[sl]), dtype=dtype)
                rec["n"] = len(_WRITE_FIELDS)
                for name, _ in _WRITE_FIELDS:
                    rec[f"{name}_len"] = 8
                rec["dataset_id"] = dataset_id
                rec["instrument_id"] = ids[sl]
                rec["ts"] = ts_ns[sl] // 1000 - _PG_EPOCH_US
                for c in _COLUMNS:
                    rec[c] = values[c][sl]
                copy.write(rec.tobytes())
            copy.write(_PGCOPY_TRAILER)


def _bulk_create(dataset_id: int, ids: np.ndarray, ts_ns: np.ndarray,
                 values: dict[str, np.ndarray]) -> None:
    ts = pd.to_datetime(ts_ns, utc=True).to_pydatetime()
    cols = [values[c] for c in _COLUMNS]
    objs = [Bar(dataset_id=dataset_id, instrument_id=int(ids[i]), ts=ts[i],
                open=float(cols[0][i]), high=float(cols[1][i]), low=float(cols[2][i]),
                close=float(cols[3][i]), volume=float(cols[4][i]))
            for i in range(len(ids))]
    Bar.objects.bulk_create(objs, batch_size=BULK_CREATE_BATCH)


def _read_binary(dataset_id: int, instrument_ids: list[int], start: datetime | None,
                 end: datetime | None) -> pd.DataFrame:
    where = ["dataset_id = %s", "instrument_id = ANY(%s)"]
    params: list = [dataset_id, instrument_ids]
    if start is not None:
        where.append("ts >= %s")
        params.append(start)
    if end is not None:
        where.append("ts <= %s")
        params.append(end)
    cols = ", ".join(name for name, _ in _READ_FIELDS)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(f"SELECT {cols} FROM {Bar._meta.db_table} WHERE "
                            f"{' AND '.join(where)}", params)
        buf = bytearray()
        with raw.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)") as copy:
            for chunk in copy:
                buf += chunk
    body = bytes(buf)[len(_PGCOPY_HEADER):-len(_PGCOPY_TRAILER)]
    rec = np.frombuffer(body, dtype=_copy_dtype(_READ_FIELDS))
    frame = pd.DataFrame({"instrument_id": rec["instrument_id"].astype(np.int64),
                          "ts": (rec["ts"].astype(np.int64) + _PG_EPOCH_US) * 1000})
    for c in _COLUMNS:
        frame[c] = rec[c].astype(np.float64)
    return frame


def _to_ns(values: Sequence[datetime]) -> np.ndarray:
    return pd.to_datetime(pd.Series(values), utc=True).to_numpy(dtype="datetime64[ns]").astype(
        np.int64)


def bars_load(*, dataset: Dataset, instruments: Sequence[Instrument],
              start: datetime | None = None, end: datetime | None = None) -> BarSet:
    """The bars of `instruments` in `dataset` within [start, end] as a `BarSet` (symbols in the
    given order). Raises ValueError when there is no bar at all."""
    if is_postgres():
        frame = _read_binary(dataset.pk, [i.pk for i in instruments], start, end)
    else:
        qs = Bar.objects.filter(dataset=dataset, instrument__in=[i.pk for i in instruments])
        if start is not None:
            qs = qs.filter(ts__gte=start)
        if end is not None:
            qs = qs.filter(ts__lte=end)
        frame = pd.DataFrame(list(qs.order_by().values_list("instrument_id", "ts", *_COLUMNS)),
                             columns=["instrument_id", "ts", *_COLUMNS])
        if len(frame):
            frame["ts"] = _to_ns(frame["ts"].tolist())
    if frame.empty:
        raise ValueError("the dataset has no bars for these instruments in this period")
    ids = [i.pk for i in instruments]
    symbols = [i.symbol for i in instruments]
    present = set(frame["instrument_id"].unique().tolist())
    missing = [i.symbol for i in instruments if i.pk not in present]
    if missing:
        raise ValueError(f"no bars for {', '.join(missing)} in this period")
    if len(ids) == 1:
        frame = frame.sort_values("ts")
        arrays = {c: frame[c].to_numpy(dtype=np.float64).reshape(-1, 1) for c in _COLUMNS}
        index = frame["ts"].to_numpy(dtype=np.int64)
    else:
        wide = frame.pivot(index="ts", columns="instrument_id", values=list(_COLUMNS)).sort_index()
        close = wide["close"].reindex(columns=ids).ffill()
        arrays = {}
        for c in _COLUMNS:
            part = wide[c].reindex(columns=ids)
            if c == "volume":
                arrays[c] = part.fillna(0.0).to_numpy(dtype=np.float64)
            else:
                # A symbol without a bar at a time carries its previous close (flat bar).
                arrays[c] = part.fillna(close).to_numpy(dtype=np.float64)
        if np.isnan(arrays["close"]).any():
            raise ValueError("symbols must share a start: one has no bar at the first timestamp")
        index = wide.index.to_numpy(dtype=np.int64)
    tick = dataset.source_detail.get("tick_size") or _tick_size(instruments)
    return BarSet(np.ascontiguousarray(index, dtype=np.int64), symbols,
                  np.ascontiguousarray(arrays["open"]), np.ascontiguousarray(arrays["high"]),
                  np.ascontiguousarray(arrays["low"]), np.ascontiguousarray(arrays["close"]),
                  np.ascontiguousarray(arrays["volume"]), tick_size=tick,
                  meta={"source": f"dataset:{dataset.pk}"})


def _tick_size(instruments: Sequence[Instrument]) -> float | None:
    # The tick the data was written with (recorded at import) wins; otherwise the finest tick of
    # the instruments. The engine uses it to break exact ties of means exactly.
    ticks = [float(i.tick_size) for i in instruments if i.tick_size]
    return min(ticks) if ticks else None


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)

"""Write services for instruments and datasets: create, change, delete, import, generate.

An import validates the whole file with the engine's readers first — every bad row is reported by
line and column — and only then writes the dataset, its instruments and its bars in one
transaction, so a rejected file (or a failure half-way) imports nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from pyarrow.lib import ArrowException

from accounts.audit import audit_record
from accounts.models import Organization, User
from nexow_site.errors import ApplicationError, Conflict, Forbidden, TooLarge
from trading.engine import synthetic
from trading.engine.data import (
    BarError,
    BarValidationError,
    bar_seconds,
    detect_gaps,
    read_bars,
)
from trading.engine.types import BarSet
from trading.marketdata import bars_bulk_load, ns_to_datetime
from trading.models import Dataset, DatasetSource, Instrument
from trading.services.limits import limit

INSTRUMENT_FIELDS = ("symbol", "asset_class", "exchange", "currency", "calendar", "tick_size",
                     "lot_size", "sector")
GENERATORS = {
    "gbm": synthetic.gbm,
    "regime_switching": synthetic.regime_switching,
    "jump_diffusion": synthetic.jump_diffusion,
    "correlated_basket": synthetic.correlated_basket,
    "cointegrated_pair": synthetic.cointegrated_pair,
}
MAX_SYNTHETIC_BARS = 5_000_000
# Generator options a caller may set, with their bounds (anything else is refused).
_OPTION_BOUNDS: dict[str, tuple[type, float | None, float | None]] = {
    "s0": (float, 1e-6, 1e9), "drift": (float, -1.0, 1.0), "volatility": (float, 0.0, 1.0),
    "bar_seconds": (int, 1, 31 * 86_400), "decimals": (int, 0, 8), "n_assets": (int, 2, 50),
    "correlation": (float, -1.0, 1.0), "switch_probability": (float, 0.0, 1.0),
    "jump_intensity": (float, 0.0, 1.0), "jump_mean": (float, -1.0, 1.0),
    "jump_std": (float, 0.0, 1.0), "hedge_ratio": (float, -100.0, 100.0),
    "intercept": (float, -1e6, 1e6), "mean_reversion": (float, 0.0, 1.0),
    "spread_volatility": (float, 0.0, 1e3),
    "symbol": (str, None, None), "start": (str, None, None), "symbols": (list, None, None),
}


def _generator_options(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in _OPTION_BOUNDS:
            raise ApplicationError(f"Unknown generator option {name!r}.",
                                   fields={f"options.{name}": ["Unknown option."]})
        kind, lo, hi = _OPTION_BOUNDS[name]
        try:
            if kind is list:
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError("two symbols")
                cast: Any = tuple(str(v)[:40] for v in value)
            elif kind is str:
                cast = str(value)[:40]
            else:
                cast = kind(value)
                if isinstance(value, bool) or not (lo <= cast <= hi):  # type: ignore[operator]
                    raise ValueError(f"between {lo} and {hi}")
        except (TypeError, ValueError) as exc:
            raise ApplicationError(f"Invalid generator option {name!r}.",
                                   fields={f"options.{name}": [str(exc)]}) from exc
        out[name] = cast
    return out


def _refuse_platform(obj: Instrument | Dataset) -> None:
    if obj.organization_id is None:
        raise Forbidden("Platform demo data is read-only.", code="read_only")


# --- instruments -----------------------------------------------------------------------------

def instrument_create(*, organization: Organization, actor: User | None, data: dict[str, Any],
                      request=None) -> Instrument:
    instrument = Instrument(organization=organization,
                            **{k: v for k, v in data.items() if k in INSTRUMENT_FIELDS})
    instrument.full_clean()
    with transaction.atomic():
        instrument.save()
        audit_record(organization=organization, actor=actor, action="instrument.created",
                     target=instrument, request=request, metadata={"symbol": instrument.symbol})
    return instrument


def instrument_update(*, instrument: Instrument, actor: User | None, data: dict[str, Any],
                      request=None) -> Instrument:
    _refuse_platform(instrument)
    changed = {k: v for k, v in data.items() if k in INSTRUMENT_FIELDS}
    for name, value in changed.items():
        setattr(instrument, name, value)
    instrument.full_clean()
    with transaction.atomic():
        instrument.save()
        audit_record(organization=instrument.organization, actor=actor,
                     action="instrument.updated", target=instrument, request=request,
                     metadata={"fields": sorted(changed)})
    return instrument


def instrument_delete(*, instrument: Instrument, actor: User | None, request=None) -> None:
    _refuse_platform(instrument)
    if instrument.datasets.exists():
        raise Conflict("The instrument has market data; delete its datasets first.")
    with transaction.atomic():
        audit_record(organization=instrument.organization, actor=actor,
                     action="instrument.deleted", target=instrument, request=request,
                     metadata={"symbol": instrument.symbol})
        instrument.delete()


def _instruments_for(organization: Organization, symbols: Sequence[str],
                     defaults: dict[str, Any]) -> list[Instrument]:
    """The organisation's instrument for each symbol, else the platform's, else a new one."""
    found = {i.symbol: i for i in Instrument.objects.filter(organization=organization,
                                                            symbol__in=symbols)}
    platform = {i.symbol: i for i in Instrument.objects.filter(organization__isnull=True,
                                                               symbol__in=symbols)}
    out = []
    for sym in symbols:
        inst = found.get(sym) or platform.get(sym)
        if inst is None:
            inst = Instrument(organization=organization, symbol=sym,
                              **{k: v for k, v in defaults.items() if k in INSTRUMENT_FIELDS})
            inst.full_clean()
            inst.save()
        out.append(inst)
    return out


# --- datasets ----------------------------------------------------------------------------------

def validation_report(bars: BarSet | None, errors: Sequence[Any] = ()) -> dict[str, Any]:
    """What the importer found: rejected rows (line, column, message), gaps and duplicates."""
    report: dict[str, Any] = {
        "accepted": bars is not None,
        "errors": [{"line": e.line, "column": e.column, "message": e.message} for e in errors],
        "duplicates": [{"line": e.line, "column": e.column, "message": e.message}
                       for e in errors if "duplicate" in e.message],
        "gaps": [],
        "rows": 0,
    }
    if bars is not None:
        report["rows"] = bars.n_bars * bars.n_symbols
        report["filled_bars"] = int(bars.meta.get("filled_bars", 0))
        report["gaps"] = [{"after": ns_to_datetime(g.after).isoformat(),
                           "before": ns_to_datetime(g.before).isoformat(),
                           "missing_bars": g.missing_bars} for g in detect_gaps(bars)[:1000]]
    return report


def _dataset_save(*, organization: Organization, actor: User | None, name: str, bars: BarSet,
                  source: str, source_detail: dict[str, Any], instrument_defaults: dict[str, Any],
                  request=None, action: str) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A dataset needs a name.", fields={"name": ["Required."]})
    if Dataset.objects.filter(organization=organization, name=name).exists():
        raise ApplicationError("A dataset with this name already exists.",
                               fields={"name": ["Already used in this organisation."]})
    detail = dict(source_detail, tick_size=bars.tick_size)
    try:
        with transaction.atomic():
            instruments = _instruments_for(organization, bars.symbols, instrument_defaults)
            dataset = Dataset.objects.create(
                organization=organization, name=name, bar_seconds=max(1, round(bar_seconds(bars))),
                source=source, source_detail=detail, created_by=actor,
                start=ns_to_datetime(int(bars.timestamps[0])),
                end=ns_to_datetime(int(bars.timestamps[-1])))
            dataset.instruments.set(instruments)
            dataset.rows = bars_bulk_load(dataset=dataset, bars=bars, instruments=instruments)
            dataset.save(update_fields=["rows"])
            audit_record(organization=organization, actor=actor, action=action, target=dataset,
                         request=request, metadata={"rows": dataset.rows, "source": source,
                                                    "symbols": list(bars.symbols)})
    except IntegrityError as exc:
        raise Conflict("The dataset could not be saved: it conflicts with existing data.") from exc
    return dataset


def dataset_import(*, organization: Organization, actor: User | None, name: str, upload,
                   symbol: str | None = None, instrument_defaults: dict[str, Any] | None = None,
                   request=None) -> tuple[Dataset | None, dict[str, Any]]:
    """Validate and import an uploaded CSV or Parquet file; (None, report) when rejected."""
    size = getattr(upload, "size", 0) or 0
    if size > limit("NEXOW_IMPORT_MAX_BYTES"):
        raise TooLarge(f"The file is {size} bytes; at most {limit('NEXOW_IMPORT_MAX_BYTES')} "
                       "bytes can be imported at once.")
    filename = Path(getattr(upload, "name", "") or "upload.csv").name
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ApplicationError("Only .csv and .parquet files can be imported.",
                               fields={"file": ["Expected a .csv or .parquet file."]})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        try:
            bars = read_bars(path, symbol=symbol or Path(filename).stem.upper())
        except BarValidationError as err:
            return None, validation_report(None, err.errors)
        except (ValueError, OSError, ArrowException) as exc:
            # Not a bar file at all (binary garbage, a truncated Parquet footer, ...).
            return None, validation_report(None, [BarError(0, "", f"unreadable file ({exc})")])
    report = validation_report(bars)
    dataset = _dataset_save(
        organization=organization, actor=actor, name=name, bars=bars,
        source=DatasetSource.UPLOAD, source_detail={"filename": filename, "report": report},
        instrument_defaults=instrument_defaults or {}, request=request, action="dataset.imported")
    return dataset, report


def dataset_generate(*, organization: Organization, actor: User | None, name: str,
                     generator: str, n_bars: int, seed: int, options: dict[str, Any] | None = None,
                     instrument_defaults: dict[str, Any] | None = None, request=None) -> Dataset:
    """A synthetic dataset from one of the engine's seeded generators."""
    if generator not in GENERATORS:
        raise ApplicationError(f"Unknown generator {generator!r}.",
                               fields={"generator": [f"One of: {', '.join(sorted(GENERATORS))}."]})
    if not 2 <= n_bars <= MAX_SYNTHETIC_BARS:
        raise ApplicationError("n_bars is out of range.",
                               fields={"n_bars": [f"Between 2 and {MAX_SYNTHETIC_BARS}."]})
    options = _generator_options(dict(options or {}))
    n_series = options.get("n_assets", 4) if generator == "correlated_basket" else 2
    if n_bars * n_series > MAX_SYNTHETIC_BARS * 2:
        raise TooLarge("The synthetic dataset would be too large.",
                       fields={"n_bars": [f"At most {MAX_SYNTHETIC_BARS * 2} bars × symbols."]})
    try:
        bars = GENERATORS[generator](n_bars, seed=seed, **options)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ApplicationError(f"Invalid generator options: {exc}",
                               fields={"options": [str(exc)]}) from exc
    defaults = {"calendar": "24/7", "asset_class": "other", **(instrument_defaults or {})}
    return _dataset_save(
        organization=organization, actor=actor, name=name, bars=bars,
        source=DatasetSource.SYNTHETIC,
        source_detail={"generator": generator, "seed": seed, "n_bars": n_bars,
                       "options": options},
        instrument_defaults=defaults, request=request, action="dataset.generated")


def dataset_delete(*, dataset: Dataset, actor: User | None, request=None) -> None:
    _refuse_platform(dataset)
    if dataset.simulations.exists() or dataset.analyses.exists():
        raise Conflict("Simulations use this dataset; it cannot be deleted.")
    with transaction.atomic():
        audit_record(organization=dataset.organization, actor=actor, action="dataset.deleted",
                     target=dataset, request=request, metadata={"rows": dataset.rows})
        dataset.delete()

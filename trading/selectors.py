"""Reads of trading data, always scoped by organisation.

Platform rows (instruments and datasets whose ``organization`` is NULL) are visible to every
organisation, read-only; everything else is visible only to its own organisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet

from accounts.models import Organization
from trading.engine.data import resample
from trading.engine.types import BarSet
from trading.marketdata import bars_load
from trading.models import (
    Analysis,
    Dataset,
    Instrument,
    Simulation,
    SimulationEvent,
    SimulationTrade,
    Strategy,
    StrategyVersion,
)
from trading.services import results as packing


def visible(organization: Organization) -> Q:
    """Rows of the organisation and the platform's demo rows."""
    return Q(organization=organization) | Q(organization__isnull=True)


def instrument_list(*, organization: Organization) -> QuerySet[Instrument]:
    return Instrument.objects.filter(visible(organization))


def dataset_list(*, organization: Organization) -> QuerySet[Dataset]:
    return Dataset.objects.filter(visible(organization)).prefetch_related("instruments")


def strategy_list(*, organization: Organization) -> QuerySet[Strategy]:
    return Strategy.objects.filter(organization=organization)


def strategy_version_list(*, organization: Organization, strategy: Strategy | None = None
                          ) -> QuerySet[StrategyVersion]:
    qs = StrategyVersion.objects.filter(strategy__organization=organization).select_related(
        "strategy")
    return qs.filter(strategy=strategy) if strategy is not None else qs


def simulation_list(*, organization: Organization) -> QuerySet[Simulation]:
    return Simulation.objects.filter(organization=organization).select_related(
        "strategy_version__strategy", "dataset")


def simulation_events(*, simulation: Simulation, since: int = 0) -> QuerySet[SimulationEvent]:
    return SimulationEvent.objects.filter(simulation=simulation, seq__gt=since).order_by("seq")


def simulation_trades(*, simulation: Simulation) -> QuerySet[SimulationTrade]:
    return SimulationTrade.objects.filter(simulation=simulation).order_by("index")


def analysis_list(*, organization: Organization) -> QuerySet[Analysis]:
    return Analysis.objects.filter(organization=organization)


def simulation_equity(*, simulation: Simulation, points: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps ns, equity), downsampled to at most `points` when given."""
    result = simulation.result
    ts = packing.unpack_timestamps(result.timestamps_blob)
    eq = packing.unpack(result.equity_blob, "<f8")
    return packing.downsample(ts, eq, points)


def simulation_fills(*, simulation: Simulation) -> list[dict[str, Any]]:
    from trading.engine.events import fill_record

    result = simulation.result
    shape = tuple(result.fills_shape)
    if not shape or shape[0] == 0:
        return []
    fills = packing.unpack(result.fills_blob, "<f8", shape)
    ts = packing.unpack_timestamps(result.timestamps_blob)
    return [fill_record(row, result.symbols, ts) for row in fills]


def dataset_bars(*, dataset: Dataset, symbols: list[str] | None = None,
                 start: datetime | None = None, end: datetime | None = None,
                 resample_rule: str | None = None) -> BarSet:
    instruments = list(dataset.instruments.order_by("symbol"))
    if symbols:
        by_symbol = {i.symbol: i for i in instruments}
        missing = [s for s in symbols if s not in by_symbol]
        if missing:
            raise ValueError(f"the dataset has no symbol {', '.join(missing)}")
        instruments = [by_symbol[s] for s in symbols]
    bars = bars_load(dataset=dataset, instruments=instruments, start=start, end=end)
    return resample(bars, resample_rule) if resample_rule else bars

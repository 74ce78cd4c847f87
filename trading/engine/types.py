"""Shared data types of the engine: bars, strategy parameters, signals and metric inputs.

These are the seams between the engine's parts (data, strategies, the event loop, metrics,
analyses) and the platform around it, so they stay small, columnar and numpy-based.
Arrays of bars are shaped (n_bars, n_symbols); timestamps are int64 nanoseconds since the
Unix epoch, UTC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(slots=True)
class BarSet:
    """OHLCV bars for one or many symbols on one shared, sorted timestamp index."""

    timestamps: np.ndarray  # int64 ns UTC, shape (n,)
    symbols: list[str]
    open: np.ndarray  # float64, shape (n, s)
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    # Prices as exact integer ticks (round(price / tick)), when the source had fixed decimals.
    # Lets indicators decide exact ties exactly (see the SMA crossover).
    tick_size: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_bars(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True, slots=True)
class Param:
    """One documented, validated parameter of a strategy type (drives forms and API validation)."""

    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""


@dataclass(slots=True)
class Signals:
    """What a vectorised strategy decided at each bar's close, per symbol (shape (n, s)).

    Decisions at bar t are executed by the engine no earlier than bar t+1. Boolean arrays say
    when to enter/exit; optional float arrays give limit/stop prices for the entry order (NaN
    means a market order) and bracket distances as fractions of the entry price.
    `target_weight`, when given, overrides entries/exits: the desired signed fraction of
    equity per symbol (NaN = leave as is), used by pairs and portfolio strategies.
    """

    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray | None = None
    short_exits: np.ndarray | None = None
    limit_price: np.ndarray | None = None
    stop_price: np.ndarray | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    target_weight: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. a model version for Random Forest


class VectorStrategy(ABC):
    """A strategy whose decisions can be computed for all bars at once from the data alone."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    # Signals in a few array passes: milliseconds for 100k bars. A strategy that fits models
    # (Random Forest) says False, so the platform reports its progress however short the run.
    cheap_signals: ClassVar[bool] = True

    def __init__(self, **values: Any) -> None:
        self.values = validate_params(self.params, values, strategy=self.name)

    @abstractmethod
    def signals(self, bars: BarSet) -> Signals: ...


class ParamError(ValueError):
    """A strategy parameter is unknown, of the wrong type or out of range."""

    def __init__(self, strategy: str, param: str, message: str) -> None:
        super().__init__(f"{strategy}: parameter {param!r}: {message}")
        self.strategy, self.param, self.message = strategy, param, message


def validate_params(spec: tuple[Param, ...], values: dict[str, Any], *, strategy: str) -> dict[str, Any]:
    known = {p.name: p for p in spec}
    for name in values:
        if name not in known:
            raise ParamError(strategy, name, f"unknown parameter (expected one of {sorted(known)})")
    out: dict[str, Any] = {}
    for p in spec:
        raw = values.get(p.name, p.default)
        try:
            if p.type is bool and isinstance(raw, str):
                value: Any = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif p.type is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            else:
                value = p.type(raw)
        except (TypeError, ValueError):
            raise ParamError(strategy, p.name, f"expected {p.type.__name__}, got {raw!r}") from None
        if p.min is not None and value < p.min:
            raise ParamError(strategy, p.name, f"must be >= {p.min}, got {value}")
        if p.max is not None and value > p.max:
            raise ParamError(strategy, p.name, f"must be <= {p.max}, got {value}")
        if p.choices is not None and value not in p.choices:
            raise ParamError(strategy, p.name, f"must be one of {list(p.choices)}, got {value!r}")
        out[p.name] = value
    return out


@dataclass(slots=True)
class MetricInputs:
    """Everything the metrics need, produced by a backtest or a live account."""

    equity: np.ndarray  # float64 (n,), equity at each bar's close
    timestamps: np.ndarray  # int64 ns (n,)
    periods_per_year: float
    trade_pnl: np.ndarray = field(default_factory=lambda: np.empty(0))  # per closed trade
    trade_return: np.ndarray = field(default_factory=lambda: np.empty(0))  # pnl / entry notional
    exposure: np.ndarray | None = None  # gross position value / equity per bar
    traded_notional: np.ndarray | None = None  # notional traded per bar
    risk_free_annual: float = 0.0
    benchmark_equity: np.ndarray | None = None  # float64 (n,), aligned with equity
    n_params: int = 0

"""Risk limits: what may be configured, how levels combine, and how limits travel as JSON.

A `RiskLimits` holds every configurable pre-trade and kill-switch limit; every field is
optional (None, or empty for the collections, means "no limit"). Limits are set at three
levels — organisation, strategy and deployment — and `merge_limits` combines them into the
effective limits, keeping for each value the level it came from so that a refusal can say
which level's limit was hit. Serialisation is to and from plain dicts (JSON-ready); every
validation error names the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# The order in which levels are usually given to `merge_limits`, broadest first.
LEVELS: tuple[str, ...] = ("organisation", "strategy", "deployment")

# Scalar limits where a smaller number is more restrictive, with what each one bounds.
# "positive" means any number > 0; "fraction" means 0 < x <= 1; "count" a positive integer.
_SCALAR_KINDS: dict[str, str] = {
    "max_position_units": "positive",
    "max_position_notional": "positive",
    "max_position_fraction": "positive",
    "max_order_notional": "positive",
    "max_gross_exposure": "positive",
    "max_gross_notional": "positive",
    "max_net_exposure": "positive",
    "max_net_notional": "positive",
    "max_orders_per_minute": "count",
    "daily_loss_fraction": "fraction",
    "daily_loss_amount": "positive",
    "max_drawdown": "fraction",
}
# Per-group limits: group name -> maximum gross exposure of that group as a fraction of equity.
# The key "*" is the default for every group not named.
_GROUP_FIELDS: tuple[str, ...] = ("asset_limits", "asset_class_limits", "sector_limits")


class LimitsValidationError(ValueError):
    """Invalid limits. `errors` maps each offending field (dotted for map entries) to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class RiskLimits:
    """Every configurable limit; None (or empty) means "not limited".

    Fractions are of current equity (0.25 = 25 %); notionals and amounts are in the account
    currency; exposures are the sums of |quantity x price| (gross) or of signed
    quantity x price (net, compared in absolute value).
    """

    max_position_units: float | None = None  # |position| in units, per symbol
    max_position_notional: float | None = None  # |position| x price, per symbol
    max_position_fraction: float | None = None  # |position| x price / equity, per symbol
    max_order_notional: float | None = None  # |quantity| x price of one order
    max_gross_exposure: float | None = None  # gross exposure / equity
    max_gross_notional: float | None = None
    max_net_exposure: float | None = None  # |net exposure| / equity
    max_net_notional: float | None = None
    asset_limits: Mapping[str, float] = field(default_factory=dict)
    asset_class_limits: Mapping[str, float] = field(default_factory=dict)
    sector_limits: Mapping[str, float] = field(default_factory=dict)
    max_orders_per_minute: int | None = None  # accepted orders in any rolling 60 s window
    restricted_symbols: frozenset[str] = frozenset()
    daily_loss_fraction: float | None = None  # loss since the day's first bar / day-start equity
    daily_loss_amount: float | None = None
    max_drawdown: float | None = None  # (peak - equity) / peak
    flatten_on_halt: bool | None = None  # after a halt, still let position-closing orders through

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        for name, kind in _SCALAR_KINDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            message = _scalar_error(value, kind)
            if message:
                errors[name] = message
            elif kind == "count":
                object.__setattr__(self, name, int(value))
            else:
                object.__setattr__(self, name, float(value))
        for name in _GROUP_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                errors[name] = "must be a mapping of name to a fraction of equity"
                continue
            clean: dict[str, float] = {}
            for key, limit in value.items():
                if not isinstance(key, str) or not key:
                    errors[f"{name}.{key}"] = "group names must be non-empty strings"
                    continue
                message = _scalar_error(limit, "positive")
                if message:
                    errors[f"{name}.{key}"] = message
                else:
                    clean[key] = float(limit)
            object.__setattr__(self, name, clean)
        restricted = self.restricted_symbols
        if isinstance(restricted, str) or not isinstance(restricted, Iterable):
            errors["restricted_symbols"] = "must be a list of symbols"
        elif not all(isinstance(s, str) and s for s in restricted):
            errors["restricted_symbols"] = "every symbol must be a non-empty string"
        else:
            object.__setattr__(self, "restricted_symbols", frozenset(restricted))
        if self.flatten_on_halt is not None and not isinstance(self.flatten_on_halt, bool):
            errors["flatten_on_halt"] = "must be true, false or null"
        if errors:
            raise LimitsValidationError(errors)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (unset limits as None, symbols sorted)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "restricted_symbols":
                value = sorted(value)
            elif f.name in _GROUP_FIELDS:
                value = dict(sorted(value.items()))
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskLimits:
        """Build limits from a dict (e.g. parsed JSON); missing keys mean "not limited"."""
        if not isinstance(data, Mapping):
            raise LimitsValidationError({"__all__": "limits must be a JSON object"})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LimitsValidationError({k: "unknown limit" for k in unknown})
        kwargs = {k: v for k, v in data.items() if v is not None}
        for name in (*_GROUP_FIELDS, "restricted_symbols"):
            if name in kwargs and not kwargs[name]:
                del kwargs[name]  # an empty list/object is the same as "not limited"
        return cls(**kwargs)


def _scalar_error(value: Any, kind: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value):
        return "must be finite"
    if value <= 0:
        return "must be greater than 0"
    if kind == "fraction" and value > 1:
        return "must be a fraction between 0 and 1 (e.g. 0.05 for 5 %)"
    if kind == "count" and value != int(value):
        return "must be a whole number"
    return ""


@dataclass(frozen=True)
class EffectiveLimits:
    """The merged limits and, for every set value, the level it came from.

    `sources` keys are field names, `"<group field>.<group>"` for per-group limits and
    `"restricted_symbols.<symbol>"` for restrictions.
    """

    limits: RiskLimits
    sources: Mapping[str, str]

    def source(self, key: str) -> str:
        return self.sources.get(key, "")


def merge_limits(*levels: tuple[str, RiskLimits] | RiskLimits) -> EffectiveLimits:
    """Combine limits from several levels; the most restrictive value of each limit wins.

    Each level is `(level_name, limits)`; a bare `RiskLimits` is named after its position in
    `LEVELS` (organisation, strategy, deployment). Numbers: the smallest wins, and on a tie
    the earlier (broader) level is named. Per-group limits merge per group the same way, a
    level's "*" default counting as its limit for every group it does not name.
    Restricted symbols are the union. `flatten_on_halt` is true if any level sets it true
    (closing out after a halt is the safer behaviour), else false if any sets it false.
    """
    named: list[tuple[str, RiskLimits]] = []
    for i, level in enumerate(levels):
        if isinstance(level, RiskLimits):
            named.append((LEVELS[i] if i < len(LEVELS) else f"level {i + 1}", level))
        else:
            name, limits = level
            if not isinstance(limits, RiskLimits):
                raise TypeError(f"level {name!r} is not a RiskLimits")
            named.append((name, limits))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in _SCALAR_KINDS:
        for level_name, limits in named:
            value = getattr(limits, name)
            if value is not None and (name not in values or value < values[name]):
                values[name] = value
                sources[name] = level_name
    for name in _GROUP_FIELDS:
        maps = [(level_name, getattr(limits, name)) for level_name, limits in named]
        groups = sorted({group for _, groups_map in maps for group in groups_map})
        merged: dict[str, float] = {}
        for group in groups:
            for level_name, groups_map in maps:
                # A level's "*" default also bounds the groups another level names, or an
                # organisation-wide default could be loosened by a strategy naming a group.
                value = groups_map.get(group, groups_map.get("*") if group != "*" else None)
                if value is not None and (group not in merged or value < merged[group]):
                    merged[group] = value
                    sources[f"{name}.{group}"] = level_name
        values[name] = merged
    restricted: set[str] = set()
    for level_name, limits in named:
        for symbol in limits.restricted_symbols:
            if symbol not in restricted:
                restricted.add(symbol)
                sources[f"restricted_symbols.{symbol}"] = level_name
    values["restricted_symbols"] = frozenset(restricted)
    for level_name, limits in named:
        if limits.flatten_on_halt is True:
            values["flatten_on_halt"] = True
            sources["flatten_on_halt"] = level_name
            break
    else:
        for level_name, limits in named:
            if limits.flatten_on_halt is False:
                values["flatten_on_halt"] = False
                sources["flatten_on_halt"] = level_name
                break
    return EffectiveLimits(limits=RiskLimits(**values), sources=sources)

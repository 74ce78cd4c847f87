"""Write services for strategies and their immutable versions, and the translation of a version
into what the engine runs (strategy instance and `BacktestConfig`).

A version is validated completely before it is saved: parameters against the engine's `Param`
specs, rules text with the rules compiler (every error with its line and column), sizing and
costs by building the engine's own objects. Versions are numbered 1, 2, … per strategy and never
change afterwards.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.audit import audit_record
from accounts.models import Organization, User
from nexow_site.errors import ApplicationError, Conflict
from trading.engine.backtest import BacktestConfig
from trading.engine.costs import Commission, Slippage
from trading.engine.rules import validate_rules
from trading.engine.sizing import Sizing
from trading.engine.strategies import UnknownStrategyError, get_strategy
from trading.engine.types import ParamError, validate_params
from trading.models import Strategy, StrategyKind, StrategyVersion

COST_FIELDS = {
    "commission_bps": ("commission", "rate", 1e-4),
    "maker_bps": ("commission", "maker_rate", 1e-4),
    "commission_per_unit": ("commission", "per_unit", 1.0),
    "commission_min": ("commission", "minimum", 1.0),
    "commission_fixed": ("commission", "fixed", 1.0),
    "slippage_bps": ("slippage", "bps", 1.0),
    "slippage_impact": ("slippage", "impact", 1.0),
}
CONFIG_FIELDS = {"cash": float, "allow_short": bool, "whole_units": bool, "participation": float,
                 "calendar": str, "risk_free": float, "seed": int, "entry_tif": str,
                 "stop_loss": float, "take_profit": float}


def strategy_kind_check(kind: str) -> type:
    try:
        return get_strategy(kind)
    except UnknownStrategyError as exc:
        raise ApplicationError(str(exc), fields={"kind": [str(exc)]}) from exc


def strategy_create(*, organization: Organization, actor: User | None, name: str, kind: str,
                    description: str = "", request=None) -> Strategy:
    strategy_kind_check(kind)
    strategy = Strategy(organization=organization, name=(name or "").strip(), kind=kind,
                        description=description or "", created_by=actor)
    strategy.full_clean()
    with transaction.atomic():
        strategy.save()
        audit_record(organization=organization, actor=actor, action="strategy.created",
                     target=strategy, request=request, metadata={"kind": kind})
    return strategy


def strategy_update(*, strategy: Strategy, actor: User | None, name: str | None = None,
                    description: str | None = None, request=None) -> Strategy:
    if name is not None:
        strategy.name = name.strip()
    if description is not None:
        strategy.description = description
    strategy.full_clean()
    with transaction.atomic():
        strategy.save(update_fields=["name", "description"])
        audit_record(organization=strategy.organization, actor=actor, action="strategy.updated",
                     target=strategy, request=request)
    return strategy


def strategy_delete(*, strategy: Strategy, actor: User | None, request=None) -> None:
    if StrategyVersion.objects.filter(strategy=strategy, simulations__isnull=False).exists():
        raise Conflict("Simulations ran this strategy; it cannot be deleted.")
    with transaction.atomic():
        audit_record(organization=strategy.organization, actor=actor, action="strategy.deleted",
                     target=strategy, request=request)
        strategy.delete()


def _commission_slippage(costs: dict[str, Any]) -> tuple[Commission, Slippage]:
    unknown = sorted(set(costs) - set(COST_FIELDS))
    if unknown:
        raise ValueError(f"unknown cost field(s): {', '.join(unknown)}")
    parts: dict[str, dict[str, float]] = {"commission": {}, "slippage": {}}
    for name, value in costs.items():
        target, attr, scale = COST_FIELDS[name]
        parts[target][attr] = float(value) * scale
    return Commission(**parts["commission"]), Slippage(**parts["slippage"])


def version_validate(*, kind: str, params: dict[str, Any], rules_text: str,
                     sizing: dict[str, Any], costs: dict[str, Any]) -> dict[str, Any]:
    """The validated parameters; raises ApplicationError with field errors (rules text errors
    carry their line and column)."""
    cls = strategy_kind_check(kind)
    fields: dict[str, list[str]] = {}
    if not isinstance(params, dict):
        raise ApplicationError("params must be an object.", fields={"params": ["Expected an object."]})
    if kind == StrategyKind.RULES:
        if not (rules_text or "").strip():
            fields["rules_text"] = ["A rules strategy needs its rules text."]
        else:
            errors = validate_rules(rules_text)
            if errors:
                fields["rules_text"] = [f"line {e.line}, column {e.column}: {e.message}"
                                        for e in errors]
        params = {k: v for k, v in params.items() if k != "program"}
    elif rules_text:
        fields["rules_text"] = ["Only rules strategies take rules text."]
    spec = tuple(p for p in getattr(cls, "params", ()) if not (kind == StrategyKind.RULES
                                                                and p.name == "program"))
    validated: dict[str, Any] = {}
    try:
        validated = validate_params(spec, params, strategy=kind)
    except ParamError as err:
        fields[f"params.{err.param}"] = [err.message]
    try:
        Sizing(**(sizing or {}))
    except (TypeError, ValueError) as exc:
        fields["sizing"] = [str(exc)]
    try:
        _commission_slippage(costs or {})
    except (TypeError, ValueError) as exc:
        fields["costs"] = [str(exc)]
    if fields:
        raise ApplicationError("The strategy version is invalid.", fields=fields)
    return validated


def version_create(*, strategy: Strategy, actor: User | None, params: dict[str, Any] | None = None,
                   universe: list[str] | None = None, sizing: dict[str, Any] | None = None,
                   costs: dict[str, Any] | None = None, rules_text: str = "", note: str = "",
                   request=None) -> StrategyVersion:
    params = version_validate(kind=strategy.kind, params=params or {}, rules_text=rules_text,
                              sizing=sizing or {}, costs=costs or {})
    universe = [str(s).strip() for s in (universe or []) if str(s).strip()]
    for attempt in range(3):
        try:
            with transaction.atomic():
                number = (StrategyVersion.objects.filter(strategy=strategy)
                          .aggregate(m=Max("number"))["m"] or 0) + 1
                version = StrategyVersion.objects.create(
                    strategy=strategy, number=number, params=params, universe=universe,
                    sizing=sizing or {}, costs=costs or {}, rules_text=rules_text or "",
                    note=note or "", created_by=actor)
                audit_record(organization=strategy.organization, actor=actor,
                             action="strategy_version.created", target=version, request=request,
                             metadata={"strategy": strategy.pk, "number": number})
            return version
        except IntegrityError:
            # Two versions saved at once drew the same number: draw again.
            if attempt == 2:
                raise Conflict("Another version was saved at the same time; retry.") from None
    raise AssertionError("unreachable")


def engine_strategy(version: StrategyVersion) -> Any:
    """An engine strategy instance for the version."""
    cls = get_strategy(version.strategy.kind)
    params = dict(version.params)
    if version.strategy.kind == StrategyKind.RULES:
        params["program"] = version.rules_text
    return cls(**params)


def engine_params(version: StrategyVersion) -> dict[str, Any]:
    params = dict(version.params)
    if version.strategy.kind == StrategyKind.RULES:
        params["program"] = version.rules_text
    return params


def config_validate(config: dict[str, Any] | None) -> dict[str, Any]:
    """A simulation's run configuration, checked by building a `BacktestConfig` from it."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(CONFIG_FIELDS))
    if unknown:
        raise ApplicationError("Unknown configuration field(s).",
                               fields={f"config.{k}": ["Unknown field."] for k in unknown})
    try:
        BacktestConfig(**{k: CONFIG_FIELDS[k](v) if v is not None else None
                          for k, v in config.items()})
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"Invalid configuration: {exc}",
                               fields={"config": [str(exc)]}) from exc
    return config


def backtest_config(version: StrategyVersion, config: dict[str, Any],
                    default_calendar: str = "24/7") -> BacktestConfig:
    commission, slippage = _commission_slippage(version.costs or {})
    values = {k: CONFIG_FIELDS[k](v) if v is not None else None for k, v in config.items()}
    values.setdefault("calendar", default_calendar)
    return BacktestConfig(commission=commission, slippage=slippage,
                          sizing=Sizing(**(version.sizing or {})), **values)

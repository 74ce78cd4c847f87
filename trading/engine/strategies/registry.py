"""The strategy registry: every strategy type the engine can run, by name.

A strategy module registers its class with `@register`; `strategies/__init__.py` imports every
module of the package, so adding a file is enough to make a strategy available to the command
line, the API and the portal forms (which read `list_strategies()`).
"""

from __future__ import annotations

from typing import Any

from ..types import Param

_REGISTRY: dict[str, type] = {}


class UnknownStrategyError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown strategy {self.name!r} (available: {', '.join(sorted(_REGISTRY))})"


def register(cls: type) -> type:
    """Class decorator: make a VectorStrategy or Strategy subclass available by its `name`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a class attribute `name`")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"strategy name {name!r} is already registered by {existing.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def get_strategy(name: str) -> type:
    from . import load_all

    load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownStrategyError(name) from None


def create_strategy(name: str, **params: Any) -> Any:
    """An instance of the named strategy with validated parameters (raises ParamError)."""
    return get_strategy(name)(**params)


def _param_info(p: Param) -> dict[str, Any]:
    return {
        "name": p.name,
        "type": p.type.__name__,
        "default": p.default,
        "min": p.min,
        "max": p.max,
        "choices": list(p.choices) if p.choices is not None else None,
        "help": p.help,
    }


def list_strategies() -> list[dict[str, Any]]:
    """Name, description, kind ("vector" or "event") and parameters of every strategy."""
    from . import load_all
    from .base import Strategy

    load_all()
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        out.append({
            "name": name,
            "description": getattr(cls, "description", ""),
            "kind": "event" if issubclass(cls, Strategy) else "vector",
            "params": [_param_info(p) for p in getattr(cls, "params", ())],
        })
    return out

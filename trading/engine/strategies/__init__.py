"""Strategy types of the engine; every module of this package is imported so it can register.

Use `get_strategy(name)`, `create_strategy(name, **params)` and `list_strategies()`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import (
    UnknownStrategyError,
    create_strategy,
    get_strategy,
    list_strategies,
    register,
)

_loaded = False


def load_all() -> None:
    """Import every module of the package once (their `@register` decorators run)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


__all__ = [
    "UnknownStrategyError",
    "create_strategy",
    "get_strategy",
    "list_strategies",
    "load_all",
    "register",
]

"""The Nexow trading engine: a plain library (numpy, numba, pandas/pyarrow), no Django.

Entry points, imported lazily so that `trading.engine.types` stays cheap to import:

    from trading.engine import run_backtest, BacktestConfig, read_bars, create_strategy
    result = run_backtest(read_bars("bars.csv"), create_strategy("sma_cross"), BacktestConfig())

See docs/engine.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BacktestConfig": "backtest",
    "BacktestResult": "backtest",
    "run_backtest": "backtest",
    "read_bars": "data",
    "read_csv": "data",
    "read_parquet": "data",
    "write_csv": "data",
    "BarValidationError": "data",
    "create_strategy": "strategies",
    "get_strategy": "strategies",
    "list_strategies": "strategies",
    "register": "strategies",
    "Strategy": "strategies.base",
    "Order": "orders",
    "Commission": "costs",
    "Slippage": "costs",
    "Sizing": "sizing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trading.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

"""How many units an order buys or sells, decided at fill time from the fill price.

Sizing is resolved when an order first fills (not when it is placed), because the all-cash rule of
the reference strategy needs the next bar's open: `q = floor((cash / (1 + fee_rate)) / price)`,
evaluated in float64 in exactly that order. Whole units floor the quantity; fractional sizing
keeps it as computed. Once resolved, the quantity stays fixed while a partially filled order
keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Kernel codes of the sizing modes (stored in the order book).
SIZE_QTY, SIZE_NOTIONAL, SIZE_PERCENT, SIZE_ALL_CASH, SIZE_TARGET_WEIGHT, SIZE_CLOSE = range(6)

MODES = {
    "fixed-quantity": SIZE_QTY,
    "fixed-notional": SIZE_NOTIONAL,
    "percent-equity": SIZE_PERCENT,
    "all-cash": SIZE_ALL_CASH,
}


@dataclass(frozen=True, slots=True)
class Sizing:
    """The entry size of signal orders.

    mode: "all-cash" (value ignored), "fixed-quantity" (value = units), "fixed-notional"
    (value = currency), "percent-equity" (value = fraction of equity, 0.5 = 50 %).
    """

    mode: str = "all-cash"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown sizing mode {self.mode!r} (expected one of {sorted(MODES)})")
        if not self.value > 0:
            raise ValueError("sizing value must be > 0")

    @property
    def code(self) -> int:
        return MODES[self.mode]

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "value": self.value}


def all_cash_quantity(cash: float, price: float, fee_rate: float, whole_units: bool) -> float:
    """The reference formula, for callers outside the kernel (same float64 arithmetic)."""
    q = (cash / (1.0 + fee_rate)) / price
    return float(q // 1.0) if whole_units else q

"""Transaction cost models of the engine: commissions and slippage.

Each model is a small frozen dataclass that a person configures; the event loop only sees the
flat float vector produced by `cost_params`, so the compiled kernel has one fee formula:

    fee = fixed + rate * notional + per_unit * quantity, then at least `minimum` (when > 0)

where `rate` is the maker rate for fills of resting limit orders and the taker rate otherwise.
Slippage moves the fill price of taker fills (market and stop orders) against the trader by a
fixed number of basis points plus a volume-share impact `impact * (quantity / bar volume)`.
Limit fills are never slipped: they fill at their limit or better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Commission:
    """General commission: `fixed + rate * notional + per_unit * qty`, floored at `minimum`."""

    rate: float = 0.0  # taker rate, fraction of notional (0.001 = 10 bps)
    maker_rate: float | None = None  # None = same as `rate`
    per_unit: float = 0.0
    minimum: float = 0.0
    fixed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rate", "per_unit", "minimum", "fixed"):
            if getattr(self, name) < 0 or not np.isfinite(getattr(self, name)):
                raise ValueError(f"commission {name} must be a finite number >= 0")

    @property
    def effective_maker_rate(self) -> float:
        return self.rate if self.maker_rate is None else self.maker_rate

    def fee(self, quantity: float, price: float, *, maker: bool = False) -> float:
        """The fee of one fill, with exactly the kernel's arithmetic."""
        rate = self.effective_maker_rate if maker else self.rate
        fee = self.fixed + (abs(quantity) * price) * rate + self.per_unit * abs(quantity)
        return max(fee, self.minimum) if self.minimum > 0 else fee

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["maker_rate"] = self.effective_maker_rate
        return d


def bps_commission(bps: float) -> Commission:
    """A percentage of notional, e.g. 10 bps = 0.1 %."""
    return Commission(rate=bps / 10_000.0)


def per_unit_commission(per_unit: float, minimum: float = 0.0) -> Commission:
    """A fee per share/contract with a minimum per fill (the usual equity-broker schedule)."""
    return Commission(per_unit=per_unit, minimum=minimum)


def fixed_commission(amount: float) -> Commission:
    """A flat fee per fill."""
    return Commission(fixed=amount)


def maker_taker_commission(maker_bps: float, taker_bps: float) -> Commission:
    """Exchange-style fees: resting limit fills pay `maker_bps` (may be negative: a rebate)."""
    return Commission(rate=taker_bps / 10_000.0, maker_rate=maker_bps / 10_000.0)


@dataclass(frozen=True, slots=True)
class Slippage:
    """Adverse price move on taker fills: `bps` fixed plus `impact * quantity / bar volume`."""

    bps: float = 0.0
    impact: float = 0.0  # fraction of price per unit of participation (qty / volume)

    def __post_init__(self) -> None:
        if self.bps < 0 or self.impact < 0:
            raise ValueError("slippage bps and impact must be >= 0")

    def describe(self) -> dict[str, Any]:
        return asdict(self)


# Positions of the cost parameters in the kernel's parameter vector (see core.py).
P_FIXED, P_RATE, P_MAKER_RATE, P_PER_UNIT, P_MINIMUM, P_SLIP_BPS, P_IMPACT = range(7)
N_COST_PARAMS = 7


def cost_params(commission: Commission, slippage: Slippage) -> np.ndarray:
    return np.array(
        [
            commission.fixed,
            commission.rate,
            commission.effective_maker_rate,
            commission.per_unit,
            commission.minimum,
            slippage.bps,
            slippage.impact,
        ],
        dtype=np.float64,
    )

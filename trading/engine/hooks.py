"""The contract between the engine and whatever guards its orders (the risk rulebook).

The engine knows nothing of limits, organisations or alerts; it only asks a `PreTradeCheck`
before every order it would place and once per bar, and obeys the answer. `risk.core`
implements the rulebook behind this protocol, so that a backtest and a live deployment are
guarded by the same code. Everything here is plain data: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the engine is about to place, before any fill.

    `side` is +1 for buy and -1 for sell; `quantity` is positive; `price` is the reference
    price used to value the order (the limit price, or the latest close for market orders).
    `timestamp` is nanoseconds since the Unix epoch (UTC) of the decision bar.
    """

    symbol: str
    side: int
    quantity: float
    price: float
    timestamp: int
    order_type: str = "market"
    strategy: str = ""

    @property
    def notional(self) -> float:
        return abs(self.quantity * self.price)


@dataclass(slots=True)
class PortfolioSnapshot:
    """The portfolio as the engine sees it at a decision point (mark-to-market at the latest close).

    `positions` maps symbol to signed quantity; `prices` maps symbol to the latest close;
    `day_start_equity` is the equity at the first bar of the current UTC day and
    `peak_equity` the highest equity so far, so drawdown and daily-loss rules need no history.
    """

    timestamp: int
    cash: float
    equity: float
    positions: dict[str, float] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    day_start_equity: float = 0.0
    peak_equity: float = 0.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A refusal. `halt=True` means the kill switch fired: stop trading from this bar on."""

    rule: str
    reason: str
    halt: bool = False


class PreTradeCheck(Protocol):
    def check(self, intent: OrderIntent, snapshot: PortfolioSnapshot) -> CheckResult | None:
        """Return None to let the order through, or the reason it is refused."""

    def on_bar(self, snapshot: PortfolioSnapshot) -> CheckResult | None:
        """Called once per bar after marking to market; a result with halt=True stops trading."""

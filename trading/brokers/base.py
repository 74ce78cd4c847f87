"""The one interface every broker adapter implements, and the plain records it speaks in.

A live or paper deployment never talks to an exchange directly: the order manager
(`trading.oms`) calls a `BrokerAdapter`. Every adapter is idempotent on the client order id —
placing the same id twice returns the order already known to the broker and never sends a
second order — because a re-delivered "advance deployment" task regenerates the same ids.

Quantities and prices are floats here, as in the engine; the Django layer stores them as
`Decimal` (converted through `str`). Statuses use the order manager's vocabulary
(`new`, `accepted`, `partially_filled`, `filled`, `cancelled`, `rejected`). Symbols use the
normalised `BASE/QUOTE` convention of `trading.feeds.symbols`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from trading.feeds.base import Bar

__all__ = ["Bar", "BrokerAdapter", "BrokerError", "BrokerFill", "BrokerOrder",
           "BrokerUnavailable", "MalformedResponse", "OrderRejected", "validate_order"]

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
TIFS = ("GTC", "DAY", "IOC")
STATUSES = ("new", "accepted", "partially_filled", "filled", "cancelled", "rejected")
OPEN_STATUSES = frozenset({"new", "accepted", "partially_filled"})


class BrokerError(Exception):
    """The broker could not do what was asked; nothing is known to have happened."""


class OrderRejected(BrokerError):
    """The broker answered and refused the order (the reason is the broker's text)."""


class BrokerUnavailable(BrokerError):
    """A transient failure (network, timeout, 5xx): retry later, reconcile first."""


class MalformedResponse(BrokerError):
    """The broker's answer could not be understood; the order's fate is unknown until a
    lookup by client order id says otherwise."""


@dataclass(slots=True)
class BrokerOrder:
    """An order as the broker reports it."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    order_type: str = "market"
    status: str = "accepted"
    broker_order_id: str = ""
    filled_quantity: float = 0.0
    average_price: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "GTC"
    reason: str = ""
    timestamp: int = 0  # ns UTC of the broker's last update

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrokerOrder:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class BrokerFill:
    """One execution. `fill_id` is unique per broker; `fee` is in `fee_currency`."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float = 0.0
    fee_currency: str = ""
    timestamp: int = 0  # ns UTC
    broker_order_id: str = ""
    maker: bool = False

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrokerFill:
        return cls(**data)


def validate_order(symbol: str, side: str, quantity: float, order_type: str,
                   limit_price: float | None, stop_price: float | None, tif: str) -> None:
    """Refuse an order no broker could take, before anything is sent."""
    if not symbol:
        raise ValueError("symbol is required")
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if order_type not in ORDER_TYPES:
        raise ValueError(f"order type must be one of {ORDER_TYPES}, got {order_type!r}")
    if tif not in TIFS:
        raise ValueError(f"time in force must be one of {TIFS}, got {tif!r}")
    if not quantity > 0:
        raise ValueError(f"quantity must be > 0, got {quantity!r}")
    if order_type in ("limit", "stop_limit") and not (limit_price and limit_price > 0):
        raise ValueError(f"a {order_type} order needs a positive limit price")
    if order_type in ("stop", "stop_limit") and not (stop_price and stop_price > 0):
        raise ValueError(f"a {order_type} order needs a positive stop price")


class BrokerAdapter(ABC):
    """What the order manager needs from a broker. Every call may raise a `BrokerError`."""

    name: str = "broker"
    # The order types the venue takes; a bracket's stop-loss leg needs "stop".
    order_types: frozenset[str] = frozenset({"market", "limit", "stop", "stop_limit"})

    @abstractmethod
    def place_order(self, client_order_id: str, symbol: str, side: str, quantity: float,
                    order_type: str = "market", limit_price: float | None = None,
                    stop_price: float | None = None, tif: str = "GTC") -> BrokerOrder:
        """Send the order unless the broker already knows `client_order_id`; either way return
        the broker's view of it. Raises `OrderRejected` when refused."""

    @abstractmethod
    def cancel_order(self, client_order_id: str) -> BrokerOrder:
        """Cancel a working order (a finished order is returned unchanged)."""

    @abstractmethod
    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The broker's view of one order, or None when it has never seen the id."""

    @abstractmethod
    def open_orders(self) -> list[BrokerOrder]: ...

    @abstractmethod
    def balances(self) -> dict[str, float]:
        """Free plus locked amount per currency."""

    @abstractmethod
    def positions(self) -> dict[str, float]:
        """Signed quantity per normalised symbol (zero positions left out)."""

    @abstractmethod
    def fills(self, since: int | None = None) -> list[BrokerFill]:
        """Executions with `timestamp >= since` (all known when None), oldest first."""

    def on_bar(self, bar: Bar) -> None:  # noqa: B027 - a no-op for real brokers by design
        """A bar has closed. Simulated brokers fill their working orders on it; real brokers
        ignore it (the exchange fills)."""

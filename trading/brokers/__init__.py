"""Broker adapters behind one interface (`base.BrokerAdapter`; see docs/live.md).

`paper` fills with the engine's own rules; `ccxt_broker` (Binance spot and testnet), `ib`
(Interactive Brokers through ib_async) and `fix` (FIX 4.4 through simplefix) reach real venues
and are imported from their modules, so that one adapter does not load another's library.
"""

from .base import (
    BrokerAdapter,
    BrokerError,
    BrokerFill,
    BrokerOrder,
    BrokerUnavailable,
    MalformedResponse,
    OrderRejected,
)
from .paper import PaperBroker

__all__ = ["BrokerAdapter", "BrokerError", "BrokerFill", "BrokerOrder", "BrokerUnavailable",
           "MalformedResponse", "OrderRejected", "PaperBroker"]

"""Interactive Brokers through ib_async: the order adapter and contract/symbol mapping.

The adapter drives an `ib_async.IB` instance connected by the caller (TWS or IB Gateway). The
client order id travels in IB's `Order.orderRef`, which IB keeps on the order and on every
execution, so an id is looked up among the session's trades (and, once per adapter, the
day's completed orders from `reqCompletedOrders`) before anything is sent. IB's order states
map to the order manager's: PendingSubmit/ApiPending/PreSubmitted/Submitted -> accepted (or
partially_filled once something filled), Filled -> filled, Cancelled/ApiCancelled ->
cancelled, Inactive/ValidationError -> rejected (with IB's message as the reason).

Symbols map to contracts as `BASE/QUOTE` = symbol and currency: "AAPL/USD" is a SMART-routed
stock unless a contract is given for it; "EUR/USD" style pairs of currencies are Forex.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ib_async import (
    Contract,
    Forex,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
    Trade,
)

from trading.feeds.symbols import split_symbol

from .base import (
    BrokerAdapter,
    BrokerFill,
    BrokerOrder,
    OrderRejected,
    validate_order,
)

CURRENCIES = frozenset({"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK",
                        "DKK", "HKD", "SGD"})
_ACTIVE = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel",
           "ApiUpdate"}


def contract_symbol(contract: Contract) -> str:
    """The platform symbol of an IB contract ("AAPL/USD", "EUR/USD")."""
    if contract.secType == "CASH" and contract.symbol and contract.currency:
        return f"{contract.symbol}/{contract.currency}"
    base = contract.symbol or contract.localSymbol
    return f"{base}/{contract.currency}".upper()


def default_contract(symbol: str) -> Contract:
    base, quote = split_symbol(symbol)
    if base in CURRENCIES and quote in CURRENCIES:
        return Forex(base + quote)
    return Stock(base, "SMART", quote)


def ns_of(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1_000_000)) * 1000


def _status(trade: Trade) -> tuple[str, str]:
    st = trade.orderStatus
    raw = st.status
    if raw == "Filled":
        return "filled", ""
    if raw in ("Cancelled", "ApiCancelled"):
        return "cancelled", _last_message(trade) or "cancelled"
    if raw in ("Inactive", "ValidationError"):
        return "rejected", trade.advancedError or _last_message(trade) or raw
    return ("partially_filled" if st.filled > 0 else "accepted"), ""


def _price(value: Any) -> float | None:
    return None if value is None else float(value)


def _last_message(trade: Trade) -> str:
    for entry in reversed(trade.log):
        if entry.message:
            return entry.message
    return ""


class IbBroker(BrokerAdapter):
    name = "interactive_brokers"

    def __init__(self, ib: Any, *, contracts: Mapping[str, Contract] | None = None,
                 account: str = "") -> None:
        self.ib = ib
        self.contracts = dict(contracts or {})
        self.account = account
        self._completed_loaded = False

    def contract_for(self, symbol: str) -> Contract:
        return self.contracts.get(symbol) or default_contract(symbol)

    def _find(self, client_order_id: str) -> Trade | None:
        for trade in self.ib.trades():
            if trade.order.orderRef == client_order_id:
                return trade
        if not self._completed_loaded:
            # after a restart, finished orders of the day are only known once asked for
            self._completed_loaded = True
            for trade in self.ib.reqCompletedOrders(False):
                if trade.order.orderRef == client_order_id:
                    return trade
        return None

    def _order(self, trade: Trade, symbol: str | None = None) -> BrokerOrder:
        order, st = trade.order, trade.orderStatus
        status, reason = _status(trade)
        typ = {"MKT": "market", "LMT": "limit", "STP": "stop", "STP LMT": "stop_limit"}.get(
            order.orderType, "market")
        return BrokerOrder(
            client_order_id=order.orderRef, symbol=symbol or contract_symbol(trade.contract),
            side="buy" if order.action == "BUY" else "sell",
            quantity=float(order.totalQuantity), order_type=typ, status=status,
            broker_order_id=str(order.permId or order.orderId), filled_quantity=float(st.filled),
            average_price=float(st.avgFillPrice) or None,
            limit_price=_price(order.lmtPrice) if typ in ("limit", "stop_limit") else None,
            stop_price=_price(order.auxPrice) if typ in ("stop", "stop_limit") else None,
            tif=order.tif or "DAY", reason=reason,
            timestamp=ns_of(trade.log[-1].time) if trade.log else 0)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        trade = self._find(client_order_id)
        return None if trade is None else self._order(trade)

    def place_order(self, client_order_id: str, symbol: str, side: str, quantity: float,
                    order_type: str = "market", limit_price: float | None = None,
                    stop_price: float | None = None, tif: str = "GTC") -> BrokerOrder:
        validate_order(symbol, side, quantity, order_type, limit_price, stop_price, tif)
        trade = self._find(client_order_id)
        if trade is None:
            action = "BUY" if side == "buy" else "SELL"
            order: Order
            if order_type == "market":
                order = MarketOrder(action, quantity)
            elif order_type == "limit":
                order = LimitOrder(action, quantity, float(limit_price or 0.0))
            elif order_type == "stop":
                order = StopOrder(action, quantity, float(stop_price or 0.0))
            else:  # validate_order made sure both prices are there
                order = StopLimitOrder(action, quantity, float(limit_price or 0.0),
                                       float(stop_price or 0.0))
            order.orderRef = client_order_id
            order.tif = tif
            if self.account:
                order.account = self.account
            trade = self.ib.placeOrder(self.contract_for(symbol), order)
        answer = self._order(trade, symbol)
        if answer.status == "rejected":
            raise OrderRejected(answer.reason)
        return answer

    def cancel_order(self, client_order_id: str) -> BrokerOrder:
        trade = self._find(client_order_id)
        if trade is None:
            raise OrderRejected(f"unknown order {client_order_id!r}")
        if trade.orderStatus.status in _ACTIVE:
            self.ib.cancelOrder(trade.order)
        return self._order(trade)

    def open_orders(self) -> list[BrokerOrder]:
        return [self._order(t) for t in self.ib.openTrades() if t.order.orderRef]

    def balances(self) -> dict[str, float]:
        return {v.currency: float(v.value) for v in self.ib.accountValues(self.account)
                if v.tag == "TotalCashBalance" and v.currency not in ("", "BASE")}

    def positions(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.ib.positions(self.account):
            if p.position:
                sym = contract_symbol(p.contract)
                out[sym] = out.get(sym, 0.0) + float(p.position)
        return out

    def fills(self, since: int | None = None) -> list[BrokerFill]:
        out = []
        for f in self.ib.fills():
            ex, report = f.execution, f.commissionReport
            ts = ns_of(f.time)
            if since is not None and ts < since:
                continue
            out.append(BrokerFill(
                fill_id=ex.execId, client_order_id=ex.orderRef,
                symbol=contract_symbol(f.contract), side="buy" if ex.side == "BOT" else "sell",
                quantity=float(ex.shares), price=float(ex.price),
                fee=float(report.commission), fee_currency=report.currency, timestamp=ts,
                broker_order_id=str(ex.permId or ex.orderId)))
        out.sort(key=lambda f: (f.timestamp, f.fill_id))
        return out

"""Crypto exchanges through ccxt — Binance spot and the Binance spot testnet first.

`binance_exchange()` builds a ccxt `binance` client restricted to spot (no futures or margin
calls at start-up), optionally on the testnet (`set_sandbox_mode`) or on any base URL (a
regional endpoint, or a local fake in tests). `CcxtBroker` maps the adapter interface onto
ccxt's unified calls: `create_order` with Binance's `newClientOrderId`, `fetch_order` by
`origClientOrderId` (looked up before every send, so an id is never sent twice),
`cancel_order`, `fetch_open_orders`, `fetch_balance` and `fetch_my_trades`.

Errors are mapped to the adapter's: the exchange refusing (`InvalidOrder`,
`InsufficientFunds`, `BadRequest`, ...) is `OrderRejected`; network trouble and maintenance are
`BrokerUnavailable`; an answer that cannot be parsed is `MalformedResponse`, and then the
order's fate is settled later by a lookup, never assumed.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from typing import Any

import ccxt

from trading.feeds.symbols import normalise_symbol

from .base import (
    BrokerAdapter,
    BrokerFill,
    BrokerOrder,
    BrokerUnavailable,
    MalformedResponse,
    OrderRejected,
    validate_order,
)

_STATUS = {"open": "accepted", "closed": "filled", "canceled": "cancelled",
           "cancelled": "cancelled", "expired": "cancelled", "rejected": "rejected"}
_TIF = {"GTC": "GTC", "IOC": "IOC"}  # Binance spot has no DAY orders


def binance_exchange(api_key: str = "", secret: str = "", *, testnet: bool = False,
                     base_url: str | None = None, timeout_ms: int = 10_000) -> ccxt.binance:
    """A ccxt binance client for spot trading. `base_url` (scheme and host, e.g.
    "http://127.0.0.1:8080") replaces the host of every REST endpoint."""
    exchange = ccxt.binance({
        "apiKey": api_key,
        "secret": secret,
        "timeout": timeout_ms,
        "enableRateLimit": True,
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "adjustForTimeDifference": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    })
    if testnet:
        exchange.set_sandbox_mode(True)
    if base_url is not None:
        base = base_url.rstrip("/")
        api = exchange.urls["api"]
        for key, url in list(api.items()):
            if isinstance(url, str) and "://" in url:
                path = "/" + url.split("://", 1)[1].split("/", 1)[1] if "/" in url.split(
                    "://", 1)[1] else ""
                api[key] = base + path
        exchange.enableRateLimit = False
    return exchange


def _scrubbed(exc: Exception, call: Any) -> str:
    """The exception's text without the client's credentials (exchange errors can quote the
    request, and these messages end up in order reasons, events and logs)."""
    text = str(exc)
    exchange = getattr(call, "__self__", None)
    for value in sorted((str(v) for v in (getattr(exchange, "apiKey", ""),
                                          getattr(exchange, "secret", "")) if v),
                        key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "••••")
    return text


def _mapped(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a ccxt call, translating its exceptions into the adapter's, with the client's
    credentials scrubbed from their messages.

    The call runs in a copy of the thread's decimal context: ccxt's `decimal_to_precision`
    sets the context's rounding to ROUND_HALF_UP and traps Underflow on the *current* context,
    which would otherwise change every later Decimal computation of the worker thread (tax
    lots, statements) after its first order."""
    try:
        with decimal.localcontext():
            return call(*args, **kwargs)
    except ccxt.OrderNotFound:
        raise
    except (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest, ccxt.BadSymbol,
            ccxt.PermissionDenied, ccxt.AuthenticationError) as exc:
        raise OrderRejected(_scrubbed(exc, call)) from exc
    except ccxt.BadResponse as exc:
        raise MalformedResponse(_scrubbed(exc, call)) from exc
    except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ccxt.OperationFailed) as exc:
        # OperationFailed: an HTTP 5xx ccxt could not classify further
        raise BrokerUnavailable(_scrubbed(exc, call)) from exc
    except ccxt.ExchangeError as exc:
        raise OrderRejected(_scrubbed(exc, call)) from exc
    except (ValueError, TypeError, KeyError) as exc:  # ccxt parsing an unexpected shape
        raise MalformedResponse(f"{type(exc).__name__}: {_scrubbed(exc, call)}") from exc


class CcxtBroker(BrokerAdapter):
    """A spot account on a ccxt exchange, trading `symbols` (normalised "BASE/QUOTE")."""

    name = "ccxt"
    order_types = frozenset({"market", "limit"})

    TRADES_PAGE = 1000  # Binance's largest page of the trade list
    TRADES_PAGES = 10  # pages read per symbol and call; the rest come at the next call

    def __init__(self, exchange: ccxt.Exchange, symbols: Iterable[str],
                 order_ids: dict[str, str] | None = None) -> None:
        self.exchange = exchange
        self.symbols = [normalise_symbol(s) for s in symbols]
        self._markets_loaded = False
        self._symbol_of: dict[str, str] = {}  # client order id -> symbol, for lookups
        # exchange order id -> client order id ("" for another's order). Pass a mapping that
        # outlives the adapter (the platform keeps one per account and process) so that each
        # order of a shared account is looked up once, not at every step.
        self._client_of: dict[str, str] = {} if order_ids is None else order_ids

    def _load(self) -> None:
        if not self._markets_loaded:
            _mapped(self.exchange.load_markets)
            self._markets_loaded = True

    def _order(self, raw: dict[str, Any]) -> BrokerOrder:
        # ccxt "parses" even a truncated body into an order of Nones: insist on the essentials
        if (not isinstance(raw, dict) or not isinstance(raw.get("info"), dict)
                or not raw.get("id") or not raw.get("symbol") or raw.get("side") not in (
                    "buy", "sell") or raw.get("status") not in _STATUS):
            text = repr(raw.get("info") if isinstance(raw, dict) else raw)[:200]
            raise MalformedResponse(f"not an order: {text}")
        amount = float(raw.get("amount") or 0.0)
        filled = float(raw.get("filled") or 0.0)
        status = _STATUS.get(raw.get("status") or "", "accepted")
        if status == "accepted" and filled > 0:
            status = "partially_filled"
        typ = raw.get("type") or "market"
        return BrokerOrder(
            client_order_id=raw.get("clientOrderId") or "", symbol=normalise_symbol(
                raw["symbol"]), side=raw.get("side") or "", quantity=amount,
            order_type=typ if typ in ("market", "limit") else "market", status=status,
            broker_order_id=str(raw.get("id") or ""), filled_quantity=filled,
            average_price=None if raw.get("average") is None else float(raw["average"]),
            limit_price=None if typ != "limit" or raw.get("price") is None else float(
                raw["price"]),
            tif=raw.get("timeInForce") or "GTC",
            timestamp=int(raw.get("lastUpdateTimestamp") or raw.get("timestamp") or 0)
            * 1_000_000)

    def get_order(self, client_order_id: str, symbol: str | None = None) -> BrokerOrder | None:
        self._load()
        candidates = [symbol] if symbol else (
            [self._symbol_of[client_order_id]] if client_order_id in self._symbol_of
            else self.symbols)
        for sym in candidates:
            try:
                raw = _mapped(self.exchange.fetch_order, None, sym,
                              {"origClientOrderId": client_order_id})
            except ccxt.OrderNotFound:
                continue
            except OrderRejected as exc:
                if "-2013" in str(exc) or "does not exist" in str(exc):
                    continue
                raise
            return self._order(raw)
        return None

    def place_order(self, client_order_id: str, symbol: str, side: str, quantity: float,
                    order_type: str = "market", limit_price: float | None = None,
                    stop_price: float | None = None, tif: str = "GTC") -> BrokerOrder:
        validate_order(symbol, side, quantity, order_type, limit_price, stop_price, tif)
        if order_type not in ("market", "limit"):
            raise OrderRejected(f"{order_type} orders are not supported on this exchange yet")
        if order_type == "limit" and tif not in _TIF:
            raise OrderRejected(f"time in force {tif} is not offered on this exchange")
        symbol = normalise_symbol(symbol)
        known = self.get_order(client_order_id, symbol)
        if known is not None:
            return known
        self._symbol_of[client_order_id] = symbol
        params: dict[str, Any] = {"newClientOrderId": client_order_id}
        if order_type == "limit":
            params["timeInForce"] = _TIF[tif]
        raw = _mapped(self.exchange.create_order, symbol, order_type, side, quantity,
                      limit_price if order_type == "limit" else None, params)
        order = self._order(raw)
        if order.client_order_id and order.client_order_id != client_order_id:
            raise MalformedResponse(f"answer names order {order.client_order_id!r}, "
                                    f"not {client_order_id!r}")
        order.client_order_id = client_order_id
        if order.broker_order_id:
            self._client_of[order.broker_order_id] = client_order_id
        return order

    def cancel_order(self, client_order_id: str) -> BrokerOrder:
        known = self.get_order(client_order_id)
        if known is None:
            raise OrderRejected(f"unknown order {client_order_id!r}")
        if not known.is_open:
            return known
        try:
            raw = _mapped(self.exchange.cancel_order, None, known.symbol,
                          {"origClientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            # It filled (or was cancelled) between the lookup and the cancel: Binance answers
            # "unknown order" (-2011) to cancelling a finished order. Its final state stands.
            final = self.get_order(client_order_id, known.symbol)
            if final is None:
                raise OrderRejected(
                    f"order {client_order_id!r} disappeared at the exchange") from None
            return final
        order = self._order(raw)
        order.client_order_id = client_order_id
        return order

    def open_orders(self) -> list[BrokerOrder]:
        self._load()
        out: list[BrokerOrder] = []
        for sym in self.symbols:
            out.extend(self._order(r) for r in _mapped(self.exchange.fetch_open_orders, sym))
        return out

    def balances(self) -> dict[str, float]:
        self._load()
        raw = _mapped(self.exchange.fetch_balance)
        total = raw.get("total") if isinstance(raw, dict) else None
        if not isinstance(total, dict):
            raise MalformedResponse("balance answer without totals")
        return {k: float(v) for k, v in total.items() if v}

    def positions(self) -> dict[str, float]:
        """Spot holdings of each traded symbol's base asset."""
        bal = self.balances()
        out = {}
        for sym in self.symbols:
            base = sym.split("/")[0]
            if bal.get(base):
                out[sym] = bal[base]
        return out

    def fills(self, since: int | None = None) -> list[BrokerFill]:
        """The account's trades of the adapter's symbols from `since` (ns, inclusive), oldest
        first, read page after page (up to `TRADES_PAGES` pages a symbol: on a busy shared
        account the rest come at the next call, from the newest listed)."""
        self._load()
        out: list[BrokerFill] = []
        since_ms = None if since is None else since // 1_000_000
        for sym in self.symbols:
            for t in self._trades(sym, since_ms):
                fee = t.get("fee") or {}
                info = t.get("info") or {}
                out.append(BrokerFill(
                    fill_id=str(t["id"]), client_order_id=self._client_id(t, info),
                    symbol=normalise_symbol(t["symbol"]), side=t["side"],
                    quantity=float(t["amount"]), price=float(t["price"]),
                    fee=float(fee.get("cost") or 0.0), fee_currency=fee.get("currency") or "",
                    timestamp=int(t["timestamp"]) * 1_000_000,
                    broker_order_id=str(t.get("order") or ""),
                    maker=t.get("takerOrMaker") == "maker"))
        out.sort(key=lambda f: (f.timestamp, f.fill_id))
        return out

    def _trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        # The first page from the time asked for; the next ones from the trade id after the
        # last one listed (Binance's `fromId`), which also steps over a millisecond holding
        # more trades than a page.
        trades: dict[str, dict[str, Any]] = {}
        page = _mapped(self.exchange.fetch_my_trades, symbol, since_ms, self.TRADES_PAGE)
        for _ in range(self.TRADES_PAGES):
            trades.update((str(t["id"]), t) for t in page)
            if len(page) < self.TRADES_PAGE:
                break
            last = max(int(t["id"]) for t in page)
            page = _mapped(self.exchange.fetch_my_trades, symbol, None, self.TRADES_PAGE,
                           {"fromId": str(last + 1)})
        return list(trades.values())

    def _client_id(self, trade: dict[str, Any], info: dict[str, Any]) -> str:
        # Binance's trade list names the exchange order id only: map it back through the
        # order, remembering the answer.
        order_id = str(trade.get("order") or info.get("orderId") or "")
        if order_id and order_id not in self._client_of:
            try:
                raw = _mapped(self.exchange.fetch_order, order_id, trade["symbol"])
            except ccxt.OrderNotFound:
                raw = {}  # an order the exchange no longer lists: not one of ours to match
            self._client_of[order_id] = raw.get("clientOrderId") or ""
        return self._client_of.get(order_id, "")

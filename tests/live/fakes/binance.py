"""A local HTTP server that answers like Binance's spot REST API, for ccxt's `binance` class.

It serves the endpoints the platform uses (exchangeInfo, time, ping, klines; and, signed with
the API key header and an HMAC-SHA256 `signature` it verifies, order placement, lookup and
cancellation, open orders, account balances and trades), keeps order state, fills market
orders at the current price, rests limit orders until `trade()` prints through them (possibly
partially), and can be told to answer the next matching request with a rejection or with
malformed JSON (`inject`). Fees are charged in the quote asset at `fee_rate`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-key"
SECRET = "test-secret"


def _num(x: float) -> str:
    return f"{x:.8f}"


@dataclass
class Injection:
    method: str
    path: str
    status: int
    body: Any
    raw: bool = False
    process: bool = False  # run the request for real, then answer with this body


@dataclass
class FakeOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str
    quantity: float
    price: float
    tif: str
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0
    time: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": _num(self.price),
            "origQty": _num(self.quantity), "executedQty": _num(self.executed),
            "cummulativeQuoteQty": _num(self.quote), "status": self.status,
            "timeInForce": self.tif, "type": self.type, "side": self.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time,
            "updateTime": self.time, "isWorking": self.status in ("NEW", "PARTIALLY_FILLED"),
            "workingTime": self.time, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }


MARKETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}


class FakeBinance:
    """State and behaviour; `start()` serves it on 127.0.0.1 on a free port."""

    def __init__(self, *, fee_rate: float = 0.001, fee_in_received_asset: bool = False) -> None:
        self.fee_rate = fee_rate
        # Binance takes the fee from what the trade brings in (a buy's fee in the base asset)
        self.fee_in_received_asset = fee_in_received_asset
        self.prices: dict[str, float] = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0}
        self.balances: dict[str, list[float]] = {"USDT": [100_000.0, 0.0], "BTC": [0.0, 0.0],
                                                 "ETH": [0.0, 0.0]}
        self.orders: list[FakeOrder] = []
        self.trades: list[dict[str, Any]] = []
        self.klines: dict[str, list[list[Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.injections: deque[Injection] = deque()
        self.now_ms: int | None = None  # fixed server time, or the real clock when None
        self._lock = threading.RLock()
        self._ids = 1000
        self._trade_ids = 5000
        self._server: ThreadingHTTPServer | None = None

    # -- control from tests -------------------------------------------------------------------
    def start(self) -> FakeBinance:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_DELETE = do_PUT = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, method: str, path: str, status: int, body: Any, *, raw: bool = False,
               process: bool = False) -> None:
        self.injections.append(Injection(method, path, status, body, raw, process))

    def calls(self, method: str, path: str) -> list[dict[str, str]]:
        return [p for m, pa, p in self.requests if m == method and pa == path]

    def order(self, client_order_id: str) -> FakeOrder | None:
        return next((o for o in self.orders if o.client_order_id == client_order_id), None)

    def trade(self, symbol: str, price: float, quantity: float) -> None:
        """A market print: resting limit orders at or through `price` fill, oldest first,
        sharing `quantity` (so a small print fills an order partially)."""
        with self._lock:
            self.prices[symbol] = price
            left = quantity
            for o in self.orders:
                if left <= 0 or o.symbol != symbol or o.status not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                crosses = price <= o.price if o.side == "BUY" else price >= o.price
                if not crosses:
                    continue
                qty = min(left, o.quantity - o.executed)
                self._fill(o, qty, o.price, maker=True)
                left -= qty

    def foreign_trades(self, symbol: str, count: int, price: float) -> None:
        """`count` trades of someone else's order on the same account (a shared account),
        listed in the trade list like the account's own."""
        with self._lock:
            self._ids += 1
            order = FakeOrder(self._ids, f"someone-else-{self._ids}", symbol, "BUY", "LIMIT",
                              count * 0.001, price, "GTC", time=self._now())
            self.orders.append(order)
            for _ in range(count):
                self._trade_ids += 1
                self.trades.append({
                    "symbol": symbol, "id": self._trade_ids, "orderId": order.order_id,
                    "orderListId": -1, "price": _num(price), "qty": _num(0.001),
                    "quoteQty": _num(0.001 * price), "commission": "0.00000000",
                    "commissionAsset": "USDT", "time": self._now(), "isBuyer": True,
                    "isMaker": True, "isBestMatch": True})

    def add_klines(self, symbol: str, rows: list[tuple[int, float, float, float, float, float]],
                   interval_ms: int = 60_000) -> None:
        """Candles (open time ms, o, h, l, c, v) as /api/v3/klines will serve them."""
        out = self.klines.setdefault(symbol, [])
        for t, o, h, lo, c, v in rows:
            out.append([t, _num(o), _num(h), _num(lo), _num(c), _num(v), t + interval_ms - 1,
                        _num(v * c), 10, "0", "0", "0"])
        out.sort(key=lambda r: r[0])

    # -- the exchange -------------------------------------------------------------------------
    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _fill(self, o: FakeOrder, qty: float, price: float, *, maker: bool) -> None:
        base, quote = MARKETS[o.symbol]
        notional = qty * price
        fee = notional * self.fee_rate
        fee_asset = quote
        if o.side == "BUY":
            if o.type == "LIMIT":
                self.balances[quote][1] -= qty * o.price
            else:
                self.balances[quote][0] -= notional
            if self.fee_in_received_asset:
                fee, fee_asset = qty * self.fee_rate, base
                self.balances[base][0] -= fee
            else:
                self.balances[quote][0] -= fee
            self.balances[base][0] += qty
        else:
            if o.type == "LIMIT":
                self.balances[base][1] -= qty
            else:
                self.balances[base][0] -= qty
            self.balances[quote][0] += notional - fee
        o.executed += qty
        o.quote += notional
        o.status = "FILLED" if o.executed >= o.quantity - 1e-12 else "PARTIALLY_FILLED"
        self._trade_ids += 1
        trade = {"symbol": o.symbol, "id": self._trade_ids, "orderId": o.order_id,
                 "orderListId": -1, "price": _num(price), "qty": _num(qty),
                 "quoteQty": _num(notional), "commission": _num(fee), "commissionAsset": fee_asset,
                 "time": self._now(), "isBuyer": o.side == "BUY", "isMaker": maker,
                 "isBestMatch": True}
        self.trades.append(trade)
        o.fills.append({"price": _num(price), "qty": _num(qty), "commission": _num(fee),
                        "commissionAsset": fee_asset, "tradeId": self._trade_ids})

    def _error(self, code: int, msg: str, status: int = 400) -> tuple[int, Any]:
        return status, {"code": code, "msg": msg}

    def _place(self, p: dict[str, str]) -> tuple[int, Any]:
        symbol = p.get("symbol", "")
        if symbol not in MARKETS:
            return self._error(-1121, "Invalid symbol.")
        coid = p.get("newClientOrderId") or f"fake-{self._ids}"
        if self.order(coid) is not None:
            return self._error(-2010, "Duplicate order sent.")
        side, typ = p.get("side", ""), p.get("type", "")
        qty = float(p.get("quantity", "0"))
        price = float(p.get("price", "0") or 0)
        if typ not in ("MARKET", "LIMIT") or side not in ("BUY", "SELL") or qty <= 0:
            return self._error(-1102, "Mandatory parameter was not sent, was empty/null, or "
                                      "malformed.")
        base, quote = MARKETS[symbol]
        px = self.prices[symbol] if typ == "MARKET" else price
        need = qty * px * (1 + self.fee_rate) if side == "BUY" else qty
        have = self.balances[quote if side == "BUY" else base][0]
        if need > have + 1e-9:
            return self._error(-2010, "Account has insufficient balance for requested action.")
        self._ids += 1
        o = FakeOrder(self._ids, coid, symbol, side, typ, qty, price,
                      p.get("timeInForce", "GTC"), time=self._now())
        self.orders.append(o)
        if typ == "MARKET":
            self._fill(o, qty, self.prices[symbol], maker=False)
        else:
            crosses = (self.prices[symbol] <= price if side == "BUY"
                       else self.prices[symbol] >= price)
            if crosses:
                self._fill(o, qty, self.prices[symbol], maker=False)
            else:  # resting: lock the funds
                if side == "BUY":
                    self.balances[quote][0] -= qty * price
                    self.balances[quote][1] += qty * price
                else:
                    self.balances[base][0] -= qty
                    self.balances[base][1] += qty
        body = o.as_json() | {"transactTime": o.time, "fills": o.fills}
        return 200, body

    def _find(self, p: dict[str, str]) -> FakeOrder | None:
        if "orderId" in p:
            return next((o for o in self.orders if str(o.order_id) == p["orderId"]), None)
        if "origClientOrderId" in p:
            return self.order(p["origClientOrderId"])
        return None

    def _cancel(self, p: dict[str, str]) -> tuple[int, Any]:
        o = self._find(p)
        if o is None:
            return self._error(-2011, "Unknown order sent.")
        if o.status not in ("NEW", "PARTIALLY_FILLED"):
            return self._error(-2011, "Unknown order sent.")
        base, quote = MARKETS[o.symbol]
        left = o.quantity - o.executed
        if o.side == "BUY":
            self.balances[quote][1] -= left * o.price
            self.balances[quote][0] += left * o.price
        else:
            self.balances[base][1] -= left
            self.balances[base][0] += left
        o.status = "CANCELED"
        return 200, o.as_json()

    def _route(self, method: str, path: str, p: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/ping":
            return 200, {}
        if path == "/api/v3/time":
            return 200, {"serverTime": self._now()}
        if path == "/api/v3/exchangeInfo":
            return 200, _exchange_info(self._now())
        if path == "/api/v3/klines":
            rows = self.klines.get(p.get("symbol", ""), [])
            start = int(p.get("startTime", "0"))
            end = int(p["endTime"]) if "endTime" in p else None
            out = [r for r in rows if r[0] >= start and (end is None or r[0] <= end)]
            return 200, out[: int(p.get("limit", "500"))]
        if method == "POST" and path == "/api/v3/order":
            return self._place(p)
        if method == "DELETE" and path == "/api/v3/order":
            return self._cancel(p)
        if method == "GET" and path == "/api/v3/order":
            o = self._find(p)
            return (200, o.as_json()) if o else self._error(-2013, "Order does not exist.")
        if path == "/api/v3/openOrders":
            sym = p.get("symbol")
            return 200, [o.as_json() for o in self.orders
                         if o.status in ("NEW", "PARTIALLY_FILLED")
                         and (sym is None or o.symbol == sym)]
        if path == "/api/v3/account":
            return 200, {"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                         "accountType": "SPOT", "updateTime": self._now(), "permissions": ["SPOT"],
                         "balances": [{"asset": a, "free": _num(f), "locked": _num(lk)}
                                      for a, (f, lk) in self.balances.items()]}
        if path == "/api/v3/myTrades":
            sym = p.get("symbol")
            start = int(p.get("startTime", "0"))
            from_id = int(p.get("fromId", "0"))
            if "fromId" in p and "startTime" in p:
                return self._error(-1128, "fromId cannot be sent with startTime or endTime.")
            limit = min(int(p.get("limit", "500")), 1000)  # Binance: default 500, at most 1000
            return 200, [t for t in self.trades if t["symbol"] == sym and t["time"] >= start
                         and t["id"] >= from_id][:limit]
        return self._error(-1000, f"no route {method} {path}", 404)

    SIGNED = ("/api/v3/order", "/api/v3/openOrders", "/api/v3/account", "/api/v3/myTrades")

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parts.query
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        raw_params = "&".join(x for x in (query, body) if x)
        params = dict(parse_qsl(raw_params, keep_blank_values=True))
        method, path = h.command, parts.path
        with self._lock:
            self.requests.append((method, path, params))
            status, answer, raw = self._answer(method, path, params, raw_params, h)
        data = answer.encode() if raw else json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json;charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _answer(self, method: str, path: str, params: dict[str, str], raw_params: str,
                h: BaseHTTPRequestHandler) -> tuple[int, Any, bool]:
        if path in self.SIGNED:
            if h.headers.get("X-MBX-APIKEY") != API_KEY:
                return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for "
                                                   "action."}, False
            signed, _, signature = raw_params.rpartition("&signature=")
            expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
            if "timestamp" not in params or not hmac.compare_digest(signature, expected):
                return 400, {"code": -1022, "msg": "Signature for this request is not "
                                                   "valid."}, False
        for inj in list(self.injections):
            if inj.method == method and inj.path == path:
                self.injections.remove(inj)
                if inj.process:
                    self._route(method, path, params)
                return inj.status, inj.body, inj.raw
        status, answer = self._route(method, path, params)
        return status, answer, False


def _exchange_info(now: int) -> dict[str, Any]:
    symbols = []
    for sym, (base, quote) in MARKETS.items():
        symbols.append({
            "symbol": sym, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True, "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                 "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                 "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000",
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        })
    return {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
            "symbols": symbols}

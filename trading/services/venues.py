"""Where a deployment trades and where its bars come from, per kind of broker account.

`deployments.py` owns the lifecycle and the step; this module answers the two questions the
step asks of a venue: which `BrokerAdapter` (`deployment_broker`) and which final bars
(`deployment_bars(dep, k_from, k_to) -> BarSet`, bar ``k`` opening at
``feed_anchor_ns + k * bar_seconds``).

* **paper** — the `PaperBroker` saved with the deployment, and the synthetic walk of
  `deployments.synthetic_bars`: bars still in the saved history window are returned as the
  deployment saw them, later ones continue the walk from the newest saved close, earlier ones
  are regenerated from ``s0`` at ``-warm_bars`` (exact unless a resume skipped more than
  `lookback` bars; about 0.2 ms a bar).
* **ccxt** (Binance spot, its testnet, or an allowed base URL) — `CcxtBroker` built from the
  decrypted credentials and the account options, and the exchange's closed candles
  (`fetch_ohlcv`). The exchange is the truth: nothing of the account is saved between steps.
* **ib**, **fix** — refused with a 422 naming what is missing (see `UNSUPPORTED`).

Secrets stay inside this module: they are decrypted to build a client and never put into an
error, a log line or an event (`scrub` removes them from exchange messages).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from nexow_site.errors import ApplicationError, Conflict
from trading.engine.types import BarSet
from trading.feeds.base import Bar, to_barset
from trading.feeds.symbols import SymbolError, normalise_symbol
from trading.models import BrokerAccount, BrokerKind

if TYPE_CHECKING:
    import ccxt

    from trading.brokers.base import BrokerAdapter
    from trading.live_engine import DeploymentState
    from trading.models import Deployment

NS = 10**9
SUPPORTED_EXCHANGES = ("binance",)
OHLCV_PAGE = 500  # candles per fetch_ohlcv request (Binance allows up to 1000)
# What a FIX or IB deployment would need and the platform does not have yet: the step runs in
# short-lived tasks, and both venues keep orders, fills and sequence numbers in a session.
UNSUPPORTED = {
    BrokerKind.FIX: "FIX accounts cannot run deployments yet: the step-per-bar worker needs a "
                    "FIX session that outlives a task (a persistent message store and sequence "
                    "numbers, executions replayed after a reconnect) and a bar source for the "
                    "account; neither exists on the platform.",
    BrokerKind.IB: "Interactive Brokers accounts cannot run deployments yet: the step-per-bar "
                   "worker needs a long-lived ib_async connection to TWS or IB Gateway (order "
                   "and execution state live in that session) and a bar source for the "
                   "account; neither exists on the platform.",
}


@dataclass(frozen=True, slots=True)
class CcxtOptions:
    """The non-secret settings of a ccxt account (`BrokerAccount.options`)."""

    exchange: str = "binance"
    testnet: bool = False
    base_url: str | None = None
    # The account belongs to this deployment alone: reconciliation then takes the exchange's
    # holdings as the deployment's positions. Off by default, because adopting the holdings of
    # a shared account would let a strategy sell coins it never bought.
    dedicated: bool = False


def _unprocessable(message: str, fields: dict[str, list[str]] | None = None) -> ApplicationError:
    return ApplicationError(message, code="broker_unsupported", status_code=422,
                            fields=fields or {})


def ccxt_options(account: BrokerAccount) -> CcxtOptions:
    """The account's options checked (a 422 names each bad one)."""
    raw = dict(account.options or {})
    errors: dict[str, list[str]] = {}
    exchange = str(raw.get("exchange", "binance")).strip().lower()
    if exchange not in SUPPORTED_EXCHANGES:
        errors["options.exchange"] = [f"One of: {', '.join(SUPPORTED_EXCHANGES)}."]
    flags = {}
    for name in ("testnet", "sandbox", "dedicated"):
        value = raw.get(name, False)
        if not isinstance(value, bool):
            errors[f"options.{name}"] = ["true or false."]
        flags[name] = bool(value)
    base_url = raw.get("base_url")
    if base_url is not None:
        base_url = str(base_url).rstrip("/")
        allowed = [str(u).rstrip("/") for u in getattr(settings, "NEXOW_CCXT_BASE_URLS", ())]
        # A tenant-chosen URL would make the worker send signed requests anywhere (internal
        # services included): only URLs the operator listed are accepted.
        if base_url not in allowed:
            errors["options.base_url"] = ["Not an allowed exchange URL (NEXOW_CCXT_BASE_URLS)."]
    testnet = flags["testnet"] or flags["sandbox"]
    if account.mode == "paper" and not testnet:
        errors["options.testnet"] = ["A ccxt account in paper mode trades on the testnet: "
                                     "set testnet to true."]
    if errors:
        raise _unprocessable("The broker account's options cannot run a deployment.", errors)
    return CcxtOptions(exchange=exchange, testnet=testnet, base_url=base_url,
                       dedicated=flags["dedicated"])


def _credentials(account: BrokerAccount) -> tuple[str, str]:
    from trading.crypto import CredentialsUnreadable, decrypt_credentials

    try:
        creds = decrypt_credentials(account.credentials_encrypted)
    except CredentialsUnreadable:
        raise _unprocessable("The broker account's credentials do not decrypt with the "
                             "configured key; enter them again.") from None
    api_key = str(creds.get("api_key") or creds.get("apiKey") or "")
    secret = str(creds.get("secret") or "")
    if not api_key or not secret:
        raise _unprocessable("The broker account needs credentials with api_key and secret.",
                             {"credentials": ["api_key and secret are required."]})
    return api_key, secret


def check_deployable(account: BrokerAccount, *, symbols: list[str],
                     bar_seconds: int) -> list[str]:
    """Refuse (422) an account that cannot run a deployment of these symbols and bar length;
    the symbols as the venue spells them."""
    if account.kind == BrokerKind.PAPER:
        return list(symbols)
    if account.kind in UNSUPPORTED:
        raise _unprocessable(UNSUPPORTED[account.kind])
    if account.kind != BrokerKind.CCXT:
        raise _unprocessable(f"Broker kind {account.kind!r} cannot run deployments.")
    from trading.feeds.ccxt_feed import TIMEFRAMES

    ccxt_options(account)
    _credentials(account)
    errors: dict[str, list[str]] = {}
    if bar_seconds not in TIMEFRAMES:
        errors["config.bar_seconds"] = [
            f"One of the exchange's candle lengths: {', '.join(map(str, sorted(TIMEFRAMES)))}."]
    out = []
    for s in symbols:
        try:
            out.append(normalise_symbol(s))
        except SymbolError:
            errors["symbols"] = [f"{s!r} is not a BASE/QUOTE pair."]
    if len(set(out)) != len(out):
        errors["symbols"] = ["The same pair is given twice."]
    if errors:
        raise ApplicationError("The deployment does not fit the exchange.", fields=errors)
    return out


# --- clients --------------------------------------------------------------------------------------

_CLIENTS: OrderedDict[str, Any] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 64


def _client(account: BrokerAccount, *, signed: bool) -> ccxt.Exchange:
    """A ccxt client for the account, kept per process: a client caches the exchange's
    markets, which are otherwise downloaded again at every step."""
    from trading.brokers.ccxt_broker import binance_exchange

    opts = ccxt_options(account)
    key = hashlib.sha256(json.dumps(
        [account.pk, signed, account.credentials_encrypted if signed else "",
         [opts.exchange, opts.testnet, opts.base_url]]).encode()).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            _CLIENTS.move_to_end(key)
            return client
    api_key, secret = _credentials(account) if signed else ("", "")
    client = binance_exchange(api_key, secret, testnet=opts.testnet, base_url=opts.base_url)
    with _CLIENTS_LOCK:
        _CLIENTS[key] = client
        while len(_CLIENTS) > _MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
    return client


def scrub(text: str, account: BrokerAccount) -> str:
    """`text` without any credential value of the account (exchange errors quote requests)."""
    from trading.crypto import CredentialsUnreadable, decrypt_credentials

    try:
        values = [str(v) for v in decrypt_credentials(account.credentials_encrypted).values()]
    except CredentialsUnreadable:
        return text
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "••••")
    return text


def is_live(dep: Deployment) -> bool:
    """The account is at a real venue: the venue, not a saved blob, holds its truth."""
    return dep.broker_account.kind != BrokerKind.PAPER


def deployment_broker(dep: Deployment) -> BrokerAdapter:
    """The broker adapter of a live account (paper accounts are built by `deployments`)."""
    from trading.brokers.ccxt_broker import CcxtBroker

    account = dep.broker_account
    check_deployable(account, symbols=list(dep.symbols),
                     bar_seconds=int((dep.config or {}).get("bar_seconds", 60)))
    return CcxtBroker(_client(account, signed=True), dep.symbols,
                      order_ids=_order_ids(account))


_ORDER_IDS: OrderedDict[int, dict[str, str]] = OrderedDict()
_MAX_ORDER_IDS = 100_000  # per account: forgotten ids are looked up again, nothing is lost


def _order_ids(account: BrokerAccount) -> dict[str, str]:
    """The account's exchange order id -> client order id map, kept per process like its
    client, so a trade of a shared account is resolved to its order once, not at every step."""
    with _CLIENTS_LOCK:
        ids = _ORDER_IDS.get(account.pk)
        if ids is None or len(ids) > _MAX_ORDER_IDS:
            ids = _ORDER_IDS[account.pk] = {}
        _ORDER_IDS.move_to_end(account.pk)
        while len(_ORDER_IDS) > _MAX_CLIENTS:
            _ORDER_IDS.popitem(last=False)
        return ids


def account_is_dedicated(dep: Deployment) -> bool:
    """Positions are taken from the exchange only when the account is marked dedicated and
    no other active deployment trades on it."""
    from trading.models import Deployment, DeploymentStatus

    if not ccxt_options(dep.broker_account).dedicated:
        return False
    return not (Deployment.objects.filter(broker_account_id=dep.broker_account_id)
                .exclude(pk=dep.pk)
                .exclude(status__in=(DeploymentStatus.STOPPED, DeploymentStatus.PENDING))
                .exists())


# --- bars -----------------------------------------------------------------------------------------

def deployment_bars(dep: Deployment, k_from: int, k_to: int, *, now_ns: int | None = None,
                    state: DeploymentState | None = None) -> BarSet:
    """The deployment's final bars ``k_from .. k_to - 1`` (fewer when the venue has not
    published them yet, or skipped an interval), for paper and live accounts alike.

    `now_ns` (default: now) decides which exchange candles have closed; `state` defaults to
    the deployment's saved one.
    """
    from trading.services import deployments as d

    if dep.feed_anchor_ns is None:
        raise Conflict("The deployment has not been started.", code="not_started")
    if state is None and dep.state:
        from trading.live_engine import DeploymentState

        state = DeploymentState.from_json(dep.state)
    if k_to <= k_from:
        return d.synthetic_bars(dep, k_from, k_from, np.zeros(len(dep.symbols)))
    if not is_live(dep):
        return _paper_bars(dep, k_from, k_to, state)
    import time

    return _exchange_bars(dep, k_from, k_to, time.time_ns() if now_ns is None else now_ns)


def _slice(bars: BarSet, lo: int, hi: int) -> BarSet:
    return BarSet(bars.timestamps[lo:hi], list(bars.symbols), bars.open[lo:hi],
                  bars.high[lo:hi], bars.low[lo:hi], bars.close[lo:hi], bars.volume[lo:hi],
                  tick_size=bars.tick_size)


def _concat(parts: list[BarSet]) -> BarSet:
    first = parts[0]
    return BarSet(np.concatenate([p.timestamps for p in parts]), list(first.symbols),
                  *(np.concatenate([getattr(p, k) for p in parts])
                    for k in ("open", "high", "low", "close", "volume")),
                  tick_size=first.tick_size)


def _paper_bars(dep: Deployment, k_from: int, k_to: int,
                state: DeploymentState | None) -> BarSet:
    from trading.services import deployments as d

    cfg = d._config(dep)
    step = int(cfg["bar_seconds"]) * NS
    s0 = np.full(len(dep.symbols), float(cfg["s0"]))
    saved = state.history() if state is not None and state.timestamps.size else None
    if saved is None:
        start = -int(cfg["warm_bars"])
        walk = d.synthetic_bars(dep, min(start, k_from), k_to, s0)
        return _slice(walk, max(0, k_from - min(start, k_from)), walk.n_bars)
    ks = (saved.timestamps - dep.feed_anchor_ns) // step
    first, last = int(ks[0]), int(ks[-1])
    parts: list[BarSet] = []
    if k_from < first:
        start = min(-int(cfg["warm_bars"]), k_from)
        walk = d.synthetic_bars(dep, start, min(first, k_to), s0)
        parts.append(_slice(walk, k_from - start, walk.n_bars))
    inside = (ks >= k_from) & (ks < k_to)
    if inside.any():
        idx = np.flatnonzero(inside)
        parts.append(_slice(saved, int(idx[0]), int(idx[-1]) + 1))
    if k_to > last + 1:
        # The walk goes on from the newest saved close, also across bars nobody saw (a long
        # pause): that is how a resume loads them, and it is O(bars asked), not O(k).
        parts.append(d.synthetic_bars(dep, max(last + 1, k_from), k_to, saved.close[-1].copy()))
    parts = [p for p in parts if p.n_bars] or [_slice(saved, 0, 0)]
    return _concat(parts)


def _exchange_bars(dep: Deployment, k_from: int, k_to: int, now_ns: int) -> BarSet:
    """Closed candles of every symbol from the exchange; timestamps where a symbol has no
    candle are left out (`to_barset`)."""
    from trading.brokers.ccxt_broker import _mapped
    from trading.feeds.ccxt_feed import TIMEFRAMES

    seconds = int((dep.config or {}).get("bar_seconds", 60))
    step = seconds * NS
    start_ns = dep.feed_anchor_ns + k_from * step
    end_ns = dep.feed_anchor_ns + k_to * step  # exclusive
    exchange = _client(dep.broker_account, signed=False)
    bars: list[Bar] = []
    for symbol in dep.symbols:
        since_ms = start_ns // 1_000_000
        while since_ms * 1_000_000 < end_ns:
            need = min(OHLCV_PAGE, -(-(end_ns - since_ms * 1_000_000) // step))
            rows = _mapped(exchange.fetch_ohlcv, symbol, TIMEFRAMES[seconds], since_ms, need)
            newest = None
            for row in rows or []:
                ts = int(row[0]) * 1_000_000
                newest = ts
                if ts < start_ns or ts >= end_ns or ts + step > now_ns:
                    continue  # outside the range, or still forming
                bars.append(Bar(symbol, ts, float(row[1]), float(row[2]), float(row[3]),
                                float(row[4]), float(row[5] or 0.0)))
            if newest is None or len(rows) < need:
                break
            since_ms = newest // 1_000_000 + seconds * 1000
    return to_barset(bars, list(dep.symbols))

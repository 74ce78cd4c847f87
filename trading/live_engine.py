"""One step of a live or paper deployment: `advance(state, new_bars, strategy, broker, checker)`.

A deployment is not an eternal loop: every new bar triggers an idempotent "advance this
deployment to time t" task, which loads the saved `DeploymentState`, calls `advance`, and saves
the returned state. For each bar newer than the state's last one, in this order (the order of
the backtest's event loop, so a paper deployment takes the same decisions as `run_backtest`):

1. the broker sees the finished bar (`on_bar`; the paper broker fills working orders on it
   with the engine's rules) and the deployment collects its new fills, which alone move its
   cash and positions, and refreshes the status of its working orders;
2. the portfolio is marked at the bar's close and the risk checker's `on_bar` may halt trading;
3. the strategy's signals are computed on the saved history window and the last bar's
   decisions become orders — flat and an entry signal: an entry (sized from the latest close,
   since a broker needs a quantity when the order is sent); long and an exit signal (short and a
   short exit): cancel the symbol's working orders and close — each passing the risk check
   through the order manager before it is sent.

Advancing again to a time already reached does nothing. Client order ids are derived from the
deployment id, the decision timestamp and the leg, so a step re-run after a crash (the broker
accepted, the state was never saved) regenerates the same ids and the broker adapters, being
idempotent on them, return the existing orders instead of sending new ones.

The state is plain JSON (`DeploymentState.to_json`), including the strategy's parameters and,
for strategies with `export_state()` (the Random Forest), their fitted models.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading.brokers.base import Bar, BrokerAdapter, BrokerError, BrokerFill
from trading.engine.backtest import BacktestConfig
from trading.engine.hooks import OrderIntent, PortfolioSnapshot, PreTradeCheck
from trading.engine.sizing import Sizing
from trading.engine.types import BarSet, Signals, VectorStrategy
from trading.oms import ManagedOrder, OrderManager, deployment_prefix, reconcile

NS_PER_DAY = 86_400 * 10**9
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """How a deployment sizes and places its orders (the live twin of `BacktestConfig`)."""

    cash: float = 100_000.0
    sizing: Sizing = field(default_factory=Sizing)
    fee_rate: float = 0.0  # taker fee rate the all-cash sizing leaves room for
    whole_units: bool = True
    allow_short: bool = False
    entry_tif: str = "GTC"
    # Bracket exits of signal entries as fractions of the entry's first fill price; they
    # override the strategy's `Signals.take_profit` / `stop_loss`, as in `BacktestConfig`.
    take_profit: float | None = None
    stop_loss: float | None = None
    lookback: int = 500  # bars of history kept for the strategy
    # The window is trimmed this many bars at a time. A strategy that retrains on a schedule
    # of bar positions (the Random Forest every `retrain_every` bars) keeps its schedule and
    # its cached models when this is a multiple of that period.
    trim_step: int = 1

    def __post_init__(self) -> None:
        if self.lookback < 2 or self.trim_step < 1 or self.trim_step >= self.lookback:
            raise ValueError("need lookback >= 2 and 1 <= trim_step < lookback")
        for name in ("take_profit", "stop_loss"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive fraction of the entry price")

    @classmethod
    def from_backtest(cls, config: BacktestConfig, *, lookback: int = 500) -> LiveConfig:
        return cls(cash=config.cash, sizing=config.sizing, fee_rate=config.commission.rate,
                   whole_units=config.whole_units, allow_short=config.allow_short,
                   entry_tif=config.entry_tif, take_profit=config.take_profit,
                   stop_loss=config.stop_loss, lookback=lookback)

    def to_dict(self) -> dict[str, Any]:
        return {"cash": self.cash, "sizing": self.sizing.describe(), "fee_rate": self.fee_rate,
                "whole_units": self.whole_units, "allow_short": self.allow_short,
                "entry_tif": self.entry_tif, "take_profit": self.take_profit,
                "stop_loss": self.stop_loss, "lookback": self.lookback,
                "trim_step": self.trim_step}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveConfig:
        return cls(**{**data, "sizing": Sizing(**data["sizing"])})


@dataclass(slots=True)
class Action:
    """Something a step did, for the deployment's log and live events."""

    kind: str  # order | refused | fill | cancel | halt | broker_error | skipped
    timestamp: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DeploymentState:
    """Everything a deployment needs between two steps (JSON through `to_json`)."""

    deployment_id: str
    symbols: list[str]
    config: LiveConfig
    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[str, ManagedOrder] = field(default_factory=dict)
    last_timestamp: int | None = None
    timestamps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ohlcv: np.ndarray | None = None  # float64 (5, n, s): open, high, low, close, volume
    tick_size: float | None = None
    fill_cursor: int | None = None  # timestamp of the newest fill taken into account
    seen_fills: list[str] = field(default_factory=list)  # fill ids at the cursor timestamp
    strategy: dict[str, Any] = field(default_factory=dict)  # name and parameters
    model_state: dict[str, Any] | None = None  # the strategy's export_state(), if it has one
    risk_state: dict[str, Any] | None = None  # the rulebook's state(), if it has one
    last_target: dict[str, float] = field(default_factory=dict)
    other_fees: dict[str, float] = field(default_factory=dict)  # fees paid in other assets
    # Bracket exits waiting on or guarding an entry, per symbol: the entry's client order id,
    # the take-profit and stop-loss fractions and the entry's first fill price once known.
    brackets: dict[str, dict[str, Any]] = field(default_factory=dict)
    day: int = -1
    day_start_equity: float = 0.0
    peak_equity: float = -math.inf
    equity: float = 0.0
    halted: str | None = None
    steps: int = 0

    @classmethod
    def new(cls, deployment_id: str | int, symbols: list[str], config: LiveConfig | None = None,
            *, strategy: Any = None) -> DeploymentState:
        config = config or LiveConfig()
        state = cls(deployment_id=str(deployment_id), symbols=list(symbols), config=config,
                    cash=config.cash, equity=config.cash)
        if strategy is not None:
            state.strategy = {"name": getattr(strategy, "name", type(strategy).__name__),
                              "params": dict(getattr(strategy, "values", {}))}
        state.ohlcv = np.empty((5, 0, len(symbols)))
        return state

    # -- history ------------------------------------------------------------------------------
    def history(self) -> BarSet:
        o = self.ohlcv if self.ohlcv is not None else np.empty((5, 0, len(self.symbols)))
        return BarSet(self.timestamps, list(self.symbols), o[0], o[1], o[2], o[3], o[4],
                      tick_size=self.tick_size)

    def _append(self, ts: int, rows: np.ndarray) -> None:
        o = self.ohlcv if self.ohlcv is not None else np.empty((5, 0, len(self.symbols)))
        over = self.timestamps.shape[0] + 1 - self.config.lookback
        drop = 0 if over <= 0 else -(-over // self.config.trim_step) * self.config.trim_step
        self.timestamps = np.append(self.timestamps[drop:], ts)
        self.ohlcv = np.concatenate([o[:, drop:], rows[:, None, :]], axis=1)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        o = self.ohlcv if self.ohlcv is not None else np.empty((5, 0, len(self.symbols)))
        return {
            "version": STATE_VERSION, "deployment_id": self.deployment_id,
            "symbols": self.symbols, "config": self.config.to_dict(), "cash": self.cash,
            "positions": self.positions,
            "orders": [o.to_dict() for o in self.orders.values()],
            "last_timestamp": self.last_timestamp,
            # the window as base64 of the raw little-endian arrays: exact and ten times faster
            # to write and read than a list of floats, which matters at one step per bar
            "history": {"n": int(self.timestamps.shape[0]),
                        "timestamps": _b64(self.timestamps.astype("<i8")),
                        "ohlcv": _b64(o.astype("<f8")), "tick_size": self.tick_size},
            "fill_cursor": self.fill_cursor, "seen_fills": self.seen_fills,
            "strategy": self.strategy, "model_state": self.model_state,
            "risk_state": self.risk_state, "last_target": self.last_target,
            "other_fees": self.other_fees, "brackets": self.brackets, "day": self.day,
            "day_start_equity": self.day_start_equity,
            "peak_equity": None if self.peak_equity == -math.inf else self.peak_equity,
            "equity": self.equity, "halted": self.halted, "steps": self.steps,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeploymentState:
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported deployment state version {d.get('version')!r}")
        s = len(d["symbols"])
        hist = d["history"]
        n = int(hist["n"])
        ohlcv = _unb64(hist["ohlcv"], "<f8").reshape(5, n, s).astype(np.float64)
        return cls(
            deployment_id=d["deployment_id"], symbols=list(d["symbols"]),
            config=LiveConfig.from_dict(d["config"]), cash=float(d["cash"]),
            positions={k: float(v) for k, v in d["positions"].items()},
            orders=OrderManager.orders_from_state(d),
            last_timestamp=d["last_timestamp"],
            timestamps=_unb64(hist["timestamps"], "<i8").astype(np.int64), ohlcv=ohlcv,
            tick_size=hist["tick_size"], fill_cursor=d["fill_cursor"],
            seen_fills=list(d["seen_fills"]), strategy=dict(d["strategy"]),
            model_state=d["model_state"], risk_state=d["risk_state"],
            last_target={k: float(v) for k, v in d["last_target"].items()},
            other_fees={k: float(v) for k, v in d["other_fees"].items()},
            brackets={k: dict(v) for k, v in d.get("brackets", {}).items()}, day=int(d["day"]),
            day_start_equity=float(d["day_start_equity"]),
            peak_equity=-math.inf if d["peak_equity"] is None else float(d["peak_equity"]),
            equity=float(d["equity"]), halted=d["halted"], steps=int(d["steps"]))

    @classmethod
    def from_json(cls, text: str) -> DeploymentState:
        return cls.from_dict(json.loads(text))

    def copy(self) -> DeploymentState:
        """An independent copy (cheaper than a JSON round trip: steps copy the state)."""
        return DeploymentState(
            deployment_id=self.deployment_id, symbols=list(self.symbols), config=self.config,
            cash=self.cash, positions=dict(self.positions),
            orders={k: o.copy() for k, o in self.orders.items()},
            last_timestamp=self.last_timestamp, timestamps=self.timestamps.copy(),
            ohlcv=None if self.ohlcv is None else self.ohlcv.copy(), tick_size=self.tick_size,
            fill_cursor=self.fill_cursor, seen_fills=list(self.seen_fills),
            strategy=json.loads(json.dumps(self.strategy)),
            model_state=self.model_state, risk_state=self.risk_state,
            last_target=dict(self.last_target), other_fees=dict(self.other_fees),
            brackets={k: dict(v) for k, v in self.brackets.items()}, day=self.day,
            day_start_equity=self.day_start_equity, peak_equity=self.peak_equity,
            equity=self.equity, halted=self.halted, steps=self.steps)


def reconcile_deployment(state: DeploymentState, broker: BrokerAdapter, *,
                         account_is_dedicated: bool = True) -> tuple[DeploymentState, list[str]]:
    """After a restart: align the deployment's orders (and, when the account belongs to this
    deployment alone, its positions) with the broker. The broker wins; the differences come
    back as log lines. Orders of other deployments sharing the account are left alone."""
    new = state.copy()
    prefix = deployment_prefix(new.deployment_id)
    mine = [o for o in broker.open_orders() if o.client_order_id.startswith(prefix)]
    remote_positions = broker.positions() if account_is_dedicated else new.positions
    result = reconcile(new.orders, new.positions, mine,
                       {s: q for s, q in remote_positions.items() if s in new.symbols},
                       lookup=broker.get_order)
    new.orders, new.positions = result.orders, result.positions
    return new, result.log


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def warm_up(state: DeploymentState, bars: BarSet) -> DeploymentState:
    """Load history (e.g. the last `lookback` stored bars) without trading on it."""
    new = state.copy()
    rows = _aligned(bars, new.symbols)
    keep = bars.timestamps > (new.last_timestamp if new.last_timestamp is not None
                              else np.iinfo(np.int64).min)
    if keep.any():
        lookback = new.config.lookback
        o = new.ohlcv if new.ohlcv is not None else np.empty((5, 0, len(new.symbols)))
        ts = np.concatenate([new.timestamps, bars.timestamps[keep]])
        over = ts.shape[0] - lookback
        step = new.config.trim_step
        drop = 0 if over <= 0 else -(-over // step) * step
        new.timestamps = ts[drop:]
        new.ohlcv = np.concatenate([o, rows[:, keep, :]], axis=1)[:, drop:]
        new.last_timestamp = int(new.timestamps[-1])
    if new.tick_size is None:
        new.tick_size = bars.tick_size
    return new


def _aligned(bars: BarSet, symbols: list[str]) -> np.ndarray:
    try:
        idx = [bars.symbols.index(s) for s in symbols]
    except ValueError:
        missing = sorted(set(symbols) - set(bars.symbols))
        raise ValueError(f"new bars lack the deployment's symbols {missing}") from None
    return np.stack([getattr(bars, k)[:, idx] for k in ("open", "high", "low", "close",
                                                         "volume")])


def advance(state: DeploymentState, new_bars: BarSet, strategy: VectorStrategy,
            broker: BrokerAdapter, checker: PreTradeCheck | None = None
            ) -> tuple[DeploymentState, list[Action]]:
    """Advance the deployment through every bar of `new_bars` newer than its last one.

    Returns the new state (the input is not modified) and what was done. Broker failures
    while reading fills or orders propagate (the task retries the whole step, which is safe);
    failures while sending are recorded on the order.
    """
    if not isinstance(strategy, VectorStrategy):
        raise TypeError("live deployments run VectorStrategy strategies")
    new = state.copy()
    actions: list[Action] = []
    if new_bars.n_bars == 0:
        return new, actions
    rows = _aligned(new_bars, new.symbols)
    if new.tick_size is None:
        new.tick_size = new_bars.tick_size
    if new.model_state is not None and hasattr(strategy, "import_state") and not getattr(
            strategy, "n_cached_models", 0):
        strategy.import_state(new.model_state)
    if getattr(strategy, "live_bars", 0) is None:
        strategy.live_bars = 1  # type: ignore[attr-defined]  # fit only what the last bar needs
    if new.risk_state is not None and hasattr(checker, "restore"):
        checker.restore(new.risk_state)  # type: ignore[union-attr]
    oms = OrderManager(new.deployment_id, broker, checker, new.orders)
    stepped = False
    for t in range(new_bars.n_bars):
        ts = int(new_bars.timestamps[t])
        if new.last_timestamp is not None and ts <= new.last_timestamp:
            continue
        stepped = True
        _step(new, oms, strategy, broker, checker, ts, rows[:, t, :], actions)
    if stepped:
        new.orders = _pruned(oms.orders, new.last_timestamp)
        if hasattr(strategy, "export_state"):
            new.model_state = strategy.export_state()
        if hasattr(checker, "state"):
            new.risk_state = checker.state()  # type: ignore[union-attr]
    return new, actions


KEEP_FINISHED = 20  # finished orders kept in the state (the platform stores every order)


def _pruned(orders: dict[str, ManagedOrder], latest: int | None) -> dict[str, ManagedOrder]:
    # Only orders whose fills are all in and that were not decided at the latest bar go: an
    # order the broker reported filled at once gets its fills at the next step's sync.
    finished = [k for k, o in orders.items()
                if not o.is_open and o.decision_timestamp != latest
                and (o.status != "filled" or o.filled_quantity >= o.quantity * (1 - 1e-9))]
    if len(finished) <= KEEP_FINISHED:
        return orders
    drop = set(finished[: len(finished) - KEEP_FINISHED])  # insertion order = oldest first
    return {k: o for k, o in orders.items() if k not in drop}


def _step(st: DeploymentState, oms: OrderManager, strategy: VectorStrategy,
          broker: BrokerAdapter, checker: PreTradeCheck | None, ts: int, bar: np.ndarray,
          actions: list[Action]) -> None:
    symbols = st.symbols
    # 1. the broker sees the bar; fills and order statuses come back
    on_bars = getattr(broker, "on_bars", None)
    bars = [Bar(sym, ts, *(float(bar[k, j]) for k in range(5))) for j, sym in enumerate(symbols)]
    if on_bars is not None:
        on_bars(bars)
    else:
        for b in bars:
            broker.on_bar(b)
    _sync(st, oms, broker, ts, actions)
    _brackets(st, oms, ts, actions)
    st._append(ts, bar)
    st.last_timestamp = ts
    st.steps += 1
    # 2. mark to market; the risk checker may halt
    close = bar[3]
    eq = st.cash
    for j, sym in enumerate(symbols):
        p = st.positions.get(sym, 0.0)
        if p != 0.0:
            eq += p * close[j]
    st.equity = eq
    day = ts // NS_PER_DAY
    if day != st.day:
        st.day, st.day_start_equity = day, eq
    st.peak_equity = max(st.peak_equity, eq)
    snapshot = None
    if checker is not None:
        snapshot = PortfolioSnapshot(
            timestamp=ts, cash=st.cash, equity=eq,
            positions={s: p for s, p in st.positions.items() if p != 0.0},
            prices={sym: float(close[j]) for j, sym in enumerate(symbols)},
            day_start_equity=st.day_start_equity, peak_equity=st.peak_equity)
        if st.halted is None:
            res = checker.on_bar(snapshot)
            if res is not None and res.halt:
                st.halted = f"{res.rule}: {res.reason}"
                actions.append(Action("halt", ts, {"rule": res.rule, "reason": res.reason}))
                st.brackets.clear()
                for order in oms.open_orders():
                    _cancel(oms, order, ts, actions)
    if st.halted is not None:
        return
    # 3. decisions at this bar's close
    sig = strategy.signals(st.history())
    _decide(st, oms, sig, ts, close, eq, snapshot, actions)


def _sync(st: DeploymentState, oms: OrderManager, broker: BrokerAdapter, ts: int,
          actions: list[Action]) -> None:
    if not oms.orders:
        return
    fills = broker.fills(st.fill_cursor)
    seen = set(st.seen_fills)
    fresh = [f for f in fills if f.fill_id not in seen]
    mine = [f for f in fresh if f.client_order_id in oms.orders]
    for f in sorted(mine, key=lambda f: f.timestamp):
        _apply_fill(st, oms, f, actions)
    if fresh:
        # The cursor passes every trade the venue listed, the account's other trading too
        # (a shared account): they are not read again at every step, and a busy account
        # cannot push the deployment's own fills beyond the pages a step reads.
        newest = max(f.timestamp for f in fresh)
        if st.fill_cursor is None or newest > st.fill_cursor:
            st.fill_cursor = newest
            st.seen_fills = []
        st.seen_fills.extend(f.fill_id for f in fresh if f.timestamp == st.fill_cursor)
    for order in oms.settle_unsent(resend=False):
        actions.append(Action("order", ts, _order_data(order)))
    working = [o for o in oms.orders.values() if o.status in ("accepted", "partially_filled")]
    if working:
        still_open = {o.client_order_id for o in broker.open_orders()}
        for order in working:
            if order.client_order_id in still_open:
                continue
            answer = broker.get_order(order.client_order_id)
            if answer is not None and not answer.is_open:
                oms.apply_order(answer)
                if order.status == "cancelled":
                    actions.append(Action("cancel", ts, _order_data(order)))


def _apply_fill(st: DeploymentState, oms: OrderManager, f: BrokerFill,
                actions: list[Action]) -> None:
    base, _, quote = f.symbol.partition("/")
    notional = f.quantity * f.price
    # A fee is paid in the quote currency (cash), in the base asset (Binance takes a buy's
    # fee from the coins received: the position shrinks), or in a third asset such as BNB,
    # which is kept apart rather than mixed into cash.
    # (A symbol without a quote part, like the engine's "SYN", is priced in the account
    # currency: its fees are cash.)
    cash_fee = f.fee if not quote or f.fee_currency in ("", quote) else 0.0
    base_fee = f.fee if quote and f.fee_currency == base else 0.0
    if f.fee and not cash_fee and not base_fee:
        st.other_fees[f.fee_currency] = st.other_fees.get(f.fee_currency, 0.0) + f.fee
    if f.side == "buy":
        st.cash = st.cash - (notional + cash_fee)
    else:
        st.cash = st.cash + (notional - cash_fee)
    p = st.positions.get(f.symbol, 0.0) + f.signed_quantity - base_fee
    if abs(p) < 1e-12 * f.quantity:
        p = 0.0
    if p == 0.0:
        st.positions.pop(f.symbol, None)
    else:
        st.positions[f.symbol] = p
    oms.apply_fill(f)
    actions.append(Action("fill", f.timestamp, f.to_dict()))


def _order_data(order: ManagedOrder) -> dict[str, Any]:
    return {"client_order_id": order.client_order_id, "symbol": order.symbol,
            "side": order.side, "quantity": order.quantity, "order_type": order.order_type,
            "limit_price": order.limit_price, "stop_price": order.stop_price,
            "status": order.status, "reason": order.reason, "leg": order.leg}


def _cancel(oms: OrderManager, order: ManagedOrder, ts: int, actions: list[Action]) -> None:
    try:
        oms.cancel(order.client_order_id)
    except BrokerError as exc:
        actions.append(Action("broker_error", ts, {"client_order_id": order.client_order_id,
                                                   "error": str(exc)}))
        return
    actions.append(Action("cancel", ts, _order_data(order)))


BRACKET_LEGS = (":tp", ":sl")


def _brackets(st: DeploymentState, oms: OrderManager, ts: int, actions: list[Action]) -> None:
    """Place, resize or cancel the bracket exits after this bar's fills (the backtest's rule).

    Once an entry with a take-profit or a stop-loss has filled, a limit order (take profit)
    and then a stop order (stop loss) close the position, priced from the entry's first fill
    and sized to the position. They work from the next bar. They are one-cancels-other: when
    one fills, or anything else closes the position, the other is cancelled here. The legs
    reduce risk and the backtest does not check its bracket children either, so they are
    sent without the pre-trade check.
    """
    if st.halted is not None:
        return
    for sym, spec in list(st.brackets.items()):
        p = st.positions.get(sym, 0.0)
        legs = [o for o in oms.open_orders(sym) if o.leg.endswith(BRACKET_LEGS)]
        entry = oms.orders.get(spec["entry"])
        if p == 0.0:
            for order in legs:  # a leg filled, or the position was closed another way
                _cancel(oms, order, ts, actions)
            if spec["price"] is not None or entry is None or not entry.is_open:
                del st.brackets[sym]
            continue
        if spec["price"] is None:
            if entry is None or not entry.filled_quantity or entry.average_price is None:
                continue
            spec["price"] = entry.average_price  # the first fill's price (set once)
        if _has_leg(oms, sym, "exit"):
            continue
        qty = abs(p)
        if st.config.whole_units:
            qty = float(math.floor(qty + 1e-9))
        if legs and all(abs((o.quantity - o.filled_quantity) - qty) <= 1e-9 * qty
                        for o in legs):
            continue
        for order in legs:  # the entry filled further: the legs follow the position
            _cancel(oms, order, ts, actions)
        if qty <= 0:
            continue
        side = 1.0 if p > 0 else -1.0
        px = float(spec["price"])
        closing = "sell" if p > 0 else "buy"
        if spec.get("stop_loss") is not None and "stop" not in oms.broker.order_types:
            # The venue takes no stop orders: the position would run unprotected. Halt (the
            # halt cancels the working orders and alerts) rather than trade on without it.
            reason = (f"{oms.broker.name} takes no stop orders: the stop-loss of {sym} "
                      "cannot be placed")
            st.halted = f"bracket: {reason}"
            actions.append(Action("halt", ts, {"rule": "bracket", "reason": reason}))
            st.brackets.clear()
            for order in oms.open_orders():
                _cancel(oms, order, ts, actions)
            return
        if spec.get("take_profit") is not None:
            _place_leg(oms, sym, closing, qty, ts, "tp", actions,
                       limit=px * (1.0 + side * float(spec["take_profit"])))
        if spec.get("stop_loss") is not None and float(spec["stop_loss"]) * side < 1.0:
            _place_leg(oms, sym, closing, qty, ts, "sl", actions,
                       stop=px * (1.0 - side * float(spec["stop_loss"])))


def _place_leg(oms: OrderManager, sym: str, side: str, qty: float, ts: int, kind: str,
               actions: list[Action], *, limit: float | None = None,
               stop: float | None = None) -> None:
    intent = OrderIntent(symbol=sym, side=1 if side == "buy" else -1, quantity=qty,
                         price=float(limit if limit is not None else stop), timestamp=ts,
                         order_type="limit" if limit is not None else "stop",
                         strategy="bracket")
    order = oms.submit(intent, None, leg=f"{sym}:{kind}", limit_price=limit, stop_price=stop)
    actions.append(Action("order", ts, _order_data(order)))


def _has_leg(oms: OrderManager, symbol: str, kind: str) -> bool:
    return any(o.leg.endswith(f":{kind}") for o in oms.open_orders(symbol))


def _row(a: np.ndarray | None, j: int) -> Any:
    if a is None:
        return None
    a = np.asarray(a)
    return a[-1] if a.ndim == 1 else a[-1, j]


def _size(st: DeploymentState, cash: float, ref: float, eq: float) -> float:
    cfg = st.config
    mode, val = cfg.sizing.mode, cfg.sizing.value
    if mode == "all-cash":
        q = (cash / (1.0 + cfg.fee_rate)) / ref
    elif mode == "fixed-quantity":
        q = val
    elif mode == "fixed-notional":
        q = val / ref
    else:  # percent-equity
        q = (val * eq) / ref
    if not q > 0 or not math.isfinite(q):
        return 0.0
    return float(math.floor(q)) if cfg.whole_units else float(q)


def _decide(st: DeploymentState, oms: OrderManager, sig: Signals, ts: int, close: np.ndarray,
            eq: float, snapshot: PortfolioSnapshot | None, actions: list[Action]) -> None:
    cfg = st.config
    name = st.strategy.get("name", "")
    rate = cfg.fee_rate
    # Entries are sized on the cash projected after the orders placed before them at this
    # bar (in symbol order), as the backtest sizes each order at its fill after
    # the earlier ones filled; exact when the next open equals this close.
    cash = st.cash

    tp = cfg.take_profit if cfg.take_profit is not None else sig.take_profit
    sl = cfg.stop_loss if cfg.stop_loss is not None else sig.stop_loss

    def place(sym: str, side: int, qty: float, kind: str, *, order_type: str = "market",
              limit: float | None = None, stop: float | None = None, ref: float,
              tif: str = "GTC") -> ManagedOrder:
        intent = OrderIntent(symbol=sym, side=side, quantity=qty, price=ref, timestamp=ts,
                             order_type=order_type, strategy=name)
        order = oms.submit(intent, snapshot, leg=f"{sym}:{kind}", limit_price=limit,
                           stop_price=stop, tif=tif)
        kind_ = "refused" if order.reason.startswith("risk ") else "order"
        actions.append(Action(kind_, ts, _order_data(order)))
        return order

    for j, sym in enumerate(st.symbols):
        px = float(close[j])
        p = st.positions.get(sym, 0.0)
        w = _row(sig.target_weight, j)
        if w is not None:
            w = float(w)
            if w == w and w != st.last_target.get(sym):
                st.last_target[sym] = w
                for order in oms.open_orders(sym):
                    _cancel(oms, order, ts, actions)
                if cfg.whole_units:
                    delta = math.floor(abs(w * eq) / px) * (1.0 if w >= 0 else -1.0) - p
                else:
                    delta = (w * eq) / px - p
                if delta != 0.0:
                    place(sym, 1 if delta > 0 else -1, abs(delta), "target", ref=px)
            continue
        ex = bool(_row(sig.exits, j))
        sex = bool(_row(sig.short_exits, j)) if sig.short_exits is not None else False
        if (p > 0 and ex) or (p < 0 and sex):
            if not _has_leg(oms, sym, "exit"):
                st.brackets.pop(sym, None)  # the exit replaces the bracket legs it cancels
                for order in oms.open_orders(sym):
                    _cancel(oms, order, ts, actions)
                place(sym, -1 if p > 0 else 1, abs(p), "exit", ref=px)
                notional = abs(p) * px
                cash += (notional - notional * rate) if p > 0 else -(notional + notional * rate)
                continue
        if p != 0 or _has_leg(oms, sym, "entry"):
            continue
        side = 0
        if bool(_row(sig.entries, j)) and not ex:
            side = 1
        elif sig.short_entries is not None and bool(_row(sig.short_entries, j)) and not sex:
            if not cfg.allow_short:
                raise ValueError(f"{name} places short orders; deploy it with allow_short=True")
            side = -1
        if side == 0:
            continue
        lim = _row(sig.limit_price, j)
        stp = _row(sig.stop_price, j)
        lim = None if lim is None or not np.isfinite(lim) else float(lim)
        stp = None if stp is None or not np.isfinite(stp) else float(stp)
        order_type = ("stop_limit" if lim is not None and stp is not None else
                      "limit" if lim is not None else "stop" if stp is not None else "market")
        ref = lim if lim is not None else stp if stp is not None else px
        qty = _size(st, cash, ref, eq)
        if qty <= 0:
            actions.append(Action("skipped", ts, {"symbol": sym, "reason": "entry sized to 0"}))
            continue
        entry = place(sym, side, qty, "entry", order_type=order_type, limit=lim, stop=stp,
                      ref=ref, tif=cfg.entry_tif)
        if (tp is not None or sl is not None) and entry.status not in ("rejected", "cancelled"):
            st.brackets[sym] = {"entry": entry.client_order_id, "take_profit": tp,
                                "stop_loss": sl, "price": None}
        if side > 0:
            notional = qty * ref
            cash -= notional + notional * rate

"""Running a backtest: configuration, the two drivers of the event loop, and the result.

`run_backtest(bars, strategy, config)` accepts a `VectorStrategy` (signals for all bars at
once) or an event-driven `Strategy`. A vectorised strategy without a pre-trade check runs the
whole loop compiled (core.run_signals, in chunks of 1 % of the bars so progress can be
reported). With a pre-trade check, or with an event-driven strategy, the loop is driven from
Python one bar at a time around the same compiled fill and accounting steps, so the check is
asked about every order and consulted once per bar (`PreTradeCheck.on_bar`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import core
from .costs import Commission, Slippage, cost_params
from .data import bar_seconds, iso_timestamps
from .events import Emitter, EventCallback, fill_record, iso
from .fingerprint import ENGINE_VERSION, canonical_json, clean, data_hash
from .hooks import CheckResult, OrderIntent, PortfolioSnapshot, PreTradeCheck
from .orders import (
    MARKET,
    O_ID,
    O_LIMIT,
    O_PENDING,
    O_SIDE,
    O_STOP,
    O_SYM,
    O_TYPE,
    ORDER_TYPE_NAMES,
    ORDER_TYPES,
    TAG_EXIT,
    TAG_USER,
    TIFS,
    Order,
)
from .portfolio import Trade, positions_per_bar, round_trips, traded_notional
from .sizing import SIZE_CLOSE, SIZE_QTY, Sizing
from .strategies.base import Context, Strategy
from .types import BarSet, MetricInputs, Signals, VectorStrategy


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    cash: float = 100_000.0
    commission: Commission = field(default_factory=Commission)
    slippage: Slippage = field(default_factory=Slippage)
    sizing: Sizing = field(default_factory=Sizing)
    whole_units: bool = True
    allow_short: bool = False
    participation: float = 0.0  # max fraction of a bar's volume per symbol (0 = no cap)
    calendar: str = "24/7"  # "24/7" or "exchange": annualisation of the metrics
    risk_free: float = 0.0  # annual risk-free rate for the metrics
    seed: int = 0
    entry_tif: str = "GTC"  # time in force of signal entry orders
    stop_loss: float | None = None  # bracket for signal entries (overrides Signals.stop_loss)
    take_profit: float | None = None
    flatten_on_halt: bool = False

    def __post_init__(self) -> None:
        if not self.cash > 0:
            raise ValueError("cash must be > 0")
        if not 0.0 <= self.participation <= 1.0:
            raise ValueError("participation must be between 0 and 1")
        if self.calendar not in ("24/7", "exchange"):
            raise ValueError('calendar must be "24/7" or "exchange"')
        if self.entry_tif not in TIFS:
            raise ValueError(f"entry_tif must be one of {sorted(TIFS)}")

    def describe(self) -> dict[str, Any]:
        return {
            "cash": self.cash, "commission": self.commission.describe(),
            "slippage": self.slippage.describe(), "sizing": self.sizing.describe(),
            "whole_units": self.whole_units, "allow_short": self.allow_short,
            "participation": self.participation, "calendar": self.calendar,
            "risk_free": self.risk_free, "entry_tif": self.entry_tif,
            "stop_loss": self.stop_loss, "take_profit": self.take_profit,
            "flatten_on_halt": self.flatten_on_halt,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    timestamp: int
    symbol: str
    side: int
    quantity: float
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": iso(self.timestamp), "symbol": self.symbol,
                "side": "buy" if self.side > 0 else "sell", "quantity": self.quantity,
                "rule": self.rule, "reason": self.reason}


@dataclass(slots=True)
class BacktestResult:
    timestamps: np.ndarray
    symbols: list[str]
    equity: np.ndarray
    fills: np.ndarray  # the ledger (see orders.F_*); `fill_records()` for dicts
    trades: list[Trade]
    rejections: list[Rejection]
    halted_at: int | None
    metrics: dict[str, Any]
    _fingerprint: dict[str, Any]  # without the data hash until asked (see `fingerprint`)
    cash: float
    positions: dict[str, float]
    dropped_orders: int = 0
    _bars: BarSet | None = field(default=None, repr=False)
    _hash: str = field(default="", repr=False)
    _dict: dict[str, Any] | None = field(default=None, repr=False)

    # The data hash and the result hash cost a pass over every array; they are computed on
    # first use so that runs whose caller does not need them (sweeps) do not pay for them.
    @property
    def fingerprint(self) -> dict[str, Any]:
        if "data_hash" not in self._fingerprint and self._bars is not None:
            self._fingerprint["data_hash"] = data_hash(self._bars)
        return self._fingerprint

    @property
    def result_hash(self) -> str:
        """SHA-256 over the equity curve, the fills ledger and the canonical JSON of the
        metrics, fingerprint, rejections and halt."""
        if not self._hash:
            digest = hashlib.sha256()
            digest.update(np.ascontiguousarray(self.equity).tobytes())
            digest.update(np.ascontiguousarray(self.fills).tobytes())
            digest.update(canonical_json({
                "metrics": self.metrics, "fingerprint": self.fingerprint,
                "rejections": [r.to_dict() for r in self.rejections],
                "halted_at": self.halted_at}).encode())
            self._hash = digest.hexdigest()
        return self._hash

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else 0.0

    @property
    def realised_pnl(self) -> float:
        """P&L of the closed round trips, fees included."""
        return float(sum(t.pnl for t in self.trades if not t.is_open))

    @property
    def unrealised_pnl(self) -> float:
        """P&L of the trades still open, marked at the last close."""
        return float(sum(t.pnl for t in self.trades if t.is_open))

    def fill_records(self) -> list[dict[str, Any]]:
        return [fill_record(r, self.symbols, self.timestamps) for r in self.fills]

    def trade_records(self) -> list[dict[str, Any]]:
        ts = self.timestamps
        return [
            {
                "symbol": tr.symbol,
                "side": "long" if tr.side > 0 else "short",
                "entry_time": iso(int(ts[tr.entry_bar])),
                "entry_price": tr.entry_price,
                "exit_time": None if tr.exit_bar is None else iso(int(ts[tr.exit_bar])),
                "exit_price": tr.exit_price,
                "quantity": tr.quantity,
                "pnl": tr.pnl,
                "fees": tr.fees,
            }
            for tr in self.trades
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the command line (`metrics`, `trades`, `fills`, `equity`, ...)."""
        if self._dict is None:
            body: dict[str, Any] = {
                "metrics": self.metrics,
                "trades": self.trade_records(),
                "fills": self.fill_records(),
                "equity": [list(p) for p in zip(iso_timestamps(self.timestamps),
                                                 self.equity.tolist(), strict=True)],
                "rejections": [r.to_dict() for r in self.rejections],
                "halted_at": None if self.halted_at is None else iso(self.halted_at),
                "final_equity": self.final_equity,
                "realised_pnl": self.realised_pnl,
                "unrealised_pnl": self.unrealised_pnl,
                "cash": self.cash,
                "positions": self.positions,
                "dropped_orders": self.dropped_orders,
                "fingerprint": self.fingerprint,
            }
            body = clean(body)
            body["result_hash"] = self.result_hash
            self._dict = body
        return self._dict

    def to_json(self, *, indent: int | None = None) -> str:
        return canonical_json(self.to_dict(), indent=indent)


def _strategy_name(strategy: Any) -> str:
    return getattr(strategy, "name", type(strategy).__name__)


def _signal_arrays(sig: Signals, n: int, s: int, allow_short: bool, name: str):
    def as_bool(a: np.ndarray | None, what: str) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim == 1:
            a = a[:, None]
        if a.shape != (n, s):
            raise ValueError(f"{name}: signals.{what} has shape {a.shape}, expected {(n, s)}")
        return np.ascontiguousarray(a, dtype=np.bool_)

    def as_float(a: np.ndarray | None, what: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 1:
            a = a[:, None]
        if a.shape != (n, s):
            raise ValueError(f"{name}: signals.{what} has shape {a.shape}, expected {(n, s)}")
        return np.ascontiguousarray(a)

    dummy_b = np.zeros((1, 1), dtype=np.bool_)
    dummy_f = np.zeros((1, 1))
    flags = np.zeros(5, dtype=np.bool_)
    entries = as_bool(sig.entries, "entries")
    exits = as_bool(sig.exits, "exits")
    out = [entries, exits]
    for flag, arr, conv, what, dummy in (
        (core.HAS_SHORT_ENTRIES, sig.short_entries, as_bool, "short_entries", dummy_b),
        (core.HAS_SHORT_EXITS, sig.short_exits, as_bool, "short_exits", dummy_b),
        (core.HAS_LIMIT, sig.limit_price, as_float, "limit_price", dummy_f),
        (core.HAS_STOP, sig.stop_price, as_float, "stop_price", dummy_f),
        (core.HAS_TARGET, sig.target_weight, as_float, "target_weight", dummy_f),
    ):
        if arr is None:
            out.append(dummy)
        else:
            flags[flag] = True
            out.append(conv(arr, what))
    shorts = (flags[core.HAS_SHORT_ENTRIES] and out[2].any()) or (
        flags[core.HAS_TARGET] and np.nanmin(out[6], initial=0.0) < 0)
    if shorts and not allow_short:
        raise ValueError(f"{name} places short orders; run it with allow_short=True "
                         "(--allow-short)")
    return (*out, flags)


def run_backtest(bars: BarSet, strategy: VectorStrategy | Strategy,
                 config: BacktestConfig | None = None, *, on_event: EventCallback | None = None,
                 pre_trade: PreTradeCheck | None = None, metrics: bool = True) -> BacktestResult:
    """Backtest `strategy` on `bars`; deterministic for the same inputs and `config.seed`.

    `metrics=False` skips the performance metrics (`result.metrics` is then empty), for callers
    that only need trades and equity, such as parameter sweeps.
    """
    config = config or BacktestConfig()
    n, s = bars.n_bars, bars.n_symbols
    if n == 0 or s == 0:
        raise ValueError("no bars to backtest")
    name = _strategy_name(strategy)
    op, hi, lo, cl, vo = (np.ascontiguousarray(getattr(bars, k), dtype=np.float64)
                          for k in ("open", "high", "low", "close", "volume"))
    day = np.ascontiguousarray(bars.timestamps // (86_400 * 10**9), dtype=np.float64)
    if hasattr(strategy, "seed"):
        strategy.seed = config.seed
    sig: Signals | None = None
    info: dict[str, Any] = {}
    if isinstance(strategy, VectorStrategy):
        sig = strategy.signals(bars)
        info = dict(sig.info)
    elif not isinstance(strategy, Strategy):
        raise TypeError("strategy must be a VectorStrategy or a Strategy instance")
    tp = config.take_profit if config.take_profit is not None else (sig.take_profit if sig else None)
    sl = config.stop_loss if config.stop_loss is not None else (sig.stop_loss if sig else None)
    params = core.params_vector(
        cost_params(config.commission, config.slippage), cap=config.participation,
        whole_units=config.whole_units, allow_short=config.allow_short,
        entry_tif=TIFS[config.entry_tif], size_kind=config.sizing.code,
        size_value=config.sizing.value, take_profit=tp, stop_loss=sl)
    book = core.Book(n, s, config.cash, params)
    emitter = Emitter(on_event, n, list(bars.symbols), bars.timestamps)
    run = _Run(bars, book, emitter, pre_trade, config, name, (op, hi, lo, cl, vo, day))
    if sig is not None:
        arrays = _signal_arrays(sig, n, s, config.allow_short, name)
        if pre_trade is None:
            run.compiled(arrays)
        else:
            run.stepped(arrays=arrays)
    else:
        run.stepped(strategy=strategy)  # type: ignore[arg-type]
    emitter.fills(book.fills_view())
    emitter.progress(n, float(book.equity[-1]), force=True)
    result = _result(bars, strategy, config, book, run, info, metrics)
    if emitter.active:
        emitter.emit({"type": "done", "final_equity": result.final_equity,
                      "n_trades": len(result.trades), "result_hash": result.result_hash})
    return result


class _Run:
    """One run's driver state (shared by the compiled and the stepped loops)."""

    def __init__(self, bars: BarSet, book: core.Book, emitter: Emitter,
                 checker: PreTradeCheck | None, config: BacktestConfig, name: str,
                 prices: tuple[np.ndarray, ...]) -> None:
        self.bars, self.book, self.emitter, self.checker = bars, book, emitter, checker
        self.config, self.name = config, name
        self.op, self.hi, self.lo, self.cl, self.vo, self.day = prices
        self.rejections: list[Rejection] = []
        self.halted_at: int | None = None
        self.halt_result: CheckResult | None = None
        self.peak = -np.inf
        self.day_start = 0.0
        self.current_day = -1.0

    # --- the compiled path ---------------------------------------------------------------------
    def compiled(self, arrays: tuple) -> None:
        b = self.book
        n = self.bars.n_bars
        chunk = max(1, n // 100) if self.emitter.active else n
        t = 0
        while t < n:
            end = min(n, t + chunk)
            while t < end:
                t = core.run_signals(t, end, self.op, self.hi, self.lo, self.cl, self.vo,  # type: ignore[call-arg]
                                     self.day, *arrays, b.ob, b.st, b.pos, b.last_target,
                                     b.fills, b.equity, b.pr, b.used)
                if t < end:
                    b.ensure_fill_room(b.n_orders + 4 + b.fills.shape[0])
            if self.emitter.active:
                self.emitter.fills(b.fills_view())
                self.emitter.progress(t, float(b.equity[t - 1]))

    # --- the stepped path ----------------------------------------------------------------------
    def stepped(self, *, arrays: tuple | None = None, strategy: Strategy | None = None) -> None:
        b = self.book
        n = self.bars.n_bars
        ctx = Context(self.bars, b) if strategy is not None else None
        if strategy is not None and ctx is not None:
            strategy.on_start(ctx)
        for t in range(n):
            b.ensure_fill_room(b.n_orders + 4)
            core.fill_bar(t, self.op, self.hi, self.lo, self.cl, self.vo, self.day, b.ob, b.st,
                          b.pos, b.fills, b.pr, b.used)
            eq = core.mark_bar(t, self.cl, b.st, b.pos, b.equity)
            if self.emitter.active:
                self.emitter.fills(b.fills_view())
                self.emitter.progress(t + 1, eq)
            snapshot = self._snapshot(t, eq) if self.checker is not None else None
            if self.checker is not None and self.halted_at is None and snapshot is not None:
                res = self.checker.on_bar(snapshot)
                if res is not None and res.halt:
                    self._halt(t, res)
            if t >= n - 1:
                continue
            if arrays is not None:
                b.ensure_order_room(2 * self.bars.n_symbols + 4)
                core.decide_signals(t, *arrays, b.ob, b.st, b.pos, b.last_target, b.pr, 1.0)  # type: ignore[call-arg]
                self._review_pending(t, snapshot)
            elif strategy is not None and ctx is not None:
                ctx.t = t
                ctx.orders.clear()
                ctx.cancels.clear()
                strategy.on_bar(ctx)
                for sym in ctx.cancels:
                    core.cancel_symbol(b.ob, b.st, ctx._index[sym])
                for order in ctx.orders:
                    self._submit(t, order, snapshot)

    def _snapshot(self, t: int, eq: float) -> PortfolioSnapshot:
        b = self.book
        if self.day[t] != self.current_day:
            self.current_day = self.day[t]
            self.day_start = eq
        self.peak = max(self.peak, eq)
        syms = self.bars.symbols
        return PortfolioSnapshot(
            timestamp=int(self.bars.timestamps[t]), cash=b.cash, equity=eq,
            positions={syms[j]: float(b.pos[j]) for j in range(len(syms)) if b.pos[j] != 0},
            prices={syms[j]: float(self.cl[t, j]) for j in range(len(syms))},
            day_start_equity=self.day_start, peak_equity=self.peak)

    def _intent(self, t: int, row: int) -> OrderIntent:
        b = self.book
        o = b.ob[row]
        j = int(o[O_SYM])
        typ = int(o[O_TYPE])
        ref = o[O_LIMIT] if o[O_LIMIT] == o[O_LIMIT] else (
            o[O_STOP] if o[O_STOP] == o[O_STOP] else self.cl[t, j])
        qty = core.resolve_qty(b.ob, row, float(ref), b.st, b.pos, b.pr, float(b.equity[t]))
        return OrderIntent(symbol=self.bars.symbols[j], side=int(b.ob[row, O_SIDE]),
                           quantity=float(qty), price=float(ref),
                           timestamp=int(self.bars.timestamps[t]),
                           order_type=ORDER_TYPE_NAMES[typ], strategy=self.name)

    def _verdict(self, intent: OrderIntent, snapshot: PortfolioSnapshot | None,
                 t: int) -> CheckResult | None:
        if self.halted_at is not None and self.halt_result is not None:
            return self.halt_result
        if self.checker is None or snapshot is None:
            return None
        res = self.checker.check(intent, snapshot)
        if res is not None and res.halt:
            self._halt(t, res)
        return res

    def _reject(self, intent: OrderIntent, res: CheckResult) -> None:
        rej = Rejection(intent.timestamp, intent.symbol, intent.side, intent.quantity, res.rule,
                        res.reason)
        self.rejections.append(rej)
        self.emitter.emit({"type": "rejection", **rej.to_dict()})

    def _review_pending(self, t: int, snapshot: PortfolioSnapshot | None) -> None:
        b = self.book
        i = 0
        while i < b.n_orders:
            if b.ob[i, O_PENDING] != 1.0:
                i += 1
                continue
            oid = b.ob[i, O_ID]
            intent = self._intent(t, i)
            res = self._verdict(intent, snapshot, t)
            if res is None:
                b.ob[i, O_PENDING] = 0.0
                i += 1
            else:
                self._reject(intent, res)
                self._drop(oid)
                i = 0  # a halt may have removed rows before this one; pending flags remain

    def _submit(self, t: int, order: Order, snapshot: PortfolioSnapshot | None) -> None:
        b = self.book
        b.ensure_order_room(3)
        j = self.bars.symbols.index(order.symbol)
        kind, qty = (SIZE_CLOSE, np.nan) if order.close else (SIZE_QTY, float(order.quantity or 0))
        row = core.add_order(
            b.ob, b.st, j, float(order.side), ORDER_TYPES[order.order_type], TIFS[order.tif],
            np.nan, kind, qty if kind == SIZE_QTY else 0.0,  # sized (and floored) at the fill
            np.nan if order.limit_price is None else order.limit_price,
            np.nan if order.stop_price is None else order.stop_price, t,
            np.nan if order.take_profit is None else order.take_profit,
            np.nan if order.stop_loss is None else order.stop_loss,
            TAG_EXIT if order.close else TAG_USER, -1.0, 1.0)
        oid = b.ob[row, O_ID]
        intent = self._intent(t, row)
        res = self._verdict(intent, snapshot, t)
        if res is None:
            b.ob[row, O_PENDING] = 0.0
        else:
            self._reject(intent, res)
            self._drop(oid)

    def _drop(self, order_id: float) -> None:
        b = self.book
        rows = np.flatnonzero(b.orders_view()[:, O_ID] == order_id)
        if rows.size:
            b.ob[rows[0], O_SYM] = -1.0
            core.compact(b.ob, b.st)

    def _halt(self, t: int, res: CheckResult) -> None:
        if self.halted_at is not None:
            return
        b = self.book
        self.halted_at = int(self.bars.timestamps[t])
        self.halt_result = res
        # cancel every working order; orders still awaiting the check stay, to be rejected
        # (and recorded) with the halt's reason
        live = b.orders_view()
        live[live[:, O_PENDING] == 0.0, O_SYM] = -1.0
        core.compact(b.ob, b.st)
        self.emitter.emit({"type": "halt", "timestamp": iso(self.halted_at), "rule": res.rule,
                           "reason": res.reason})
        if self.config.flatten_on_halt and t < self.bars.n_bars - 1:
            b.ensure_order_room(self.bars.n_symbols)
            for j in range(self.bars.n_symbols):
                p = b.pos[j]
                if p != 0:
                    core.add_order(b.ob, b.st, j, -1.0 if p > 0 else 1.0, MARKET, 0, np.nan,
                                   SIZE_CLOSE, 0.0, np.nan, np.nan, t, np.nan, np.nan, TAG_EXIT,
                                   -1.0, 0.0)


def buy_and_hold_benchmark(bars: BarSet, initial: float) -> np.ndarray | None:
    """The default benchmark of alpha and beta: an equal-weight buy-and-hold of the run's
    symbols, bought at the first close and never rebalanced, valued like the strategy's equity."""
    if bars.n_bars == 0 or initial <= 0:
        return None
    first = bars.close[0]
    if not np.all(np.isfinite(first)) or np.any(first <= 0) or not np.all(np.isfinite(bars.close)):
        return None
    return initial * np.mean(bars.close / first, axis=1)


def _result(bars: BarSet, strategy: Any, config: BacktestConfig, book: core.Book, run: _Run,
            info: dict[str, Any], with_metrics: bool) -> BacktestResult:
    from .metrics import compute_metrics, periods_per_year

    n, s = bars.n_bars, bars.n_symbols
    fills = book.fills_view()
    trades = round_trips(fills, list(bars.symbols), bars.close[-1])
    equity = book.equity
    metrics: dict[str, Any] = {}
    if with_metrics:
        pos_bar = positions_per_bar(fills, n, s)
        gross = np.abs(pos_bar * bars.close).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            exposure = np.where(equity != 0, gross / equity, 0.0)
        closed = [tr for tr in trades if not tr.is_open]
        inputs = MetricInputs(
            equity=equity, timestamps=bars.timestamps,
            periods_per_year=periods_per_year(config.calendar, bar_seconds(bars)),
            trade_pnl=np.array([tr.pnl for tr in closed], dtype=np.float64),
            trade_return=np.array([tr.return_ for tr in closed], dtype=np.float64),
            exposure=exposure, traded_notional=traded_notional(fills, n),
            risk_free_annual=config.risk_free, n_params=len(getattr(strategy, "params", ())),
            benchmark_equity=buy_and_hold_benchmark(bars, equity[0] if n else 0.0))
        metrics = compute_metrics(inputs)
    fingerprint = {
        "engine_version": ENGINE_VERSION,
        "strategy": {"type": _strategy_name(strategy),
                     "params": dict(getattr(strategy, "values", {})),
                     "info": info},
        "n_bars": n,
        "symbols": list(bars.symbols),
        "seed": config.seed,
        "costs": {"commission": config.commission.describe(),
                  "slippage": config.slippage.describe()},
        "config": config.describe(),
        "pre_trade": None if run.checker is None else type(run.checker).__name__,
    }
    result = BacktestResult(
        timestamps=bars.timestamps, symbols=list(bars.symbols), equity=equity, fills=fills,
        trades=trades, rejections=run.rejections, halted_at=run.halted_at, metrics=metrics,
        _fingerprint=clean(fingerprint), cash=book.cash,
        positions={bars.symbols[j]: float(book.pos[j]) for j in range(s)},
        dropped_orders=int(book.st[core.S_DROPPED]), _bars=bars)
    return result

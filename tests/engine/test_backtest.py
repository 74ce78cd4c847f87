"""run_backtest end to end: results, determinism, events, the pre-trade hook, strategies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.costs import bps_commission
from trading.engine.hooks import CheckResult
from trading.engine.orders import Order
from trading.engine.strategies import (
    UnknownStrategyError,
    create_strategy,
    get_strategy,
    list_strategies,
)
from trading.engine.strategies.pairs import rolling_hedge
from trading.engine.synthetic import (
    cointegrated_pair,
    correlated_basket,
    gbm,
    jump_diffusion,
    regime_switching,
)
from trading.engine.types import ParamError, Signals, VectorStrategy

from .conftest import DAY_NS, Scripted, flat_bars, make_bars

CFG = BacktestConfig(commission=bps_commission(10))


@pytest.fixture(scope="module")
def bars():
    return gbm(5_000, seed=42)


def test_same_inputs_give_byte_identical_json(bars):
    a = run_backtest(bars, create_strategy("sma_cross", fast=5, slow=30), CFG)
    b = run_backtest(gbm(5_000, seed=42), create_strategy("sma_cross", fast=5, slow=30), CFG)
    assert a.to_json() == b.to_json()
    assert a.result_hash == b.result_hash and len(a.result_hash) == 64
    c = run_backtest(gbm(5_000, seed=43), create_strategy("sma_cross", fast=5, slow=30), CFG)
    assert c.result_hash != a.result_hash


def test_json_shape(bars):
    out = json.loads(run_backtest(bars, create_strategy("sma_cross"), CFG).to_json())
    assert {"metrics", "trades", "fills", "equity"} <= set(out)
    assert {"symbol", "entry_time", "entry_price", "exit_time", "exit_price", "quantity",
            "pnl"} <= set(out["trades"][0])
    assert out["equity"][0] == ["2024-01-01T00:00:00Z", 100_000.0]
    assert len(out["equity"]) == 5_000
    fp = out["fingerprint"]
    assert fp["strategy"] == {"type": "sma_cross", "params": {"fast": 10, "slow": 50},
                              "info": {}}
    assert fp["costs"]["commission"]["rate"] == 0.001 and len(fp["data_hash"]) == 64


def test_equity_and_trades_reconcile(bars):
    res = run_backtest(bars, create_strategy("sma_cross"), CFG)
    pnl = sum(t.pnl for t in res.trades)
    assert res.final_equity - 100_000 == pytest.approx(pnl, abs=1e-6)
    assert res.equity.dtype == np.float64 and len(res.equity) == bars.n_bars
    assert res.metrics["total_return"] == pytest.approx(res.final_equity / 100_000 - 1)
    assert res.realised_pnl + res.unrealised_pnl == pytest.approx(pnl)
    assert res.unrealised_pnl == sum(t.pnl for t in res.trades if t.exit_bar is None)


def test_no_look_ahead_changing_the_future_does_not_change_the_past(bars):
    full = run_backtest(bars, create_strategy("sma_cross"), CFG)
    cut = 3_000
    bars2 = gbm(5_000, seed=42)
    bars2.close[cut:] *= 1.5  # rewrite everything after bar `cut`
    bars2.high[cut:] *= 1.5
    bars2.open[cut:] *= 1.5
    bars2.low[cut:] *= 1.5
    other = run_backtest(bars2, create_strategy("sma_cross"), CFG)
    assert np.array_equal(full.equity[:cut], other.equity[:cut])


def test_events_report_progress_fills_and_done(bars):
    events = []
    res = run_backtest(bars, create_strategy("sma_cross"), CFG, on_event=events.append)
    kinds = [e["type"] for e in events]
    progress = [e for e in events if e["type"] == "progress"]
    assert 90 <= len(progress) <= 102  # throttled to about every 1 % of the bars
    assert progress[-1]["fraction"] == 1.0
    assert kinds.count("fill") == len(res.fills)
    assert kinds[-1] == "done" and events[-1]["result_hash"] == res.result_hash
    assert "equity" in kinds


class RefuseBuysAbove:
    """Refuses orders above a notional; halts at a given timestamp."""

    def __init__(self, max_notional=1e12, halt_at=None):
        self.max_notional, self.halt_at, self.bars_seen = max_notional, halt_at, 0

    def check(self, intent, snapshot):
        if intent.notional > self.max_notional:
            return CheckResult("max_notional", f"notional {intent.notional:.0f} too large")
        return None

    def on_bar(self, snapshot):
        self.bars_seen += 1
        if self.halt_at is not None and snapshot.timestamp >= self.halt_at:
            return CheckResult("kill_switch", "drawdown limit", halt=True)
        return None


def test_pre_trade_check_is_asked_every_bar_and_its_refusals_are_recorded(bars):
    checker = RefuseBuysAbove(max_notional=50_000)
    res = run_backtest(bars, create_strategy("sma_cross"), CFG, pre_trade=checker)
    assert checker.bars_seen == bars.n_bars
    assert len(res.fills) == 0  # every all-cash entry is ~100k notional
    assert len(res.rejections) > 0
    r = res.rejections[0]
    assert (r.symbol, r.side, r.rule) == ("SYN", 1, "max_notional") and r.quantity > 0


def test_with_a_permissive_check_the_stepped_path_equals_the_compiled_one(bars):
    fast = run_backtest(bars, create_strategy("sma_cross"), CFG)
    slow = run_backtest(bars, create_strategy("sma_cross"), CFG, pre_trade=RefuseBuysAbove())
    assert np.array_equal(fast.equity, slow.equity)
    assert np.array_equal(fast.fills, slow.fills)


def test_halt_cancels_orders_rejects_later_ones_and_can_flatten():
    bars = flat_bars(10)
    script = {0: [Order("AAA", 1, 10)], 2: [Order("AAA", 1, 1, "limit", limit_price=50)],
              5: [Order("AAA", 1, 5)]}
    halt_ts = int(bars.timestamps[3])
    res = run_backtest(bars, Scripted(script), BacktestConfig(), pre_trade=RefuseBuysAbove(
        halt_at=halt_ts))
    assert res.halted_at == halt_ts
    assert [(r.rule, r.quantity) for r in res.rejections] == [("kill_switch", 5.0)]
    assert res.positions == {"AAA": 10.0}  # the limit order was cancelled; no flatten asked
    flat = run_backtest(bars, Scripted(script), BacktestConfig(flatten_on_halt=True),
                        pre_trade=RefuseBuysAbove(halt_at=halt_ts))
    assert flat.positions == {"AAA": 0.0}
    assert int(flat.fills[-1][0]) == 4  # closed at the open after the halting bar


def test_registry_lists_builtin_strategies_with_params():
    names = {s["name"]: s for s in list_strategies()}
    assert {"sma_cross", "pairs", "market_making"} <= set(names)
    assert [p["name"] for p in names["sma_cross"]["params"]] == ["fast", "slow"]
    assert names["market_making"]["kind"] == "event" and names["pairs"]["kind"] == "vector"
    with pytest.raises(UnknownStrategyError, match="unknown strategy 'nope'"):
        get_strategy("nope")
    with pytest.raises(ParamError):
        create_strategy("sma_cross", fast=60, slow=50)


def test_pairs_trades_both_legs_in_opposite_directions():
    bars = cointegrated_pair(6_000, seed=3)
    res = run_backtest(bars, create_strategy("pairs", window=120), BacktestConfig(
        allow_short=True, commission=bps_commission(1)))
    sides = {(t.symbol, t.side) for t in res.trades}
    assert sides == {("X", 1), ("X", -1), ("Y", 1), ("Y", -1)}
    # each entry opens both legs at the same bar: in opposite directions when the rolling
    # hedge ratio (seen at the decision bar, one bar earlier) is positive, alike when negative
    beta, _ = rolling_hedge(bars.close[:, 0], bars.close[:, 1], 120)
    by_bar = {}
    for t in res.trades:
        by_bar.setdefault(t.entry_bar, {})[t.symbol] = t.side
    assert len(by_bar) > 20
    for bar, legs in by_bar.items():
        assert set(legs) == {"X", "Y"}
        assert legs["X"] * legs["Y"] == (-1 if beta[bar - 1] > 0 else 1)
    with pytest.raises(ValueError, match="allow_short"):
        run_backtest(bars, create_strategy("pairs"), BacktestConfig())


def test_market_making_earns_the_spread_on_a_mean_reverting_market():
    # price oscillates 100 -> 101 -> 100 ...: bids at 99.9 fill on down bars, asks on up bars
    rows = [(100, 100.5, 99.8, 100, 1000) if i % 2 == 0 else (100, 101.2, 99.9, 101, 1000)
            for i in range(200)]
    res = run_backtest(make_bars(rows, tick_size=0.01), create_strategy(
        "market_making", spread_bps=20, quote_size=1, max_inventory=5, skew_bps=0),
        BacktestConfig(allow_short=True))
    assert len(res.fills) > 50
    assert all(abs(p) <= 5 for p in res.positions.values())
    assert res.final_equity > 100_000


def test_signals_with_wrong_shape_are_refused():
    class Bad(VectorStrategy):
        name = "bad"

        def signals(self, bars):
            return Signals(entries=np.zeros(3, bool), exits=np.zeros(3, bool))

    with pytest.raises(ValueError, match="shape"):
        run_backtest(flat_bars(5), Bad(), BacktestConfig())


def test_limit_entries_and_brackets_from_signals():
    class DipBuyer(VectorStrategy):
        name = "dip_buyer"

        def signals(self, bars):
            n = bars.n_bars
            e = np.zeros((n, 1), bool)
            e[0] = True
            limit = np.full((n, 1), np.nan)
            limit[0] = 99.0
            return Signals(entries=e, exits=np.zeros_like(e), limit_price=limit,
                           take_profit=0.02)

    rows = [(100, 100, 100, 100, 1e4), (100, 100, 98.5, 99, 1e4), (99, 101.5, 99, 101, 1e4),
            (101, 101, 101, 101, 1e4)]
    # daily bars (a 2 % gain over minutes annualises beyond float range in the metrics)
    res = run_backtest(make_bars(rows, step_ns=DAY_NS), DipBuyer(), BacktestConfig(cash=9_900))
    (t,) = res.trades
    # limit 99 fills at bar 1 (low 98.5) for floor(9900 / 99) = 100 units; TP at 99 * 1.02
    assert (t.entry_bar, t.entry_price, t.quantity) == (1, 99.0, 100.0)
    assert (t.exit_bar, t.exit_price) == (2, pytest.approx(100.98))


def test_synthetic_generators_are_deterministic_and_valid():
    for make in (lambda s: gbm(2_000, seed=s), lambda s: regime_switching(2_000, seed=s),
                 lambda s: jump_diffusion(2_000, seed=s, jump_intensity=0.01),
                 lambda s: correlated_basket(2_000, seed=s, n_assets=3),
                 lambda s: cointegrated_pair(2_000, seed=s)):
        a, b, c = make(1), make(1), make(2)
        assert np.array_equal(a.close, b.close) and not np.array_equal(a.close, c.close)
        assert (a.high >= np.maximum(a.open, a.close)).all()
        assert (a.low <= np.minimum(a.open, a.close)).all() and (a.low > 0).all()
        assert np.array_equal(np.round(a.close, 4), a.close)  # on the 4-decimal tick
        assert (a.volume == np.floor(a.volume)).all()


def test_correlated_basket_has_the_requested_correlation():
    bars = correlated_basket(20_000, seed=9, n_assets=3, correlation=0.6, volatility=0.01)
    r = np.diff(np.log(bars.close), axis=0)
    corr = np.corrcoef(r.T)
    assert corr[0, 1] == pytest.approx(0.6, abs=0.05)


def test_cointegrated_pair_spread_is_stationary():
    bars = cointegrated_pair(20_000, seed=4, hedge_ratio=1.5, intercept=20.0)
    spread = bars.close[:, 1] - 1.5 * bars.close[:, 0] - 20.0
    assert abs(spread.mean()) < 1.0 and spread.std() < 2.0


def test_orders_of_the_halting_bar_after_the_halt_are_rejected_with_its_reason():
    class HaltOnSecondOrder:
        def __init__(self):
            self.calls = 0

        def check(self, intent, snapshot):
            self.calls += 1
            if self.calls == 2:
                return CheckResult("kill_switch", "loss limit", halt=True)
            return None

        def on_bar(self, snapshot):
            return None

    script = {1: [Order("AAA", 1, 1), Order("AAA", 1, 2), Order("AAA", 1, 3)]}
    res = run_backtest(flat_bars(5), Scripted(script), BacktestConfig(),
                       pre_trade=HaltOnSecondOrder())
    # the first order passed but is cancelled by the halt; the 2nd triggers it, the 3rd
    # arrives after it: both are recorded with the halt's rule
    assert [(r.quantity, r.rule) for r in res.rejections] == [(2.0, "kill_switch"),
                                                                (3.0, "kill_switch")]
    assert len(res.fills) == 0 and res.halted_at == int(flat_bars(5).timestamps[1])


def test_alpha_and_beta_are_measured_against_buy_and_hold_of_the_traded_symbols(bars):
    from trading.engine.backtest import buy_and_hold_benchmark

    res = run_backtest(bars, create_strategy("sma_cross", fast=5, slow=30), CFG)
    bench = buy_and_hold_benchmark(bars, 100_000.0)
    # the benchmark starts at the initial cash and follows the close of the single symbol
    assert bench[0] == pytest.approx(100_000.0)
    assert bench[-1] == pytest.approx(100_000.0 * bars.close[-1, 0] / bars.close[0, 0])
    assert res.metrics["beta"] is not None and res.metrics["alpha"] is not None
    # long-only and flat part of the time: beta lies between 0 and 1
    assert 0.0 < res.metrics["beta"] < 1.0
    assert res.metrics["benchmark_total_return"] == pytest.approx(bench[-1] / bench[0] - 1)

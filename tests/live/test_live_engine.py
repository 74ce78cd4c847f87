"""`advance`: the step of a live deployment — parity with the backtest, idempotency, crash
safety, persistence, and the risk checker in the loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from risk.core import RiskLimits, Rulebook
from tests.live.conftest import T0, make_bars, one_bar
from trading.brokers.base import Bar
from trading.brokers.paper import PaperBroker
from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.costs import bps_commission
from trading.engine.orders import F_TAG, TAG_BRACKET, TAG_EXIT
from trading.engine.sizing import Sizing
from trading.engine.strategies import create_strategy
from trading.engine.synthetic import correlated_basket, gbm
from trading.engine.types import BarSet, Signals, VectorStrategy
from trading.feeds.base import ManualClock, to_barset
from trading.feeds.simulated import SyntheticFeed
from trading.live_engine import (
    DeploymentState,
    LiveConfig,
    advance,
    reconcile_deployment,
    warm_up,
)
from trading.oms import client_order_id


class AlwaysLong(VectorStrategy):
    """Enter on every bar; never exit."""

    name = "always_long"

    def signals(self, bars: BarSet) -> Signals:
        shape = bars.close.shape
        return Signals(entries=np.ones(shape, dtype=bool), exits=np.zeros(shape, dtype=bool))


def replay(bars: BarSet, strategy, broker, state, checker=None, *, save_between=False):
    fills, actions = [], []
    for t in range(bars.n_bars):
        if save_between:
            state = DeploymentState.from_json(state.to_json())
            broker = PaperBroker.from_state(json.loads(json.dumps(broker.state())))
        state, acts = advance(state, one_bar(bars, t), strategy, broker, checker)
        actions += acts
        fills += [a.data for a in acts if a.kind == "fill"]
    return state, broker, fills, actions


@pytest.mark.parametrize("symbols,brackets", [(1, False), (3, False), (1, True), (3, True)])
def test_paper_deployment_takes_the_backtests_decisions(symbols, brackets):
    bars = (gbm(1_500, seed=11, volatility=0.002) if symbols == 1
            else correlated_basket(1_500, seed=5, n_assets=3, volatility=0.002))
    strategy = create_strategy("sma_cross", fast=5, slow=20)
    # with brackets: a 0.6 % take-profit and a 0.4 % stop-loss on every entry. With several
    # symbols they size on equity, not on all the cash: a leg that fills in the bar another
    # symbol's entry fills frees cash the backtest spends at that fill, which a live order,
    # sized when it is sent, cannot know about (docs/live.md, "Bracket exits").
    sizing = Sizing("percent-equity", 0.3) if brackets and symbols > 1 else Sizing()
    config = BacktestConfig(cash=10_000.0, commission=bps_commission(10), sizing=sizing,
                            **({"take_profit": 0.006, "stop_loss": 0.004} if brackets else {}))
    expected = run_backtest(bars, strategy, config)
    by_tag = np.bincount(expected.fills[:, F_TAG].astype(int), minlength=TAG_BRACKET + 1)
    if brackets:  # many round trips end on each leg, the others on the exit signal
        assert by_tag[TAG_BRACKET] > 20 and by_tag[TAG_EXIT] > 5
        assert {f["order_type"] for f in expected.fill_records()} >= {"limit", "stop"}
    else:
        assert by_tag[TAG_BRACKET] == 0

    broker = PaperBroker(bars.symbols, cash=10_000.0, commission=config.commission)
    state = DeploymentState.new("dep-1", bars.symbols, LiveConfig.from_backtest(config),
                                strategy=strategy)
    state, broker, fills, actions = replay(bars, strategy, broker, state)

    want = [(f["timestamp"], f["symbol"], f["side"], f["quantity"], f["price"], f["commission"])
            for f in expected.fill_records()]
    got = [(np.datetime64(f["timestamp"], "ns").astype(str)[:19] + "Z", f["symbol"], f["side"],
            f["quantity"], f["price"], f["fee"]) for f in fills]
    assert len(want) > 20  # the comparison covers many round trips
    assert got == want
    assert state.equity == pytest.approx(expected.final_equity, rel=1e-12)
    # every signal order was decided at the previous bar's close (no look-ahead, no delay);
    # bracket legs are placed when their entry fills and work from the next bar on
    orders = {a.data["client_order_id"]: a for a in actions if a.kind == "order"}
    delays = {f["timestamp"] - orders[f["client_order_id"]].timestamp for f in fills
              if not orders[f["client_order_id"]].data["leg"].endswith((":tp", ":sl"))}
    assert delays == {60 * 10**9}
    legs = [f for f in fills if orders[f["client_order_id"]].data["leg"].endswith((":tp", ":sl"))]
    assert len(legs) == by_tag[TAG_BRACKET]
    assert all(f["timestamp"] > orders[f["client_order_id"]].timestamp for f in legs)


def test_bracket_legs_cancel_each_other_and_survive_saving_between_steps():
    bars = gbm(800, seed=3, volatility=0.002)
    strategy = create_strategy("sma_cross", fast=5, slow=20)
    config = BacktestConfig(cash=10_000.0, take_profit=0.005, stop_loss=0.005)
    expected = run_backtest(bars, strategy, config)
    state = DeploymentState.new("dep-b", bars.symbols, LiveConfig.from_backtest(config),
                                strategy=strategy)
    state, broker, fills, actions = replay(bars, strategy, PaperBroker(bars.symbols,
                                           cash=10_000.0), state, save_between=True)
    assert [(f["side"], f["quantity"], f["price"]) for f in fills] == \
        [(f["side"], f["quantity"], f["price"]) for f in expected.fill_records()]
    placed = [a.data for a in actions if a.kind == "order" and a.data["leg"].endswith(
        (":tp", ":sl"))]
    final = [broker.get_order(p["client_order_id"]).status for p in placed]
    # legs come in pairs (take profit, then stop loss); one fills and the other is cancelled,
    # or the exit signal came first and cancelled both; the last pair may still be working
    assert len(placed) % 2 == 0 and final.count("filled") > 5
    pairs = [sorted(pair) for pair in zip(final[::2], final[1::2], strict=True)]
    assert all(p in (["cancelled", "filled"], ["cancelled", "cancelled"]) for p in pairs[:-1])
    assert pairs[-1] in (["cancelled", "filled"], ["cancelled", "cancelled"],
                         ["accepted", "accepted"])
    assert not any(a.data.get("reason", "").startswith("risk") for a in actions)


def test_saving_and_loading_between_every_step_changes_nothing():
    bars = gbm(400, seed=3, volatility=0.003)
    strategy = create_strategy("sma_cross", fast=3, slow=12)
    cfg = LiveConfig(cash=5_000.0, fee_rate=0.001)

    def run(save):
        broker = PaperBroker(bars.symbols, cash=5_000.0, commission=bps_commission(10))
        state = DeploymentState.new("dep-2", bars.symbols, cfg, strategy=strategy)
        state, broker, fills, _ = replay(bars, strategy, broker, state, save_between=save)
        return state.to_dict(), fills

    assert run(True) == run(False)


def test_advancing_twice_to_the_same_time_does_nothing_the_second_time():
    bars = make_bars([(100, 101, 99, 100, 1_000)] * 3)
    broker = PaperBroker(bars.symbols, cash=1_000.0)
    state = DeploymentState.new("dep-3", bars.symbols, LiveConfig(cash=1_000.0))
    first, acts = advance(state, bars, AlwaysLong(), broker)
    again, acts_again = advance(first, bars, AlwaysLong(), broker)

    # bar 0: entry of floor(1000 / 100) = 10; bar 1: fills at 100; bar 2: long, nothing new
    assert [a.kind for a in acts] == ["order", "fill"]
    assert acts_again == []
    assert again.to_dict() == first.to_dict()
    assert len(broker.fills()) == 1


def test_a_step_rerun_after_a_crash_does_not_send_the_order_twice(fake_binance,
                                                                  binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 2)
    cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.01), whole_units=False)
    state = DeploymentState.new("dep-4", bars.symbols, cfg)

    crashed, acts = advance(state, one_bar(bars, 0), AlwaysLong(), binance_broker)
    assert [a.data["status"] for a in acts if a.kind == "order"] == ["filled"]
    del crashed  # the worker died before saving: the next attempt starts from `state`

    rerun, acts = advance(state, one_bar(bars, 0), AlwaysLong(), binance_broker)
    assert len(fake_binance.calls("POST", "/api/v3/order")) == 1
    coid = client_order_id("dep-4", int(bars.timestamps[0]), "BTC/USDT:entry")
    assert [a.data["client_order_id"] for a in acts if a.kind == "order"] == [coid]

    after, acts = advance(rerun, one_bar(bars, 1), AlwaysLong(), binance_broker)
    assert after.positions == {"BTC/USDT": 0.01}
    # 0.01 x 50,000 = 500 plus the fake's 0.1 % fee (0.5) -> 10,000 - 500.5
    assert after.cash == pytest.approx(9_499.5)
    assert len(fake_binance.calls("POST", "/api/v3/order")) == 1


def test_rejected_order_leaves_the_deployment_flat(fake_binance, binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 2)
    # 5 BTC (250,000 USDT) is more than the fake account's 100,000
    cfg = LiveConfig(cash=1e6, sizing=Sizing("fixed-quantity", 5.0))
    state, acts = advance(DeploymentState.new("dep-5", bars.symbols, cfg), one_bar(bars, 0),
                          AlwaysLong(), binance_broker)
    [order] = [a.data for a in acts if a.kind == "order"]
    assert order["status"] == "rejected" and "insufficient balance" in order["reason"]
    state, _ = advance(state, one_bar(bars, 1), AlwaysLong(), binance_broker)
    assert state.positions == {} and state.cash == 1e6


def test_malformed_answer_is_settled_by_lookup_and_never_guessed(fake_binance, binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 3)
    cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.01), whole_units=False)
    # the exchange executes the order but the answer is cut off
    fake_binance.inject("POST", "/api/v3/order", 200, "{\"symbol\": \"BTCU", raw=True,
                        process=True)
    state, acts = advance(DeploymentState.new("dep-6", bars.symbols, cfg), one_bar(bars, 0),
                          AlwaysLong(), binance_broker)
    [order] = [a.data for a in acts if a.kind == "order"]
    assert order["status"] == "new" and order["reason"].startswith("unknown outcome")
    assert state.positions == {}  # nothing is assumed from an unreadable answer

    state, acts = advance(state, one_bar(bars, 1), AlwaysLong(), binance_broker)
    assert state.positions == {"BTC/USDT": 0.01}  # from the exchange's trade, found by lookup
    assert len(fake_binance.calls("POST", "/api/v3/order")) == 1


def test_unsent_order_whose_answer_was_malformed_is_not_resent_late(fake_binance,
                                                                     binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 2)
    cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.01), whole_units=False)
    fake_binance.inject("POST", "/api/v3/order", 502, "<html>Bad gateway</html>", raw=True)
    state, _ = advance(DeploymentState.new("dep-7", bars.symbols, cfg), one_bar(bars, 0),
                       AlwaysLong(), binance_broker)
    state, acts = advance(state, one_bar(bars, 1), AlwaysLong(), binance_broker)
    stale = [a.data for a in acts if a.kind == "order" and a.data["status"] == "rejected"]
    assert len(stale) == 1 and "stale" in stale[0]["reason"]
    assert state.positions == {}


def test_risk_refusal_is_an_action_and_reaches_no_broker():
    bars = make_bars([(100, 101, 99, 100, 1_000)] * 2)
    broker = PaperBroker(bars.symbols, cash=10_000.0)
    rulebook = Rulebook(RiskLimits(max_order_notional=1_000.0))
    state = DeploymentState.new("dep-8", bars.symbols, LiveConfig(cash=10_000.0))
    state, acts = advance(state, bars, AlwaysLong(), broker, rulebook)
    refused = [a.data for a in acts if a.kind == "refused"]
    # all-cash entry: floor(10,000 / 100) = 100 units = 10,000 notional > 1,000, on both bars
    assert len(refused) == 2 and "max_order_notional" in refused[0]["reason"]
    assert broker.open_orders() == [] and state.positions == {}


def test_drawdown_halt_cancels_working_orders_and_stops_deciding():
    bars = make_bars([(100, 100, 100, 100, 1_000), (100, 100, 100, 100, 1_000),
                      (80, 80, 80, 80, 1_000), (80, 80, 80, 80, 1_000)])
    broker = PaperBroker(bars.symbols, cash=1_000.0)
    rulebook = Rulebook(RiskLimits(max_drawdown=0.1))
    state = DeploymentState.new("dep-9", bars.symbols, LiveConfig(cash=1_000.0))
    state, acts = advance(state, bars, AlwaysLong(), broker, rulebook)
    # bought 10 at 100 on bar 1; bar 2 closes at 80: equity 800, drawdown 20 % > 10 %
    [halt] = [a for a in acts if a.kind == "halt"]
    assert halt.data["rule"] == "max_drawdown" and state.halted.startswith("max_drawdown")
    assert [a.kind for a in acts if a.timestamp > halt.timestamp] == []
    assert state.risk_state["kill_switch"]["state"] == "tripped"


def test_the_history_window_is_trimmed_in_steps():
    bars = make_bars([(100 + k, 101 + k, 99 + k, 100 + k, 1_000) for k in range(12)])
    state = DeploymentState.new("dep-14", bars.symbols, LiveConfig(lookback=6, trim_step=4))
    lengths = []
    for t in range(12):
        state = warm_up(state, one_bar(bars, t))
        lengths.append(len(state.timestamps))
    # grows to 6, then drops 4 at a time: positions of the bars kept shift by 4 only
    assert lengths == [1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 3, 4]
    assert state.history().close[:, 0].tolist() == [108.0, 109.0, 110.0, 111.0]
    state, _ = advance(state, make_bars([(1, 1, 1, 1, 1)], start=int(bars.timestamps[-1])
                                        + 60 * 10**9), AlwaysLong(), PaperBroker(bars.symbols))
    assert len(state.timestamps) == 5


def test_bars_without_the_deployments_symbols_are_refused():
    bars = make_bars([(100, 101, 99, 100, 1_000)], symbols=["ETH/USDT"])
    state = DeploymentState.new("dep-10", ["BTC/USDT"], LiveConfig())
    with pytest.raises(ValueError, match="BTC/USDT"):
        advance(state, bars, AlwaysLong(), PaperBroker(["BTC/USDT"]))


def test_random_forest_models_travel_in_the_state():
    bars = gbm(260, seed=2, volatility=0.004)
    params = dict(train_window=120, retrain_every=50, min_train_samples=60, n_estimators=5,
                  max_depth=3)
    strategy = create_strategy("random_forest", **params)
    state = warm_up(DeploymentState.new("dep-rf", bars.symbols, LiveConfig(lookback=400),
                                        strategy=strategy), one_bar(bars, 0))
    head = BarSet(bars.timestamps[1:250], bars.symbols, bars.open[1:250], bars.high[1:250],
                  bars.low[1:250], bars.close[1:250], bars.volume[1:250])
    state = warm_up(state, head)
    broker = PaperBroker(bars.symbols)
    state, _ = advance(state, one_bar(bars, 250), strategy, broker)
    saved = json.loads(state.to_json())
    assert saved["model_state"]["strategy"] == "random_forest"
    assert len(saved["model_state"]["models"]) >= 1

    fresh = create_strategy("random_forest", **params)
    restored = DeploymentState.from_json(json.dumps(saved))
    _, _ = advance(restored, one_bar(bars, 251), fresh, broker)
    assert fresh.n_cached_models >= len(saved["model_state"]["models"])


def test_reconciliation_after_a_restart_takes_the_brokers_side():
    bars = make_bars([(100, 101, 99, 100, 1_000)] * 2)
    broker = PaperBroker(bars.symbols, cash=10_000.0)
    state = DeploymentState.new("dep-11", bars.symbols, LiveConfig(cash=1_000.0))
    state, _ = advance(state, bars, AlwaysLong(), broker)
    assert state.positions == {"BTC/USDT": 10.0}
    # while the worker was down someone flattened the account and another deployment placed
    # an order in it
    broker.place_order("someone-else", "BTC/USDT", "sell", 10)
    broker.on_bar(Bar("BTC/USDT", int(bars.timestamps[-1]) + 60 * 10**9, 100, 100, 100, 100,
                      1_000))
    broker.place_order("other-deployment", "BTC/USDT", "buy", 1, "limit", limit_price=50.0)

    fixed, log = reconcile_deployment(state, broker)

    assert fixed.positions == {}
    assert log == ["position BTC/USDT: local 10, broker 0: set to 0"]
    assert "other-deployment" not in fixed.orders


def test_a_synthetic_live_feed_drives_a_paper_deployment():
    clock = ManualClock(T0)
    feed = SyntheticFeed(["BTC/USDT"], 60, seed=9, max_bars=300, clock=clock, volatility=0.003)
    feed.run()
    bars = to_barset(list(feed), ["BTC/USDT"], tick_size=1e-4)
    strategy = create_strategy("sma_cross", fast=5, slow=20)
    broker = PaperBroker(bars.symbols, cash=10_000.0)
    state = DeploymentState.new("dep-12", bars.symbols, LiveConfig(cash=10_000.0))
    state, _, fills, _ = replay(bars, strategy, broker, state)
    expected = run_backtest(bars, strategy, BacktestConfig(cash=10_000.0))
    assert len(fills) == len(expected.fill_records()) > 4
    assert state.equity == pytest.approx(expected.final_equity, rel=1e-12)
    assert clock.now_ns() == T0 + 300 * 60 * 10**9  # 300 minutes passed on the fake clock


def test_a_fee_taken_in_the_base_asset_shrinks_the_position_not_the_cash():
    from tests.live.fakes.binance import API_KEY, SECRET, FakeBinance
    from trading.brokers.ccxt_broker import CcxtBroker, binance_exchange

    fake = FakeBinance(fee_in_received_asset=True).start()
    try:
        broker = CcxtBroker(binance_exchange(API_KEY, SECRET, base_url=fake.url), ["BTC/USDT"])
        bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 2)
        cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.1), whole_units=False)
        state, _ = advance(DeploymentState.new("dep-13", bars.symbols, cfg), bars,
                           AlwaysLong(), broker)
        # 0.1 BTC bought at 50,000; the 0.1 % fee is 0.0001 BTC taken from the coins
        assert state.positions == {"BTC/USDT": pytest.approx(0.0999)}
        assert state.cash == pytest.approx(5_000.0)
        assert broker.positions() == {"BTC/USDT": pytest.approx(0.0999)}
    finally:
        fake.stop()


def test_a_venue_without_stop_orders_halts_rather_than_trade_without_the_stop_loss(
        fake_binance, binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 3)
    cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.01), whole_units=False,
                     take_profit=0.02, stop_loss=0.01)
    state = DeploymentState.new("dep-sl", bars.symbols, cfg)
    halts = []
    for t in range(3):
        state, acts = advance(state, one_bar(bars, t), AlwaysLong(), binance_broker)
        halts += [a.data for a in acts if a.kind == "halt"]

    assert halts == [{"rule": "bracket", "reason": "ccxt takes no stop orders: the stop-loss "
                                                    "of BTC/USDT cannot be placed"}]
    assert state.halted.startswith("bracket:")
    assert state.positions == {"BTC/USDT": 0.01}  # the entry stands; nothing else was sent
    assert [p["type"] for p in fake_binance.calls("POST", "/api/v3/order")] == ["MARKET"]
    assert binance_broker.open_orders() == []


def test_the_fill_cursor_passes_the_shared_accounts_other_trades(fake_binance, binance_broker):
    bars = make_bars([(50_000, 50_100, 49_900, 50_000, 10)] * 3)
    cfg = LiveConfig(cash=10_000.0, sizing=Sizing("fixed-quantity", 0.01), whole_units=False)
    state = DeploymentState.new("dep-shared", bars.symbols, cfg)
    fake_binance.now_ms = 1_700_000_000_000
    state, _ = advance(state, one_bar(bars, 0), AlwaysLong(), binance_broker)  # entry fills
    fake_binance.now_ms += 1_000
    fake_binance.foreign_trades("BTCUSDT", 1200, 50_000.0)  # someone else on the account
    state, _ = advance(state, one_bar(bars, 1), AlwaysLong(), binance_broker)

    assert state.positions == {"BTC/USDT": 0.01}  # only its own fill counts
    assert state.fill_cursor == (1_700_000_000_000 + 1_000) * 10**6  # past the others' trades
    assert len(state.seen_fills) == 1200
    state, _ = advance(state, one_bar(bars, 2), AlwaysLong(), binance_broker)
    # the next step reads from there (the cursor's millisecond again, known by id): nothing
    # is applied twice
    assert state.positions == {"BTC/USDT": 0.01} and state.cash == pytest.approx(9_499.5)

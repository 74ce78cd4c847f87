"""Order types, time in force and fill rules of the event loop (orders.py documents them)."""

from __future__ import annotations

import pytest

from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.orders import F_BAR, F_PRICE, F_QTY, F_SIDE, Order

from .conftest import DAY_NS, Scripted, flat_bars, make_bars


def fills(result) -> list[tuple[int, int, float, float]]:
    return [(int(r[F_BAR]), int(r[F_SIDE]), float(r[F_QTY]), float(r[F_PRICE]))
            for r in result.fills]


def run(bars, script, **cfg):
    cfg.setdefault("cash", 1_000_000.0)
    return run_backtest(bars, Scripted(script), BacktestConfig(**cfg))


# bar rows: (open, high, low, close, volume)
RISING = [(100, 101, 99, 100, 1000), (102, 104, 101, 103, 1000), (103, 106, 102, 105, 1000),
          (105, 107, 104, 106, 1000)]


def test_market_order_fills_at_next_bar_open():
    res = run(make_bars(RISING), {0: [Order("AAA", 1, 10)]})
    # decided at bar 0's close, filled at bar 1's open (102), not at bar 0's close
    assert fills(res) == [(1, 1, 10.0, 102.0)]
    # equity at bar 1's close: cash 1e6 - 1020 + 10 * 103
    assert res.equity[1] == pytest.approx(1_000_000 - 1020 + 1030)


def test_strategy_sees_the_fill_at_the_next_decision():
    strat = Scripted({0: [Order("AAA", 1, 10)]})
    run_backtest(make_bars(RISING), strat, BacktestConfig())
    assert strat.seen_positions[:3] == [0.0, 10.0, 10.0]


def test_buy_limit_fills_at_limit_when_the_low_reaches_it():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 101, 98, 99, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 5, "limit", limit_price=98.5)]})
    assert fills(res) == [(1, 1, 5.0, 98.5)]


def test_buy_limit_gapped_through_fills_at_the_open():
    bars = make_bars([(100, 100, 100, 100, 1000), (97, 99, 96, 98, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 5, "limit", limit_price=98.5)]})
    assert fills(res) == [(1, 1, 5.0, 97.0)]  # open 97 is better than the limit


def test_buy_limit_not_reached_keeps_working_gtc():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 101, 99, 100, 1000),
                      (100, 100, 98, 99, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 5, "limit", limit_price=98.5)]})
    assert fills(res) == [(2, 1, 5.0, 98.5)]  # bar 1's low 99 > 98.5; bar 2 reaches it


def test_sell_limit_fills_at_limit_or_gap_open():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 102, 99, 101, 1000),
                      (104, 105, 103, 104, 1000)])
    script = {0: [Order("AAA", 1, 10)],  # buy at bar 1 open 100
              1: [Order("AAA", -1, 4, "limit", limit_price=103.5)]}
    res = run(bars, script)
    # sell limit 103.5 placed at bar 1; bar 2 opens at 104 above the limit -> fills at 104
    assert fills(res) == [(1, 1, 10.0, 100.0), (2, -1, 4.0, 104.0)]


def test_buy_stop_triggers_at_stop_or_gap_open():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 101.5, 99, 101, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 3, "stop", stop_price=101.0)]})
    assert fills(res) == [(1, 1, 3.0, 101.0)]
    gap = make_bars([(100, 100, 100, 100, 1000), (102, 103, 101.5, 102, 1000)])
    res = run(gap, {0: [Order("AAA", 1, 3, "stop", stop_price=101.0)]})
    assert fills(res) == [(1, 1, 3.0, 102.0)]  # opened above the stop


def test_sell_stop_fills_when_the_low_reaches_it():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000),
                      (99.5, 100, 97, 98, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 10)], 1: [Order("AAA", -1, 10, "stop",
                                                         stop_price=98.0)]})
    assert fills(res)[1] == (2, -1, 10.0, 98.0)


def test_stop_limit_triggered_inside_the_bar_fills_at_the_stop():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 102, 99, 101, 1000)])
    order = Order("AAA", 1, 2, "stop_limit", stop_price=101.0, limit_price=101.5)
    assert fills(run(bars, {0: [order]})) == [(1, 1, 2.0, 101.0)]


def test_stop_limit_with_limit_below_stop_waits_for_the_limit():
    # triggered at 101 in bar 1 (high 102) but the limit 100.5 is below the stop: it then works
    # as a limit order from bar 2, where the low 100 reaches 100.5
    bars = make_bars([(100, 100, 100, 100, 1000), (100.8, 102, 100.7, 101, 1000),
                      (101, 101, 100, 100.5, 1000)])
    order = Order("AAA", 1, 2, "stop_limit", stop_price=101.0, limit_price=100.5)
    assert fills(run(bars, {0: [order]})) == [(2, 1, 2.0, 100.5)]


def test_stop_limit_gapped_above_the_limit_does_not_fill():
    bars = make_bars([(100, 100, 100, 100, 1000), (103, 104, 102.5, 103, 1000)])
    order = Order("AAA", 1, 2, "stop_limit", stop_price=101.0, limit_price=102.0)
    assert fills(run(bars, {0: [order]})) == []


def test_bracket_take_profit_closes_and_cancels_the_stop():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000),
                      (100, 105.5, 99.5, 105, 1000), (105, 106, 80, 90, 1000)])
    entry = Order("AAA", 1, 10, take_profit=0.05, stop_loss=0.02)
    res = run(bars, {0: [entry]})
    # entry at 100 (bar 1); TP limit 105 and SL stop 98 work from bar 2; bar 2's high 105.5
    # hits the TP; the SL is cancelled, so bar 3's crash to 80 sells nothing
    assert fills(res) == [(1, 1, 10.0, 100.0), (2, -1, 10.0, 105.0)]
    assert res.positions == {"AAA": 0.0}


def test_bracket_stop_loss_closes_the_position():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000),
                      (99, 99.5, 97, 97.5, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 10, take_profit=0.05, stop_loss=0.02)]})
    assert fills(res)[-1] == (2, -1, 10.0, 98.0)


def test_day_order_is_cancelled_at_the_next_utc_day():
    rows = [(100, 100, 100, 100, 1000), (100, 100, 99.5, 100, 1000),
            (100, 100, 95, 96, 1000)]
    bars = make_bars(rows, step_ns=DAY_NS // 2)  # bars at 00:00, 12:00, next day 00:00
    day = Order("AAA", 1, 1, "limit", limit_price=97.0, tif="DAY")
    gtc = Order("AAA", 1, 1, "limit", limit_price=97.0, tif="GTC")
    assert fills(run(bars, {0: [day]})) == []  # bar 1 (same day) misses; day over at bar 2
    assert fills(run(bars, {0: [gtc]})) == [(2, 1, 1.0, 97.0)]


def test_ioc_order_gets_exactly_one_bar():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 99.5, 100, 1000),
                      (100, 100, 95, 96, 1000)])
    ioc = Order("AAA", 1, 1, "limit", limit_price=97.0, tif="IOC")
    assert fills(run(bars, {0: [ioc]})) == []


def test_participation_cap_partially_fills_and_the_rest_keeps_working():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 100, 100, 100),
                      (101, 101, 101, 101, 300), (102, 102, 102, 102, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 50)]}, participation=0.1)
    # 10 % of volume per bar: 10 units at bar 1, 30 at bar 2, the last 10 at bar 3
    assert fills(res) == [(1, 1, 10.0, 100.0), (2, 1, 30.0, 101.0), (3, 1, 10.0, 102.0)]


def test_partial_ioc_remainder_is_cancelled():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 100, 100, 100),
                      (101, 101, 101, 101, 1000)])
    res = run(bars, {0: [Order("AAA", 1, 50, tif="IOC")]}, participation=0.1)
    assert fills(res) == [(1, 1, 10.0, 100.0)]


def test_short_selling_needs_allow_short():
    bars = flat_bars(3)
    assert fills(run(bars, {0: [Order("AAA", -1, 5)]})) == []
    res = run(bars, {0: [Order("AAA", -1, 5)]}, allow_short=True)
    assert fills(res) == [(1, -1, 5.0, 100.0)]
    assert res.positions == {"AAA": -5.0}
    assert res.cash == pytest.approx(1_000_000 + 500)


def test_sell_without_shorting_is_capped_at_the_long_position():
    bars = flat_bars(4)
    res = run(bars, {0: [Order("AAA", 1, 5)], 1: [Order("AAA", -1, 8)]})
    assert fills(res) == [(1, 1, 5.0, 100.0), (2, -1, 5.0, 100.0)]


def test_buy_is_limited_by_cash():
    res = run(flat_bars(3), {0: [Order("AAA", 1, 50)]}, cash=1_000.0)
    assert fills(res) == [(1, 1, 10.0, 100.0)]  # 1,000 buys 10 units at 100


def test_close_order_sells_the_whole_position_at_fill_time():
    bars = make_bars(RISING)
    res = run(bars, {0: [Order("AAA", 1, 7)], 1: [Order("AAA", -1, None, close=True)]})
    assert fills(res) == [(1, 1, 7.0, 102.0), (2, -1, 7.0, 103.0)]


def test_orders_on_the_last_bar_never_fill():
    res = run(flat_bars(3), {2: [Order("AAA", 1, 1)]})
    assert fills(res) == []


def test_many_symbols_fill_independently():
    bars = make_bars(RISING, symbols=("AAA", "BBB"))
    res = run(bars, {0: [Order("AAA", 1, 1), Order("BBB", 1, 2, "limit", limit_price=101.5)]})
    got = sorted((r.symbol, r.quantity, r.entry_price) for r in res.trades)
    assert got == [("AAA", 1.0, 102.0), ("BBB", 2.0, 101.5)]


def test_context_shows_no_data_after_the_current_bar():
    seen = []

    class Peek(Scripted):
        def on_bar(self, ctx):
            seen.append((ctx.t, len(ctx.history("close", "AAA")),
                         float(ctx.history("close", "AAA")[-1]), ctx.bar("AAA")["close"]))

    run_backtest(make_bars(RISING), Peek(), BacktestConfig())
    # at bar t the history has t + 1 closes ending with bar t's own close; there is no
    # decision at the last bar (nothing placed there could fill)
    assert seen == [(0, 1, 100.0, 100.0), (1, 2, 103.0, 103.0), (2, 3, 105.0, 105.0)]

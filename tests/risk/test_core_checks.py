"""The rulebook: every pre-trade rule accepting and refusing, with the exact reason text, and the
per-bar kill-switch rules driven through sequences of snapshots."""

import json

import pytest

from risk.core.checks import Rulebook
from risk.core.killswitch import KillSwitch
from risk.core.limits import RiskLimits, merge_limits
from trading.engine.hooks import CheckResult, OrderIntent, PortfolioSnapshot

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
MINUTE = 60_000_000_000

INSTRUMENTS = {
    "AAPL": {"asset_class": "equity", "sector": "technology"},
    "MSFT": {"asset_class": "equity", "sector": "technology"},
    "XOM": {"asset_class": "equity", "sector": "energy"},
    "BTC": {"asset_class": "crypto", "sector": "digital assets"},
    "GME": {"asset_class": "equity", "sector": "consumer"},
}
PRICES = {"AAPL": 100.0, "MSFT": 200.0, "XOM": 50.0, "BTC": 40_000.0, "GME": 20.0}


def snap(positions=None, equity=100_000.0, *, ts=T0, day_start=100_000.0, peak=100_000.0):
    return PortfolioSnapshot(
        timestamp=ts,
        cash=equity,
        equity=equity,
        positions=dict(positions or {}),
        prices=dict(PRICES),
        day_start_equity=day_start,
        peak_equity=peak,
    )


def buy(symbol, quantity, ts=T0):
    return OrderIntent(symbol, 1, quantity, PRICES[symbol], ts)


def sell(symbol, quantity, ts=T0):
    return OrderIntent(symbol, -1, quantity, PRICES[symbol], ts)


def book(**limits):
    return Rulebook(RiskLimits(**limits), INSTRUMENTS)


def reason(result: CheckResult | None) -> str | None:
    return None if result is None else result.reason


def test_max_order_notional_names_the_level_that_set_it():
    merged = merge_limits(
        RiskLimits(max_order_notional=10_000), RiskLimits(max_order_notional=50_000)
    )
    rules = Rulebook(merged, INSTRUMENTS)
    # 100 x 100.00 = 10,000.00: exactly at the limit passes.
    assert rules.check(buy("AAPL", 100), snap()) is None
    # 125 x 100.00 = 12,500.00.
    result = rules.check(buy("AAPL", 125), snap())
    assert result == CheckResult(
        "max_order_notional",
        "max_order_notional: order notional 12,500.00 exceeds the limit 10,000.00 (organisation)",
    )


def test_restricted_symbols_refuse_new_exposure_but_let_a_position_be_closed():
    merged = merge_limits(
        RiskLimits(restricted_symbols=frozenset({"BTC"})),
        RiskLimits(),
        RiskLimits(restricted_symbols=frozenset({"GME"})),
    )
    rules = Rulebook(merged, INSTRUMENTS)
    assert reason(rules.check(buy("GME", 10), snap())) == (
        "restricted_symbols: GME is restricted (deployment)"
    )
    assert reason(rules.check(sell("BTC", 1), snap())) == (
        "restricted_symbols: BTC is restricted (organisation)"
    )
    assert rules.check(sell("GME", 10), snap({"GME": 10})) is None
    assert rules.check(buy("AAPL", 10), snap()) is None


def test_max_position_units():
    merged = merge_limits(RiskLimits(), RiskLimits(max_position_units=1_000))
    rules = Rulebook(merged, INSTRUMENTS)
    assert rules.check(buy("AAPL", 100), snap({"AAPL": 900})) is None
    # 900 + 200 = 1,100 units.
    assert reason(rules.check(buy("AAPL", 200), snap({"AAPL": 900}))) == (
        "max_position_units: position in AAPL after the order 1,100 units exceeds the limit "
        "1,000 (strategy)"
    )


def test_max_position_notional():
    rules = book(max_position_notional=50_000)
    assert rules.check(buy("AAPL", 100), snap({"AAPL": 400})) is None
    # (400 + 150) x 100.00 = 55,000.00.
    assert reason(rules.check(buy("AAPL", 150), snap({"AAPL": 400}))) == (
        "max_position_notional: position in AAPL after the order 55,000.00 exceeds the limit "
        "50,000.00"
    )


def test_max_position_fraction_applies_to_shorts_too():
    rules = book(max_position_fraction=0.25)
    assert rules.check(sell("AAPL", 250), snap()) is None
    # 300 x 100.00 = 30,000.00 = 30 % of 100,000.00.
    assert reason(rules.check(sell("AAPL", 300), snap())) == (
        "max_position_fraction: position in AAPL after the order 30,000.00 is 30.00% of equity "
        "100,000.00, above the limit 25.00%"
    )


def test_asset_limits_per_symbol_with_a_default():
    merged = merge_limits(RiskLimits(asset_limits={"BTC": 0.1, "*": 0.3}))
    rules = Rulebook(merged, INSTRUMENTS)
    assert rules.check(buy("BTC", 0.25), snap()) is None  # 10,000 = 10 %
    # 0.3 x 40,000.00 = 12,000.00 = 12 %.
    assert reason(rules.check(buy("BTC", 0.3), snap())) == (
        "asset_limits: exposure to BTC after the order 12,000.00 is 12.00% of equity "
        "100,000.00, above the limit 10.00% (organisation)"
    )
    # AAPL falls under "*": 350 x 100.00 = 35,000.00.
    assert reason(rules.check(buy("AAPL", 350), snap())) == (
        "asset_limits: exposure to AAPL after the order 35,000.00 is 35.00% of equity "
        "100,000.00, above the limit 30.00% (organisation)"
    )


def test_asset_class_limits_add_up_the_class():
    rules = book(asset_class_limits={"crypto": 0.15})
    held = {"BTC": 0.25, "AAPL": 500}
    assert rules.check(buy("BTC", 0.1), snap(held)) is None  # 10,000 + 4,000 = 14 %
    # 0.25 + 0.2 = 0.45 BTC x 40,000.00 = 18,000.00; AAPL is another class.
    assert reason(rules.check(buy("BTC", 0.2), snap(held))) == (
        "asset_class_limits: exposure to asset class crypto after the order 18,000.00 is "
        "18.00% of equity 100,000.00, above the limit 15.00%"
    )


def test_sector_limits_count_long_and_short_positions_of_the_sector():
    rules = book(sector_limits={"technology": 0.5})
    held = {"MSFT": -150, "XOM": 400}
    assert rules.check(buy("AAPL", 200), snap(held)) is None  # 30,000 + 20,000 = 50 %
    # |-150 x 200.00| + 250 x 100.00 = 55,000.00; XOM (energy) does not count.
    assert reason(rules.check(buy("AAPL", 250), snap(held))) == (
        "sector_limits: exposure to sector technology after the order 55,000.00 is 55.00% of "
        "equity 100,000.00, above the limit 50.00%"
    )


def test_max_gross_exposure_and_notional():
    held = {"AAPL": 500, "MSFT": -200}  # 50,000 + 40,000 = 90,000 gross
    assert book(max_gross_exposure=1.0).check(buy("XOM", 200), snap(held)) is None
    # 90,000 + 300 x 50.00 = 105,000.00.
    assert reason(book(max_gross_exposure=1.0).check(buy("XOM", 300), snap(held))) == (
        "max_gross_exposure: gross exposure after the order 105,000.00 is 105.00% of equity "
        "100,000.00, above the limit 100.00%"
    )
    assert reason(book(max_gross_notional=100_000).check(buy("XOM", 300), snap(held))) == (
        "max_gross_notional: gross exposure after the order 105,000.00 exceeds the limit 100,000.00"
    )


def test_max_net_exposure_both_ways():
    held = {"AAPL": 500, "MSFT": -100}  # 50,000 - 20,000 = 30,000 net
    rules = book(max_net_exposure=0.3)
    assert rules.check(buy("XOM", 0.0001), snap(held)) is not None  # already at the limit
    assert rules.check(sell("XOM", 100), snap(held)) is None  # net 25,000
    # 30,000 + 100 x 50.00 = 35,000.00.
    assert reason(rules.check(buy("XOM", 100), snap(held))) == (
        "max_net_exposure: net exposure after the order 35,000.00 is 35.00% of equity "
        "100,000.00, above the limit 30.00%"
    )
    short = {"AAPL": -500, "MSFT": 100}
    assert reason(rules.check(sell("XOM", 100), snap(short))) == (
        "max_net_exposure: net exposure after the order -35,000.00 is -35.00% of equity "
        "100,000.00, above the limit 30.00%"
    )
    assert reason(book(max_net_notional=30_000).check(buy("XOM", 100), snap(held))) == (
        "max_net_notional: net exposure after the order 35,000.00 exceeds the limit 30,000.00 "
        "in absolute value"
    )


def test_reducing_orders_pass_when_exposure_limits_are_exceeded():
    rules = book(max_gross_exposure=1.0, max_position_units=400)
    over = {"AAPL": 800, "MSFT": 300}  # 80,000 + 60,000 = 140 % gross, 800 units of AAPL
    assert rules.check(sell("AAPL", 100), snap(over)) is None
    assert rules.check(sell("AAPL", 800), snap(over)) is None
    assert rules.check(buy("AAPL", 1), snap(over)).rule == "max_position_units"
    assert rules.check(buy("XOM", 1), snap(over)).rule == "max_gross_exposure"


def test_an_order_that_flips_the_position_is_checked_as_new_exposure():
    rules = book(max_position_units=400)
    # Long 500, sell 1,000: short 500 afterwards, beyond 400.
    assert reason(rules.check(sell("AAPL", 1_000), snap({"AAPL": 500}))) == (
        "max_position_units: position in AAPL after the order -500 units exceeds the limit 400"
    )


def test_max_orders_per_minute_counts_accepted_orders_in_a_rolling_minute():
    rules = book(max_orders_per_minute=3, max_order_notional=5_000)
    second = 1_000_000_000
    assert rules.check(buy("AAPL", 1, T0), snap()) is None
    assert rules.check(buy("AAPL", 1, T0 + 10 * second), snap()) is None
    # A refused order does not use up the allowance.
    assert rules.check(buy("AAPL", 100, T0 + 15 * second), snap()).rule == "max_order_notional"
    assert rules.check(buy("AAPL", 1, T0 + 20 * second), snap()) is None
    assert reason(rules.check(buy("AAPL", 1, T0 + 30 * second), snap())) == (
        "max_orders_per_minute: 3 orders accepted in the last 60 s, the limit is 3 per minute"
    )
    # 60 s after the first order it leaves the window.
    assert rules.check(buy("AAPL", 1, T0 + 60 * second), snap()) is None


def test_fraction_limits_refuse_new_exposure_when_equity_is_not_positive():
    result = book(max_gross_exposure=2.0).check(buy("AAPL", 1), snap(equity=-500.0))
    assert reason(result) == (
        "equity: equity -500.00 is not positive, so no order that adds exposure can meet the "
        "limits set as a fraction of equity"
    )


def test_an_open_position_without_a_price_cannot_be_valued():
    s = snap({"AAPL": 10, "TSLA": 5})
    assert reason(book(max_gross_notional=1e9).check(buy("XOM", 1), s)) == (
        "missing_price: no price for the open position in TSLA, so exposure cannot be valued"
    )


def test_an_open_position_with_a_nan_price_is_not_valued_as_zero():
    s = snap({"AAPL": 10})
    s.prices["AAPL"] = float("nan")
    assert book(max_gross_notional=1e9).check(buy("XOM", 1), s).rule == "missing_price"


def test_malformed_orders_are_refused():
    bad = OrderIntent("AAPL", 1, -5, 100.0, T0)
    assert book().check(bad, snap()).rule == "invalid_order"
    assert book().check(OrderIntent("AAPL", 2, 5, 100.0, T0), snap()).rule == "invalid_order"
    assert book().check(OrderIntent("AAPL", 1, 5, float("nan"), T0), snap()).rule == (
        "invalid_order"
    )


def test_a_rulebook_without_limits_accepts_everything():
    assert book().check(buy("BTC", 100), snap()) is None
    assert book().on_bar(snap(equity=1.0)) is None


def _drive(rules, equities):
    """One snapshot per minute with the engine's running peak; returns on_bar's answers."""
    peak = 0.0
    answers = []
    for i, equity in enumerate(equities):
        peak = max(peak, equity)
        answers.append(
            rules.on_bar(
                snap({"AAPL": 500}, equity, ts=T0 + i * MINUTE, day_start=equities[0], peak=peak)
            )
        )
    return answers


def test_drawdown_breach_halts_at_that_bar_exactly_once_and_refuses_later_orders():
    merged = merge_limits(RiskLimits(), RiskLimits(), RiskLimits(max_drawdown=0.10))
    rules = Rulebook(merged, INSTRUMENTS)
    # Peak 105,000 at bar 1; drawdowns 6.67 %, 9.52 %, then 11,000 / 105,000 = 10.48 % at bar 4.
    answers = _drive(rules, [100_000, 105_000, 98_000, 95_000, 94_000, 93_000, 99_000])
    assert answers[:4] == [None, None, None, None]
    halt_reason = (
        "max_drawdown: drawdown 10.48% (equity 94,000.00 against the peak 105,000.00) exceeds "
        "the limit 10.00% (deployment)"
    )
    assert answers[4] == CheckResult("max_drawdown", halt_reason, halt=True)
    assert answers[5:] == [None, None]
    assert rules.halted
    assert rules.kill_switch.tripped_at == T0 + 4 * MINUTE
    later = snap({"AAPL": 500}, 99_000, ts=T0 + 7 * MINUTE)
    expected = CheckResult(
        "halted",
        "halted: trading is stopped by the deployment kill switch since 2023-11-14 22:17:20 UTC: "
        + halt_reason,
    )
    assert rules.check(buy("XOM", 1, T0 + 7 * MINUTE), later) == expected
    # Without flatten_on_halt even closing orders wait for a re-arm.
    assert rules.check(sell("AAPL", 500, T0 + 7 * MINUTE), later) == expected


def test_flatten_on_halt_lets_only_reducing_orders_through():
    rules = book(max_drawdown=0.05, flatten_on_halt=True, max_order_notional=1_000)
    assert rules.flatten_on_halt
    assert _drive(rules, [100_000, 94_000])[1].halt
    s = snap({"AAPL": 500}, 94_000)
    # Closing 50,000.00 of AAPL passes even above max_order_notional: getting out comes first.
    assert rules.check(sell("AAPL", 500), s) is None
    assert rules.check(buy("AAPL", 1), s).rule == "halted"
    assert rules.check(sell("AAPL", 501), s).rule == "halted"  # would flip to a short


def test_daily_loss_fraction_and_amount():
    rules = book(daily_loss_fraction=0.02)
    assert rules.on_bar(snap(equity=98_500.0)) is None
    assert rules.on_bar(snap(equity=97_900.0)) == CheckResult(
        "daily_loss_fraction",
        "daily_loss_fraction: loss today 2,100.00 is 2.10% of the day-start equity 100,000.00, "
        "above the limit 2.00%",
        halt=True,
    )
    rules = book(daily_loss_amount=1_500)
    assert rules.on_bar(snap(equity=98_500.0)) is None  # exactly 1,500.00 lost
    assert reason(rules.on_bar(snap(equity=97_900.0))) == (
        "daily_loss_amount: loss today 2,100.00 (equity 97,900.00 against 100,000.00 at the "
        "start of the day) exceeds the limit 1,500.00"
    )


def test_the_organisation_emergency_switch_stops_every_rulebook_sharing_it():
    org = KillSwitch(scope="organisation", name="acme")
    first = Rulebook(RiskLimits(), INSTRUMENTS, emergency_switches=[org])
    second = Rulebook(RiskLimits(), INSTRUMENTS, emergency_switches=[org])
    assert first.check(buy("AAPL", 1), snap()) is None
    org.trip(reason="market-wide halt", at=T0 + MINUTE, actor="bob")
    text = (
        "halted: trading is stopped by the organisation kill switch since 2023-11-14 22:14:20 "
        "UTC: market-wide halt"
    )
    # The first order after the trip halts the engine at once; later ones are plain refusals.
    assert first.check(buy("AAPL", 1), snap()) == CheckResult("halted", text, halt=True)
    assert first.check(buy("AAPL", 1), snap()) == CheckResult("halted", text)
    assert first.on_bar(snap()) is None
    # A rulebook with no order in between learns of it at its next bar, once.
    assert second.on_bar(snap()) == CheckResult("halted", text, halt=True)
    assert second.on_bar(snap()) is None
    assert second.check(buy("AAPL", 1), snap()) == CheckResult("halted", text)
    assert not first.kill_switch.tripped


def test_after_a_rearm_losses_are_measured_from_the_rearm_equity():
    rules = book(max_drawdown=0.10)
    assert _drive(rules, [100_000, 89_000])[1].halt
    rules.rearm(actor="alice", reason="reviewed", at=T0 + 2 * MINUTE, equity=89_000)
    assert not rules.halted
    # The engine's peak is still 100,000, but 88,000 is only 1.12 % below the re-arm equity.
    s = snap({"AAPL": 500}, 88_000, ts=T0 + 3 * MINUTE, peak=100_000)
    assert rules.on_bar(s) is None
    assert rules.check(buy("XOM", 1, T0 + 3 * MINUTE), s) is None
    # A new 10 % fall from the re-arm level trips it again.
    s = snap({"AAPL": 500}, 80_000, ts=T0 + 4 * MINUTE, peak=100_000)
    assert rules.on_bar(s).rule == "max_drawdown"


def test_utilisation_reports_current_value_limit_and_fraction_used():
    merged = merge_limits(
        RiskLimits(max_gross_exposure=2.0, sector_limits={"technology": 0.5}),
        RiskLimits(max_position_units=1_000, max_drawdown=0.2, max_orders_per_minute=10),
    )
    rules = Rulebook(merged, INSTRUMENTS)
    rules.check(buy("AAPL", 1, T0), snap())
    s = snap({"AAPL": 300, "MSFT": -50, "XOM": 200}, 90_000, ts=T0 + 1, peak=120_000)
    rows = {(u.rule, u.subject): u for u in rules.utilisation(s)}
    # Gross 30,000 + 10,000 + 10,000 = 50,000 over equity 90,000 = 0.5556 of a 2.0 limit.
    gross = rows[("max_gross_exposure", "")]
    assert gross.current == pytest.approx(50_000 / 90_000)
    assert gross.fraction == pytest.approx(50_000 / 90_000 / 2.0)
    assert gross.level == "organisation"
    # Technology = AAPL 30,000 + MSFT 10,000 = 40,000 / 90,000 = 0.4444 of 0.5.
    assert rows[("sector_limits", "technology")].fraction == pytest.approx(40_000 / 90_000 / 0.5)
    assert rows[("max_position_units", "AAPL")].fraction == pytest.approx(0.3)
    # Drawdown (120,000 - 90,000) / 120,000 = 25 % of a 20 % limit: 125 % used.
    assert rows[("max_drawdown", "")].fraction == pytest.approx(1.25)
    assert rows[("max_orders_per_minute", "")].current == 1
    assert rows[("max_drawdown", "")].level == "strategy"


def test_a_halt_survives_a_restart_between_live_steps_and_is_reported_once():
    rules = book(max_drawdown=0.10)
    assert _drive(rules, [100_000, 89_000])[1].halt
    saved = json.loads(json.dumps(rules.state()))

    restored = book(max_drawdown=0.10)
    restored.restore(saved)
    assert restored.halted
    assert restored.check(buy("AAPL", 1, T0), snap()).rule == "halted"
    assert restored.on_bar(snap(equity=88_000.0, ts=T0 + 2 * MINUTE)) is None
    restored.rearm(actor="alice", reason="reviewed", at=T0 + 3 * MINUTE, equity=88_000)
    assert restored.check(buy("AAPL", 1, T0 + 3 * MINUTE), snap()) is None


def test_the_order_rate_survives_a_restart():
    rules = book(max_orders_per_minute=2)
    assert rules.check(buy("AAPL", 1, T0), snap()) is None
    assert rules.check(buy("AAPL", 1, T0 + 1), snap()) is None
    restored = book(max_orders_per_minute=2)
    restored.restore(json.loads(json.dumps(rules.state())))
    assert restored.check(buy("AAPL", 1, T0 + 2), snap()).rule == "max_orders_per_minute"
    assert book(max_orders_per_minute=2).check(buy("AAPL", 1, T0 + 2), snap()) is None

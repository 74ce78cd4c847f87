"""Commission, slippage and sizing models, checked on hand-computed fills."""

from __future__ import annotations

import math

import pytest

from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.costs import (
    Commission,
    Slippage,
    bps_commission,
    fixed_commission,
    maker_taker_commission,
    per_unit_commission,
)
from trading.engine.orders import F_FEE, F_MAKER, F_PRICE, F_QTY, Order
from trading.engine.sizing import Sizing, all_cash_quantity
from trading.engine.types import Signals, VectorStrategy

from .conftest import Scripted, flat_bars, make_bars


def one_fill(script, bars=None, **cfg):
    cfg.setdefault("cash", 100_000.0)
    res = run_backtest(bars or flat_bars(3), Scripted(script), BacktestConfig(**cfg))
    assert len(res.fills) >= 1
    return res, res.fills[0]


def test_bps_commission_is_a_share_of_notional():
    res, f = one_fill({0: [Order("AAA", 1, 10)]}, commission=bps_commission(10))
    assert f[F_FEE] == pytest.approx(1.0)  # 10 * 100 * 0.001
    assert res.cash == pytest.approx(100_000 - 1000 - 1.0)


def test_per_unit_commission_has_a_minimum():
    _, small = one_fill({0: [Order("AAA", 1, 10)]}, commission=per_unit_commission(0.005, 1.0))
    assert small[F_FEE] == pytest.approx(1.0)  # 10 * 0.005 = 0.05, raised to the minimum 1.0
    _, big = one_fill({0: [Order("AAA", 1, 900)]}, commission=per_unit_commission(0.005, 1.0))
    assert big[F_FEE] == pytest.approx(4.5)  # 900 * 0.005


def test_fixed_commission_per_fill():
    _, f = one_fill({0: [Order("AAA", 1, 3)]}, commission=fixed_commission(2.5))
    assert f[F_FEE] == 2.5


def test_maker_taker_rates_depend_on_the_order_type():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 99, 100, 1000)])
    fee = maker_taker_commission(maker_bps=-1, taker_bps=5)
    _, taker = one_fill({0: [Order("AAA", 1, 10)]}, bars, commission=fee)
    _, maker = one_fill({0: [Order("AAA", 1, 10, "limit", limit_price=99.5)]}, bars,
                        commission=fee)
    assert taker[F_FEE] == pytest.approx(0.5) and taker[F_MAKER] == 0  # 1000 * 5 bps
    assert maker[F_FEE] == pytest.approx(-0.0995) and maker[F_MAKER] == 1  # 995 * -1 bps rebate


def test_fixed_bps_slippage_moves_taker_fills_against_the_trader():
    _, buy = one_fill({0: [Order("AAA", 1, 10)]}, slippage=Slippage(bps=10))
    assert buy[F_PRICE] == pytest.approx(100.1)
    res, _ = one_fill({0: [Order("AAA", 1, 10)], 1: [Order("AAA", -1, 10)]},
                      slippage=Slippage(bps=10))
    assert res.fills[1][F_PRICE] == pytest.approx(99.9)


def test_limit_fills_are_not_slipped():
    bars = make_bars([(100, 100, 100, 100, 1000), (100, 100, 99, 100, 1000)])
    _, f = one_fill({0: [Order("AAA", 1, 10, "limit", limit_price=99.5)]}, bars,
                    slippage=Slippage(bps=50))
    assert f[F_PRICE] == 99.5


def test_volume_share_impact():
    # 100 units of a 1,000-unit bar: participation 0.1, impact 0.01 -> +0.1 % on the price
    _, f = one_fill({0: [Order("AAA", 1, 100)]}, slippage=Slippage(impact=0.01))
    assert f[F_PRICE] == pytest.approx(100.1)


def test_commission_validation():
    with pytest.raises(ValueError):
        Commission(rate=-0.1)
    assert Commission(rate=0.001).fee(10, 100.0) == pytest.approx(1.0)


class _EnterOnce(VectorStrategy):
    name = "enter_once"

    def signals(self, bars):
        import numpy as np

        e = np.zeros((bars.n_bars, bars.n_symbols), bool)
        e[0] = True
        return Signals(entries=e, exits=np.zeros_like(e))


def _entry_qty(sizing: Sizing, whole: bool = True, cash: float = 10_000.0, fee: float = 0.0):
    bars = make_bars([(100, 100, 100, 100, 1e6), (30, 30, 30, 30, 1e6), (30, 30, 30, 30, 1e6)])
    res = run_backtest(bars, _EnterOnce(), BacktestConfig(cash=cash, sizing=sizing,
                                                          whole_units=whole,
                                                          commission=bps_commission(fee)))
    return float(res.fills[0][F_QTY])


def test_sizing_fixed_quantity_notional_and_percent():
    assert _entry_qty(Sizing("fixed-quantity", 7)) == 7
    assert _entry_qty(Sizing("fixed-notional", 1000)) == 33  # floor(1000 / 30)
    assert _entry_qty(Sizing("fixed-notional", 1000), whole=False) == pytest.approx(1000 / 30)
    assert _entry_qty(Sizing("percent-equity", 0.5)) == 166  # floor(5000 / 30)


def test_all_cash_sizing_uses_the_reference_formula():
    # q = floor((cash / (1 + fee)) / price) at the fill price (next open, 30)
    q = _entry_qty(Sizing("all-cash"), cash=10_000.0, fee=10)
    assert q == math.floor((10_000.0 / 1.001) / 30.0) == 333
    assert all_cash_quantity(10_000.0, 30.0, 0.001, True) == 333


def test_unknown_sizing_mode_is_refused():
    with pytest.raises(ValueError, match="unknown sizing mode"):
        Sizing("everything")


def test_unaffordable_minimum_fee_means_no_fill():
    # 5 of cash cannot pay a 10 minimum fee: nothing is bought, in whole or fractional units
    for whole in (True, False):
        res = run_backtest(flat_bars(3), Scripted({0: [Order("AAA", 1, 1)]}),
                           BacktestConfig(cash=5.0, whole_units=whole,
                                          commission=per_unit_commission(0.01, 10.0)))
        assert len(res.fills) == 0 and res.cash == 5.0


def test_fractional_buy_is_cut_to_what_cash_pays_for():
    res = run_backtest(flat_bars(3), Scripted({0: [Order("AAA", 1, 50)]}),
                       BacktestConfig(cash=1_000.0, whole_units=False,
                                      commission=bps_commission(10)))
    # q * 100 * 1.001 <= 1000  ->  q = 1000 / 100.1
    assert res.fills[0][F_QTY] == pytest.approx(1000 / 100.1)
    assert 0 <= res.cash < 1e-6

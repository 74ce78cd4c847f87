"""Property tests of the accounting: whatever orders are placed, the books balance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.costs import Commission, Slippage
from trading.engine.orders import F_QTY, F_SIDE, F_SYM, Order
from trading.engine.portfolio import cash_flows
from trading.engine.synthetic import correlated_basket

from .conftest import Scripted

BARS = correlated_basket(60, seed=1, n_assets=2, volatility=0.01)

order = st.builds(
    lambda sym, side, qty, kind, offset, tif: Order(
        sym, side, qty, kind,
        limit_price=100 * (1 + offset) if kind in ("limit", "stop_limit") else None,
        stop_price=100 * (1 - offset) if kind in ("stop", "stop_limit") else None, tif=tif),
    st.sampled_from(BARS.symbols), st.sampled_from([1, -1]),
    st.floats(min_value=1, max_value=500), st.sampled_from(["market", "limit", "stop",
                                                             "stop_limit"]),
    st.floats(min_value=-0.03, max_value=0.03), st.sampled_from(["GTC", "DAY", "IOC"]))
script = st.dictionaries(st.integers(0, 58), st.lists(order, max_size=3), max_size=25)
config = st.builds(
    lambda short, whole, bps, unit, cap, slip: BacktestConfig(
        cash=50_000, allow_short=short, whole_units=whole,
        commission=Commission(rate=bps / 1e4, per_unit=unit), participation=cap,
        slippage=Slippage(bps=slip)),
    st.booleans(), st.booleans(), st.floats(0, 50), st.floats(0, 0.01),
    st.sampled_from([0.0, 0.05, 0.5]), st.floats(0, 20))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=script, cfg=config)
def test_cash_positions_and_pnl_reconcile_with_the_fills(script, cfg):
    res = run_backtest(BARS, Scripted(script), cfg)
    fills = res.fills
    # cash = initial cash + the sum of the fills' cash flows
    assert res.cash == pytest.approx(50_000 + cash_flows(fills).sum(), abs=1e-6)
    # positions = the signed sum of the fills per symbol
    for j, sym in enumerate(BARS.symbols):
        mine = fills[fills[:, F_SYM] == j]
        assert res.positions[sym] == pytest.approx((mine[:, F_SIDE] * mine[:, F_QTY]).sum(),
                                                   abs=1e-9)
    # final equity = cash + positions at the last close
    marked = sum(res.positions[s] * BARS.close[-1, j] for j, s in enumerate(BARS.symbols))
    assert res.final_equity == pytest.approx(res.cash + marked, abs=1e-6)
    # P&L of all round trips (open ones marked to market) = the change in equity
    assert sum(t.pnl for t in res.trades) == pytest.approx(res.final_equity - 50_000, abs=1e-6)
    if not cfg.allow_short:
        assert min(res.positions.values()) >= 0
    if cfg.whole_units:
        assert np.all(fills[:, F_QTY] == np.floor(fills[:, F_QTY]))

"""Time- and money-weighted returns, checked against hand-derived examples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reporting.performance import (
    CashFlow,
    ReturnInputError,
    irr,
    money_weighted_return,
    time_weighted_return,
)

D = Decimal


def test_twr_links_sub_period_returns_and_ignores_a_deposit():
    # Day 1: 100 -> 110 (+10%). Day 2: a deposit of 50 arrives at the start of the day, then the
    # market falls 5%: (110 + 50) * 0.95 = 152. TWR = 1.10 * 0.95 - 1 = 0.045 (the deposit does
    # not count as performance).
    vals = [(dt.date(2024, 1, 1), D("100")), (dt.date(2024, 1, 2), D("110")),
            (dt.date(2024, 1, 3), D("152"))]
    res = time_weighted_return(vals, [CashFlow(dt.date(2024, 1, 3), D("50"))])
    assert res["twr"] == D("0.04500000")
    assert [r for _, r in res["sub_periods"]] == [D("0.10000000"), D("-0.05000000")]
    assert res["annualised"] is None  # shorter than a year: never annualised


def test_twr_with_a_withdrawal():
    # 200 -> 220 (+10%); withdraw 20 at the start of day 2, then +5%: 200 * 1.05 = 210.
    # TWR = 1.10 * 1.05 - 1 = 0.155.
    vals = {dt.date(2024, 3, 1): D("200"), dt.date(2024, 3, 2): D("220"),
            dt.date(2024, 3, 3): D("210")}
    res = time_weighted_return(vals, [CashFlow(dt.date(2024, 3, 3), D("-20"))])
    assert res["twr"] == D("0.15500000")


def test_twr_refuses_a_flow_without_a_valuation():
    vals = [(dt.date(2024, 1, 1), D("100")), (dt.date(2024, 1, 3), D("110"))]
    with pytest.raises(ReturnInputError, match="no valuation"):
        time_weighted_return(vals, [CashFlow(dt.date(2024, 1, 2), D("10"))])


def test_irr_of_a_known_cash_flow_series():
    # -100 now, -100 in a year, +231 in two years: 100 x^2 + 100 x = 231 with x = 1 + r gives
    # x = (-1 + sqrt(1 + 9.24)) / 2 = 1.1, so r = 10%. 2021 and 2022 have 365 days each.
    flows = [(dt.date(2021, 1, 1), D("-100")), (dt.date(2022, 1, 1), D("-100")),
             (dt.date(2023, 1, 1), D("231"))]
    assert irr(flows) == D("0.10000000")


def test_irr_needs_money_in_and_out():
    with pytest.raises(ReturnInputError):
        irr([(dt.date(2021, 1, 1), D("-100")), (dt.date(2022, 1, 1), D("-5"))])


def test_mwr_differs_from_twr_when_money_arrives_before_a_loss():
    # The +10% / deposit / -5% sequence over one year-long gap each: start 100 on 2021-01-01,
    # worth 110 on 2022-01-01 when 50 is deposited, then -5%: 152 on 2023-01-01.
    # TWR = 4.5% over two years. MWR solves 100 x^2 + 50 x = 152: x = (-50 + sqrt(2500 + 60800))
    # / 200 = (-50 + 251.59491) / 200 = 1.00797456, i.e. 0.797% a year: lower than the TWR's
    # 2.23% a year, because more money was invested in the losing year.
    flows = [CashFlow(dt.date(2022, 1, 1), D("50"))]
    res = money_weighted_return(start=dt.date(2021, 1, 1), end=dt.date(2023, 1, 1),
                                opening_value=D("100"), closing_value=D("152"), flows=flows)
    assert res["annualised"] == pytest.approx(D("0.00797456"), abs=D("0.00000002"))
    # For the whole two-year period (not annualised): x^2 - 1 = 0.0160127.
    assert res["mwr"] == pytest.approx(D("0.0160127"), abs=D("0.0000002"))
    # TWR: a flow funds the sub-period that ENDS on its date (valued daily, that is "arrives at
    # the start of the day"), so with yearly valuations the deposit is dated at the second one.
    twr = time_weighted_return([(dt.date(2021, 1, 1), D("100")), (dt.date(2022, 1, 1), D("110")),
                                (dt.date(2023, 1, 1), D("152"))],
                               [CashFlow(dt.date(2023, 1, 1), D("50"))])
    assert twr["twr"] == D("0.04500000")
    assert twr["annualised"] == pytest.approx(D("0.0222524"), abs=D("0.0000002"))

"""Lot matching: each method on hand-derived numbers, fees, penny allocation, holding periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reporting.tax import TaxConfigError, TaxInputError, match_lots, parse_trades_text, us_report
from reporting.tax.model import is_long_term, one_year_mark

HEADER = "id,date,symbol,side,quantity,price,fee,lot,asset_class\n"

# Three buys of 10 at 100, 120, 110 and one sell of 15 at 130 (proceeds 1,950). All sales are at
# a gain, so wash sales play no part.
THREE_BUYS = (
    "b1,2024-01-02,X,buy,10,100,,,{cls}\n"
    "b2,2024-02-01,X,buy,10,120,,,{cls}\n"
    "b3,2024-03-01,X,buy,10,110,,,{cls}\n"
    "s1,2024-06-03,X,sell,15,130,,,{cls}\n"
)


def trades(body: str):
    return parse_trades_text(HEADER + body)


def sale(report, sale_id: str = "s1"):
    rows = [r for r in report.rows if r.sale_id == sale_id]
    assert len(rows) == 1
    return rows[0]


def consumed(row) -> list[tuple[str, Decimal]]:
    return [(line.lot, line.quantity) for line in row.lots]


def test_fifo_takes_the_earliest_lots_first():
    # 10 of b1 (1,000) + 5 of b2 (600) = 1,600; gain 1,950 − 1,600 = 350.
    report = us_report(trades(THREE_BUYS.format(cls="")), 2024, method="fifo")
    row = sale(report)
    assert consumed(row) == [("b1", 10), ("b2", 5)]
    assert (row.cost_basis, row.gain) == (Decimal("1600.00"), Decimal("350.00"))
    assert row.date_acquired is None  # two acquisition dates: VARIOUS
    assert [(o.quantity, o.cost_basis) for o in report.open_lots] == [
        (5, Decimal("600.00")), (10, Decimal("1100.00"))]


def test_lifo_takes_the_latest_lots_first():
    # 10 of b3 (1,100) + 5 of b2 (600) = 1,700; gain 250.
    row = sale(us_report(trades(THREE_BUYS.format(cls="")), 2024, method="lifo"))
    assert consumed(row) == [("b3", 10), ("b2", 5)]
    assert (row.cost_basis, row.gain) == (Decimal("1700.00"), Decimal("250.00"))


def test_hifo_takes_the_highest_unit_basis_first():
    # 10 of b2 (120 each: 1,200) + 5 of b3 (110 each: 550) = 1,750; gain 200.
    row = sale(us_report(trades(THREE_BUYS.format(cls="")), 2024, method="hifo"))
    assert consumed(row) == [("b2", 10), ("b3", 5)]
    assert (row.cost_basis, row.gain) == (Decimal("1750.00"), Decimal("200.00"))


def test_hifo_uses_the_basis_after_wash_sale_adjustments():
    # r1 bought at 9 absorbs a $30 disallowed loss (10 units): adjusted 12/unit, above b2's 11,
    # so the later HIFO sale takes r1 first. (b2 is bought outside s1's 30-day window, so it is
    # not the replacement.)
    report = us_report(trades(
        "b2,2023-12-01,X,buy,10,11,,,\n"
        "b1,2024-01-02,X,buy,10,13,,,\n"
        "s1,2024-02-01,X,sell,10,10,,b1,\n"
        "r1,2024-02-05,X,buy,10,9,,,\n"
        "s2,2024-06-03,X,sell,10,20,,,\n"), 2024, method="hifo")
    assert consumed(sale(report, "s2")) == [("r1", 10)]
    assert sale(report, "s2").cost_basis == Decimal("120.00")


def test_hifo_after_a_held_lot_becomes_a_replacement():
    # r1 (10 at 12) is held when b1 is sold at a $30 loss, so r1 is the replacement: adjusted
    # 150 → 15/unit. A HIFO sale of 20 takes r1's 10 (15/unit) and then b2's 10 (11/unit):
    # basis 150 + 110 = 260.
    report = us_report(trades(
        "b2,2023-12-01,X,buy,10,11,,,\n"
        "b1,2024-01-02,X,buy,10,13,,,\n"
        "r1,2024-01-25,X,buy,10,12,,,\n"
        "s1,2024-02-01,X,sell,10,10,,b1,\n"
        "s2,2024-06-03,X,sell,20,20,,,\n"), 2024, method="hifo")
    assert consumed(sale(report, "s2")) == [("r1", 10), ("b2", 10)]
    assert sale(report, "s2").cost_basis == Decimal("260.00")
    assert report.open_lots == []


def test_specific_identification_closes_the_named_lot():
    report = us_report(trades(
        "b1,2024-01-02,X,buy,10,100,,,\n"
        "b2,2024-02-01,X,buy,10,120,,,\n"
        "b3,2024-03-01,X,buy,10,110,,,\n"
        "s1,2024-06-03,X,sell,10,130,,b3,\n"), 2024, method="specific")
    row = sale(report)
    assert consumed(row) == [("b3", 10)]
    assert (row.cost_basis, row.gain, row.date_acquired) == (
        Decimal("1100.00"), Decimal("200.00"), dt.date(2024, 3, 1))


def test_specific_method_requires_every_sell_to_name_its_lot():
    with pytest.raises(TaxInputError) as caught:
        us_report(trades("b1,2024-01-02,X,buy,10,100,,,\n"
                         "s1,2024-06-03,X,sell,5,130,,,\n"), 2024, method="specific")
    assert [(e.line, e.column) for e in caught.value.errors] == [(3, "lot")]


def test_a_named_lot_overrides_the_default_method():
    # FIFO would take b1; the sell names b2.
    row = sale(us_report(trades(
        "b1,2024-01-02,X,buy,10,100,,,\n"
        "b2,2024-02-01,X,buy,10,120,,,\n"
        "s1,2024-06-03,X,sell,4,130,,b2,\n"), 2024))
    assert consumed(row) == [("b2", 4)]


def test_selling_more_than_a_named_lot_still_holds_is_rejected():
    with pytest.raises(TaxInputError) as caught:
        us_report(trades(
            "b1,2024-01-02,X,buy,10,100,,,\n"
            "b2,2024-02-01,X,buy,10,120,,,\n"
            "s1,2024-03-01,X,sell,8,130,,b2,\n"
            "s2,2024-04-01,X,sell,5,130,,b2,\n"), 2024)
    (error,) = caught.value.errors
    assert (error.line, error.column) == (5, "quantity")
    assert "holds only 2" in error.message


def test_average_cost_pools_basis_and_dates_units_first_in_first_out():
    # Fund shares: pool 30 units for 3,300 → 110 each; 15 sold → basis 1,650, gain 300.
    # The units sold are b1's 10 and 5 of b2 for the holding period.
    report = us_report(trades(THREE_BUYS.format(cls="fund")), 2024, method="average")
    row = sale(report)
    assert (row.cost_basis, row.gain) == (Decimal("1650.00"), Decimal("300.00"))
    assert consumed(row) == [("b1", 10), ("b2", 5)]
    assert [(o.lot, o.quantity, o.cost_basis) for o in report.open_lots] == [
        ("b2", 5, Decimal("550.00")), ("b3", 10, Decimal("1100.00"))]


def test_average_cost_is_allowed_for_digital_assets():
    report = us_report(trades(THREE_BUYS.format(cls="digital_asset")), 2024, method="average")
    assert sale(report).cost_basis == Decimal("1650.00")
    assert sale(report).box == "G"


def test_average_cost_is_refused_for_securities_naming_them():
    body = THREE_BUYS.format(cls="") + "f1,2024-01-02,FUND,buy,1,10,,,fund\n"
    with pytest.raises(TaxConfigError, match=r"refused for the security symbol\(s\) X"):
        us_report(trades(body), 2024, method="average")


def test_fees_add_to_basis_and_reduce_proceeds():
    # Buy 10 at 20 + 5 fee = basis 205; sell 10 at 25 − 2.50 fee = 247.50; gain 42.50.
    row = sale(us_report(trades("b1,2024-01-02,X,buy,10,20,5,,\n"
                                "s1,2024-02-02,X,sell,10,25,2.50,,\n"), 2024))
    assert (row.proceeds, row.cost_basis, row.gain) == (
        Decimal("247.50"), Decimal("205.00"), Decimal("42.50"))


def test_partial_lots_split_pennies_so_the_lot_total_ties_out():
    # Basis 3 × 10 + 1 fee = 31.00, sold one unit at a time: exact shares 10.333…, so the
    # running totals 10.333… / 20.666… / 31 round to 10.33 / 20.67 / 31.00 and the rows report
    # 10.33, 10.34, 10.33 — adding up to 31.00, not 30.99.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,3,10,1,,\n"
        "s1,2024-02-01,X,sell,1,12,,,\n"
        "s2,2024-02-02,X,sell,1,12,,,\n"
        "s3,2024-02-03,X,sell,1,12,,,\n"), 2024)
    bases = [sale(report, s).cost_basis for s in ("s1", "s2", "s3")]
    assert bases == [Decimal("10.33"), Decimal("10.34"), Decimal("10.33")]
    assert sum(bases) == Decimal("31.00")


def test_sale_proceeds_split_over_lots_tie_out_to_the_cent():
    # Proceeds 10 × 3.3333 − 0.01 = 33.323, over pieces of 3 and 7 units: exact 9.9969 and
    # 23.3261; running totals round to 10.00 and 33.32, so the pieces report 10.00 and 23.32.
    result = match_lots(trades(
        "b1,2024-01-02,X,buy,3,1,,,\n"
        "b2,2024-01-03,X,buy,7,1,,,\n"
        "s1,2024-02-01,X,sell,10,3.3333,0.01,,\n"))
    pieces = result.disposals[0].pieces
    assert [p.proceeds_cents for p in pieces] == [Decimal("10.00"), Decimal("23.32")]
    assert sum(p.proceeds for p in pieces) == Decimal("33.323")  # exact internally


def test_fractional_quantities_of_digital_assets():
    # 0.5 BTC at 40,000 + 10 fee = 20,010; sell 0.2 at 50,000 − 4 fee = 9,996;
    # basis 20,010 × 0.2/0.5 = 8,004; gain 1,992.
    row = sale(us_report(trades("b1,2024-01-02,BTC,buy,0.5,40000,10,,digital_asset\n"
                                "s1,2024-05-02,BTC,sell,0.2,50000,4,,digital_asset\n"), 2024))
    assert (row.description, row.proceeds, row.cost_basis, row.gain) == (
        "0.2 BTC", Decimal("9996.00"), Decimal("8004.00"), Decimal("1992.00"))


@pytest.mark.parametrize(("acquired", "sold", "long"), [
    # Pub 550: start counting the day after acquisition; the sale day counts.
    ("2023-03-15", "2024-03-15", False),  # exactly one year: short
    ("2023-03-15", "2024-03-16", True),  # one year and a day: long
    ("2024-02-29", "2025-02-28", False),  # count starts 2024-03-01; its year ends 2025-02-28
    ("2024-02-29", "2025-03-01", True),
    ("2023-02-28", "2024-02-29", False),  # count starts 2023-03-01; year ends 2024-02-29
    ("2023-02-28", "2024-03-01", True),
    ("2024-02-28", "2025-02-28", False),
    ("2024-02-28", "2025-03-01", True),
])
def test_holding_period_boundaries(acquired, sold, long):
    a, s = dt.date.fromisoformat(acquired), dt.date.fromisoformat(sold)
    assert is_long_term(a, s) is long


def test_leap_day_acquisition_turns_long_term_on_first_of_march():
    assert one_year_mark(dt.date(2024, 2, 29)) == dt.date(2025, 3, 1)


def test_rows_split_a_sale_by_term_into_part_i_and_part_ii():
    # FIFO: 5 units from 2023-01-03 (long) and 5 from 2024-01-03 (short) sold 2024-06-03.
    report = us_report(trades(
        "b1,2023-01-03,X,buy,5,10,,,\n"
        "b2,2024-01-03,X,buy,5,20,,,\n"
        "s1,2024-06-03,X,sell,10,30,,,\n"), 2024)
    assert [(r.term, r.box, r.quantity, r.cost_basis, r.gain) for r in report.rows] == [
        ("short", "A", 5, Decimal("100.00"), Decimal("50.00")),
        ("long", "D", 5, Decimal("50.00"), Decimal("100.00"))]


def test_average_cost_pool_takes_the_disallowed_loss_of_a_wash_sale():
    # Fund pool: 10 at 10 + 10 at 12 = 220 for 20 (11 each). s1 sells 10 at 9: basis 110,
    # loss 20, washed by r1 (10 at 9 on 10 March) → r1 enters the pool at 90 + 20 = 110.
    # Pool: 10 for 110, then 20 for 220; s2 sells all 20 at 12 = 240: gain 20.
    report = us_report(trades(
        "b1,2024-01-02,F,buy,10,10,,,fund\n"
        "b2,2024-01-03,F,buy,10,12,,,fund\n"
        "s1,2024-03-01,F,sell,10,9,,,fund\n"
        "r1,2024-03-10,F,buy,10,9,,,fund\n"
        "s2,2024-06-03,F,sell,20,12,,,fund\n"), 2024, method="average")
    first, second = sale(report, "s1"), sale(report, "s2")
    assert (first.cost_basis, first.adjustment, first.gain) == (
        Decimal("110.00"), Decimal("20.00"), Decimal("0.00"))
    assert (second.cost_basis, second.gain) == (Decimal("220.00"), Decimal("20.00"))
    # b1 held 59 days, so r1's units count from 2024-03-10 − 59 days = 2024-01-11.
    assert [(line.lot, line.date_acquired) for line in second.lots] == [
        ("b2", dt.date(2024, 1, 3)), ("r1", dt.date(2024, 1, 11))]


def test_lifo_with_a_wash_sale_into_a_lot_bought_before_the_sale():
    # LIFO sells b2 (10 at 15) at 12: loss 30. b1 was bought 40 days earlier (outside the
    # window) — no replacement there; r1 bought 5 days after replaces: 10 × 11 + 30 = 140.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,10,10,,,\n"
        "b2,2024-02-11,X,buy,10,15,,,\n"
        "s1,2024-02-12,X,sell,10,12,,,\n"
        "r1,2024-02-17,X,buy,10,11,,,\n"), 2024, method="lifo")
    row = sale(report, "s1")
    assert (consumed(row), row.adjustment) == ([("b2", 10)], Decimal("30.00"))
    assert {o.lot: o.cost_basis for o in report.open_lots} == {
        "b1": Decimal("100.00"), "r1": Decimal("140.00")}

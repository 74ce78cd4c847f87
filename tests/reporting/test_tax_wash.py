"""Wash sales (IRC §1091): the IRS Publication 550 examples and hand-derived edge cases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from reporting.tax import match_lots, parse_trades_text, us_report

HEADER = "id,date,symbol,side,quantity,price,fee,lot,asset_class\n"


def trades(body: str):
    return parse_trades_text(HEADER + body)


def only_row(report, sale_id: str):
    rows = [r for r in report.rows if r.sale_id == sale_id]
    assert len(rows) == 1, rows
    return rows[0]


def open_basis(report, symbol: str = "X") -> Decimal:
    return sum((lot.cost_basis for lot in report.open_lots if lot.symbol == symbol), Decimal(0))


def test_publication_550_example_disallows_whole_loss_and_adds_it_to_new_basis():
    # Pub 550: 100 shares bought for $1,000, sold for $750, and within 30 days 100 shares of the
    # same stock bought for $800: the $250 loss is not deductible; the new shares' basis is
    # $800 + $250 = $1,050.
    report = us_report(trades(
        "b1,2024-01-10,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,7.50,,,\n"
        "b2,2024-03-15,X,buy,100,8,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.proceeds, row.cost_basis) == (Decimal("750.00"), Decimal("1000.00"))
    assert (row.code, row.adjustment, row.gain) == ("W", Decimal("250.00"), Decimal("0.00"))
    assert [(lot.quantity, lot.cost_basis) for lot in report.open_lots] == [
        (Decimal(100), Decimal("1050.00"))]


def test_partial_replacement_disallows_loss_in_proportion():
    # 100 shares bought for $1,000 and sold for $750 (loss $250); only 50 shares bought back
    # within 30 days, for $400. Disallowed: $250 × 50/100 = $125, deductible: $125. The 50 new
    # shares' basis: $400 + $125 = $525.
    report = us_report(trades(
        "b1,2024-01-10,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,7.50,,,\n"
        "b2,2024-03-20,X,buy,50,8,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.adjustment, row.gain) == (Decimal("125.00"), Decimal("-125.00"))
    assert open_basis(report) == Decimal("525.00")


def test_replacement_holding_period_includes_the_sold_shares_holding_period():
    # b1 held 2024-01-10 → 2024-03-01: 21 + 29 + 1 = 51 days. The replacement bought
    # 2024-03-15 is treated as acquired 51 days earlier: 2024-01-24.
    report = us_report(trades(
        "b1,2024-01-10,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,7.50,,,\n"
        "b2,2024-03-15,X,buy,100,8,,,\n"), 2024)
    assert report.open_lots[0].date_acquired == dt.date(2024, 1, 24)


def test_carried_holding_period_can_make_the_replacement_long_term():
    # b1 held 2023-01-03 → 2023-12-01 = 332 days. Replacement bought 2023-12-15 counts from
    # 2023-12-15 − 332 days = 2023-01-17, so a sale on 2024-01-18 is long-term (more than a year
    # from 2023-01-17) although the replacement itself was held 34 days.
    report = us_report(trades(
        "b1,2023-01-03,X,buy,10,50,,,\n"
        "s1,2023-12-01,X,sell,10,40,,,\n"
        "b2,2023-12-15,X,buy,10,41,,,\n"
        "s2,2024-01-18,X,sell,10,45,,,\n"), 2024)
    row = only_row(report, "s2")
    assert row.date_acquired == dt.date(2023, 1, 17)
    assert row.term == "long" and row.box == "D"
    # Basis 410 + 100 disallowed = 510; proceeds 450 → loss 60, allowed (no buy after).
    assert (row.cost_basis, row.gain, row.code) == (Decimal("510.00"), Decimal("-60.00"), "")


def test_replacement_bought_within_30_days_before_the_sale_counts_if_still_held():
    # FIFO sells b1 (cost 1,000) for 800: loss 200. b2 was bought 10 days before and is held,
    # so it is the replacement: basis 900 + 200 = 1,100. b1 held 2024-01-02 → 2024-03-01 = 59
    # days, so b2 counts from 2024-02-20 − 59 days = 2023-12-23.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,100,10,,,\n"
        "b2,2024-02-20,X,buy,100,9,,,\n"
        "s1,2024-03-01,X,sell,100,8,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.adjustment, row.gain) == (Decimal("200.00"), Decimal("0.00"))
    assert [(lot.cost_basis, lot.date_acquired) for lot in report.open_lots] == [
        (Decimal("1100.00"), dt.date(2023, 12, 23))]


def test_window_is_30_days_either_side_inclusive():
    # Sale 2024-03-01: a buy on 2024-03-31 (day 30) is inside, on 2024-04-01 (day 31) outside.
    inside = us_report(trades(
        "b1,2024-01-02,X,buy,10,10,,,\n"
        "s1,2024-03-01,X,sell,10,8,,,\n"
        "b2,2024-03-31,X,buy,10,8,,,\n"), 2024)
    outside = us_report(trades(
        "b1,2024-01-02,X,buy,10,10,,,\n"
        "s1,2024-03-01,X,sell,10,8,,,\n"
        "b2,2024-04-01,X,buy,10,8,,,\n"), 2024)
    assert only_row(inside, "s1").adjustment == Decimal("20.00")
    assert only_row(outside, "s1").code == ""
    assert only_row(outside, "s1").gain == Decimal("-20.00")
    before = us_report(trades(
        "b0,2024-01-02,X,buy,10,10,,,\n"
        "b1,2024-01-31,X,buy,10,9,,,\n"  # 30 days before 2024-03-01: inside
        "s1,2024-03-01,X,sell,10,8,,b0,\n"), 2024)
    assert only_row(before, "s1").adjustment == Decimal("20.00")


def test_units_of_the_lot_being_sold_are_not_replacements():
    # 100 bought, 50 of them sold at a loss 18 days later: the other 50 were not acquired to
    # replace them, so the $100 loss stands.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,100,10,,,\n"
        "s1,2024-01-20,X,sell,50,8,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.code, row.gain) == ("", Decimal("-100.00"))


def test_each_replacement_unit_absorbs_one_loss_only():
    # s1 (b1 at a $200 loss) takes b3 as its replacement. s2 (b2 at a $300 loss) finds b3's
    # units used, and b1/b2 are outside or sold: its loss is allowed. b3: 600 + 200 = 800.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,100,10,,,\n"
        "b2,2024-01-03,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,8,,,\n"
        "s2,2024-03-05,X,sell,100,7,,,\n"
        "b3,2024-03-10,X,buy,100,6,,,\n"), 2024)
    assert only_row(report, "s1").adjustment == Decimal("200.00")
    assert (only_row(report, "s2").code, only_row(report, "s2").gain) == ("", Decimal("-300.00"))
    assert open_basis(report) == Decimal("800.00")


def test_replacements_are_taken_in_order_of_acquisition_across_lots():
    # Loss $300 on 100 units; 30 units (r1) then 40 units (r2) bought afterwards: 70 units
    # replace, disallowed $300 × 70/100 = $210 — $90 to r1 (30 units), $120 to r2 (40 units).
    # Deductible: $90.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,7,,,\n"
        "r1,2024-03-05,X,buy,30,7,,,\n"
        "r2,2024-03-06,X,buy,40,7,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.adjustment, row.gain) == (Decimal("210.00"), Decimal("-90.00"))
    moves = [(w.to_lot, w.quantity, w.amount) for w in row.lots[0].wash_to]
    assert moves == [("r1", Decimal(30), Decimal(90)), ("r2", Decimal(40), Decimal(120))]
    by_lot = {lot.lot: lot.cost_basis for lot in report.open_lots}
    assert by_lot == {"r1": Decimal("300.00"), "r2": Decimal("400.00")}  # 210+90, 280+120


def test_partly_used_replacement_lot_is_split_into_adjusted_and_plain_units():
    # Loss $50 on 10 units, replacement lot of 25 units: 10 of them carry the $50 and the
    # carried holding period; 15 keep cost $7 each and their own date.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,10,12,,,\n"
        "s1,2024-02-01,X,sell,10,7,,,\n"
        "r1,2024-02-11,X,buy,25,7,,,\n"), 2024)
    lots = [(lot.quantity, lot.cost_basis, lot.date_acquired) for lot in report.open_lots]
    # b1 held 30 days → the 10 adjusted units count from 2024-02-11 − 30 = 2024-01-12.
    assert lots == [(Decimal(10), Decimal("120.00"), dt.date(2024, 1, 12)),
                    (Decimal(15), Decimal("105.00"), dt.date(2024, 2, 11))]


def test_wash_sale_across_year_end_is_reported_in_the_year_of_the_loss_sale():
    # Loss $200 sold 2024-12-20, bought back 2025-01-10: disallowed in 2024. In 2025 the
    # replacement's basis is 900 + 200 = 1,100; sold for 1,000 → loss 100.
    body = ("b1,2024-12-01,X,buy,100,10,,,\n"
            "s1,2024-12-20,X,sell,100,8,,,\n"
            "b2,2025-01-10,X,buy,100,9,,,\n"
            "s2,2025-03-03,X,sell,100,10,,,\n")
    r2024 = us_report(trades(body), 2024)
    r2025 = us_report(trades(body), 2025)
    assert only_row(r2024, "s1").adjustment == Decimal("200.00")
    assert r2024.open_lots == []  # the replacement was bought in 2025
    assert [r.sale_id for r in r2024.rows] == ["s1"]
    row = only_row(r2025, "s2")
    assert (row.cost_basis, row.gain) == (Decimal("1100.00"), Decimal("-100.00"))
    # b1 held 19 days → b2 counts from 2025-01-10 − 19 = 2024-12-22.
    assert row.date_acquired == dt.date(2024, 12, 22)


def test_digital_assets_are_outside_the_rule_by_default_and_inside_with_the_switch():
    body = ("b1,2024-01-02,BTC,buy,1,40000,,,digital_asset\n"
            "s1,2024-03-01,BTC,sell,1,30000,,,digital_asset\n"
            "b2,2024-03-05,BTC,buy,1,31000,,,digital_asset\n")
    exempt = us_report(trades(body), 2024)
    covered = us_report(trades(body), 2024, wash_sale_digital_assets=True)
    assert (only_row(exempt, "s1").gain, only_row(exempt, "s1").box) == (
        Decimal("-10000.00"), "G")
    assert only_row(covered, "s1").adjustment == Decimal("10000.00")
    assert open_basis(covered, "BTC") == Decimal("41000.00")


def test_only_the_loss_pieces_of_a_sale_are_washed():
    # FIFO sells 10 of b1 (cost 5 each, gain) and 10 of b2 (cost 15 each, loss) at 10:
    # gain 50 on b1's piece, loss 50 on b2's piece. r1 (10 units) replaces the loss piece:
    # adjustment 50, row gain = 50 − 50 + 50 = 50.
    report = us_report(trades(
        "b1,2024-01-02,X,buy,10,5,,,\n"
        "b2,2024-01-03,X,buy,10,15,,,\n"
        "s1,2024-03-01,X,sell,20,10,,,\n"
        "r1,2024-03-04,X,buy,10,10,,,\n"), 2024)
    row = only_row(report, "s1")
    assert (row.proceeds, row.cost_basis, row.adjustment, row.gain) == (
        Decimal("200.00"), Decimal("200.00"), Decimal("50.00"), Decimal("50.00"))
    assert [line.disallowed_loss for line in row.lots] == [Decimal("0"), Decimal("50.00")]


def test_wash_sales_can_be_switched_off_for_raw_lot_matching():
    result = match_lots(trades(
        "b1,2024-01-10,X,buy,100,10,,,\n"
        "s1,2024-03-01,X,sell,100,7.50,,,\n"
        "b2,2024-03-15,X,buy,100,8,,,\n"), wash_sales=False)
    assert result.disposals[0].pieces[0].disallowed == 0
    assert [lot.cost_basis for lot in result.open_lots] == [Decimal("800.00")]

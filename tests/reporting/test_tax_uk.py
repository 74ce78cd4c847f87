"""UK share matching (same day, 30 days, Section 104) and the SA108-style summary.

The figures are derived by hand in the comments, following TCGA 1992 ss.104–106A as HMRC's
HS284 describes them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from reporting.tax import parse_trades_text, uk_report
from reporting.tax.uk import tax_year_bounds

HEADER = "id,date,symbol,side,quantity,price,fee,lot,asset_class\n"


def trades(body: str):
    return parse_trades_text(HEADER + body)


def rules(disposal) -> list[tuple[str, Decimal, Decimal]]:
    return [(m.rule, m.quantity, m.cost.quantize(Decimal("0.01"))) for m in disposal.matches]


def test_tax_year_runs_6_april_to_5_april():
    assert tax_year_bounds(2024) == (dt.date(2024, 4, 6), dt.date(2025, 4, 5))
    body = ("b1,2024-01-10,X,buy,10,10,,,\n"
            "s1,2025-04-05,X,sell,5,12,,,\n"
            "s2,2025-04-06,X,sell,5,12,,,\n")
    assert [d.date for d in uk_report(trades(body), 2024).disposals] == [dt.date(2025, 4, 5)]
    assert [d.date for d in uk_report(trades(body), 2025).disposals] == [dt.date(2025, 4, 6)]
    assert uk_report(trades(body), 2024).label == "2024-25"


def test_same_day_acquisition_is_matched_first():
    # Pool: 100 for 1,000. On 3 June: sell 50 at 12 (600) and buy 50 at 11 (550). The disposal
    # takes the same-day 550, not the pool's 500: gain 50. The pool keeps 100 for 1,000.
    report = uk_report(trades(
        "b1,2024-05-01,X,buy,100,10,,,\n"
        "s1,2024-06-03,X,sell,50,12,,,\n"
        "b2,2024-06-03,X,buy,50,11,,,\n"), 2024)
    (disposal,) = report.disposals
    assert rules(disposal) == [("same_day", 50, Decimal("550.00"))]
    assert disposal.gain == Decimal("50.00")
    assert [(p.quantity, p.cost) for p in report.pools] == [(100, Decimal("1000.00"))]


def test_bed_and_breakfast_matches_the_next_30_days_before_the_pool():
    # Pool: 100 for 1,000. Sell 100 at 8 (800) on 3 June, buy 100 at 8.50 (850) on 20 June:
    # the 30-day rule matches the June purchase → loss 50 (not 200 from the pool). The pool
    # keeps its 100 for 1,000.
    report = uk_report(trades(
        "b1,2024-05-01,X,buy,100,10,,,\n"
        "s1,2024-06-03,X,sell,100,8,,,\n"
        "b2,2024-06-20,X,buy,100,8.50,,,\n"), 2024)
    (disposal,) = report.disposals
    assert rules(disposal) == [("30_day", 100, Decimal("850.00"))]
    assert disposal.gain == Decimal("-50.00")
    assert [(p.quantity, p.cost) for p in report.pools] == [(100, Decimal("1000.00"))]


def test_a_purchase_on_day_31_goes_to_the_pool():
    # 3 June + 31 days = 4 July: outside the window, so the disposal comes from the pool
    # (cost 1,000, loss 200) and the July purchase joins the pool afterwards.
    report = uk_report(trades(
        "b1,2024-05-01,X,buy,100,10,,,\n"
        "s1,2024-06-03,X,sell,100,8,,,\n"
        "b2,2024-07-04,X,buy,100,8.50,,,\n"), 2024)
    (disposal,) = report.disposals
    assert rules(disposal) == [("section_104", 100, Decimal("1000.00"))]
    assert disposal.gain == Decimal("-200.00")


def test_section_104_pool_includes_fees_and_averages_cost():
    # Pool: 100 × 10 + 5 fee = 1,005, then 50 × 13 + 5 = 655 → 150 units for 1,660. Sell 60 at
    # 15 (900) with a 3 fee: pool cost 1,660 × 60/150 = 664; allowable 664 + 3 = 667;
    # gain 900 − 667 = 233. Pool left: 90 units for 996.
    report = uk_report(trades(
        "b1,2024-04-10,X,buy,100,10,5,,\n"
        "b2,2024-05-10,X,buy,50,13,5,,\n"
        "s1,2024-08-01,X,sell,60,15,3,,\n"), 2024)
    (disposal,) = report.disposals
    assert (disposal.proceeds, disposal.allowable_costs, disposal.gain) == (
        Decimal("900.00"), Decimal("667.00"), Decimal("233.00"))
    assert [(p.quantity, p.cost) for p in report.pools] == [(90, Decimal("996.00"))]


def test_one_disposal_matched_by_all_three_rules_in_order():
    # Pool: 1,000 × 4 + 20 fee = 4,020. On 2 September: buy 300 at 5 (1,500) and sell 500 at 6
    # (3,000). Same day: 300 for 1,500. 30 days: 100 bought 20 September at 5.50 (550). Pool:
    # the last 100 at 4,020 × 100/1,000 = 402. Allowable 2,452; gain 548; pool 900 for 3,618.
    report = uk_report(trades(
        "b1,2024-04-08,X,buy,1000,4,20,,\n"
        "b2,2024-09-02,X,buy,300,5,,,\n"
        "s1,2024-09-02,X,sell,500,6,,,\n"
        "b3,2024-09-20,X,buy,100,5.50,,,\n"), 2024)
    (disposal,) = report.disposals
    assert rules(disposal) == [("same_day", 300, Decimal("1500.00")),
                               ("30_day", 100, Decimal("550.00")),
                               ("section_104", 100, Decimal("402.00"))]
    assert (disposal.allowable_costs, disposal.gain) == (Decimal("2452.00"), Decimal("548.00"))
    assert [(p.quantity, p.cost) for p in report.pools] == [(900, Decimal("3618.00"))]


def test_a_later_purchase_serves_the_earliest_disposal_first():
    # Disposals of 50 on 1 and 10 July; 60 bought 20 July. The 1 July disposal takes 50 of
    # them, the 10 July disposal the remaining 10 and 40 from the pool.
    report = uk_report(trades(
        "b1,2024-05-01,X,buy,100,10,,,\n"
        "s1,2024-07-01,X,sell,50,12,,,\n"
        "s2,2024-07-10,X,sell,50,12,,,\n"
        "b2,2024-07-20,X,buy,60,11,,,\n"), 2024)
    first, second = report.disposals
    assert rules(first) == [("30_day", 50, Decimal("550.00"))]
    assert rules(second) == [("30_day", 10, Decimal("110.00")),
                             ("section_104", 40, Decimal("400.00"))]


def test_sa108_summary_counts_same_day_sells_as_one_disposal_and_splits_gains_and_losses():
    # X: two sells on 1 July (one disposal): 20 at 12 + 30 at 12 = 600 vs pool 500 → gain 100.
    # Y: sell 10 at 5 (50) vs cost 80 → loss 30. Net 70.
    report = uk_report(trades(
        "b1,2024-05-01,X,buy,100,10,,,\n"
        "s1,2024-07-01,X,sell,20,12,,,\n"
        "s2,2024-07-01,X,sell,30,12,,,\n"
        "y1,2024-05-01,Y,buy,10,8,,,\n"
        "y2,2024-08-01,Y,sell,10,5,,,\n"), 2024)
    s = report.summary
    assert (s.disposals, s.proceeds, s.allowable_costs, s.gains, s.losses, s.net) == (
        2, Decimal("650.00"), Decimal("580.00"), Decimal("100.00"), Decimal("30.00"),
        Decimal("70.00"))
    assert report.disposals[0].trade_ids == ["s1", "s2"]


def test_cryptoassets_are_summarised_separately():
    report = uk_report(trades(
        "b1,2024-05-01,BTC,buy,1,40000,,,digital_asset\n"
        "s1,2024-07-01,BTC,sell,0.5,50000,,,digital_asset\n"
        "b2,2024-05-01,X,buy,10,10,,,\n"
        "s2,2024-07-01,X,sell,10,9,,,\n"), 2024)
    assert report.summary_by_class["cryptoassets"].net == Decimal("5000.00")
    assert report.summary_by_class["shares"].net == Decimal("-10.00")

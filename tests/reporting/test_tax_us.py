"""US forms: Form 8949 boxes, Schedule D lines and the loss limit, the JSON and CSV shapes."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

from reporting.tax import parse_trades_text, us_report
from reporting.tax.output import us_csv, us_dict, us_json

HEADER = "id,date,symbol,side,quantity,price,fee,lot,asset_class\n"
MONEY = re.compile(r"^-?\d+\.\d{2}$")

# 2024: ST gain 150 on A (X), LT loss 5,000 on D (Y), ST gain 20 on digital G (BTC).
MIXED = (
    "x1,2024-01-02,X,buy,10,100,,,\n"
    "x2,2024-03-01,X,sell,10,115,,,\n"
    "y1,2022-01-03,Y,buy,100,80,,,\n"
    "y2,2024-05-01,Y,sell,100,30,,,\n"
    "c1,2024-02-01,BTC,buy,0.01,40000,,,digital_asset\n"
    "c2,2024-04-01,BTC,sell,0.01,42000,,,digital_asset\n"
    "k1,2024-11-01,K,buy,3,10,0.10,,\n"
)


def report(**options):
    return us_report(parse_trades_text(HEADER + MIXED), 2024, **options)


def test_rows_go_to_boxes_by_term_and_asset_class():
    assert [(r.description, r.term, r.box) for r in report().rows] == [
        ("10 X", "short", "A"), ("0.01 BTC", "short", "G"), ("100 Y", "long", "D")]


def test_reporting_mode_picks_the_box_letter():
    rows = report(security_reporting="not_reported",
                  digital_asset_reporting="basis_not_reported").rows
    assert [r.box for r in rows] == ["C", "H", "F"]


def test_schedule_d_lines_and_the_3000_loss_limit():
    s = report().schedule_d
    # Line 1b = box A + box G: gains 150 + 20 = 170. Line 8b = box D: −5,000.
    assert (s.line_1b.proceeds, s.line_1b.cost_basis, s.line_1b.gain) == (
        Decimal("1570.00"), Decimal("1400.00"), Decimal("170.00"))
    assert s.line_7 == Decimal("170.00")
    assert (s.line_8b.gain, s.line_15) == (Decimal("-5000.00"), Decimal("-5000.00"))
    assert s.line_16 == Decimal("-4830.00")
    assert s.line_21 == Decimal("-3000")  # the smaller of the loss and $3,000
    assert s.loss_over_limit == Decimal("1830.00")


def test_married_filing_separately_limit_is_1500():
    s = report(married_filing_separately=True).schedule_d
    assert (s.line_21, s.loss_over_limit) == (Decimal("-1500"), Decimal("3330.00"))


def test_carryovers_reduce_lines_7_and_15():
    s = report(short_term_carryover=Decimal("70"), long_term_carryover=Decimal("1000")).schedule_d
    assert (s.line_7, s.line_15, s.line_16) == (
        Decimal("100.00"), Decimal("-6000.00"), Decimal("-5900.00"))


def test_json_has_exactly_the_documented_shape_with_decimal_strings():
    doc = json.loads(us_json(report()))
    assert list(doc) == ["rows", "schedule_d", "open_lots"]
    for row in doc["rows"]:
        assert list(row) == ["description", "quantity", "date_acquired", "date_sold",
                             "proceeds", "cost_basis", "code", "adjustment", "gain", "term",
                             "box", "lots"]
        for key in ("proceeds", "cost_basis", "adjustment", "gain"):
            assert MONEY.match(row[key]), (key, row[key])
    assert doc["rows"][2] == {
        "description": "100 Y", "quantity": "100", "date_acquired": "2022-01-03",
        "date_sold": "2024-05-01", "proceeds": "3000.00", "cost_basis": "8000.00", "code": "",
        "adjustment": "0.00", "gain": "-5000.00", "term": "long", "box": "D",
        "lots": [{"lot": "y1", "quantity": "100", "date_acquired": "2022-01-03",
                  "proceeds": "3000.00", "cost_basis": "8000.00", "wash_sale_basis": "0.00",
                  "wash_sale_from": [], "disallowed_loss": "0.00", "wash_sale_to": []}]}
    # Open at year end: K, 3 × 10 + 0.10 fee.
    assert doc["open_lots"] == [{"symbol": "K", "quantity": "3", "cost_basis": "30.10",
                                 "date_acquired": "2024-11-01"}]
    assert doc["schedule_d"]["line_16"] == "-4830.00"
    assert doc["schedule_d"]["line_1b"] == {"proceeds": "1570.00", "cost_basis": "1400.00",
                                            "adjustment": "0.00", "gain": "170.00"}


def test_json_wash_sale_audit_names_the_lot_and_amount():
    body = ("b1,2024-01-10,X,buy,100,10,,,\n"
            "s1,2024-03-01,X,sell,100,7.50,,,\n"
            "b2,2024-03-15,X,buy,100,8,,,\n"
            "s2,2024-06-03,X,sell,100,11,,,\n")
    doc = us_dict(us_report(parse_trades_text(HEADER + body), 2024))
    first, second = doc["rows"]
    assert first["lots"][0]["wash_sale_to"] == [
        {"lot": "b2", "quantity": "100", "amount": "250.00", "date_acquired": "2024-01-24"}]
    assert (second["lots"][0]["wash_sale_from"], second["lots"][0]["wash_sale_basis"]) == (
        ["s1"], "250.00")


def test_csv_has_one_line_per_row_with_the_form_columns():
    lines = list(csv.DictReader(io.StringIO(us_csv(report()))))
    assert [(d["part"], d["box"], d["proceeds"], d["gain"], d["lots"]) for d in lines] == [
        ("I", "A", "1150.00", "150.00", "x1:10"), ("I", "G", "420.00", "20.00", "c1:0.01"),
        ("II", "D", "3000.00", "-5000.00", "y1:100")]

"""Trade input: every bad row reported by line and column; trades from objects; ordering."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from reporting.tax import (
    TaxInputError,
    Trade,
    parse_trades_csv,
    parse_trades_text,
    trades_from_objects,
)

DATA = Path(__file__).parent / "data"


def test_every_bad_row_is_reported_with_line_and_column():
    with pytest.raises(TaxInputError) as caught:
        parse_trades_csv(DATA / "tax_trades_bad.csv")
    found = [(e.line, e.column, e.column_number) for e in caught.value.errors]
    assert found == [
        (3, "date", 2),  # 2024-13-45
        (4, "side", 4),  # bye
        (5, "quantity", 5),  # -5
        (6, "id", 1),  # b1 again
        (7, "lot", 8),  # b9 is no buy
        (8, "quantity", 5),  # 500 sold, 95 held
        (9, "price", 6),  # abc
        (9, "asset_class", 9),  # crypto
    ]
    messages = {(e.line, e.column): e.message for e in caught.value.errors}
    assert messages[(4, "side")] == "unknown side 'bye'; expected buy or sell"
    assert "negative quantity -5" in messages[(5, "quantity")]
    assert "first used on line 2" in messages[(6, "id")]
    assert "unknown lot 'b9'" in messages[(7, "lot")]
    assert "selling 500 X but only 95 held on 2024-02-02" in messages[(8, "quantity")]
    assert str(caught.value.errors[0]).startswith("line 3, column 2 (date): '2024-13-45' is not")


def test_missing_and_unknown_columns_are_reported_on_the_header_line():
    with pytest.raises(TaxInputError) as caught:
        parse_trades_text("id,date,symbol,side,quantity,fees\n1,2024-01-02,X,buy,1,0\n")
    assert sorted((e.line, e.column) for e in caught.value.errors) == [
        (1, "fees"), (1, "price")]


def test_optional_columns_may_be_absent_and_dates_may_be_datetimes():
    trades = parse_trades_text("id,date,symbol,side,quantity,price\n"
                               "s,2024-01-02T16:00:00+01:00,X,sell,1,12\n"
                               "b,2024-01-02T09:30:00,X,buy,1,10\n")
    # Ordered by time within the day: the 09:30 buy before the 16:00 sell.
    assert [(t.id, t.fee, t.asset_class, t.trade_date) for t in trades] == [
        ("b", Decimal(0), "security", dt.date(2024, 1, 2)),
        ("s", Decimal(0), "security", dt.date(2024, 1, 2))]


def test_a_lot_must_be_a_buy_of_the_same_symbol_made_before_the_sell():
    with pytest.raises(TaxInputError) as caught:
        parse_trades_text("id,date,symbol,side,quantity,price,lot\n"
                          "a,2024-01-02,X,buy,5,10,\n"
                          "y,2024-01-02,Y,buy,5,10,\n"
                          "s1,2024-01-03,X,sell,1,12,y\n"
                          "s2,2024-01-03,X,sell,1,12,late\n"
                          "late,2024-01-04,X,buy,1,10,\n")
    messages = [(e.line, e.message) for e in caught.value.errors]
    assert messages == [(4, "lot 'y' is a buy of Y, not X"),
                        (5, "lot 'late' is bought after this sell")]


def test_one_symbol_has_one_asset_class():
    with pytest.raises(TaxInputError) as caught:
        parse_trades_text("id,date,symbol,side,quantity,price,asset_class\n"
                          "a,2024-01-02,BTC,buy,1,10,digital_asset\n"
                          "b,2024-01-03,BTC,buy,1,10,security\n")
    assert [(e.line, e.column) for e in caught.value.errors] == [(3, "asset_class")]


def test_trades_from_objects_accepts_trades_and_mappings_and_refuses_floats():
    fill = {"id": "f1", "date": dt.date(2024, 1, 2), "symbol": "X", "side": "buy",
            "quantity": Decimal("2"), "price": Decimal("10.5")}
    trade = Trade(id="f2", date=dt.datetime(2024, 2, 1, 10), symbol="X", side="sell",
                  quantity=Decimal(1), price=Decimal(12))
    assert [t.id for t in trades_from_objects([trade, fill])] == ["f1", "f2"]
    with pytest.raises(TaxInputError) as caught:
        trades_from_objects([dict(fill, price=10.5)])
    (error,) = caught.value.errors
    assert (error.line, error.column) == (1, "price")
    assert "not a float" in error.message


def test_a_rejected_file_yields_nothing():
    text = "id,date,symbol,side,quantity,price\nb,2024-01-02,X,buy,1,10\nbad,x,X,buy,1,10\n"
    with pytest.raises(TaxInputError) as caught:
        parse_trades_text(text)
    assert len(caught.value.errors) == 1
    assert "1 problem in the trades" in str(caught.value)


def test_typed_trades_are_still_checked_row_by_row():
    good = Trade(id="b", date=dt.date(2024, 1, 2), symbol="X", side="buy",
                 quantity=Decimal(5), price=Decimal(10))
    bad = Trade(id="s", date=dt.date(2024, 1, 3), symbol="X", side="sell",
                quantity=Decimal(-1), price=Decimal(10))
    with pytest.raises(TaxInputError) as caught:
        trades_from_objects([good, bad])
    assert [(e.line, e.column) for e in caught.value.errors] == [(2, "quantity")]
    assert [t.line for t in trades_from_objects([good])] == [1]

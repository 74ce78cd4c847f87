"""PDF tax reports: summary first, Part I / Part II tables, repeated headers, page numbers."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

from pypdf import PdfReader
from reportlab.platypus import Paragraph

from reporting.tax import Trade, trades_from_objects, uk_report, us_report
from reporting.tax.pdf import _8949_WIDTHS, _fit, money, uk_pdf, us_pdf


def _trades(count: int) -> list[Trade]:
    """``count`` round trips of 10 units: bought at 100, sold at 101 (short) or held 2 years."""
    trades = []
    for i in range(count):
        bought = dt.date(2022 if i % 2 else 2024, 1, 2) + dt.timedelta(days=i % 200)
        trades.append(Trade(id=f"b{i}", date=bought, symbol=f"S{i}", side="buy",
                            quantity=Decimal(10), price=Decimal(100)))
        trades.append(Trade(id=f"s{i}", date=dt.date(2024, 12, 1), symbol=f"S{i}", side="sell",
                            quantity=Decimal(10), price=Decimal(101)))
    return trades_from_objects(trades)


def _pages(build) -> list[str]:
    buffer = io.BytesIO()
    build(buffer)
    return [page.extract_text() for page in PdfReader(io.BytesIO(buffer.getvalue())).pages]


def test_us_pdf_has_summary_then_part_i_and_part_ii_with_headers_on_every_page():
    report = us_report(_trades(120), 2024)
    pages = _pages(lambda out: us_pdf(report, out))
    total = len(pages)
    assert total >= 4  # summary + 60 short rows + 60 long rows cannot fit fewer pages
    assert "Schedule D summary" in pages[0]
    # Line 16: 120 rows × gain 10.00 = 1,200.00.
    assert "1,200.00" in pages[0]
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in text
    detail = [text for text in pages[1:]]
    assert all("(a) Description of property" in text for text in detail)
    assert any("Part I" in text for text in detail) and any("Part II" in text for text in detail)
    # Every sale appears exactly once: 120 description cells "10 S<n>".
    descriptions = [line for text in detail for line in text.splitlines()
                    if re.fullmatch(r"10 S\d+", line)]
    assert sorted(descriptions) == sorted(f"10 S{i}" for i in range(120))


def test_cells_too_wide_for_their_column_wrap_instead_of_overflowing():
    assert _fit("10 AAPL", _8949_WIDTHS[0]) == "10 AAPL"
    assert isinstance(_fit("10 " + "X" * 80, _8949_WIDTHS[0]), Paragraph)


def test_losses_print_in_parentheses():
    assert (money(Decimal("-1234.5")), money(Decimal("0.004"))) == ("(1,234.50)", "0.00")


def test_uk_pdf_has_the_sa108_summary_and_the_disposals():
    report = uk_report(_trades(30), 2024)
    pages = _pages(lambda out: uk_pdf(report, out))
    assert "SA108 summary" in pages[0] and "2024-25" in pages[0]
    assert "Number of disposals" in pages[0]
    assert any("Disposals" in text and "S104 pool" in text for text in pages[1:])
    assert f"Page 1 of {len(pages)}" in pages[0]

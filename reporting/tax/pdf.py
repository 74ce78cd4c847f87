"""PDF tax reports (reportlab platypus): a Form 8949-style statement with its Schedule D summary,
and the UK variant (SA108-style summary and the matched disposals).

Layout: US Letter landscape. The first page is the summary (Schedule D totals or the SA108
figures); then the detail tables — Form 8949 Part I (short-term) and Part II (long-term), one
section per box — with the column header repeated on every page and "Page n of N" in the footer.
Every cell fits its column: text wider than the column is wrapped (a Paragraph), never clipped.
Losses are printed in parentheses, as on the IRS forms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from reporting.tax.model import ZERO, quantity_str, to_cents
from reporting.tax.uk import UKReport, UKSummary
from reporting.tax.us import LineTotal, Row, USReport

PAGE = landscape(letter)
MARGIN = 0.5 * inch
FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
FONT_SIZE = 8
PADDING = 3  # points each side inside a cell

_styles = getSampleStyleSheet()
TITLE = ParagraphStyle("TaxTitle", parent=_styles["Title"], fontSize=15, spaceAfter=4)
HEADING = ParagraphStyle("TaxHeading", parent=_styles["Heading2"], fontSize=11, spaceBefore=6,
                         spaceAfter=4)
BODY = ParagraphStyle("TaxBody", parent=_styles["BodyText"], fontSize=9, leading=11)
CELL = ParagraphStyle("TaxCell", fontName=FONT, fontSize=FONT_SIZE, leading=FONT_SIZE + 1.5)
CELL_RIGHT = ParagraphStyle("TaxCellRight", parent=CELL, alignment=2)
HEAD = ParagraphStyle("TaxHead", parent=CELL, fontName=FONT_BOLD)
HEAD_RIGHT = ParagraphStyle("TaxHeadRight", parent=HEAD, alignment=2)

_BOX_TEXT = {
    "A": "Box A — short-term, basis reported to the IRS (Form 1099-B)",
    "B": "Box B — short-term, basis not reported to the IRS",
    "C": "Box C — short-term, not reported on Form 1099-B",
    "D": "Box D — long-term, basis reported to the IRS (Form 1099-B)",
    "E": "Box E — long-term, basis not reported to the IRS",
    "F": "Box F — long-term, not reported on Form 1099-B",
    "G": "Box G — short-term digital assets, basis reported (Form 1099-DA)",
    "H": "Box H — short-term digital assets, basis not reported",
    "I": "Box I — short-term digital assets, not reported on Form 1099-DA",
    "J": "Box J — long-term digital assets, basis reported (Form 1099-DA)",
    "K": "Box K — long-term digital assets, basis not reported",
    "L": "Box L — long-term digital assets, not reported on Form 1099-DA",
}


def money(value: Decimal) -> str:
    """1234.5 → "1,234.50"; a negative amount in parentheses: "(250.00)"."""
    cents = to_cents(value)
    text = f"{abs(cents):,.2f}"
    return f"({text})" if cents < 0 else text


class _NumberedCanvas(Canvas):
    """Defers page output to the end so each footer can say "Page n of N"."""

    footer_text = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's API
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7)
            self.setFillColor(colors.grey)
            self.drawString(MARGIN, MARGIN / 2, self.footer_text)
            self.drawRightString(PAGE[0] - MARGIN, MARGIN / 2,
                                 f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def _canvas_with_footer(text: str) -> type[_NumberedCanvas]:
    return type("FooterCanvas", (_NumberedCanvas,), {"footer_text": text})


def _fit(text: str, width: float, *, right: bool = False, bold: bool = False) -> str | Paragraph:
    """The cell as a plain string when it fits on one line, else a wrapping Paragraph."""
    font = FONT_BOLD if bold else FONT
    if stringWidth(text, font, FONT_SIZE) <= width - 2 * PADDING:
        return text
    style = HEAD if bold else (CELL_RIGHT if right else CELL)
    # A long unbroken token (a symbol, an amount) still wraps: allow breaks anywhere.
    return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"),
                     ParagraphStyle("fit", parent=style, wordWrap="CJK"))


def _table(header: Sequence[str], rows: list[list[str]], widths: Sequence[float],
           right: Sequence[bool], *, total: list[str] | None = None,
           center: Sequence[int] = ()) -> Table:
    data: list[list[Any]] = [[Paragraph(h, HEAD_RIGHT if r else HEAD)
                              for h, r in zip(header, right, strict=True)]]
    for row in rows:
        data.append([_fit(text, w, right=r) for text, w, r in zip(row, widths, right,
                                                                   strict=True)])
    if total is not None:
        data.append([_fit(text, w, right=r, bold=True)
                     for text, w, r in zip(total, widths, right, strict=True)])
    table = LongTable(data, colWidths=list(widths), repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, FONT_SIZE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe6ee")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f7fa")]),
        ("BOX", (0, 0), (-1, -1), 0.5, colors.grey),
    ]
    for col, is_right in enumerate(right):
        if is_right:
            style.append(("ALIGN", (col, 1), (col, -1), "RIGHT"))
    for col in center:
        style.append(("ALIGN", (col, 0), (col, -1), "CENTER"))
    if total is not None:
        style += [("FONT", (0, -1), (-1, -1), FONT_BOLD, FONT_SIZE),
                  ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                  ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#eef1f4"))]
    table.setStyle(TableStyle(style))
    return table


def _document(target: str | Path | BinaryIO, title: str) -> SimpleDocTemplate:
    return SimpleDocTemplate(
        target if not isinstance(target, Path) else str(target), pagesize=PAGE,
        leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=title, author="Nexow")


# --- United States --------------------------------------------------------------------------

_8949_HEADER = ["(a) Description of property", "(b) Date acquired", "(c) Date sold",
                "(d) Proceeds", "(e) Cost or other basis", "(f) Code",
                "(g) Amount of adjustment", "(h) Gain or (loss)"]
_8949_WIDTHS = [2.6 * inch, 0.95 * inch, 0.85 * inch, 1.15 * inch, 1.25 * inch, 0.5 * inch,
                1.15 * inch, 1.55 * inch]
_8949_RIGHT = [False, False, False, True, True, False, True, True]


def _8949_cells(row: Row) -> list[str]:
    return [row.description,
            row.date_acquired.strftime("%m/%d/%Y") if row.date_acquired else "VARIOUS",
            row.date_sold.strftime("%m/%d/%Y"), money(row.proceeds), money(row.cost_basis),
            row.code, money(row.adjustment) if row.adjustment else "", money(row.gain)]


def _line_cells(label: str, total: LineTotal) -> list[str]:
    return [label, money(total.proceeds), money(total.cost_basis), money(total.adjustment),
            money(total.gain)]


def us_story(report: USReport) -> list[Any]:
    s = report.schedule_d
    story: list[Any] = [
        Paragraph(f"Capital gains and losses — tax year {report.year}", TITLE),
        Paragraph(f"Form 8949-style statement and Schedule D summary. Lot method: "
                  f"<b>{report.method.upper()}</b>. Amounts in dollars, rounded to the cent. "
                  f"{len(report.rows)} Form 8949 row(s).", BODY),
        Spacer(1, 6),
        Paragraph("Schedule D summary", HEADING),
    ]
    widths = [3.6 * inch, 1.35 * inch, 1.35 * inch, 1.35 * inch, 1.35 * inch]
    right = [False, True, True, True, True]
    lines = [
        _line_cells("Line 1b — Form 8949 box A or G (short-term)", s.line_1b),
        _line_cells("Line 2 — Form 8949 box B or H (short-term)", s.line_2),
        _line_cells("Line 3 — Form 8949 box C or I (short-term)", s.line_3),
        ["Line 6 — short-term capital loss carryover", "", "", "", money(-s.line_6)],
        ["Line 7 — net short-term capital gain or (loss)", "", "", "", money(s.line_7)],
        _line_cells("Line 8b — Form 8949 box D or J (long-term)", s.line_8b),
        _line_cells("Line 9 — Form 8949 box E or K (long-term)", s.line_9),
        _line_cells("Line 10 — Form 8949 box F or L (long-term)", s.line_10),
        ["Line 14 — long-term capital loss carryover", "", "", "", money(-s.line_14)],
        ["Line 15 — net long-term capital gain or (loss)", "", "", "", money(s.line_15)],
        ["Line 16 — total (line 7 + line 15)", "", "", "", money(s.line_16)],
        [f"Line 21 — deductible loss (limit {money(s.capital_loss_limit)})", "", "", "",
         money(s.line_21) if s.line_16 < 0 else ""],
    ]
    story.append(_table(["Schedule D line", "(d) Proceeds", "(e) Cost or other basis",
                         "(g) Adjustments", "(h) Gain or (loss)"], lines, widths, right))
    if s.loss_over_limit:
        story += [Spacer(1, 6), Paragraph(
            f"The net loss exceeds the limit by {money(s.loss_over_limit)}; carry it over to "
            "next year (Capital Loss Carryover Worksheet, Schedule D instructions).", BODY)]
    if report.open_lots:
        story += [Spacer(1, 8), Paragraph(f"Open lots at {report.as_of.isoformat()}: "
                                          f"{len(report.open_lots)} (listed after Part II).",
                                          BODY)]

    for part, term, title in (("I", "short", "Short-term (held one year or less)"),
                              ("II", "long", "Long-term (held more than one year)")):
        rows = [r for r in report.rows if r.term == term]
        boxes = sorted({r.box for r in rows})
        for box in boxes:
            box_rows = [r for r in rows if r.box == box]
            totals = LineTotal()
            for r in box_rows:
                totals.add(r)
            story += [PageBreak(), Paragraph(f"Form 8949 Part {part} — {title}", TITLE),
                      Paragraph(_BOX_TEXT[box], HEADING),
                      _table(_8949_HEADER, [_8949_cells(r) for r in box_rows], _8949_WIDTHS,
                             _8949_RIGHT, center=(5,),
                             total=["Totals", "", "", money(totals.proceeds),
                                    money(totals.cost_basis), "",
                                    money(totals.adjustment), money(totals.gain)])]
        if not boxes:
            story += [Spacer(1, 10), Paragraph(f"Form 8949 Part {part} — {title}: no "
                                               "transactions.", BODY)]
    if report.open_lots:
        story += [PageBreak(), Paragraph(f"Open lots at {report.as_of.isoformat()}", TITLE)]
        story.append(_table(
            ["Symbol", "Lot", "Quantity", "Date acquired (holding period)", "Adjusted basis"],
            [[lot.symbol, lot.lot, quantity_str(lot.quantity), lot.date_acquired.isoformat(),
              money(lot.cost_basis)] for lot in report.open_lots],
            [2.0 * inch, 2.0 * inch, 1.6 * inch, 2.2 * inch, 1.6 * inch],
            [False, False, True, False, True],
            total=["Total", "", "", "",
                   money(sum((lot.cost_basis for lot in report.open_lots), ZERO))]))
    return story


def us_pdf(report: USReport, target: str | Path | BinaryIO) -> None:
    """Write the US report as a PDF to a path or a binary file object."""
    title = f"Form 8949 / Schedule D statement {report.year}"
    doc = _document(target, title)
    doc.build(us_story(report), canvasmaker=_canvas_with_footer(
        f"Nexow — {title} — generated {dt.date.today().isoformat()}"))


# --- United Kingdom --------------------------------------------------------------------------

def _summary_rows(summary: UKSummary) -> list[list[str]]:
    return [["Number of disposals", str(summary.disposals)],
            ["Disposal proceeds", money(summary.proceeds)],
            ["Allowable costs (including purchase price)", money(summary.allowable_costs)],
            ["Gains in the year, before losses", money(summary.gains)],
            ["Losses in the year", money(summary.losses)],
            ["Net gain or (loss)", money(summary.net)]]


def uk_story(report: UKReport) -> list[Any]:
    story: list[Any] = [
        Paragraph(f"Capital gains — UK tax year {report.label}", TITLE),
        Paragraph(f"{report.start.strftime('%d %B %Y')} to {report.end.strftime('%d %B %Y')}. "
                  "Shares matched by the same-day rule, the 30-day (bed and breakfast) rule, "
                  "then the Section 104 pool. Amounts in pounds, rounded to the penny.", BODY),
        Spacer(1, 6), Paragraph("SA108 summary — all disposals", HEADING),
        _table(["Item", "Amount (£)"], _summary_rows(report.summary), [4.5 * inch, 2.0 * inch],
               [False, True]),
    ]
    for family, summary in report.summary_by_class.items():
        story += [Paragraph(f"SA108 summary — {family}", HEADING),
                  _table(["Item", "Amount (£)"], _summary_rows(summary),
                         [4.5 * inch, 2.0 * inch], [False, True])]
    rule_names = {"same_day": "same-day rule", "30_day": "30-day rule",
                  "section_104": "S104 pool"}
    rows = []
    for d in report.disposals:
        matched = "; ".join(
            f"{quantity_str(m.quantity)} by {rule_names[m.rule]}"
            + (f" (bought {m.acquired.strftime('%d/%m/%Y')})" if m.acquired else "")
            for m in d.matches)
        rows.append([d.date.strftime("%d/%m/%Y"), d.symbol, quantity_str(d.quantity), matched,
                     money(d.proceeds), money(d.allowable_costs), money(d.gain)])
    story += [PageBreak(), Paragraph("Disposals", TITLE),
              _table(["Date", "Asset", "Quantity", "Matched with", "Proceeds",
                      "Allowable costs", "Gain or (loss)"], rows,
                     [0.85 * inch, 1.3 * inch, 0.9 * inch, 3.3 * inch, 1.2 * inch, 1.2 * inch,
                      1.25 * inch], [False, False, True, False, True, True, True],
                     total=["Totals", "", "", "", money(report.summary.proceeds),
                            money(report.summary.allowable_costs), money(report.summary.net)])]
    if report.pools:
        story += [Spacer(1, 10), Paragraph(f"Section 104 holdings at {report.end.isoformat()}",
                                           HEADING),
                  _table(["Asset", "Quantity", "Pooled cost"],
                         [[p.symbol, quantity_str(p.quantity), money(p.cost)]
                          for p in report.pools],
                         [2.5 * inch, 2.0 * inch, 2.0 * inch], [False, True, True])]
    return story


def uk_pdf(report: UKReport, target: str | Path | BinaryIO) -> None:
    """Write the UK report as a PDF to a path or a binary file object."""
    title = f"Capital gains statement {report.label}"
    doc = _document(target, title)
    doc.build(uk_story(report), canvasmaker=_canvas_with_footer(
        f"Nexow — {title} — generated {dt.date.today().isoformat()}"))

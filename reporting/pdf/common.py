"""What every Nexow report PDF shares: embedded fonts, paragraph styles, number formatting, the
page template with a "Page n of N" footer, and tables that never overflow the page.

Fonts are the Bitstream Vera TrueType faces shipped inside reportlab's own ``fonts`` folder, so
every environment that can import reportlab has them; they are registered once and embedded
(subset) in every PDF, so a PDF looks the same on every reader. Nothing here uses the 14 standard
PDF fonts, which readers substitute.

Formatting rule for every report: money is ``Decimal`` and printed to the cent with thousands
separators (negative amounts in parentheses only in the tax forms, here with a minus sign);
fractions from the engine (returns, drawdowns, rates) are floats rounded at this boundary and
printed as percentages with two decimals (``12.34%``); ratios (Sharpe, Sortino, Calmar, beta,
profit factor) with two decimals; a figure the engine could not compute (``None``) prints as
``n/a``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import CondPageBreak, LongTable, Paragraph, SimpleDocTemplate, TableStyle

FONT = "NexowSans"
FONT_BOLD = "NexowSans-Bold"
FONT_ITALIC = "NexowSans-Oblique"
_FONT_FILES = {FONT: "Vera.ttf", FONT_BOLD: "VeraBd.ttf", FONT_ITALIC: "VeraIt.ttf"}

PAGE = A4
MARGIN = 16 * mm
FRAME_WIDTH = PAGE[0] - 2 * MARGIN
CELL_PADDING = 3

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
ACCENT = colors.HexColor("#2459a8")
BENCH = colors.HexColor("#e08a1e")
LOSS = colors.HexColor("#c0392b")
GAIN = colors.HexColor("#1e8449")
GRID = colors.HexColor("#cbd2d9")
HEAD_BG = colors.HexColor("#e4e7eb")


def register_fonts() -> None:
    """Register the embedded TrueType faces once (idempotent)."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    folder = Path(reportlab.__file__).parent / "fonts"
    for name, filename in _FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / filename)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT_ITALIC,
                                  boldItalic=FONT_BOLD)


register_fonts()

TITLE = ParagraphStyle("NxTitle", fontName=FONT_BOLD, fontSize=22, leading=27, textColor=INK,
                       spaceAfter=8)
SUBTITLE = ParagraphStyle("NxSubtitle", fontName=FONT, fontSize=13, leading=17, textColor=MUTED,
                          spaceAfter=4)
H1 = ParagraphStyle("NxH1", fontName=FONT_BOLD, fontSize=14, leading=18, textColor=INK,
                    spaceBefore=10, spaceAfter=6)
H2 = ParagraphStyle("NxH2", fontName=FONT_BOLD, fontSize=11, leading=14, textColor=INK,
                    spaceBefore=8, spaceAfter=4)
BODY = ParagraphStyle("NxBody", fontName=FONT, fontSize=9, leading=12, textColor=INK,
                      spaceAfter=4)
SMALL = ParagraphStyle("NxSmall", parent=BODY, fontSize=7.5, leading=9.5, textColor=MUTED)
CELL = ParagraphStyle("NxCell", fontName=FONT, fontSize=8, leading=9.5, textColor=INK)
CELL_RIGHT = ParagraphStyle("NxCellRight", parent=CELL, alignment=TA_RIGHT)
CELL_HEAD = ParagraphStyle("NxCellHead", parent=CELL, fontName=FONT_BOLD)
CELL_HEAD_RIGHT = ParagraphStyle("NxCellHeadRight", parent=CELL_HEAD, alignment=TA_RIGHT)

NA = "n/a"
CENT = Decimal("0.01")


# --- number formatting ---------------------------------------------------------------------

def _unsigned_zero(value: float, places: int) -> float:
    """A value that prints as zero prints without a sign ("0.00", never "-0.00")."""
    return 0.0 if round(value, places) == 0 else value


def fmt_pct(value: float | Decimal | None, places: int = 2) -> str:
    """A fraction as a percentage: 0.1234 -> "12.34%"; None -> "n/a"."""
    if value is None:
        return NA
    return f"{_unsigned_zero(float(value) * 100, places):,.{places}f}%"


def fmt_ratio(value: float | Decimal | None, places: int = 2) -> str:
    if value is None:
        return NA
    return f"{_unsigned_zero(float(value), places):,.{places}f}"


def to_money(value: Decimal | float | int | str) -> Decimal:
    """A value as Decimal money rounded to the cent (ROUND_HALF_UP). Floats from the engine are
    converted through their shortest repr, so 0.1 becomes Decimal("0.10"), not 0.1000000000000000055."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_money(value: Decimal | float | None, currency: str = "") -> str:
    """Money with thousands separators and two decimals: Decimal("-1234.5") -> "-1,234.50"."""
    if value is None:
        return NA
    cents = to_money(value)
    if cents == 0:
        cents = abs(cents)
    text = f"{cents:,.2f}"
    return f"{text} {currency}".strip() if currency else text


def fmt_quantity(value: Decimal | float) -> str:
    if isinstance(value, float):
        value = Decimal(repr(value))
    text = f"{value.normalize():f}"
    return text


def fmt_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return NA
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def fmt_period(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"


def room(points: float = 90) -> CondPageBreak:
    """Put before a heading: a new page unless `points` remain, so a heading never ends a page
    alone (keepWithNext would push a long table's whole first page onto the next one)."""
    return CondPageBreak(points)


def para(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of plain text (escaped: names from users can contain '<' or '&')."""
    return Paragraph(escape(str(text)), style)


# --- tables --------------------------------------------------------------------------------

def _cell(value: Any, style: ParagraphStyle, width: float) -> Any:
    text = str(value)
    # Short text that fits stays a plain string (cheaper); anything wider wraps in a Paragraph,
    # so a cell never spills into its neighbour or past the page edge.
    # (alignment of plain strings comes from the table style's ALIGN for that column).
    if "\n" not in text and stringWidth(text, style.fontName, style.fontSize) <= width - 2 * CELL_PADDING:
        return text
    return para(text, style)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float],
          *, right: Sequence[int] = (), zebra: bool = True, font_size: float = 8) -> LongTable:
    """A table that fits the frame: relative `widths` are scaled to the frame width, cells wrap,
    the header repeats on every page a long table runs across, and rows never split."""
    total = float(sum(widths))
    col_widths = [FRAME_WIDTH * w / total for w in widths]
    right_set = set(right)
    body_style = ParagraphStyle("cell", parent=CELL, fontSize=font_size, leading=font_size + 1.5)
    body_right = ParagraphStyle("cellr", parent=body_style, alignment=TA_RIGHT)
    head_style = ParagraphStyle("head", parent=CELL_HEAD, fontSize=font_size,
                                leading=font_size + 1.5)
    head_right = ParagraphStyle("headr", parent=head_style, alignment=TA_RIGHT)
    data = [[para(h, head_right if i in right_set else head_style) for i, h in enumerate(header)]]
    for row in rows:
        data.append([_cell(v, body_right if i in right_set else body_style, col_widths[i])
                     for i, v in enumerate(row)])
    t = LongTable(data, colWidths=col_widths, repeatRows=1, splitByRow=1)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), font_size),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, INK),
        ("LINEBELOW", (0, -1), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for i in right_set:
        style.append(("ALIGN", (i, 0), (i, -1), "RIGHT"))
    if zebra:
        for r in range(2, len(data), 2):
            style.append(("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f5f7fa")))
    t.setStyle(TableStyle(style))
    return t


def key_value_table(pairs: Sequence[tuple[str, str]], *, columns: int = 2) -> LongTable:
    """Label/value pairs laid out in `columns` side-by-side column pairs."""
    per_col = -(-len(pairs) // columns)
    rows = []
    for r in range(per_col):
        row: list[str] = []
        for c in range(columns):
            k = c * per_col + r
            row += list(pairs[k]) if k < len(pairs) else ["", ""]
        rows.append(row)
    header = ["Metric", "Value"] * columns
    return table(header, rows, [3, 1.6] * columns,
                 right=[i for i in range(2 * columns) if i % 2 == 1])


# --- the document --------------------------------------------------------------------------

def numbered_canvas(footer: str) -> type[Canvas]:
    """A canvas class that writes `footer` and "Page n of N" at the foot of every page (the
    total is only known once every page is laid out, so pages are buffered until save)."""

    class _Numbered(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # Otherwise every page stream starts in Helvetica, a font that is not embedded.
            kwargs["initialFontName"] = kwargs.get("initialFontName") or FONT
            kwargs["initialFontSize"] = kwargs.get("initialFontSize") or 9
            super().__init__(*args, **kwargs)
            self._saved: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self.setFont(FONT, 7.5)
                self.setFillColor(MUTED)
                self.drawString(MARGIN, 9 * mm, footer)
                self.drawRightString(PAGE[0] - MARGIN, 9 * mm,
                                     f"Page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return _Numbered


def build_pdf(story: list[Any], target: str | Path | BinaryIO | None, *, title: str,
              author: str, footer: str) -> bytes | None:
    """Lay out `story` on A4 portrait; writes to `target`, or returns the bytes when None."""
    out: Any = io.BytesIO() if target is None else target
    if isinstance(out, Path):
        out = str(out)
    doc = SimpleDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=MARGIN, bottomMargin=MARGIN + 4 * mm, title=title,
                            author=author, creator="Nexow", subject=title,
                            initialFontName=FONT, initialFontSize=9)
    doc.build(story, canvasmaker=numbered_canvas(footer))
    return out.getvalue() if target is None else None

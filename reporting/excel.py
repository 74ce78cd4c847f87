"""Excel (.xlsx) exports with openpyxl: trades, statements and tax rows.

Each sheet has a bold, frozen header row and an auto-filter; Decimal money is written as a
number with a two-decimal format (Excel has no decimal type, so values are exact to the cent as
displayed but stored as doubles — the CSV exports remain the exact record); datetimes are written
naive in UTC (Excel has no time zones).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reporting.statements import Statement

MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"


@dataclass(slots=True)
class Sheet:
    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]


def _cell_value(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, Decimal):
        return float(value), MONEY_FORMAT
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value, DATETIME_FORMAT
    if isinstance(value, dt.date):
        return value, DATE_FORMAT
    return value, None


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for sheet in sheets:
        ws = wb.create_sheet(sheet.title[:31])
        ws.append(list(sheet.header))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        widths = [len(str(h)) for h in sheet.header]
        for r, row in enumerate(sheet.rows, start=2):
            for c, raw in enumerate(row, start=1):
                value, fmt = _cell_value(raw)
                cell = ws.cell(row=r, column=c, value=value)
                if fmt:
                    cell.number_format = fmt
                widths[c - 1] = max(widths[c - 1], min(40, len(str(raw))))
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = w + 2
        ws.freeze_panes = "A2"
        if ws.max_row > 1:
            ws.auto_filter.ref = ws.dimensions
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


TRADE_HEADER = ("Symbol", "Side", "Entry time", "Exit time", "Quantity", "Entry price",
                "Exit price", "P&L", "Fees")


def trades_xlsx(trades: Iterable[Any]) -> bytes:
    """Trades (objects or dicts with the simulation trade fields)."""
    def get(t: Any, name: str) -> Any:
        return t[name] if isinstance(t, dict) else getattr(t, name)

    rows = [[get(t, "symbol"), get(t, "side"), get(t, "entry_time"), get(t, "exit_time"),
             get(t, "quantity"), get(t, "entry_price"), get(t, "exit_price"), get(t, "pnl"),
             get(t, "fees")] for t in trades]
    return workbook_bytes([Sheet("Trades", TRADE_HEADER, rows)])


def statement_xlsx(statement: Statement) -> bytes:
    summary = Sheet("Summary", ("Item", "Amount"), statement.summary())
    positions = Sheet("Positions", ("Symbol", "Quantity", "Average cost", "Cost", "Price",
                                    "Market value", "Unrealised P&L"),
                      [(p.symbol, float(p.quantity), p.average_cost, p.cost, p.price,
                        p.market_value, p.unrealised) for p in statement.positions])
    activity = Sheet("Activity", ("Date", "Type", "Description", "Quantity", "Price", "Fee",
                                  "Cash effect", "Realised P&L"),
                     [(ln.date, ln.kind, ln.description,
                       float(ln.quantity) if ln.quantity is not None else None, ln.price, ln.fee,
                       ln.amount, ln.realised) for ln in statement.lines])
    return workbook_bytes([summary, positions, activity])


def tax_xlsx(rows: Sequence[dict[str, Any]], title: str = "Tax") -> bytes:
    """Tax rows as the tax engine's dict output gives them (strings of Decimal stay exact as
    numbers where they parse, text otherwise)."""
    if not rows:
        return workbook_bytes([Sheet(title, ("No rows",), [])])
    header = [k for k in rows[0] if not isinstance(rows[0][k], (list, dict))]

    def conv(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return Decimal(v)
            except ArithmeticError:
                return v
        return v

    return workbook_bytes([Sheet(title, header, [[conv(r.get(k)) for k in header]
                                                 for r in rows])])

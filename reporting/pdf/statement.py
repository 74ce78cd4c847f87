"""The monthly account statement PDF: summary, positions with cost and market value, and the
activity list, from a computed `reporting.statements.Statement` (all money Decimal)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from reportlab.platypus import Spacer

from reporting.pdf.common import (
    H1,
    SMALL,
    SUBTITLE,
    TITLE,
    build_pdf,
    fmt_date,
    fmt_money,
    fmt_period,
    fmt_quantity,
    para,
    room,
    table,
    to_money,
)
from reporting.statements import Statement


def statement_pdf(statement: Statement, target: str | Path | BinaryIO | None = None, *,
                  organization: str, generated_at: dt.datetime | None = None,
                  notes: Sequence[str] = ()) -> bytes | None:
    """Render the statement; returns the bytes when `target` is None. `notes` (where the
    figures come from) are printed under the summary."""
    a = statement.activity
    cur = a.currency
    generated = generated_at or dt.datetime.now(dt.UTC)
    story = [
        para(f"{organization}", SUBTITLE),
        para(f"Account statement — {a.account}", TITLE),
        para(f"Period {fmt_period(a.period_start, a.period_end)} · amounts in {cur}", SUBTITLE),
        para(f"Generated {generated:%Y-%m-%d %H:%M} UTC", SMALL),
        Spacer(1, 8),
        room(), para("Summary", H1),
        table(["Item", f"Amount ({cur})"],
              [(label, fmt_money(value)) for label, value in statement.summary()],
              [4, 2], right=[1], zebra=False),
    ]
    diff = to_money(statement.reconciliation_difference)
    if diff != 0:
        story.append(para(f"Reconciliation difference: {fmt_money(diff)} — the activity does not "
                          "add up; please contact support.", SMALL))
    else:
        story.append(para("Closing value = opening value + deposits − withdrawals + income − fees "
                          "+ realised P&L + change in unrealised P&L (average cost).", SMALL))
    story += [para(note, SMALL) for note in notes]
    story += [
        room(), para("Positions at close", H1),
        table(["Symbol", "Quantity", "Avg cost", "Cost", "Price", "Market value",
               "Unrealised P&L"],
              [(p.symbol, fmt_quantity(p.quantity), fmt_money(p.average_cost),
                fmt_money(p.cost), fmt_money(p.price), fmt_money(p.market_value),
                fmt_money(p.unrealised)) for p in statement.positions]
              or [("No open positions", "", "", "", "", "", "")],
              [1.4, 1.1, 1.1, 1.4, 1.1, 1.4, 1.4], right=[1, 2, 3, 4, 5, 6]),
        room(), para("Activity", H1),
        table(["Date", "Type", "Description", "Quantity", "Price", "Fee", "Cash effect",
               "Realised P&L"],
              [(fmt_date(line.date), line.kind, line.description,
                fmt_quantity(line.quantity) if line.quantity is not None else "",
                fmt_money(line.price) if line.price is not None else "",
                fmt_money(line.fee), fmt_money(line.amount), fmt_money(line.realised))
               for line in statement.lines] or [("", "", "No activity", "", "", "", "", "")],
              [1.5, 0.9, 2.2, 0.9, 1, 0.8, 1.2, 1.1], right=[3, 4, 5, 6, 7], font_size=7.5),
    ]
    return build_pdf(story, target, title=f"Statement {a.account} {a.period_start:%Y-%m}",
                     author=organization,
                     footer=f"{organization} · {a.account} · {fmt_period(a.period_start, a.period_end)}")

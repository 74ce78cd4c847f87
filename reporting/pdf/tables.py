"""Tabular report PDFs (best execution, risk-limit breaches, audit log): a title block and one
or more tables that split across pages with their header repeated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from reportlab.platypus import Spacer

from reporting.pdf.common import BODY, H1, SMALL, SUBTITLE, TITLE, build_pdf, para, room, table


@dataclass(slots=True)
class TableSection:
    heading: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    widths: Sequence[float]
    right: Sequence[int] = ()
    note: str = ""


@dataclass(slots=True)
class TableReport:
    organization: str
    title: str
    period: str
    sections: list[TableSection] = field(default_factory=list)
    intro: str = ""
    generated_at: dt.datetime | None = None


def table_report_pdf(report: TableReport, target: str | Path | BinaryIO | None = None
                     ) -> bytes | None:
    generated = report.generated_at or dt.datetime.now(dt.UTC)
    story: list[Any] = [
        para(report.organization, SUBTITLE), para(report.title, TITLE),
        para(f"Period: {report.period}", SUBTITLE),
        para(f"Generated {generated:%Y-%m-%d %H:%M} UTC", SMALL), Spacer(1, 6)]
    if report.intro:
        story.append(para(report.intro, BODY))
    for s in report.sections:
        story += [room(), para(s.heading, H1)]
        rows = list(s.rows) or [["No records in this period."] + [""] * (len(s.header) - 1)]
        story.append(table(s.header, rows, s.widths, right=s.right, font_size=7.5))
        if s.note:
            story.append(para(s.note, SMALL))
    return build_pdf(story, target, title=report.title, author=report.organization,
                     footer=f"{report.organization} · {report.title} · {report.period}")

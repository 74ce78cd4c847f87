"""JSON and CSV renderings of the US and UK tax reports.

Money is a decimal string rounded to the cent ("1234.56", ROUND_HALF_UP), quantities are decimal
strings without trailing zeros, dates are ISO 8601. The US JSON document is exactly
``{"rows": [...], "schedule_d": {...}, "open_lots": [...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from reporting.tax.model import ZERO, money_str, quantity_str
from reporting.tax.uk import UKReport, UKSummary
from reporting.tax.us import LineTotal, LotLine, Row, ScheduleD, USReport

VARIOUS = "VARIOUS"

US_CSV_COLUMNS = ("part", "box", "description", "quantity", "date_acquired", "date_sold",
                  "proceeds", "cost_basis", "code", "adjustment", "gain", "term", "lots",
                  "wash_sale_to")
UK_CSV_COLUMNS = ("date", "symbol", "quantity", "proceeds", "allowable_costs", "gain",
                  "same_day_quantity", "thirty_day_quantity", "section_104_quantity", "trades")


def _lot_dict(line: LotLine) -> dict[str, Any]:
    return {
        "lot": line.lot,
        "quantity": quantity_str(line.quantity),
        "date_acquired": line.date_acquired.isoformat(),
        "proceeds": money_str(line.proceeds),
        "cost_basis": money_str(line.cost_basis),
        "wash_sale_basis": money_str(line.wash_basis),
        "wash_sale_from": line.wash_from,
        "disallowed_loss": money_str(line.disallowed_loss),
        "wash_sale_to": [
            {"lot": w.to_lot, "quantity": quantity_str(w.quantity),
             "amount": money_str(w.amount), "date_acquired": w.acquired.isoformat()}
            for w in line.wash_to
        ],
    }


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "description": row.description,
        "quantity": quantity_str(row.quantity),
        "date_acquired": row.date_acquired.isoformat() if row.date_acquired else VARIOUS,
        "date_sold": row.date_sold.isoformat(),
        "proceeds": money_str(row.proceeds),
        "cost_basis": money_str(row.cost_basis),
        "code": row.code,
        "adjustment": money_str(row.adjustment),
        "gain": money_str(row.gain),
        "term": row.term,
        "box": row.box,
        "lots": [_lot_dict(line) for line in row.lots],
    }


def _total_dict(total: LineTotal) -> dict[str, str]:
    return {"proceeds": money_str(total.proceeds), "cost_basis": money_str(total.cost_basis),
            "adjustment": money_str(total.adjustment), "gain": money_str(total.gain)}


def schedule_d_dict(s: ScheduleD) -> dict[str, Any]:
    return {
        "line_1b": _total_dict(s.line_1b), "line_2": _total_dict(s.line_2),
        "line_3": _total_dict(s.line_3), "line_6": money_str(s.line_6),
        "line_7": money_str(s.line_7),
        "line_8b": _total_dict(s.line_8b), "line_9": _total_dict(s.line_9),
        "line_10": _total_dict(s.line_10), "line_14": money_str(s.line_14),
        "line_15": money_str(s.line_15), "line_16": money_str(s.line_16),
        "line_21": money_str(s.line_21),
        "capital_loss_limit": money_str(s.capital_loss_limit),
        "loss_over_limit": money_str(s.loss_over_limit),
        "filing_status": s.filing_status,
    }


def us_dict(report: USReport) -> dict[str, Any]:
    return {
        "rows": [row_dict(row) for row in report.rows],
        "schedule_d": schedule_d_dict(report.schedule_d),
        "open_lots": [
            {"symbol": lot.symbol, "quantity": quantity_str(lot.quantity),
             "cost_basis": money_str(lot.cost_basis),
             "date_acquired": lot.date_acquired.isoformat()}
            for lot in report.open_lots
        ],
    }


def us_json(report: USReport) -> str:
    return json.dumps(us_dict(report), indent=2) + "\n"


def us_csv(report: USReport) -> str:
    """Form 8949 rows, one per line, with the lots consumed and wash-sale moves flattened."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(US_CSV_COLUMNS)
    for row in report.rows:
        data = row_dict(row)
        writer.writerow([
            "I" if row.term == "short" else "II", row.box, data["description"],
            data["quantity"], data["date_acquired"], data["date_sold"], data["proceeds"],
            data["cost_basis"], row.code, data["adjustment"], data["gain"], row.term,
            ";".join(f"{lot['lot']}:{lot['quantity']}" for lot in data["lots"]),
            ";".join(f"{w['lot']}:{w['quantity']}:{w['amount']}"
                     for lot in data["lots"] for w in lot["wash_sale_to"]),
        ])
    return out.getvalue()


def _summary_dict(s: UKSummary) -> dict[str, Any]:
    return {"disposals": s.disposals, "proceeds": money_str(s.proceeds),
            "allowable_costs": money_str(s.allowable_costs), "gains": money_str(s.gains),
            "losses": money_str(s.losses), "net": money_str(s.net)}


def uk_dict(report: UKReport) -> dict[str, Any]:
    return {
        "tax_year": report.label,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "disposals": [
            {"symbol": d.symbol, "date": d.date.isoformat(), "quantity": quantity_str(d.quantity),
             "proceeds": money_str(d.proceeds), "allowable_costs": money_str(d.allowable_costs),
             "gain": money_str(d.gain), "trades": d.trade_ids,
             "matches": [{"rule": m.rule, "quantity": quantity_str(m.quantity),
                          "cost": money_str(m.cost),
                          "date_acquired": m.acquired.isoformat() if m.acquired else None}
                         for m in d.matches]}
            for d in report.disposals
        ],
        "summary": _summary_dict(report.summary),
        "summary_by_class": {k: _summary_dict(v) for k, v in report.summary_by_class.items()},
        "section_104_pools": [
            {"symbol": p.symbol, "quantity": quantity_str(p.quantity), "cost": money_str(p.cost)}
            for p in report.pools
        ],
    }


def uk_json(report: UKReport) -> str:
    return json.dumps(uk_dict(report), indent=2) + "\n"


def uk_csv(report: UKReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(UK_CSV_COLUMNS)
    for d in report.disposals:
        by_rule = dict.fromkeys(("same_day", "30_day", "section_104"), ZERO)
        for m in d.matches:
            by_rule[m.rule] += m.quantity
        writer.writerow([d.date.isoformat(), d.symbol, quantity_str(d.quantity),
                         money_str(d.proceeds), money_str(d.allowable_costs), money_str(d.gain),
                         quantity_str(by_rule["same_day"]), quantity_str(by_rule["30_day"]),
                         quantity_str(by_rule["section_104"]), ";".join(d.trade_ids)])
    return out.getvalue()

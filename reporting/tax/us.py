"""United States: Form 8949 rows, Schedule D totals and open lots for one tax year.

Rows: one per sell and holding term (a sell that consumed both short- and long-term units gives
two rows). Column (b) is the acquisition date used for the holding period (moved back by a wash
sale carry-over), or ``VARIOUS`` when the row's units were acquired on different dates. Column
(g) carries the disallowed wash-sale loss as a positive adjustment with code ``W``, and
(h) = (d) − (e) + (g) on the reported cents.

Boxes: securities and fund shares use A/B/C (short) and D/E/F (long); digital assets use the
Form 8949 digital-asset boxes G/H/I (short) and J/K/L (long). Which letter of each triple
depends on what the broker's form reported: ``basis_reported`` (A, D, G, J — the default),
``basis_not_reported`` (B, E, H, K) or ``not_reported`` (no Form 1099-B/1099-DA: C, F, I, L).
Schedule D lines 1b/2/3 and 8b/9/10 total the boxes (A or G, B or H, C or I; D or J, E or K,
F or L). Every figure is rounded to the cent (ROUND_HALF_UP) at the piece level and the totals
are sums of the reported cents, so the forms add up as printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from reporting.tax.lots import LotResult, match_lots
from reporting.tax.model import (
    ZERO,
    OpenLot,
    Piece,
    TaxConfigError,
    Trade,
    WashMove,
    quantity_str,
)

REPORTING_MODES = ("basis_reported", "basis_not_reported", "not_reported")
_BOXES = {
    ("security", False): "ABC", ("security", True): "DEF",
    ("digital_asset", False): "GHI", ("digital_asset", True): "JKL",
}
_SCHEDULE_D_LINES = {
    "A": "line_1b", "G": "line_1b", "B": "line_2", "H": "line_2", "C": "line_3", "I": "line_3",
    "D": "line_8b", "J": "line_8b", "E": "line_9", "K": "line_9", "F": "line_10", "L": "line_10",
}
CAPITAL_LOSS_LIMIT = Decimal(3000)
CAPITAL_LOSS_LIMIT_MFS = Decimal(1500)


@dataclass
class LotLine:
    """Audit of one piece of a row: the buy it consumed and any wash sale in or out."""

    lot: str
    quantity: Decimal
    date_acquired: dt.date
    proceeds: Decimal
    cost_basis: Decimal
    wash_basis: Decimal
    wash_from: list[str]
    disallowed_loss: Decimal
    wash_to: list[WashMove]


@dataclass
class Row:
    """One Form 8949 line."""

    description: str
    quantity: Decimal
    date_acquired: dt.date | None  # None prints as VARIOUS
    date_sold: dt.date
    proceeds: Decimal
    cost_basis: Decimal
    code: str
    adjustment: Decimal
    gain: Decimal
    term: str  # "short" | "long"
    box: str
    symbol: str
    sale_id: str
    lots: list[LotLine] = field(default_factory=list)


@dataclass
class LineTotal:
    proceeds: Decimal = ZERO
    cost_basis: Decimal = ZERO
    adjustment: Decimal = ZERO
    gain: Decimal = ZERO

    def add(self, row: Row) -> None:
        self.proceeds += row.proceeds
        self.cost_basis += row.cost_basis
        self.adjustment += row.adjustment
        self.gain += row.gain


@dataclass
class ScheduleD:
    """The Schedule D lines this engine fills (1b, 2, 3, 6, 7, 8b, 9, 10, 14, 15, 16, 21)."""

    line_1b: LineTotal
    line_2: LineTotal
    line_3: LineTotal
    line_6: Decimal  # short-term loss carryover (entered as a positive amount, subtracted)
    line_7: Decimal
    line_8b: LineTotal
    line_9: LineTotal
    line_10: LineTotal
    line_14: Decimal  # long-term loss carryover
    line_15: Decimal
    line_16: Decimal
    line_21: Decimal  # the deductible loss this year (negative), zero when line 16 is a gain
    capital_loss_limit: Decimal
    loss_over_limit: Decimal  # part of a net loss beyond the limit (to carry over), positive
    filing_status: str


@dataclass
class USReport:
    year: int
    method: str
    rows: list[Row]
    schedule_d: ScheduleD
    open_lots: list[OpenLot]
    as_of: dt.date


def box_for(asset_class: str, long_term: bool, reporting: str) -> str:
    family = "digital_asset" if asset_class == "digital_asset" else "security"
    return _BOXES[(family, long_term)][REPORTING_MODES.index(reporting)]


def _lot_line(piece: Piece) -> LotLine:
    wash_to = list(piece.wash_out or ())
    return LotLine(
        lot=piece.lot.id, quantity=piece.quantity, date_acquired=piece.acquired,
        proceeds=piece.proceeds_cents, cost_basis=piece.basis_cents,
        wash_basis=piece.wash_basis,
        wash_from=sorted({w.sale_id for w in piece.wash_from}) if piece.wash_from else [],
        disallowed_loss=piece.disallowed_cents, wash_to=wash_to)


def form_8949_rows(result: LotResult, year: int, *, security_reporting: str = "basis_reported",
                   digital_asset_reporting: str = "basis_reported") -> list[Row]:
    """The Form 8949 rows of sells dated in ``year``: short-term first, then long-term."""
    for mode in (security_reporting, digital_asset_reporting):
        if mode not in REPORTING_MODES:
            raise TaxConfigError(f"unknown reporting mode {mode!r}; expected "
                                 f"{', '.join(REPORTING_MODES)}")
    rows: list[Row] = []
    for disposal in result.disposals:
        trade = disposal.trade
        sold = trade.trade_date
        if sold.year != year:
            continue
        reporting = (digital_asset_reporting if trade.asset_class == "digital_asset"
                     else security_reporting)
        for long_term in (False, True):
            pieces = [p for p in disposal.pieces if p.long_term is long_term]
            if not pieces:
                continue
            quantity = sum((p.quantity for p in pieces), ZERO)
            proceeds = sum((p.proceeds_cents for p in pieces), ZERO)
            basis = sum((p.basis_cents for p in pieces), ZERO)
            adjustment = sum((p.disallowed_cents for p in pieces), ZERO)
            dates = {p.acquired for p in pieces}
            rows.append(Row(
                description=f"{quantity_str(quantity)} {trade.symbol}",
                quantity=quantity,
                date_acquired=dates.pop() if len(dates) == 1 else None,
                date_sold=sold,
                proceeds=proceeds,
                cost_basis=basis,
                code="W" if any(p.disallowed for p in pieces) else "",
                adjustment=adjustment,
                gain=proceeds - basis + adjustment,
                term="long" if long_term else "short",
                box=box_for(trade.asset_class, long_term, reporting),
                symbol=trade.symbol,
                sale_id=trade.id,
                lots=[_lot_line(p) for p in pieces],
            ))
    rows.sort(key=lambda r: (r.term != "short", r.box, r.date_sold))
    return rows


def schedule_d(rows: Sequence[Row], *, married_filing_separately: bool = False,
               short_term_carryover: Decimal = ZERO,
               long_term_carryover: Decimal = ZERO) -> ScheduleD:
    """Schedule D totals from Form 8949 rows; carryovers are positive amounts of loss."""
    lines = {name: LineTotal() for name in ("line_1b", "line_2", "line_3", "line_8b", "line_9",
                                            "line_10")}
    for row in rows:
        lines[_SCHEDULE_D_LINES[row.box]].add(row)
    line_7 = lines["line_1b"].gain + lines["line_2"].gain + lines["line_3"].gain
    line_7 -= short_term_carryover
    line_15 = lines["line_8b"].gain + lines["line_9"].gain + lines["line_10"].gain
    line_15 -= long_term_carryover
    line_16 = line_7 + line_15
    limit = CAPITAL_LOSS_LIMIT_MFS if married_filing_separately else CAPITAL_LOSS_LIMIT
    line_21 = max(line_16, -limit) if line_16 < 0 else ZERO
    return ScheduleD(
        line_1b=lines["line_1b"], line_2=lines["line_2"], line_3=lines["line_3"],
        line_6=short_term_carryover, line_7=line_7,
        line_8b=lines["line_8b"], line_9=lines["line_9"], line_10=lines["line_10"],
        line_14=long_term_carryover, line_15=line_15, line_16=line_16, line_21=line_21,
        capital_loss_limit=limit, loss_over_limit=line_21 - line_16 if line_16 < 0 else ZERO,
        filing_status="married_filing_separately" if married_filing_separately else "other",
    )


def us_report(trades: Sequence[Trade], year: int, *, method: str = "fifo",
              wash_sale_digital_assets: bool = False, security_reporting: str = "basis_reported",
              digital_asset_reporting: str = "basis_reported",
              married_filing_separately: bool = False,
              short_term_carryover: Decimal = ZERO,
              long_term_carryover: Decimal = ZERO) -> USReport:
    """Form 8949, Schedule D and open lots at 31 December of ``year`` from validated trades."""
    as_of = dt.date(year, 12, 31)
    result = match_lots(trades, method=method, wash_sale_digital_assets=wash_sale_digital_assets,
                        as_of=as_of)
    rows = form_8949_rows(result, year, security_reporting=security_reporting,
                          digital_asset_reporting=digital_asset_reporting)
    totals = schedule_d(rows, married_filing_separately=married_filing_separately,
                        short_term_carryover=short_term_carryover,
                        long_term_carryover=long_term_carryover)
    return USReport(year, method, rows, totals, result.open_lots, as_of)

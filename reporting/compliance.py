"""Compliance exports: MiFIR RTS 22 transaction reports, best-execution analysis, risk-limit
breach and audit-log tables. Pure functions of plain records (no database), money in Decimal.

RTS 22 (Commission Delegated Regulation (EU) 2017/590) lists 65 fields; Nexow reports the ones it
knows (see `RTS22_FIELDS`) and leaves the firm's regulatory identifiers (LEI, national IDs of
decision makers) to the parameters it is given. Times are UTC with microseconds, as Annex I
field 28 requires (``YYYY-MM-DDThh:mm:ss.ffffffZ``); buy/sell is ``BUYI``/``SELL``; the venue is
a segment MIC (``XOFF`` for off-venue trades).

XML (`rts22_xml`) is the regulator's layout: an ISO 20022 ``auth.016.001.01`` document
(FinInstrmRptgTxRpt) in the namespace ``urn:iso:std:iso:20022:tech:xsd:auth.016.001.01``, one
``Tx/New`` per execution, with the elements the schema requires and those Nexow knows, in the
schema's order::

    <Document xmlns="urn:iso:std:iso:20022:tech:xsd:auth.016.001.01">
      <FinInstrmRptgTxRpt>
        <Tx><New>
          <TxId/> <ExctgPty/> <InvstmtPtyInd/> <SubmitgPty/>
          <Buyr><AcctOwnr><Id><LEI/> | <MIC/></Id></AcctOwnr></Buyr>
          <Sellr>(the same)</Sellr>
          <OrdrTrnsmssn><TrnsmssnInd>false</TrnsmssnInd></OrdrTrnsmssn>
          <Tx> <TradDt/> <TradgCpcty/> <Qty><Unit/></Qty>
               <Pric><Pric><MntryVal><Amt Ccy=""/></MntryVal></Pric></Pric>
               <TradVn/> </Tx>
          <FinInstrm><Id/> (the ISIN)</FinInstrm>
          <InvstmtDcsnPrsn><Algo/> | <Prsn>...</Prsn></InvstmtDcsnPrsn>
          <ExctgPrsn><Algo/> | <Prsn>...</Prsn></ExctgPrsn>
          <AddtlAttrbts><RskRdcgTx>false</RskRdcgTx>
                        <SctiesFincgTxInd>false</SctiesFincgTxInd></AddtlAttrbts>
        </New></Tx>
        ...
      </FinInstrmRptgTxRpt>
    </Document>

The firm's own side (buyer of a buy, seller of a sell) is the executing entity's LEI; the other
side is the counterparty's LEI, or, for a trade on a venue without a known counterparty, the
venue's MIC. A person (decision maker or trader) is ``Prsn/Othr/Id`` with the scheme ``NIDN``
(national identifier, as given) and, when known, ``CtryOfBrnch``. ``NetAmt`` (debt only) is not
written. A document the regulator would reject is not written at all: `rts22_xml_problems`
lists what is missing (an ISIN per instrument, the counterparty of an off-venue trade, the
person behind a manual trade, a MIC venue, a known trading capacity) and the report request is
a 400 naming it.

Best execution: slippage of a fill is measured against the price at the time the order was
decided (arrival price), signed so that a positive number is a cost:
``slippage = side * (fill price - arrival price)`` per unit (side +1 buy, -1 sell), in basis
points ``slippage / arrival * 10_000``; the money cost is ``slippage * quantity``. Groups report
the notional-weighted average in bps and the summed cost.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

ZERO = Decimal(0)
BPS = Decimal("0.01")
CENT = Decimal("0.01")
OFF_VENUE = "XOFF"


class ComplianceInputError(ValueError):
    """A record cannot be reported as given."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """One execution, as RTS 22 needs it."""

    reference: str
    executed_at: dt.datetime  # timezone-aware
    instrument: str  # ISIN when known, otherwise the symbol
    instrument_name: str
    side: Literal["buy", "sell"]
    quantity: Decimal
    price: Decimal
    currency: str
    venue: str = OFF_VENUE  # segment MIC
    decision_maker: str = ""  # person or algorithm that decided
    executed_by: str = ""  # person or algorithm that executed
    algorithm_id: str | None = None  # set for algorithmic trades
    counterparty: str = ""  # the other side's LEI, when known
    trading_capacity: str = "DEAL"  # DEAL (own account), MTCH or AOTC
    instrument_cfi: str = ""  # ISO 10962 classification, when known
    person_country: str = ""  # branch country (ISO 3166) of the persons named


RTS22_FIELDS: tuple[tuple[str, str], ...] = (
    # (CSV column, meaning / Annex I field)
    ("transaction_reference", "3 Transaction reference number"),
    ("executing_entity", "4 Executing entity identification code (LEI)"),
    ("investment_decision", "57 Investment decision within firm (person or algorithm)"),
    ("execution_within_firm", "59 Execution within firm (person or algorithm)"),
    ("algorithmic", "Algorithm flag: true when an algorithm decided or executed"),
    ("algorithm_id", "Algorithm identifier (57/59 code when an algorithm)"),
    ("trading_date_time", "28 Trading date time (UTC, microseconds)"),
    ("buy_sell", "Buyer/seller side: BUYI or SELL"),
    ("quantity", "30 Quantity"),
    ("price", "33 Price"),
    ("price_currency", "34 Price currency"),
    ("net_amount", "35 Net amount (quantity x price)"),
    ("venue", "36 Venue (segment MIC, XOFF off venue)"),
    ("instrument_id", "41 Instrument identification code"),
    ("instrument_name", "42 Instrument full name"),
)


def _utc(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ComplianceInputError("execution times must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rts22_rows(transactions: Iterable[Transaction], *, executing_entity: str = ""
               ) -> list[dict[str, str]]:
    rows = []
    for t in transactions:
        if t.side not in ("buy", "sell"):
            raise ComplianceInputError(f"{t.reference}: side must be buy or sell")
        if Decimal(t.quantity) <= 0:
            raise ComplianceInputError(f"{t.reference}: quantity must be positive")
        qty, price = Decimal(t.quantity), Decimal(t.price)
        rows.append({
            "transaction_reference": t.reference,
            "executing_entity": executing_entity,
            "investment_decision": t.algorithm_id or t.decision_maker,
            "execution_within_firm": t.algorithm_id or t.executed_by or t.decision_maker,
            "algorithmic": "true" if t.algorithm_id else "false",
            "algorithm_id": t.algorithm_id or "",
            "trading_date_time": _utc(t.executed_at),
            "buy_sell": "BUYI" if t.side == "buy" else "SELL",
            "quantity": f"{qty.normalize():f}",
            "price": f"{price.normalize():f}",
            "price_currency": t.currency,
            "net_amount": f"{(qty * price).quantize(CENT, ROUND_HALF_UP):f}",
            "venue": t.venue or OFF_VENUE,
            "instrument_id": t.instrument,
            "instrument_name": t.instrument_name,
        })
    return rows


def rts22_csv(transactions: Iterable[Transaction], *, executing_entity: str = "") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f for f, _ in RTS22_FIELDS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rts22_rows(transactions, executing_entity=executing_entity))
    return out.getvalue()


AUTH016_NS = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"
_LEI = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_MIC = re.compile(r"^[A-Z0-9]{4}$")


def is_isin(code: str) -> bool:
    """True for a well-formed ISIN whose check digit is right (ISO 6166, Luhn over the digits
    of the letters' values)."""
    if not _ISIN.match(code or ""):
        return False
    digits = "".join(str(int(c, 36)) for c in code[:-1])
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10 == int(code[-1])


def is_lei(code: str) -> bool:
    """True for a well-formed LEI (ISO 17442: 18 characters and two check digits, ISO 7064
    MOD 97-10)."""
    if not _LEI.match(code or ""):
        return False
    return int("".join(str(int(c, 36)) for c in code)) % 97 == 1


def _el(parent: ET.Element, tag: str, text: str | None = None,
        attrib: dict[str, str] | None = None) -> ET.Element:
    node = ET.SubElement(parent, f"{{{AUTH016_NS}}}{tag}", attrib or {})
    if text is not None:
        node.text = text
    return node


_COUNTRY = re.compile(r"^[A-Z]{2}$")
TRADING_CAPACITIES = ("DEAL", "MTCH", "AOTC")


def rts22_xml_problems(transactions: Sequence[Transaction], *,
                       executing_entity: str) -> list[tuple[str, str]]:
    """What keeps these transactions out of a valid auth.016 document, as (what, problem)
    pairs; `what` names the input to mend: ``executing_entity``, ``isins``, ``counterparty``,
    ``decision_maker``, ``trading_capacity``, ``venue`` or ``branch_country``."""
    problems: list[tuple[str, str]] = []
    if not is_lei(executing_entity):
        problems.append(("executing_entity", "the executing entity must be the firm's LEI"))
    no_isin = sorted({t.instrument_name or t.instrument for t in transactions
                      if not is_isin(t.instrument)})
    if no_isin:
        problems.append(("isins", "an ISIN is needed for each instrument; missing for "
                                  + ", ".join(no_isin[:10])))
    for t in transactions:
        ref = t.reference
        venue = t.venue or OFF_VENUE
        if not _MIC.match(venue):
            problems.append(("venue", f"{ref}: the venue must be a MIC (4 characters), "
                                      f"not {venue!r}"))
        if t.trading_capacity not in TRADING_CAPACITIES:
            problems.append(("trading_capacity", f"{ref}: trading capacity must be one of "
                                                 f"{', '.join(TRADING_CAPACITIES)}"))
        if t.counterparty and not is_lei(t.counterparty):
            problems.append(("counterparty", f"{ref}: the counterparty must be an LEI"))
        elif not t.counterparty and venue == OFF_VENUE:
            problems.append(("counterparty", f"{ref}: an off-venue trade names its "
                                             "counterparty's LEI"))
        if not t.algorithm_id and not (t.executed_by or t.decision_maker):
            problems.append(("decision_maker", f"{ref}: a person's trade names who decided "
                                               "and executed it"))
        if t.person_country and not _COUNTRY.match(t.person_country):
            problems.append(("branch_country", f"{ref}: the branch country must be an ISO "
                                               "3166 alpha-2 code"))
    return problems


def _party(parent: ET.Element, tag: str, code: str, venue: str) -> None:
    """A buyer or seller: an LEI (the firm, or a known counterparty), else the MIC of the
    trading venue the trade was made on."""
    ident = _el(_el(_el(parent, tag), "AcctOwnr"), "Id")
    if is_lei(code):
        _el(ident, "LEI", code)
    else:
        _el(ident, "MIC", venue)


def _person_or_algo(parent: ET.Element, tag: str, algorithm: str | None, person: str,
                    country: str) -> None:
    node = _el(parent, tag)
    if algorithm:
        _el(node, "Algo", algorithm)
        return
    prsn = _el(node, "Prsn")
    if country:
        _el(prsn, "CtryOfBrnch", country)
    othr = _el(prsn, "Othr")
    _el(othr, "Id", person)
    _el(_el(othr, "SchmeNm"), "Cd", "NIDN")


def rts22_xml(transactions: Iterable[Transaction], *, executing_entity: str = "",
              submitting_entity: str = "") -> bytes:
    """The report as an ISO 20022 auth.016.001.01 document (see the module docstring), UTF-8.
    `submitting_entity` defaults to the executing entity (a firm reporting for itself). Raises
    `ComplianceInputError` listing every problem (`rts22_xml_problems`) rather than write a
    document the regulator would reject."""
    txs = list(transactions)
    problems = rts22_xml_problems(txs, executing_entity=executing_entity)
    if problems:
        raise ComplianceInputError("; ".join(message for _, message in problems[:20]))
    rows = rts22_rows(txs, executing_entity=executing_entity)
    ET.register_namespace("", AUTH016_NS)
    root = ET.Element(f"{{{AUTH016_NS}}}Document")
    report = _el(root, "FinInstrmRptgTxRpt")
    for t, row in zip(txs, rows, strict=True):
        new = _el(_el(report, "Tx"), "New")
        _el(new, "TxId", row["transaction_reference"])
        _el(new, "ExctgPty", executing_entity)
        _el(new, "InvstmtPtyInd", "true")
        _el(new, "SubmitgPty", submitting_entity or executing_entity)
        ours, theirs = executing_entity, t.counterparty
        buyer, seller = (ours, theirs) if t.side == "buy" else (theirs, ours)
        _party(new, "Buyr", buyer, row["venue"])
        _party(new, "Sellr", seller, row["venue"])
        _el(_el(new, "OrdrTrnsmssn"), "TrnsmssnInd", "false")
        tx = _el(new, "Tx")
        _el(tx, "TradDt", row["trading_date_time"])
        _el(tx, "TradgCpcty", t.trading_capacity)
        _el(_el(tx, "Qty"), "Unit", row["quantity"])
        _el(_el(_el(_el(tx, "Pric"), "Pric"), "MntryVal"), "Amt", row["price"],
            {"Ccy": row["price_currency"]})
        # NetAmt (field 35) is for debt instruments only: not written for the shares and
        # funds Nexow trades.
        _el(tx, "TradVn", row["venue"])
        _el(_el(new, "FinInstrm"), "Id", t.instrument)
        if t.algorithm_id or t.decision_maker:
            _person_or_algo(new, "InvstmtDcsnPrsn", t.algorithm_id, t.decision_maker,
                            t.person_country)
        _person_or_algo(new, "ExctgPrsn", t.algorithm_id, t.executed_by or t.decision_maker,
                        t.person_country)
        attributes = _el(new, "AddtlAttrbts")
        _el(attributes, "RskRdcgTx", "false")
        _el(attributes, "SctiesFincgTxInd", "false")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- best execution -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExecutedFill:
    reference: str
    executed_at: dt.datetime
    venue: str
    strategy: str
    side: Literal["buy", "sell"]
    quantity: Decimal
    price: Decimal
    arrival_price: Decimal  # the price when the order was decided


SIZE_BUCKETS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(10_000), "< 10k"),
    (Decimal(100_000), "10k-100k"),
    (Decimal(1_000_000), "100k-1M"),
)


def size_bucket(notional: Decimal) -> str:
    for bound, label in SIZE_BUCKETS:
        if notional < bound:
            return label
    return ">= 1M"


def _no_negative_zero(value: Decimal) -> Decimal:
    return abs(value) if value == 0 else value


def fill_slippage(f: ExecutedFill) -> dict[str, Any]:
    side = 1 if f.side == "buy" else -1
    qty, price, arrival = Decimal(f.quantity), Decimal(f.price), Decimal(f.arrival_price)
    if arrival <= 0:
        raise ComplianceInputError(f"{f.reference}: arrival price must be positive")
    per_unit = side * (price - arrival)
    notional = qty * arrival
    return {
        "reference": f.reference, "executed_at": f.executed_at, "venue": f.venue,
        "strategy": f.strategy, "side": f.side, "quantity": qty, "price": price,
        "arrival_price": arrival, "notional": notional, "size_bucket": size_bucket(notional),
        "slippage_bps": _no_negative_zero((per_unit / arrival * 10_000).quantize(
            BPS, ROUND_HALF_UP)),
        "cost": _no_negative_zero((per_unit * qty).quantize(CENT, ROUND_HALF_UP)),
    }


def best_execution(fills: Sequence[ExecutedFill]) -> dict[str, Any]:
    """Per-fill slippage and summaries by venue, strategy and size bucket."""
    per_fill = [fill_slippage(f) for f in fills]

    def group(key: str) -> list[dict[str, Any]]:
        acc: dict[str, dict[str, Decimal]] = defaultdict(
            lambda: {"fills": ZERO, "notional": ZERO, "weighted": ZERO, "cost": ZERO})
        for row in per_fill:
            g = acc[row[key]]
            g["fills"] += 1
            g["notional"] += row["notional"]
            g["weighted"] += row["slippage_bps"] * row["notional"]
            g["cost"] += row["cost"]
        out = []
        for name in sorted(acc):
            g = acc[name]
            avg = (g["weighted"] / g["notional"]).quantize(BPS, ROUND_HALF_UP) \
                if g["notional"] else ZERO
            out.append({key: name, "fills": int(g["fills"]),
                        "notional": g["notional"].quantize(CENT, ROUND_HALF_UP),
                        "avg_slippage_bps": avg, "cost": g["cost"]})
        return out

    return {"fills": per_fill, "by_venue": group("venue"), "by_strategy": group("strategy"),
            "by_size": group("size_bucket")}


# --- breaches and audit ------------------------------------------------------------------

BREACH_COLUMNS = ("at", "source", "source_id", "rule", "symbol", "halted", "reason")
AUDIT_COLUMNS = ("sequence", "created_at", "actor", "action", "target", "ip_address",
                 "request_id", "entry_hash")


def rows_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _text(row.get(k)) for k in columns})
    return out.getvalue()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return _utc(value) if value.tzinfo else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

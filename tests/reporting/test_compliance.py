"""Compliance exports: RTS 22 CSV/XML fields, best-execution slippage, breach/audit tables and
Excel cells."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from decimal import Decimal

import openpyxl
import pypdf
import pytest

from reporting import compliance, excel
from reporting.pdf.tables import TableReport, TableSection, table_report_pdf
from reporting.statements import statement_compute
from tests.reporting.samples import account_activity

D = Decimal
T0 = dt.datetime(2024, 3, 4, 14, 30, 5, 123456, tzinfo=dt.UTC)


def _txs() -> list[compliance.Transaction]:
    return [
        compliance.Transaction("T1", T0, "US0378331005", "Apple Inc.", "buy", D("100"),
                               D("170.25"), "USD", "XNAS", "jane.doe", algorithm_id="ALGO-SMA-1"),
        compliance.Transaction("T2", T0.astimezone(dt.timezone(dt.timedelta(hours=1))),
                               "GB0002634946", "BAE Systems", "sell", D("2.5"), D("10.1"), "GBP",
                               "", "john.roe", executed_by="desk.trader",
                               counterparty=COUNTERPARTY),
    ]


def test_rts22_csv_carries_the_known_fields():
    rows = list(csv.DictReader(io.StringIO(compliance.rts22_csv(_txs(),
                                                                executing_entity="LEI123"))))
    assert [r["transaction_reference"] for r in rows] == ["T1", "T2"]
    first, second = rows
    assert first["trading_date_time"] == "2024-03-04T14:30:05.123456Z"
    assert first["buy_sell"] == "BUYI" and second["buy_sell"] == "SELL"
    assert first["net_amount"] == "17025.00"  # 100 x 170.25
    assert second["net_amount"] == "25.25"  # 2.5 x 10.1
    assert first["algorithmic"] == "true" and first["investment_decision"] == "ALGO-SMA-1"
    assert second["algorithmic"] == "false" and second["investment_decision"] == "john.roe"
    assert second["execution_within_firm"] == "desk.trader"
    assert second["venue"] == "XOFF"  # no venue: off-venue
    # Times are converted to UTC whatever zone they were given in.
    assert second["trading_date_time"] == first["trading_date_time"]
    assert first["executing_entity"] == "LEI123"


LEI = "5493001KJTIIGC8Y1R12"  # a well-formed LEI (check digits valid)
COUNTERPARTY = "529900T8BM49AURSDO55"
NS = {"a": compliance.AUTH016_NS}


def test_rts22_xml_is_an_iso_20022_auth016_document():
    root = ET.fromstring(compliance.rts22_xml(_txs(), executing_entity=LEI))
    assert root.tag == f"{{{compliance.AUTH016_NS}}}Document"
    news = root.findall("a:FinInstrmRptgTxRpt/a:Tx/a:New", NS)
    assert len(news) == 2
    first, second = news
    assert first.findtext("a:TxId", namespaces=NS) == "T1"
    assert first.findtext("a:ExctgPty", namespaces=NS) == LEI
    assert first.findtext("a:SubmitgPty", namespaces=NS) == LEI
    assert first.findtext("a:Tx/a:Qty/a:Unit", namespaces=NS) == "100"
    amount = first.find("a:Tx/a:Pric/a:Pric/a:MntryVal/a:Amt", NS)
    assert (amount.text, amount.get("Ccy")) == ("170.25", "USD")
    # An ISIN identifies the instrument; a buy makes the firm the buyer.
    assert first.findtext("a:FinInstrm/a:Id", namespaces=NS) == "US0378331005"
    assert first.findtext("a:Buyr/a:AcctOwnr/a:Id/a:LEI", namespaces=NS) == LEI
    assert first.findtext("a:Sellr/a:AcctOwnr/a:Id/a:MIC", namespaces=NS) == "XNAS"
    assert first.findtext("a:InvstmtDcsnPrsn/a:Algo", namespaces=NS) == "ALGO-SMA-1"
    # The second: a person decided, another executed, off venue, the firm sold.
    assert second.findtext("a:Tx/a:TradVn", namespaces=NS) == "XOFF"
    assert second.findtext("a:Sellr/a:AcctOwnr/a:Id/a:LEI", namespaces=NS) == LEI
    assert second.findtext("a:Buyr/a:AcctOwnr/a:Id/a:LEI", namespaces=NS) == COUNTERPARTY
    assert second.findtext("a:InvstmtDcsnPrsn/a:Prsn/a:Othr/a:Id", namespaces=NS) == "john.roe"
    assert second.findtext("a:ExctgPrsn/a:Prsn/a:Othr/a:Id", namespaces=NS) == "desk.trader"
    assert second.find("a:InvstmtDcsnPrsn/a:Algo", NS) is None


def test_rts22_xml_has_the_elements_the_schema_requires_and_no_debt_net_amount():
    root = ET.fromstring(compliance.rts22_xml(_txs(), executing_entity=LEI))
    for new in root.findall("a:FinInstrmRptgTxRpt/a:Tx/a:New", NS):
        assert new.findtext("a:OrdrTrnsmssn/a:TrnsmssnInd", namespaces=NS) == "false"
        assert new.findtext("a:AddtlAttrbts/a:RskRdcgTx", namespaces=NS) == "false"
        assert new.find("a:ExctgPrsn", NS) is not None
        assert new.find("a:Tx/a:NetAmt", NS) is None  # field 35 is for debt instruments


@pytest.mark.parametrize("change,field,message", [
    ({"instrument": "APPLE"}, "isins", "an ISIN is needed for each instrument; missing for "
                                       "Apple Inc."),
    ({"venue": "", "counterparty": ""}, "counterparty",
     "T1: an off-venue trade names its counterparty's LEI"),
    ({"counterparty": "ACME"}, "counterparty", "T1: the counterparty must be an LEI"),
    ({"algorithm_id": None, "decision_maker": ""}, "decision_maker",
     "T1: a person's trade names who decided and executed it"),
    ({"trading_capacity": "OWN"}, "trading_capacity",
     "T1: trading capacity must be one of DEAL, MTCH, AOTC"),
    ({"venue": "NASDAQ"}, "venue", "T1: the venue must be a MIC (4 characters), not 'NASDAQ'"),
    ({"person_country": "GBR"}, "branch_country",
     "T1: the branch country must be an ISO 3166 alpha-2 code"),
])
def test_rts22_xml_refuses_what_the_regulator_would_reject(change, field, message):
    import dataclasses

    first, second = _txs()
    bad = dataclasses.replace(first, **change)
    assert compliance.rts22_xml_problems([bad, second], executing_entity=LEI) == [
        (field, message)]
    with pytest.raises(compliance.ComplianceInputError, match=message.split(":")[0]):
        compliance.rts22_xml([bad, second], executing_entity=LEI)


def test_isin_and_lei_check_digits():
    assert compliance.is_isin("US0378331005") and not compliance.is_isin("US0378331006")
    assert compliance.is_lei(LEI) and not compliance.is_lei(LEI[:-1] + "3")
    assert not compliance.is_lei("LEI123")


def test_rts22_refuses_naive_times():
    tx = compliance.Transaction("T3", dt.datetime(2024, 1, 1), "X", "X", "buy", D(1), D(1), "USD")
    with pytest.raises(compliance.ComplianceInputError, match="timezone-aware"):
        compliance.rts22_csv([tx])


def _fills() -> list[compliance.ExecutedFill]:
    return [
        # Buy 100 at 100.05 against 100.00: 5 bps cost, 5.00 money.
        compliance.ExecutedFill("F1", T0, "XNAS", "sma", "buy", D("100"), D("100.05"),
                                D("100.00")),
        # Sell 50 at 99.90 against 100.00: 10 bps cost (sold lower), 5.00 money.
        compliance.ExecutedFill("F2", T0, "XNAS", "sma", "sell", D("50"), D("99.90"),
                                D("100.00")),
        # Buy 2,000 at 49.99 against 50.00: -2 bps (price improvement), -20.00 money.
        compliance.ExecutedFill("F3", T0, "ARCX", "mr", "buy", D("2000"), D("49.99"),
                                D("50.00")),
    ]


def test_best_execution_slippage_per_fill():
    rows = compliance.best_execution(_fills())["fills"]
    assert [r["slippage_bps"] for r in rows] == [D("5.00"), D("10.00"), D("-2.00")]
    assert [r["cost"] for r in rows] == [D("5.00"), D("5.00"), D("-20.00")]
    assert [r["size_bucket"] for r in rows] == ["10k-100k", "< 10k", "100k-1M"]


def test_best_execution_groups_weight_by_notional():
    result = compliance.best_execution(_fills())
    by_venue = {r["venue"]: r for r in result["by_venue"]}
    # XNAS: notional 10,000 at 5 bps and 5,000 at 10 bps -> (50,000 + 50,000) / 15,000 = 6.67.
    assert by_venue["XNAS"]["avg_slippage_bps"] == D("6.67")
    assert by_venue["XNAS"]["cost"] == D("10.00")
    assert by_venue["ARCX"]["avg_slippage_bps"] == D("-2.00")
    assert {r["strategy"] for r in result["by_strategy"]} == {"sma", "mr"}


def test_breach_csv_rows():
    text = compliance.rows_csv(compliance.BREACH_COLUMNS, [
        {"at": T0, "source": "simulation", "source_id": 3, "rule": "max_drawdown",
         "symbol": "", "halted": True, "reason": "drawdown 21% > 20%"}])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["at"] == "2024-03-04T14:30:05.123456Z" and row["halted"] == "true"
    assert row["reason"] == "drawdown 21% > 20%"


def test_statement_xlsx_cells():
    data = excel.statement_xlsx(statement_compute(account_activity()))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Summary", "Positions", "Activity"]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Closing value"] == 21238 and summary["Realised P&L"] == 750
    assert wb["Summary"]["B2"].number_format == excel.MONEY_FORMAT
    pos = wb["Positions"]
    assert [c.value for c in pos[2]] == ["ACME", 150, 55, 8250, 65, 9750, 1500]
    assert wb["Activity"]["C3"].value == "Buy ACME on XNYS"
    assert wb["Activity"].freeze_panes == "A2"


def test_trades_and_tax_xlsx_cells():
    trades = [{"symbol": "ACME", "side": "long", "entry_time": T0, "exit_time": None,
               "quantity": 10.0, "entry_price": 100.0, "exit_price": None, "pnl": -12.5,
               "fees": 1.0}]
    ws = openpyxl.load_workbook(io.BytesIO(excel.trades_xlsx(trades))).active
    assert ws["A1"].value == "Symbol" and ws["H2"].value == -12.5
    # Naive UTC; Excel keeps milliseconds only.
    assert ws["C2"].value == dt.datetime(2024, 3, 4, 14, 30, 5, 123000)
    tax = excel.tax_xlsx([{"description": "100 ACME", "proceeds": "1500.00",
                           "cost_basis": "1000.00", "gain": "500.00", "lots": []}])
    ws = openpyxl.load_workbook(io.BytesIO(tax)).active
    assert [c.value for c in ws[1]] == ["description", "proceeds", "cost_basis", "gain"]
    assert [c.value for c in ws[2]] == ["100 ACME", 1500, 1000, 500]


def test_table_report_pdf_repeats_its_header_across_pages():
    rows = [[f"2024-01-{1 + i % 28:02d}", "simulation", str(i), "max_position", "ACME",
             "false", "a reason long enough to wrap onto a second line in its narrow column " * 2]
            for i in range(120)]
    pdf = table_report_pdf(TableReport("Acme Capital LLP", "Risk-limit breaches", "January",
                                       [TableSection("Breaches", ["At", "Source", "Id", "Rule",
                                                                  "Symbol", "Halted", "Reason"],
                                                     rows, [1.2, 1, 0.5, 1.2, 0.8, 0.6, 3])]))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 2
    for page in reader.pages:
        assert "Reason" in page.extract_text() and "Halted" in page.extract_text()


def test_a_fill_at_the_arrival_price_has_zero_slippage_not_minus_zero():
    fill = compliance.ExecutedFill("F0", T0, "XNAS", "sma", "sell", D("10"), D("100.00"),
                                   D("100.00"))
    row = compliance.fill_slippage(fill)
    assert (str(row["slippage_bps"]), str(row["cost"])) == ("0.00", "0.00")

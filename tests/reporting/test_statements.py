"""Account statements: the summary, positions and activity of a hand-worked month, and its PDF."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pypdf
import pytest

from reporting.pdf.statement import statement_pdf
from reporting.statements import (
    AccountCashFlow,
    StatementInputError,
    activity_from_dict,
    statement_compute,
)
from tests.reporting.samples import account_activity, account_activity_dict

D = Decimal


def test_statement_summary_of_a_known_month():
    st = statement_compute(account_activity())
    # Opening: cash 10,000 + 100 ACME at 55 = 15,500 (unrealised 100 x (55 - 50) = 500).
    assert st.opening_value == D("15500")
    assert st.unrealised_open == D("500")
    # Buy 100 at 60: average cost (100 x 50 + 100 x 60) / 200 = 55.
    # Sell 50 at 70: realised 50 x (70 - 55) = 750.
    assert st.realised == D("750")
    # Cash: 10,000 + 5,000 - 6,000 - 1 + 3,500 - 1 - 1,000 - 10 = 11,488.
    assert st.closing_cash == D("11488")
    # 150 ACME left at cost 55, closing price 65: value 9,750, unrealised 1,500.
    [pos] = st.positions
    assert (pos.quantity, pos.average_cost, pos.market_value, pos.unrealised) == (
        D("150"), D("55"), D("9750"), D("1500"))
    assert st.closing_value == D("21238")
    assert (st.deposits, st.withdrawals, st.fees) == (D("5000"), D("1000"), D("12"))
    # 15,500 + 5,000 - 1,000 - 12 + 750 + (1,500 - 500) = 21,238: the statement reconciles.
    assert st.reconciliation_difference == 0


def test_activity_from_json_equals_the_dataclass_input():
    assert statement_compute(activity_from_dict(account_activity_dict())).closing_value == \
        D("21238")


def test_a_short_position_realises_cost_minus_price():
    a = account_activity()
    a.opening_positions, a.opening_prices = [], {}
    a.cash_flows = []
    from reporting.statements import Fill

    a.fills = [Fill(dt.datetime(2024, 1, 2, 10), "XYZ", "sell", D("10"), D("20")),
               Fill(dt.datetime(2024, 1, 3, 10), "XYZ", "buy", D("10"), D("15"))]
    st = statement_compute(a)
    assert st.realised == D("50")  # 10 x (20 - 15)
    assert st.positions == [] and st.reconciliation_difference == 0


def test_unknown_flow_kind_is_refused():
    a = account_activity()
    a.cash_flows.append(AccountCashFlow(dt.date(2024, 1, 3), "gift", D("1")))  # type: ignore[arg-type]
    with pytest.raises(StatementInputError, match="unknown cash flow kind"):
        statement_compute(a)


def test_statement_pdf_shows_the_figures_formatted():
    pdf = statement_pdf(statement_compute(account_activity()), organization="Acme Capital LLP",
                        generated_at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) == 1
    for expected in ("Acme Capital LLP", "Main account", "2024-01-01 to 2024-01-31",
                     "15,500.00", "21,238.00", "750.00", "9,750.00", "1,500.00", "-1,000.00",
                     "Platform fee", "Sell ACME on XNYS"):
        assert expected in text, expected


def test_a_long_activity_list_splits_across_pages_with_the_header_repeated():
    from reporting.statements import Fill

    a = account_activity()
    a.fills = [Fill(dt.datetime(2024, 1, 2, 9) + dt.timedelta(minutes=i), "ACME",
                    "buy" if i % 2 == 0 else "sell", D("1"), D("60"), D("0.5"), "XNYS")
               for i in range(160)]
    pdf = statement_pdf(statement_compute(a), organization="Acme Capital LLP")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    for page in reader.pages[1:]:
        text = page.extract_text()
        assert "Cash effect" in text and "Description" in text  # the repeated header row

"""Reports from the fills of a deployment or a broker account: the monthly statement, the US tax
report, RTS 22 (ISO 20022 auth.016 XML), best execution and performance, each checked against
figures worked out by hand; another organisation's deployment or account is refused by name.

The known deployment saw daily bars whose close on day k (k = 0 on 2026-01-01) is 100 + k, and
traded (paper, cash 10,000, fees in cash):

    F1 2026-01-10  buy  10 @ 108.50  fee 1.00   (decided at the close of 2026-01-09: 108)
    F2 2026-01-20  buy  10 @ 117.50  fee 1.00   (decided 2026-01-19: 118)
    F3 2026-02-05  sell  8 @ 134.25  fee 0.80   (decided 2026-02-04: 134)
    F4 2026-02-10  buy   2 @ 140.00  fee 0.20   (a manual order)
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from decimal import Decimal as D

import numpy as np
import pypdf
import pytest
from django.db import transaction

from accounts.permissions import Role
from nexow_site.celery import app
from reporting import compliance, sources
from reporting.models import Report
from reporting.statements import statement_compute
from tests.deployments.support import MINUTE, T0, paper_deployment
from tests.fixtures_accounts import session_client
from tests.reporting.support import org_with_roles
from trading.engine.types import BarSet
from trading.live_engine import DeploymentState, LiveConfig, warm_up
from trading.models import Deployment, Instrument, LiveFill, LiveOrder
from trading.selectors_live import deployment_closes
from trading.services import deployments

pytestmark = pytest.mark.django_db

DAY = 86_400 * 10**9
LEI = "5493001KJTIIGC8Y1R12"
NS = {"a": compliance.AUTH016_NS}
COUNTERPARTY = "529900T8BM49AURSDO55"  # a well-formed LEI
CENT = D("0.01")


def day(k: int) -> int:
    return T0 + k * DAY


def known_deployment(org, owner, *, bars: int = 60) -> Deployment:
    """A paper deployment that processed daily bars 0..bars-1 (close 100 + k) and made the
    four fills of the module docstring, with a step event every 10 bars."""
    dep = paper_deployment(org, owner, start=False, bar_seconds=86_400, cash=10_000.0,
                           lookback=200)
    ts = np.asarray([day(k) for k in range(bars)], dtype=np.int64)
    close = (100.0 + np.arange(bars, dtype=np.float64))[:, None]
    state = warm_up(DeploymentState.new(dep.pk, ["SYN"], LiveConfig(cash=10_000.0,
                                                                     lookback=200)),
                    BarSet(ts, ["SYN"], close, close, close, close, np.ones_like(close)))
    Deployment.objects.filter(pk=dep.pk).update(state=state.to_json(), feed_anchor_ns=T0,
                                                last_bar_ts=day(bars - 1), status="running")
    fills = [("F1", 9, "buy", "10", "108.50", "1.00", "SYN:entry"),
             ("F2", 19, "buy", "10", "117.50", "1.00", "SYN:entry"),
             ("F3", 35, "sell", "8", "134.25", "0.80", "SYN:exit"),
             ("F4", 40, "buy", "2", "140.00", "0.20", "manual:desk")]
    for fill_id, k, side, qty, price, fee, leg in fills:
        cid = f"d{dep.pk}-{fill_id}"
        LiveOrder.objects.create(organization=org, deployment=dep, client_order_id=cid,
                                 symbol="SYN", side=side, quantity=D(qty), status="filled",
                                 filled_quantity=D(qty), average_price=D(price), leg=leg,
                                 decision_ts=day(k - 1))
        LiveFill.objects.create(organization=org, deployment=dep, fill_id=fill_id,
                                client_order_id=cid, symbol="SYN", side=side, quantity=D(qty),
                                price=D(price), fee=D(fee), ts=day(k))
    with transaction.atomic():
        for k, equity in ((9, "10000.00"), (19, "10013.00"), (29, "10213.00"),
                          (39, "10431.20"), (49, "10713.20"), (59, "10883.20")):
            deployments.deployment_event_append(
                deployment_id=dep.pk, organization_id=org.pk, type="deployment.step",
                payload={"last_bar_ts": day(k), "equity": float(equity), "cash": 0.0,
                         "positions": {}})
    dep.refresh_from_db()
    return dep


@pytest.fixture
def world():
    org, users = org_with_roles()
    dep = known_deployment(org, users[Role.OWNER])
    return org, users, dep


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = previous


def _account(org, **parameters):
    return sources.live_account(org, parameters)


def _generate(client, org, kind: str, fmt: str, parameters: dict, eager) -> bytes:
    from django.urls import reverse

    with eager():
        resp = client.post(reverse("reporting-api:report-list", kwargs={"org_slug": org.slug}),
                           {"kind": kind, "format": fmt, "parameters": parameters},
                           format="json")
    assert resp.status_code == 202, resp.content
    report = Report.objects.get(pk=resp.json()["id"])
    assert report.status == "succeeded", report.error
    with report.file.open("rb") as handle:
        return handle.read()


# --- statement ----------------------------------------------------------------------------

def test_february_statement_of_a_deployment_equals_the_hand_computed_figures(world):
    org, _, dep = world
    s = statement_compute(sources.live_account_activity(
        org, _account(org, deployment=dep.pk), dt.date(2026, 2, 1), dt.date(2026, 2, 28)))
    # Before February: 10,000 - (1,085 + 1) - (1,175 + 1) = 7,738 cash and 20 SYN at an
    # average cost of (1,085 + 1,175) / 20 = 113, marked at the close of 31 Jan (130).
    assert s.opening_cash == D("7738.00")
    assert s.opening_value == D("10338.00")  # 7,738 + 20 x 130
    assert s.unrealised_open == D("340.00")  # 20 x (130 - 113)
    # February: sold 8 at 134.25 (fee 0.80), bought 2 at 140 (fee 0.20).
    assert s.realised == D("170.00")  # 8 x (134.25 - 113)
    assert s.fees == D("1.00")
    assert s.closing_cash == D("8531.00")  # 7,738 + 1,074 - 0.80 - 280 - 0.20
    (pos,) = s.positions
    # 12 left at 113 plus 2 at 140: average (1,356 + 280) / 14 = 116.857142...
    assert (pos.symbol, pos.quantity) == ("SYN", D("14"))
    assert pos.cost.quantize(CENT) == D("1636.00")
    assert pos.price == D("158") and pos.market_value == D("2212.00")  # close of 28 Feb
    assert s.closing_value == D("10743.00")  # 8,531 + 14 x 158
    assert s.reconciliation_difference.quantize(CENT) == 0
    assert [(line.kind, line.description, line.amount) for line in s.lines] == [
        ("sell", "Sell SYN on PAPER", D("1073.20")), ("buy", "Buy SYN on PAPER", D("-280.20"))]


def test_statement_of_a_broker_account_sums_its_deployments(world):
    org, users, dep = world
    other = paper_deployment(org, users[Role.OWNER], start=False)  # never started: no book
    Deployment.objects.filter(pk=other.pk).update(broker_account=dep.broker_account)
    s = statement_compute(sources.live_account_activity(
        org, _account(org, broker_account=dep.broker_account_id), dt.date(2026, 1, 1),
        dt.date(2026, 1, 31)))
    assert s.opening_value == D("10000")  # only the started deployment has cash
    assert s.closing_cash == D("7738.00") and s.closing_value == D("10338.00")
    assert s.activity.account.startswith(f"Broker account {dep.broker_account.name}")


def test_the_statement_pdf_names_the_source_and_the_step_equity(world, eager):
    org, users, dep = world
    content = _generate(session_client(users[Role.OWNER]), org, "statement", "pdf",
                        {"deployment": dep.pk, "start": "2026-02-01", "end": "2026-02-28"},
                        eager)
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(
        io.BytesIO(content)).pages).split())
    assert f"Deployment {dep.pk}" in text and "10,743.00" in text
    assert "last step before the end: 10713.20 USD" in text


def test_a_statement_of_an_advanced_paper_deployment_closes_at_its_equity():
    org, users = org_with_roles()
    dep = paper_deployment(org, users[Role.OWNER])
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 300 * MINUTE)
    dep.refresh_from_db()
    assert LiveFill.objects.filter(deployment=dep).count() >= 2
    s = statement_compute(sources.live_account_activity(
        org, _account(org, deployment=dep.pk), dt.date(2026, 1, 1), dt.date(2026, 1, 1)))
    # The fills replayed from the starting cash and marked at the last close are the
    # engine's own equity (stored as Decimal(str(float))).
    assert s.closing_value.quantize(CENT) == D(dep.equity).quantize(CENT)
    assert s.reconciliation_difference.quantize(CENT) == 0


def test_closes_beyond_the_saved_window_come_from_the_replayed_paper_feed():
    org, users = org_with_roles()
    dep = paper_deployment(org, users[Role.OWNER], lookback=50, warm_bars=20)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 120 * MINUTE)
    dep.refresh_from_db()
    window = json.loads(dep.state)["history"]
    assert window["n"] <= 50  # bars 0..~70 are no longer in the saved state
    asked = [T0 + k * MINUTE for k in (0, 10, 119)]
    closes = deployment_closes(deployment=dep, timestamps=asked)
    replayed = deployments.synthetic_bars(dep, -20, 120, np.full(1, 100.0))
    for t in asked:
        i = int(np.searchsorted(replayed.timestamps, t))
        assert closes[t]["SYN"] == replayed.close[i, 0]
    # and the replay agrees with the window the deployment kept
    ts = np.frombuffer(base64.b64decode(window["timestamps"]), "<i8")
    last = deployment_closes(deployment=dep, timestamps=[int(ts[-1])])[int(ts[-1])]["SYN"]
    assert last == replayed.close[-1, 0]


# --- tax ----------------------------------------------------------------------------------

def test_us_tax_rows_of_a_deployment_equal_the_hand_computed_gain(world, eager):
    org, users, dep = world
    content = _generate(session_client(users[Role.COMPLIANCE]), org, "tax", "json",
                        {"deployment": dep.pk, "year": 2026, "jurisdiction": "us"}, eager)
    data = json.loads(content)
    (row,) = data["rows"]
    # FIFO: the 8 sold come from F1 (10 at 108.50 + 1.00 fee): basis 8/10 x 1,086 = 868.80;
    # proceeds 8 x 134.25 - 0.80 = 1,073.20; gain 204.40, short term, box A.
    assert (row["description"], row["quantity"], row["date_acquired"], row["date_sold"]) == \
        ("8 SYN", "8", "2026-01-10", "2026-02-05")
    assert (row["proceeds"], row["cost_basis"], row["gain"], row["box"]) == \
        ("1073.20", "868.80", "204.40", "A")
    assert data["schedule_d"]["line_1b"]["gain"] == "204.40"
    lots = {(lot["quantity"], lot["cost_basis"]) for lot in data["open_lots"]}
    # Left: 2 of F1 (217.20), all of F2 (1,176.00), F4 (280.20).
    assert lots == {("2", "217.20"), ("10", "1176.00"), ("2", "280.20")}


def test_crypto_instruments_and_flagged_symbols_are_digital_assets(world):
    org, _, dep = world
    account = _account(org, deployment=dep.pk)
    trades = sources.live_tax_trades(org, account, {})
    assert {t.asset_class for t in trades} == {"security"}
    assert {t.asset_class for t in sources.live_tax_trades(
        org, account, {"digital_assets": ["SYN"]})} == {"digital_asset"}
    Instrument.objects.create(organization=org, symbol="SYN", asset_class="crypto")
    trades = sources.live_tax_trades(org, account, {})
    assert {t.asset_class for t in trades} == {"digital_asset"}
    assert [t.id for t in trades] == [f"D{dep.pk}-F{i}" for i in range(1, 5)]


def test_tax_csv_of_a_broker_account(world, eager):
    org, users, dep = world
    content = _generate(session_client(users[Role.OWNER]), org, "tax", "csv",
                        {"broker_account": dep.broker_account_id, "year": 2026}, eager)
    (row,) = list(csv.DictReader(io.StringIO(content.decode())))
    assert (row["box"], row["proceeds"], row["gain"], row["term"]) == \
        ("A", "1073.20", "204.40", "short")


# --- tenancy ------------------------------------------------------------------------------

@pytest.mark.parametrize("field,kind", [("deployment", "statement"), ("deployment", "tax"),
                                        ("broker_account", "rts22"),
                                        ("deployment", "performance")])
def test_another_organisations_deployment_or_account_is_refused_by_name(world, field, kind):
    from django.urls import reverse

    org, users, dep = world
    other, other_users = org_with_roles()
    client = session_client(other_users[Role.OWNER])
    target = dep.pk if field == "deployment" else dep.broker_account_id
    resp = client.post(reverse("reporting-api:report-list", kwargs={"org_slug": other.slug}),
                       {"kind": kind, "parameters": {field: target, "start": "2026-01-01",
                                                     "end": "2026-01-31", "year": 2026,
                                                     "executing_entity": LEI}},
                       format="json")
    assert resp.status_code == 400
    body = resp.json()["error"]
    assert list(body["fields"]) == [field]
    assert f"no {field.replace('_', ' ')} {target} in this organisation" in body["message"]
    assert dep.broker_account.name not in resp.content.decode()
    assert not Report.objects.filter(organization=other).exists()


@pytest.mark.parametrize("value", ["²", "12a", -3, 10**20, True, None])
def test_a_malformed_id_is_a_400_naming_the_field(world, value):
    from django.urls import reverse

    org, users, dep = world
    resp = session_client(users[Role.OWNER]).post(
        reverse("reporting-api:report-list", kwargs={"org_slug": org.slug}),
        {"kind": "statement", "parameters": {"deployment": value, "start": "2026-01-01",
                                             "end": "2026-01-31"}}, format="json")
    assert resp.status_code == 400
    assert resp.json()["error"]["fields"] == {
        "deployment": ["deployment must be the integer id of one of your deployments"]}


def test_a_key_scoped_to_reports_alone_cannot_read_an_accounts_fills_through_a_report(world):
    from django.urls import reverse

    from tests.factories import ApiKeyFactory
    from tests.fixtures_accounts import key_client

    org, users, dep = world
    key = ApiKeyFactory(organization=org, created_by=users[Role.OWNER],
                        scopes=["reports:read", "reports:write"])
    resp = key_client(key).post(
        reverse("reporting-api:report-list", kwargs={"org_slug": org.slug}),
        {"kind": "statement", "parameters": {"deployment": dep.pk, "start": "2026-01-01",
                                             "end": "2026-01-31"}}, format="json")
    assert resp.status_code == 403
    assert "orders:read" in resp.json()["error"]["message"]
    assert not Report.objects.filter(organization=org).exists()


def test_a_subscription_to_another_organisations_account_is_refused(world):
    from django.urls import reverse

    org, users, dep = world
    other, other_users = org_with_roles()
    resp = session_client(other_users[Role.OWNER]).post(
        reverse("reporting-api:subscription-list", kwargs={"org_slug": other.slug}),
        {"kind": "monthly_statement", "parameters": {"broker_account": dep.broker_account_id}},
        format="json")
    assert resp.status_code == 400 and list(resp.json()["error"]["fields"]) == ["broker_account"]


def test_the_portal_form_offers_only_the_organisations_own_deployments(world, client):
    org, users, dep = world
    other, other_users = org_with_roles()
    foreign = known_deployment(other, other_users[Role.OWNER])
    client.force_login(users[Role.OWNER])
    page = client.get(f"/orgs/{org.slug}/reports/").content.decode()
    assert f'value="deployment:{dep.pk}"' in page
    assert f'value="deployment:{foreign.pk}"' not in page
    assert f'value="broker_account:{foreign.broker_account_id}"' not in page
    # A forged choice is a form error, not a report.
    resp = client.post(f"/orgs/{org.slug}/reports/", {
        "kind": "statement", "source": f"deployment:{foreign.pk}",
        "parameters": '{"start": "2026-01-01", "end": "2026-01-31"}'})
    assert resp.status_code == 400 and not Report.objects.filter(organization=org).exists()
    resp = client.post(f"/orgs/{org.slug}/reports/", {
        "kind": "statement", "source": f"deployment:{dep.pk}",
        "parameters": '{"start": "2026-01-01", "end": "2026-01-31"}'})
    assert resp.status_code == 302
    assert Report.objects.get(organization=org).parameters == {
        "start": "2026-01-01", "end": "2026-01-31", "deployment": dep.pk}


# --- RTS 22 and best execution --------------------------------------------------------------

# The auth.016.001.01 elements Nexow emits and, for each, its children in schema order and
# which of them the schema requires (from the official XSD): a child unknown or out of order,
# or a required one missing, fails.
AUTH016_SUBSET: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "Document": (("FinInstrmRptgTxRpt",), frozenset({"FinInstrmRptgTxRpt"})),
    "FinInstrmRptgTxRpt": (("Tx",), frozenset({"Tx"})),
    "Tx@report": (("New",), frozenset()),  # a choice: New or Cxl
    "New": (("TxId", "ExctgPty", "InvstmtPtyInd", "SubmitgPty", "Buyr", "Sellr",
             "OrdrTrnsmssn", "Tx", "FinInstrm", "InvstmtDcsnPrsn", "ExctgPrsn", "AddtlAttrbts"),
            frozenset({"TxId", "ExctgPty", "InvstmtPtyInd", "SubmitgPty", "Buyr", "Sellr",
                       "OrdrTrnsmssn", "Tx", "ExctgPrsn", "AddtlAttrbts"})),
    "Buyr": (("AcctOwnr",), frozenset({"AcctOwnr"})),
    "Sellr": (("AcctOwnr",), frozenset({"AcctOwnr"})),
    "AcctOwnr": (("Id",), frozenset({"Id"})),
    "Id@party": (("LEI", "MIC", "Intl"), frozenset()),  # a choice of one
    "OrdrTrnsmssn": (("TrnsmssnInd",), frozenset({"TrnsmssnInd"})),
    "Tx@new": (("TradDt", "TradgCpcty", "Qty", "Pric", "NetAmt", "TradVn"),
               frozenset({"TradDt", "TradgCpcty", "Qty", "Pric", "TradVn"})),
    "Qty": (("Unit",), frozenset()), "Pric@tx": (("Pric",), frozenset()),
    "Pric@pric": (("MntryVal",), frozenset()), "MntryVal": (("Amt",), frozenset({"Amt"})),
    "FinInstrm": (("Id",), frozenset()),
    "InvstmtDcsnPrsn": (("Prsn", "Algo"), frozenset()),
    "ExctgPrsn": (("Prsn", "Algo"), frozenset()),
    "Prsn": (("CtryOfBrnch", "Othr"), frozenset({"CtryOfBrnch", "Othr"})),
    "Othr@person": (("Id", "SchmeNm"), frozenset({"Id", "SchmeNm"})),
    "SchmeNm": (("Cd",), frozenset()),
    "AddtlAttrbts": (("RskRdcgTx", "SctiesFincgTxInd"),
                     frozenset({"RskRdcgTx", "SctiesFincgTxInd"})),
}
CHOICES = {"Id@party", "Qty", "Pric@tx", "Pric@pric", "FinInstrm", "InvstmtDcsnPrsn",
           "ExctgPrsn", "SchmeNm", "Tx@report"}  # exactly one child


def _local(el: ET.Element) -> str:
    assert el.tag.startswith(f"{{{compliance.AUTH016_NS}}}"), el.tag
    return el.tag.split("}")[1]


def _key(el: ET.Element, parent: str) -> str:
    name = _local(el)
    contexts = {("Tx", "FinInstrmRptgTxRpt"): "Tx@report", ("Tx", "New"): "Tx@new",
                ("Id", "AcctOwnr"): "Id@party", ("Pric", "Tx"): "Pric@tx",
                ("Pric", "Pric"): "Pric@pric", ("Othr", "FinInstrm"): "Othr@instrument",
                ("Othr", "Prsn"): "Othr@person"}
    return contexts.get((name, parent), name)


def assert_valid_subset(el: ET.Element, parent: str = "") -> None:
    key = _key(el, parent)
    spec = AUTH016_SUBSET.get(key)
    children = [_local(c) for c in el]
    if spec is None:
        assert not children, f"{key} is a leaf in the subset, has {children}"
        assert (el.text or "").strip(), f"{key} is empty"
        return
    allowed, required = spec
    positions = [allowed.index(c) if c in allowed else -1 for c in children]
    assert -1 not in positions, f"{key}: unknown child among {children}"
    assert positions == sorted(positions), f"{key}: children out of order {children}"
    assert required <= set(children), f"{key}: missing {sorted(required - set(children))}"
    if key in CHOICES:
        assert len(children) == 1, f"{key} is a choice of one, has {children}"
    for child in el:
        assert_valid_subset(child, _local(el))


def test_rts22_xml_of_a_deployment_has_the_known_fill_at_its_xpaths(world, eager):
    org, users, dep = world
    content = _generate(session_client(users[Role.COMPLIANCE]), org, "rts22", "xml",
                        {"deployment": dep.pk, "executing_entity": LEI,
                         "counterparty": COUNTERPARTY, "decision_maker": "GB1234567",
                         "branch_country": "GB", "isins": {"SYN": "US0378331005"}}, eager)
    root = ET.fromstring(content)
    assert_valid_subset(root)
    news = root.findall("a:FinInstrmRptgTxRpt/a:Tx/a:New", NS)
    assert len(news) == 4
    f3 = LiveFill.objects.get(deployment=dep, fill_id="F3")
    (sale,) = [n for n in news if n.findtext("a:TxId", namespaces=NS) == f"NX{dep.pk}F{f3.pk}"]
    version = dep.strategy_version
    expected = {
        "a:ExctgPty": LEI, "a:InvstmtPtyInd": "true", "a:SubmitgPty": LEI,
        "a:Sellr/a:AcctOwnr/a:Id/a:LEI": LEI, "a:Buyr/a:AcctOwnr/a:Id/a:LEI": COUNTERPARTY,
        "a:OrdrTrnsmssn/a:TrnsmssnInd": "false",
        "a:Tx/a:TradDt": "2026-02-05T00:00:00.000000Z", "a:Tx/a:TradgCpcty": "DEAL",
        "a:Tx/a:Qty/a:Unit": "8", "a:Tx/a:Pric/a:Pric/a:MntryVal/a:Amt": "134.25",
        "a:Tx/a:TradVn": "XOFF",
        "a:FinInstrm/a:Id": "US0378331005",
        "a:InvstmtDcsnPrsn/a:Algo": f"NEXOW-sma_cross-{version.strategy_id}-v{version.number}",
        "a:ExctgPrsn/a:Algo": f"NEXOW-sma_cross-{version.strategy_id}-v{version.number}",
        "a:AddtlAttrbts/a:RskRdcgTx": "false", "a:AddtlAttrbts/a:SctiesFincgTxInd": "false",
    }
    assert {path: sale.findtext(path, namespaces=NS) for path in expected} == expected
    assert sale.find("a:Tx/a:Pric/a:Pric/a:MntryVal/a:Amt", NS).get("Ccy") == "USD"
    assert sale.find("a:Tx/a:NetAmt", NS) is None
    # The manual order: a person decided and executed it.
    (manual,) = [n for n in news if n.find("a:InvstmtDcsnPrsn/a:Prsn", NS) is not None]
    assert manual.findtext("a:InvstmtDcsnPrsn/a:Prsn/a:Othr/a:Id", namespaces=NS) == \
        "GB1234567"
    assert manual.findtext("a:InvstmtDcsnPrsn/a:Prsn/a:CtryOfBrnch", namespaces=NS) == "GB"
    assert manual.findtext("a:Buyr/a:AcctOwnr/a:Id/a:LEI", namespaces=NS) == LEI


def test_rts22_xml_needs_a_valid_lei_and_the_csv_is_kept(world, eager):
    org, users, dep = world
    account = _account(org, deployment=dep.pk)
    with pytest.raises(sources.ReportParameterError) as err:
        sources.report_build(organization=org, kind="rts22", fmt="xml",
                             parameters={"deployment": dep.pk, "executing_entity": "ACME"})
    assert "executing_entity" in err.value.fields
    rows = list(csv.DictReader(io.StringIO(compliance.rts22_csv(
        sources.live_transactions(org, account, {}), executing_entity=LEI))))
    assert [(r["buy_sell"], r["quantity"], r["price"], r["algorithmic"]) for r in rows] == [
        ("BUYI", "10", "108.5", "true"), ("BUYI", "10", "117.5", "true"),
        ("SELL", "8", "134.25", "true"), ("BUYI", "2", "140", "false")]


def test_an_instrument_without_an_isin_keeps_the_xml_from_being_written(world, eager):
    org, users, dep = world
    with pytest.raises(sources.ReportParameterError) as err:
        sources.report_build(organization=org, kind="rts22", fmt="xml",
                             parameters={"deployment": dep.pk, "executing_entity": LEI,
                                         "counterparty": COUNTERPARTY,
                                         "decision_maker": "GB1234567"})
    assert err.value.fields == {
        "isins": ["an ISIN is needed for each instrument; missing for SYN"]}


def test_an_off_venue_trade_without_its_counterparty_is_refused_by_name(world):
    org, users, dep = world
    with pytest.raises(sources.ReportParameterError) as err:
        sources.report_build(organization=org, kind="rts22", fmt="xml",
                             parameters={"deployment": dep.pk, "executing_entity": LEI,
                                         "decision_maker": "GB1234567",
                                         "isins": {"SYN": "US0378331005"}})
    assert list(err.value.fields) == ["counterparty"]
    assert "an off-venue trade names its counterparty's LEI" in err.value.fields[
        "counterparty"][0]


def test_best_execution_of_a_deployment_uses_the_decision_bar_close(world):
    org, _, dep = world
    rows = {r["reference"]: r for r in sources.live_arrival_fills(
        org, _account(org, deployment=dep.pk))}
    f3 = LiveFill.objects.get(deployment=dep, fill_id="F3")
    sale = compliance.fill_slippage(compliance.ExecutedFill(
        **{k: rows[f"NX{dep.pk}F{f3.pk}"][k] for k in (
            "reference", "executed_at", "venue", "strategy", "side", "quantity", "price",
            "arrival_price")}))
    # Sold at 134.25 against a decision close of 134: 0.25 better, -18.66 bps, cost -2.00.
    assert sale["arrival_price"] == D("134.0")
    assert (sale["slippage_bps"], sale["cost"]) == (D("-18.66"), D("-2.00"))
    assert sorted(r["strategy"] for r in rows.values()) == ["manual", "sma", "sma", "sma"]


def test_best_execution_csv_of_a_deployment(world, eager):
    org, users, dep = world
    content = _generate(session_client(users[Role.OWNER]), org, "best_execution", "csv",
                        {"deployment": dep.pk}, eager)
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    # against the decision closes 108, 118, 134 and 139 (the manual order's bar)
    assert [r["slippage_bps"] for r in rows] == ["46.30", "-42.37", "-18.66", "71.94"]


# --- performance --------------------------------------------------------------------------

def test_performance_of_a_deployment_shows_its_step_equity_beside_the_backtest(world, eager):
    from trading.services.divergence import deployment_divergence

    org, users, dep = world
    data = sources.deployment_performance_input(org, _account(org, deployment=dep.pk), {})
    assert data.live_equity.tolist() == [10000.0, 10013.0, 10213.0, 10431.2, 10713.2, 10883.2]
    assert data.live_timestamps.tolist() == [day(k) for k in (9, 19, 29, 39, 49, 59)]
    backtest = deployment_divergence(dep).to_dict()["backtest"]["equity"]
    assert data.equity.tolist() == [v for _, v in backtest]
    assert data.timestamps.tolist() == [t for t, _ in backtest]
    # The position is still open: no round trip yet; annualised per daily bar.
    assert data.trades == [] and data.periods_per_year == 252
    content = _generate(session_client(users[Role.OWNER]), org, "performance", "pdf",
                        {"deployment": dep.pk}, eager)
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(
        io.BytesIO(content)).pages).split())
    assert f"Deployment {dep.pk}" in text and "Live vs backtest" in text


def test_performance_without_the_divergence_monitor_shows_the_live_equity(world, monkeypatch):
    import sys

    from trading.engine.metrics import periods_per_year

    org, _, dep = world
    monkeypatch.setitem(sys.modules, "trading.services.divergence", None)  # import fails
    data = sources.deployment_performance_input(org, _account(org, deployment=dep.pk), {})
    assert data.equity.tolist() == [10000.0, 10013.0, 10213.0, 10431.2, 10713.2, 10883.2]
    assert data.live_equity is None
    assert data.periods_per_year == periods_per_year("exchange", 10 * 86_400)  # 10-day steps
    assert any("No backtest of the same bars" in n for n in data.notes)


def test_round_trips_pair_fills_from_flat_to_flat():
    from types import SimpleNamespace as F

    fills = [F(deployment_id=1, symbol="X", side="buy", quantity=D(10), price=D(100),
               fee=D(1), ts=day(0)),
             F(deployment_id=1, symbol="X", side="sell", quantity=D(4), price=D(110),
               fee=D(1), ts=day(1)),
             F(deployment_id=1, symbol="X", side="sell", quantity=D(6), price=D(120),
               fee=D(1), ts=day(2))]
    (trip,) = sources._round_trips(fills)
    # in 10 x 100; out 4 x 110 + 6 x 120 = 1,160; P&L 160 - 3 fees
    assert (trip.side, trip.quantity, trip.entry_price, trip.exit_price, trip.pnl) == \
        ("long", 10.0, 100.0, 116.0, 157.0)


def test_a_fill_through_zero_closes_the_long_trip_and_opens_a_short_one():
    from types import SimpleNamespace

    from reporting.sources import _round_trips

    t0 = 1_700_000_000 * 10**9

    def fill(i, side, qty, price, fee):
        return SimpleNamespace(deployment_id=1, symbol="SYN", side=side, quantity=Decimal(qty),
                               price=Decimal(price), fee=Decimal(fee), ts=t0 + i * 60 * 10**9)

    trips = _round_trips([fill(0, "buy", "10", "100", "1"),
                          fill(1, "sell", "15", "110", "3"),  # 10 close the long, 5 go short
                          fill(2, "buy", "5", "105", "0.5")])

    long, short = trips
    # long 10 @ 100 -> 110: +100, fees 1 + 3 x 10/15 = 3
    assert (long.side, long.quantity, long.entry_price, long.exit_price) == ("long", 10, 100, 110)
    assert (long.pnl, long.fees) == (97.0, 3.0)
    # short 5 @ 110 -> 105: +25, fees 3 x 5/15 + 0.5 = 1.5
    assert (short.side, short.quantity, short.entry_price, short.exit_price) == (
        "short", 5, 110, 105)
    assert (short.pnl, short.fees) == (23.5, 1.5)
    assert short.entry_time == long.exit_time

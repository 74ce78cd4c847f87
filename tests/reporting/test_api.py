"""The reporting API by role: generate (202 → generated file), list, detail, download, delete,
subscriptions and deliveries; who sees which kind; audit entries of every change."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal as D

import numpy as np
import pypdf
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from nexow_site.celery import app
from reporting import services
from reporting.models import Report, ReportDelivery, ReportSubscription
from tests.fixtures_accounts import session_client
from tests.reporting.samples import account_activity_dict
from tests.reporting.support import org_with_roles, stored_report, subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = previous


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"reporting-api:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def test_generating_a_statement_returns_202_then_the_task_stores_the_pdf(eager):
    org, users = org_with_roles()
    client = session_client(users[Role.COMPLIANCE])
    with eager():
        resp = client.post(_url("report-list", org), {
            "kind": "statement", "parameters": {"account": account_activity_dict()}},
            format="json")
    assert resp.status_code == 202, resp.content
    assert resp.json()["status"] == "queued"  # the response is the report as queued
    report = Report.objects.get(pk=resp.json()["id"])
    assert report.status == "succeeded", report.error
    detail = client.get(_url("report-detail", org, pk=report.pk)).json()
    assert detail["download_url"].endswith(f"/reports/{report.pk}/download/")
    download = client.get(detail["download_url"], HTTP_ACCEPT="application/pdf")
    content = _body(download)
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert hashlib.sha256(content).hexdigest() == report.sha256 == detail["sha256"]
    assert len(content) == report.size
    text = pypdf.PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert org.name in text and "21,238.00" in text
    actions = list(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert "report.requested" in actions and "report.generated" in actions


def test_generation_is_idempotent_by_report_id(eager):
    org, users = org_with_roles()
    client = session_client(users[Role.OWNER])
    with eager():
        resp = client.post(_url("report-list", org), {
            "kind": "statement", "format": "xlsx",
            "parameters": {"account": account_activity_dict()}}, format="json")
    report = Report.objects.get(pk=resp.json()["id"])
    first = (report.file.name, report.sha256)
    assert services.report_generate(report_id=report.pk) == "succeeded"
    report.refresh_from_db()
    assert (report.file.name, report.sha256) == first and report.attempts == 1


def test_bad_parameters_fail_the_report_visibly(eager):
    org, users = org_with_roles()
    client = session_client(users[Role.OWNER])
    with eager():
        resp = client.post(_url("report-list", org), {"kind": "statement", "parameters": {}},
                           format="json")
    report = Report.objects.get(pk=resp.json()["id"])
    assert report.status == "failed" and "account" in report.error
    assert client.get(_url("report-download", org, pk=report.pk)).status_code == 409


def test_unknown_format_is_a_400_with_the_field():
    org, users = org_with_roles()
    resp = session_client(users[Role.OWNER]).post(
        _url("report-list", org), {"kind": "rts22", "format": "pdf", "parameters": {}},
        format="json")
    assert resp.status_code == 400
    assert "format" in resp.json()["error"]["fields"]


@pytest.mark.parametrize("role,status", [
    (Role.OWNER, 202), (Role.ADMIN, 202), (Role.COMPLIANCE, 202),
    (Role.TRADER, 403), (Role.ANALYST, 403), (Role.VIEWER, 403)])
def test_generating_needs_reports_write(role, status):
    org, users = org_with_roles()
    resp = session_client(users[role]).post(_url("report-list", org), {
        "kind": "statement", "parameters": {"account": account_activity_dict()}}, format="json")
    assert resp.status_code == status


@pytest.mark.parametrize("role,sees_compliance_kinds", [
    (Role.OWNER, True), (Role.ADMIN, True), (Role.COMPLIANCE, True),
    (Role.TRADER, False), (Role.ANALYST, False), (Role.VIEWER, False)])
def test_who_sees_which_kind(role, sees_compliance_kinds):
    org, users = org_with_roles()
    perf = stored_report(org, kind="performance")
    audit = stored_report(org, kind="audit", fmt="csv")
    own_tax = stored_report(org, kind="tax", requested_by=users[role])
    client = session_client(users[role])
    listed = {r["id"] for r in client.get(_url("report-list", org)).json()["results"]}
    assert perf.pk in listed and own_tax.pk in listed  # everyone: performance; and their own
    assert (audit.pk in listed) is sees_compliance_kinds
    download = client.get(_url("report-download", org, pk=audit.pk))
    assert download.status_code == (200 if sees_compliance_kinds else 404)


def test_deleting_a_report_removes_its_file_and_is_audited(django_capture_on_commit_callbacks):
    org, users = org_with_roles()
    report = stored_report(org)
    storage, name = report.file.storage, report.file.name
    with django_capture_on_commit_callbacks(execute=True):
        resp = session_client(users[Role.ADMIN]).delete(_url("report-detail", org, pk=report.pk))
    assert resp.status_code == 204
    assert not Report.objects.filter(pk=report.pk).exists() and not storage.exists(name)
    assert AuditEvent.objects.filter(organization=org, action="report.deleted").exists()
    assert session_client(users[Role.VIEWER]).delete(
        _url("report-detail", org, pk=stored_report(org).pk)).status_code == 403


def test_members_subscribe_themselves_and_see_only_their_own():
    org, users = org_with_roles()
    viewer = session_client(users[Role.VIEWER])
    resp = viewer.post(_url("subscription-list", org), {"kind": "weekly_performance",
                                                        "parameters": {"rolling_window": 21}},
                       format="json")
    assert resp.status_code == 201 and resp.json()["email"] == users[Role.VIEWER].email
    # A viewer may not receive compliance kinds.
    refused = viewer.post(_url("subscription-list", org), {"kind": "risk_alerts"}, format="json")
    assert refused.status_code == 403
    other = subscription(org, users[Role.TRADER])
    mine = {s["id"] for s in viewer.get(_url("subscription-list", org)).json()["results"]}
    assert mine == {resp.json()["id"]}
    assert viewer.get(_url("subscription-detail", org, pk=other.pk)).status_code == 404
    # Compliance sees everyone's.
    all_ids = {s["id"] for s in session_client(users[Role.COMPLIANCE]).get(
        _url("subscription-list", org)).json()["results"]}
    assert {resp.json()["id"], other.pk} <= all_ids
    # Pause, then delete; each change audited.
    sub_id = resp.json()["id"]
    assert viewer.patch(_url("subscription-detail", org, pk=sub_id), {"active": False},
                        format="json").json()["active"] is False
    assert viewer.delete(_url("subscription-detail", org, pk=sub_id)).status_code == 204
    actions = set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert {"report.subscription.created", "report.subscription.updated",
            "report.subscription.deleted"} <= actions
    # The first subscription created the beat schedules (one per kind).
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="reporting.run_subscriptions").count() == 4


def test_deliveries_list_shows_status_and_last_error():
    org, users = org_with_roles()
    sub = subscription(org, users[Role.TRADER])
    ReportDelivery.objects.create(organization=org, subscription=sub, period="2024-01",
                                  status="failed", attempts=3, last_error="SMTP 451 try later",
                                  recipient=users[Role.TRADER].email)
    rows = session_client(users[Role.TRADER]).get(_url("delivery-list", org)).json()["results"]
    assert [(r["period"], r["status"], r["attempts"], r["last_error"]) for r in rows] == [
        ("2024-01", "failed", 3, "SMTP 451 try later")]
    # Another member without oversight does not see it.
    assert session_client(users[Role.VIEWER]).get(
        _url("delivery-list", org)).json()["results"] == []


def test_unsubscribe_link_works_without_signing_in(client):
    org, users = org_with_roles()
    sub = subscription(org, users[Role.VIEWER])
    url = reverse("reporting:unsubscribe", kwargs={"token": services.unsubscribe_token(sub)})
    assert client.get(url).status_code == 200
    sub.refresh_from_db()
    assert sub.active  # a GET (a link scanner) changes nothing
    resp = client.post(url)
    assert resp.status_code == 200 and b"Unsubscribed" in resp.content
    sub.refresh_from_db()
    assert not sub.active
    assert AuditEvent.objects.filter(organization=org,
                                     action="report.subscription.unsubscribed").exists()
    tampered = url.replace(services.unsubscribe_token(sub)[:5], "AAAAA")
    assert client.post(tampered).status_code == 404


def test_portal_pages_list_reports_and_subscriptions(client):
    org, users = org_with_roles()
    report = stored_report(org, title="Quarterly review")
    subscription(org, users[Role.COMPLIANCE])
    client.force_login(users[Role.COMPLIANCE])
    page = client.get(reverse("reporting:reports", kwargs={"slug": org.slug}))
    assert page.status_code == 200 and b"Quarterly review" in page.content
    assert b"Generate a report" in page.content
    dl = client.get(reverse("reporting:report-download", kwargs={"slug": org.slug,
                                                                "pk": report.pk}))
    assert dl.status_code == 200
    subs = client.get(reverse("reporting:subscriptions", kwargs={"slug": org.slug}))
    assert subs.status_code == 200 and b"Monthly statement" in subs.content
    assert ReportSubscription.objects.filter(organization=org).count() == 1


def test_performance_report_of_a_stored_simulation(eager):
    from tests.trading.support import finished_simulation

    org, users = org_with_roles()
    sim = finished_simulation(org, users[Role.OWNER])
    symbol = sim.dataset.instruments.first().symbol
    client = session_client(users[Role.OWNER])
    with eager():
        resp = client.post(_url("report-list", org), {
            "kind": "performance",
            "parameters": {"simulation_id": sim.pk, "benchmark_symbol": symbol}}, format="json")
    report = Report.objects.get(pk=resp.json()["id"])
    assert report.status == "succeeded", report.error
    reader = pypdf.PdfReader(io.BytesIO(_body(client.get(_url("report-download", org,
                                                                 pk=report.pk)))))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert f"Simulation {sim.pk}" in text and org.name in text
    assert f"Benchmark: {symbol} buy and hold" in text
    # The key figure is the engine's own, as stored on the simulation.
    from reporting.pdf.common import fmt_pct

    assert f"Total return {fmt_pct(sim.metrics['total_return'])}" in text


def test_rts22_and_trades_exports_of_a_stored_simulation(eager):
    import csv
    import xml.etree.ElementTree as ET

    from tests.trading.support import finished_simulation

    org, users = org_with_roles()
    sim = finished_simulation(org, users[Role.OWNER])
    client = session_client(users[Role.COMPLIANCE])
    with eager():
        xml_id = client.post(_url("report-list", org), {
            "kind": "rts22", "parameters": {
                "simulation_id": sim.pk, "executing_entity": "5493001KJTIIGC8Y1R12",
                "counterparty": "529900T8BM49AURSDO55",
                "isins": {i.symbol: "US0378331005" for i in sim.dataset.instruments.all()}}},
            format="json").json()["id"]
        csv_id = client.post(_url("report-list", org), {
            "kind": "trades", "format": "csv", "parameters": {"simulation_id": sim.pk}},
            format="json").json()["id"]
    root = ET.fromstring(_body(client.get(_url("report-download", org, pk=xml_id))))
    ns = {"a": "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"}
    txs = root.findall("a:FinInstrmRptgTxRpt/a:Tx/a:New", ns)
    from trading.selectors import simulation_fills

    assert len(txs) == len(simulation_fills(simulation=sim)) > 0
    assert txs[0].findtext("a:InvstmtDcsnPrsn/a:Algo", namespaces=ns).startswith("NEXOW-")
    assert txs[0].findtext("a:ExctgPty", namespaces=ns) == "5493001KJTIIGC8Y1R12"
    rows = list(csv.DictReader(io.StringIO(_body(client.get(
        _url("report-download", org, pk=csv_id))).decode())))
    assert len(rows) == sim.trades.count()


def test_statement_and_best_execution_of_a_stored_simulation():
    import datetime as dt

    from reporting import sources
    from reporting.statements import statement_compute
    from tests.trading.support import finished_simulation
    from trading.selectors import simulation_equity, simulation_fills

    org, users = org_with_roles()
    sim = finished_simulation(org, users[Role.OWNER])
    ts, eq = simulation_equity(simulation=sim)
    fills = simulation_fills(simulation=sim)
    assert len(fills) >= 4
    # A statement over the whole run, then one from the day of the third fill to the end.
    first = dt.date.fromisoformat(str(np.datetime64(int(ts[0]), "ns"))[:10])
    last = dt.date.fromisoformat(str(np.datetime64(int(ts[-1]), "ns"))[:10])
    whole = statement_compute(sources.simulation_account_activity(sim, first, last))
    # Replaying every fill from the starting cash ends at the simulation's own final equity
    # (closing prices are the dataset's last closes, as the engine marks to market).
    assert float(whole.closing_value) == pytest.approx(float(eq[-1]), rel=1e-9)
    assert whole.opening_value == whole.opening_cash  # nothing held before the first bar
    mid = dt.date.fromisoformat(fills[2]["timestamp"][:10])
    later = statement_compute(sources.simulation_account_activity(sim, mid, last))
    assert later.closing_value == whole.closing_value
    assert later.reconciliation_difference.quantize(D("0.000001")) == 0
    # Best execution: one row per fill after the first bar, arrival = previous bar's close.
    rows = sources.simulation_arrival_fills(sim)
    assert len(rows) == len(fills)
    assert all(D(r["arrival_price"]) > 0 for r in rows)



def test_list_endpoints_use_a_fixed_number_of_queries():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org, users = org_with_roles()
    client = session_client(users[Role.COMPLIANCE])

    def count(name: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_url(name, org)).status_code == 200
        return len(ctx.captured_queries)

    stored_report(org, requested_by=users[Role.OWNER])
    sub = subscription(org, users[Role.TRADER])
    ReportDelivery.objects.create(organization=org, subscription=sub, period="p0")
    before = {name: count(name) for name in ("report-list", "subscription-list",
                                             "delivery-list")}
    for i in range(5):
        stored_report(org, requested_by=users[Role.ADMIN])
        other = subscription(org, users[Role.ANALYST], kind="weekly_performance")
        ReportDelivery.objects.create(organization=org, subscription=other, period=f"p{i + 1}")
    after = {name: count(name) for name in before}
    assert after == before


TAX_CSV = """id,date,symbol,side,quantity,price,fee
b1,2023-01-10,ACME,buy,100,10,0
s1,2024-03-01,ACME,sell,100,12.50,0
"""


@pytest.mark.parametrize("fmt", ["pdf", "csv", "xlsx"])
def test_tax_report_through_the_tax_engine(eager, fmt):
    org, users = org_with_roles()
    client = session_client(users[Role.COMPLIANCE])
    with eager():
        resp = client.post(_url("report-list", org), {
            "kind": "tax", "format": fmt,
            "parameters": {"trades_csv": TAX_CSV, "year": 2024, "jurisdiction": "us"}},
            format="json")
    report = Report.objects.get(pk=resp.json()["id"])
    assert report.status == "succeeded", report.error
    content = _body(client.get(_url("report-download", org, pk=report.pk)))
    # Bought 100 at 10 in January 2023, sold at 12.50 in March 2024: a 250.00 long-term gain.
    if fmt == "pdf":
        text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(content)).pages)
        assert "250.00" in text
    elif fmt == "csv":
        assert "250.00" in content.decode() and "long" in content.decode()
    else:
        import openpyxl

        ws = openpyxl.load_workbook(io.BytesIO(content)).active
        header = [c.value for c in ws[1]]
        assert ws.cell(row=2, column=header.index("gain") + 1).value == 250


def test_a_trader_cannot_see_tax_reports_of_others():
    org, users = org_with_roles()
    report = stored_report(org, kind="tax", requested_by=users[Role.COMPLIANCE])
    client = session_client(users[Role.TRADER])
    assert client.get(_url("report-detail", org, pk=report.pk)).status_code == 404


def test_breach_and_audit_reports_cover_their_window_only(eager):
    import csv
    import datetime as dt

    from risk.models import Breach

    org, users = org_with_roles()
    for day, rule in ((1, "max_position"), (15, "max_drawdown"), (40, "daily_loss")):
        Breach.objects.create(organization=org, source="simulation", source_id=9, rule=rule,
                              reason=f"{rule} exceeded", at=dt.datetime(2024, 1, 1, 12,
                                                                        tzinfo=dt.UTC)
                              + dt.timedelta(days=day - 1), fingerprint=f"fp-{day}")
    client = session_client(users[Role.COMPLIANCE])
    with eager():
        b_id = client.post(_url("report-list", org), {
            "kind": "risk_breaches", "format": "csv",
            "parameters": {"start": "2024-01-01", "end": "2024-01-31"}},
            format="json").json()["id"]
        a_id = client.post(_url("report-list", org), {
            "kind": "audit", "parameters": {"start": "2000-01-01", "end": "2100-01-01"}},
            format="json").json()["id"]
        pdf_id = client.post(_url("report-list", org), {
            "kind": "risk_breaches",
            "parameters": {"start": "2024-01-01", "end": "2024-01-31"}},
            format="json").json()["id"]
    rows = list(csv.DictReader(io.StringIO(_body(client.get(
        _url("report-download", org, pk=b_id))).decode())))
    assert [r["rule"] for r in rows] == ["max_position", "max_drawdown"]  # 9 Feb is outside
    audit = list(csv.DictReader(io.StringIO(_body(client.get(
        _url("report-download", org, pk=a_id))).decode())))
    actions = [r["action"] for r in audit]
    # The first breach report was generated before the audit export read the log.
    assert actions[0] == "report.requested" and "report.generated" in actions
    assert all(len(r["entry_hash"]) == 64 for r in audit)
    text = pypdf.PdfReader(io.BytesIO(_body(client.get(
        _url("report-download", org, pk=pdf_id))))).pages[0].extract_text()
    assert "max_drawdown exceeded" in text and "daily_loss" not in text

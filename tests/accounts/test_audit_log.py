"""The audit log: exactly one entry per action, append-only, tamper-evident, readable and
exportable by compliance, admins and owners only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts import services
from accounts.audit import audit_record, verify_all_chains, verify_chain
from accounts.models import AuditEvent, Invitation
from accounts.permissions import Role
from nexow_site.cli import main as nexow_main
from tests.factories import ApiKeyFactory, OrganizationFactory
from tests.fixtures_accounts import key_client, member, session_client

pytestmark = pytest.mark.django_db


def actions(org=None) -> list[str]:
    qs = AuditEvent.objects.all() if org is None else AuditEvent.objects.filter(organization=org)
    return list(qs.order_by("chain", "sequence").values_list("action", flat=True))


def org_url(org, rest: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/{rest}"


# --- exactly one entry per action -----------------------------------------------------------

def test_creating_an_organisation_leaves_exactly_one_entry(make_session_client, make_member,
                                                           organization):
    user = make_member(organization, Role.VIEWER)
    resp = session_client(user).post("/api/v1/orgs/", {"name": "Acme Capital"}, format="json")
    assert resp.status_code == 201
    assert resp.json()["slug"] == "acme-capital" and resp.json()["role"] == "owner"
    event = AuditEvent.objects.get(action="organization.created")
    assert event.actor == user and event.organization.slug == "acme-capital"
    assert AuditEvent.objects.count() == 1


def test_renaming_an_organisation_leaves_one_entry_with_before_and_after(owner_client,
                                                                        organization):
    old = organization.name
    resp = owner_client.patch(org_url(organization), {"name": "Renamed"}, format="json")
    assert resp.status_code == 200 and resp.json()["name"] == "Renamed"
    assert actions(organization) == ["organization.updated"]
    assert AuditEvent.objects.get().metadata == {"name": {"from": old, "to": "Renamed"}}


def test_each_membership_change_leaves_one_entry(owner_client, organization):
    trader = member(organization, Role.TRADER)
    viewer = member(organization, Role.VIEWER)
    ms = trader.memberships.get()
    assert owner_client.patch(org_url(organization, f"members/{ms.pk}/"), {"role": "analyst"},
                              format="json").status_code == 200
    assert owner_client.delete(
        org_url(organization, f"members/{viewer.memberships.get().pk}/")).status_code == 204
    assert session_client(trader).post(org_url(organization, "members/leave/")).status_code == 204
    assert actions(organization) == ["member.role_changed", "member.removed", "member.left"]
    changed = AuditEvent.objects.get(action="member.role_changed")
    assert changed.metadata == {"user": trader.email, "from": "trader", "to": "analyst"}


def test_invitation_create_accept_and_revoke_each_leave_one_entry(owner_client, organization,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = owner_client.post(org_url(organization, "invitations/"),
                                 {"email": "Newbie@Example.com", "role": "trader"}, format="json")
    assert resp.status_code == 201 and resp.json()["email"] == "newbie@example.com"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.com"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitations/" in line)
    token = link.rstrip("/").split("/")[-1]
    invitee = member(OrganizationFactory(), email="newbie@example.com")
    resp = session_client(invitee).post(f"/api/v1/invitations/{token}/accept/")
    assert resp.status_code == 201
    assert resp.json() == {"organization": organization.slug, "role": "trader",
                           "membership_id": invitee.memberships.get(organization=organization).pk}
    second = owner_client.post(org_url(organization, "invitations/"),
                               {"email": "other@example.com", "role": "viewer"}, format="json")
    assert owner_client.delete(
        org_url(organization, f"invitations/{second.json()['id']}/")).status_code == 204
    assert actions(organization) == ["invitation.created", "invitation.accepted",
                                     "invitation.created", "invitation.revoked"]


def test_key_create_and_revoke_each_leave_one_entry(owner_client, organization):
    resp = owner_client.post(org_url(organization, "api-keys/"), {"name": "bot"}, format="json")
    assert owner_client.delete(
        org_url(organization, f"api-keys/{resp.json()['id']}/")).status_code == 204
    assert actions(organization) == ["api_key.created", "api_key.revoked"]
    created = AuditEvent.objects.get(action="api_key.created")
    assert created.metadata["prefix"] == resp.json()["prefix"]


def test_a_refused_authorisation_leaves_one_entry_naming_the_missing_scope(organization):
    viewer = member(organization, Role.VIEWER)
    resp = session_client(viewer).get(org_url(organization, "audit-log/"))
    assert resp.status_code == 403
    assert resp.json()["error"]["message"] == "This needs the 'audit:read' permission."
    denied = AuditEvent.objects.get()
    assert denied.action == "authorization.denied" and denied.actor == viewer
    assert denied.metadata["scope"] == "audit:read" and denied.organization == organization


def test_a_refused_service_rule_is_audited_once_and_its_change_rolled_back(owner_client,
                                                                          organization, owner):
    resp = owner_client.patch(org_url(organization, f"members/{owner.memberships.get().pk}/"),
                              {"role": "viewer"}, format="json")
    assert resp.status_code == 403
    assert actions(organization) == ["authorization.denied"]


def test_entries_record_ip_user_agent_and_request_id(owner_client, organization):
    owner_client.patch(org_url(organization), {"name": "X"}, format="json",
                       HTTP_USER_AGENT="pytest-agent/1.0", HTTP_X_REQUEST_ID="req-12345678")
    event = AuditEvent.objects.get()
    assert (event.ip_address, event.user_agent, event.request_id) == (
        "127.0.0.1", "pytest-agent/1.0", "req-12345678")
    assert event.created_at.utcoffset() == timedelta(0)


# --- append-only and tamper-evident ---------------------------------------------------------

def test_entries_cannot_be_changed_or_deleted_through_the_model(organization):
    event = audit_record(organization=organization, actor=None, action="test.thing")
    event.action = "other"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_the_database_itself_refuses_updates(organization):
    audit_record(organization=organization, actor=None, action="test.thing")
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET action = 'x'")


@pytest.mark.services
def test_on_postgresql_the_database_also_refuses_deletes(organization):
    # (SQLite keeps DELETE possible for the test runner's flush; see migration 0002.)
    assert connection.vendor == "postgresql"
    audit_record(organization=organization, actor=None, action="test.thing")
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent")


def _tamper(sql: str, params: list) -> None:
    """What an intruder with database rights does: disable the guard and edit rows."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Deferred foreign-key checks of the test's transaction must fire before ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS accounts_auditevent_no_update")
        cursor.execute(sql, params)


def test_a_row_edited_with_raw_sql_is_detected_with_its_id(organization, owner):
    first = audit_record(organization=organization, actor=owner, action="a.one")
    second = audit_record(organization=organization, actor=owner, action="a.two")
    audit_record(organization=organization, actor=owner, action="a.three")
    assert verify_chain(organization).intact
    _tamper("UPDATE accounts_auditevent SET action = %s WHERE id = %s", ["a.innocent", second.pk])
    report = verify_chain(organization)
    assert not report.intact
    assert report.broken_id == second.pk and report.checked == 1
    assert report.found == second.entry_hash and report.expected != second.entry_hash
    assert first.pk != report.broken_id


def test_nexow_audit_verify_exits_1_on_a_break_and_0_when_intact(organization, owner, capsys):
    event = audit_record(organization=organization, actor=owner, action="a.one")
    audit_record(organization=None, actor=None, action="platform.thing")
    assert nexow_main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"org:{organization.pk}: intact (1 entries)" in out and "platform: intact" in out
    _tamper("UPDATE accounts_auditevent SET metadata = %s WHERE id = %s", ['{"x": 1}', event.pk])
    assert nexow_main(["audit", "verify", "--org", organization.slug]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN at entry id={event.pk}" in out
    with pytest.raises(CommandError):
        call_command("audit", "verify")


def test_a_deleted_row_in_the_middle_or_at_the_end_is_detected(organization):
    events = [audit_record(organization=organization, actor=None, action=f"a.{i}")
              for i in range(4)]
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [events[-1].pk])
    report = verify_chain(organization)
    assert not report.intact and report.reason == "entries were removed from the end of the chain"
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [events[1].pk])
    report = verify_chain(organization)
    assert not report.intact and report.broken_id == events[2].pk


def test_chains_are_per_organisation(organization):
    other = OrganizationFactory()
    a1 = audit_record(organization=organization, actor=None, action="x")
    b1 = audit_record(organization=other, actor=None, action="x")
    a2 = audit_record(organization=organization, actor=None, action="y")
    assert (a1.sequence, b1.sequence, a2.sequence) == (1, 1, 2)
    assert a2.prev_hash == a1.entry_hash and b1.prev_hash == ""
    assert all(r.intact for r in verify_all_chains())


# --- reading and exporting ------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [
    (Role.OWNER, 200), (Role.ADMIN, 200), (Role.COMPLIANCE, 200),
    (Role.TRADER, 403), (Role.ANALYST, 403), (Role.VIEWER, 403),
])
def test_only_compliance_admins_and_owners_read_the_log(organization, role, status):
    client = session_client(member(organization, role))
    assert client.get(org_url(organization, "audit-log/")).status_code == status
    assert client.get(org_url(organization, "audit-log/export.csv")).status_code == status
    assert client.get(org_url(organization, "audit-log/verify/")).status_code == status


def test_the_log_filters_by_action_prefix_and_time(owner_client, organization, owner):
    audit_record(organization=organization, actor=owner, action="member.removed")
    audit_record(organization=organization, actor=owner, action="api_key.created")
    resp = owner_client.get(org_url(organization, "audit-log/"), {"action": "member"})
    assert [e["action"] for e in resp.json()["results"]] == ["member.removed"]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    resp = owner_client.get(org_url(organization, "audit-log/"), {"since": future})
    assert resp.json()["results"] == []
    assert owner_client.get(org_url(organization, "audit-log/"),
                            {"since": "yesterday"}).status_code == 400


def test_the_csv_export_has_one_row_per_entry(owner_client, organization, owner):
    for i in range(3):
        audit_record(organization=organization, actor=owner, action=f"thing.{i}",
                     metadata={"n": i})
    resp = owner_client.get(org_url(organization, "audit-log/export.csv"))
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["thing.2", "thing.1", "thing.0"]
    assert rows[0]["metadata"] == '{"n": 2}' and rows[0]["actor_label"] == owner.email


def test_the_verify_endpoint_reports_an_intact_chain(owner_client, organization, owner):
    audit_record(organization=organization, actor=owner, action="x")
    resp = owner_client.get(org_url(organization, "audit-log/verify/"))
    assert resp.json() == {"chain": f"org:{organization.pk}", "intact": True, "checked": 1,
                           "broken_link": None}


def test_a_key_with_audit_read_can_read_the_log_and_a_narrower_key_cannot(organization, owner):
    reader = ApiKeyFactory(organization=organization, created_by=owner, scopes=["audit:read"])
    other = ApiKeyFactory(organization=organization, created_by=owner, scopes=["orders:read"])
    assert key_client(reader).get(org_url(organization, "audit-log/")).status_code == 200
    assert key_client(other).get(org_url(organization, "audit-log/")).status_code == 403


def test_the_admin_console_cannot_add_change_or_delete_entries(rf, organization):
    from django.contrib.admin.sites import site

    from accounts.models import User

    staff = User.objects.create_superuser("ops@example.com", "x" * 12)
    request = rf.get("/")
    request.user = staff
    admin_view = site._registry[AuditEvent]
    assert not admin_view.has_add_permission(request)
    assert not admin_view.has_change_permission(request)
    assert not admin_view.has_delete_permission(request)


def test_services_write_the_invitation_token_only_as_a_hash(organization, owner):
    from accounts.selectors import caller_for

    caller = caller_for(user=owner, organization=organization)
    invitation, token = services.invitation_create(organization=organization, email="a@b.co",
                                                   role=Role.VIEWER, caller=caller)
    stored = Invitation.objects.get(pk=invitation.pk)
    assert token not in stored.token_hash and len(stored.token_hash) == 64


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_chain_do_not_fork_it():
    # Two writers append 15 entries each at the same time; the head-row lock serialises them, so
    # the chain holds 30 entries numbered 1..30, each pointing at its predecessor.
    import threading

    from django.db import connections

    org = OrganizationFactory()
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for i in range(15):
                audit_record(organization=org, actor=None, action=f"{tag}.{i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = verify_chain(org)
    assert report.intact and report.checked == 30
    assert sorted(AuditEvent.objects.filter(organization=org).values_list("sequence", flat=True)) \
        == list(range(1, 31))

"""The portal's organisation pages: home routing, organisation creation and settings, members
and invitations, the organisation switcher, API keys (with re-authentication) and the audit log."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts import services
from accounts.keys import is_well_formed
from accounts.models import ApiKey, AuditEvent, Membership, Organization
from accounts.selectors import caller_for
from tests.accounts.authkit import PASSWORD, login, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(settings):
    cache.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    cache.clear()


@pytest.fixture
def owner():
    return make_user("owner@example.com")


@pytest.fixture
def org(owner):
    return services.organization_create(name="Acme Capital", slug="acme", actor=owner)


def add_member(org, email: str, role: str):
    user = make_user(email)
    caller = caller_for(user=org.memberships.get(role="owner").user, organization=org)
    _inv, token = services.invitation_create(organization=org, email=email, role=role,
                                             caller=caller)
    services.invitation_accept(token=token, user=user)
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- home and organisations -----------------------------------------------------------------

def test_home_sends_anonymous_visitors_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_home_sends_a_member_to_their_organisations_dashboard(owner, org):
    response = signed_in(owner).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/orgs/acme/dashboard/"


def test_home_sends_someone_without_organisation_to_create_one(client):
    client.force_login(make_user())
    assert client.get("/")["Location"] == "/orgs/new/"


def test_creating_an_organisation_makes_you_its_owner(client):
    user = make_user()
    client.force_login(user)
    page = client.get("/orgs/new/")
    assert '<label for="id_name">Organisation name:</label>' in page.content.decode()
    response = client.post("/orgs/new/", {"name": "Blue Ocean Fund", "slug": ""})
    assert response.status_code == 302
    assert response["Location"] == "/orgs/blue-ocean-fund/dashboard/"
    org = Organization.objects.get(slug="blue-ocean-fund")
    assert Membership.objects.get(organization=org, user=user).role == "owner"
    assert AuditEvent.objects.filter(organization=org, action="organization.created").count() == 1
    home = client.get("/orgs/blue-ocean-fund/").content.decode()
    assert "You are <strong>Owner</strong>" in home


def test_a_taken_slug_is_reported_next_to_the_field(client, org):
    client.force_login(make_user())
    response = client.post("/orgs/new/", {"name": "Other", "slug": "acme"})
    assert response.status_code == 400
    body = response.content.decode()
    assert re.search(r'id="id_slug".*?Already in use\.', body, re.S)
    assert Organization.objects.count() == 1


def test_the_portal_forms_reject_a_post_without_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/orgs/new/", {"name": "No Token"}).status_code == 403
    assert not Organization.objects.filter(name="No Token").exists()


def test_another_organisations_pages_are_not_found(org):
    stranger = make_user("stranger@example.com")
    services.organization_create(name="Elsewhere", actor=stranger)
    client = signed_in(stranger)
    for path in ("/orgs/acme/", "/orgs/acme/members/", "/orgs/acme/api-keys/",
                 "/orgs/acme/audit/", "/orgs/acme/settings/", "/orgs/acme/audit.csv"):
        assert client.get(path).status_code == 404, path


def test_owner_renames_the_organisation_and_a_viewer_may_not(owner, org):
    response = signed_in(owner).post("/orgs/acme/settings/", {"name": "Acme Capital LP"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "Acme Capital LP"
    viewer = add_member(org, "viewer@example.com", "viewer")
    client = signed_in(viewer)
    assert "Only owners and admins" in client.get("/orgs/acme/settings/").content.decode()
    assert client.post("/orgs/acme/settings/", {"name": "Hijacked"}).status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme Capital LP"


def test_an_owner_deletes_the_organisation_after_reauthenticating_and_typing_its_name(owner,
                                                                                      org):
    client = Client()
    login(client, owner.email)
    response = client.post("/orgs/acme/delete/", {"confirm": "acme"})
    assert response["Location"].startswith("/accounts/reauthenticate/")
    org.refresh_from_db()
    assert org.deleted_at is None

    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    wrong = client.post("/orgs/acme/delete/", {"confirm": "Acme"})
    assert wrong.status_code == 400
    assert "Type “acme” exactly." in wrong.content.decode()
    response = client.post("/orgs/acme/delete/", {"confirm": "acme"})
    assert response["Location"] == "/"
    org.refresh_from_db()
    assert org.deleted_at is not None
    assert client.get("/orgs/acme/").status_code == 404
    assert client.get("/")["Location"] == "/orgs/new/"


def test_an_admin_cannot_delete_the_organisation(org):
    admin = add_member(org, "admin@example.com", "admin")
    client = Client()
    login(client, admin.email)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert "Delete the organisation" not in client.get("/orgs/acme/settings/").content.decode()
    assert client.post("/orgs/acme/delete/", {"confirm": "acme"}).status_code == 403
    org.refresh_from_db()
    assert org.deleted_at is None


def test_the_last_owner_cannot_leave(owner, org):
    client = signed_in(owner)
    response = client.post("/orgs/acme/leave/", follow=True)
    assert "The last owner cannot leave" in response.content.decode()
    assert Membership.objects.filter(organization=org, user=owner).exists()


# --- organisation switcher ------------------------------------------------------------------

def test_the_switcher_changes_the_current_organisation_for_the_session(owner, org):
    services.organization_create(name="Zeta Partners", slug="zeta", actor=owner)
    client = signed_in(owner)
    assert client.get("/")["Location"] == "/orgs/acme/dashboard/"  # the first, by name
    page = client.get("/orgs/acme/").content.decode()
    assert '<select id="org-switcher-select" name="organization">' in page
    assert '<option value="zeta">Zeta Partners</option>' in page

    response = client.post("/orgs/switch/", {"organization": "zeta"})
    assert response["Location"] == "/orgs/zeta/dashboard/"
    assert client.get("/")["Location"] == "/orgs/zeta/dashboard/"
    page = client.get("/orgs/zeta/members/").content.decode()
    assert '<option value="zeta" selected>Zeta Partners</option>' in page


def test_the_switcher_refuses_an_organisation_you_are_not_in(owner, org):
    other = make_user("other@example.com")
    services.organization_create(name="Private", slug="private", actor=other)
    client = signed_in(owner)
    assert client.post("/orgs/switch/", {"organization": "private"}).status_code == 404
    assert client.get("/")["Location"] == "/orgs/acme/dashboard/"


def test_losing_the_chosen_organisation_falls_back_to_another(owner, org):
    partner = make_user("partner@example.com")
    zeta = services.organization_create(name="Zeta Partners", slug="zeta", actor=partner)
    caller = caller_for(user=partner, organization=zeta)
    _inv, token = services.invitation_create(organization=zeta, email=owner.email,
                                             role="viewer", caller=caller)
    services.invitation_accept(token=token, user=owner)
    client = signed_in(owner)
    client.post("/orgs/switch/", {"organization": "zeta"})
    assert client.get("/")["Location"] == "/orgs/zeta/dashboard/"

    services.membership_remove(membership=zeta.memberships.get(user=owner), caller=caller)

    assert client.get("/")["Location"] == "/orgs/acme/dashboard/"
    assert client.get("/orgs/zeta/").status_code == 404


def test_a_single_organisation_member_sees_no_switcher(owner, org):
    page = signed_in(owner).get("/orgs/acme/").content.decode()
    assert "org-switcher-select" not in page


# --- members and invitations ----------------------------------------------------------------

def test_invitation_by_email_is_accepted_through_the_link_after_signing_in(
        owner, org, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/orgs/acme/members/invite/",
                               {"email": "Quant@Example.com", "role": "analyst"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["quant@example.com"]
    (link,) = re.findall(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body)
    path = re.sub(r"^https?://[^/]+", "", link)
    assert "quant@example.com" in client.get("/orgs/acme/members/").content.decode()

    # The invitee opens the link signed out: sign in first, then come back to it.
    invitee = make_user("quant@example.com")
    guest = Client()
    response = guest.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/invitations/")
    response = login(guest, invitee.email, PASSWORD, next=path)
    assert response["Location"] == path
    assert "Accept the invitation" in guest.get(path).content.decode()
    response = guest.post(path)
    assert response.status_code == 302
    assert response["Location"] == "/orgs/acme/dashboard/"
    assert Membership.objects.get(organization=org, user=invitee).role == "analyst"

    # The link works once.
    again = guest.post(path)
    assert again.status_code == 400
    assert "This invitation is accepted." in again.content.decode()


def test_an_invitation_for_another_address_is_refused(owner, org):
    caller = caller_for(user=owner, organization=org)
    _inv, token = services.invitation_create(organization=org, email="right@example.com",
                                             role="viewer", caller=caller)
    response = signed_in(make_user("wrong@example.com")).post(f"/invitations/{token}/")
    assert response.status_code == 400
    assert "sent to another e-mail address" in response.content.decode()
    assert not Membership.objects.filter(organization=org, user__email="wrong@example.com")


def test_invite_form_shows_a_duplicate_member_inline(owner, org):
    add_member(org, "trader@example.com", "trader")
    response = signed_in(owner).post("/orgs/acme/members/invite/",
                                     {"email": "trader@example.com", "role": "viewer"})
    assert response.status_code == 400
    assert re.search(r'id="id_email".*?Already a member\.', response.content.decode(), re.S)


def test_a_trader_sees_members_but_cannot_invite(org):
    trader = add_member(org, "trader@example.com", "trader")
    client = signed_in(trader)
    page = client.get("/orgs/acme/members/").content.decode()
    assert "owner@example.com" in page
    assert "Invite someone" not in page
    response = client.post("/orgs/acme/members/invite/", {"email": "x@example.com",
                                                          "role": "viewer"})
    assert response.status_code == 403


def test_an_admin_is_offered_only_roles_up_to_their_own(org):
    admin = add_member(org, "admin@example.com", "admin")
    page = signed_in(admin).get("/orgs/acme/members/").content.decode()
    invite = page[page.index('id="id_role"'):]
    invite = invite[:invite.index("</select>")]
    assert re.findall(r'value="(\w+)"', invite) == ["admin", "trader", "analyst", "compliance",
                                                     "viewer"]


def test_owner_changes_a_role_and_removes_a_member(owner, org):
    viewer = add_member(org, "viewer@example.com", "viewer")
    membership = Membership.objects.get(organization=org, user=viewer)
    client = signed_in(owner)
    response = client.post(f"/orgs/acme/members/{membership.pk}/role/",
                           {f"m{membership.pk}-role": "trader"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "trader"
    response = client.post(f"/orgs/acme/members/{membership.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_revoking_a_pending_invitation_from_the_members_page(owner, org):
    caller = caller_for(user=owner, organization=org)
    invitation, _token = services.invitation_create(organization=org, email="late@example.com",
                                                    role="viewer", caller=caller)
    response = signed_in(owner).post(f"/orgs/acme/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"


# --- API keys -------------------------------------------------------------------------------

def key_form(**overrides):
    return {"name": "research notebook", "expires_in_days": "30", **overrides}


def test_creating_a_key_without_recent_reauthentication_asks_for_the_password_first(owner, org):
    client = Client()
    login(client, owner.email)
    response = client.post("/orgs/acme/api-keys/", key_form())
    assert response.status_code == 302
    assert response["Location"] == "/accounts/reauthenticate/?next=%2Forgs%2Facme%2Fapi-keys%2F"
    assert not ApiKey.objects.exists()

    # After the password, allauth replays the suspended POST: the key is created and shown once.
    response = client.post(response["Location"], {"password": PASSWORD})
    assert response.status_code == 201
    key = ApiKey.objects.get()
    plaintext = re.search(r'id="new-api-key">([^<]+)<', response.content.decode()).group(1)
    assert is_well_formed(plaintext)
    assert plaintext.startswith(key.prefix)
    assert "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(organization=org, action="api_key.created").count() == 1

    # Shown once: the list never contains the secret again.
    assert plaintext not in client.get("/orgs/acme/api-keys/").content.decode()


def test_a_wrong_reauthentication_password_creates_no_key(owner, org):
    client = Client()
    login(client, owner.email)
    location = client.post("/orgs/acme/api-keys/", key_form())["Location"]
    response = client.post(location, {"password": "not it"})
    assert response.status_code == 200
    assert not ApiKey.objects.exists()


def test_a_recently_reauthenticated_member_creates_a_narrowed_key_directly(org):
    trader = add_member(org, "trader@example.com", "trader")
    client = Client()
    login(client, trader.email)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    response = client.post("/orgs/acme/api-keys/",
                           key_form(scopes=["market_data:read", "simulations:write"]))
    assert response.status_code == 201
    key = ApiKey.objects.get()
    assert key.scopes == ["market_data:read", "simulations:write"]
    # Both timestamps are taken in one service call, microseconds apart.
    assert round((key.expires_at - key.created_at).total_seconds() / 86400) == 30


def test_the_key_form_offers_only_scopes_of_your_role_and_reports_errors_inline(org):
    viewer = add_member(org, "viewer@example.com", "viewer")
    client = Client()
    login(client, viewer.email)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/orgs/acme/api-keys/").content.decode()
    assert 'value="orders:read"' in page
    assert 'value="orders:write"' not in page
    response = client.post("/orgs/acme/api-keys/", key_form(scopes=["orders:write"],
                                                            expires_in_days="400"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice. orders:write is not one of the available choices." in body
    assert "Ensure this value is less than or equal to 366." in body
    assert not ApiKey.objects.exists()


def test_revoking_a_key_from_the_list(owner, org):
    caller = caller_for(user=owner, organization=org)
    key, _plain = services.api_key_create(caller=caller, name="old")
    client = signed_in(owner)
    assert client.post(f"/orgs/acme/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert '<span class="badge revoked">revoked</span>' in (
        client.get("/orgs/acme/api-keys/").content.decode())


def test_a_member_cannot_revoke_someone_elses_key(owner, org):
    caller = caller_for(user=owner, organization=org)
    key, _plain = services.api_key_create(caller=caller, name="owner's")
    trader = add_member(org, "trader@example.com", "trader")
    client = signed_in(trader)
    assert "owner&#x27;s" not in client.get("/orgs/acme/api-keys/").content.decode()
    assert client.post(f"/orgs/acme/api-keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


# --- audit log ------------------------------------------------------------------------------

def test_audit_log_lists_filters_and_exports_csv(owner, org):
    add_member(org, "trader@example.com", "trader")
    caller = caller_for(user=owner, organization=org)
    services.api_key_create(caller=caller, name="=HYPERLINK(\"x\")")
    client = signed_in(owner)

    page = client.get("/orgs/acme/audit/").content.decode()
    # organization.created, invitation.created, invitation.accepted, api_key.created
    assert page.count("<code>organization.created</code>") == 1
    assert page.count("<code>invitation.") == 2
    assert page.count("<code>api_key.created</code>") == 1

    filtered = client.get("/orgs/acme/audit/", {"action": "invitation"}).content.decode()
    assert filtered.count("<code>invitation.") == 2
    assert "<code>api_key.created</code>" not in filtered
    assert 'href="/orgs/acme/audit.csv?action=invitation"' in filtered

    by_trader = client.get("/orgs/acme/audit/", {"actor": str(
        Membership.objects.get(user__email="trader@example.com").user_id)}).content.decode()
    assert by_trader.count("<code>invitation.accepted</code>") == 1
    assert "<code>organization.created</code>" not in by_trader

    export = client.get("/orgs/acme/audit.csv", {"action": "api_key"})
    assert export.status_code == 200
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][:4] == ["created_at", "sequence", "actor", "action"]
    assert len(rows) == 2
    assert rows[1][2:4] == ["owner@example.com", "api_key.created"]
    # A cell a spreadsheet would run as a formula is defused.
    assert rows[1][6].startswith("'=HYPERLINK")


def test_audit_log_rejects_an_inverted_date_range(owner, org):
    response = signed_in(owner).get("/orgs/acme/audit/", {"since": "2026-05-02",
                                                          "until": "2026-05-01"})
    assert response.status_code == 400
    assert "The end date is before the start date." in response.content.decode()


def test_only_roles_with_audit_access_see_the_audit_log(org):
    trader = add_member(org, "trader@example.com", "trader")
    compliance = add_member(org, "compliance@example.com", "compliance")
    assert signed_in(trader).get("/orgs/acme/audit/").status_code == 403
    assert signed_in(trader).get("/orgs/acme/audit.csv").status_code == 403
    assert signed_in(compliance).get("/orgs/acme/audit/").status_code == 200


def test_api_requests_do_not_pay_for_the_portal_organisation_lookup(owner, org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(owner)
    with CaptureQueriesContext(connection) as api:
        assert client.get("/api/v1/").status_code == 200
    with CaptureQueriesContext(connection) as page:
        client.get("/orgs/acme/")
    lookups = [q["sql"] for q in page.captured_queries if "accounts_organization" in q["sql"]]
    assert lookups  # portal pages resolve the current organisation
    assert not [q for q in api.captured_queries if "accounts_organization" in q["sql"]]

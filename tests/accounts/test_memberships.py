"""Organisations, members and invitations: the role rules (nobody grants above their own role or
changes their own; the last owner stays) and the invitation life cycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Membership, Organization
from accounts.permissions import Role
from tests.factories import OrganizationFactory
from tests.fixtures_accounts import member, session_client

pytestmark = pytest.mark.django_db


def member_url(org, user) -> str:
    return f"/api/v1/orgs/{org.slug}/members/{user.memberships.get(organization=org).pk}/"


def set_role(client, org, user, role):
    return client.patch(member_url(org, user), {"role": role}, format="json")


# --- organisations --------------------------------------------------------------------------

def test_the_creator_of_an_organisation_is_its_owner(make_member, organization):
    user = make_member(organization)
    resp = session_client(user).post("/api/v1/orgs/", {"name": "Fund", "slug": "fund"},
                                     format="json")
    assert resp.status_code == 201
    assert Membership.objects.get(user=user, organization__slug="fund").role == Role.OWNER


def test_a_taken_slug_is_a_409(owner_client, organization):
    resp = owner_client.post("/api/v1/orgs/", {"name": "x", "slug": organization.slug},
                             format="json")
    assert resp.status_code == 409 and resp.json()["error"]["fields"]["slug"]


def test_i_list_only_my_organisations_with_my_role(owner_client, organization, owner):
    OrganizationFactory(name="Not mine")
    second = OrganizationFactory(name="Zeta")
    Membership.objects.create(user=owner, organization=second, role=Role.VIEWER)
    results = owner_client.get("/api/v1/orgs/").json()["results"]
    assert [(o["slug"], o["role"]) for o in results] == [(organization.slug, "owner"),
                                                         (second.slug, "viewer")]


def test_only_an_owner_deletes_the_organisation_and_it_then_disappears(organization, owner):
    admin = member(organization, Role.ADMIN)
    url = f"/api/v1/orgs/{organization.slug}/"
    assert session_client(admin).delete(url).status_code == 403
    assert session_client(owner).delete(url).status_code == 204
    assert session_client(owner).get(url).status_code == 404
    # Soft delete: the row and its audit trail stay.
    assert Organization.objects.filter(pk=organization.pk, deleted_at__isnull=False).exists()
    assert AuditEvent.objects.filter(action="organization.deleted").count() == 1


def test_a_non_member_gets_404_for_an_organisation_that_exists(organization, make_member):
    stranger = make_member(OrganizationFactory())
    assert session_client(stranger).get(
        f"/api/v1/orgs/{organization.slug}/").json()["error"]["code"] == "not_found"


def test_an_anonymous_caller_gets_401_with_a_bearer_challenge(api_client, organization):
    resp = api_client.get(f"/api/v1/orgs/{organization.slug}/")
    assert resp.status_code == 401 and resp["WWW-Authenticate"] == 'Bearer realm="api"'


def test_session_writes_need_the_csrf_token(owner, organization):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    resp = client.patch(f"/api/v1/orgs/{organization.slug}/", {"name": "x"}, format="json")
    assert resp.status_code == 403 and "CSRF" in resp.json()["error"]["message"]


# --- role rules -----------------------------------------------------------------------------

def test_the_last_owner_cannot_leave(owner_client, organization):
    resp = owner_client.post(f"/api/v1/orgs/{organization.slug}/members/leave/")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "last_owner"
    assert organization.memberships.filter(role=Role.OWNER).count() == 1


def test_the_last_owner_cannot_be_demoted_even_by_a_co_owner_who_then_left(organization, owner):
    co_owner = member(organization, Role.OWNER)
    # Two owners: one may demote the other...
    assert set_role(session_client(co_owner), organization, owner, "admin").status_code == 200
    # ...and now the co-owner is the last owner and cannot leave.
    resp = session_client(co_owner).post(f"/api/v1/orgs/{organization.slug}/members/leave/")
    assert resp.status_code == 409


def test_an_owner_can_leave_when_another_owner_remains(owner_client, organization, owner):
    member(organization, Role.OWNER)
    assert owner_client.post(f"/api/v1/orgs/{organization.slug}/members/leave/").status_code == 204
    assert not Membership.objects.filter(user=owner, organization=organization).exists()


def test_nobody_changes_their_own_role(owner_client, organization, owner):
    resp = set_role(owner_client, organization, owner, "admin")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "own_role"


def test_an_admin_cannot_grant_owner_nor_touch_an_owner(organization, owner):
    admin = member(organization, Role.ADMIN)
    trader = member(organization, Role.TRADER)
    client = session_client(admin)
    assert set_role(client, organization, trader, "owner").status_code == 403
    assert set_role(client, organization, owner, "viewer").status_code == 403
    assert client.delete(member_url(organization, owner)).status_code == 403
    assert set_role(client, organization, trader, "admin").status_code == 200


def test_roles_without_members_write_cannot_change_roles(organization):
    trader = member(organization, Role.TRADER)
    viewer = member(organization, Role.VIEWER)
    resp = set_role(session_client(trader), organization, viewer, "viewer")
    assert resp.status_code == 403


def test_an_unknown_role_is_a_400_naming_the_field(owner_client, organization):
    viewer = member(organization, Role.VIEWER)
    resp = set_role(owner_client, organization, viewer, "emperor")
    assert resp.status_code == 400 and "role" in resp.json()["error"]["fields"]


# --- invitations ----------------------------------------------------------------------------

def _invite(client, org, email="new@example.com", role="trader"):
    return client.post(f"/api/v1/orgs/{org.slug}/invitations/", {"email": email, "role": role},
                       format="json")


def _token(django_capture_on_commit_callbacks, client, org, **kw) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(client, org, **kw).status_code == 201
    line = next(x for x in mail.outbox[-1].body.splitlines() if "/invitations/" in x)
    return line.rstrip("/").split("/")[-1]


def test_an_invitation_works_once_and_only_for_its_address(owner_client, organization,
                                                           django_capture_on_commit_callbacks):
    token = _token(django_capture_on_commit_callbacks, owner_client, organization)
    impostor = member(OrganizationFactory(), email="impostor@example.com")
    resp = session_client(impostor).post(f"/api/v1/invitations/{token}/accept/")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "email_mismatch"
    invitee = member(OrganizationFactory(), email="NEW@example.com")
    assert session_client(invitee).post(f"/api/v1/invitations/{token}/accept/").status_code == 201
    assert session_client(invitee).post(f"/api/v1/invitations/{token}/accept/").status_code == 409
    assert Membership.objects.get(user=invitee, organization=organization).role == "trader"


def test_an_expired_or_revoked_invitation_cannot_be_accepted(owner_client, organization,
                                                             django_capture_on_commit_callbacks):
    token = _token(django_capture_on_commit_callbacks, owner_client, organization)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    invitee = member(OrganizationFactory(), email="new@example.com")
    resp = session_client(invitee).post(f"/api/v1/invitations/{token}/accept/")
    assert resp.status_code == 409 and "expired" in resp.json()["error"]["message"]
    assert session_client(invitee).post("/api/v1/invitations/nope/accept/").status_code == 404


def test_inviting_above_your_role_is_refused(organization):
    admin = member(organization, Role.ADMIN)
    resp = _invite(session_client(admin), organization, role="owner")
    assert resp.status_code == 403 and not Invitation.objects.exists()


def test_inviting_an_existing_member_is_a_409(owner_client, organization):
    viewer = member(organization, Role.VIEWER)
    assert _invite(owner_client, organization, email=viewer.email).status_code == 409


def test_an_api_key_cannot_accept_an_invitation(owner_key, organization):
    from tests.fixtures_accounts import key_client

    resp = key_client(owner_key).post("/api/v1/invitations/whatever/accept/")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "session_required"

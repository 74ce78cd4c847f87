"""API keys: format, storage only as a keyed hash, scopes that narrow the creator's role,
expiry, immediate revocation, and never in a URL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, AuditEvent, Membership
from accounts.permissions import Role
from tests.factories import ApiKeyFactory, OrganizationFactory
from tests.fixtures_accounts import key_client, member, session_client

pytestmark = pytest.mark.django_db


def keys_url(org) -> str:
    return f"/api/v1/orgs/{org.slug}/api-keys/"


def create_key(client, org, **body):
    return client.post(keys_url(org), {"name": "notebook", **body}, format="json")


# --- format ---------------------------------------------------------------------------------

def test_a_generated_key_has_the_prefix_and_a_valid_checksum():
    key = keys.generate_key()
    # nx_live_ + 36 random + 6 checksum characters
    assert key.startswith("nx_live_") and len(key) == 8 + 36 + 6
    assert keys.is_well_formed(key)


def test_a_key_with_one_changed_character_fails_the_checksum():
    key = keys.generate_key()
    i = 8 + 5
    tampered = key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1:]
    assert not keys.is_well_formed(tampered)


def test_the_random_part_carries_at_least_128_secret_bits():
    # 36 base62 characters, 8 of them shown as the prefix: 28 * log2(62) ≈ 166.7 bits stay secret.
    import math

    assert (keys.RANDOM_LENGTH - keys.VISIBLE_RANDOM_CHARS) * math.log2(62) >= 128


# --- creation -------------------------------------------------------------------------------

def test_creating_a_key_returns_the_secret_once_and_stores_only_its_hash(owner_client,
                                                                         organization):
    resp = create_key(owner_client, organization, scopes=["orders:read"])
    assert resp.status_code == 201, resp.content
    plaintext = resp.json()["key"]
    stored = ApiKey.objects.get(pk=resp.json()["id"])
    assert stored.hashed_key == keys.hash_key(plaintext) != plaintext
    assert stored.prefix == plaintext[:16]
    assert stored.scopes == ["orders:read"]
    listed = owner_client.get(keys_url(organization)).json()["results"]
    assert [k["prefix"] for k in listed] == [stored.prefix]
    assert "key" not in listed[0] and plaintext not in str(listed)


def _all_text_values() -> list[str]:
    """Every text-like value of every table in the database."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = connection.introspection.get_table_description(cursor, table)
            text_cols = [c.name for c in columns
                         if any(t in str(c.type_code).lower() for t in ("char", "text", "json",
                                                                        "varchar"))
                         or connection.vendor == "sqlite"]
            if not text_cols:
                continue
            cols = ", ".join(connection.ops.quote_name(c) for c in text_cols)
            cursor.execute(f"SELECT {cols} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                values.extend(str(v) for v in row if v is not None)
    return values


def test_the_plaintext_key_appears_in_no_database_column_and_no_log(owner_client, organization,
                                                                    caplog):
    caplog.set_level(logging.DEBUG)
    resp = create_key(owner_client, organization)
    plaintext = resp.json()["key"]
    assert key_client(plaintext).get(f"/api/v1/orgs/{organization.slug}/").status_code == 200
    assert key_client(plaintext[:-2] + "zz").get("/api/v1/orgs/").status_code == 401
    secret_part = plaintext[16:]  # everything after the visible prefix
    assert AuditEvent.objects.filter(action="api_key.created").count() == 1
    assert not [v for v in _all_text_values() if secret_part in v]
    assert secret_part not in caplog.text


def test_key_scopes_beyond_the_creators_role_are_refused_with_a_clear_message(organization):
    trader = member(organization, Role.TRADER)
    resp = create_key(session_client(trader), organization, scopes=["orders:write", "audit:read"])
    assert resp.status_code == 403
    error = resp.json()["error"]
    assert error["code"] == "scope_exceeds_role"
    assert "audit:read" in error["message"] and "orders:write" not in error["message"]
    assert not ApiKey.objects.exists()


def test_a_key_without_scopes_gets_the_creators_role(organization):
    analyst = member(organization, Role.ANALYST)
    resp = create_key(session_client(analyst), organization)
    assert resp.status_code == 201
    assert "strategies:write" in resp.json()["scopes"] and "orders:read" in resp.json()["scopes"]
    assert "orders:write" not in resp.json()["scopes"]


@pytest.mark.parametrize(("days", "status"), [(0, 400), (366, 201), (367, 400)])
def test_keys_always_expire_within_366_days(owner_client, organization, days, status):
    resp = create_key(owner_client, organization, expires_in_days=days)
    assert resp.status_code == status
    if status == 201:
        key = ApiKey.objects.get()
        assert timedelta(days=365, hours=23) < key.expires_at - timezone.now() <= timedelta(days=366)


def test_the_default_expiry_is_90_days(owner_client, organization):
    create_key(owner_client, organization)
    left = ApiKey.objects.get().expires_at - timezone.now()
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90)


def test_creating_a_key_needs_a_recent_sign_in(owner, organization):
    client = session_client(owner, reauthenticated=False)
    resp = create_key(client, organization)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "reauthentication_required"
    from tests.fixtures_accounts import mark_recently_authenticated

    mark_recently_authenticated(client, owner, seconds_ago=600)  # older than the 300 s window
    assert create_key(client, organization).status_code == 403
    mark_recently_authenticated(client, owner)
    assert create_key(client, organization).status_code == 201


def test_a_key_cannot_create_another_key(owner_key, organization):
    resp = create_key(key_client(owner_key), organization)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "session_required"


# --- authentication -------------------------------------------------------------------------

def test_a_revoked_key_gets_401_on_the_very_next_request(owner_client, owner_key, organization):
    client = key_client(owner_key)
    assert client.get(f"/api/v1/orgs/{organization.slug}/").status_code == 200
    resp = owner_client.delete(f"{keys_url(organization)}{owner_key.pk}/")
    assert resp.status_code == 204
    resp = client.get(f"/api/v1/orgs/{organization.slug}/")
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "This API key has been revoked."
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_key_gets_401(organization, owner):
    key = ApiKeyFactory(organization=organization, created_by=owner,
                        expires_at=timezone.now() - timedelta(seconds=1))
    resp = key_client(key).get(f"/api/v1/orgs/{organization.slug}/")
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "This API key has expired."
    failure = AuditEvent.objects.get(action="api_key.auth_failed")
    assert failure.organization == organization and failure.metadata == {"reason": "expired"}


def test_an_unknown_key_gets_401_and_is_audited_on_the_platform_chain():
    resp = key_client(keys.generate_key()).get("/api/v1/orgs/")
    assert resp.status_code == 401
    failure = AuditEvent.objects.get(action="api_key.auth_failed")
    assert failure.organization is None and failure.chain == "platform"


def test_a_key_of_organisation_a_on_organisation_bs_url_is_a_404(owner_key):
    other = OrganizationFactory()
    # Even when the key's creator is also a member of B: the key is bound to A.
    Membership.objects.create(user=owner_key.created_by, organization=other, role=Role.OWNER)
    resp = key_client(owner_key).get(f"/api/v1/orgs/{other.slug}/members/")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_a_key_lists_only_its_own_organisation(owner_key):
    other = OrganizationFactory()
    Membership.objects.create(user=owner_key.created_by, organization=other, role=Role.OWNER)
    slugs = [o["slug"] for o in key_client(owner_key).get("/api/v1/orgs/").json()["results"]]
    assert slugs == [owner_key.organization.slug]


@pytest.mark.parametrize("query", ["?api_key={key}", "?x={key}", "?access_token=abc"])
def test_a_key_in_the_query_string_is_rejected_with_400_and_not_logged(owner_key, organization,
                                                                        caplog, query):
    caplog.set_level(logging.DEBUG)
    url = f"/api/v1/orgs/{organization.slug}/" + query.format(key=owner_key.plaintext)
    resp = key_client(owner_key).get(url)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "api_key_in_url"
    assert owner_key.plaintext not in caplog.text
    # Sessions are refused the same way: the URL carries a secret either way.
    resp = session_client(owner_key.created_by).get(url)
    assert resp.status_code == 400


def test_a_key_in_a_cookie_is_not_accepted(owner_key, api_client, organization):
    api_client.cookies["api_key"] = owner_key.plaintext
    api_client.cookies["Authorization"] = f"Bearer {owner_key.plaintext}"
    assert api_client.get(f"/api/v1/orgs/{organization.slug}/").status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(owner_key, organization,
                                                       django_assert_num_queries):
    client = key_client(owner_key)
    url = f"/api/v1/orgs/{organization.slug}/"
    client.get(url)
    first = ApiKey.objects.get(pk=owner_key.pk).last_used_at
    assert first is not None
    client.get(url)
    assert ApiKey.objects.get(pk=owner_key.pk).last_used_at == first
    ApiKey.objects.filter(pk=owner_key.pk).update(last_used_at=first - timedelta(seconds=61))
    client.get(url)
    assert ApiKey.objects.get(pk=owner_key.pk).last_used_at > first


def test_demoting_the_creator_narrows_the_key_at_once(organization, owner):
    admin = member(organization, Role.ADMIN)
    key = ApiKeyFactory(organization=organization, created_by=admin, scopes=["members:admin",
                                                                             "audit:read"])
    client = key_client(key)
    assert client.get(f"/api/v1/orgs/{organization.slug}/audit-log/").status_code == 200
    Membership.objects.filter(user=admin).update(role=Role.VIEWER)
    assert client.get(f"/api/v1/orgs/{organization.slug}/audit-log/").status_code == 403
    # members:read survives: the viewer role still holds it.
    assert client.get(f"/api/v1/orgs/{organization.slug}/members/").status_code == 200


def test_a_key_stops_working_when_its_creator_leaves(organization, owner):
    trader = member(organization, Role.TRADER)
    key = ApiKeyFactory(organization=organization, created_by=trader, creator_role=Role.TRADER)
    assert session_client(trader).post(
        f"/api/v1/orgs/{organization.slug}/members/leave/").status_code == 204
    assert key_client(key).get(f"/api/v1/orgs/{organization.slug}/").status_code == 401


def test_members_see_and_revoke_only_their_own_keys_unless_keys_admin(organization, owner):
    trader = member(organization, Role.TRADER)
    theirs = ApiKeyFactory(organization=organization, created_by=trader)
    mine = ApiKeyFactory(organization=organization, created_by=owner)
    trader_client = session_client(trader)
    listed = [k["id"] for k in trader_client.get(keys_url(organization)).json()["results"]]
    assert listed == [theirs.pk]
    assert trader_client.delete(f"{keys_url(organization)}{mine.pk}/").status_code == 404
    owner_listed = session_client(owner).get(keys_url(organization)).json()["results"]
    assert {k["id"] for k in owner_listed} == {theirs.pk, mine.pk}
    assert session_client(owner).delete(f"{keys_url(organization)}{theirs.pk}/").status_code == 204

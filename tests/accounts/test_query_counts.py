"""Pinned query counts of the list endpoints: constant whatever the number of rows (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import audit_record
from accounts.models import Invitation
from accounts.permissions import Role
from tests.factories import ApiKeyFactory
from tests.fixtures_accounts import key_client, member

pytestmark = pytest.mark.django_db

# Every key-authenticated organisation request: the key by hash with its creator, organisation and
# whether the creator is still a member (1), organisation by slug (1), caller's membership (1).
# A paginated list adds COUNT (1) + page (1).
KEY_AND_TENANT = 3
PAGE = 2


def _populate(org, n: int) -> None:
    for i in range(n):
        user = member(org, Role.TRADER)
        ApiKeyFactory(organization=org, created_by=user)
        audit_record(organization=org, actor=user, action="test.thing")
        Invitation.objects.create(organization=org, email=f"i{i}@example.com", role="viewer",
                                  token_hash=f"{i:064d}", invited_by=user,
                                  expires_at="2100-01-01T00:00:00Z")


@pytest.mark.parametrize("rows", [1, 8])
@pytest.mark.parametrize(("path", "expected"), [
    ("members/", KEY_AND_TENANT + PAGE),
    ("api-keys/", KEY_AND_TENANT + PAGE),
    ("audit-log/", KEY_AND_TENANT + PAGE),
    ("invitations/", KEY_AND_TENANT + PAGE),
    ("", KEY_AND_TENANT),
])
def test_list_endpoints_run_a_fixed_number_of_queries(organization, owner, rows, path, expected):
    _populate(organization, rows)
    client = key_client(ApiKeyFactory(organization=organization, created_by=owner))
    url = f"/api/v1/orgs/{organization.slug}/{path}"
    client.get(url)  # the first use writes last_used_at; later ones within a minute do not
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    assert len(ctx.captured_queries) == expected, [q["sql"][:120] for q in ctx.captured_queries]

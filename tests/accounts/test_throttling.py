"""Rate limits: per key, per user and per anonymous IP, with 429 + Retry-After when exceeded and
X-RateLimit-* headers on every API response."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from tests.factories import ApiKeyFactory
from tests.fixtures_accounts import key_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tiny_rates(settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min", "user": "2/min", "anon": "2/min"},
    }
    yield
    cache.clear()


def test_the_fourth_request_of_a_key_within_a_minute_is_a_429_with_retry_after(owner_key,
                                                                               organization):
    client = key_client(owner_key)
    url = f"/api/v1/orgs/{organization.slug}/"
    before = int(time.time())
    remaining = [client.get(url)["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    resp = client.get(url)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "throttled"
    assert 1 <= int(resp["Retry-After"]) <= 60
    assert resp["X-RateLimit-Limit"] == "3" and resp["X-RateLimit-Remaining"] == "0"
    # The window resets 60 s after the first counted request.
    assert before + 59 <= int(resp["X-RateLimit-Reset"]) <= before + 62


def test_each_key_has_its_own_bucket(owner_key, organization, owner):
    other = ApiKeyFactory(organization=organization, created_by=owner)
    url = f"/api/v1/orgs/{organization.slug}/"
    for _ in range(3):
        key_client(owner_key).get(url)
    assert key_client(owner_key).get(url).status_code == 429
    assert key_client(other).get(url).status_code == 200


def test_a_signed_in_user_is_limited_per_user(owner_client, organization):
    url = f"/api/v1/orgs/{organization.slug}/members/"
    statuses = [owner_client.get(url).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_anonymous_and_refused_callers_are_limited_per_ip_and_see_the_headers(api_client,
                                                                              organization):
    url = f"/api/v1/orgs/{organization.slug}/"
    first = api_client.get(url)
    assert first.status_code == 401 and first["X-RateLimit-Limit"] == "2"
    bad_key = key_client("nx_live_" + "0" * 42)
    assert bad_key.get(url).status_code == 401
    assert api_client.get(url).status_code == 429

"""Schema-driven fuzzing of the whole API: schemathesis generates requests for every operation of
the OpenAPI schema served at /api/schema/ and sends them, in-process over WSGI, with a real API key
of an organisation owner. It must find no server error, no status or content type the schema does
not document, no response body that breaks its documented shape, and no operation that ignores
authentication. New routes are covered as soon as they appear in the schema.

Bounded: a few examples per operation (``MAX_EXAMPLES``) keep the run short.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiKey, Organization
from accounts.permissions import Role
from tests.factories import ApiKeyFactory, MembershipFactory, OrganizationFactory

MAX_EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, ignored_auth]


# Loaded at collection time (serving the schema needs no database); schemathesis' lazy fixture
# loader does not support this pytest version.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
# The coverage phase sends hundreds of boundary cases per operation whatever max_examples says;
# explicit examples plus bounded fuzzing keep the whole run within the test budget.
schema.config.phases.coverage.enabled = False


@pytest.fixture
def owner_world(db, settings):
    """An organisation with an owner and the owner's full-scope key; rates high enough that the
    fuzzing itself is not throttled."""
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min", "user": "100000/min",
                                   "anon": "100000/min"},
    }
    org = OrganizationFactory(slug="fuzz")
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    key = ApiKeyFactory(organization=org, created_by=owner)
    # Requests go through the raw WSGI handler, whose end-of-request signal would close the
    # connection holding the test's transaction on PostgreSQL; Django's own test client
    # disconnects the same receivers for the same reason.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield org, key
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
        cache.clear()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_matches_its_schema_and_never_fails(case, owner_world):
    org, key = owner_world
    # Earlier examples may have revoked the key or deleted the organisation (both legitimate
    # operations); restore them so every example exercises a live tenant.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=None)
    Organization.objects.filter(pk=org.pk).update(deleted_at=None)
    if case.path_parameters and "org_slug" in case.path_parameters:
        case.path_parameters["org_slug"] = org.slug
    case.call_and_validate(headers={"Authorization": f"Bearer {key.plaintext}"}, checks=CHECKS)

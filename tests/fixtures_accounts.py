"""pytest fixtures for API tests of any app: signed-in clients, key clients and organisations
with members. Loaded as a plugin (``pytest_plugins = ["tests.fixtures_accounts"]``)."""

from __future__ import annotations

import time

import pytest
from django.core.signals import setting_changed
from rest_framework.test import APIClient, ForceAuthClientHandler

from accounts.models import ApiKey, Organization, User
from accounts.permissions import Role
from tests.factories import ApiKeyFactory, MembershipFactory, OrganizationFactory, UserFactory

_LOADED_HANDLERS: dict[bool, ForceAuthClientHandler] = {}
_MIDDLEWARE_STATE = ("_view_middleware", "_template_response_middleware", "_exception_middleware",
                     "_middleware_chain")


def _forget_loaded_handlers(**kwargs) -> None:
    # Middleware reads settings when it is built; any override means building it again.
    _LOADED_HANDLERS.clear()


setting_changed.connect(_forget_loaded_handlers)


class FastAPIClient(APIClient):
    """An APIClient that reuses an already built middleware chain. Building it (WhiteNoise scans
    every static file) costs tens of milliseconds per client, which adds up in tests that use a
    client per role or per key. Per-client state (cookies, credentials, force_authenticate) is
    unaffected: it lives on the client and its own handler."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        csrf = self.handler.enforce_csrf_checks
        template = _LOADED_HANDLERS.get(csrf)
        if template is None:
            template = ForceAuthClientHandler(enforce_csrf_checks=csrf)
            template.load_middleware()
            _LOADED_HANDLERS[csrf] = template
        for attr in _MIDDLEWARE_STATE:
            setattr(self.handler, attr, getattr(template, attr))


def mark_recently_authenticated(client: APIClient, user: User, *, seconds_ago: float = 0) -> None:
    """Record a password sign-in in the session the way allauth does, so actions that need
    recent re-authentication (creating API keys) are allowed."""
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time() - seconds_ago, "email": user.email,
         "reauthenticated": True},
    ]
    session.save()


def session_client(user: User, *, reauthenticated: bool = True) -> APIClient:
    client = FastAPIClient()
    client.force_login(user)
    if reauthenticated:
        mark_recently_authenticated(client, user)
    return client


def key_client(key: ApiKey | str) -> APIClient:
    client = FastAPIClient()
    plaintext = key if isinstance(key, str) else key.plaintext
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def member(organization: Organization, role: str = Role.VIEWER, **user_kwargs) -> User:
    return MembershipFactory(organization=organization, role=role,
                             user=UserFactory(**user_kwargs)).user


@pytest.fixture
def api_client() -> APIClient:
    return FastAPIClient()


@pytest.fixture
def organization(db) -> Organization:
    return OrganizationFactory()


@pytest.fixture
def owner(organization) -> User:
    return member(organization, Role.OWNER)


@pytest.fixture
def owner_client(owner) -> APIClient:
    return session_client(owner)


@pytest.fixture
def owner_key(organization, owner) -> ApiKey:
    return ApiKeyFactory(organization=organization, created_by=owner)


@pytest.fixture
def make_member(db):
    """``make_member(org, role)`` → a new user with that role in ``org``."""
    return member


@pytest.fixture
def make_session_client(db):
    return session_client


@pytest.fixture
def make_key_client(db):
    return key_client

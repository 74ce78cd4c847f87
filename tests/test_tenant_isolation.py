"""Tenant isolation, proved for every route: organisation B can neither read, list, change nor
subscribe to organisation A's objects.

The test walks the URL resolver for every API route under ``/api/v1/orgs/<org_slug>/`` and every
WebSocket route and stream kind. Each needs an entry in a registry saying how to create an object
of organisation A for it; a route without one fails `test_every_*_has_an_isolation_case` with a
message saying how to add it. Entries live in ``ROUTE_CASES`` below (accounts) and in any
``tests/<app>/tenant_cases.py`` module defining ``ROUTE_CASES`` / ``STREAM_CASES`` dicts with the
same shape, which are merged in automatically.

For each API route and each method:
* a member of B, and an API key of B, on A's URL get **404** (for every method, so not even a 405
  reveals that A exists);
* for routes naming an object, a member of B on *B's* URL with A's object id gets 404;
* for collections, B's listing never contains A's object (checked by a marker string such as an
  e-mail or hash that only A's object has);
and, so that these checks cannot pass vacuously, A's owner *does* see the object.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

import tests
from accounts.audit import audit_record
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.permissions import Role
from tests.factories import ApiKeyFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.fixtures_accounts import key_client, session_client

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass
class World:
    """Two organisations, each with an owner (session) and an owner's API key."""

    org_a: Organization
    org_b: Organization
    owner_a: User
    owner_b: User
    key_a: ApiKey
    key_b: ApiKey

    @classmethod
    def build(cls) -> World:
        org_a, org_b = OrganizationFactory(), OrganizationFactory()
        owner_a = MembershipFactory(organization=org_a, role=Role.OWNER).user
        owner_b = MembershipFactory(organization=org_b, role=Role.OWNER).user
        return cls(org_a, org_b, owner_a, owner_b,
                   ApiKeyFactory(organization=org_a, created_by=owner_a),
                   ApiKeyFactory(organization=org_b, created_by=owner_b))


@dataclass
class Target:
    """Organisation A's object for one route: the URL kwargs naming it (besides ``org_slug``),
    and/or a string that appears in a response exactly when that object is shown."""

    kwargs: dict = field(default_factory=dict)
    marker: str | None = None
    bodies: dict[str, dict] = field(default_factory=dict)  # method -> a valid request body


@dataclass(frozen=True)
class RouteCase:
    make: Callable[[World], Target]


@dataclass(frozen=True)
class StreamCase:
    make: Callable[[World], str]  # returns the object id of A's object for "<kind>.<id>"


def _a_member(w: World) -> Target:
    m = MembershipFactory(organization=w.org_a, role=Role.VIEWER,
                          user=UserFactory(email=f"a-member-{uuid.uuid4().hex[:8]}@example.com"))
    return Target(kwargs={"pk": m.pk}, marker=f'"{m.user.email}"',
                  bodies={"PATCH": {"role": "analyst"}})


def _a_invitation(w: World) -> Target:
    inv = Invitation.objects.create(
        organization=w.org_a, email=f"a-invitee-{uuid.uuid4().hex[:8]}@example.com",
        role=Role.VIEWER, token_hash=uuid.uuid4().hex * 2, invited_by=w.owner_a,
        expires_at=w.key_a.expires_at,
    )
    return Target(kwargs={"pk": inv.pk}, marker=inv.email)


def _a_key(w: World) -> Target:
    return Target(kwargs={"pk": w.key_a.pk}, marker=w.key_a.prefix)


def _a_audit_event(w: World) -> Target:
    event = audit_record(organization=w.org_a, actor=w.owner_a, action="isolation.probe")
    return Target(marker=event.entry_hash)


def _collection(make: Callable[[World], Target]) -> Callable[[World], Target]:
    """The same object, reached through a collection route (no object kwargs)."""
    def inner(w: World) -> Target:
        target = make(w)
        return Target(marker=target.marker)
    return inner


ROUTE_CASES: dict[str, RouteCase] = {
    "accounts-api:organization-detail": RouteCase(lambda w: Target(
        marker=f'"slug":"{w.org_a.slug}"')),
    "accounts-api:member-list": RouteCase(_collection(_a_member)),
    "accounts-api:member-leave": RouteCase(lambda w: Target()),
    "accounts-api:member-detail": RouteCase(_a_member),
    "accounts-api:invitation-list": RouteCase(_collection(_a_invitation)),
    "accounts-api:invitation-detail": RouteCase(_a_invitation),
    "accounts-api:apikey-list": RouteCase(_collection(_a_key)),
    "accounts-api:apikey-detail": RouteCase(_a_key),
    "accounts-api:audit-list": RouteCase(_a_audit_event),
    "accounts-api:audit-export": RouteCase(_a_audit_event),
    "accounts-api:audit-verify": RouteCase(lambda w: Target(marker=f'"org:{w.org_a.pk}"')),
}

# Stream kinds of the organisation WebSocket ("<kind>.<id>"); apps add theirs in tenant_cases.py.
STREAM_CASES: dict[str, StreamCase] = {}


def _merge_app_cases() -> None:
    for info in pkgutil.walk_packages(tests.__path__, prefix="tests."):
        if info.name.endswith(".tenant_cases"):
            module = importlib.import_module(info.name)
            ROUTE_CASES.update(getattr(module, "ROUTE_CASES", {}))
            STREAM_CASES.update(getattr(module, "STREAM_CASES", {}))


_merge_app_cases()


# --- enumeration ----------------------------------------------------------------------------

def _walk(patterns, prefix: str, namespaces: list[str]):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = [*namespaces, p.namespace] if p.namespace else namespaces
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), ":".join([*namespaces, p.name or "<unnamed>"]), p


def org_api_routes() -> list[tuple[str, str, URLPattern]]:
    return [(route, name, p) for route, name, p in _walk(get_resolver().url_patterns, "", [])
            if route.startswith("api/") and "org_slug" in route]


def view_methods(pattern: URLPattern) -> list[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        return sorted(m.upper() for m in actions if m not in ("head", "options"))
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return list(ALL_METHODS)
    return [m.upper() for m in cls.http_method_names
            if m not in ("head", "options", "trace") and hasattr(cls, m)]


ROUTES = org_api_routes()


def test_the_enumeration_finds_the_accounts_routes():
    names = {name for _, name, _ in ROUTES}
    assert {"accounts-api:member-detail", "accounts-api:audit-list"} <= names


def test_every_org_api_route_has_an_isolation_case():
    missing = sorted({f"{name}  ({route})" for route, name, _ in ROUTES if name not in ROUTE_CASES})
    assert not missing, (
        "These organisation routes have no tenant-isolation case:\n  " + "\n  ".join(missing)
        + "\nAdd an entry to ROUTE_CASES in tests/<app>/tenant_cases.py (or tests/"
        "test_tenant_isolation.py): 'namespace:route-name': RouteCase(make) where make(world) "
        "creates an object of world.org_a and returns Target(kwargs={<url kwargs naming it>}, "
        "marker=<a string only that object shows>)."
    )


def _url(name: str, org: Organization, kwargs: dict) -> str:
    return reverse(name, kwargs={"org_slug": org.slug, **kwargs})


def _call(client: APIClient, method: str, url: str, body: dict | None = None):
    return getattr(client, method.lower())(url, body or {}, format="json") \
        if method in ("POST", "PUT", "PATCH") else getattr(client, method.lower())(url)


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", [(n, p) for _, n, p in ROUTES],
                         ids=[n for _, n, _ in ROUTES])
def test_organisation_b_cannot_reach_organisation_as_objects(name, pattern):
    if name not in ROUTE_CASES:
        pytest.fail(f"{name} has no tenant-isolation case (see test_every_org_api_route_has_an_"
                    "isolation_case for how to add one)")
    w = World.build()
    target = ROUTE_CASES[name].make(w)
    methods = view_methods(pattern)
    a_owner = session_client(w.owner_a)
    a_url = _url(name, w.org_a, target.kwargs)

    # Not vacuous: A's owner reaches the object (or the collection showing it).
    if "GET" in methods:
        resp = a_owner.get(a_url)
        assert resp.status_code == 200, f"A's owner cannot GET {a_url}: {resp.status_code}"
        if target.marker:
            body = b"".join(resp.streaming_content) if resp.streaming else resp.content
            assert target.marker in body.decode(), f"{a_url} does not show A's object"

    b_session, b_key = session_client(w.owner_b), key_client(w.key_b)
    for method in ALL_METHODS:
        for who, client in (("B's owner", b_session), ("B's key", b_key)):
            resp = _call(client, method, a_url, target.bodies.get(method))
            assert resp.status_code == 404, (
                f"{who}: {method} {a_url} gave {resp.status_code}, expected 404")

    if target.kwargs:
        b_url = _url(name, w.org_b, target.kwargs)
        for method in methods:
            resp = _call(b_session, method, b_url, target.bodies.get(method))
            assert resp.status_code == 404, (
                f"B's owner: {method} {b_url} (A's object id) gave {resp.status_code}, "
                "expected 404")
    elif target.marker and "GET" in methods:
        b_url = _url(name, w.org_b, {})
        for client in (b_session, b_key):
            resp = client.get(b_url)
            body = b"".join(resp.streaming_content) if resp.streaming else resp.content
            assert resp.status_code == 200 and target.marker not in body.decode(), (
                f"B's listing {b_url} shows organisation A's object")

    # Nothing of A changed through B's attempts.
    assert Membership.objects.filter(user=w.owner_a, organization=w.org_a,
                                     role=Role.OWNER).exists()
    assert Organization.active.filter(pk=w.org_a.pk, name=w.org_a.name).exists()


# --- WebSockets -----------------------------------------------------------------------------

def ws_routes() -> list[tuple[str, str]]:
    from nexow_site.routing import websocket_urlpatterns

    return [(str(p.pattern), p.name or "<unnamed>") for p in websocket_urlpatterns()]


# WebSocket routes and how to build A's path; `org_slug` is the only kwarg the platform uses.
WS_ROUTE_CASES: dict[str, Callable[[Organization], str]] = {
    "ws-organization": lambda org: f"/ws/v1/orgs/{org.slug}/",
}


def test_every_websocket_route_and_stream_kind_has_an_isolation_case():
    from nexow_site.realtime import STREAM_KINDS

    missing = [name for _, name in ws_routes() if name not in WS_ROUTE_CASES]
    missing += [f"stream kind {k!r}" for k in STREAM_KINDS if k not in STREAM_CASES]
    assert not missing, (
        f"No tenant-isolation case for: {missing}. Add WebSocket routes to WS_ROUTE_CASES in "
        "tests/test_tenant_isolation.py and stream kinds to STREAM_CASES in "
        "tests/<app>/tenant_cases.py: '<kind>': StreamCase(make) where make(world) creates an "
        "object of world.org_a and returns its id."
    )


async def _ws_session(path: str, headers: list[tuple[bytes, bytes]], messages: list[dict]):
    """Connect through the real ASGI stack (origin check, session/key auth, URL router), send
    ``messages``; returns (close code, or None if it stayed open; the replies)."""
    from asgiref.testing import ApplicationCommunicator

    from nexow_site.asgi import application

    scope = {
        "type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"origin", b"http://testserver"), (b"host", b"testserver"), *headers],
        "subprotocols": [], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    comm = ApplicationCommunicator(application, scope)

    async def closed(code: int | None) -> tuple[int | None, list]:
        # As a server does when the application closes the socket: tell it the client is
        # gone and let it finish, so no consumer (and no channel-layer receive) is left
        # running for asyncio.run to cancel.
        await comm.send_input({"type": "websocket.disconnect", "code": code or 1000})
        await comm.wait(timeout=5)
        return code, []

    await comm.send_input({"type": "websocket.connect"})
    first = await comm.receive_output(timeout=5)
    if first["type"] == "websocket.close":
        return await closed(first.get("code"))
    assert first["type"] == "websocket.accept", first
    # A refusal is "accept, then close with a code"; receive_nothing does not cancel the app.
    if not await comm.receive_nothing(timeout=0.3):
        follow = await comm.receive_output(timeout=1)
        if follow["type"] == "websocket.close":
            return await closed(follow.get("code"))
    replies = []
    for message in messages:
        await comm.send_input({"type": "websocket.receive", "text": json.dumps(message)})
        replies.append(json.loads((await comm.receive_output(timeout=5))["text"]))
    await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(timeout=2)
    return None, replies


def _session_headers(user: User) -> list[tuple[bytes, bytes]]:
    client = APIClient()
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def _key_headers(key: ApiKey) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key.plaintext}".encode())]


@pytest.mark.django_db(transaction=True)
def test_organisation_b_cannot_connect_or_subscribe_to_organisation_as_streams():
    w = World.build()
    streams = {kind: case.make(w) for kind, case in STREAM_CASES.items()}
    subscribe = [{"action": "subscribe", "stream": f"{k}.{obj_id}"} for k, obj_id in
                 streams.items()]
    for name, path_for in WS_ROUTE_CASES.items():
        # Not vacuous: A's owner connects and may subscribe to A's objects.
        code, replies = asyncio.run(_ws_session(path_for(w.org_a), _session_headers(w.owner_a),
                                                subscribe))
        assert code is None, f"{name}: A's owner was refused ({code})"
        assert all(r["type"] == "subscribed" for r in replies), replies
        for who, headers in (("B's owner", _session_headers(w.owner_b)),
                             ("B's key", _key_headers(w.key_b))):
            code, _ = asyncio.run(_ws_session(path_for(w.org_a), headers, []))
            assert code == 4404, f"{name}: {who} on A's socket got {code}, expected 4404"
            # Connected to its own organisation, B cannot subscribe to A's streams.
            code, replies = asyncio.run(_ws_session(path_for(w.org_b), headers, subscribe))
            assert code is None
            assert all(r["type"] == "error" and r["code"] == "not_found" for r in replies), (
                f"{name}: {who} subscribed to A's streams: {replies}")

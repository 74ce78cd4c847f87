"""The permission matrix, enforced: role × endpoint and key scope × endpoint for every
organisation API route.

Every route under ``/api/v1/orgs/<org_slug>/`` declares the scope it needs per method. Here each
role of the matrix calls each of them: it must be refused (403) exactly when its role lacks the
scope, and let through (no 401/403) otherwise. Keys likewise: a key holding just that scope passes,
a key holding everything else is refused. Objects to call routes on come from the tenant-isolation
registry, so routes of later apps are covered as soon as they are registered there.
"""

from __future__ import annotations

import pytest

from accounts.permissions import ALL_SCOPES, LEVELS, ROLE_SCOPES, Role, scopes_for_role
from tests.factories import ApiKeyFactory, MembershipFactory
from tests.fixtures_accounts import key_client, session_client
from tests.test_tenant_isolation import ROUTE_CASES, ROUTES, World, _call, _url, view_methods

# Operations that only a signed-in person may perform: a key is refused even with the scope.
SESSION_ONLY = {("accounts-api:apikey-list", "POST"), ("accounts-api:member-leave", "POST")}

# Managing a member also needs every scope of the member's role (nobody manages someone above
# them), so a key for that needs the target's (a viewer's) scopes besides the declared one.
NARROW_KEY_EXTRA = {
    ("accounts-api:member-detail", "PATCH"): sorted(scopes_for_role(Role.ANALYST)),
    ("accounts-api:member-detail", "DELETE"): sorted(scopes_for_role(Role.VIEWER)),
}

# The accounts API's declared scopes, written out by hand: the specification the views must match.
ACCOUNTS_SCOPES = {
    ("accounts-api:organization-detail", "GET"): "org:read",
    ("accounts-api:organization-detail", "PATCH"): "org:write",
    ("accounts-api:organization-detail", "DELETE"): "org:admin",
    ("accounts-api:member-list", "GET"): "members:read",
    ("accounts-api:member-detail", "GET"): "members:read",
    ("accounts-api:member-detail", "PATCH"): "members:write",
    ("accounts-api:member-detail", "DELETE"): "members:write",
    ("accounts-api:member-leave", "POST"): "org:read",
    ("accounts-api:invitation-list", "GET"): "members:read",
    ("accounts-api:invitation-list", "POST"): "members:write",
    ("accounts-api:invitation-detail", "GET"): "members:read",
    ("accounts-api:invitation-detail", "DELETE"): "members:write",
    ("accounts-api:apikey-list", "GET"): "keys:read",
    ("accounts-api:apikey-list", "POST"): "keys:write",
    ("accounts-api:apikey-detail", "GET"): "keys:read",
    ("accounts-api:apikey-detail", "DELETE"): "keys:write",
    ("accounts-api:audit-list", "GET"): "audit:read",
    ("accounts-api:audit-export", "GET"): "audit:read",
    ("accounts-api:audit-verify", "GET"): "audit:read",
}


def declared_scope(pattern, method: str) -> str | None:
    callback = pattern.callback
    cls = getattr(callback, "cls", None)
    scopes = getattr(cls, "required_scopes", None)
    if scopes is None:
        return None
    action = (getattr(callback, "actions", None) or {}).get(method.lower())
    return scopes.get(action) if action and action in scopes else scopes.get(method)


def operations() -> list[tuple[str, object, str]]:
    ops = []
    for _, name, pattern in ROUTES:
        methods = view_methods(pattern)
        # Destructive calls last, so one world serves all methods of a route for one caller.
        for method in sorted(methods, key=lambda m: m == "DELETE"):
            ops.append((name, pattern, method))
    return ops


OPS = operations()
ROUTE_NAMES = sorted({name for name, _, _ in OPS})


# --- the matrix itself ------------------------------------------------------------------------

def test_owners_hold_every_scope_and_levels_imply_the_ones_below():
    assert scopes_for_role(Role.OWNER) == frozenset(ALL_SCOPES)
    for scopes in ROLE_SCOPES.values():
        for scope in scopes:
            res, level = scope.split(":")
            assert all(f"{res}:{lower}" in scopes for lower in LEVELS[: LEVELS.index(level)])


def test_spot_checks_of_the_matrix():
    # Hand-checked against the product rules: only owners delete the organisation, compliance
    # reads the audit log but cannot trade, analysts research but cannot place orders.
    assert "org:admin" not in scopes_for_role(Role.ADMIN)
    assert "audit:read" in scopes_for_role(Role.COMPLIANCE)
    assert "orders:write" not in scopes_for_role(Role.COMPLIANCE)
    assert "orders:write" not in scopes_for_role(Role.ANALYST)
    assert "strategies:write" in scopes_for_role(Role.ANALYST)
    assert "audit:read" not in scopes_for_role(Role.TRADER)
    assert not any(s.endswith(":write") and not s.startswith("keys:")
                   for s in scopes_for_role(Role.VIEWER))


def test_every_org_operation_declares_a_known_scope():
    undeclared = [f"{m} {n}" for n, p, m in OPS if declared_scope(p, m) not in ALL_SCOPES]
    assert not undeclared, ("These operations declare no valid required scope (set "
                            f"required_scopes on the view): {undeclared}")


def test_the_accounts_views_declare_the_specified_scopes():
    declared = {(n, m): declared_scope(p, m) for n, p, m in OPS if n.startswith("accounts-api:")}
    assert declared == ACCOUNTS_SCOPES


def test_the_documented_matrix_matches_the_code():
    from pathlib import Path

    from accounts.permissions import render_matrix_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "accounts.md").read_text()
    assert render_matrix_markdown() in doc, (
        "docs/accounts.md is out of date: paste accounts.permissions.render_matrix_markdown()")


# --- role × endpoint --------------------------------------------------------------------------

# Least powerful first and owners last: an owner's DELETE of the organisation ends the world.
ROLE_ORDER = [Role.VIEWER, Role.COMPLIANCE, Role.ANALYST, Role.TRADER, Role.ADMIN, Role.OWNER]


def _route_ops(name: str) -> list[tuple[object, str]]:
    return [(pattern, method) for op_name, pattern, method in OPS if op_name == name]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_each_role_is_refused_exactly_the_operations_its_role_lacks(name):
    if name not in ROUTE_CASES:
        pytest.fail(f"{name} has no case in the tenant-isolation registry")
    w = World.build()
    case = ROUTE_CASES[name]
    target = case.make(w)
    for role in ROLE_ORDER:
        user = w.owner_a if role == Role.OWNER else MembershipFactory(
            organization=w.org_a, role=role).user
        client = session_client(user)
        for pattern, method in _route_ops(name):
            scope = declared_scope(pattern, method)
            org, op_target = w.org_a, target
            if method == "DELETE" and target.kwargs:
                # A DELETE that succeeds consumes its object: every caller gets a fresh one, in
                # a fresh world (a case's make() need not be callable twice in one world).
                fresh = World.build()
                MembershipFactory(organization=fresh.org_a, role=role, user=user)
                org, op_target = fresh.org_a, case.make(fresh)
            url = _url(name, org, op_target.kwargs)
            resp = _call(client, method, url, op_target.bodies.get(method))
            if scope in scopes_for_role(role):
                assert resp.status_code not in (401, 403, 500), (
                    f"{role} holds {scope} but {method} {name} gave {resp.status_code}: "
                    f"{resp.content[:200]!r}")
            else:
                assert resp.status_code == 403, (
                    f"{role} lacks {scope} but {method} {name} gave {resp.status_code}")


# --- key scope × endpoint ---------------------------------------------------------------------

def _without(scope: str) -> list[str]:
    """Every scope except ``scope`` and the higher levels of its resource (which imply it)."""
    res, level = scope.split(":")
    implying = {f"{res}:{lvl}" for lvl in LEVELS[LEVELS.index(level):]}
    return [s for s in ALL_SCOPES if s not in implying]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_a_key_passes_with_the_operations_scope_and_is_refused_without_it(name):
    if name not in ROUTE_CASES:
        pytest.fail(f"{name} has no case in the tenant-isolation registry")
    case = ROUTE_CASES[name]
    shared = World.build()
    target = case.make(shared)
    for pattern, method in _route_ops(name):
        scope = declared_scope(pattern, method)
        w, op_target = shared, target
        if method == "DELETE" and target.kwargs:
            w = World.build()  # a successful DELETE consumes its object
            op_target = case.make(w)
        url = _url(name, w.org_a, op_target.kwargs)
        body = op_target.bodies.get(method)
        narrow = ApiKeyFactory(organization=w.org_a, created_by=w.owner_a,
                               scopes=[scope, *NARROW_KEY_EXTRA.get((name, method), [])])
        broad = ApiKeyFactory(organization=w.org_a, created_by=w.owner_a, scopes=_without(scope))
        refused = _call(key_client(broad), method, url, body)
        assert refused.status_code == 403, (
            f"a key without {scope} got {refused.status_code} for {method} {name}")
        allowed = _call(key_client(narrow), method, url, body)
        if (name, method) in SESSION_ONLY:
            assert allowed.status_code == 403
            assert allowed.json()["error"]["code"] == "session_required"
        else:
            assert allowed.status_code not in (401, 403, 500), (
                f"a key with {scope} got {allowed.status_code} for {method} {name}")

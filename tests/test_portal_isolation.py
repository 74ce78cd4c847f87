"""Tenant isolation of the portal, proved for every page and action under ``/orgs/<slug>/``.

The test walks the URL resolver for every portal route. For each one, with organisation A's real
object where the route names one:

* a member of B, on A's URL, gets **404** for GET and POST (so no page or action reveals that A or
  its object exists, and no state of A changes) — or, for a GET on an action that answers every
  GET with 405 before looking at the organisation, that same 405;
* for routes naming an object, B's owner on *B's* URL with A's object id gets 404 for GET and POST;
* so that these checks cannot pass vacuously, A's owner reaches the same URL (GET is not a 404).

Routes naming an object reuse the object makers of the API isolation cases
(``tests/test_tenant_isolation.py`` and ``tests/<app>/tenant_cases.py``): ``OBJECT_CASES`` says,
for each portal route with an id in its path, which API case makes A's object. A new portal route
with an id and no entry fails `test_every_portal_route_with_an_id_has_an_isolation_case`.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Membership, Organization
from accounts.permissions import Role
from tests.fixtures_accounts import session_client
from tests.test_tenant_isolation import ROUTE_CASES, World, _walk, get_resolver

PREFIX = "orgs/<slug:slug>/"

# portal route -> (API isolation case making A's object, the portal route's kwarg for its id)
OBJECT_CASES: dict[str, tuple[str, str]] = {
    "accounts:member-role": ("accounts-api:member-detail", "membership_id"),
    "accounts:member-remove": ("accounts-api:member-detail", "membership_id"),
    "accounts:invitation-revoke": ("accounts-api:invitation-detail", "invitation_id"),
    "accounts:api-key-revoke": ("accounts-api:apikey-detail", "key_id"),
    "trading:dataset": ("trading-api:dataset-detail", "pk"),
    "trading:strategy": ("trading-api:strategy-detail", "pk"),
    "trading:simulation": ("trading-api:simulation-detail", "pk"),
    "trading:simulation-results": ("trading-api:simulation-detail", "pk"),
    "trading:simulation-trades": ("trading-api:simulation-detail", "pk"),
    "trading:simulation-cancel": ("trading-api:simulation-detail", "pk"),
    "trading:simulation-rerun": ("trading-api:simulation-detail", "pk"),
    "trading:analysis": ("trading-api:analysis-detail", "pk"),
    "trading:deployment": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-start": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-pause": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-stop": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-order": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-cancel-all": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-flatten": ("trading-api:deployment-detail", "pk"),
    "trading:deployment-divergence": ("trading-api:deployment-detail", "pk"),
    "trading:order-cancel": ("trading-api:live-order-detail", "pk"),
    "reporting:report-download": ("reporting-api:report-detail", "pk"),
    "reporting:subscription-toggle": ("reporting-api:subscription-detail", "pk"),
}

# Query strings a page needs to render at all.
QUERIES: dict[str, str] = {"trading:strategy-create": "?kind=sma_cross"}


def portal_routes() -> list[tuple[str, str]]:
    return [(route, name) for route, name, _ in _walk(get_resolver().url_patterns, "", [])
            if route.startswith(PREFIX)]


ROUTES = portal_routes()


def _has_id(route: str) -> bool:
    return "<int:" in route


def test_the_enumeration_finds_the_portal_pages():
    names = {name for _, name in ROUTES}
    assert {"accounts:members", "trading:dashboard", "trading:simulation", "risk:page",
            "reporting:reports"} <= names


def test_every_portal_route_with_an_id_has_an_isolation_case():
    missing = sorted(f"{name}  ({route})" for route, name in ROUTES
                     if _has_id(route) and name not in OBJECT_CASES)
    assert not missing, (
        "These portal routes name an object but have no tenant-isolation case:\n  "
        + "\n  ".join(missing) + "\nAdd them to OBJECT_CASES in tests/test_portal_isolation.py.")


def _kwargs(name: str, route: str, w: World) -> dict:
    if not _has_id(route):
        return {}
    case, kwarg = OBJECT_CASES[name]
    target = ROUTE_CASES[case].make(w)
    return {kwarg: target.kwargs["pk"]}


@pytest.mark.django_db
@pytest.mark.parametrize("route,name", ROUTES, ids=[name for _, name in ROUTES])
def test_organisation_b_cannot_reach_organisation_as_pages(route, name):
    if _has_id(route) and name not in OBJECT_CASES:
        pytest.fail(f"{name} has no isolation case (see test_every_portal_route_with_an_id_"
                    "has_an_isolation_case)")
    w = World.build()
    kwargs = _kwargs(name, route, w)
    a_url = reverse(name, kwargs={"slug": w.org_a.slug, **kwargs}) + QUERIES.get(name, "")

    a_owner = session_client(w.owner_a)
    a_get = a_owner.get(a_url).status_code
    assert a_get != 404, f"A's owner does not reach {a_url}"
    # An action answers GET with 405 before looking at the organisation, for any slug: that
    # reveals nothing. Everything else must be a 404.
    expected = {"get": {404, 405} if a_get == 405 else {404}, "post": {404}}

    b_owner = session_client(w.owner_b)
    for method in ("get", "post"):
        resp = getattr(b_owner, method)(a_url)
        assert resp.status_code in expected[method], (
            f"B's owner: {method.upper()} {a_url} gave {resp.status_code}, expected 404")
    if kwargs:
        b_url = reverse(name, kwargs={"slug": w.org_b.slug, **kwargs}) + QUERIES.get(name, "")
        for method in ("get", "post"):
            resp = getattr(b_owner, method)(b_url)
            assert resp.status_code in expected[method], (
                f"B's owner: {method.upper()} {b_url} (A's object id) gave "
                f"{resp.status_code}, expected 404")

    # Nothing of A changed through B's attempts.
    assert Membership.objects.filter(user=w.owner_a, organization=w.org_a,
                                     role=Role.OWNER).exists()
    assert Organization.active.filter(pk=w.org_a.pk, name=w.org_a.name).exists()

"""Strategies and immutable versions over the API: validation against the engine's parameter
specs, rules text errors with line and column, immutability, roles."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.permissions import Role
from tests.fixtures_accounts import member, session_client
from trading.models import ImmutableError, StrategyVersion

from .support import org_with_owner, sma_version

pytestmark = pytest.mark.django_db


def _url(name, org, **kw):
    return reverse(f"trading-api:{name}", kwargs={"org_slug": org.slug, **kw})


def test_strategy_types_list_the_engine_registry_with_param_specs():
    org, owner = org_with_owner()
    types = session_client(owner).get(_url("strategy-type-list", org)).json()
    sma = next(t for t in types if t["name"] == "sma_cross")
    assert {p["name"] for p in sma["params"]} >= {"fast", "slow"}


def test_an_unknown_strategy_type_is_refused():
    org, owner = org_with_owner()
    resp = session_client(owner).post(_url("strategy-list", org),
                                      {"name": "x", "kind": "no-such"}, format="json")
    assert resp.status_code == 400 and "kind" in resp.json()["error"]["fields"]


def test_versions_are_numbered_and_params_checked_against_the_engine_specs():
    org, owner = org_with_owner()
    client = session_client(owner)
    strategy = client.post(_url("strategy-list", org), {"name": "trend", "kind": "sma_cross"},
                           format="json").json()
    versions = _url("strategy-version-list", org, strategy_pk=strategy["id"])
    bad = client.post(versions, {"params": {"fast": "ten"}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"]["params.fast"] == ["expected int, got 'ten'"]
    unknown = client.post(versions, {"params": {"speed": 3}}, format="json")
    assert "params.speed" in unknown.json()["error"]["fields"]
    first = client.post(versions, {"params": {"fast": 5, "slow": 20}}, format="json").json()
    second = client.post(versions, {"params": {"fast": 10, "slow": 30},
                                    "costs": {"commission_bps": 5}}, format="json").json()
    assert (first["number"], second["number"]) == (1, 2)
    assert client.get(_url("strategy-detail", org, pk=strategy["id"])).json()[
        "latest_version"] == 2


def test_rules_text_errors_point_at_line_and_column():
    org, owner = org_with_owner()
    client = session_client(owner)
    strategy = client.post(_url("strategy-list", org), {"name": "r", "kind": "rules"},
                           format="json").json()
    text = "entry: crossover(sma(close, 10), sma(close, 50))\nexit: smaa(close, 3) > 1\n"
    resp = client.post(_url("strategy-version-list", org, strategy_pk=strategy["id"]),
                       {"rules_text": text}, format="json")
    assert resp.status_code == 400
    (message,) = resp.json()["error"]["fields"]["rules_text"]
    # "smaa" starts at column 7 of line 2 ("exit: " is six characters).
    assert message.startswith("line 2, column 7:")
    ok = client.post(_url("strategy-version-list", org, strategy_pk=strategy["id"]),
                     {"rules_text": text.replace("smaa", "sma")}, format="json")
    assert ok.status_code == 201


def test_bad_sizing_and_costs_are_refused_with_field_errors():
    org, owner = org_with_owner()
    version = sma_version(org, owner)
    url = _url("strategy-version-list", org, strategy_pk=version.strategy_id)
    resp = session_client(owner).post(url, {"sizing": {"mode": "yolo"},
                                            "costs": {"commission_bps": -1}}, format="json")
    fields = resp.json()["error"]["fields"]
    assert resp.status_code == 400 and {"sizing", "costs"} <= set(fields)


def test_a_version_cannot_be_changed_or_deleted():
    org, owner = org_with_owner()
    version = sma_version(org, owner)
    url = _url("strategy-version-detail", org, strategy_pk=version.strategy_id, number=1)
    client = session_client(owner)
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(url, {}, format="json").status_code == 405
    version.params = {"fast": 1, "slow": 2}
    with pytest.raises(ImmutableError):
        version.save()
    assert StrategyVersion.objects.get(pk=version.pk).params == {"fast": 5, "slow": 20}


@pytest.mark.parametrize("role,status", [(Role.VIEWER, 403), (Role.COMPLIANCE, 403),
                                         (Role.ANALYST, 201), (Role.TRADER, 201)])
def test_strategies_write_needs_the_strategies_write_scope(role, status):
    org, _ = org_with_owner()
    resp = session_client(member(org, role)).post(
        _url("strategy-list", org), {"name": f"s-{role}", "kind": "sma_cross"}, format="json")
    assert resp.status_code == status

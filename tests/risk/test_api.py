"""The risk API: who may read and change limits, validation naming the field, one audit entry per
change, tenant isolation, the kill switch's trip and re-arm rules, breaches, measures and alert
targets (secrets never echoed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import ROLE_SCOPES, Role
from risk.models import AlertTarget, Breach, KillSwitch, RiskLimitSet
from tests.factories import ApiKeyFactory, OrganizationFactory
from tests.fixtures_accounts import key_client, member, session_client

READERS = (Role.TRADER, Role.ANALYST, Role.COMPLIANCE, Role.VIEWER)


@pytest.fixture
def org(db):
    return OrganizationFactory()


def _client(org, role):
    return session_client(member(org, role))


def _url(name, org, **kwargs):
    return reverse(f"risk-api:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _org_limits(org, **limits):
    return RiskLimitSet.objects.create(organization=org, level="org", limits=limits)


# --- limits ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_set_limits(org, role):
    resp = _client(org, role).post(_url("limit-list", org), {
        "level": "strategy", "ref_id": 17, "limits": {"max_drawdown": 0.1,
                                                      "sector_limits": {"energy": 0.3}}},
        format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert (body["level"], body["ref_id"], body["version"]) == ("strategy", 17, 1)
    assert body["limits"] == {"max_drawdown": 0.1, "sector_limits": {"energy": 0.3}}
    assert RiskLimitSet.objects.get(organization=org).limits == body["limits"]


@pytest.mark.parametrize("role", READERS)
def test_other_roles_cannot_set_or_change_limits(org, role):
    limit_set = _org_limits(org, max_drawdown=0.2)
    client = _client(org, role)
    attempts = [
        client.post(_url("limit-list", org), {"level": "org", "limits": {}}, format="json"),
        client.patch(_url("limit-detail", org, pk=limit_set.pk),
                     {"limits": {"max_drawdown": 0.9}}, format="json"),
        client.put(_url("limit-detail", org, pk=limit_set.pk), {"limits": {}}, format="json"),
        client.delete(_url("limit-detail", org, pk=limit_set.pk)),
    ]
    assert [r.status_code for r in attempts] == [403, 403, 403, 403]
    assert attempts[1].json()["error"]["code"] == "permission_denied"
    limit_set.refresh_from_db()
    assert limit_set.limits == {"max_drawdown": 0.2}


@pytest.mark.parametrize("role", READERS)
def test_every_member_reads_the_limits(org, role):
    _org_limits(org, max_order_notional=12345.0)
    resp = _client(org, role).get(_url("limit-list", org))
    assert resp.status_code == 200
    assert [r["limits"] for r in resp.json()["results"]] == [{"max_order_notional": 12345.0}]


def test_an_invalid_limit_is_refused_naming_the_field(org):
    client = _client(org, Role.OWNER)
    resp = client.post(_url("limit-list", org), {
        "level": "org", "limits": {"max_drawdown": 1.5, "max_drawdwn": 0.1}}, format="json")
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "limits.max_drawdown": ["must be a fraction between 0 and 1 (e.g. 0.05 for 5 %)"],
        "limits.max_drawdwn": ["unknown limit"],
    }
    assert not RiskLimitSet.objects.exists()


def test_the_strategy_level_needs_the_strategy_id(org):
    resp = _client(org, Role.OWNER).post(_url("limit-list", org), {
        "level": "strategy", "limits": {"max_drawdown": 0.1}}, format="json")
    assert resp.status_code == 400
    assert list(resp.json()["error"]["fields"]) == ["ref_id"]


def test_each_change_of_limits_is_audited_with_before_and_after(org):
    owner = member(org, Role.OWNER)
    client = session_client(owner)
    created = client.post(_url("limit-list", org), {"level": "org",
                                                    "limits": {"max_drawdown": 0.2}},
                          format="json").json()
    detail = _url("limit-detail", org, pk=created["id"])
    patched = client.patch(detail, {"limits": {"max_drawdown": 0.1}}, format="json").json()
    assert patched["version"] == 2
    assert client.delete(detail).status_code == 204

    entries = list(AuditEvent.objects.filter(organization=org, action__startswith="risk.limits")
                   .order_by("sequence"))
    assert [(e.action, e.actor_id) for e in entries] == [
        ("risk.limits.created", owner.pk), ("risk.limits.updated", owner.pk),
        ("risk.limits.deleted", owner.pk)]
    assert entries[1].metadata["before"] == {"max_drawdown": 0.2}
    assert entries[1].metadata["after"] == {"max_drawdown": 0.1}


def test_put_replaces_the_limits_and_patch_keeps_those_not_named(org):
    limit_set = _org_limits(org, max_drawdown=0.2, max_order_notional=5000.0)
    client = _client(org, Role.ADMIN)
    detail = _url("limit-detail", org, pk=limit_set.pk)
    assert client.patch(detail, {"note": "tightened"}, format="json").json()["limits"] == {
        "max_drawdown": 0.2, "max_order_notional": 5000.0}
    assert client.put(detail, {"limits": {"max_drawdown": 0.05}},
                      format="json").json()["limits"] == {"max_drawdown": 0.05}


def test_posting_a_level_again_replaces_its_limits(org):
    client = _client(org, Role.OWNER)
    for drawdown in (0.2, 0.1):
        client.post(_url("limit-list", org), {"level": "org",
                                              "limits": {"max_drawdown": drawdown}},
                    format="json")
    assert list(RiskLimitSet.objects.filter(organization=org)
                .values_list("limits", "version")) == [({"max_drawdown": 0.1}, 2)]


def test_effective_limits_take_the_most_restrictive_level_and_name_it(org):
    _org_limits(org, max_drawdown=0.2, max_order_notional=10_000.0)
    RiskLimitSet.objects.create(organization=org, level="strategy", ref_id=5,
                                limits={"max_drawdown": 0.1, "max_order_notional": 50_000.0})
    resp = _client(org, Role.VIEWER).get(_url("limit-effective", org), {"strategy": 5})
    assert resp.json() == {
        "limits": {"max_drawdown": 0.1, "max_order_notional": 10_000.0},
        "sources": {"max_drawdown": "strategy", "max_order_notional": "organisation"},
    }


def test_another_organisations_limits_and_breaches_are_not_found(org):
    other = OrganizationFactory()
    theirs = _org_limits(other, max_drawdown=0.3)
    breach = Breach.objects.create(organization=other, source="simulation", source_id=1,
                                   rule="max_drawdown", reason="r", halted=True,
                                   at=datetime(2024, 1, 1, tzinfo=UTC), fingerprint="x")
    client = _client(org, Role.OWNER)
    assert client.get(_url("limit-detail", org, pk=theirs.pk)).status_code == 404
    assert client.patch(_url("limit-detail", org, pk=theirs.pk), {"note": "mine"},
                        format="json").status_code == 404
    assert client.get(_url("breach-detail", org, pk=breach.pk)).status_code == 404
    assert client.get(_url("limit-list", other)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.note == ""


def test_the_limit_list_takes_a_fixed_number_of_queries(org, django_assert_max_num_queries):
    client = _client(org, Role.VIEWER)
    for ref in range(1, 6):
        RiskLimitSet.objects.create(organization=org, level="strategy", ref_id=ref,
                                    limits={"max_drawdown": 0.1}, updated_by=None)
    # Session, user, organisation, membership, count, page (updated_by joined in).
    with django_assert_max_num_queries(8):
        assert len(client.get(_url("limit-list", org)).json()["results"]) == 5


# --- kill switch ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.TRADER, Role.COMPLIANCE])
def test_owners_admins_traders_and_compliance_trip_the_switch(org, role):
    resp = _client(org, role).post(_url("kill-switch", org), {"reason": "exchange outage"},
                                   format="json")
    assert resp.status_code == 200, resp.content
    assert (resp.json()["state"], resp.json()["reason"]) == ("tripped", "exchange outage")
    assert resp.json()["events"][0]["transition"] == "trip"
    assert AuditEvent.objects.filter(organization=org,
                                     action="risk.kill_switch.tripped").count() == 1


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_analysts_and_viewers_cannot_trip_the_switch(org, role):
    resp = _client(org, role).post(_url("kill-switch", org), {"reason": "x"}, format="json")
    assert resp.status_code == 403
    assert not KillSwitch.objects.filter(organization=org, state="tripped").exists()


@pytest.mark.parametrize("role,allowed", [(Role.TRADER, True), (Role.COMPLIANCE, True),
                                          (Role.ANALYST, False)])
def test_tripping_needs_both_risk_write_and_a_role_the_switch_allows(org, role, allowed,
                                                                     monkeypatch):
    # Grant risk:write to the role in the matrix: traders and compliance may then trip, but an
    # analyst still may not, because the kill switch's own role rule refuses analysts.
    monkeypatch.setitem(ROLE_SCOPES, role, ROLE_SCOPES[role] | {"risk:write"})
    resp = _client(org, role).post(_url("kill-switch", org), {"reason": "x"}, format="json")
    assert resp.status_code == (200 if allowed else 403)


def test_a_read_only_key_cannot_trip_the_switch(org):
    owner = member(org, Role.OWNER)
    key = ApiKeyFactory(organization=org, created_by=owner, scopes=["risk:read"])
    resp = key_client(key).post(_url("kill-switch", org), {"reason": "x"}, format="json")
    assert resp.status_code == 403


def test_tripping_twice_keeps_the_first_reason(org):
    client = _client(org, Role.ADMIN)
    client.post(_url("kill-switch", org), {"reason": "first"}, format="json")
    resp = client.post(_url("kill-switch", org), {"reason": "second"}, format="json")
    assert resp.status_code == 409
    assert KillSwitch.objects.get(organization=org).reason == "first"


@pytest.mark.parametrize("role", READERS)
def test_only_owners_and_admins_rearm(org, role):
    _client(org, Role.OWNER).post(_url("kill-switch", org), {"reason": "stop"}, format="json")
    resp = _client(org, role).post(_url("kill-switch-rearm", org), {"reason": "go"},
                                   format="json")
    assert resp.status_code == 403
    assert KillSwitch.objects.get(organization=org).state == "tripped"


def test_rearming_needs_a_reason_and_is_audited(org):
    admin = member(org, Role.ADMIN)
    client = session_client(admin)
    client.post(_url("kill-switch", org), {"reason": "stop"}, format="json")
    no_reason = client.post(_url("kill-switch-rearm", org), {"reason": " "}, format="json")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["error"]["fields"]

    resp = client.post(_url("kill-switch-rearm", org), {"reason": "venue back"}, format="json")
    assert resp.status_code == 200
    assert (resp.json()["state"], resp.json()["rearmed_by"], resp.json()["rearm_reason"]) == (
        "armed", admin.email, "venue back")
    entry = AuditEvent.objects.get(organization=org, action="risk.kill_switch.rearmed")
    assert (entry.actor_id, entry.metadata["reason"]) == (admin.pk, "venue back")
    again = client.post(_url("kill-switch-rearm", org), {"reason": "again"}, format="json")
    assert again.status_code == 409


def test_only_owners_and_admins_choose_the_escalation_policy(org):
    assert _client(org, Role.TRADER).patch(_url("kill-switch", org), {"escalate": "all"},
                                           format="json").status_code == 403
    resp = _client(org, Role.OWNER).patch(_url("kill-switch", org), {"escalate": "all"},
                                          format="json")
    assert resp.json()["escalate"] == "all"


# --- breaches -------------------------------------------------------------------------------

def test_breaches_are_listed_newest_first_and_filtered_by_source(
        org, django_assert_max_num_queries):
    for i, source in enumerate(["simulation", "deployment", "simulation"]):
        Breach.objects.create(organization=org, source=source, source_id=10 + i,
                              rule="max_order_notional", reason=f"r{i}",
                              at=datetime(2024, 1, 1 + i, tzinfo=UTC), fingerprint=str(i))
    client = _client(org, Role.COMPLIANCE)
    everything = client.get(_url("breach-list", org)).json()["results"]
    assert [b["reason"] for b in everything] == ["r2", "r1", "r0"]
    sims = client.get(_url("breach-list", org), {"source": "simulation"}).json()["results"]
    assert [b["source_id"] for b in sims] == [12, 10]
    with django_assert_max_num_queries(8):
        assert len(client.get(_url("breach-list", org)).json()["results"]) == 3
    bad = client.get(_url("breach-list", org), {"source": "nope"})
    assert bad.status_code == 400 and "source" in bad.json()["error"]["fields"]


# --- measures -------------------------------------------------------------------------------

def test_measures_give_var_and_cvar_by_each_method(org):
    # 20 returns: -5 %, -4 %, then eighteen of +1 %. At 95 %, k = 20 x 0.05 = 1, so the
    # historical VaR and CVaR are both minus the worst return: 5 %. At 90 % (k = 2) VaR is the
    # second worst (4 %) and CVaR the mean of the two worst (4.5 %).
    returns = [-0.05, -0.04] + [0.01] * 18
    client = _client(org, Role.VIEWER)
    r95 = client.post(_url("measures", org), {"returns": returns, "confidence": 0.95,
                                              "n_simulations": 1000}, format="json").json()
    assert r95["estimates"]["historical"]["var"] == pytest.approx(0.05)
    assert r95["estimates"]["historical"]["cvar"] == pytest.approx(0.05)
    assert set(r95["estimates"]) == {"historical", "parametric", "cornish_fisher",
                                     "monte_carlo"}
    r90 = client.post(_url("measures", org), {"returns": returns, "confidence": 0.90,
                                              "methods": ["historical"]}, format="json").json()
    assert r90["estimates"]["historical"] == {"var": pytest.approx(0.04),
                                              "cvar": pytest.approx(0.045), "observations": 20}


def test_measures_backtest_given_forecasts_with_kupiec(org):
    # T = 250, 8 losses beyond a 1 % VaR of 0.02 at 99 %: LR = 7.7336, p = 0.0054 (docs/risk.md).
    returns = [-0.03] * 8 + [0.001] * 242
    resp = _client(org, Role.ANALYST).post(_url("measures", org), {
        "returns": returns, "var_forecasts": [0.02] * 250, "confidence": 0.99,
        "methods": ["historical"]}, format="json").json()
    kupiec = resp["backtest"]["given"]
    assert (kupiec["observations"], kupiec["breaches"]) == (250, 8)
    assert kupiec["likelihood_ratio"] == pytest.approx(7.7336, abs=1e-4)
    assert kupiec["p_value"] == pytest.approx(0.0054, abs=1e-4)
    assert kupiec["reject"] is True


def test_measures_accept_an_equity_curve_and_reject_bad_input(org):
    client = _client(org, Role.VIEWER)
    # Equity 100 → 110 → 99: returns +10 % and -10 %.
    resp = client.post(_url("measures", org), {"equity": [100, 110, 99], "confidence": 0.5,
                                               "methods": ["historical"]}, format="json")
    assert resp.json()["estimates"]["historical"]["var"] == pytest.approx(0.1)
    both = client.post(_url("measures", org), {"returns": [0.1], "equity": [1, 2]},
                       format="json")
    assert both.status_code == 400 and "returns" in both.json()["error"]["fields"]
    short = client.post(_url("measures", org), {"returns": [0.1]}, format="json")
    assert short.status_code == 400
    ragged = client.post(_url("measures", org), {
        "returns": [0.01, 0.02, -0.01], "methods": ["historical"],
        "asset_returns": {"A": [0.01, 0.02, 0.03], "B": [0.01, 0.02]}}, format="json")
    assert ragged.status_code == 400
    assert "asset_returns" in ragged.json()["error"]["fields"]


def test_measures_give_the_correlation_of_assets(org):
    # B = 2 x A exactly, C = -A: correlations +1 and -1.
    a = [0.01, -0.02, 0.03, 0.0, 0.015]
    resp = _client(org, Role.VIEWER).post(_url("measures", org), {
        "returns": a, "methods": ["historical"],
        "asset_returns": {"A": a, "B": [2 * x for x in a], "C": [-x for x in a]}},
        format="json").json()
    assert resp["correlation"]["assets"] == ["A", "B", "C"]
    assert resp["correlation"]["matrix"] == [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0],
                                             [-1.0, -1.0, 1.0]]


def test_measures_report_exposures_and_the_utilisation_of_the_limits(org):
    _org_limits(org, max_gross_exposure=2.0)
    resp = _client(org, Role.VIEWER).post(_url("measures", org), {
        "returns": [0.01, -0.01, 0.02], "methods": ["historical"],
        "positions": {"AAA": 100, "BBB": -50}, "prices": {"AAA": 10, "BBB": 20},
        "portfolio_equity": 2000}, format="json").json()
    # Long 1,000, short 1,000: gross 2,000 = 100 % of equity, half the 200 % limit.
    assert resp["exposures"]["total"]["gross"] == 2000
    assert resp["exposures"]["total"]["net"] == 0
    assert resp["utilisation"] == [{"rule": "max_gross_exposure", "subject": "",
                                    "current": 1.0, "limit": 2.0, "fraction": 0.5,
                                    "level": "organisation"}]


# --- alert targets --------------------------------------------------------------------------

def test_a_webhook_target_never_echoes_its_url_token_or_secret(org, settings):
    settings.RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS = True
    client = _client(org, Role.ADMIN)
    url = "http://127.0.0.1:9/services/T000/B000/XXXXtokenABCD"
    resp = client.post(_url("alert-target-list", org), {
        "name": "slack", "kind": "webhook", "format": "slack", "url": url,
        "secret": "s3cr3t-value"}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["url"] == "http://127.0.0.1:9/…ABCD"
    assert body["has_secret"] is True
    listed = client.get(_url("alert-target-list", org)).content.decode()
    for secret in ("XXXXtoken", "s3cr3t-value", "T000"):
        assert secret not in resp.content.decode() and secret not in listed
    assert AlertTarget.objects.get(organization=org).url == url
    entry = AuditEvent.objects.get(organization=org, action="risk.alert_target.created")
    assert "XXXXtoken" not in str(entry.metadata)


def test_a_webhook_to_a_private_address_is_refused_naming_the_url(org):
    resp = _client(org, Role.OWNER).post(_url("alert-target-list", org), {
        "name": "internal", "kind": "webhook", "url": "http://10.0.0.5/hook"}, format="json")
    assert resp.status_code == 400
    assert resp.json()["error"]["fields"]["url"] == ["refused: 10.0.0.5 is a private address"]


def test_changing_a_target_keeps_the_url_when_it_is_left_out(org):
    target = AlertTarget.objects.create(organization=org, name="desk", kind="email",
                                        email="desk@example.com")
    client = _client(org, Role.OWNER)
    resp = client.patch(_url("alert-target-detail", org, pk=target.pk), {"enabled": False},
                        format="json")
    assert resp.status_code == 200
    target.refresh_from_db()
    assert (target.enabled, target.email) == (False, "desk@example.com")


@pytest.mark.parametrize("role", READERS)
def test_only_owners_and_admins_configure_alert_targets(org, role):
    client = _client(org, role)
    resp = client.post(_url("alert-target-list", org), {
        "name": "me", "kind": "email", "email": "me@example.com"}, format="json")
    assert resp.status_code == 403
    assert client.get(_url("alert-target-list", org)).status_code == 200

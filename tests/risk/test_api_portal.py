"""The portal's risk page: utilisation bars, the kill switch and its forms by role, breaches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.permissions import ROLE_SCOPES, Role
from risk.models import Breach, KillSwitch, RiskLimitSet, UtilisationSnapshot
from tests.factories import OrganizationFactory
from tests.fixtures_accounts import member, session_client


@pytest.fixture
def org(db):
    return OrganizationFactory()


def _page(org, role):
    return session_client(member(org, role)).get(reverse("risk:page", args=[org.slug]))


def _post(client, name, org, reason):
    # A browser posts the form encoded, not as JSON.
    return client.post(reverse(name, args=[org.slug]), {"reason": reason}, format="multipart")


def _trip(org):
    KillSwitch.objects.create(organization=org, state="tripped", reason="drawdown 20 %",
                              tripped_at=datetime(2024, 1, 2, tzinfo=UTC),
                              tripped_by_label="system")


def test_the_page_shows_the_last_utilisation_and_the_breaches(org):
    UtilisationSnapshot.objects.create(
        organization=org, source="deployment", source_id=3, at=datetime(2024, 1, 2, tzinfo=UTC),
        equity=90_000.0, rows=[{"rule": "max_drawdown", "subject": "", "current": 0.09,
                                "limit": 0.1, "fraction": 0.9, "level": "organisation"}])
    Breach.objects.create(organization=org, source="simulation", source_id=8,
                          rule="max_order_notional", reason="order notional 12,500.00 exceeds",
                          at=datetime(2024, 1, 2, tzinfo=UTC), fingerprint="f")
    html = _page(org, Role.VIEWER).content.decode()
    assert 'value="0.9"' in html and "90.0%" in html
    assert "order notional 12,500.00 exceeds" in html
    assert "simulation 8" in html


def test_without_a_snapshot_the_limits_in_force_are_shown_unused(org):
    RiskLimitSet.objects.create(organization=org, level="org", limits={"max_drawdown": 0.15})
    html = _page(org, Role.ANALYST).content.decode()
    assert "No utilisation recorded yet" in html
    assert "<code>max_drawdown</code>" in html and 'value="0.0"' in html


@pytest.mark.parametrize("role,trip_form", [(Role.OWNER, True), (Role.ADMIN, True),
                                            (Role.ANALYST, False), (Role.VIEWER, False)])
def test_the_trip_form_is_shown_to_the_roles_that_may_trip(org, role, trip_form):
    html = _page(org, role).content.decode()
    assert (reverse("risk:trip", args=[org.slug]) in html) is trip_form


@pytest.mark.parametrize("role,rearm_form", [(Role.OWNER, True), (Role.ADMIN, True),
                                             (Role.TRADER, False), (Role.COMPLIANCE, False)])
def test_the_rearm_form_is_shown_only_to_owners_and_admins(org, role, rearm_form):
    _trip(org)
    html = _page(org, role).content.decode()
    assert "drawdown 20 %" in html
    assert (reverse("risk:rearm", args=[org.slug]) in html) is rearm_form


def test_a_trader_with_risk_write_trips_from_the_page_but_cannot_rearm(org, monkeypatch):
    monkeypatch.setitem(ROLE_SCOPES, Role.TRADER, ROLE_SCOPES[Role.TRADER] | {"risk:write"})
    client = session_client(member(org, Role.TRADER))
    assert reverse("risk:trip", args=[org.slug]) in client.get(
        reverse("risk:page", args=[org.slug])).content.decode()
    resp = _post(client, "risk:trip", org, "fat finger")
    assert resp.status_code == 302
    assert KillSwitch.objects.get(organization=org).reason == "fat finger"
    _post(client, "risk:rearm", org, "ok")
    assert KillSwitch.objects.get(organization=org).state == "tripped"


def test_an_admin_rearms_from_the_page_with_a_reason(org):
    _trip(org)
    client = session_client(member(org, Role.ADMIN))
    _post(client, "risk:rearm", org, "")
    assert KillSwitch.objects.get(organization=org).state == "tripped"
    _post(client, "risk:rearm", org, "reviewed")
    assert KillSwitch.objects.get(organization=org).state == "armed"


def test_another_organisations_risk_page_is_not_found(org):
    other = OrganizationFactory()
    client = session_client(member(org, Role.OWNER))
    assert client.get(reverse("risk:page", args=[other.slug])).status_code == 404
    assert _post(client, "risk:trip", other, "x").status_code == 404
    assert not KillSwitch.objects.filter(organization=other).exists()

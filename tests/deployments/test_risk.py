"""A deployment's rulebook halts it: one breach, one alert, resumed only by an admin."""

from __future__ import annotations

import pytest

from accounts.permissions import Role
from accounts.selectors import caller_for
from nexow_site.errors import Forbidden
from risk.models import AlertDelivery, AlertTarget, Breach
from risk.services import limit_set_save
from tests.factories import MembershipFactory, UserFactory
from tests.trading.support import org_with_owner
from trading.models import LiveOrder
from trading.services import deployments

from .support import MINUTE, T0, paper_deployment

pytestmark = pytest.mark.django_db


def _halted_deployment():
    org, owner = org_with_owner()
    AlertTarget.objects.create(organization=org, name="desk", kind="email",
                               email="desk@example.com")
    dep = paper_deployment(org, owner, seed=3)
    # A 0.01 % drawdown limit: the first bars after the first fill move equity further than
    # that below its peak (the walk's bar volatility is 0.4 %).
    limit_set_save(organization=org, level="deployment", ref_id=dep.pk,
                   limits={"max_drawdown": 0.0001},
                   caller=caller_for(user=owner, organization=org))
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 300 * MINUTE)
    dep.refresh_from_db()
    return org, owner, dep


def test_a_drawdown_breach_halts_the_deployment_and_alerts_once():
    org, owner, dep = _halted_deployment()
    assert dep.status == "halted"
    assert dep.halt_reason.startswith("max_drawdown")
    halts = Breach.objects.filter(organization=org, source="deployment", source_id=dep.pk,
                                  halted=True)
    assert halts.count() == 1
    assert AlertDelivery.objects.filter(organization=org, breach=halts.get()).count() == 1
    # A halted deployment does not step, so the halt is not recorded or alerted again.
    assert deployments.deployment_advance(deployment_id=dep.pk,
                                          until_ns=T0 + 400 * MINUTE) == "skipped: halted"
    deployments.deployment_halt(deployment=dep, rule="max_drawdown", reason="again")
    assert AlertDelivery.objects.filter(organization=org).count() == 1
    # the halt cancelled every working order
    assert not LiveOrder.objects.filter(deployment=dep,
                                        status__in=("accepted", "partially_filled")).exists()


@pytest.mark.parametrize("role", [Role.TRADER, Role.ANALYST])
def test_only_an_admin_resumes_a_halted_deployment(role):
    org, owner, dep = _halted_deployment()
    other = MembershipFactory(organization=org, role=role, user=UserFactory()).user
    with pytest.raises(Forbidden):
        deployments.deployment_start(deployment=dep, actor=other,
                                     caller=caller_for(user=other, organization=org),
                                     now_ns=T0 + 301 * MINUTE)
    dep.refresh_from_db()
    assert dep.status == "halted"


def test_an_admin_resumes_a_halted_deployment():
    org, owner, dep = _halted_deployment()
    admin = MembershipFactory(organization=org, role=Role.ADMIN, user=UserFactory()).user
    deployments.deployment_start(deployment=dep, actor=admin,
                                 caller=caller_for(user=admin, organization=org),
                                 now_ns=T0 + 301 * MINUTE)
    dep.refresh_from_db()
    assert dep.status == "running" and dep.halt_reason == ""


def test_each_step_records_how_much_of_its_limits_the_deployment_uses():
    from risk.models import UtilisationSnapshot
    from tests.fixtures_accounts import session_client

    org, owner = org_with_owner()
    dep = paper_deployment(org, owner, seed=3)
    limit_set_save(organization=org, level="org", ref_id=None,
                   limits={"max_gross_exposure": 2.0, "max_drawdown": 0.5},
                   caller=caller_for(user=owner, organization=org))
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 60 * MINUTE)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + 120 * MINUTE)

    (snapshot,) = UtilisationSnapshot.objects.filter(organization=org)  # replaced, not piled up
    dep.refresh_from_db()
    assert (snapshot.source, snapshot.source_id) == ("deployment", dep.pk)
    assert snapshot.at.timestamp() * 10**9 == dep.last_bar_ts
    assert snapshot.equity == pytest.approx(float(dep.equity))
    rows = {r["rule"]: r for r in snapshot.rows}
    assert set(rows) == {"max_gross_exposure", "max_drawdown"}
    assert rows["max_gross_exposure"]["limit"] == 2.0
    assert 0 <= rows["max_drawdown"]["fraction"] < 1
    html = session_client(owner).get(f"/orgs/{org.slug}/risk/").content.decode()
    assert f"Last recorded for deployment {dep.pk}" in html

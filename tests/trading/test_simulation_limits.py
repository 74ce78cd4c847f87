"""A simulation runs under its organisation's risk limits: refused orders and their reasons are in
the result and become breaches; without limits the run is unguarded (and unchanged)."""

import pytest

from risk.models import Breach, RiskLimitSet
from tests.trading.support import (
    finished_simulation,
    org_with_owner,
    sma_version,
    synthetic_dataset,
)
from trading.models import SimulationResult

pytestmark = pytest.mark.django_db


def test_refused_orders_and_reasons_appear_in_the_results_and_as_breaches():
    org, owner = org_with_owner()
    # A 100,000 cash all-in entry is far above a 1,000 order notional limit.
    RiskLimitSet.objects.create(organization=org, level="org", limits={"max_order_notional": 1000})
    dataset = synthetic_dataset(org, owner)
    sim = finished_simulation(org, owner, dataset=dataset, version=sma_version(org, owner))
    summary = SimulationResult.objects.get(simulation=sim).summary
    refusals = summary["rejections"]
    assert refusals, "every entry was refused"
    assert {r["rule"] for r in refusals} == {"max_order_notional"}
    assert "exceeds the limit 1,000.00 (organisation)" in refusals[0]["reason"]
    assert sim.n_trades == 0
    breaches = Breach.objects.filter(organization=org, source="simulation", source_id=sim.pk)
    assert breaches.count() == len(refusals)
    assert set(breaches.values_list("rule", flat=True)) == {"max_order_notional"}


def test_without_limits_the_same_run_trades_and_records_no_breach():
    org, owner = org_with_owner()
    sim = finished_simulation(org, owner, dataset=synthetic_dataset(org, owner),
                              version=sma_version(org, owner))
    assert sim.n_trades > 0
    assert SimulationResult.objects.get(simulation=sim).summary["rejections"] == []
    assert not Breach.objects.filter(organization=org).exists()

"""Query counts of the main portal pages, pinned: a page must not grow a query per row.

Each page is measured with several rows of what it lists (three finished runs, two queued ones,
three strategies), so an N+1 shows up as a count above the pin. Every signed-in page makes five
queries before the view runs (session, user, the current organisation, the caller's organisation
and membership) and one for the organisation switcher; a warm-up request first stores the
current organisation in the session, so the measured request writes no session.
"""

from __future__ import annotations

import pytest

from tests.trading.support import finished_simulation, queued_simulation, sma_version


@pytest.fixture
def busy_org(org, owner, dataset, version):
    for params in ({"fast": 3, "slow": 12}, {"fast": 4, "slow": 15}):
        sma_version(org, owner, name=f"sma {params['fast']}", params=params)
    for _ in range(3):
        finished_simulation(org, owner, dataset=dataset, version=version)
    for _ in range(2):
        queued_simulation(org, owner, dataset=dataset, version=version)
    return org


def _path(org, name: str) -> str:
    sim = org.simulations.filter(status="succeeded").order_by("pk").first()
    ids = ",".join(str(pk) for pk in org.simulations.filter(status="succeeded")
                   .values_list("pk", flat=True))
    return {
        "dashboard": "dashboard/",
        "market data": "market-data/",
        "dataset": f"market-data/{sim.dataset_id}/",
        "strategies": "strategies/",
        "strategy": f"strategies/{sim.strategy_version.strategy_id}/",
        "simulations": "simulations/",
        "simulate form": "simulations/new/",
        "result": f"simulations/{sim.pk}/",
        "compare": f"simulations/compare/?ids={ids}",
    }[name]


@pytest.mark.parametrize("name, pin", [
    ("dashboard", 15), ("market data", 9), ("dataset", 10), ("strategies", 8), ("strategy", 8),
    ("simulations", 8), ("simulate form", 12), ("result", 11), ("compare", 8),
])
def test_page_query_count_is_pinned(owner_web, busy_org, name, pin,
                                    django_assert_max_num_queries):
    url = f"/orgs/{busy_org.slug}/{_path(busy_org, name)}"
    owner_web.get(f"/orgs/{busy_org.slug}/dashboard/")  # warm-up: the session is written once
    with django_assert_max_num_queries(pin):
        response = owner_web.get(url)
    assert response.status_code == 200

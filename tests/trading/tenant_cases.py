"""Tenant-isolation cases of the trading routes and streams (merged by
tests/test_tenant_isolation.py): how to make organisation A's object for each route."""

from __future__ import annotations

from tests.test_tenant_isolation import RouteCase, StreamCase, Target, World
from trading.models import Instrument
from trading.services import analyses

from .support import finished_simulation, sma_version, synthetic_dataset


def _instrument(w: World) -> Target:
    inst = Instrument.objects.create(organization=w.org_a, symbol=f"AONLY{w.org_a.pk}")
    return Target(kwargs={"pk": inst.pk}, marker=f'"{inst.symbol}"',
                  bodies={"PATCH": {"sector": "changed"}})


def _dataset(w: World) -> Target:
    ds = synthetic_dataset(w.org_a, w.owner_a, name=f"a-only-{w.org_a.pk}", n_bars=50,
                           symbol=f"ASYM{w.org_a.pk}")
    return Target(kwargs={"pk": ds.pk}, marker=f'"a-only-{w.org_a.pk}"')


def _dataset_obj(w: World, **extra) -> Target:
    target = _dataset(w)
    return Target(kwargs={**target.kwargs, **extra}, marker=f"ASYM{w.org_a.pk}")


def _strategy(w: World) -> Target:
    version = sma_version(w.org_a, w.owner_a, name=f"a-strategy-{w.org_a.pk}")
    return Target(kwargs={"pk": version.strategy_id}, marker=f'"a-strategy-{w.org_a.pk}"',
                  bodies={"PATCH": {"description": "changed"}})


def _versions(w: World) -> Target:
    version = sma_version(w.org_a, w.owner_a, name=f"a-strategy-{w.org_a.pk}",
                          note=f"a-note-{w.org_a.pk}")
    return Target(kwargs={"strategy_pk": version.strategy_id}, marker=f"a-note-{w.org_a.pk}",
                  bodies={"POST": {"params": {"fast": 3, "slow": 9}}})


def _version(w: World) -> Target:
    target = _versions(w)
    return Target(kwargs={**target.kwargs, "number": 1}, marker=target.marker)


def _simulation(w: World) -> Target:
    sim = finished_simulation(w.org_a, w.owner_a,
                              dataset=synthetic_dataset(w.org_a, w.owner_a, n_bars=300))
    return Target(kwargs={"pk": sim.pk}, marker=sim.result_hash)


def _sim_with(marker: str):
    def make(w: World) -> Target:
        target = _simulation(w)
        return Target(kwargs=target.kwargs, marker=marker)
    return make


def _analysis(w: World) -> Target:
    sim = finished_simulation(w.org_a, w.owner_a,
                              dataset=synthetic_dataset(w.org_a, w.owner_a, n_bars=300))
    analysis = analyses.analysis_create(organization=w.org_a, actor=w.owner_a,
                                        kind="monte_carlo", simulation=sim,
                                        spec={"n_sims": 20, "n_chunks": 2, "seed": 99173})
    return Target(kwargs={"pk": analysis.pk}, marker='"seed":99173')


def _collection(make):
    def inner(w: World) -> Target:
        return Target(marker=make(w).marker)
    return inner


ROUTE_CASES: dict[str, RouteCase] = {
    "trading-api:instrument-list": RouteCase(_collection(_instrument)),
    "trading-api:instrument-detail": RouteCase(_instrument),
    "trading-api:dataset-list": RouteCase(_collection(_dataset)),
    "trading-api:dataset-import": RouteCase(lambda w: Target()),
    "trading-api:dataset-synthetic": RouteCase(lambda w: Target()),
    "trading-api:dataset-detail": RouteCase(_dataset),
    "trading-api:dataset-bars": RouteCase(lambda w: _dataset_obj(w)),
    "trading-api:dataset-export": RouteCase(lambda w: _dataset_obj(w, fmt="json")),
    "trading-api:strategy-type-list": RouteCase(lambda w: Target()),
    "trading-api:strategy-list": RouteCase(_collection(_strategy)),
    "trading-api:strategy-detail": RouteCase(_strategy),
    "trading-api:strategy-version-list": RouteCase(_versions),
    "trading-api:strategy-version-detail": RouteCase(_version),
    "trading-api:simulation-list": RouteCase(_collection(_simulation)),
    "trading-api:simulation-compare": RouteCase(_collection(_simulation)),
    "trading-api:simulation-detail": RouteCase(_simulation),
    "trading-api:simulation-cancel": RouteCase(_simulation),
    "trading-api:simulation-rerun": RouteCase(_simulation),
    "trading-api:simulation-trades": RouteCase(_sim_with('"index":0')),
    "trading-api:simulation-trades-csv": RouteCase(_sim_with("index,symbol,side")),
    "trading-api:simulation-fills": RouteCase(_sim_with('"order_type"')),
    "trading-api:simulation-equity": RouteCase(_sim_with('"n_points"')),
    "trading-api:simulation-events": RouteCase(_sim_with('"simulation.completed"')),
    "trading-api:analysis-list": RouteCase(_collection(_analysis)),
    "trading-api:analysis-detail": RouteCase(_analysis),
}


# --- live and paper trading -----------------------------------------------------------------

def _account(w: World) -> Target:
    from tests.deployments.support import paper_account

    account = paper_account(w.org_a, w.owner_a, name=f"a-account-{w.org_a.pk}")
    return Target(kwargs={"pk": account.pk}, marker=f'"a-account-{w.org_a.pk}"',
                  bodies={"PATCH": {"options": {"note": "changed"}}})


def _traded_deployment(w: World):
    """A's running paper deployment holding 3 SYN (a manual buy filled on the next bar)."""
    from tests.deployments.support import MINUTE, T0, paper_deployment
    from trading.services import deployments, orders

    dep = paper_deployment(w.org_a, w.owner_a, name=f"a-deployment-{w.org_a.pk}")
    orders.order_place(deployment=dep, actor=w.owner_a, symbol="SYN", side="buy", quantity=3)
    deployments.deployment_advance(deployment_id=dep.pk, until_ns=T0 + MINUTE)
    dep.refresh_from_db()
    return dep


def _deployment(w: World) -> Target:
    dep = _traded_deployment(w)
    return Target(kwargs={"pk": dep.pk}, marker=f'"a-deployment-{w.org_a.pk}"')


def _deployment_events(w: World) -> Target:
    return Target(kwargs=_deployment(w).kwargs, marker='"deployment.fill"')


def _order(w: World) -> Target:
    from trading.models import LiveOrder

    dep = _traded_deployment(w)
    order = LiveOrder.objects.filter(deployment=dep).first()
    return Target(kwargs={"pk": order.pk}, marker=order.client_order_id)


def _orders(w: World) -> Target:
    target = _order(w)
    from trading.models import LiveOrder

    dep_id = LiveOrder.objects.get(pk=target.kwargs["pk"]).deployment_id
    return Target(marker=target.marker, bodies={"POST": {
        "deployment": dep_id, "symbol": "SYN", "side": "buy", "quantity": 1,
        "order_type": "limit", "limit_price": 1.0}})


def _fills(w: World) -> Target:
    from trading.models import LiveFill

    fill = LiveFill.objects.get(deployment=_traded_deployment(w))
    return Target(marker=f'"client_order_id":"{fill.client_order_id}"')


def _deployment_divergence(w: World) -> Target:
    # A's manual buy is a fill its backtest does not have
    return Target(kwargs=_deployment(w).kwargs, marker='"status":"live_only","manual":true')


def _positions(w: World) -> Target:
    dep = _traded_deployment(w)
    return Target(marker=f'"deployment":{dep.pk},"symbol":"SYN","quantity":3.0')


ROUTE_CASES.update({
    "trading-api:broker-account-list": RouteCase(_collection(_account)),
    "trading-api:broker-account-detail": RouteCase(_account),
    "trading-api:deployment-list": RouteCase(_collection(_deployment)),
    "trading-api:deployment-detail": RouteCase(_deployment),
    "trading-api:deployment-start": RouteCase(_deployment),
    "trading-api:deployment-pause": RouteCase(_deployment),
    "trading-api:deployment-stop": RouteCase(_deployment),
    "trading-api:deployment-cancel-all": RouteCase(_deployment),
    "trading-api:deployment-flatten": RouteCase(_deployment),
    "trading-api:deployment-events": RouteCase(_deployment_events),
    "trading-api:deployment-divergence": RouteCase(_deployment_divergence),
    "trading-api:live-order-list": RouteCase(_orders),
    "trading-api:live-order-detail": RouteCase(_order),
    "trading-api:live-order-cancel": RouteCase(_order),
    "trading-api:live-fill-list": RouteCase(_fills),
    "trading-api:position-list": RouteCase(_positions),
})


def _stream_deployment(w: World) -> str:
    return str(_traded_deployment(w).pk)


def _stream_simulation(w: World) -> str:
    return str(finished_simulation(w.org_a, w.owner_a,
                                   dataset=synthetic_dataset(w.org_a, w.owner_a, n_bars=300)).pk)


def _stream_analysis(w: World) -> str:
    return _analysis(w).kwargs["pk"].__str__()


STREAM_CASES: dict[str, StreamCase] = {
    "simulation": StreamCase(_stream_simulation),
    "analysis": StreamCase(_stream_analysis),
    "deployment": StreamCase(_stream_deployment),
}

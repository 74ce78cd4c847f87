"""Builders shared by the trading tests: organisations with members, datasets, strategies,
versions and simulations run to completion in-process (the same service the worker calls)."""

from __future__ import annotations

import uuid
from typing import Any

from accounts.models import Organization, User
from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from trading.models import Dataset, Simulation, Strategy, StrategyVersion
from trading.services import marketdata, simulations, strategies

SMA = {"fast": 5, "slow": 20}


def org_with_owner() -> tuple[Organization, User]:
    org = OrganizationFactory()
    owner = MembershipFactory(organization=org, role=Role.OWNER, user=UserFactory()).user
    return org, owner


def synthetic_dataset(org: Organization, actor: User | None = None, *, name: str | None = None,
                      n_bars: int = 600, seed: int = 7, **options: Any) -> Dataset:
    name = name or f"gbm-{uuid.uuid4().hex[:8]}"
    return marketdata.dataset_generate(organization=org, actor=actor, name=name, generator="gbm",
                                       n_bars=n_bars, seed=seed,
                                       options={"volatility": 0.004, **options})


def sma_version(org: Organization, actor: User | None = None, *, name: str = "sma",
                params: dict | None = None, **kwargs: Any) -> StrategyVersion:
    strategy = Strategy.objects.filter(organization=org, name=name).first() or \
        strategies.strategy_create(organization=org, actor=actor, name=name, kind="sma_cross")
    return strategies.version_create(strategy=strategy, actor=actor,
                                     params=params or dict(SMA), **kwargs)


def queued_simulation(org: Organization, actor: User | None = None, *,
                      dataset: Dataset | None = None, version: StrategyVersion | None = None,
                      config: dict | None = None) -> Simulation:
    return simulations.simulation_create(
        organization=org, actor=actor, strategy_version=version or sma_version(org, actor),
        dataset=dataset or synthetic_dataset(org, actor), config=config or {})


def finished_simulation(org: Organization, actor: User | None = None, **kwargs: Any
                        ) -> Simulation:
    sim = queued_simulation(org, actor, **kwargs)
    simulations.simulation_execute(simulation_id=sim.pk, task_id="test")
    sim.refresh_from_db()
    assert sim.status == "succeeded", sim.error
    return sim

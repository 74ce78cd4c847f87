"""Builders for the deployment tests: a paper account and an SMA deployment started at a
known wall-clock time, so each test decides which bars are final."""

from __future__ import annotations

from accounts.models import Organization, User
from tests.trading.support import sma_version
from trading.models import BrokerAccount, Deployment
from trading.services import deployments

T0 = 1_767_225_600 * 10**9  # 2026-01-01 00:00:00 UTC, a whole minute
MINUTE = 60 * 10**9


def paper_account(org: Organization, actor: User | None = None, name: str = "paper"
                  ) -> BrokerAccount:
    return deployments.broker_account_create(organization=org, actor=actor, name=name,
                                             kind="paper", mode="paper")


def paper_deployment(org: Organization, actor: User | None = None, *, start: bool = True,
                     seed: int = 11, name: str = "", **config) -> Deployment:
    dep = deployments.deployment_create(
        organization=org, actor=actor, strategy_version=sma_version(org, actor),
        broker_account=paper_account(org, actor, name=f"paper-{seed}-{Deployment.objects.count()}"),
        symbols=["SYN"], name=name, config={"seed": seed, "volatility": 0.004, **config})
    if start:
        dep = deployments.deployment_start(deployment=dep, actor=actor, now_ns=T0)
    dep.refresh_from_db()
    return dep

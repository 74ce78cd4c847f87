"""Demo data of the trading app: platform datasets every tenant can read, and for the demo
organisation a few strategies with finished simulations, so a newcomer sees a living product.

Simulations are executed in-process with the same service the worker calls; the queued message
their creation also sends finds them finished and does nothing. The demo organisation also gets a
paper broker account and a running paper deployment of the SMA strategy on the synthetic live
feed, created and started through the deployment services, so the dashboard and the deployments
pages move from the first minute.
"""

from __future__ import annotations

import time

from django.db import transaction

from accounts.models import Organization, User
from trading.models import BrokerAccount, Dataset, Deployment, Simulation, Strategy
from trading.services.deployments import (
    broker_account_create,
    deployment_advance,
    deployment_create,
    deployment_start,
)
from trading.services.marketdata import dataset_generate
from trading.services.simulations import simulation_create, simulation_execute
from trading.services.strategies import strategy_create, version_create

PLATFORM_DATASETS = (
    ("Demo BTCUSD 1m", "gbm", 20_160, 1,
     {"symbol": "BTCUSD", "s0": 40_000.0, "volatility": 0.0015, "decimals": 2},
     {"asset_class": "crypto", "calendar": "24/7", "currency": "USD"}),
    ("Demo ACME daily", "regime_switching", 2_520, 2,
     {"symbol": "ACME", "s0": 50.0, "bar_seconds": 86_400, "decimals": 2},
     {"asset_class": "equity", "calendar": "exchange", "currency": "USD"}),
    ("Demo pair X/Y 1h", "cointegrated_pair", 4_380, 3,
     {"bar_seconds": 3_600, "decimals": 2, "symbols": ("DEMOX", "DEMOY")},
     {"asset_class": "equity", "calendar": "exchange", "currency": "USD"}),
)

DEMO_ACCOUNT = "Demo paper account"
DEMO_DEPLOYMENT = "SMA 10/50 on BTC/USD (paper)"
DEMO_DEPLOYMENT_STRATEGY = "SMA 10/50 crossover"
# One-minute bars of a walk around the demo dataset's price; lookback covers the slow average.
DEMO_DEPLOYMENT_CONFIG = {"cash": 100_000.0, "bar_seconds": 60, "lookback": 200,
                          "warm_bars": 120, "s0": 40_000.0, "volatility": 0.0015, "seed": 7}
# The demo deployment starts this many bars in the past and catches up at once, a few bars a
# step, so a newcomer finds it with trades, an equity curve and P&L rather than freshly started.
DEMO_HISTORY_BARS = 360
DEMO_BARS_PER_STEP = 10

DEMO_STRATEGIES = (
    ("SMA 10/50 crossover", "sma_cross", {"fast": 10, "slow": 50}, "", "Demo BTCUSD 1m"),
    ("RSI mean reversion", "rsi", None, "", "Demo ACME daily"),
    ("Rules: trend with RSI exit", "rules", None,
     "entry: crossover(sma(close, 20), sma(close, 100))\nexit: rsi(close, 14) > 70",
     "Demo BTCUSD 1m"),
)


def seed_platform_datasets(log=print) -> list[Dataset]:
    """Creates the platform-wide (organisation NULL) demo datasets once."""
    out = []
    for name, generator, n_bars, seed, opts, defaults in PLATFORM_DATASETS:
        existing = Dataset.objects.filter(organization__isnull=True, name=name).first()
        if existing is not None:
            log(f"exists: {name}")
            out.append(existing)
            continue
        dataset = dataset_generate(organization=None, actor=None, name=name, generator=generator,
                                   n_bars=n_bars, seed=seed, options=opts,
                                   instrument_defaults=defaults)
        log(f"created: {name} ({dataset.rows} bars)")
        out.append(dataset)
    return out


def seed_trading(*, organization: Organization, actor: User) -> list[Simulation]:
    """Strategies and finished simulations for the demo organisation, and its running paper
    deployment (each once)."""
    runs = _seed_strategies(organization=organization, actor=actor)
    seed_deployment(organization=organization, actor=actor)
    return runs


def _seed_strategies(*, organization: Organization, actor: User) -> list[Simulation]:
    datasets = {d.name: d for d in seed_platform_datasets(log=lambda _msg: None)}
    if Strategy.objects.filter(organization=organization).exists():
        return []
    runs = []
    for name, kind, params, rules_text, dataset_name in DEMO_STRATEGIES:
        strategy = strategy_create(organization=organization, actor=actor, name=name, kind=kind)
        version = version_create(strategy=strategy, actor=actor, params=params or {},
                                 rules_text=rules_text)
        sim = simulation_create(organization=organization, actor=actor, strategy_version=version,
                                dataset=datasets[dataset_name], config={})
        simulation_execute(simulation_id=sim.pk, task_id="demo-seed")
        sim.refresh_from_db()
        runs.append(sim)
    return runs


def seed_deployment(*, organization: Organization, actor: User) -> Deployment | None:
    """The demo's paper account and its running SMA deployment; nothing when the account
    exists already (a second seed changes nothing) or the SMA strategy is not there."""
    if BrokerAccount.objects.filter(organization=organization, name=DEMO_ACCOUNT).exists():
        return None
    strategy = Strategy.objects.filter(organization=organization,
                                       name=DEMO_DEPLOYMENT_STRATEGY).first()
    version = strategy.versions.order_by("-number").first() if strategy else None
    if version is None:
        return None
    with transaction.atomic():  # the account is the "done" marker: all of it or nothing
        account = broker_account_create(organization=organization, actor=actor,
                                        name=DEMO_ACCOUNT, kind="paper", mode="paper")
        deployment = deployment_create(organization=organization, actor=actor,
                                       strategy_version=version, broker_account=account,
                                       symbols=["BTC/USD"], name=DEMO_DEPLOYMENT,
                                       config=dict(DEMO_DEPLOYMENT_CONFIG))
        now_ns = time.time_ns()
        step_ns = DEMO_DEPLOYMENT_CONFIG["bar_seconds"] * 10**9
        deployment = deployment_start(deployment=deployment, actor=actor,
                                      now_ns=now_ns - DEMO_HISTORY_BARS * step_ns)
    # Its past hours, as the beat would have stepped them (each step its own transaction).
    for k in range(DEMO_BARS_PER_STEP, DEMO_HISTORY_BARS + DEMO_BARS_PER_STEP,
                   DEMO_BARS_PER_STEP):
        deployment_advance(deployment_id=deployment.pk,
                           until_ns=min(now_ns, deployment.feed_anchor_ns + k * step_ns))
    deployment.refresh_from_db()
    return deployment

"""The demo a newcomer sees after `nexow start`: platform datasets, strategies and finished runs,
and a paper deployment already trading."""

import pytest
from django.core.management import call_command

from accounts.models import AuditEvent, Organization, User
from trading.demo import (
    DEMO_BARS_PER_STEP,
    DEMO_DEPLOYMENT_CONFIG,
    DEMO_HISTORY_BARS,
    seed_trading,
)
from trading.models import (
    BrokerAccount,
    Dataset,
    Deployment,
    DeploymentEvent,
    LiveFill,
    Simulation,
    Strategy,
)

pytestmark = pytest.mark.django_db


def test_seed_demo_gives_the_demo_organisation_strategies_with_finished_simulations(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", verbosity=0)
    org = Organization.objects.get(slug="demo")
    assert Dataset.objects.filter(organization__isnull=True).count() == 3
    assert sorted(Strategy.objects.filter(organization=org).values_list("kind", flat=True)) == [
        "rsi", "rules", "sma_cross"]
    runs = Simulation.objects.filter(organization=org)
    assert [r.status for r in runs] == ["succeeded"] * 3
    # running it again changes nothing
    call_command("seed_demo", verbosity=0)
    assert Simulation.objects.filter(organization=org).count() == 3
    assert Dataset.objects.filter(organization__isnull=True).count() == 3


def test_seed_demo_starts_a_paper_deployment_of_the_sma_strategy(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", verbosity=0)
    org = Organization.objects.get(slug="demo")
    account = BrokerAccount.objects.get(organization=org)
    assert (account.name, account.kind, account.mode) == ("Demo paper account", "paper", "paper")
    dep = Deployment.objects.get(organization=org)
    assert dep.broker_account == account
    assert dep.strategy_version.strategy.name == "SMA 10/50 crossover"
    assert dep.strategy_version.params == {"fast": 10, "slow": 50}
    assert dep.symbols == ["BTC/USD"] and dep.config == DEMO_DEPLOYMENT_CONFIG
    # Started through the services hours ago and caught up, a few bars a step: a newcomer finds
    # it trading, with fills, an equity curve and P&L; its start audited.
    assert dep.status == "running" and dep.state
    bar_ns = DEMO_DEPLOYMENT_CONFIG["bar_seconds"] * 10**9
    assert (dep.last_bar_ts - dep.feed_anchor_ns) // bar_ns >= DEMO_HISTORY_BARS - 2
    assert LiveFill.objects.filter(deployment=dep).count() >= 2
    assert dep.equity != 100_000
    steps = DeploymentEvent.objects.filter(deployment=dep, type="deployment.step").count()
    assert steps >= DEMO_HISTORY_BARS // DEMO_BARS_PER_STEP - 1  # points of its equity curve
    assert list(AuditEvent.objects.filter(organization=org, action__startswith="deployment.")
                .values_list("action", flat=True).order_by("sequence")) == [
        "deployment.created", "deployment.started"]


def test_seeding_the_trading_demo_again_adds_no_account_or_deployment(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", verbosity=0)
    org = Organization.objects.get(slug="demo")
    owner = User.objects.get(email="demo@nexow.localhost")
    assert seed_trading(organization=org, actor=owner) == []
    assert (BrokerAccount.objects.filter(organization=org).count(),
            Deployment.objects.filter(organization=org).count(),
            Simulation.objects.filter(organization=org).count()) == (1, 1, 3)

"""The demo a newcomer sees after `nexow start`: platform datasets, strategies and finished runs."""

import pytest
from django.core.management import call_command

from accounts.models import Organization
from trading.models import Dataset, Simulation, Strategy

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

"""``manage.py seed_market_data``: the platform's demo market data (read-only for every tenant).

Creates platform-wide (organisation NULL) synthetic datasets from the engine's seeded
generators, once: running it again leaves existing demo datasets alone.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trading.demo import seed_platform_datasets


class Command(BaseCommand):
    help = "Create the platform's read-only demo datasets (synthetic, seeded)."

    def handle(self, *args, **options) -> None:
        seed_platform_datasets(log=self.stdout.write)

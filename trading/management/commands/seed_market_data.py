"""``manage.py seed_market_data``: the platform's demo market data (read-only for every tenant).

Creates platform-wide (organisation NULL) synthetic datasets from the engine's seeded
generators, once: running it again leaves existing demo datasets alone.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trading.models import Dataset
from trading.services.marketdata import dataset_generate

DEMO = (
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


class Command(BaseCommand):
    help = "Create the platform's read-only demo datasets (synthetic, seeded)."

    def handle(self, *args, **options) -> None:
        for name, generator, n_bars, seed, opts, defaults in DEMO:
            if Dataset.objects.filter(organization__isnull=True, name=name).exists():
                self.stdout.write(f"exists: {name}")
                continue
            dataset = dataset_generate(organization=None, actor=None, name=name,
                                       generator=generator, n_bars=n_bars, seed=seed,
                                       options=opts, instrument_defaults=defaults)
            self.stdout.write(f"created: {name} ({dataset.rows} bars)")

"""Per-organisation fairness limits, from Django settings or the environment (settings win).

``NEXOW_SIM_MAX_RUNNING_PER_ORG`` — runs of one organisation handed to the workers at once (the
fair-share dispatcher admits the next queued run of that organisation when one finishes).
``NEXOW_SIM_MAX_ACTIVE_PER_ORG`` — queued + running runs of one organisation; beyond it a new run
is refused with 429 and ``Retry-After``.
``NEXOW_SIM_MAX_SIZE`` — bars × symbols of one run; beyond it a run is refused with 413.
``NEXOW_SIM_STALE_SECONDS`` — a running run whose heartbeat is older is re-queued by the sweeper.
``NEXOW_SIM_MAX_ATTEMPTS`` — after this many attempts a stale run is failed instead.
``NEXOW_IMPORT_MAX_BYTES`` — the largest bar file accepted for import (413 beyond).
"""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS: dict[str, int] = {
    "NEXOW_SIM_MAX_RUNNING_PER_ORG": 4,
    "NEXOW_SIM_MAX_ACTIVE_PER_ORG": 500,
    "NEXOW_SIM_MAX_SIZE": 20_000_000,
    "NEXOW_SIM_STALE_SECONDS": 120,
    "NEXOW_SIM_MAX_ATTEMPTS": 3,
    "NEXOW_SIM_DISPATCH_STALE_SECONDS": 900,
    "NEXOW_IMPORT_MAX_BYTES": 200 * 1024 * 1024,
    "NEXOW_ANALYSIS_MAX_CHILDREN": 500,
}


def limit(name: str) -> int:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, DEFAULTS[name])
    return int(value)

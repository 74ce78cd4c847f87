"""Reads of live and paper trading data for reports, always scoped by organisation.

Read-only: broker accounts and deployments of one organisation, their fills and orders in time
order, the equity each ``deployment.step`` event recorded, and the closing prices of the bars a
deployment saw. Prices come, in this order, from the deployment's saved history window (the
last ``lookback`` bars, exact), from the bar source of its venue when the platform has one
(`deployment_bars`), and for paper deployments from the deterministic synthetic feed replayed
from its warm-up — the same bars the deployment was fed unless it was paused for longer than its
lookback (a resumed deployment restarts its feed from its last close), which the saved window
then overrides for the recent bars.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import QuerySet

from accounts.models import Organization
from trading.models import (
    BrokerAccount,
    Deployment,
    DeploymentEvent,
    Instrument,
    LiveFill,
    LiveOrder,
)
from trading.selectors import visible

NS = 10**9


def broker_account_list(*, organization: Organization) -> QuerySet[BrokerAccount]:
    return BrokerAccount.objects.filter(organization=organization)


def deployment_list(*, organization: Organization,
                    broker_account: BrokerAccount | None = None) -> QuerySet[Deployment]:
    qs = Deployment.objects.filter(organization=organization).select_related(
        "strategy_version__strategy", "broker_account")
    return qs.filter(broker_account=broker_account) if broker_account is not None else qs


def live_fills(*, organization: Organization, deployments: Sequence[Deployment]
               ) -> list[LiveFill]:
    """The deployments' fills, oldest first (ties in the order they were stored)."""
    return list(LiveFill.objects.filter(organization=organization,
                                        deployment__in=[d.pk for d in deployments])
                .order_by("ts", "id"))


def live_orders_by_client_id(*, organization: Organization, deployments: Sequence[Deployment]
                             ) -> dict[str, LiveOrder]:
    return {o.client_order_id: o for o in LiveOrder.objects.filter(
        organization=organization, deployment__in=[d.pk for d in deployments])}


@dataclass(frozen=True, slots=True)
class StepPoint:
    """What one ``deployment.step`` event recorded at the end of its last bar."""

    ts: int  # the last bar's timestamp, ns UTC
    equity: Decimal
    cash: Decimal
    positions: dict[str, Decimal]


def deployment_steps(*, deployment: Deployment) -> list[StepPoint]:
    """The equity, cash and positions of every step, in order (the live equity curve)."""
    points: list[StepPoint] = []
    events = DeploymentEvent.objects.filter(deployment=deployment, type="deployment.step") \
        .order_by("seq").values_list("payload", flat=True)
    for payload in events:
        ts, equity = payload.get("last_bar_ts"), payload.get("equity")
        if ts is None or equity is None:
            continue
        points.append(StepPoint(int(ts), Decimal(str(equity)),
                                Decimal(str(payload.get("cash", 0))),
                                {s: Decimal(str(q)) for s, q in
                                 (payload.get("positions") or {}).items()}))
    return points


def instrument_asset_classes(*, organization: Organization, symbols: Iterable[str]
                             ) -> dict[str, str]:
    """The asset class of each symbol the organisation (or the platform) knows; the
    organisation's own instrument wins over a platform one of the same symbol."""
    out: dict[str, str] = {}
    rows = Instrument.objects.filter(visible(organization), symbol__in=list(symbols)) \
        .order_by("organization_id").values_list("symbol", "asset_class", "organization_id")
    for symbol, asset_class, org_id in rows:
        if org_id is not None or symbol not in out:
            out[symbol] = asset_class
    return out



# --- bar prices -------------------------------------------------------------------------------

def deployment_config(dep: Deployment) -> dict[str, Any]:
    """The deployment's configuration with the platform defaults filled in."""
    from trading.services.deployments import DEFAULTS

    return {**DEFAULTS, "seed": dep.pk, **(dep.config or {})}


_config = deployment_config


def bar_index(dep: Deployment, ts: int) -> int:
    """The index ``k`` of the deployment's bar that contains `ts` (bar k starts at
    ``anchor + k * bar_seconds``)."""
    return (int(ts) - int(dep.feed_anchor_ns)) // (int(_config(dep)["bar_seconds"]) * NS)


def bar_timestamp(dep: Deployment, k: int) -> int:
    return int(dep.feed_anchor_ns) + int(k) * int(_config(dep)["bar_seconds"]) * NS


def _saved_window(dep: Deployment) -> dict[int, np.ndarray]:
    if not dep.state:
        return {}
    hist = json.loads(dep.state)["history"]
    n, s = int(hist["n"]), len(dep.symbols)
    ts = np.frombuffer(base64.b64decode(hist["timestamps"]), dtype="<i8")
    ohlcv = np.frombuffer(base64.b64decode(hist["ohlcv"]), dtype="<f8").reshape(5, n, s)
    return {int(t): ohlcv[3, i, :].astype(np.float64) for i, t in enumerate(ts)}


def _feed_closes(dep: Deployment, k_from: int, k_to: int) -> dict[int, np.ndarray]:
    """Closes of bars ``k_from .. k_to - 1`` from the deployment's feed (the exchange's candles,
    or the paper walk regenerated from its seed)."""
    from trading.services.venues import deployment_bars

    bars = deployment_bars(dep, k_from, k_to)
    close = np.asarray(bars.close, dtype=np.float64).reshape(len(bars.timestamps), -1)
    column = [list(bars.symbols).index(s) for s in dep.symbols]
    return {int(t): close[i, column] for i, t in enumerate(bars.timestamps)}


def deployment_closes(*, deployment: Deployment, timestamps: Iterable[int]
                      ) -> dict[int, dict[str, float]]:
    """The close of every symbol at each of the deployment's bar timestamps asked for (bars
    it has processed; a timestamp with no known bar is left out)."""
    dep = deployment
    wanted = sorted({int(t) for t in timestamps})
    if not wanted or dep.feed_anchor_ns is None:
        return {}
    known = _saved_window(dep)
    missing = [t for t in wanted if t not in known]
    if missing:
        k_from = bar_index(dep, missing[0])
        k_to = bar_index(dep, missing[-1]) + 1
        for t, row in _feed_closes(dep, k_from, k_to).items():
            known.setdefault(t, row)
    return {t: dict(zip(dep.symbols, (float(x) for x in known[t]), strict=True))
            for t in wanted if t in known}

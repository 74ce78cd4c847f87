"""The divergence panel of a deployment's page: its live run next to its backtest.

One partial, loaded by the deployment page with htmx: the summary numbers, the equity of both
runs for the chart (drawn by ``nexow/divergence.js`` from a JSON script element) and the table
of paired fills. A request without htmx goes to the deployment page, where the panel lives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.portal import member_or_404, require_scope
from nexow_site.errors import ServiceUnavailable
from trading.models import Deployment
from trading.services import divergence as divergence_services


def _at(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chart(body: dict[str, Any]) -> dict[str, Any]:
    return {name: {"x": [_iso(ts) for ts, _ in body[name]["equity"]],
                   "y": [v for _, v in body[name]["equity"]]}
            for name in ("live", "backtest")}


@login_required
def deployment_divergence(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:read")
    dep = (Deployment.objects.filter(organization=caller.organization, pk=pk)
           .select_related("strategy_version__strategy").first())
    if dep is None:
        raise Http404("No such deployment.")
    if not request.htmx:
        return redirect(reverse("trading:deployment", args=[slug, pk]) + "#divergence")
    try:
        body = divergence_services.deployment_divergence(dep).to_dict()
    except ServiceUnavailable as exc:
        # htmx swaps only 2xx answers: the panel says what happened and offers to retry.
        return render(request, "trading/partials/deployment_divergence.html", {
            "caller": caller, "organization": caller.organization, "dep": dep,
            "unavailable": exc.message})
    fills = [{**f, "live_at": _at(f["live_ts"]), "backtest_at": _at(f["backtest_ts"])}
             for f in body["fills"]]
    return render(request, "trading/partials/deployment_divergence.html", {
        "caller": caller, "organization": caller.organization, "dep": dep, "d": body,
        "fills": fills, "chart": _chart(body),
        "first_divergence_at": _at(body["summary"]["first_divergence_ts"]),
        "from_at": _at(body["from_ts"]), "to_at": _at(body["to_ts"]),
    })

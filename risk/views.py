"""The portal's risk page: limit utilisation, the kill switch with its forms, breach history.

Views stay thin: resolve the member's standing in the organisation (another organisation's page
is a 404, a member without ``risk:read`` gets a 403), call a selector or service, render. Service
refusals come back as messages on the page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.portal import member_or_404, require_scope
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError
from risk import selectors, services
from risk.core.killswitch import REARM, TRIP, role_may
from risk.models import compact_limits

BREACHES_SHOWN = 50
# The bar turns amber from 80 % of a limit and red from 95 %.
WARN_AT, DANGER_AT = 0.8, 0.95


def _caller(request: HttpRequest, slug: str) -> Caller:
    caller = member_or_404(request, slug)
    require_scope(caller, "risk:read")
    return caller


def _bars(organization) -> tuple[list[dict], object | None]:
    """Utilisation rows of the last recorded snapshot, or the effective limits at zero use."""
    snapshot = selectors.utilisation_latest(organization=organization)
    if snapshot is not None:
        rows = [dict(r, fraction=r["fraction"] or 0.0) for r in snapshot.rows]
    else:
        merged = selectors.effective_limits(organization=organization)
        rows = [{"rule": name, "subject": "", "current": None, "limit": value, "fraction": 0.0,
                 "level": merged.source(name)}
                for name, value in compact_limits(merged.limits).items()
                if isinstance(value, int | float) and not isinstance(value, bool)]
    for row in rows:
        row["shown"] = min(max(row["fraction"], 0.0), 1.0)
        row["percent"] = round(row["fraction"] * 100, 1)
    return rows, snapshot


@login_required
def risk_page(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    organization = caller.organization
    bars, snapshot = _bars(organization)
    merged = selectors.effective_limits(organization=organization)
    return render(request, "risk/risk.html", {
        "caller": caller,
        "organization": organization,
        "bars": bars,
        "snapshot": snapshot,
        "warn_at": WARN_AT,
        "danger_at": DANGER_AT,
        "limits": [{"name": k, "value": v, "level": merged.source(k)}
                   for k, v in compact_limits(merged.limits).items()],
        "switch": selectors.kill_switch_get(organization=organization),
        "switch_events": selectors.kill_switch_event_list(organization=organization)[:10],
        "may_trip": role_may(TRIP, caller.role) and caller.has_scope("risk:write"),
        "may_rearm": role_may(REARM, caller.role) and caller.has_scope("risk:admin"),
        "breaches": selectors.breach_list(organization=organization)[:BREACHES_SHOWN],
        "breadcrumbs": [(organization.name, reverse("accounts:org-home", args=[slug])),
                        ("Risk", "")],
    })


@login_required
@require_POST
def kill_switch_trip(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    try:
        services.kill_switch_trip(organization=caller.organization,
                                  reason=request.POST.get("reason", ""), caller=caller,
                                  request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The kill switch is tripped: all trading is stopped.")
    return redirect("risk:page", slug=slug)


@login_required
@require_POST
def kill_switch_rearm(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    try:
        services.kill_switch_rearm(organization=caller.organization,
                                   reason=request.POST.get("reason", ""), caller=caller,
                                   request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The kill switch is re-armed: trading may resume.")
    return redirect("risk:page", slug=slug)

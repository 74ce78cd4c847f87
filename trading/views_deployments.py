"""Portal pages of live and paper trading: deployments, their detail and controls, broker accounts.

Views stay thin: resolve the member's standing in the organisation, parse a form, call a service
(`trading.services.deployments`, `trading.services.orders`: each audits and emits the
deployment's events) or read, render. Another organisation's deployment, order or account is a
404; a member without the scope an action needs gets a 403 and never sees its button. Scopes:
reading needs ``deployments:read``; creating, starting, pausing and stopping
``deployments:write`` (resuming a halted deployment ``deployments:admin``); manual orders, cancel,
cancel all and flatten ``orders:write``; broker accounts ``deployments:read`` / ``write``.

The detail page's chart (close price with the fills marked, and equity) is drawn from the saved
state's history window, the fills and the ``deployment.step`` events; ``nexow/deployment.js``
keeps it and the numbers current from the organisation WebSocket, and asks this page for its
parts (``?part=books``, ``?part=controls``, ``?part=prices&after=<ns>``) when an event says they
changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.portal import member_or_404, require_scope
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError
from trading import forms_deployments as forms
from trading import selectors
from trading.brokers.base import OPEN_STATUSES
from trading.live_engine import DeploymentState
from trading.models import (
    BrokerAccount,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    LiveFill,
    LiveOrder,
)
from trading.services import deployments as services
from trading.services import orders as order_services

PAGE_SIZE = 25
ORDERS_SHOWN = 50
FILLS_SHOWN = 50
FILL_MARKERS = 500  # fills drawn on the chart (the most recent)
EQUITY_POINTS = 2000  # step events drawn as the equity curve (the most recent)
ACTIVE = (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED)
LIVE = (DeploymentStatus.PENDING, DeploymentStatus.RUNNING, DeploymentStatus.PAUSED)


# --- helpers ------------------------------------------------------------------------------------

def _page(request: HttpRequest, template: str, caller: Caller, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    return render(request, template, {
        "caller": caller, "organization": caller.organization, "section": "deployments",
        "can_deploy": caller.has_scope("deployments:write"),
        "can_resume": caller.has_scope("deployments:admin"),
        "can_trade": caller.has_scope("orders:write"),
        "can_kill": caller.has_scope("risk:write"),
        **context,
    }, status=status)


def _crumbs(caller: Caller, *items: tuple[str, str]) -> list[tuple[str, str]]:
    org = caller.organization
    return [(org.name, reverse("trading:dashboard", args=[org.slug])), *items]


def _deployments_crumb(caller: Caller) -> tuple[str, str]:
    return ("Deployments", reverse("trading:deployments", args=[caller.organization.slug]))


def _when(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _iso(ns) -> list[str]:
    return pd.to_datetime(ns, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ").tolist()


def starting_cash(dep: Deployment) -> Decimal:
    """The paper account's starting cash: what the P&L is measured from."""
    return Decimal(str((dep.config or {}).get("cash", services.DEFAULTS["cash"])))


def decorate(dep: Deployment) -> Deployment:
    """Adds what a row shows: starting cash, P&L (absolute and in % of the starting cash) and
    the last bar's time."""
    dep.starting_cash = starting_cash(dep)
    dep.pnl = None if dep.equity is None else dep.equity - dep.starting_cash
    dep.pnl_pct = (None if dep.pnl is None or not dep.starting_cash
                   else dep.pnl / dep.starting_cash * 100)
    dep.last_bar_at = _when(dep.last_bar_ts)
    return dep


# --- reads (always scoped by the caller's organisation) -----------------------------------------

def deployment_list(*, organization) -> QuerySet[Deployment]:
    """The organisation's deployments with what a row shows, without their (large) saved state."""
    return (Deployment.objects.filter(organization=organization)
            .defer("state", "broker_state")
            .select_related("strategy_version__strategy", "broker_account"))


def running_deployments(*, organization, limit: int = 10) -> list[Deployment]:
    """The dashboard card: running deployments, most recently started first."""
    return [decorate(d) for d in deployment_list(organization=organization)
            .filter(status=DeploymentStatus.RUNNING).order_by("-started_at", "-id")[:limit]]


def _deployment(caller: Caller, pk: int, *, with_state: bool = False) -> Deployment:
    qs = Deployment.objects.filter(organization=caller.organization, pk=pk).select_related(
        "strategy_version__strategy", "broker_account", "created_by")
    dep = (qs if with_state else qs.defer("state", "broker_state")).first()
    if dep is None:
        raise Http404("No such deployment.")
    return dep


def _accounts(caller: Caller) -> QuerySet[BrokerAccount]:
    return BrokerAccount.objects.filter(organization=caller.organization)


# --- deployments list and creation --------------------------------------------------------------

@login_required
def deployments(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:read")
    qs = deployment_list(organization=caller.organization)
    wanted = request.GET.get("status", "")
    if wanted in DeploymentStatus.values:
        qs = qs.filter(status=wanted)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    for dep in page.object_list:
        decorate(dep)
    return _page(request, "trading/deployments.html", caller, {
        "breadcrumbs": _crumbs(caller, ("Deployments", "")),
        "page": page, "status": wanted, "statuses": DeploymentStatus.choices,
        "live_statuses": LIVE,
    })


@login_required
def deployment_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:write")
    org = caller.organization
    versions = selectors.strategy_version_list(organization=org).order_by(
        "strategy__name", "-number")
    accounts = _accounts(caller)
    initial = {"strategy_version": request.GET["version"]} if request.GET.get("version") else {}
    form = forms.DeploymentForm(request.POST or None, initial=initial, versions=versions,
                                accounts=accounts)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # One transaction: a deployment that cannot start is not left behind half-made.
            with transaction.atomic():
                dep = services.deployment_create(
                    organization=org, actor=request.user, name=data["name"],
                    strategy_version=data["strategy_version"],
                    broker_account=data["broker_account"], symbols=data["symbols"],
                    config=form.config(), request=request)
                if data["start"]:
                    dep = services.deployment_start(deployment=dep, actor=request.user,
                                                    caller=caller, request=request)
        except ApplicationError as error:
            forms.add_service_error(form, error)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            verb = "started" if data["start"] else "created; start it when ready"
            messages.success(request, f"Deployment #{dep.pk} {verb}.")
            return redirect("trading:deployment", slug=slug, pk=dep.pk)
    return _page(request, "trading/deployment_create.html", caller, {
        "breadcrumbs": _crumbs(caller, _deployments_crumb(caller), ("New", "")),
        "form": form, "has_versions": versions.exists(), "has_accounts": accounts.exists(),
    }, status=400 if form.errors else 200)


# --- one deployment -----------------------------------------------------------------------------

def positions(dep: Deployment, state: DeploymentState | None) -> list[dict[str, Any]]:
    """Open positions valued at the last close of the deployment's history."""
    if state is None:
        return []
    closes = state.ohlcv[3, -1, :] if state.ohlcv is not None and state.ohlcv.shape[1] else None
    rows = []
    for j, symbol in enumerate(state.symbols):
        qty = state.positions.get(symbol, 0.0)
        if not qty:
            continue
        last = float(closes[j]) if closes is not None else None
        rows.append({"symbol": symbol, "quantity": qty, "last_price": last,
                     "market_value": None if last is None else qty * last})
    return rows


def price_points(state: DeploymentState | None, symbol: str, after: int | None = None
                 ) -> dict[str, Any]:
    """The closes of `symbol` in the saved history window (after the time `after`, in ns)."""
    if state is None or state.ohlcv is None or not state.ohlcv.shape[1] \
            or symbol not in state.symbols:
        return {"ts": [], "x": [], "close": []}
    ts = state.timestamps
    close = state.ohlcv[3, :, state.symbols.index(symbol)]
    if after is not None:
        keep = ts > after
        ts, close = ts[keep], close[keep]
    return {"ts": [int(t) for t in ts], "x": _iso(ts), "close": [float(c) for c in close]}


def equity_points(dep: Deployment) -> dict[str, Any]:
    """Equity after each step (the most recent `EQUITY_POINTS`), from the event log."""
    payloads = list(DeploymentEvent.objects.filter(deployment=dep, type="deployment.step")
                    .order_by("-seq").values_list("payload", flat=True)[:EQUITY_POINTS])
    points = [(p["last_bar_ts"], p["equity"]) for p in reversed(payloads)
              if p.get("last_bar_ts") is not None and p.get("equity") is not None]
    if dep.equity is not None and dep.last_bar_ts is not None and \
            (not points or points[-1][0] < dep.last_bar_ts):
        points.append((dep.last_bar_ts, float(dep.equity)))  # e.g. before the first step
    return {"ts": [p[0] for p in points], "x": _iso([p[0] for p in points]),
            "y": [float(p[1]) for p in points]}


def chart_data(dep: Deployment, state: DeploymentState | None, symbol: str,
               fills: list[LiveFill]) -> dict[str, Any]:
    marks: dict[str, dict[str, list]] = {"buy": {"ts": [], "y": [], "text": []},
                                         "sell": {"ts": [], "y": [], "text": []}}
    for fill in reversed(fills):  # oldest first
        if fill.symbol == symbol and fill.side in marks:
            side = marks[fill.side]
            side["ts"].append(fill.ts)
            side["y"].append(float(fill.price))
            side["text"].append(f"{fill.side} {float(fill.quantity):g} @ {float(fill.price):g}")
    for side in marks.values():
        side["x"] = _iso(side["ts"])
    return {"symbol": symbol, "price": price_points(state, symbol),
            "equity": equity_points(dep), "buys": marks["buy"], "sells": marks["sell"]}


def _books(dep: Deployment, state: DeploymentState | None) -> dict[str, Any]:
    orders = list(LiveOrder.objects.filter(deployment=dep)[:ORDERS_SHOWN])
    for order in orders:
        order.is_open = order.status in OPEN_STATUSES
        order.decided_at = _when(order.decision_ts) if order.decision_ts else None
    fills = list(LiveFill.objects.filter(deployment=dep)[:FILL_MARKERS])
    for fill in fills:
        fill.at = _when(fill.ts)
    return {"orders": orders, "fills": fills, "fills_shown": fills[:FILLS_SHOWN],
            "positions": positions(dep, state),
            "has_open_orders": any(o.is_open for o in orders)}


def _symbol(request: HttpRequest, dep: Deployment) -> str:
    symbol = request.GET.get("symbol") or (dep.symbols[0] if dep.symbols else "")
    if symbol not in dep.symbols:
        raise Http404("The deployment does not trade this symbol.")
    return symbol


def _detail_context(request: HttpRequest, caller: Caller, dep: Deployment, *,
                    order_form: forms.OrderForm | None = None) -> dict[str, Any]:
    from risk.selectors import kill_switch_get

    state = DeploymentState.from_json(dep.state) if dep.state else None
    symbol = _symbol(request, dep)
    books = _books(dep, state)
    decorate(dep)
    return {
        "breadcrumbs": _crumbs(caller, _deployments_crumb(caller),
                               (dep.name or f"#{dep.pk}", "")),
        "dep": dep, "symbol": symbol, "state": state,
        "chart": chart_data(dep, state, symbol, books["fills"]),
        "order_form": order_form or forms.OrderForm(symbols=list(dep.symbols)),
        "switch": kill_switch_get(organization=caller.organization)
        if caller.has_scope("risk:write") else None,
        "is_active": dep.status in ACTIVE and bool(dep.state),
        **books,
    }


@login_required
def deployment_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:read")
    part = request.GET.get("part", "")
    if part == "prices":
        # The closes after a time: the live chart extends itself after each step.
        dep = _deployment(caller, pk, with_state=True)
        after = request.GET.get("after", "")
        state = DeploymentState.from_json(dep.state) if dep.state else None
        return JsonResponse(price_points(state, _symbol(request, dep),
                                         int(after) if after.lstrip("-").isdigit() else None))
    if part in ("books", "controls"):
        dep = _deployment(caller, pk, with_state=part == "books")
        if part == "controls":
            return _page(request, "trading/partials/deployment_controls.html", caller,
                         {"dep": decorate(dep)})
        state = DeploymentState.from_json(dep.state) if dep.state else None
        return _page(request, "trading/partials/deployment_books.html", caller,
                     {"dep": dep, **_books(dep, state)})
    dep = _deployment(caller, pk, with_state=True)
    return _page(request, "trading/deployment_detail.html", caller,
                 _detail_context(request, caller, dep))


def _back(slug: str, pk: int) -> HttpResponse:
    return redirect("trading:deployment", slug=slug, pk=pk)


def _lifecycle(request: HttpRequest, slug: str, pk: int, action: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:write")
    dep = _deployment(caller, pk)
    if action == "start" and dep.status == DeploymentStatus.HALTED and \
            not caller.has_scope("deployments:admin"):
        raise PermissionDenied("A halted deployment is resumed only by an owner or admin.")
    try:
        if action == "start":
            was = dep.status
            services.deployment_start(deployment=dep, actor=request.user, caller=caller,
                                      request=request)
            done = "started" if was == DeploymentStatus.PENDING else "resumed"
        elif action == "pause":
            services.deployment_pause(deployment=dep, actor=request.user, request=request)
            done = "paused"
        else:
            services.deployment_stop(deployment=dep, actor=request.user, request=request)
            done = "stopped; its working orders were cancelled"
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Deployment #{dep.pk} {done}.")
    return _back(slug, pk)


@login_required
@require_POST
def deployment_start(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _lifecycle(request, slug, pk, "start")


@login_required
@require_POST
def deployment_pause(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _lifecycle(request, slug, pk, "pause")


@login_required
@require_POST
def deployment_stop(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _lifecycle(request, slug, pk, "stop")


# --- orders -------------------------------------------------------------------------------------

@login_required
@require_POST
def deployment_order(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A manual order; a refused one is shown with the page and its form, errors inline."""
    caller = member_or_404(request, slug)
    require_scope(caller, "orders:write")
    dep = _deployment(caller, pk)
    form = forms.OrderForm(request.POST, symbols=list(dep.symbols))
    if form.is_valid():
        data = form.cleaned_data
        try:
            order = order_services.order_place(
                deployment=dep, actor=request.user, symbol=data["symbol"], side=data["side"],
                quantity=data["quantity"], order_type=data["order_type"],
                limit_price=data["limit_price"], leg=data["leg"], request=request)
        except ApplicationError as error:
            forms.add_service_error(form, error)
        else:
            if order.reason.startswith("risk "):
                messages.error(request, f"Order refused by the risk rules: {order.reason}")
            elif order.status == "rejected":
                messages.error(request, f"The broker rejected the order: {order.reason}")
            else:
                messages.success(request, f"Order placed: {order.side} {float(order.quantity):g} "
                                          f"{order.symbol} ({order.status}).")
            return _back(slug, pk)
    dep = _deployment(caller, pk, with_state=True)
    return _page(request, "trading/deployment_detail.html", caller,
                 _detail_context(request, caller, dep, order_form=form), status=400)


@login_required
@require_POST
def deployment_cancel_all(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "orders:write")
    dep = _deployment(caller, pk)
    try:
        n = order_services.orders_cancel_all(deployment=dep, actor=request.user, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{n} working order{'s' if n != 1 else ''} cancelled.")
    return _back(slug, pk)


@login_required
@require_POST
def deployment_flatten(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "orders:write")
    dep = _deployment(caller, pk)
    try:
        placed = order_services.deployment_flatten(deployment=dep, actor=request.user,
                                                   request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Flattening: {len(placed)} closing order"
                                  f"{'s' if len(placed) != 1 else ''} placed.")
    return _back(slug, pk)


@login_required
@require_POST
def order_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "orders:write")
    order = LiveOrder.objects.filter(organization=caller.organization, pk=pk).first()
    if order is None:
        raise Http404("No such order.")
    try:
        order = order_services.order_cancel(order=order, actor=request.user, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Order {order.client_order_id} {order.status}.")
    return _back(slug, order.deployment_id)


# --- broker accounts ----------------------------------------------------------------------------

@login_required
def broker_accounts(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:read")
    accounts = _accounts(caller).annotate(n_deployments=Count("deployments"))
    return _page(request, "trading/broker_accounts.html", caller, {
        "breadcrumbs": _crumbs(caller, _deployments_crumb(caller), ("Broker accounts", "")),
        "accounts": accounts,
    })


@login_required
def broker_account_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "deployments:write")
    form = forms.BrokerAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.broker_account_create(
                organization=caller.organization, actor=request.user, name=data["name"],
                kind=data["kind"], mode=data["mode"], credentials=form.credentials() or None,
                options=form.options(), request=request)
        except ApplicationError as error:
            if error.code == "duplicate_name":
                form.add_error("name", error.message)
            else:
                forms.add_service_error(form, error)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            messages.success(request, f"Broker account “{account.name}” added.")
            return redirect("trading:broker-accounts", slug=slug)
    return _page(request, "trading/broker_account_create.html", caller, {
        "breadcrumbs": _crumbs(caller, _deployments_crumb(caller),
                               ("Broker accounts",
                                reverse("trading:broker-accounts", args=[slug])),
                               ("New", "")),
        "form": form,
    }, status=400 if form.errors else 200)

"""Portal pages of the trading app: dashboard, market data, strategies, simulations, comparison.

Views stay thin: resolve the organisation and the member's standing, parse a form, call a
service (`trading.services.*`) or a selector (`trading.selectors`), render. Another
organisation's object is a 404; a member without the scope an action needs gets a 403 and never
sees the button. Chart data is computed here from the selectors' arrays and handed to the page as
JSON (``json_script``) for plotly.js; live progress comes over the organisation WebSocket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from accounts.portal import member_or_404, require_scope
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError
from trading import forms, selectors
from trading.engine import metrics as engine_metrics
from trading.engine.rules import validate_rules
from trading.models import FINISHED, RunStatus, Simulation
from trading.services import marketdata as marketdata_services
from trading.services import results as packing
from trading.services import simulations as simulation_services
from trading.services import strategies as strategy_services
from trading.views_deployments import running_deployments

CHART_POINTS = 2000  # points per plotted series: plenty for a screen, small for the page
CANDLES = 1500  # most recent bars drawn on a dataset's candlestick chart
TRADES_PAGE_SIZE = 50
TRADE_SORTS = ("index", "symbol", "side", "entry_time", "entry_price", "exit_time", "exit_price",
               "quantity", "pnl", "fees")
TRADE_LABELS = {"index": "#", "pnl": "P&L"}
METRIC_LABELS = {
    "total_return": ("Total return", "pct"), "cagr": ("CAGR", "pct"),
    "sharpe": ("Sharpe", "num"), "sortino": ("Sortino", "num"),
    "max_drawdown": ("Max drawdown", "pct"), "volatility_annual": ("Volatility", "pct"),
    "calmar": ("Calmar", "num"), "n_trades": ("Trades", "int"),
    "win_rate_trades": ("Win rate", "pct"), "profit_factor_trades": ("Profit factor", "num"),
    "expectancy": ("Expectancy", "money"), "exposure_time": ("Time in market", "pct"),
    "turnover_annual": ("Turnover / year", "num"), "end_equity": ("Final equity", "money"),
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- helpers ---------------------------------------------------------------------------------

_caller = member_or_404
_require = require_scope


def _crumbs(caller: Caller, *items: tuple[str, str]) -> list[tuple[str, str]]:
    org = caller.organization
    return [(org.name, reverse("trading:dashboard", args=[org.slug])), *items]


def _page(request: HttpRequest, template: str, caller: Caller, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    org = caller.organization
    return render(request, template, {
        "caller": caller, "organization": org,
        "can_import": caller.has_scope("market_data:write"),
        "can_edit_strategies": caller.has_scope("strategies:write"),
        "can_simulate": caller.has_scope("simulations:write"),
        **context,
    }, status=status)


def _iso(ns: np.ndarray) -> list[str]:
    return pd.to_datetime(ns, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ").tolist()


def _finite(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in values]


def _service_error(form, error: Exception) -> None:
    if isinstance(error, ValidationError):
        for field, errors in getattr(error, "message_dict", {"__all__": error.messages}).items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        forms.add_service_error(form, error)


def _simulation(caller: Caller, pk: int) -> Simulation:
    sim = selectors.simulation_list(organization=caller.organization).filter(pk=pk).first()
    if sim is None:
        raise Http404("No such simulation.")
    return sim


# --- dashboard ---------------------------------------------------------------------------------

@login_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    org = caller.organization
    sims = selectors.simulation_list(organization=org)
    active = list(sims.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING))[:10])
    recent = list(sims.filter(status__in=FINISHED)[:10])
    for sim in recent:
        sim.return_display = format_metric((sim.metrics or {}).get("total_return"), "pct")
    audit = []
    if caller.has_scope("audit:read"):
        audit = list(account_selectors.audit_event_list(organization=org)
                     .order_by("-created_at", "-id")[:8])
    deployments = []
    if caller.has_scope("deployments:read"):
        deployments = running_deployments(organization=org)
    risk = None
    if caller.has_scope("risk:read"):
        from risk import selectors as risk_selectors

        risk = {"switch": risk_selectors.kill_switch_get(organization=org),
                "usage": [dict(r, percent=round(r["fraction"] * 100, 1),
                               shown=min(max(r["fraction"], 0.0), 1.0))
                          for r in risk_selectors.utilisation_top(organization=org)]}
    reports = []
    if caller.has_scope("reports:read"):
        from reporting import selectors as report_selectors

        reports = list(report_selectors.report_list(organization=org, caller=caller)[:5])
    return _page(request, "trading/dashboard.html", caller, {
        "section": "dashboard",
        "active": active, "recent": recent, "audit": audit, "deployments": deployments,
        "risk": risk, "reports": reports,
        "n_datasets": selectors.dataset_list(organization=org).count(),
        "n_strategies": selectors.strategy_list(organization=org).count(),
    })


# --- market data -------------------------------------------------------------------------------

def bar_label(seconds: int) -> str:
    """A bar interval as people say it: 60 → "1 min", 86400 → "1 day"."""
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''}"
    return f"{seconds} s"


def _datasets_page(request: HttpRequest, caller: Caller, *, import_form=None,
                   generate_form=None, report=None, status: int = 200) -> HttpResponse:
    org = caller.organization
    return _page(request, "trading/datasets.html", caller, {
        "section": "marketdata",
        "breadcrumbs": _crumbs(caller, ("Market data", "")),
        "datasets": [setattr(d, "bar_label", bar_label(d.bar_seconds)) or d
                     for d in selectors.dataset_list(organization=org)],
        "instruments": selectors.instrument_list(organization=org)[:200],
        "import_form": import_form or forms.DatasetImportForm(),
        "generate_form": generate_form or forms.DatasetGenerateForm(),
        "report": report,
    }, status=status)


@login_required
def datasets(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "market_data:read")
    return _datasets_page(request, caller)


@login_required
@require_POST
def dataset_import(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "market_data:write")
    form = forms.DatasetImportForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            dataset, report = marketdata_services.dataset_import(
                organization=caller.organization, actor=request.user, name=data["name"],
                upload=data["file"], symbol=data["symbol"] or None,
                instrument_defaults={"asset_class": data["asset_class"],
                                     "calendar": data["calendar"]},
                request=request)
        except (ApplicationError, ValidationError) as error:
            _service_error(form, error)
        else:
            if dataset is not None:
                messages.success(request, f"Imported “{dataset.name}”: {dataset.rows} rows.")
                return redirect("trading:dataset", slug=slug, pk=dataset.pk)
            form.add_error("file", f"The file was rejected: {len(report['errors'])} bad "
                                   "row(s); nothing was imported.")
    return _datasets_page(request, caller, import_form=form, report=report, status=400)


@login_required
@require_POST
def dataset_generate(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "market_data:write")
    form = forms.DatasetGenerateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            dataset = marketdata_services.dataset_generate(
                organization=caller.organization, actor=request.user, name=data["name"],
                generator=data["generator"], n_bars=data["n_bars"], seed=data["seed"],
                request=request)
        except (ApplicationError, ValidationError) as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Generated “{dataset.name}”: {dataset.rows} rows.")
            return redirect("trading:dataset", slug=slug, pk=dataset.pk)
    return _datasets_page(request, caller, generate_form=form, status=400)


def candle_data(bars, symbol: str) -> dict[str, Any]:
    j = bars.symbols.index(symbol)
    return {"symbol": symbol, "x": _iso(bars.timestamps),
            "open": _finite(bars.open[:, j]), "high": _finite(bars.high[:, j]),
            "low": _finite(bars.low[:, j]), "close": _finite(bars.close[:, j]),
            "volume": _finite(bars.volume[:, j])}


@login_required
def dataset_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "market_data:read")
    dataset = selectors.dataset_list(organization=caller.organization).filter(pk=pk).first()
    if dataset is None:
        raise Http404("No such dataset.")
    symbols = sorted(i.symbol for i in dataset.instruments.all())
    symbol = request.GET.get("symbol") or (symbols[0] if symbols else "")
    if symbol not in symbols:
        raise Http404("No such symbol in this dataset.")
    start = None
    if dataset.end is not None:
        # Only the most recent bars: a chart of a million candles helps nobody.
        start = dataset.end - pd.Timedelta(seconds=dataset.bar_seconds * CANDLES)
    bars = selectors.dataset_bars(dataset=dataset, symbols=[symbol], start=start)
    report = (dataset.source_detail or {}).get("report")
    return _page(request, "trading/dataset_detail.html", caller, {
        "section": "marketdata",
        "breadcrumbs": _crumbs(caller, ("Market data", reverse("trading:datasets", args=[slug])),
                               (dataset.name, "")),
        "dataset": dataset, "symbols": symbols, "symbol": symbol,
        "candles": candle_data(bars, symbol) if bars.n_bars else None,
        "n_drawn": bars.n_bars, "report": report,
    })


# --- strategies --------------------------------------------------------------------------------

@login_required
def strategies(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "strategies:read")
    items = (selectors.strategy_list(organization=caller.organization)
             .prefetch_related("versions"))
    return _page(request, "trading/strategies.html", caller, {
        "section": "strategies",
        "breadcrumbs": _crumbs(caller, ("Strategies", "")),
        "strategies": items, "types": forms.strategy_types(),
    })


@login_required
def strategy_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "strategies:write")
    kind = request.GET.get("kind") or request.POST.get("kind") or ""
    info = forms.strategy_type(kind)
    if info is None:
        raise Http404("No such strategy type.")
    form = forms.StrategyCreateForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        version_data = form.version_data()
        try:
            # Validate the first version before anything is saved, so that a bad parameter
            # does not leave an empty strategy behind.
            strategy_services.version_validate(
                kind=kind, params=version_data["params"], rules_text=version_data["rules_text"],
                sizing=version_data["sizing"], costs=version_data["costs"])
            strategy = strategy_services.strategy_create(
                organization=caller.organization, actor=request.user,
                name=form.cleaned_data["name"], kind=kind,
                description=form.cleaned_data["description"], request=request)
            strategy_services.version_create(strategy=strategy, actor=request.user,
                                             note="First version", request=request,
                                             **version_data)
        except (ApplicationError, ValidationError) as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Strategy “{strategy.name}” created (version 1).")
            return redirect("trading:strategy", slug=slug, pk=strategy.pk)
    return _page(request, "trading/strategy_create.html", caller, {
        "section": "strategies",
        "breadcrumbs": _crumbs(caller, ("Strategies", reverse("trading:strategies", args=[slug])),
                               (f"New {kind.replace('_', ' ')} strategy", "")),
        "form": form, "kind": kind, "info": info, "rules_errors": _rules_errors(form),
    }, status=400 if form.errors else 200)


@login_required
def strategy_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "strategies:read")
    strategy = selectors.strategy_list(organization=caller.organization).filter(pk=pk).first()
    if strategy is None:
        raise Http404("No such strategy.")
    versions = list(selectors.strategy_version_list(organization=caller.organization,
                                                    strategy=strategy))
    latest = versions[0] if versions else None
    form = forms.VersionForm(request.POST or None, kind=strategy.kind, version=latest)
    if request.method == "POST":
        _require(caller, "strategies:write")
        if form.is_valid():
            try:
                version = strategy_services.version_create(
                    strategy=strategy, actor=request.user, note=form.cleaned_data["note"],
                    request=request, **form.version_data())
            except (ApplicationError, ValidationError) as error:
                _service_error(form, error)
            else:
                messages.success(request, f"Version {version.number} saved.")
                return redirect("trading:strategy", slug=slug, pk=strategy.pk)
    return _page(request, "trading/strategy_detail.html", caller, {
        "section": "strategies",
        "breadcrumbs": _crumbs(caller, ("Strategies", reverse("trading:strategies", args=[slug])),
                               (strategy.name, "")),
        "strategy": strategy, "versions": versions, "form": form,
        "info": forms.strategy_type(strategy.kind), "rules_errors": _rules_errors(form),
    }, status=400 if form.errors else 200)


def rules_feedback(text: str) -> list[dict[str, Any]]:
    """Each rules error with the offending line and a caret under the bad token's column."""
    lines = text.splitlines()
    out = []
    for error in validate_rules(text):
        source = lines[error.line - 1] if 0 < error.line <= len(lines) else ""
        out.append({"line": error.line, "column": error.column, "message": error.message,
                    "source": source, "pad": " " * max(0, error.column - 1)})
    return out


def _rules_errors(form) -> list[dict[str, Any]]:
    """The rules editor's errors at their tokens, when the submitted rules were refused."""
    if "rules_text" not in form.fields or not form.errors.get("rules_text"):
        return []
    return rules_feedback(form.data.get("rules_text", ""))


@login_required
@require_POST
def rules_validate(request: HttpRequest, slug: str) -> HttpResponse:
    """The rules editor's live check (htmx): the errors of the posted text, at their tokens."""
    caller = _caller(request, slug)
    _require(caller, "strategies:read")
    text = request.POST.get("rules_text", "")
    return render(request, "trading/partials/rules_feedback.html", {
        "errors": rules_feedback(text) if text.strip() else [], "empty": not text.strip()})


# --- simulations -------------------------------------------------------------------------------

@login_required
def simulations(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:read")
    qs = selectors.simulation_list(organization=caller.organization)
    wanted = request.GET.get("status", "")
    if wanted in RunStatus.values:
        qs = qs.filter(status=wanted)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return _page(request, "trading/simulations.html", caller, {
        "section": "simulations",
        "breadcrumbs": _crumbs(caller, ("Simulations", "")),
        "page": page, "status": wanted, "statuses": RunStatus.choices,
    })


def _version_for_run(form: forms.SimulationForm, actor, request):
    """The version to run: the chosen one, or a new version of it when the form changes its
    costs or sizing (versions are immutable, so what ran is always on record)."""
    version = form.cleaned_data["strategy_version"]
    data = form.cleaned_data
    costs = dict(version.costs or {})
    sizing = dict(version.sizing or {})
    for name in ("commission_bps", "slippage_bps"):
        if data.get(name) is not None:
            costs[name] = data[name]
    if data.get("sizing_mode"):
        sizing = {"mode": data["sizing_mode"], "value": data.get("sizing_value") or 1.0}
    if costs == (version.costs or {}) and sizing == (version.sizing or {}):
        return version
    return strategy_services.version_create(
        strategy=version.strategy, actor=actor, params=version.params,
        universe=version.universe, sizing=sizing, costs=costs, rules_text=version.rules_text,
        note=f"v{version.number} with the costs and sizing of a simulation", request=request)


def _period(value, end: bool = False):
    if value is None:
        return None
    moment = pd.Timestamp(value, tz="UTC")
    if end:
        moment = moment + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return moment.to_pydatetime()


@login_required
def simulation_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:write")
    org = caller.organization
    versions = selectors.strategy_version_list(organization=org).order_by(
        "strategy__name", "-number")
    datasets_qs = selectors.dataset_list(organization=org)
    initial = {}
    if request.GET.get("version"):
        initial["strategy_version"] = request.GET["version"]
    if request.GET.get("dataset"):
        initial["dataset"] = request.GET["dataset"]
    form = forms.SimulationForm(request.POST or None, initial=initial, versions=versions,
                                datasets=datasets_qs)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        config = {"cash": data["cash"]}
        if data.get("allow_short"):
            config["allow_short"] = True
        try:
            # One transaction: a run refused (too large, too many queued) leaves no new version.
            with transaction.atomic():
                version = _version_for_run(form, request.user, request)
                sim = simulation_services.simulation_create(
                    organization=org, actor=request.user, strategy_version=version,
                    dataset=data["dataset"], period_start=_period(data.get("period_start")),
                    period_end=_period(data.get("period_end"), end=True), config=config,
                    request=request)
        except (ApplicationError, ValidationError) as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Simulation #{sim.pk} queued.")
            return redirect("trading:simulation", slug=slug, pk=sim.pk)
    return _page(request, "trading/simulation_create.html", caller, {
        "section": "simulations",
        "breadcrumbs": _crumbs(caller, ("Simulations", reverse("trading:simulations",
                                                               args=[slug])), ("New", "")),
        "form": form, "has_versions": versions.exists(), "has_datasets": datasets_qs.exists(),
    }, status=400 if form.errors else 200)


def _trades_context(request: HttpRequest, sim: Simulation) -> dict[str, Any]:
    sort = request.GET.get("sort", "index")
    field = sort.lstrip("-")
    if field not in TRADE_SORTS:
        sort, field = "index", "index"
    qs = selectors.simulation_trades(simulation=sim).order_by(sort, "index")
    page = Paginator(qs, TRADES_PAGE_SIZE).get_page(request.GET.get("page"))
    columns = [(name, TRADE_LABELS.get(name, name.replace("_", " ").capitalize()),
                f"-{name}" if sort == name else name,
                "ascending" if sort == name else "descending" if sort == f"-{name}" else "")
               for name in TRADE_SORTS]
    return {"trades": page, "sort": sort, "columns": columns}


def equity_charts(sim: Simulation) -> dict[str, Any]:
    """Equity and drawdown (downsampled for the screen, computed on every point) and the
    monthly returns heatmap of a finished run."""
    ts, eq = selectors.simulation_equity(simulation=sim)
    drawdown = engine_metrics.drawdown_series(eq)
    ts_eq, eq_s = packing.downsample(ts, eq, CHART_POINTS)
    ts_dd, dd_s = packing.downsample(ts, drawdown, CHART_POINTS)
    table = engine_metrics.monthly_returns_table(eq, ts)
    years = sorted(table)
    z = [[None if v is None else round(float(v) * 100, 2) for v in table[y][:12]] for y in years]
    text = [["" if v is None else f"{v:.1f}%" for v in row] for row in z]
    return {
        "equity": {"x": _iso(ts_eq), "y": _finite(eq_s), "name": "Equity"},
        "drawdown": {"x": _iso(ts_dd), "y": _finite(dd_s), "name": "Drawdown",
                     "fill": "tozeroy", "color": "--down", "tickformat": ".1%"},
        "heatmap": {"years": [str(y) for y in years], "months": list(MONTHS), "z": z,
                    "text": text},
    }


def format_metric(value: Any, kind: str) -> str:
    """A metric as a person reads it: 0.1234 as "12.34%" for fractions, "—" when undefined."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def metric_rows(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    values = values or {}
    rows = []
    for key, (label, kind) in METRIC_LABELS.items():
        if key in values:
            rows.append({"key": key, "label": label, "value": values[key],
                         "display": format_metric(values[key], kind)})
    return rows


def _live_equity(sim: Simulation) -> dict[str, Any]:
    """The equity points a running simulation has reported so far (from its event log)."""
    points = [(e.payload.get("bar"), e.payload.get("equity"))
              for e in selectors.simulation_events(simulation=sim).filter(
                  type="simulation.progress")
              if e.payload.get("equity") is not None]
    return {"x": [p[0] for p in points], "y": [p[1] for p in points], "name": "Equity",
            "ytitle": "Equity"}


def _results_context(request: HttpRequest, sim: Simulation) -> dict[str, Any]:
    context: dict[str, Any] = {"sim": sim}
    if sim.status == RunStatus.SUCCEEDED:
        summary = sim.result.summary or {}
        context.update(equity_charts(sim))
        context.update(_trades_context(request, sim))
        context["metric_rows"] = metric_rows(sim.metrics)
        context["rejections"] = summary.get("rejections", [])[:500]
        context["n_rejections"] = len(summary.get("rejections", []))
    elif sim.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        context["live_equity"] = _live_equity(sim)
    return context


@login_required
def simulation_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:read")
    sim = _simulation(caller, pk)
    return _page(request, "trading/simulation_detail.html", caller, {
        "section": "simulations",
        "breadcrumbs": _crumbs(caller, ("Simulations", reverse("trading:simulations",
                                                               args=[slug])),
                               (f"#{sim.pk}", "")),
        **_results_context(request, sim),
    })


@login_required
def simulation_results(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The results panel alone: swapped in (htmx) when a watched run finishes."""
    caller = _caller(request, slug)
    _require(caller, "simulations:read")
    sim = _simulation(caller, pk)
    return _page(request, "trading/partials/simulation_results.html", caller,
                 _results_context(request, sim))


@login_required
def simulation_trades(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One page of the trades table (htmx sorting and paging; a full page without htmx)."""
    caller = _caller(request, slug)
    _require(caller, "simulations:read")
    sim = _simulation(caller, pk)
    if sim.status != RunStatus.SUCCEEDED:
        raise Http404("This simulation has no trades.")
    if not request.htmx:
        query = request.GET.urlencode()
        return redirect(reverse("trading:simulation", args=[slug, pk]) + f"?{query}#trades")
    return _page(request, "trading/partials/trades_table.html", caller,
                 {"sim": sim, **_trades_context(request, sim)})


@login_required
@require_POST
def simulation_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:write")
    sim = _simulation(caller, pk)
    try:
        simulation_services.simulation_cancel(simulation=sim, actor=request.user, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Cancellation of simulation #{sim.pk} requested.")
    return redirect("trading:simulation", slug=slug, pk=pk)


@login_required
@require_POST
def simulation_rerun(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:write")
    sim = _simulation(caller, pk)
    try:
        new = simulation_services.simulation_rerun(simulation=sim, actor=request.user,
                                                   request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("trading:simulation", slug=slug, pk=pk)
    messages.success(request, f"Simulation #{new.pk} queued (a re-run of #{sim.pk}).")
    return redirect("trading:simulation", slug=slug, pk=new.pk)


def _parse_ids(values: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for raw in values:
        for part in raw.split(","):
            part = part.strip()
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids[:8]


@login_required
def simulation_compare(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "simulations:read")
    qs = selectors.simulation_list(organization=caller.organization).filter(
        status=RunStatus.SUCCEEDED)
    ids = _parse_ids(request.GET.getlist("ids"))
    chosen = {sim.pk: sim for sim in qs.filter(pk__in=ids).select_related("result")}
    runs = [chosen[i] for i in ids if i in chosen]
    keys = [k for k in METRIC_LABELS if any(k in (s.metrics or {}) for s in runs)]
    table = [{"label": METRIC_LABELS[k][0],
              "values": [format_metric((s.metrics or {}).get(k), METRIC_LABELS[k][1])
                         for s in runs]} for k in keys]
    series = []
    for sim in runs:
        ts, eq = selectors.simulation_equity(simulation=sim, points=CHART_POINTS)
        start = float(eq[0]) if len(eq) and eq[0] else 1.0
        series.append({"x": _iso(ts), "y": _finite(eq / start),
                       "name": f"#{sim.pk} {sim.strategy_version}"})
    return _page(request, "trading/simulation_compare.html", caller, {
        "section": "simulations",
        "breadcrumbs": _crumbs(caller, ("Simulations", reverse("trading:simulations",
                                                               args=[slug])), ("Compare", "")),
        "runs": runs, "table": table, "candidates": qs[:30], "ids": ids,
        "chart": {"series": series, "ytitle": "Growth of 1"} if series else None,
        "now": timezone.now(),
    })

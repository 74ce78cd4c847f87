"""Portal pages of analyses: the list, a create form per kind and the detail page with results.

An analysis (parameter sweep, walk-forward, Monte Carlo) is a Celery job fanned out over
children (`trading.services.analyses`). The detail page follows its progress over the
organisation WebSocket (``nexow/analysis.js``) and, when it finishes, swaps in the results panel
(the same URL asked by htmx). Chart data is computed from the stored aggregate and children by
`trading.analysis_charts` and handed to the page with ``json_script``. Reading needs
`simulations:read`; starting an analysis `simulations:write`. Another organisation's analysis is a
404.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.portal import member_or_404, require_scope
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError
from trading import analysis_charts as charts
from trading import forms_analyses as forms
from trading import selectors
from trading.models import FINISHED, Analysis, AnalysisChild, AnalysisKind, RunStatus
from trading.services import analyses as analysis_services
from trading.services import results as packing
from trading.services.strategies import backtest_config
from trading.views import METRIC_LABELS, _crumbs, _page, format_metric, metric_rows

CHART_POINTS = 2000
PAGE_SIZE = 25
SWEEP_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades")
KIND_FORMS = {AnalysisKind.SWEEP: forms.SweepForm, AnalysisKind.WALK_FORWARD: forms.WalkForwardForm}


# --- helpers -------------------------------------------------------------------------------------

def _iso(ns) -> list[str]:
    return pd.to_datetime(np.asarray(ns, dtype=np.int64), utc=True).strftime(
        "%Y-%m-%dT%H:%M:%SZ").tolist()


def _rounded(values) -> list[float | None]:
    return [None if v is None or not np.isfinite(v) else round(float(v), 6) for v in values]


def last_seq(analysis: Analysis) -> int:
    """The sequence number of the analysis' latest event, as `_notify` numbers them: one per
    finished child, and one more for the final event."""
    return analysis.n_done + analysis.n_failed + (1 if analysis.status in FINISHED else 0)


def _analyses(caller: Caller):
    return selectors.analysis_list(organization=caller.organization).select_related(
        "strategy_version__strategy", "dataset", "simulation")


def _analysis(caller: Caller, pk: int) -> Analysis:
    analysis = _analyses(caller).select_related("created_by").filter(pk=pk).first()
    if analysis is None:
        raise Http404("No such analysis.")
    return analysis


def _objective_display(value: Any, objective: str) -> str:
    return format_metric(value, METRIC_LABELS.get(objective, ("", "num"))[1])


def _children(analysis: Analysis) -> list[AnalysisChild]:
    # The analysis was reached through the organisation's selector: its children are its own.
    return list(AnalysisChild.objects.filter(analysis=analysis).order_by("index"))


# --- list ----------------------------------------------------------------------------------------

@login_required
def analyses(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "simulations:read")
    qs = _analyses(caller)
    wanted = request.GET.get("kind", "")
    if wanted in AnalysisKind.values:
        qs = qs.filter(kind=wanted)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    for analysis in page.object_list:
        analysis.last_seq = last_seq(analysis)
    return _page(request, "trading/analyses.html", caller, {
        "section": "analyses",
        "breadcrumbs": _crumbs(caller, ("Analyses", "")),
        "page": page, "kind": wanted, "kinds": AnalysisKind.choices,
    })


# --- create --------------------------------------------------------------------------------------

def _create_search(request: HttpRequest, caller: Caller, kind: str) -> tuple[Any, Any, dict]:
    org = caller.organization
    versions = selectors.strategy_version_list(organization=org).order_by(
        "strategy__name", "-number")
    chosen = request.POST.get("strategy_version") or request.GET.get("version")
    if chosen:
        version = versions.filter(pk=chosen).first() if str(chosen).isdigit() else None
        if version is None:
            raise Http404("No such strategy version.")
    else:
        version = versions.first()
    datasets = selectors.dataset_list(organization=org)
    extra = {"versions": versions, "version": version, "has_datasets": datasets.exists()}
    if version is None or not extra["has_datasets"]:
        return None, None, extra
    initial = {"dataset": request.GET["dataset"]} if request.GET.get("dataset") else {}
    form = KIND_FORMS[kind](request.POST or None, version=version, datasets=datasets,
                            initial=initial)
    return form, {"strategy_version": version}, extra


def _create_monte_carlo(request: HttpRequest, caller: Caller) -> tuple[Any, Any, dict]:
    sims = selectors.simulation_list(organization=caller.organization).filter(
        status=RunStatus.SUCCEEDED)
    extra = {"has_simulations": sims.exists()}
    if not extra["has_simulations"]:
        return None, None, extra
    initial = {"simulation": request.GET["simulation"]} if request.GET.get("simulation") else {}
    return forms.MonteCarloForm(request.POST or None, simulations=sims, initial=initial), {}, extra


@login_required
def analysis_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "simulations:write")
    kind = request.POST.get("kind") or request.GET.get("kind") or AnalysisKind.SWEEP
    if kind not in AnalysisKind.values:
        raise Http404("No such analysis kind.")
    if kind == AnalysisKind.MONTE_CARLO:
        form, targets, extra = _create_monte_carlo(request, caller)
    else:
        form, targets, extra = _create_search(request, caller, kind)
    if request.method == "POST" and form is not None and form.is_valid():
        spec = form.spec()  # may add errors of its own (a range given by one end)
        if not form.errors:
            data = form.cleaned_data
            try:
                analysis = analysis_services.analysis_create(
                    organization=caller.organization, actor=request.user, kind=kind, spec=spec,
                    dataset=data.get("dataset"), simulation=data.get("simulation"),
                    request=request, **targets)
            except (ApplicationError, ValidationError) as error:
                if isinstance(error, ValidationError):
                    form.add_error(None, error.messages)
                else:
                    forms.add_service_error(form, error)
            else:
                messages.success(request, f"{analysis.get_kind_display()} #{analysis.pk} "
                                          f"started: {analysis.n_children} jobs.")
                return redirect("trading:analysis", slug=slug, pk=analysis.pk)
    label = AnalysisKind(kind).label
    return _page(request, "trading/analysis_create.html", caller, {
        "section": "analyses",
        "breadcrumbs": _crumbs(caller, ("Analyses", reverse("trading:analyses", args=[slug])),
                               (f"New {label.lower()}", "")),
        "kind": kind, "kind_label": label, "kinds": AnalysisKind.choices, "form": form, **extra,
    }, status=400 if form is not None and form.errors else 200)


# --- detail --------------------------------------------------------------------------------------

def sweep_context(analysis: Analysis, children: list[AnalysisChild]) -> dict[str, Any]:
    """The ranked table of parameter sets and the heatmaps of the objective."""
    result, spec = analysis.result or {}, analysis.spec
    objective, maximize = result.get("objective", spec.get("objective")), bool(
        result.get("maximize", spec.get("maximize", True)))
    names = list(spec.get("space") or {})
    metrics = {c.index: (c.result or {}).get("metrics") or {} for c in children}
    best = result.get("best_params")
    rows, best_marked = [], False
    for trial in result.get("trials", []):
        params = trial.get("params") or {}
        is_best = not best_marked and best is not None and params == best
        best_marked = best_marked or is_best
        m = metrics.get(trial["index"], {})
        rows.append({
            "index": trial["index"], "best": is_best, "error": trial.get("error"),
            "params": [params.get(n) for n in names], "value": trial.get("value"),
            "value_display": _objective_display(trial.get("value"), objective),
            "metrics": [{"value": m.get(k),
                         "display": format_metric(m.get(k), METRIC_LABELS[k][1])}
                        for k in SWEEP_METRICS],
        })
    sign = 1 if maximize else -1
    rows.sort(key=lambda r: (r["value"] is None, -sign * (r["value"] or 0), r["index"]))
    trials = result.get("trials", [])
    swept = charts.swept_parameters(trials)
    grids = charts.sweep_grids(trials, maximize=maximize)
    for grid in grids:
        if best is not None:
            grid["best"] = [best.get(grid["x"]), best.get(grid["y"])]
        grid["title"] = METRIC_LABELS.get(objective, (objective,))[0]
    line = None
    if len(swept) == 1:
        line = charts.sweep_line(trials, swept[0], maximize=maximize)
    return {
        "objective": objective, "objective_label": METRIC_LABELS.get(objective, (objective,))[0],
        "maximize": maximize, "param_names": names,
        "metric_labels": [METRIC_LABELS[k][0] for k in SWEEP_METRICS],
        "rows": rows, "best_params": best,
        "best_display": _objective_display(result.get("best_value"), objective),
        "best_metric_rows": metric_rows(result.get("best_metrics")),
        "heatmap": {"grids": grids, "maximize": maximize} if grids else None,
        "sweep_line": line, "swept": swept,
    }


def walk_forward_context(analysis: Analysis, children: list[AnalysisChild]) -> dict[str, Any]:
    """The stitched out-of-sample equity with its window boundaries, and the windows table."""
    result, spec = analysis.result or {}, analysis.spec
    objective = result.get("objective", spec.get("objective"))
    by_window = {c.index: c.result for c in children if c.result is not None}
    cash = backtest_config(analysis.strategy_version, spec.get("config") or {}).cash
    equity, ts, bounds = charts.walk_forward_curve(
        [by_window[i] for i in sorted(by_window)], cash)
    chart = None
    if len(equity):
        ts_s, eq_s = packing.downsample(ts, equity, CHART_POINTS)
        chart = {"x": _iso(ts_s), "y": _rounded(eq_s), "boundaries": _iso(bounds),
                 "labels": [f"W{i + 1}" for i in range(len(bounds))]}
    windows = []
    for w in result.get("windows", []):
        child = by_window.get(w["window"]) or {}
        stamps = child.get("timestamps") or []
        windows.append({
            "number": w["window"] + 1, "train": w["train"], "test": w["test"],
            "test_start": _iso(stamps[1:2])[0] if len(stamps) > 1 else "",
            "test_end": _iso(stamps[-1:])[0] if stamps else "",
            "params": w.get("best_params"),
            "in_sample": _objective_display(w.get("in_sample"), objective),
            "out_of_sample": _objective_display(w.get("out_of_sample"), objective),
        })
    return {
        "objective": objective, "objective_label": METRIC_LABELS.get(objective, (objective,))[0],
        "wf_chart": chart, "windows": windows, "wf_metric_rows": metric_rows(result.get("metrics")),
        "mean_in_sample": _objective_display(result.get("mean_in_sample"), objective),
        "mean_out_of_sample": _objective_display(result.get("mean_out_of_sample"), objective),
    }


def monte_carlo_context(analysis: Analysis, children: list[AnalysisChild]) -> dict[str, Any]:
    result = analysis.result or {}
    finals = np.concatenate([np.asarray(c.result["final_return"]) for c in children
                             if c.result] or [np.empty(0)])
    dds = np.concatenate([np.asarray(c.result["max_drawdown"]) for c in children
                          if c.result] or [np.empty(0)])
    table = []
    for key, label in (("final_return", "Final return"), ("max_drawdown", "Max drawdown")):
        summary = result.get(key) or {}
        table.append({"label": label, "cells": [
            format_metric(summary.get(p), "pct")
            for p in ("p5", "p25", "p50", "p75", "p95", "mean", "actual")],
            "actual_percentile": summary.get("actual_percentile")})
    final_hist, dd_hist = charts.histogram(finals), charts.histogram(dds)
    return {
        # Drawn by the aggregate step in the worker (`analyses._monte_carlo_fan`), never here.
        "fan": result.get("fan"),
        "final_hist": {**final_hist, "name": "Final return", "tickformat": ".0%",
                       "actual": (result.get("final_return") or {}).get("actual")},
        "dd_hist": {**dd_hist, "name": "Max drawdown", "tickformat": ".0%",
                    "actual": (result.get("max_drawdown") or {}).get("actual")},
        "mc_table": table,
        "probability_of_loss": format_metric(result.get("probability_of_loss"), "pct"),
        "n_paths": result.get("n_sims"),
    }


_KIND_CONTEXT = {AnalysisKind.SWEEP: sweep_context,
                 AnalysisKind.WALK_FORWARD: walk_forward_context,
                 AnalysisKind.MONTE_CARLO: monte_carlo_context}


def results_context(analysis: Analysis) -> dict[str, Any]:
    context: dict[str, Any] = {"analysis": analysis, "last_seq": last_seq(analysis)}
    if analysis.status in FINISHED:
        context["failed_children"] = (analysis.result or {}).get("failed_children", [])
    else:
        context["failed_children"] = list(
            AnalysisChild.objects.filter(analysis=analysis, status=RunStatus.FAILED)
            .order_by("index").values("index", "error"))
    if analysis.status == RunStatus.SUCCEEDED:
        context.update(_KIND_CONTEXT[analysis.kind](analysis, _children(analysis)))
    return context


def space_display(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The swept parameters as people read them: "5, 10, 20" or "5 to 50" (a random range)."""
    out = []
    for name, values in (spec.get("space") or {}).items():
        if isinstance(values, dict):
            out.append((name, f"{values.get('low')} to {values.get('high')}"))
        else:
            out.append((name, ", ".join(str(v) for v in values)))
    return out


@login_required
def analysis_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = member_or_404(request, slug)
    require_scope(caller, "simulations:read")
    analysis = _analysis(caller, pk)
    if request.htmx:  # the results panel alone, swapped in when the analysis finishes
        return _page(request, "trading/partials/analysis_results.html", caller,
                     results_context(analysis))
    return _page(request, "trading/analysis_detail.html", caller, {
        "section": "analyses",
        "breadcrumbs": _crumbs(caller, ("Analyses", reverse("trading:analyses", args=[slug])),
                               (f"#{analysis.pk}", "")),
        "space": space_display(analysis.spec),
        **results_context(analysis),
    })

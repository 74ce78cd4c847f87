"""Analyses as jobs: parameter sweeps, walk-forward and Monte Carlo fanned out over Celery.

An analysis has N children — one per parameter set (sweep), per window (walk-forward) or per batch
of paths (Monte Carlo). The children go through the organisation's fair-share dispatcher
(`trading.services.simulations`) like simulations: at most ``NEXOW_SIM_MAX_RUNNING_PER_ORG`` of the
organisation's runs are with the broker at once, so a 200-child sweep never fills the queue ahead
of another organisation's runs. A child's `AnalysisChild` row (unique on analysis and index) is
written when it is handed to the broker: ``queued`` (``finished_at`` = the hand-off), ``running``
(``finished_at`` = its heartbeat, ``result = {"attempts": n}`` while in flight), then ``succeeded``
or ``failed`` with its result — stored once by a conditional update, so a re-delivered child stores
nothing twice. The child that completes the set enqueues the aggregate step (a database-counted
join: the platform keeps no Celery result backend, see DESIGN.md), and each finished child admits
the organisation's next queued run. Children that fail are reported in the result; the analysis
fails only when all of them fail. The sweeper (`analysis_sweep_stale`) re-sends children whose
worker died or whose message was lost, and aggregates that never ran.

The children call the engine's own module-level pieces (`run_trial`, `optimize`, the Monte Carlo
chunk functions with the engine's seed spawning), so a fanned-out analysis gives the same numbers
as the engine's in-process `optimize` / `monte_carlo`.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, User
from nexow_site.errors import ApplicationError
from nexow_site.realtime import broadcast, org_group
from trading.engine import analyses as engine_analyses
from trading.engine.fingerprint import clean
from trading.engine.metrics import compute_metrics, max_drawdown_info, periods_per_year
from trading.engine.types import MetricInputs
from trading.marketdata import bars_load
from trading.models import (
    FINISHED,
    Analysis,
    AnalysisChild,
    AnalysisKind,
    Bar,
    Dataset,
    RunStatus,
    Simulation,
    SimulationTrade,
    StrategyVersion,
)
from trading.services import results as packing
from trading.services.limits import limit
from trading.services.simulations import (
    ACTIVE,
    Heartbeat,
    _default_calendar,
    _dispatch_locked,
    _enqueue_children,
    _instruments,
    _lock_org,
)
from trading.services.strategies import backtest_config, config_validate, engine_params

logger = logging.getLogger("nexow.trading.analyses")

TRANSIENT = (OperationalError, InterfaceError)
MAX_MC_SIMS = 200_000
_BARS_CACHE: dict[tuple, Any] = {}  # per worker process: children of one analysis share bars


# --- create ------------------------------------------------------------------------------------

def _space(spec: dict[str, Any]) -> dict[str, Any]:
    space = spec.get("space")
    if not isinstance(space, dict) or not space:
        raise ApplicationError("A parameter space is required.",
                               fields={"spec.space": ["An object of parameter → values."]})
    out: dict[str, Any] = {}
    for name, values in space.items():
        if isinstance(values, dict) and {"low", "high"} <= set(values):
            out[name] = (values["low"], values["high"])
        elif isinstance(values, list) and values:
            out[name] = values
        else:
            raise ApplicationError("Invalid parameter space.",
                                   fields={f"spec.space.{name}": [
                                       "A non-empty list, or {\"low\", \"high\"}."]})
    return out


def _n_bars(dataset: Dataset, version: StrategyVersion) -> int:
    instruments = _instruments(dataset, version)
    return Bar.objects.filter(dataset=dataset, instrument=instruments[0]).count()


def _prepare(kind: str, spec: dict[str, Any], strategy_version: StrategyVersion | None,
             dataset: Dataset | None, simulation: Simulation | None):
    """The normalised spec and number of children of a new analysis (raises on bad input)."""
    if kind not in AnalysisKind.values:
        raise ApplicationError("Unknown analysis kind.", fields={"kind": [
            f"One of: {', '.join(AnalysisKind.values)}."]})
    spec["config"] = config_validate(spec.get("config"))
    if kind in (AnalysisKind.SWEEP, AnalysisKind.WALK_FORWARD):
        if strategy_version is None or dataset is None:
            raise ApplicationError("A strategy version and a dataset are required.", fields={
                "strategy_version": ["Required."], "dataset": ["Required."]})
        space = _space(spec)
        method = spec.setdefault("method", "grid")
        seed = spec["seed"] = int(spec.get("seed", 0))
        n_samples = int(spec.setdefault("n_samples", 20))
        max_children = limit("NEXOW_ANALYSIS_MAX_CHILDREN")
        grid_size = math.prod(len(v) if isinstance(v, list) else 1 for v in space.values())
        if (method == "grid" and grid_size > max_children) or not 1 <= n_samples <= max_children:
            raise ApplicationError(
                f"At most {max_children} parameter sets per analysis.",
                fields={"spec.space": [f"At most {max_children} combinations."]})
        try:
            candidates = engine_analyses._candidates(strategy_version.strategy.kind, space,
                                                     method, n_samples, seed)
        except ValueError as exc:
            raise ApplicationError(str(exc), fields={"spec.method": [str(exc)]}) from exc
        spec.setdefault("objective", "sharpe")
        spec.setdefault("maximize", True)
        if kind == AnalysisKind.SWEEP:
            spec["candidates"] = candidates
            n_children = len(candidates)
        else:
            try:
                windows = engine_analyses.walk_forward_windows(
                    _n_bars(dataset, strategy_version), n_windows=int(spec.get("n_windows", 5)),
                    train_bars=spec.get("train_bars"), test_bars=spec.get("test_bars"),
                    anchored=bool(spec.get("anchored", False)))
            except ValueError as exc:
                raise ApplicationError(str(exc), fields={"spec": [str(exc)]}) from exc
            spec["windows"] = windows
            n_children = len(windows)
    else:
        if simulation is None or simulation.status != RunStatus.SUCCEEDED:
            raise ApplicationError("A Monte Carlo analysis needs a succeeded simulation.",
                                   fields={"simulation": ["A succeeded simulation is required."]})
        spec.setdefault("method", "returns")
        if spec["method"] not in ("returns", "trades"):
            raise ApplicationError("Unknown Monte Carlo method.",
                                   fields={"spec.method": ["'returns' or 'trades'."]})
        spec["n_sims"] = int(spec.get("n_sims", 1000))
        spec["n_chunks"] = int(spec.get("n_chunks", 8))
        spec["seed"] = int(spec.get("seed", 0))
        if spec["seed"] < 0:
            raise ApplicationError("seed must be >= 0.", fields={"spec.seed": [">= 0."]})
        if not 1 <= spec["n_sims"] <= MAX_MC_SIMS:
            raise ApplicationError(f"n_sims must be between 1 and {MAX_MC_SIMS}.",
                                   fields={"spec.n_sims": [f"Between 1 and {MAX_MC_SIMS}."]})
        if not 1 <= spec["n_chunks"] <= spec["n_sims"]:
            raise ApplicationError("n_chunks must be between 1 and n_sims.",
                                   fields={"spec.n_chunks": ["Between 1 and n_sims."]})
        n_children = spec["n_chunks"]
        strategy_version, dataset = simulation.strategy_version, simulation.dataset
    if not 1 <= n_children <= limit("NEXOW_ANALYSIS_MAX_CHILDREN"):
        raise ApplicationError(
            f"The analysis would run {n_children} children; between 1 and "
            f"{limit('NEXOW_ANALYSIS_MAX_CHILDREN')} are allowed.",
            fields={"spec": ["Too many (or no) children."]})
    return spec, n_children, strategy_version, dataset


def analysis_create(*, organization: Organization, actor: User | None, kind: str,
                    spec: dict[str, Any], strategy_version: StrategyVersion | None = None,
                    dataset: Dataset | None = None, simulation: Simulation | None = None,
                    request=None) -> Analysis:
    try:
        spec, n_children, strategy_version, dataset = _prepare(
            kind, dict(spec or {}), strategy_version, dataset, simulation)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ApplicationError(f"Invalid analysis spec: {exc}", fields={"spec": [str(exc)]}) \
            from exc
    with transaction.atomic():
        _lock_org(organization.pk)
        analysis = Analysis.objects.create(
            organization=organization, kind=kind, strategy_version=strategy_version,
            dataset=dataset, simulation=simulation, spec=clean(spec), n_children=n_children,
            created_by=actor)
        audit_record(organization=organization, actor=actor, action="analysis.created",
                     target=analysis, request=request,
                     metadata={"kind": kind, "children": n_children})
        # The first children go to the broker now (as many as the organisation has free slots);
        # each finished child admits the next.
        _dispatch_locked(organization.pk)
    return analysis


# --- children ----------------------------------------------------------------------------------

def _bars(analysis: Analysis):
    # Datasets and versions never change; the creation times guard against a reused id.
    key = (analysis.dataset_id, analysis.dataset.created_at, analysis.strategy_version_id,
           analysis.strategy_version.created_at)
    if key not in _BARS_CACHE:
        _BARS_CACHE.clear()
        instruments = _instruments(analysis.dataset, analysis.strategy_version)
        _BARS_CACHE[key] = (bars_load(dataset=analysis.dataset, instruments=instruments),
                            _default_calendar(instruments))
    return _BARS_CACHE[key]


def _child_sweep(analysis: Analysis, index: int) -> dict[str, Any]:
    bars, calendar = _bars(analysis)
    version = analysis.strategy_version
    params = {**engine_params(version), **analysis.spec["candidates"][index]}
    config = backtest_config(version, analysis.spec["config"], calendar)
    out = engine_analyses.run_trial(engine_analyses.Trial(version.strategy.kind, params, bars,
                                                          config))
    return {"params": analysis.spec["candidates"][index], "metrics": out["metrics"],
            "n_trades": out.get("n_trades"), "error": out["error"]}


def _child_walk_forward(analysis: Analysis, index: int) -> dict[str, Any]:
    bars, calendar = _bars(analysis)
    version, spec = analysis.strategy_version, analysis.spec
    config = backtest_config(version, spec["config"], calendar)
    trlo, trhi, telo, tehi = spec["windows"][index]
    fixed = engine_params(version)
    opt = engine_analyses.optimize(
        bars, version.strategy.kind, _space(spec), method=spec["method"],
        n_samples=int(spec["n_samples"]), objective=spec["objective"],
        maximize=bool(spec["maximize"]), config=config, seed=int(spec["seed"]), lo=trlo,
        hi=trhi, fixed=fixed)
    row: dict[str, Any] = {"window": index, "train": [trlo, trhi], "test": [telo, tehi],
                           "best_params": opt["best_params"], "in_sample": opt["best_value"],
                           "out_of_sample": None, "out_of_sample_metrics": None}
    if opt["best_params"] is not None:
        res = engine_analyses.run_trial(engine_analyses.Trial(
            version.strategy.kind, {**fixed, **opt["best_params"]}, bars, config, trlo, tehi,
            start=telo, keep_equity=True))
        row["out_of_sample_metrics"] = res["metrics"]
        row["out_of_sample"] = (res["metrics"] or {}).get(spec["objective"])
        row["equity"] = res["equity"].tolist()
        row["timestamps"] = res["timestamps"].tolist()
        row["trades"] = [t for t in res["trades"] if t["exit_bar"] is not None]
    return row


def _mc_inputs(analysis: Analysis) -> tuple[np.ndarray, np.ndarray]:
    result = analysis.simulation.result
    equity = packing.unpack(result.equity_blob, "<f8")
    pnl = np.array(list(SimulationTrade.objects.filter(simulation=analysis.simulation,
                                                       exit_time__isnull=False)
                        .order_by("index").values_list("pnl", flat=True)), dtype=np.float64)
    return equity, pnl


def _mc_sizes(spec: dict[str, Any]) -> list[int]:
    n, k = spec["n_sims"], spec["n_chunks"]
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _child_monte_carlo(analysis: Analysis, index: int) -> dict[str, Any]:
    spec = analysis.spec
    equity, pnl = _mc_inputs(analysis)
    # The engine's own seed spawning: chunk i gets stream i, whatever machine runs it.
    seeds = np.random.SeedSequence(int(spec["seed"])).spawn(spec["n_chunks"])
    size = _mc_sizes(spec)[index]
    if spec["method"] == "trades":
        if pnl.size < 2:
            raise ValueError("the trades Monte Carlo needs at least 2 closed trades")
        finals, dds = engine_analyses._mc_trades_chunk((pnl, float(equity[0]), size,
                                                        seeds[index]))
    else:
        r = equity[1:] / equity[:-1] - 1.0
        block = int(spec.get("block") or max(1, round(r.size ** (1 / 3))))
        finals, dds = engine_analyses._mc_returns_chunk((r, block, size, seeds[index]))
    return {"final_return": np.asarray(finals).tolist(), "max_drawdown": np.asarray(dds).tolist()}


_CHILD = {AnalysisKind.SWEEP: _child_sweep, AnalysisKind.WALK_FORWARD: _child_walk_forward,
          AnalysisKind.MONTE_CARLO: _child_monte_carlo}


def _notify(analysis: Analysis, type_: str, extra: dict[str, Any] | None = None) -> None:
    message = {"type": type_, "stream": f"analysis.{analysis.pk}", "analysis": analysis.pk,
               "seq": analysis.n_done + analysis.n_failed + (1 if type_ != "analysis.progress"
                                                               else 0),
               "progress": round(analysis.progress, 4), "done": analysis.n_done,
               "failed": analysis.n_failed, "total": analysis.n_children, **(extra or {})}
    transaction.on_commit(lambda: broadcast([org_group(analysis.organization_id)], message))


def _child_start(analysis_id: int, index: int) -> bool:
    """Mark child `index` running (creating its row if it was never dispatched, e.g. a message
    from before the fair-share dispatcher); False when it is already finished, or running
    elsewhere with a fresh heartbeat (a second delivery of its message: the broker's redelivery,
    or the sweeper's re-send of a message that was only slow)."""
    now = timezone.now()
    stale = now - timedelta(seconds=limit("NEXOW_SIM_STALE_SECONDS"))
    with transaction.atomic():
        child = (AnalysisChild.objects.select_for_update()
                 .filter(analysis_id=analysis_id, index=index).first())
        if child is None:
            AnalysisChild.objects.create(analysis_id=analysis_id, index=index,
                                         status=RunStatus.RUNNING, finished_at=now,
                                         result={"attempts": 1})
        elif child.status in FINISHED:
            return False
        elif child.status == RunStatus.RUNNING and child.finished_at is not None \
                and child.finished_at >= stale:
            return False
        else:
            child.status, child.finished_at = RunStatus.RUNNING, now
            child.result = {"attempts": int((child.result or {}).get("attempts", 0)) + 1}
            child.save(update_fields=["status", "finished_at", "result"])
        Analysis.objects.filter(pk=analysis_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now)
    return True


def _child_heartbeat(analysis_id: int, index: int) -> Heartbeat:
    return Heartbeat(f"analysis-{analysis_id}-{index}", lambda: AnalysisChild.objects.filter(
        analysis_id=analysis_id, index=index, status=RunStatus.RUNNING).update(
        finished_at=timezone.now()))


def _child_store(analysis: Analysis, index: int, status: str, result: Any, error: str) -> bool:
    """Store a child's outcome once, count it, notify, enqueue the aggregate when it is the
    last, and admit the organisation's next queued run — one transaction. False when another
    delivery stored it first."""
    with transaction.atomic():
        # Lock order everywhere: organisation, then analysis, then child rows.
        _lock_org(analysis.organization_id)
        locked = Analysis.objects.select_for_update(no_key=True).get(pk=analysis.pk)
        stored = (AnalysisChild.objects.filter(analysis_id=analysis.pk, index=index)
                  .exclude(status__in=FINISHED)
                  .update(status=status, result=result, error=error[:2000],
                          finished_at=timezone.now()))
        if not stored:
            return False
        counts = AnalysisChild.objects.filter(analysis_id=analysis.pk).aggregate(
            done=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("pk", filter=Q(status=RunStatus.FAILED)))
        locked.n_done, locked.n_failed = counts["done"], counts["failed"]
        locked.save(update_fields=["n_done", "n_failed"])
        _notify(locked, "analysis.progress")
        if locked.n_done + locked.n_failed >= locked.n_children:
            transaction.on_commit(lambda: _enqueue_aggregate(analysis.pk))
        _dispatch_locked(analysis.organization_id)
    return True


def analysis_child_execute(*, analysis_id: int, index: int) -> str:
    """Compute and store child `index` once; the last child enqueues the aggregate."""
    analysis = (Analysis.objects.select_related("strategy_version__strategy", "dataset",
                                                "simulation").filter(pk=analysis_id).first())
    if analysis is None or analysis.status in FINISHED:
        return "skipped"
    if not _child_start(analysis_id, index):
        return "skipped"
    status, result, error = RunStatus.SUCCEEDED, None, ""
    try:
        with _child_heartbeat(analysis_id, index):
            result = clean(_CHILD[analysis.kind](analysis, index))
    except TRANSIENT:
        raise  # the task retries with backoff
    except Exception as exc:  # noqa: BLE001 - a child's failure is reported, not fatal
        logger.warning("analysis %s child %s failed", analysis_id, index, exc_info=True)
        status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
    if not _child_store(analysis, index, status, result, error):
        return "skipped"  # another delivery of this child stored it first
    return status


def _enqueue_aggregate(analysis_id: int) -> None:
    from trading.tasks import analysis_aggregate

    analysis_aggregate.apply_async(args=[analysis_id])


# --- aggregate ---------------------------------------------------------------------------------

def _score(metrics: dict[str, Any] | None, objective: str, maximize: bool) -> float:
    return engine_analyses._score(metrics, objective, maximize)


def _aggregate_sweep(analysis: Analysis, rows: list[AnalysisChild]) -> dict[str, Any]:
    spec = analysis.spec
    trials = [{"index": c.index, **(c.result or {"params": spec["candidates"][c.index],
                                                 "metrics": None, "error": c.error})}
              for c in rows]
    ok = [t for t in trials if t.get("metrics")]
    best = max(ok, key=lambda t: _score(t["metrics"], spec["objective"], spec["maximize"]),
               default=None)
    if best is not None and _score(best["metrics"], spec["objective"], spec["maximize"]) == \
            -math.inf:
        best = None
    return {
        "objective": spec["objective"], "maximize": spec["maximize"], "n_trials": len(trials),
        "best_params": best["params"] if best else None,
        "best_value": best["metrics"][spec["objective"]] if best else None,
        "best_metrics": best["metrics"] if best else None,
        "trials": [{"index": t["index"], "params": t["params"],
                    "value": (t.get("metrics") or {}).get(spec["objective"]),
                    "n_trades": t.get("n_trades"), "error": t.get("error")} for t in trials],
    }


def _aggregate_walk_forward(analysis: Analysis, rows: list[AnalysisChild]) -> dict[str, Any]:
    spec = analysis.spec
    windows = [c.result for c in rows if c.result is not None]
    pieces = [w for w in windows if w.get("equity")]
    out: dict[str, Any] = {"objective": spec["objective"],
                           "windows": [{k: v for k, v in w.items()
                                        if k not in ("equity", "timestamps", "trades")}
                                       for w in windows],
                           "metrics": None, "equity": None}
    if pieces:
        config = backtest_config(analysis.strategy_version, spec["config"])
        eq, ts = engine_analyses._stitch(
            [(np.asarray(p["equity"]), np.asarray(p["timestamps"], dtype=np.int64))
             for p in pieces], config.cash)
        trades = [t for p in pieces for t in p["trades"]]
        calendar = _bars(analysis)[1]
        seconds = float(np.median(np.diff(ts))) / 1e9 if len(ts) > 1 else 86_400.0
        out["metrics"] = compute_metrics(MetricInputs(
            eq, ts, periods_per_year(calendar, seconds),
            trade_pnl=np.array([t["pnl"] for t in trades]),
            trade_return=np.array([t["return"] for t in trades]),
            risk_free_annual=config.risk_free))
        out["equity"] = packing.downsample(ts, eq, 2000)[1].tolist()
        ins = [w["in_sample"] for w in windows if w.get("in_sample") is not None]
        oos = [w["out_of_sample"] for w in windows if w.get("out_of_sample") is not None]
        out["mean_in_sample"] = float(np.mean(ins)) if ins else None
        out["mean_out_of_sample"] = float(np.mean(oos)) if oos else None
    return out


def _aggregate_monte_carlo(analysis: Analysis, rows: list[AnalysisChild]) -> dict[str, Any]:
    spec = analysis.spec
    parts = [c.result for c in rows if c.result is not None]
    finals = np.concatenate([np.asarray(p["final_return"]) for p in parts])
    dds = np.concatenate([np.asarray(p["max_drawdown"]) for p in parts])
    equity, pnl = _mc_inputs(analysis)
    if spec["method"] == "trades":
        path = float(equity[0]) + np.concatenate([[0.0], np.cumsum(pnl)])
        actual_final = path[-1] / equity[0] - 1.0
        actual_dd = float(engine_analyses._max_drawdowns(np.maximum(path, 0.0)[None, :])[0])
    else:
        actual_final = equity[-1] / equity[0] - 1.0
        actual_dd = max_drawdown_info(equity)["max_drawdown"]
    return {"method": spec["method"], "n_sims": int(finals.size), "seed": spec["seed"],
            "final_return": engine_analyses._summary(finals, actual_final),
            "max_drawdown": engine_analyses._summary(dds, actual_dd),
            "probability_of_loss": float(np.mean(finals < 0)),
            "fan": _monte_carlo_fan(analysis, equity, pnl)}


def _monte_carlo_fan(analysis: Analysis, equity: np.ndarray, pnl: np.ndarray) -> dict[str, Any]:
    """The fan chart's data, drawn here in the worker once (never in a page request): x, the
    actual run where it has one, and the percentile bands, rounded for display."""
    from trading import analysis_charts

    spec = analysis.spec
    fan = analysis_charts.monte_carlo_fan(
        equity=equity, trade_pnl=pnl, method=spec["method"], n_sims=int(spec["n_sims"]),
        n_chunks=int(spec["n_chunks"]), seed=int(spec["seed"]), block=spec.get("block"))
    points = np.asarray(fan["points"], dtype=np.int64)
    if spec["method"] == "trades":
        x, actual, xtitle = points.tolist(), None, "Trade"
    else:
        stamps = packing.unpack_timestamps(analysis.simulation.result.timestamps_blob)[points]
        x = [np.datetime_as_string(t, unit="s") + "Z"
             for t in stamps.astype("datetime64[ns]")]
        actual, xtitle = _display(equity[points]), ""
    return {"x": x, "xtitle": xtitle, "actual": actual, "paths": int(fan["paths"]),
            **{name: _display(band) for name, band in fan["bands"].items()}}


def _display(values: Any) -> list[float | None]:
    return [None if v is None or not np.isfinite(v) else round(float(v), 6) for v in values]


_AGGREGATE = {AnalysisKind.SWEEP: _aggregate_sweep,
              AnalysisKind.WALK_FORWARD: _aggregate_walk_forward,
              AnalysisKind.MONTE_CARLO: _aggregate_monte_carlo}


def analysis_aggregate_execute(*, analysis_id: int) -> str:
    with transaction.atomic():
        analysis = (Analysis.objects.select_for_update(of=("self",), no_key=True)
                    .select_related("strategy_version__strategy", "dataset", "simulation")
                    .filter(pk=analysis_id).first())
        if analysis is None or analysis.status in FINISHED:
            return "skipped"
        rows = list(AnalysisChild.objects.filter(analysis=analysis, status__in=FINISHED)
                    .order_by("index"))
        if len(rows) < analysis.n_children:
            return "skipped"  # not all children are in yet
        failed = [{"index": c.index, "error": c.error} for c in rows
                  if c.status == RunStatus.FAILED]
        if len(failed) == len(rows):
            analysis.status = RunStatus.FAILED
            analysis.error = "Every child failed; first error: " + failed[0]["error"]
            analysis.result = {"failed_children": failed}
        else:
            try:
                result = _AGGREGATE[analysis.kind](analysis, rows)
                analysis.status = RunStatus.SUCCEEDED
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded on the analysis, never stuck
                logger.exception("analysis %s: aggregate failed", analysis_id)
                result, analysis.status = {}, RunStatus.FAILED
                analysis.error = f"{type(exc).__name__}: {exc}"
            result["failed_children"] = failed
            analysis.result = clean(result)
        analysis.finished_at = timezone.now()
        analysis.save(update_fields=["status", "result", "error", "finished_at"])
        _notify(analysis, f"analysis.{'completed' if analysis.status == RunStatus.SUCCEEDED else 'failed'}")
    return analysis.status


# --- the sweeper -------------------------------------------------------------------------------

def analysis_sweep_stale(*, stale_seconds: int | None = None) -> dict[str, list]:
    """Re-send children whose worker died (a running child's heartbeat is stale; failed after
    ``NEXOW_SIM_MAX_ATTEMPTS`` attempts) or whose message was lost (queued for longer than
    ``NEXOW_SIM_DISPATCH_STALE_SECONDS``), re-send the aggregate of analyses whose children are
    all finished but which never finished themselves. Every step is a conditional update or an
    idempotent task, so sweeping twice does no harm. (Children never handed to the broker are
    admitted by `simulation_sweep_stale`'s top-up of every organisation's free slots.)"""
    stale_seconds = limit("NEXOW_SIM_STALE_SECONDS") if stale_seconds is None else stale_seconds
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    max_attempts = limit("NEXOW_SIM_MAX_ATTEMPTS")
    requeued: list[list[int]] = []
    failed: list[list[int]] = []
    resent: list[list[int]] = []
    aggregates: list[int] = []
    running = AnalysisChild.objects.filter(status=RunStatus.RUNNING, finished_at__lt=cutoff,
                                           analysis__status__in=ACTIVE)
    for child in running.select_related("analysis"):
        pair = [child.analysis_id, child.index]
        if int((child.result or {}).get("attempts", 1)) >= max_attempts:
            if _child_store(child.analysis, child.index, RunStatus.FAILED, None,
                            f"The worker was lost {max_attempts} times; giving up."):
                failed.append(pair)
            continue
        with transaction.atomic():
            # Back to the queue; still the same slot of the organisation.
            if AnalysisChild.objects.filter(pk=child.pk, status=RunStatus.RUNNING,
                                            finished_at__lt=cutoff).update(
                    status=RunStatus.QUEUED, finished_at=now):
                transaction.on_commit(lambda pair=pair: _enqueue_children([tuple(pair)]))
                requeued.append(pair)
    lost_cutoff = now - timedelta(seconds=limit("NEXOW_SIM_DISPATCH_STALE_SECONDS"))
    for pk, analysis_id, index in AnalysisChild.objects.filter(
            status=RunStatus.QUEUED, finished_at__lt=lost_cutoff,
            analysis__status__in=ACTIVE).values_list("pk", "analysis_id", "index"):
        with transaction.atomic():
            if AnalysisChild.objects.filter(pk=pk, status=RunStatus.QUEUED,
                                            finished_at__lt=lost_cutoff).update(finished_at=now):
                transaction.on_commit(
                    lambda pair=(analysis_id, index): _enqueue_children([pair]))
                resent.append([analysis_id, index])
    # All children finished a while ago, but the aggregate never ran (its message was lost or
    # its worker died): the aggregate is idempotent, send it again.
    for analysis_id in (Analysis.objects.filter(status__in=ACTIVE)
                        .annotate(n_finished=Count("children",
                                                   filter=Q(children__status__in=FINISHED)),
                                  last=Max("children__finished_at"))
                        .filter(n_finished__gte=F("n_children"), last__lt=cutoff)
                        .values_list("id", flat=True)):
        _enqueue_aggregate(analysis_id)
        aggregates.append(analysis_id)
    return {"children_requeued": requeued, "children_failed": failed,
            "children_resent": resent, "aggregates_resent": aggregates}

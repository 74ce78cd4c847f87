"""Simulations as a service: create (with limits), dispatch fairly, execute, cancel, re-run,
sweep stale runs.

State machine: ``queued → running → succeeded | failed | cancelled`` (a run whose worker died is
put back to ``queued`` by the sweeper, or failed after `NEXOW_SIM_MAX_ATTEMPTS`).

Fair share: a new run — a simulation, or one child of an analysis — is only *queued* in the
database. `simulation_dispatch` hands at most ``NEXOW_SIM_MAX_RUNNING_PER_ORG`` runs of one
organisation to the broker at a time (simulations and analysis children counted together, oldest
first), and is called again whenever one of that organisation's runs finishes; so one
organisation's 200 queued runs, or its 200-child sweep, occupy at most that many worker slots and
another organisation's run is never behind more than those in the broker's FIFO queue.

Execution (`simulation_execute`, called by the Celery task with the simulation id) is idempotent:
it locks the row, returns at once if the run is finished or alive elsewhere, marks it running
(attempts + 1, a fresh attempt token), runs the engine outside any transaction with a throttled
progress callback (which also beats the heartbeat and checks for cancellation), and stores the
results, the trades and the ``simulation.completed`` event in ONE transaction after checking that
its attempt still owns the run. A task re-delivered after a worker was killed mid-run therefore
runs from scratch and the result is stored exactly once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, User
from nexow_site.errors import ApplicationError, Conflict, RateLimited, TooLarge
from trading.engine.backtest import BacktestResult, run_backtest
from trading.engine.fingerprint import clean
from trading.engine.types import VectorStrategy
from trading.marketdata import bars_load
from trading.models import (
    FINISHED,
    Analysis,
    AnalysisChild,
    Bar,
    Dataset,
    Instrument,
    RunStatus,
    Simulation,
    SimulationResult,
    SimulationTrade,
    StrategyVersion,
)
from trading.services import results as packing
from trading.services.events import simulation_event_append
from trading.services.limits import limit
from trading.services.strategies import backtest_config, config_validate, engine_strategy

logger = logging.getLogger("nexow.trading.simulations")

PROGRESS_INTERVAL = 0.25  # seconds between progress events: a few per second, never per bar
HEARTBEAT_INTERVAL = 5.0  # seconds between heartbeats while the engine computes
# Vectorised runs smaller than this (bars × symbols) take a few milliseconds in the engine: they
# run in one compiled pass without the progress callback, whose chunked loop would cost more than
# the run and whose first event could only come after the run had finished anyway. Event-driven
# strategies and model-fitting ones take seconds on such runs and always report progress.
PROGRESS_MIN_SIZE = 200_000
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


class SimulationCancelled(Exception):
    """Raised inside the engine's callback when a cancel was requested."""


class AttemptSuperseded(Exception):
    """Raised when another attempt took the run over (this one's worker was presumed dead)."""


# --- helpers -----------------------------------------------------------------------------------

def simulation_instruments(*, simulation: Simulation) -> list[Instrument]:
    """The instruments a run trades: the version's universe within the dataset, else all."""
    return _instruments(simulation.dataset, simulation.strategy_version)


def _instruments(dataset: Dataset, version: StrategyVersion,
                 all_instruments: list[Instrument] | None = None) -> list[Instrument]:
    instruments = list(dataset.instruments.order_by("symbol")) if all_instruments is None \
        else all_instruments
    if version.universe:
        by_symbol = {i.symbol: i for i in instruments}
        missing = [s for s in version.universe if s not in by_symbol]
        if missing:
            raise ApplicationError(
                "The strategy's universe names symbols the dataset does not have.",
                fields={"dataset": [f"No bars for: {', '.join(missing)}."]})
        instruments = [by_symbol[s] for s in version.universe]
    return instruments


def _run_size(dataset: Dataset, instruments: list[Instrument], n_all: int, start, end) -> int:
    """bars × symbols of the run (the number of bar rows it reads); `n_all` is the number of
    instruments of the dataset."""
    if start is None and end is None and len(instruments) == n_all:
        return dataset.rows
    qs = Bar.objects.filter(dataset=dataset, instrument__in=instruments)
    if start is not None:
        qs = qs.filter(ts__gte=start)
    if end is not None:
        qs = qs.filter(ts__lte=end)
    return qs.count()


def _default_calendar(instruments: list[Instrument]) -> str:
    # Annualise as 24/7 only when every instrument trades around the clock.
    return "24/7" if instruments and all(i.calendar == "24/7" for i in instruments) else "exchange"


def _lock_org(organization_id: int) -> None:
    # Serialises admission and dispatch per organisation (a no-op on SQLite, whose writes are
    # serialised anyway). NO KEY UPDATE: rows being inserted that point at the organisation
    # (audit entries, simulations) take KEY SHARE locks, which this one does not wait for.
    Organization.objects.select_for_update(no_key=True).filter(pk=organization_id) \
        .values_list("pk").first()


# --- create, dispatch --------------------------------------------------------------------------

def simulation_create(*, organization: Organization, actor: User | None,
                      strategy_version: StrategyVersion, dataset: Dataset,
                      period_start=None, period_end=None, config: dict[str, Any] | None = None,
                      rerun_of: Simulation | None = None, request=None) -> Simulation:
    if strategy_version.strategy.organization_id != organization.pk:
        raise ApplicationError("Unknown strategy version.",
                               fields={"strategy_version": ["Not found."]})
    if dataset.organization_id not in (None, organization.pk):
        raise ApplicationError("Unknown dataset.", fields={"dataset": ["Not found."]})
    if period_start and period_end and period_start > period_end:
        raise ApplicationError("The period ends before it starts.",
                               fields={"period_end": ["Must be after period_start."]})
    config = config_validate(config)
    all_instruments = list(dataset.instruments.order_by("symbol"))
    instruments = _instruments(dataset, strategy_version, all_instruments)
    size = _run_size(dataset, instruments, len(all_instruments), period_start, period_end)
    max_size = limit("NEXOW_SIM_MAX_SIZE")
    if size > max_size:
        raise TooLarge(f"This run reads {size} bars × symbols; the limit per run is {max_size}.",
                       fields={"dataset": [f"At most {max_size} bars × symbols per run."]})
    if size == 0:
        raise ApplicationError("The dataset has no bars in this period.",
                               fields={"period_start": ["No bars in the period."]})
    with transaction.atomic():
        _lock_org(organization.pk)
        load = _org_load(organization.pk)
        max_active = limit("NEXOW_SIM_MAX_ACTIVE_PER_ORG")
        if load.active >= max_active:
            raise RateLimited(
                f"Your organisation has {load.active} simulations queued or running (the limit "
                f"is {max_active}); retry when some have finished.",
                headers={"Retry-After": str(max(5, limit("NEXOW_SIM_STALE_SECONDS") // 4))})
        # A free slot and nothing older waiting: the new run goes to the broker at once, without
        # asking the dispatcher (which would find exactly this).
        at_once = (load.in_flight < limit("NEXOW_SIM_MAX_RUNNING_PER_ORG")
                   and not load.waiting_simulations and not load.waiting_analyses)
        sim = Simulation.objects.create(
            organization=organization, strategy_version=strategy_version, dataset=dataset,
            period_start=period_start, period_end=period_end, config=config, size=size,
            created_by=actor, rerun_of=rerun_of, dispatched_at=timezone.now() if at_once else None)
        if at_once:
            transaction.on_commit(lambda: _enqueue(sim.pk))
        simulation_event_append(simulation_id=sim.pk, organization_id=organization.pk,
                                type="simulation.queued", payload={"status": sim.status,
                                                                   "progress": 0.0})
        audit_record(organization=organization, actor=actor,
                     action="simulation.rerun" if rerun_of else "simulation.created",
                     target=sim, request=request,
                     metadata={"strategy_version": strategy_version.pk, "dataset": dataset.pk,
                               "size": size, "rerun_of": rerun_of.pk if rerun_of else None})
        if not at_once:
            _dispatch_locked(organization.pk)
    return sim


def simulation_rerun(*, simulation: Simulation, actor: User | None, request=None) -> Simulation:
    """A new run of the same version on the same data, period and configuration."""
    return simulation_create(
        organization=simulation.organization, actor=actor,
        strategy_version=simulation.strategy_version, dataset=simulation.dataset,
        period_start=simulation.period_start, period_end=simulation.period_end,
        config=simulation.config, rerun_of=simulation, request=request)


def _enqueue(simulation_id: int) -> None:
    from trading.tasks import run_simulation

    run_simulation.apply_async(args=[simulation_id])


def _enqueue_children(pairs: list[tuple[int, int]]) -> None:
    from trading.tasks import analysis_child

    for analysis_id, index in pairs:
        analysis_child.apply_async(args=[analysis_id, index])


@dataclass(frozen=True)
class _OrgLoad:
    active: int  # simulations queued or running (the admission limit)
    in_flight: int  # simulations and analysis children handed to the broker, not finished
    waiting_simulations: bool  # queued simulations never handed to the broker
    waiting_analyses: bool  # active analyses with children never handed to the broker


def _org_load(organization_id: int) -> _OrgLoad:
    """Everything admission and dispatch need to know about an organisation, in one query."""
    sim, analysis, child = (Simulation._meta.db_table, Analysis._meta.db_table,
                            AnalysisChild._meta.db_table)
    # The statuses are the model's own constants, never input.
    active = f"('{RunStatus.QUEUED.value}', '{RunStatus.RUNNING.value}')"
    queued = f"'{RunStatus.QUEUED.value}'"
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT
              (SELECT COUNT(*) FROM {sim} s WHERE s.organization_id = %s
                 AND s.status IN {active}),
              (SELECT COUNT(*) FROM {sim} s WHERE s.organization_id = %s
                 AND s.status IN {active} AND s.dispatched_at IS NOT NULL)
              + (SELECT COUNT(*) FROM {child} c JOIN {analysis} a ON a.id = c.analysis_id
                 WHERE a.organization_id = %s AND a.status IN {active}
                   AND c.status IN {active}),
              EXISTS (SELECT 1 FROM {sim} s WHERE s.organization_id = %s
                 AND s.status = {queued} AND s.dispatched_at IS NULL),
              EXISTS (SELECT 1 FROM {analysis} a WHERE a.organization_id = %s
                 AND a.status IN {active}
                 AND a.n_children > (SELECT COUNT(*) FROM {child} c
                                     WHERE c.analysis_id = a.id))
        """, [organization_id] * 5)  # noqa: S608 - table names and statuses are constants
        row = cursor.fetchone()
    return _OrgLoad(int(row[0]), int(row[1]), bool(row[2]), bool(row[3]))


def _waiting_analyses(organization_id: int, at_most: int) -> list[tuple[Any, int, int]]:
    """(created_at, id, n_children) of the organisation's active analyses that still have
    children never handed to the broker, oldest first."""
    return list(Analysis.objects.filter(organization_id=organization_id, status__in=ACTIVE)
                .annotate(n_rows=Count("children")).filter(n_rows__lt=F("n_children"))
                .order_by("created_at", "id")
                .values_list("created_at", "id", "n_children")[:at_most])


def _dispatch_locked(organization_id: int) -> list[int]:
    """Hand queued runs to the broker up to the organisation's running limit, oldest first,
    simulations and analysis children alike (the caller holds the organisation's lock and a
    transaction); the messages leave on commit. Returns the simulations dispatched."""
    load = _org_load(organization_id)
    free = limit("NEXOW_SIM_MAX_RUNNING_PER_ORG") - load.in_flight
    if free <= 0 or not (load.waiting_simulations or load.waiting_analyses):
        return []
    sims = list(Simulation.objects.filter(
        organization_id=organization_id, status=RunStatus.QUEUED, dispatched_at__isnull=True)
        .order_by("created_at", "id").values_list("created_at", "id")[:free]) \
        if load.waiting_simulations else []
    waiting = _waiting_analyses(organization_id, free) if load.waiting_analyses else []
    sim_ids: list[int] = []
    children: list[tuple[int, int]] = []
    while free > 0 and (sims or waiting):
        if sims and (not waiting or sims[0][0] <= waiting[0][0]):
            sim_ids.append(sims.pop(0)[1])
            free -= 1
            continue
        _, analysis_id, n_children = waiting.pop(0)
        taken = set(AnalysisChild.objects.filter(analysis_id=analysis_id)
                    .values_list("index", flat=True))
        indexes = [i for i in range(n_children) if i not in taken][:free]
        children += [(analysis_id, i) for i in indexes]
        free -= len(indexes)
    now = timezone.now()
    if sim_ids:
        Simulation.objects.filter(pk__in=sim_ids).update(dispatched_at=now)
        for sim_id in sim_ids:
            transaction.on_commit(lambda sim_id=sim_id: _enqueue(sim_id))
    if children:
        # A child's row exists from its hand-off on: queued, then running (`finished_at` is its
        # heartbeat while it runs), then succeeded or failed (see trading.services.analyses).
        AnalysisChild.objects.bulk_create(
            [AnalysisChild(analysis_id=a, index=i, status=RunStatus.QUEUED, finished_at=now,
                           result={"attempts": 0}) for a, i in children],
            ignore_conflicts=True)
        transaction.on_commit(lambda: _enqueue_children(children))
    return sim_ids


def simulation_dispatch(*, organization_id: int) -> list[int]:
    """Admit the organisation's next queued runs if it has free running slots."""
    with transaction.atomic():
        _lock_org(organization_id)
        return _dispatch_locked(organization_id)


def organizations_waiting() -> set[int]:
    """Organisations with runs never handed to the broker (for the sweeper's top-up)."""
    orgs = set(Simulation.objects.filter(status=RunStatus.QUEUED, dispatched_at__isnull=True)
               .values_list("organization_id", flat=True).distinct())
    orgs |= set(Analysis.objects.filter(status__in=ACTIVE)
                .annotate(n_rows=Count("children")).filter(n_rows__lt=F("n_children"))
                .values_list("organization_id", flat=True).distinct())
    return orgs


# --- cancel ------------------------------------------------------------------------------------

def simulation_cancel(*, simulation: Simulation, actor: User | None, request=None) -> Simulation:
    with transaction.atomic():
        # Lock order everywhere: organisation, then runs (the dispatcher updates queued runs
        # while it holds the organisation).
        _lock_org(simulation.organization_id)
        sim = Simulation.objects.select_for_update().get(pk=simulation.pk)
        if sim.status in FINISHED:
            raise Conflict(f"The simulation has already {sim.status}.")
        audit_record(organization=sim.organization, actor=actor, action="simulation.cancelled",
                     target=sim, request=request, metadata={"status_before": sim.status})
        if sim.status == RunStatus.QUEUED:
            sim.status = RunStatus.CANCELLED
            sim.cancel_requested = True
            sim.finished_at = timezone.now()
            sim.save(update_fields=["status", "cancel_requested", "finished_at"])
            simulation_event_append(simulation_id=sim.pk, organization_id=sim.organization_id,
                                    type="simulation.cancelled",
                                    payload={"status": sim.status, "progress": sim.progress})
            _dispatch_locked(sim.organization_id)
        else:
            # The running attempt sees the flag at its next progress point.
            sim.cancel_requested = True
            sim.save(update_fields=["cancel_requested"])
    return sim


# --- execution ---------------------------------------------------------------------------------

@dataclass
class _Progress:
    simulation_id: int
    organization_id: int
    token: str
    n_bars: int = 0
    fraction: float = 0.0
    bar: int = 0
    equity: float | None = None
    last_flush: float = field(default_factory=time.monotonic)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "progress":
            self.fraction = float(event["fraction"])
            self.bar = int(event["bar"])
        elif kind == "equity":
            self.equity = float(event["equity"])
            now = time.monotonic()
            if now - self.last_flush >= PROGRESS_INTERVAL and self.fraction < 1.0:
                self.last_flush = now
                self.flush()

    def flush(self) -> None:
        with transaction.atomic():
            row = (Simulation.objects.select_for_update()
                   .only("attempt_token", "cancel_requested", "status")
                   .get(pk=self.simulation_id))
            if row.attempt_token != self.token or row.status != RunStatus.RUNNING:
                raise AttemptSuperseded()
            if row.cancel_requested:
                raise SimulationCancelled()
            Simulation.objects.filter(pk=self.simulation_id).update(
                heartbeat_at=timezone.now(), progress=self.fraction)
            simulation_event_append(
                simulation_id=self.simulation_id, organization_id=self.organization_id,
                type="simulation.progress",
                payload={"status": RunStatus.RUNNING, "progress": round(self.fraction, 4),
                         "bar": self.bar, "equity": self.equity})


class Heartbeat:
    """Calls `beat` every `HEARTBEAT_INTERVAL` seconds while a run computes (loading data,
    computing signals, between progress points), so the sweeper only sees stale runs whose
    worker died.

    One daemon thread per process beats every run registered with it: entering and leaving
    cost a dictionary update, not a thread's start and join (a run of a few milliseconds pays
    nothing), and the thread touches the database only when a beat is due, on its own
    connection."""

    _lock = threading.Condition()
    _due: dict[int, tuple[Heartbeat, float]] = {}  # id -> (heartbeat, monotonic time due)
    _thread: threading.Thread | None = None
    _pid: int | None = None

    def __init__(self, name: str, beat: Callable[[], object]) -> None:
        self.name, self.beat = name, beat

    def __enter__(self) -> Heartbeat:
        cls = type(self)
        with cls._lock:
            cls._due[id(self)] = (self, time.monotonic() + HEARTBEAT_INTERVAL)
            # (Re)started after a fork: a prefork worker's child inherits no running thread.
            if cls._thread is None or cls._pid != os.getpid() or not cls._thread.is_alive():
                cls._pid = os.getpid()
                cls._thread = threading.Thread(target=cls._run, name="nexow-heartbeat",
                                               daemon=True)
                cls._thread.start()
            cls._lock.notify()
        return self

    def __exit__(self, *exc: object) -> None:
        with type(self)._lock:
            type(self)._due.pop(id(self), None)

    @classmethod
    def _run(cls) -> None:
        while True:
            with cls._lock:
                now = time.monotonic()
                due = [hb for hb, at in cls._due.values() if at <= now]
                for hb in due:
                    cls._due[id(hb)] = (hb, now + HEARTBEAT_INTERVAL)
                if not due:
                    nearest = min((at for _, at in cls._due.values()),
                                  default=now + HEARTBEAT_INTERVAL)
                    cls._lock.wait(timeout=max(0.01, min(nearest - now, 1.0)))
                    continue
            for hb in due:
                try:
                    hb.beat()
                except Exception:  # noqa: BLE001 - one missed beat is tolerated (the sweeper
                    # has margin); the next one is tried on a fresh connection
                    logger.warning("heartbeat of %s failed", hb.name, exc_info=True)
                    connection.close()


def _sim_heartbeat(simulation_id: int, token: str) -> Heartbeat:
    return Heartbeat(f"simulation-{simulation_id}", lambda: Simulation.objects.filter(
        pk=simulation_id, attempt_token=token, status=RunStatus.RUNNING).update(
        heartbeat_at=timezone.now()))


def _begin(simulation_id: int, task_id: str) -> tuple[Simulation, str] | None:
    """Lock the row and take the run for this attempt; None when there is nothing to do."""
    stale = timezone.now() - timedelta(seconds=limit("NEXOW_SIM_STALE_SECONDS"))
    with transaction.atomic():
        # The run's version, strategy, dataset and organisation come with the locked row: the
        # worker needs them all and asks for nothing again.
        sim = (Simulation.objects.select_for_update(of=("self",))
               .select_related("strategy_version__strategy", "dataset", "organization")
               .filter(pk=simulation_id).first())
        if sim is None or sim.status in FINISHED:
            return None
        if sim.status == RunStatus.RUNNING and sim.task_id != task_id and (
                sim.heartbeat_at is not None and sim.heartbeat_at > stale):
            return None  # alive under another message; a duplicate delivery does nothing
        if sim.cancel_requested:
            _finish_cancelled(sim)
            return None
        token = uuid.uuid4().hex
        now = timezone.now()
        restarted = sim.status == RunStatus.RUNNING
        sim.status = RunStatus.RUNNING
        sim.attempts += 1
        sim.attempt_token = token
        sim.task_id = task_id[:64]
        sim.heartbeat_at = now
        sim.started_at = sim.started_at or now
        sim.progress = 0.0
        sim.error = ""
        if sim.dispatched_at is None:
            sim.dispatched_at = now
        sim.save(update_fields=["status", "attempts", "attempt_token", "task_id", "heartbeat_at",
                                "started_at", "progress", "error", "dispatched_at"])
        simulation_event_append(simulation_id=sim.pk, organization_id=sim.organization_id,
                                type="simulation.started",
                                payload={"status": sim.status, "attempt": sim.attempts,
                                         "restarted": restarted, "progress": 0.0})
    return sim, token


def _finish_cancelled(sim: Simulation) -> None:
    sim.status = RunStatus.CANCELLED
    sim.finished_at = timezone.now()
    sim.save(update_fields=["status", "finished_at"])
    simulation_event_append(simulation_id=sim.pk, organization_id=sim.organization_id,
                            type="simulation.cancelled",
                            payload={"status": sim.status, "progress": sim.progress})
    _lock_org(sim.organization_id)
    _dispatch_locked(sim.organization_id)


def _owned(simulation_id: int, token: str) -> Simulation | None:
    sim = Simulation.objects.select_for_update().filter(pk=simulation_id).first()
    if sim is None or sim.attempt_token != token or sim.status != RunStatus.RUNNING:
        return None
    return sim


def _store(sim: Simulation, result: BacktestResult) -> None:
    ts, eq = result.timestamps, result.equity
    fills = result.fills
    SimulationResult.objects.create(
        simulation=sim, n_points=len(eq), timestamps_blob=packing.pack_timestamps(ts),
        equity_blob=packing.pack(eq, "<f8"), fills_blob=packing.pack(fills, "<f8"),
        fills_shape=list(fills.shape), symbols=list(result.symbols),
        summary=clean({"final_equity": result.final_equity, "cash": result.cash,
                       "positions": result.positions, "fingerprint": result.fingerprint,
                       "dropped_orders": result.dropped_orders,
                       "rejections": [r.to_dict() for r in result.rejections]}))
    _store_trades(sim, result)


_TRADE_COLUMNS = ("simulation_id", "index", "symbol", "side", "entry_time", "entry_price",
                  "exit_time", "exit_price", "quantity", "pnl", "fees")


def _store_trades(sim: Simulation, result: BacktestResult) -> None:
    trades = result.trades
    if not trades:
        return
    ts = result.timestamps
    entry = pd.to_datetime(ts[[t.entry_bar for t in trades]], utc=True).to_pydatetime()
    exit_bars = [t.exit_bar for t in trades]
    exits = pd.to_datetime(ts[[b if b is not None else 0 for b in exit_bars]],
                           utc=True).to_pydatetime()
    rows = [(sim.pk, i, t.symbol, "long" if t.side > 0 else "short", entry[i],
             float(t.entry_price), None if t.exit_bar is None else exits[i],
             None if t.exit_price is None else float(t.exit_price), float(t.quantity),
             float(t.pnl), float(t.fees)) for i, t in enumerate(trades)]
    if connection.vendor == "postgresql":
        # COPY: tens of thousands of trades in well under a second (INSERTs take many).
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {SimulationTrade._meta.db_table} ({', '.join(_TRADE_COLUMNS)}) "
                "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        SimulationTrade.objects.bulk_create(
            [SimulationTrade(**dict(zip(_TRADE_COLUMNS, row, strict=True))) for row in rows],
            batch_size=2000)


def simulation_load_inputs(*, simulation: Simulation,
                           instruments: list[Instrument] | None = None):
    """(bars, strategy, config) exactly as the worker runs them."""
    if instruments is None:
        instruments = simulation_instruments(simulation=simulation)
    bars = bars_load(dataset=simulation.dataset, instruments=instruments,
                     start=simulation.period_start, end=simulation.period_end)
    strategy = engine_strategy(simulation.strategy_version)
    config = backtest_config(simulation.strategy_version, simulation.config,
                             _default_calendar(instruments))
    return bars, strategy, config


def simulation_rulebook(*, simulation: Simulation, instruments: list[Instrument]):
    """The organisation's risk rulebook for this run (its organisation and strategy limits), or
    None when none are set, so that unguarded runs keep the engine's compiled fast path.

    The organisation's emergency kill switch is left out on purpose: it stops live trading, and a
    backtest must still show what the strategy would have done."""
    from risk import selectors as risk_selectors
    from risk.services import rulebook_for

    strategy_id = simulation.strategy_version.strategy_id
    if not risk_selectors.limit_sets_for(organization=simulation.organization,
                                         strategy=strategy_id):
        return None
    meta = {i.symbol: {"asset_class": i.asset_class, "sector": i.sector} for i in instruments}
    return rulebook_for(organization=simulation.organization, strategy=strategy_id,
                        instruments=meta, include_emergency=False)


def reports_progress(strategy: object, size: int) -> bool:
    """Whether a run streams progress events (and can be cancelled mid-run): all but small runs
    of cheap vectorised strategies (see `PROGRESS_MIN_SIZE`)."""
    return size >= PROGRESS_MIN_SIZE or not (isinstance(strategy, VectorStrategy)
                                             and strategy.cheap_signals)


def simulation_execute(*, simulation_id: int, task_id: str = "") -> str:
    """Run one simulation to the end (the body of the ``trading.run_simulation`` task); returns
    the status it left the run in, or "skipped"."""
    began = _begin(simulation_id, task_id or uuid.uuid4().hex)
    if began is None:
        return "skipped"
    sim, token = began
    try:
        with _sim_heartbeat(sim.pk, token):
            instruments = simulation_instruments(simulation=sim)
            bars, strategy, config = simulation_load_inputs(simulation=sim,
                                                            instruments=instruments)
            progress = _Progress(sim.pk, sim.organization_id, token) \
                if reports_progress(strategy, sim.size) else None
            rulebook = simulation_rulebook(simulation=sim, instruments=instruments)
            if rulebook is not None and rulebook.flatten_on_halt:
                config = dataclasses.replace(config, flatten_on_halt=True)
            result = run_backtest(bars, strategy, config, on_event=progress, pre_trade=rulebook)
    except AttemptSuperseded:
        logger.info("simulation %s: attempt superseded; stopping", simulation_id)
        return "skipped"
    except SimulationCancelled:
        with transaction.atomic():
            owned = _owned(simulation_id, token)
            if owned is None:
                return "skipped"
            _finish_cancelled(owned)
        return RunStatus.CANCELLED
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        # A problem of this run's inputs: retrying would fail the same way.
        return _fail(simulation_id, token, f"{type(exc).__name__}: {exc}")
    metrics = clean(result.metrics)
    with transaction.atomic():
        # One conditional UPDATE both checks that this attempt still owns the run and marks it
        # succeeded (locking the row until commit); the results are stored under that lock.
        now = timezone.now()
        owned = Simulation.objects.filter(
            pk=simulation_id, attempt_token=token, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED, metrics=metrics, result_hash=result.result_hash,
            n_trades=len(result.trades), progress=1.0, finished_at=now, heartbeat_at=now)
        if not owned:
            return "skipped"
        _store(sim, result)
        if result.rejections or result.halted_at is not None:
            from risk.services import run_breaches_record

            # The limits' refusals and halt become breaches of the organisation (idempotent).
            run_breaches_record(organization=sim.organization, source="simulation",
                                source_id=sim.pk, result=result)
        simulation_event_append(
            simulation_id=sim.pk, organization_id=sim.organization_id,
            type="simulation.completed",
            payload={"status": RunStatus.SUCCEEDED, "progress": 1.0,
                     "equity": result.final_equity, "metrics": metrics,
                     "n_trades": len(result.trades), "result_hash": result.result_hash})
        _lock_org(sim.organization_id)
        _dispatch_locked(sim.organization_id)
    return RunStatus.SUCCEEDED


def _fail(simulation_id: int, token: str | None, message: str) -> str:
    with transaction.atomic():
        sim = Simulation.objects.select_for_update().filter(pk=simulation_id).first()
        if sim is None or sim.status in FINISHED or (token and sim.attempt_token != token):
            return "skipped"
        sim.status = RunStatus.FAILED
        sim.error = message[:2000]
        sim.finished_at = timezone.now()
        sim.save(update_fields=["status", "error", "finished_at"])
        simulation_event_append(simulation_id=sim.pk, organization_id=sim.organization_id,
                                type="simulation.failed",
                                payload={"status": sim.status, "error": sim.error,
                                         "progress": sim.progress})
        _lock_org(sim.organization_id)
        _dispatch_locked(sim.organization_id)
    return RunStatus.FAILED


def simulation_fail(*, simulation_id: int, message: str) -> str:
    """Fail a run from outside its attempt (the task's last retry, the sweeper)."""
    return _fail(simulation_id, None, message)


# --- the sweeper -------------------------------------------------------------------------------

def simulation_sweep_stale(*, stale_seconds: int | None = None) -> dict[str, list[int]]:
    """Re-queue runs whose worker died (stale heartbeat), fail those out of attempts, re-send
    dispatched runs whose message was lost, and top up every organisation's free slots."""
    stale_seconds = limit("NEXOW_SIM_STALE_SECONDS") if stale_seconds is None else stale_seconds
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    requeued, failed, resent = [], [], []
    max_attempts = limit("NEXOW_SIM_MAX_ATTEMPTS")
    for sim_id in Simulation.objects.filter(status=RunStatus.RUNNING,
                                            heartbeat_at__lt=cutoff).values_list("id", flat=True):
        with transaction.atomic():
            sim = Simulation.objects.select_for_update().get(pk=sim_id)
            if sim.status != RunStatus.RUNNING or sim.heartbeat_at >= cutoff:
                continue
            if sim.attempts >= max_attempts:
                failed.append(sim.pk)
            else:
                # Back to the queue; the attempt token changes so a zombie attempt stops.
                sim.status = RunStatus.QUEUED
                sim.attempt_token = ""
                sim.task_id = ""
                sim.dispatched_at = now
                sim.save(update_fields=["status", "attempt_token", "task_id", "dispatched_at"])
                simulation_event_append(simulation_id=sim.pk, organization_id=sim.organization_id,
                                        type="simulation.queued",
                                        payload={"status": sim.status, "progress": 0.0,
                                                 "reason": "worker lost; re-queued"})
                transaction.on_commit(lambda sim_id=sim.pk: _enqueue(sim_id))
                requeued.append(sim.pk)
    for sim_id in failed:
        simulation_fail(simulation_id=sim_id,
                        message=f"The worker was lost {max_attempts} times; giving up.")
    lost_cutoff = now - timedelta(seconds=limit("NEXOW_SIM_DISPATCH_STALE_SECONDS"))
    for sim_id in Simulation.objects.filter(status=RunStatus.QUEUED,
                                            dispatched_at__lt=lost_cutoff).values_list("id",
                                                                                      flat=True):
        with transaction.atomic():
            updated = Simulation.objects.filter(pk=sim_id, status=RunStatus.QUEUED,
                                                dispatched_at__lt=lost_cutoff).update(
                dispatched_at=now)
            if updated:
                transaction.on_commit(lambda sim_id=sim_id: _enqueue(sim_id))
                resent.append(sim_id)
    for org_id in sorted(organizations_waiting()):
        simulation_dispatch(organization_id=org_id)
    return {"requeued": requeued, "failed": failed, "resent": resent}

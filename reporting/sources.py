"""Where report data comes from, and how each kind of report is produced from it.

`report_build(organization=, kind=, fmt=, parameters=)` returns ``(bytes, title)`` and is the
one function the generation task calls. Sources:

* **simulation** — a finished simulation's stored results, read through the trading app's
  selectors (`simulation_performance_input` is the small adapter from its rows to the pure
  builder's `PerformanceInput`);
* **account** — an `AccountActivity` given in the parameters (JSON), the seam through which
  paper and live accounts feed statements;
* **tax** — the tax engine (`reporting.tax`) over trades given as CSV text;
* **risk_breaches** — the risk app's recorded breaches;
* **audit** — the organisation's audit log.

Parameters are validated here and errors raised as `ReportParameterError` with the field at
fault, which the API turns into a 400.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np

from accounts.models import AuditEvent, Organization
from nexow_site.errors import ApplicationError
from reporting import compliance, excel
from reporting.models import ReportKind
from reporting.pdf.performance import PerformanceInput, TradeRow, performance_pdf
from reporting.pdf.statement import statement_pdf
from reporting.pdf.tables import TableReport, TableSection, table_report_pdf
from reporting.performance import CashFlow
from reporting.statements import (
    AccountActivity,
    Fill,
    Holding,
    StatementInputError,
    activity_from_dict,
    statement_compute,
)


class ReportParameterError(ApplicationError):
    status_code = 400
    code = "invalid_parameters"


def _param_error(field: str, message: str) -> ReportParameterError:
    return ReportParameterError(message, fields={field: [message]})


def _date(parameters: dict[str, Any], name: str, default: dt.date | None = None) -> dt.date:
    raw = parameters.get(name)
    if raw in (None, ""):
        if default is None:
            raise _param_error(name, f"{name} is required (YYYY-MM-DD)")
        return default
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise _param_error(name, f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def _window(parameters: dict[str, Any]) -> tuple[dt.datetime, dt.datetime, dt.date, dt.date]:
    start = _date(parameters, "start")
    end = _date(parameters, "end")
    if end < start:
        raise _param_error("end", "end is before start")
    lo = dt.datetime.combine(start, dt.time.min, dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, dt.UTC)
    return lo, hi, start, end


# --- simulation source --------------------------------------------------------------------

def _simulation(organization: Organization, parameters: dict[str, Any]):
    from trading.models import RunStatus
    from trading.selectors import simulation_list

    sim_id = parameters.get("simulation_id")
    if not isinstance(sim_id, int):
        raise _param_error("simulation_id", "simulation_id (an integer) is required")
    sim = simulation_list(organization=organization).filter(pk=sim_id).first()
    if sim is None:
        raise _param_error("simulation_id", f"no simulation {sim_id} in this organisation")
    if sim.status != RunStatus.SUCCEEDED or not hasattr(sim, "result"):
        raise _param_error("simulation_id", f"simulation {sim_id} has no results "
                                            f"(status {sim.status})")
    return sim


def _ppy(sim: Any, timestamps: np.ndarray) -> float:
    from trading.engine.metrics import periods_per_year

    stored = (sim.metrics or {}).get("periods_per_year")
    if stored:
        return float(stored)
    first = sim.dataset.instruments.first()
    calendar = first.calendar if first is not None else "exchange"
    return periods_per_year(calendar, float(sim.dataset.bar_seconds))


def _benchmark(sim: Any, symbol: str, timestamps: np.ndarray) -> np.ndarray:
    """Buy-and-hold of `symbol` from the simulation's dataset, aligned to the equity bars (the
    last close at or before each bar)."""
    from trading.selectors import dataset_bars

    try:
        bars = dataset_bars(dataset=sim.dataset, symbols=[symbol])
    except ValueError as exc:
        raise _param_error("benchmark_symbol", str(exc)) from None
    idx = np.searchsorted(bars.timestamps, timestamps, side="right") - 1
    if bars.n_bars == 0 or idx[0] < 0:
        raise _param_error("benchmark_symbol", f"{symbol} has no prices at the start of the run")
    return np.asarray(bars.close[:, 0], dtype=np.float64)[idx]


def simulation_performance_input(sim: Any, organization: Organization,
                                 parameters: dict[str, Any]) -> PerformanceInput:
    """The adapter from a stored simulation to the performance builder's plain input."""
    from trading.engine.robustness import robustness_report
    from trading.selectors import simulation_equity, simulation_trades

    ts, eq = simulation_equity(simulation=sim)
    if len(eq) < 2:
        raise _param_error("simulation_id", "the simulation's equity curve is too short")
    trades = [TradeRow(t.symbol, t.side, t.entry_time, t.exit_time, t.quantity, t.entry_price,
                       t.exit_price, t.pnl, t.fees) for t in simulation_trades(simulation=sim)]
    bench_symbol = parameters.get("benchmark_symbol")
    bench = _benchmark(sim, bench_symbol, ts) if bench_symbol else None
    version = sim.strategy_version
    n_params = len(version.params or {})
    robustness = robustness_report(eq, trade_pnl=np.array([t.pnl for t in trades]),
                                   n_params=n_params, n_sims=200, seed=sim.pk)
    flows = [CashFlow(dt.date.fromisoformat(f["date"]), Decimal(str(f["amount"])))
             for f in parameters.get("cash_flows", [])]
    live = None
    live_id = parameters.get("live_simulation_id")
    if live_id:
        live_sim = _simulation(organization, {"simulation_id": live_id})
        live = simulation_equity(simulation=live_sim)
    return PerformanceInput(
        organization=organization.name,
        subject=f"Simulation {sim.pk}: {version.strategy.name} v{version.number} on "
                f"{sim.dataset.name}",
        timestamps=ts, equity=eq, periods_per_year=_ppy(sim, ts),
        risk_free_annual=float(parameters.get("risk_free_annual",
                                              (sim.config or {}).get("risk_free", 0.0))),
        benchmark_name=f"{bench_symbol} buy and hold" if bench_symbol else None,
        benchmark_equity=bench, trades=trades, n_params=n_params, robustness=robustness,
        cash_flows=flows, live_timestamps=live[0] if live else None,
        live_equity=live[1] if live else None,
        rolling_window=int(parameters.get("rolling_window", 63)))


def _simulation_fills(organization: Organization, parameters: dict[str, Any]
                      ) -> tuple[Any, list[dict[str, Any]]]:
    from trading.selectors import simulation_fills

    sim = _simulation(organization, parameters)
    return sim, simulation_fills(simulation=sim)


def _rts22(organization: Organization, parameters: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    sim, fills = _simulation_fills(organization, parameters)
    version = sim.strategy_version
    algo = f"NEXOW-{version.strategy.kind}-{version.strategy_id}-v{version.number}"[:50]
    venue = str(parameters.get("venue", compliance.OFF_VENUE))
    currency = str(parameters.get("currency", "USD"))
    txs = [compliance.Transaction(
        reference=f"SIM{sim.pk}-{i + 1}",
        executed_at=dt.datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")),
        instrument=f["symbol"], instrument_name=f["symbol"], side=f["side"],
        quantity=Decimal(repr(f["quantity"])), price=Decimal(repr(f["price"])),
        currency=currency, venue=venue, decision_maker=str(parameters.get("decision_maker", "")),
        algorithm_id=algo) for i, f in enumerate(fills)]
    entity = str(parameters.get("executing_entity", ""))
    title = f"RTS 22 transactions, simulation {sim.pk}"
    if fmt == "csv":
        return compliance.rts22_csv(txs, executing_entity=entity).encode(), title
    return compliance.rts22_xml(txs, executing_entity=entity), title


def _trades(organization: Organization, parameters: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    from trading.selectors import simulation_trades

    sim = _simulation(organization, parameters)
    trades = list(simulation_trades(simulation=sim))
    title = f"Trades of simulation {sim.pk}"
    if fmt == "csv":
        rows = [{c: getattr(t, c) for c in ("symbol", "side", "entry_time", "exit_time",
                                            "quantity", "entry_price", "exit_price", "pnl",
                                            "fees")} for t in trades]
        return compliance.rows_csv(list(rows[0]) if rows else ["symbol"], rows).encode(), title
    return excel.trades_xlsx(trades), title


# --- other sources ------------------------------------------------------------------------

def _closes(sim: Any, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps ns, closes (n, len(symbols))) of the simulation's dataset."""
    from trading.selectors import dataset_bars

    bars = dataset_bars(dataset=sim.dataset, symbols=symbols)
    return np.asarray(bars.timestamps, dtype=np.int64), np.asarray(bars.close, dtype=np.float64)


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def simulation_account_activity(sim: Any, start: dt.date, end: dt.date) -> AccountActivity:
    """The simulation as an account over [start, end]: the adapter that lets a simulation (or,
    later, a paper account with the same stored fills) feed a statement. The fills before
    `start` are replayed at average cost to give the opening cash and positions; prices are the
    dataset's last closes before the period and at its end; the starting cash is the first
    point of the equity curve (no fill happens on the first bar)."""
    from trading.selectors import simulation_equity, simulation_fills

    _, equity = simulation_equity(simulation=sim)
    fills = [Fill(dt.datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")), f["symbol"],
                  f["side"], _dec(f["quantity"]), _dec(f["price"]), _dec(f["commission"]),
                  "SIM", f"SIM{sim.pk}-{i + 1}")
             for i, f in enumerate(simulation_fills(simulation=sim))]
    symbols = sorted({f.symbol for f in fills})
    lo = dt.datetime.combine(start, dt.time.min, dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, dt.UTC)
    opening_prices: dict[str, Decimal] = {}
    closing_prices: dict[str, Decimal] = {}
    if symbols:
        ts, closes = _closes(sim, symbols)
        i_open = int(np.searchsorted(ts, _ns(lo), side="left")) - 1
        i_close = int(np.searchsorted(ts, _ns(hi), side="left")) - 1
        for k, symbol in enumerate(symbols):
            if i_open >= 0:
                opening_prices[symbol] = _dec(closes[i_open, k])
            if i_close >= 0:
                closing_prices[symbol] = _dec(closes[i_close, k])
    before = [f for f in fills if f.time < lo]
    opening = statement_compute(AccountActivity(
        account="", period_start=start, period_end=start, opening_cash=_dec(equity[0]),
        fills=before, closing_prices=opening_prices))
    return AccountActivity(
        account=f"Simulation {sim.pk} ({sim.strategy_version.strategy.name})",
        period_start=start, period_end=end, currency=str((sim.config or {}).get("currency",
                                                                                 "USD")),
        opening_cash=opening.closing_cash,
        opening_positions=[Holding(p.symbol, p.quantity, p.average_cost)
                           for p in opening.positions],
        opening_prices=opening_prices,
        fills=[f for f in fills if lo <= f.time < hi], closing_prices=closing_prices)


def _statement(organization: Organization, parameters: dict[str, Any], fmt: str
               ) -> tuple[bytes, str]:
    data = parameters.get("account")
    try:
        if "simulation_id" in parameters:
            sim = _simulation(organization, parameters)
            _, _, start, end = _window(parameters)
            statement = statement_compute(simulation_account_activity(sim, start, end))
        elif isinstance(data, dict):
            statement = statement_compute(activity_from_dict(data))
        else:
            raise _param_error("account", "account (the account activity object) or "
                                          "simulation_id with start and end is required")
    except StatementInputError as exc:
        raise _param_error("account", str(exc)) from None
    a = statement.activity
    title = f"Statement {a.account} {a.period_start} to {a.period_end}"
    if fmt == "xlsx":
        return excel.statement_xlsx(statement), title
    return statement_pdf(statement, organization=organization.name), title


def _tax(parameters: dict[str, Any], fmt: str, organization: Organization) -> tuple[bytes, str]:
    import io

    from reporting.tax import TaxConfigError, TaxInputError, parse_trades_text, uk_report, us_report
    from reporting.tax import output as tax_output
    from reporting.tax import pdf as tax_pdf

    text = parameters.get("trades_csv")
    if not isinstance(text, str) or not text.strip():
        raise _param_error("trades_csv", "trades_csv (the trades as CSV text) is required")
    jurisdiction = parameters.get("jurisdiction", "us")
    year = parameters.get("year")
    if not isinstance(year, int):
        raise _param_error("year", "year (an integer tax year) is required")
    try:
        trades = parse_trades_text(text)
        if jurisdiction == "uk":
            report = uk_report(trades, year)
        elif jurisdiction == "us":
            report = us_report(trades, year, method=parameters.get("method", "fifo"))
        else:
            raise _param_error("jurisdiction", "jurisdiction must be 'us' or 'uk'")
    except TaxInputError as exc:
        raise _param_error("trades_csv", str(exc)) from None
    except TaxConfigError as exc:
        raise _param_error("method", str(exc)) from None
    title = f"{jurisdiction.upper()} tax report {year}"
    if fmt == "csv":
        csv_text = tax_output.uk_csv(report) if jurisdiction == "uk" else tax_output.us_csv(report)
        return csv_text.encode(), title
    if fmt == "xlsx":
        data = tax_output.uk_dict(report) if jurisdiction == "uk" else tax_output.us_dict(report)
        rows = data.get("disposals") if jurisdiction == "uk" else data.get("rows")
        return excel.tax_xlsx(rows or [], title=f"Tax {year}"), title
    buf = io.BytesIO()
    (tax_pdf.uk_pdf if jurisdiction == "uk" else tax_pdf.us_pdf)(report, buf)
    return buf.getvalue(), title


def breach_rows(organization: Organization, lo: dt.datetime, hi: dt.datetime
                ) -> list[dict[str, Any]]:
    from risk.selectors import breach_list

    return [{"at": b.at, "source": b.source, "source_id": b.source_id, "rule": b.rule,
             "symbol": b.symbol, "halted": b.halted, "reason": b.reason}
            for b in breach_list(organization=organization).filter(at__gte=lo, at__lt=hi)
            .order_by("at", "id")]


def _tabular(title: str, organization: Organization, period: str, columns: tuple[str, ...],
             rows: list[dict[str, Any]], fmt: str, widths: list[float]) -> bytes:
    if fmt == "csv":
        return compliance.rows_csv(columns, rows).encode()
    if fmt == "xlsx":
        return excel.workbook_bytes([excel.Sheet(title[:31], columns,
                                                 [[r.get(c) for c in columns] for r in rows])])
    text_rows = [[compliance._text(r.get(c)) for c in columns] for r in rows]
    return table_report_pdf(TableReport(organization.name, title, period, [
        TableSection(title, [c.replace("_", " ").capitalize() for c in columns], text_rows,
                     widths)]))


def simulation_arrival_fills(sim: Any, *, venue: str = "SIM") -> list[dict[str, Any]]:
    """The simulation's fills with the price at the time each order was decided: the engine
    decides at a bar's close and fills no earlier than the next bar, so the arrival price is the
    close of the bar before the fill's bar."""
    from trading.selectors import simulation_fills

    fills = simulation_fills(simulation=sim)
    if not fills:
        return []
    symbols = sorted({f["symbol"] for f in fills})
    ts, closes = _closes(sim, symbols)
    column = {s: k for k, s in enumerate(symbols)}
    strategy = sim.strategy_version.strategy.name
    out = []
    for i, f in enumerate(fills):
        when = dt.datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00"))
        bar = int(np.searchsorted(ts, _ns(when), side="left")) - 1
        if bar < 0:
            continue  # no decision bar before the first one
        out.append({"reference": f"SIM{sim.pk}-{i + 1}", "executed_at": f["timestamp"],
                    "venue": venue, "strategy": strategy, "side": f["side"],
                    "quantity": repr(f["quantity"]), "price": repr(f["price"]),
                    "arrival_price": repr(float(closes[bar, column[f["symbol"]]]))})
    return out


def _best_execution(organization: Organization, parameters: dict[str, Any], fmt: str
                    ) -> tuple[bytes, str]:
    raw = parameters.get("fills")
    if "simulation_id" in parameters:
        raw = simulation_arrival_fills(_simulation(organization, parameters),
                                       venue=str(parameters.get("venue", "SIM")))
    if not isinstance(raw, list) or not raw:
        raise _param_error("fills", "fills (executions with their arrival prices) or "
                                    "simulation_id is required")
    try:
        fills = [compliance.ExecutedFill(
            reference=str(f.get("reference", i + 1)),
            executed_at=dt.datetime.fromisoformat(str(f["executed_at"]).replace("Z", "+00:00")),
            venue=str(f.get("venue", compliance.OFF_VENUE)), strategy=str(f.get("strategy", "")),
            side=f["side"], quantity=Decimal(str(f["quantity"])),
            price=Decimal(str(f["price"])), arrival_price=Decimal(str(f["arrival_price"])))
            for i, f in enumerate(raw)]
        result = compliance.best_execution(fills)
    except (KeyError, ValueError, ArithmeticError, compliance.ComplianceInputError) as exc:
        raise _param_error("fills", f"invalid fill: {exc}") from None
    title = "Best-execution report"
    cols = ("reference", "executed_at", "venue", "strategy", "side", "quantity", "price",
            "arrival_price", "size_bucket", "slippage_bps", "cost")
    if fmt in ("csv", "xlsx"):
        return _tabular(title, organization, "", cols, result["fills"], fmt, []), title
    sections = []
    for key, label in (("by_venue", "venue"), ("by_strategy", "strategy"),
                       ("by_size", "size_bucket")):
        sections.append(TableSection(
            f"By {label.replace('_', ' ')}", [label.replace("_", " ").capitalize(), "Fills",
                                              "Notional", "Avg slippage (bps)", "Cost"],
            [[r[label], r["fills"], f"{r['notional']:,.2f}", f"{r['avg_slippage_bps']:.2f}",
              f"{r['cost']:,.2f}"] for r in result[key]], [2, 1, 1.6, 1.4, 1.4],
            right=[1, 2, 3, 4]))
    sections.append(TableSection(
        "Fills", ["Ref", "Time", "Venue", "Strategy", "Side", "Qty", "Price", "Arrival", "bps",
                  "Cost"],
        [[r["reference"], f"{r['executed_at'].astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}", r["venue"],
          r["strategy"],
          r["side"], f"{r['quantity']:f}", f"{r['price']:f}", f"{r['arrival_price']:f}",
          f"{r['slippage_bps']:.2f}", f"{r['cost']:,.2f}"] for r in result["fills"]],
        [0.7, 1.9, 0.8, 1.2, 0.6, 0.8, 0.9, 0.9, 0.7, 0.9], right=[5, 6, 7, 8, 9],
        note="Slippage is signed so that a positive number is a cost: side x (fill price - "
             "arrival price) / arrival price, in basis points; group averages are weighted by "
             "notional at the arrival price."))
    pdf = table_report_pdf(TableReport(organization.name, title,
                                       str(parameters.get("period", "as given")), sections))
    return pdf, title


def _audit_rows(organization: Organization, lo: dt.datetime, hi: dt.datetime
                ) -> list[dict[str, Any]]:
    events = AuditEvent.objects.filter(organization=organization, created_at__gte=lo,
                                       created_at__lt=hi).order_by("sequence")
    return [{"sequence": e.sequence, "created_at": e.created_at, "actor": e.actor_label,
             "action": e.action, "target": f"{e.target_type}:{e.target_id}".strip(":"),
             "ip_address": e.ip_address or "", "request_id": e.request_id,
             "entry_hash": e.entry_hash} for e in events]


def report_build(*, organization: Organization, kind: str, fmt: str,
                 parameters: dict[str, Any]) -> tuple[bytes, str]:
    """Produce one report's file content and title (raises ReportParameterError)."""
    if kind == ReportKind.PERFORMANCE:
        sim = _simulation(organization, parameters)
        data = simulation_performance_input(sim, organization, parameters)
        return performance_pdf(data), data.subject
    if kind == ReportKind.STATEMENT:
        return _statement(organization, parameters, fmt)
    if kind == ReportKind.TRADES:
        return _trades(organization, parameters, fmt)
    if kind == ReportKind.TAX:
        return _tax(parameters, fmt, organization)
    if kind == ReportKind.RTS22:
        return _rts22(organization, parameters, fmt)
    if kind == ReportKind.BEST_EXECUTION:
        return _best_execution(organization, parameters, fmt)
    if kind == ReportKind.RISK_BREACHES:
        lo, hi, start, end = _window(parameters)
        title = f"Risk-limit breaches {start} to {end}"
        return _tabular(title, organization, f"{start} to {end}", compliance.BREACH_COLUMNS,
                        breach_rows(organization, lo, hi), fmt,
                        [1.6, 0.9, 0.7, 1.2, 0.8, 0.6, 3]), title
    if kind == ReportKind.AUDIT:
        lo, hi, start, end = _window(parameters)
        title = f"Audit log {start} to {end}"
        return _tabular(title, organization, f"{start} to {end}", compliance.AUDIT_COLUMNS,
                        _audit_rows(organization, lo, hi), fmt,
                        [0.6, 1.6, 1.8, 1.6, 1.2, 1, 1, 2.2]), title
    raise _param_error("kind", f"unknown report kind {kind!r}")

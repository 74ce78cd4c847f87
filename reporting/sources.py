"""Where report data comes from, and how each kind of report is produced from it.

`report_build(organization=, kind=, fmt=, parameters=)` returns ``(bytes, title)`` and is the
one function the generation task calls. Sources:

* **simulation** — a finished simulation's stored results, read through the trading app's
  selectors (`simulation_performance_input` is the small adapter from its rows to the pure
  builder's `PerformanceInput`);
* **deployment / broker account** — the fills (`LiveFill`), orders and step events of one
  deployment (``deployment``) or of every deployment on a broker account (``broker_account``),
  read through `trading.selectors_live`: statements, US/UK tax, RTS 22, best execution and
  (one deployment) performance beside the backtest of the same bars;
* **account** — an `AccountActivity` given in the parameters (JSON);
* **tax** — the tax engine (`reporting.tax`) over those fills or over trades given as CSV text;
* **risk_breaches** — the risk app's recorded breaches;
* **audit** — the organisation's audit log.

Parameters are validated here and errors raised as `ReportParameterError` with the field at
fault, which the API turns into a 400; `parameters_check` runs the organisation checks of the
ids when a report or subscription is requested, so a foreign id is refused at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
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
    ZERO,
    AccountActivity,
    Fill,
    Holding,
    StatementInputError,
    activity_from_dict,
    statement_compute,
)

logger = logging.getLogger("nexow.reporting")


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
    entity = str(parameters.get("executing_entity", ""))
    if fmt == "xml" and not compliance.is_lei(entity):
        raise _param_error("executing_entity", "executing_entity must be the firm's LEI (20 "
                                               "characters with valid check digits)")
    live = live_account(organization, parameters)
    if live is not None:
        txs = live_transactions(organization, live, parameters)
        title = f"RTS 22 transactions, {live.label}"
    else:
        sim, fills = _simulation_fills(organization, parameters)
        version = sim.strategy_version
        algo = f"NEXOW-{version.strategy.kind}-{version.strategy_id}-v{version.number}"[:50]
        venue = str(parameters.get("venue", compliance.OFF_VENUE))
        currency = str(parameters.get("currency", "USD"))
        isins = _isins(parameters)
        txs = [compliance.Transaction(
            reference=f"SIM{sim.pk}-{i + 1}",
            executed_at=dt.datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")),
            instrument=str(isins.get(f["symbol"], f["symbol"])), instrument_name=f["symbol"],
            side=f["side"], quantity=Decimal(repr(f["quantity"])),
            price=Decimal(repr(f["price"])), currency=currency, venue=venue,
            decision_maker=str(parameters.get("decision_maker", "")), algorithm_id=algo,
            counterparty=str(parameters.get("counterparty", "")),
            trading_capacity=str(parameters.get("trading_capacity", "DEAL")),
            person_country=str(parameters.get("branch_country", "")))
            for i, f in enumerate(fills)]
        title = f"RTS 22 transactions, simulation {sim.pk}"
    if fmt == "csv":
        return compliance.rts22_csv(txs, executing_entity=entity).encode(), title
    problems = compliance.rts22_xml_problems(txs, executing_entity=entity)
    if problems:
        field = problems[0][0]
        raise _param_error(field, "; ".join(m for f, m in problems if f == field)[:1000])
    return compliance.rts22_xml(txs, executing_entity=entity), title


def _isins(parameters: dict[str, Any]) -> dict[str, str]:
    isins = parameters.get("isins", {})
    if not isinstance(isins, dict) or not all(compliance.is_isin(str(v))
                                              for v in isins.values()):
        raise _param_error("isins", "isins must map symbols to valid ISINs")
    return {str(k): str(v) for k, v in isins.items()}


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
    notes: list[str] = []
    live = live_account(organization, parameters)
    try:
        if live is not None:
            _, hi, start, end = _window(parameters)
            statement = statement_compute(live_account_activity(organization, live, start,
                                                                end))
            step = live_step_equity(live, _ns(hi))
            notes.append(
                "From the account's fills (LiveFill, as stored); positions marked at the close "
                "of the last bar processed before each boundary. Equity recorded by the last "
                f"step before the end: {step.quantize(Decimal('0.01'))} "
                f"{live.currency}.")
            if any(d.broker_account.kind != "paper" for d in live.deployments):
                notes.append(
                    "Exchange deployments keep their own book: the opening cash is each "
                    "deployment's configured budget, and only its own fills move it. The "
                    "statement is the deployments' books, not the exchange account's balance.")
        elif "simulation_id" in parameters:
            sim = _simulation(organization, parameters)
            _, _, start, end = _window(parameters)
            statement = statement_compute(simulation_account_activity(sim, start, end))
        elif isinstance(data, dict):
            statement = statement_compute(activity_from_dict(data))
        else:
            raise _param_error("account", "account (the account activity object), or "
                                          "deployment, broker_account or simulation_id with "
                                          "start and end, is required")
    except StatementInputError as exc:
        raise _param_error("account", str(exc)) from None
    a = statement.activity
    title = f"Statement {a.account} {a.period_start} to {a.period_end}"
    if fmt == "xlsx":
        return excel.statement_xlsx(statement), title
    return statement_pdf(statement, organization=organization.name, notes=notes), title


def _tax(parameters: dict[str, Any], fmt: str, organization: Organization) -> tuple[bytes, str]:
    import io

    from reporting.tax import TaxConfigError, TaxInputError, parse_trades_text, uk_report, us_report
    from reporting.tax import output as tax_output
    from reporting.tax import pdf as tax_pdf

    live = live_account(organization, parameters)
    text = parameters.get("trades_csv")
    if live is None and (not isinstance(text, str) or not text.strip()):
        raise _param_error("trades_csv", "trades_csv (the trades as CSV text), deployment or "
                                         "broker_account is required")
    jurisdiction = parameters.get("jurisdiction", "us")
    year = parameters.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise _param_error("year", "year (an integer tax year) is required")
    source_field = "trades_csv" if live is None else \
        ("deployment" if "deployment" in parameters else "broker_account")
    try:
        trades = parse_trades_text(text) if live is None else \
            live_tax_trades(organization, live, parameters)
        if jurisdiction == "uk":
            report = uk_report(trades, year)
        elif jurisdiction == "us":
            report = us_report(trades, year, method=parameters.get("method", "fifo"))
        else:
            raise _param_error("jurisdiction", "jurisdiction must be 'us' or 'uk'")
    except TaxInputError as exc:
        raise _param_error(source_field, str(exc)) from None
    except TaxConfigError as exc:
        raise _param_error("method", str(exc)) from None
    title = f"{jurisdiction.upper()} tax report {year}"
    if live is not None:
        title += f", {live.label}"
    if fmt == "csv":
        csv_text = tax_output.uk_csv(report) if jurisdiction == "uk" else tax_output.us_csv(report)
        return csv_text.encode(), title
    if fmt == "json":
        json_text = tax_output.uk_json(report) if jurisdiction == "uk" else \
            tax_output.us_json(report)
        return json_text.encode(), title
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
    live = live_account(organization, parameters)
    note = ("Slippage is signed so that a positive number is a cost: side x (fill price - "
            "arrival price) / arrival price, in basis points; group averages are weighted by "
            "notional at the arrival price.")
    if live is not None:
        raw = live_arrival_fills(organization, live, venue=parameters.get("venue"))
        note += (" Arrival price: the close of the order's decision bar (the bar at whose "
                 "close the strategy, or the person, decided).")
        if not raw:
            raise _param_error("deployment" if "deployment" in parameters else "broker_account",
                               "the account has no fills with a known decision price")
    elif "simulation_id" in parameters:
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
    title = "Best-execution report" + (f", {live.label}" if live is not None else "")
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
        note=note))
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


# --- deployment / broker account source ---------------------------------------------------
# A paper deployment trades its own paper book funded with its configured cash; a broker
# account's statement is the sum of its deployments' books. Fills are `LiveFill` rows (Decimal
# as stored); marks are the closes of the deployment's last processed bar that started before
# the boundary (`trading.selectors_live.deployment_closes` says where closes come from).

@dataclass(slots=True)
class LiveAccount:
    """The deployments a report covers and how to name them."""

    label: str
    deployments: list[Any]
    currency: str = "USD"


def _int_param(parameters: dict[str, Any], name: str) -> int:
    raw = parameters.get(name)
    text = str(raw)
    # ASCII digits only ("²" is a digit to str.isdigit), and within a database id's range
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not text.isascii() \
            or not text.isdecimal() or len(text) > 18:
        raise _param_error(name, f"{name} must be the integer id of one of your "
                                 f"{name.replace('_', ' ')}s")
    return int(text)


def _quote_currency(deployments: list[Any], default: str = "USD") -> str:
    """The currency a set of deployments keeps its books in: the quote currency shared by the
    pairs of exchange accounts (``BTC/USDT`` → USDT), the platform's USD for paper books."""
    from trading.models import BrokerKind

    quotes = {s.split("/", 1)[1] for d in deployments if d.broker_account.kind != BrokerKind.PAPER
              for s in d.symbols if "/" in s}
    return quotes.pop() if len(quotes) == 1 else default


def live_account(organization: Organization, parameters: dict[str, Any]
                 ) -> LiveAccount | None:
    """The deployment or broker account named by the parameters, in this organisation only
    (another organisation's id is reported exactly like a missing one); None when neither
    parameter is given."""
    from trading.selectors_live import broker_account_list, deployment_list

    has_dep, has_account = "deployment" in parameters, "broker_account" in parameters
    if has_dep and has_account:
        raise _param_error("deployment", "give deployment or broker_account, not both")
    currency = parameters.get("currency")
    if currency is not None and not (isinstance(currency, str) and len(currency) in (3, 4)
                                     and currency.isascii() and currency.isalpha()):
        raise _param_error("currency", "currency must be a 3 or 4 letter code (USD, USDT)")
    if has_dep:
        pk = _int_param(parameters, "deployment")
        dep = deployment_list(organization=organization).filter(pk=pk).first()
        if dep is None:
            raise _param_error("deployment", f"no deployment {pk} in this organisation")
        name = dep.name or dep.strategy_version.strategy.name
        return LiveAccount(f"Deployment {dep.pk} ({name}) on {dep.broker_account.name}",
                           [dep], (currency or _quote_currency([dep])).upper())
    if has_account:
        pk = _int_param(parameters, "broker_account")
        account = broker_account_list(organization=organization).filter(pk=pk).first()
        if account is None:
            raise _param_error("broker_account", f"no broker account {pk} in this organisation")
        deps = list(deployment_list(organization=organization, broker_account=account)
                    .order_by("pk"))
        return LiveAccount(f"Broker account {account.name} ({account.get_kind_display()}, "
                           f"{account.mode})", deps, (currency or _quote_currency(deps)).upper())
    return None


def parameters_check(*, organization: Organization, kind: str, parameters: dict[str, Any],
                     caller: Any = None) -> None:
    """Check the ids in the parameters against the organisation when a report is requested,
    so another organisation's (or a missing) object is a 400 naming the field at once rather
    than a failed report later; and that the caller may read what the report discloses: a
    deployment's or account's report lists its orders and fills, so it needs ``orders:read``
    as well as the report scope (an API key scoped to reports alone is refused, 403)."""
    live = live_account(organization, parameters)
    if live is not None and caller is not None and not caller.has_scope("orders:read"):
        from nexow_site.errors import Forbidden

        raise Forbidden("A report of a deployment or broker account discloses its orders and "
                        "fills: it needs the orders:read scope.")
    if "simulation_id" in parameters:
        from trading.selectors import simulation_list

        sim_id = parameters.get("simulation_id")
        if not isinstance(sim_id, int) or isinstance(sim_id, bool) or not simulation_list(
                organization=organization).filter(pk=sim_id).exists():
            raise _param_error("simulation_id", f"no simulation {sim_id} in this organisation")
    if kind == ReportKind.PERFORMANCE and "broker_account" in parameters:
        raise _param_error("broker_account", "a performance report covers one deployment: "
                                             "give deployment")


def _moment(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns // 10**9, dt.UTC) + dt.timedelta(
        microseconds=(ts_ns % 10**9) // 1000)


def _symbol_labels(account: LiveAccount, fills: list[Any]) -> dict[tuple[int, str], str]:
    """How each (deployment, symbol) is named: the symbol, or the symbol and the deployment
    when several deployments of the account hold it (each paper book has its own prices)."""
    owners: dict[str, set[int]] = {}
    for f in fills:
        owners.setdefault(f.symbol, set()).add(f.deployment_id)
    return {(d, s): s if len(ds) == 1 else f"{s} (deployment {d})"
            for s, ds in owners.items() for d in ds}


def _marks(account: LiveAccount, fills: list[Any], labels: dict[tuple[int, str], str],
           before_ns: int, field: str) -> dict[str, Decimal]:
    """The closes, at the last processed bar starting before `before_ns`, of the positions
    the fills leave open at that time."""
    from trading.selectors_live import bar_index, bar_timestamp, deployment_closes

    held: dict[tuple[int, str], Decimal] = {}
    for f in fills:
        if f.ts < before_ns:
            key = (f.deployment_id, f.symbol)
            held[key] = held.get(key, ZERO) + (f.quantity if f.side == "buy" else -f.quantity)
    out: dict[str, Decimal] = {}
    for dep in account.deployments:
        open_symbols = [s for (d, s), q in held.items() if d == dep.pk and q != 0]
        if not open_symbols:
            continue
        k = min(bar_index(dep, before_ns - 1), bar_index(dep, dep.last_bar_ts))
        ts = bar_timestamp(dep, k)
        closes = deployment_closes(deployment=dep, timestamps=[ts]).get(ts)
        if closes is None:
            raise _param_error(field, f"no price of deployment {dep.pk}'s bar at "
                                      f"{_moment(ts):%Y-%m-%d %H:%M} UTC")
        for s in open_symbols:
            out[labels[(dep.pk, s)]] = _dec(closes[s])
    return out


def _starting_cash(account: LiveAccount) -> Decimal:
    from trading.selectors_live import deployment_config

    return sum((Decimal(str(deployment_config(d)["cash"])) for d in account.deployments
                if d.feed_anchor_ns is not None), ZERO)


def live_account_activity(organization: Organization, account: LiveAccount, start: dt.date,
                          end: dt.date) -> AccountActivity:
    """The account over [start, end] from its fills: the fills before `start` replayed at
    average cost from the starting cash give the opening cash and positions; positions are
    marked at the closes of the last processed bar before each boundary."""
    from trading.models import BrokerKind
    from trading.selectors_live import live_fills

    rows = live_fills(organization=organization, deployments=account.deployments)
    labels = _symbol_labels(account, rows)
    venue = {d.pk: ("PAPER" if d.broker_account.kind == BrokerKind.PAPER
                    else d.broker_account.kind.upper()) for d in account.deployments}
    fills = [Fill(_moment(f.ts), labels[(f.deployment_id, f.symbol)], f.side, f.quantity,
                  f.price, f.fee, venue[f.deployment_id], f.fill_id) for f in rows]
    lo = dt.datetime.combine(start, dt.time.min, dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, dt.UTC)
    lo_ns, hi_ns = _ns(lo), _ns(hi)
    opening_prices = _marks(account, rows, labels, lo_ns, "start")
    closing_prices = _marks(account, rows, labels, hi_ns, "end")
    opening = statement_compute(AccountActivity(
        account="", period_start=start, period_end=start, opening_cash=_starting_cash(account),
        fills=[f for f in fills if f.time < lo], closing_prices=opening_prices))
    return AccountActivity(
        account=account.label, period_start=start, period_end=end, currency=account.currency,
        opening_cash=opening.closing_cash,
        opening_positions=[Holding(p.symbol, p.quantity, p.average_cost)
                           for p in opening.positions],
        opening_prices=opening_prices, fills=[f for f in fills if lo <= f.time < hi],
        closing_prices=closing_prices)


def live_step_equity(account: LiveAccount, before_ns: int) -> Decimal:
    """The equity the deployments' last steps before `before_ns` recorded (a deployment
    without a step by then counts its starting cash)."""
    from trading.selectors_live import deployment_config, deployment_steps

    total = ZERO
    for dep in account.deployments:
        steps = [p for p in deployment_steps(deployment=dep) if p.ts < before_ns]
        if steps:
            total += steps[-1].equity
        elif dep.feed_anchor_ns is not None:
            total += Decimal(str(deployment_config(dep)["cash"]))
    return total


def _tax_asset_classes(organization: Organization, symbols: set[str],
                       parameters: dict[str, Any]) -> dict[str, str]:
    from trading.models import AssetClass
    from trading.selectors_live import instrument_asset_classes

    flagged = parameters.get("digital_assets", [])
    if not isinstance(flagged, list) or not all(isinstance(s, str) for s in flagged):
        raise _param_error("digital_assets", "digital_assets must be a list of symbols")
    known = instrument_asset_classes(organization=organization, symbols=symbols)
    return {s: "digital_asset" if s in flagged or known.get(s) == AssetClass.CRYPTO
            else "security" for s in symbols}


def live_tax_trades(organization: Organization, account: LiveAccount,
                    parameters: dict[str, Any]) -> list[Any]:
    """The account's fills as the tax engine's trades (validated; ids ``D<deployment>-<fill
    id>``, times kept so fills of one day stay in order)."""
    from reporting.tax import Trade, trades_from_objects
    from trading.selectors_live import live_fills

    rows = live_fills(organization=organization, deployments=account.deployments)
    classes = _tax_asset_classes(organization, {f.symbol for f in rows}, parameters)
    return trades_from_objects([
        Trade(id=f"D{f.deployment_id}-{f.fill_id}", date=_moment(f.ts), symbol=f.symbol,
              side=f.side, quantity=f.quantity, price=f.price, fee=f.fee,
              asset_class=classes[f.symbol]) for f in rows])


def _algorithm_id(version: Any) -> str:
    return f"NEXOW-{version.strategy.kind}-{version.strategy_id}-v{version.number}"[:50]


def _is_manual(order: Any) -> bool:
    return order is not None and order.leg.split(":", 1)[0] in ("manual", "flatten")


def live_transactions(organization: Organization, account: LiveAccount,
                      parameters: dict[str, Any]) -> list[compliance.Transaction]:
    """RTS 22 transactions of the account's fills: an algorithm decided and executed the
    strategy's orders; a person (`decision_maker`) the manual ones."""
    from trading.models import BrokerKind
    from trading.selectors_live import live_fills, live_orders_by_client_id

    rows = live_fills(organization=organization, deployments=account.deployments)
    orders = live_orders_by_client_id(organization=organization,
                                      deployments=account.deployments)
    by_id = {d.pk: d for d in account.deployments}
    isins = _isins(parameters)
    person = str(parameters.get("decision_maker", ""))
    txs = []
    for f in rows:
        dep = by_id[f.deployment_id]
        default_venue = compliance.OFF_VENUE if dep.broker_account.kind == BrokerKind.PAPER \
            else dep.broker_account.options.get("mic", compliance.OFF_VENUE)
        manual = _is_manual(orders.get(f.client_order_id))
        txs.append(compliance.Transaction(
            reference=f"NX{f.deployment_id}F{f.pk}", executed_at=_moment(f.ts),
            instrument=str(isins.get(f.symbol, f.symbol)), instrument_name=f.symbol,
            side=f.side, quantity=f.quantity, price=f.price, currency=account.currency,
            venue=str(parameters.get("venue", default_venue)),
            decision_maker=person if manual else "",
            algorithm_id=None if manual else _algorithm_id(dep.strategy_version),
            counterparty=str(parameters.get("counterparty", "")),
            trading_capacity=str(parameters.get("trading_capacity", "DEAL")),
            person_country=str(parameters.get("branch_country", ""))))
    return txs


def live_arrival_fills(organization: Organization, account: LiveAccount, *,
                       venue: str | None = None) -> list[dict[str, Any]]:
    """The account's fills with the price when each order was decided: the close of the
    order's decision bar (`LiveOrder.decision_ts`), read from the deployment's bars; an order
    without a decision bar falls back to the bar before the fill's, as for simulations."""
    from trading.selectors_live import (
        bar_index,
        bar_timestamp,
        deployment_closes,
        live_fills,
        live_orders_by_client_id,
    )

    rows = live_fills(organization=organization, deployments=account.deployments)
    orders = live_orders_by_client_id(organization=organization,
                                      deployments=account.deployments)
    by_id = {d.pk: d for d in account.deployments}
    decision: dict[int, int] = {}
    for f in rows:
        order = orders.get(f.client_order_id)
        dep = by_id[f.deployment_id]
        decision[f.pk] = order.decision_ts if order is not None and order.decision_ts else \
            bar_timestamp(dep, bar_index(dep, f.ts) - 1)
    closes: dict[int, dict[int, dict[str, float]]] = {
        d.pk: deployment_closes(deployment=d, timestamps=[
            decision[f.pk] for f in rows if f.deployment_id == d.pk])
        for d in account.deployments}
    out = []
    for f in rows:
        dep = by_id[f.deployment_id]
        bar = closes[dep.pk].get(decision[f.pk])
        if bar is None:
            continue  # no bar known at the decision time (reported in the note)
        manual = _is_manual(orders.get(f.client_order_id))
        out.append({"reference": f"NX{f.deployment_id}F{f.pk}", "executed_at": _moment(f.ts),
                    "venue": venue or ("PAPER" if dep.broker_account.kind == "paper"
                                       else dep.broker_account.kind.upper()),
                    "strategy": "manual" if manual else dep.strategy_version.strategy.name,
                    "side": f.side, "quantity": f.quantity, "price": f.price,
                    "arrival_price": _dec(bar[f.symbol])})
    return out


def _round_trips(rows: list[Any]) -> list[TradeRow]:
    """Round trips per deployment and symbol: from flat to flat again (entry and exit prices
    are quantity-weighted averages; P&L is net of the fees of the trip). A fill that takes the
    position through zero (long 10, sell 15) closes the trip with the part that flattens it
    and opens the next, short trip with the rest; its fee is shared in proportion."""
    book: dict[tuple[int, str], dict[str, Any]] = {}
    trips: list[TradeRow] = []
    for f in rows:
        key = (f.deployment_id, f.symbol)
        direction = 1 if f.side == "buy" else -1
        quantity, fee = f.quantity, f.fee
        while quantity > 0:
            t = book.get(key)
            if t is None:
                t = book[key] = {"pos": ZERO, "side": "long" if direction > 0 else "short",
                                 "entry": _moment(f.ts), "in_q": ZERO, "in_v": ZERO,
                                 "out_q": ZERO, "out_v": ZERO, "fees": ZERO}
            opening = (direction > 0) == (t["side"] == "long")
            part = quantity if opening else min(quantity, abs(t["pos"]))
            part_fee = fee if part == quantity else fee * part / quantity
            t["in_q" if opening else "out_q"] += part
            t["in_v" if opening else "out_v"] += part * f.price
            t["fees"] += part_fee
            t["pos"] += direction * part
            quantity, fee = quantity - part, fee - part_fee
            if t["pos"] == 0:
                sign = 1 if t["side"] == "long" else -1
                pnl = sign * (t["out_v"] - t["in_v"]) - t["fees"]
                trips.append(TradeRow(f.symbol, t["side"], t["entry"], _moment(f.ts),
                                      float(t["in_q"]), float(t["in_v"] / t["in_q"]),
                                      float(t["out_v"] / t["out_q"]), float(pnl),
                                      float(t["fees"])))
                del book[key]
    return trips


def _divergence_backtest(dep: Any, notes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The backtest over the deployment's bars, from the divergence monitor when the
    platform has it (a failure there costs the comparison, not the report: it is noted)."""
    try:
        from trading.services.divergence import deployment_divergence
    except ImportError:
        return None
    try:
        points = deployment_divergence(dep).to_dict()["backtest"]["equity"]
    except Exception as exc:  # noqa: BLE001 - the live figures stand without the comparison
        logger.warning("divergence of deployment %s failed: %s", dep.pk, exc)
        notes.append(f"The backtest of the same bars could not be computed ({exc}).")
        return None
    if len(points) < 2:
        return None
    return (np.asarray([p[0] for p in points], dtype=np.int64),
            np.asarray([p[1] for p in points], dtype=np.float64))


def deployment_performance_input(organization: Organization, account: LiveAccount,
                                 parameters: dict[str, Any]) -> PerformanceInput:
    """A deployment's performance: the live equity its steps recorded, with the backtest of
    the same bars beside it when the divergence monitor is available."""
    from trading.engine.metrics import periods_per_year
    from trading.selectors_live import deployment_steps, live_fills

    dep = account.deployments[0]
    steps = deployment_steps(deployment=dep)
    if len(steps) < 2:
        raise _param_error("deployment", f"deployment {dep.pk} has fewer than two steps: "
                                         "nothing to measure yet")
    ts = np.asarray([p.ts for p in steps], dtype=np.int64)
    eq = np.asarray([float(p.equity) for p in steps], dtype=np.float64)
    calendar = str(parameters.get("calendar", "exchange"))
    if calendar not in ("exchange", "24/7"):
        raise _param_error("calendar", "calendar must be 'exchange' or '24/7'")
    version = dep.strategy_version
    notes = [f"Live equity: the {len(steps)} step(s) the deployment recorded, one point per "
             "step (a running deployment steps once per bar)."]
    backtest = _divergence_backtest(dep, notes)
    main_ts, main_eq, live_ts, live_eq = ts, eq, None, None
    if backtest is not None:
        main_ts, main_eq, live_ts, live_eq = backtest[0], backtest[1], ts, eq
        notes.append("The main series is the backtest of the same bars (the divergence "
                     "monitor's replay, one point per bar); the live series is the "
                     "deployment's.")
    else:
        notes.append("No backtest of the same bars is available: the report shows the live "
                     "equity alone.")
    # Annualised at the main series' own spacing (per bar for the backtest, per step alone).
    period_seconds = float(np.median(np.diff(main_ts))) / 1e9
    notes.append(f"Annualisation: {periods_per_year(calendar, period_seconds):g} periods a "
                 f"year ({period_seconds:g} s apart, {calendar} calendar).")
    trades = _round_trips(live_fills(organization=organization, deployments=[dep]))
    return PerformanceInput(
        organization=organization.name,
        subject=f"{account.label}: {version.strategy.name} v{version.number}",
        timestamps=main_ts, equity=main_eq,
        periods_per_year=periods_per_year(calendar, period_seconds),
        currency=account.currency,
        risk_free_annual=float(parameters.get("risk_free_annual", 0.0)),
        trades=trades, n_params=len(version.params or {}), live_timestamps=live_ts,
        live_equity=live_eq, rolling_window=int(parameters.get("rolling_window", 63)),
        notes=notes)


def report_build(*, organization: Organization, kind: str, fmt: str,
                 parameters: dict[str, Any]) -> tuple[bytes, str]:
    """Produce one report's file content and title (raises ReportParameterError)."""
    if kind == ReportKind.PERFORMANCE:
        live = live_account(organization, parameters)
        if live is not None:
            if "broker_account" in parameters:
                raise _param_error("broker_account", "a performance report covers one "
                                                     "deployment: give deployment")
            data = deployment_performance_input(organization, live, parameters)
            return performance_pdf(data), data.subject
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

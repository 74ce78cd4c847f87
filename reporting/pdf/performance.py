"""The performance report PDF of a simulation or an account.

Input is a plain `PerformanceInput` (an equity curve with timestamps, optional benchmark, trades,
exposure, turnover, cash flows, a live series and robustness checks), so it is built and tested
without the database. Every figure comes from the engine's one metrics implementation
(`trading.engine.metrics.compute_metrics` and its chart helpers) or from `reporting.performance`
(TWR/MWR); nothing is recomputed here. Sections, in order: cover; key metrics; charts (equity vs
benchmark, underwater, monthly heatmap, rolling Sharpe and volatility, return distribution);
trade statistics and the largest trades; time- and money-weighted returns with their disclosure;
robustness checks; live vs backtest; the methodology appendix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from reportlab.platypus import CondPageBreak, KeepTogether, PageBreak, Spacer

from reporting import performance as returns_math
from reporting.pdf import charts
from reporting.pdf.common import (
    BODY,
    H1,
    H2,
    SMALL,
    SUBTITLE,
    TITLE,
    build_pdf,
    fmt_date,
    fmt_money,
    fmt_pct,
    fmt_quantity,
    fmt_ratio,
    key_value_table,
    para,
    room,
    table,
    to_money,
)
from trading.engine import metrics as m
from trading.engine.types import MetricInputs

DEFAULT_ROLLING_WINDOW = 63  # about a quarter of daily bars
LARGEST_TRADES = 10


@dataclass(frozen=True, slots=True)
class TradeRow:
    symbol: str
    side: str
    entry_time: dt.datetime
    exit_time: dt.datetime | None
    quantity: float
    entry_price: float
    exit_price: float | None
    pnl: float
    fees: float = 0.0


@dataclass(slots=True)
class PerformanceInput:
    organization: str
    subject: str
    timestamps: np.ndarray  # int64 ns UTC
    equity: np.ndarray  # float64
    periods_per_year: float
    currency: str = "USD"
    risk_free_annual: float = 0.0
    benchmark_name: str | None = None
    benchmark_equity: np.ndarray | None = None
    trades: list[TradeRow] = field(default_factory=list)
    exposure: np.ndarray | None = None
    traded_notional: np.ndarray | None = None
    n_params: int = 0
    robustness: dict[str, Any] | None = None
    # Accounts with external flows: dated, signed (+ deposit, - withdrawal) Decimal amounts.
    cash_flows: list[returns_math.CashFlow] = field(default_factory=list)
    live_timestamps: np.ndarray | None = None
    live_equity: np.ndarray | None = None
    rolling_window: int = DEFAULT_ROLLING_WINDOW
    generated_at: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def period(self) -> tuple[dt.date, dt.date]:
        ts = np.asarray(self.timestamps, dtype="datetime64[ns]")
        return (ts[0].astype("datetime64[D]").item(), ts[-1].astype("datetime64[D]").item())


# Label, metrics key, formatter: the key metrics table, in reading order.
def _days(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.0f} days"


METRIC_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("Total return", "total_return", fmt_pct),
    ("CAGR", "cagr", fmt_pct),
    ("Volatility (annualised)", "volatility_annual", fmt_pct),
    ("Sharpe ratio", "sharpe", fmt_ratio),
    ("Sortino ratio", "sortino", fmt_ratio),
    ("Calmar ratio", "calmar", fmt_ratio),
    ("Max drawdown", "max_drawdown", fmt_pct),
    ("Max drawdown duration", "max_drawdown_duration_days", _days),
    ("Win rate (trades)", "win_rate_trades", fmt_pct),
    ("Profit factor (trades)", "profit_factor_trades", fmt_ratio),
    ("Expectancy per trade", "expectancy", lambda v: fmt_money(v) if v is not None else "n/a"),
    ("Exposure (time in market)", "exposure_time", fmt_pct),
    ("Turnover (annual)", "turnover_annual", lambda v: "n/a" if v is None else f"{v:,.2f}x"),
    ("Beta", "beta", fmt_ratio),
    ("Alpha (annualised)", "alpha", fmt_pct),
    ("Probabilistic Sharpe", "probabilistic_sharpe", fmt_pct),
)

METHODOLOGY: tuple[tuple[str, str], ...] = (
    ("Returns", "Simple per-period returns of the equity curve, r_t = E_t / E_(t-1) - 1."),
    ("Periods per year (ppy)", "Exchange calendar: 252 trading days of 6.5 hours (daily bars "
     "252, hourly 1,638); 24/7 markets: 365 days of 24 hours; weekly bars 52."),
    ("Risk-free rate", "Given annually and compounded down to one period, "
     "rf_p = (1 + rf) ^ (1 / ppy) - 1."),
    ("Total return", "E_last / E_first - 1."),
    ("CAGR", "(1 + total return) ^ (1 / years) - 1 with years = number of returns / ppy."),
    ("Volatility", "Sample standard deviation (ddof = 1) of per-period returns times sqrt(ppy)."),
    ("Sharpe ratio", "mean(r - rf_p) / std(r - rf_p, ddof = 1) x sqrt(ppy)."),
    ("Sortino ratio", "mean(r - rf_p) x ppy / (DD x sqrt(ppy)), downside deviation DD = "
     "sqrt(mean(min(r - rf_p, 0)^2)) over all periods (empyrical)."),
    ("Max drawdown", "The lowest E_t / max(E_0..E_t) - 1; its duration runs from the peak to the "
     "bar that regains it (or the last bar), in calendar days."),
    ("Calmar ratio", "CAGR / |max drawdown|."),
    ("Win rate, profit factor", "Per closed trade: winning trades / trades; gross profit / gross "
     "loss."),
    ("Expectancy", "Mean profit or loss per closed trade, in the account currency."),
    ("Exposure", "Share of bars with an open position."),
    ("Turnover", "Traded notional / mean equity, per year of data."),
    ("Beta, alpha", "Against the named benchmark: beta = cov(r - rf_p, b - rf_p) / var(b - rf_p) "
     "(ddof = 1); alpha = (1 + mean((r - rf_p) - beta (b - rf_p))) ^ ppy - 1 (empyrical)."),
    ("Probabilistic Sharpe", "Bailey and Lopez de Prado (2012): probability that the true "
     "Sharpe ratio is above zero given the sample's length, skewness and kurtosis."),
    ("Rolling statistics", "Sharpe and volatility over a trailing window of the stated number of "
     "periods, annualised as above."),
    ("Distribution", "Histogram of per-period returns; 95% value at risk is the 5th percentile "
     "return and expected shortfall the mean of the returns at or below it."),
    ("TWR and MWR", returns_math.DISCLOSURE),
    ("Short samples", "With less than three months of data, annualised figures are shown but "
     "flagged as not meaningful; fewer than 30 trades makes per-trade statistics noisy."),
)


def metric_inputs(data: PerformanceInput) -> MetricInputs:
    pnl = np.array([t.pnl for t in data.trades], dtype=np.float64)
    notional = np.array([abs(t.quantity * t.entry_price) for t in data.trades], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tr = np.where(notional > 0, pnl / notional, np.nan)
    return MetricInputs(
        equity=np.asarray(data.equity, dtype=np.float64),
        timestamps=np.asarray(data.timestamps, dtype=np.int64),
        periods_per_year=float(data.periods_per_year), trade_pnl=pnl,
        trade_return=tr[np.isfinite(tr)], exposure=data.exposure,
        traded_notional=data.traded_notional, risk_free_annual=data.risk_free_annual,
        benchmark_equity=data.benchmark_equity, n_params=data.n_params)


def key_metrics(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The key-metrics table as (label, formatted value) pairs — what the PDF prints."""
    return [(label, fmt(metrics.get(key))) for label, key, fmt in METRIC_ROWS]


def _cover(data: PerformanceInput, metrics: dict[str, Any]) -> list[Any]:
    start, end = data.period
    generated = data.generated_at or dt.datetime.now(dt.UTC)
    out = [
        Spacer(1, 60),
        para(data.organization, SUBTITLE),
        para("Performance report", TITLE),
        para(data.subject, SUBTITLE),
        para(f"Period: {start.isoformat()} to {end.isoformat()}", SUBTITLE),
        Spacer(1, 10),
        para(f"Generated {generated:%Y-%m-%d %H:%M} UTC. Currency: {data.currency}. "
             f"Benchmark: {data.benchmark_name or 'none'}. Risk-free rate: "
             f"{fmt_pct(data.risk_free_annual)} a year. "
             f"{metrics['n_bars']:,} valuations, {metrics['periods_per_year']:,.0f} periods a "
             "year.", BODY),
    ]
    for warning in metrics.get("warnings") or []:
        out.append(para(f"Note: {warning}.", SMALL))
    for note in data.notes:
        out.append(para(note, SMALL))
    out.append(PageBreak())
    return out


def _trade_section(data: PerformanceInput, metrics: dict[str, Any]) -> list[Any]:
    out: list[Any] = [room(), para("Trades", H1)]
    pnl = np.array([t.pnl for t in data.trades], dtype=np.float64)
    stats = [
        ("Closed trades", f"{metrics['n_trades']:,}"),
        ("Win rate", fmt_pct(metrics.get("win_rate_trades"))),
        ("Average win", fmt_money(metrics.get("avg_win"))),
        ("Average loss", fmt_money(metrics.get("avg_loss"))),
        ("Expectancy", fmt_money(metrics.get("expectancy"))),
        ("Mean return per trade", fmt_pct(metrics.get("expectancy_return"))),
        ("Gross profit", fmt_money(float(pnl[pnl > 0].sum())) if pnl.size else "n/a"),
        ("Gross loss", fmt_money(float(pnl[pnl < 0].sum())) if pnl.size else "n/a"),
    ]
    out.append(key_value_table(stats))
    if data.trades:
        order = sorted(data.trades, key=lambda t: abs(t.pnl), reverse=True)[:LARGEST_TRADES]
        out += [room(), para(f"Largest {len(order)} trades by absolute P&L", H2)]
        out.append(table(
            ["Symbol", "Side", "Entry", "Exit", "Quantity", "Entry price", "Exit price", "P&L"],
            [(t.symbol, t.side, fmt_date(t.entry_time), fmt_date(t.exit_time),
              fmt_quantity(round(t.quantity, 8)), fmt_money(t.entry_price),
              fmt_money(t.exit_price) if t.exit_price is not None else "open",
              fmt_money(t.pnl)) for t in order],
            [1, 0.6, 1.5, 1.5, 1, 1.1, 1.1, 1.1], right=[4, 5, 6, 7]))
    return out


def twr_mwr(data: PerformanceInput) -> dict[str, Any]:
    """TWR and MWR of the curve, valuing it daily (last valuation of each UTC day)."""
    days = np.asarray(data.timestamps, dtype="datetime64[ns]").astype("datetime64[D]")
    last = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    valuations = [(days[i].item(), to_money(float(data.equity[i]))) for i in last]
    twr = returns_math.time_weighted_return(valuations, data.cash_flows)
    mwr = returns_math.money_weighted_return(
        start=valuations[0][0], end=valuations[-1][0], opening_value=valuations[0][1],
        closing_value=valuations[-1][1], flows=data.cash_flows)
    deposits = sum((f.amount for f in data.cash_flows if f.amount > 0), Decimal(0))
    withdrawals = -sum((f.amount for f in data.cash_flows if f.amount < 0), Decimal(0))
    return {"twr": twr, "mwr": mwr, "deposits": deposits, "withdrawals": withdrawals}


def _returns_section(data: PerformanceInput) -> list[Any]:
    try:
        res = twr_mwr(data)
    except returns_math.ReturnInputError as exc:
        return [para("Time- and money-weighted returns", H1),
                para(f"Not computed: {exc}.", BODY)]
    twr, mwr = res["twr"], res["mwr"]
    rows = [
        ("Time-weighted return (TWR), period", fmt_pct(twr["twr"])),
        ("TWR annualised", fmt_pct(twr["annualised"]) if twr["annualised"] is not None
         else "not annualised (< 1 year)"),
        ("Money-weighted return (MWR, IRR), period", fmt_pct(mwr["mwr"])),
        ("MWR annualised", fmt_pct(mwr["annualised"]) if mwr["annualised"] is not None
         else "not annualised (< 1 year)"),
        ("External deposits", fmt_money(res["deposits"])),
        ("External withdrawals", fmt_money(res["withdrawals"])),
    ]
    return [CondPageBreak(140), para("Time- and money-weighted returns", H1),
            key_value_table(rows, columns=1), para(returns_math.DISCLOSURE, SMALL)]


def _robustness_section(rob: dict[str, Any]) -> list[Any]:
    out: list[Any] = [CondPageBreak(160), para("Robustness checks", H1)]
    sig = rob.get("significance") or {}
    pvt = rob.get("parameters_vs_trades") or {}
    rows = [
        ("Mean return t-statistic", fmt_ratio(sig.get("t_stat"))),
        ("p-value (two-sided)", fmt_ratio(sig.get("p_value"), 3)),
        ("Significant at 5%", "yes" if sig.get("significant") else "no"),
        ("Tunable parameters", str(pvt.get("n_params", "n/a"))),
        ("Trades per parameter", fmt_ratio(pvt.get("trades_per_param"), 1)),
    ]
    for label, key in (("Monte Carlo (returns)", "monte_carlo_returns"),
                       ("Monte Carlo (trades)", "monte_carlo_trades")):
        mc = rob.get(key)
        if mc:
            dd = mc.get("max_drawdown", {})
            fr = mc.get("final_return", {})
            rows.append((f"{label}: final return percentile of the actual run",
                         fmt_ratio(fr.get("actual_percentile"), 0)))
            rows.append((f"{label}: 5th percentile max drawdown", fmt_pct(dd.get("p5"))))
    out.append(key_value_table(rows, columns=1))
    warnings = rob.get("warnings") or []
    out.append(para("Passed: no warnings." if rob.get("passed") else "Warnings:", BODY))
    for w in warnings:
        out.append(para(f"• {w}", BODY))
    return out


def _live_section(data: PerformanceInput, metrics: dict[str, Any]) -> list[Any]:
    live_eq = np.asarray(data.live_equity, dtype=np.float64)
    live_ts = np.asarray(data.live_timestamps, dtype=np.int64)
    ppy = data.periods_per_year
    live = m.compute_metrics(MetricInputs(equity=live_eq, timestamps=live_ts,
                                          periods_per_year=ppy,
                                          risk_free_annual=data.risk_free_annual))
    # The backtest over the live window, so both columns describe the same dates.
    bt_ts = np.asarray(data.timestamps, dtype=np.int64)
    window = (bt_ts >= live_ts[0]) & (bt_ts <= live_ts[-1])
    overlap = None
    if window.sum() >= 2:
        overlap = m.compute_metrics(MetricInputs(
            equity=np.asarray(data.equity)[window], timestamps=bt_ts[window],
            periods_per_year=ppy, risk_free_annual=data.risk_free_annual))
    rows = []
    for label, key, fmt in METRIC_ROWS[:8]:
        rows.append((label, fmt(metrics.get(key)),
                     fmt(overlap.get(key)) if overlap else "n/a", fmt(live.get(key))))
    series = [("Backtest", bt_ts[window] if window.sum() >= 2 else bt_ts,
               np.asarray(data.equity)[window] if window.sum() >= 2 else data.equity),
              ("Live", live_ts, live_eq)]
    return [PageBreak(), para("Live vs backtest", H1),
            para("The backtest column covers the whole run; the middle column is the backtest "
                 "restricted to the live trading window, which is the fair comparison.", SMALL),
            table(["Metric", "Backtest (full)", "Backtest (live window)", "Live"], rows,
                  [2.4, 1.3, 1.5, 1.3], right=[1, 2, 3]),
            Spacer(1, 8),
            charts.overlay_chart(series, title="Growth of 1: live vs backtest (live window)")]


def performance_story(data: PerformanceInput) -> tuple[list[Any], dict[str, Any]]:
    """The flowables of the report and the metrics they show."""
    inputs = metric_inputs(data)
    metrics = m.compute_metrics(inputs)
    eq = inputs.equity
    ts = inputs.timestamps
    r = m.simple_returns(eq)
    story = _cover(data, metrics)
    story += [para("Key metrics", H1), key_value_table(key_metrics(metrics)),
              para("Fractions are shown as percentages with two decimals, ratios with two "
                   "decimals; n/a means the figure cannot be computed from this data (see the "
                   "methodology appendix).", SMALL)]
    story.append(para("Charts", H1))
    story.append(charts.equity_chart(ts, eq, data.benchmark_equity,
                                     data.benchmark_name or "Benchmark"))
    story.append(Spacer(1, 6))
    story.append(charts.underwater_chart(ts, m.drawdown_series(eq)))
    table_data = m.monthly_returns_table(eq, ts)
    story.append(KeepTogether([Spacer(1, 6), charts.heatmap(table_data)]))
    w = data.rolling_window
    story.append(CondPageBreak(300))
    story.append(charts.rolling_chart(ts[1:], m.rolling_sharpe(r, w, data.periods_per_year,
                                                               data.risk_free_annual),
                                      title=f"Rolling Sharpe ratio ({w} periods)",
                                      percent=False))
    story.append(charts.rolling_chart(ts[1:], m.rolling_volatility(r, w, data.periods_per_year),
                                      title=f"Rolling volatility ({w} periods, annualised)",
                                      percent=True, colour=charts.BENCH))
    dist = m.returns_distribution(r, bins=40)
    story.append(charts.histogram_chart(dist["counts"], dist["edges"], var_95=dist["var_95"]))
    story.append(para(f"95% value at risk (one period): {fmt_pct(dist['var_95'])}; expected "
                      f"shortfall: {fmt_pct(dist['cvar_95'])}; skew {fmt_ratio(dist['skew'])}, "
                      f"excess kurtosis {fmt_ratio(dist['kurtosis_excess'])}.", SMALL))
    periods = m.drawdown_periods(eq, ts, top=5)
    if periods:
        story += [room(), para("Deepest drawdowns", H2)]
        story.append(table(["Peak", "Trough", "Recovered", "Depth", "Duration"], [
            (_ns_date(p["peak_time"]), _ns_date(p["trough_time"]),
             _ns_date(p["recovery_time"]) if p["recovery_time"] is not None else "not yet",
             fmt_pct(p["depth"]), _days(p["duration_days"])) for p in periods],
            [1, 1, 1, 0.8, 0.9], right=[3, 4]))
    story += _trade_section(data, metrics)
    story += _returns_section(data)
    if data.robustness:
        story += _robustness_section(data.robustness)
    if data.live_equity is not None and data.live_timestamps is not None \
            and len(data.live_equity) >= 2:
        story += _live_section(data, metrics)
    story += [PageBreak(), para("Methodology", H1),
              para("Every figure in this report comes from Nexow's single metrics "
                   "implementation; these are its conventions (empyrical/quantstats).", BODY),
              table(["Item", "Convention"], list(METHODOLOGY), [1.3, 4.5], zebra=False)]
    return story, metrics


def _ns_date(ns: int | None) -> str:
    if ns is None:
        return "n/a"
    return str(np.datetime64(int(ns), "ns").astype("datetime64[D]"))


def performance_pdf(data: PerformanceInput, target: str | Path | BinaryIO | None = None
                    ) -> bytes | None:
    """Render the report; returns the bytes when `target` is None."""
    story, _ = performance_story(data)
    start, end = data.period
    return build_pdf(story, target, title=f"Performance report — {data.subject}",
                     author=data.organization,
                     footer=f"{data.organization} · {data.subject} · {start} to {end}")


def trades_from_records(records: Sequence[dict[str, Any]]) -> list[TradeRow]:
    """TradeRows from dicts with the simulation trade fields."""
    return [TradeRow(symbol=r["symbol"], side=r["side"], entry_time=r["entry_time"],
                     exit_time=r.get("exit_time"), quantity=float(r["quantity"]),
                     entry_price=float(r["entry_price"]),
                     exit_price=None if r.get("exit_price") is None else float(r["exit_price"]),
                     pnl=float(r["pnl"]), fees=float(r.get("fees", 0.0))) for r in records]

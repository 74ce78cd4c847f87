"""Benchmark: building report PDFs at realistic and large sizes (target: each under 10 s).

Times, in wall-clock and CPU seconds, with pages and file size:

* a performance report of 2,520 daily bars (ten exchange years, 1,000 trades) with benchmark,
  robustness checks (200 Monte Carlo paths) and a live-vs-backtest section;
* a performance report of one year of 1-minute bars (98,280 points, 5,000 trades) — the charts
  are thinned to at most 600 points each, so the chart cost does not grow with the bars;
* a monthly statement with 5,000 fills (the activity table runs over many pages).

    python benchmarks/report_pdf.py
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporting.pdf.performance import PerformanceInput, TradeRow, performance_pdf  # noqa: E402
from reporting.pdf.statement import statement_pdf  # noqa: E402
from reporting.statements import AccountActivity, Fill, statement_compute  # noqa: E402
from trading.engine.robustness import robustness_report  # noqa: E402


def _timed(label: str, build) -> None:
    import pypdf

    wall, cpu = time.perf_counter(), time.process_time()
    pdf = build()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    print(f"{label:<48} {wall:6.2f} s wall {cpu:6.2f} s cpu {pages:4d} pages "
          f"{len(pdf) / 1024:8.0f} KiB")


def performance(n: int, bar_ns: int, ppy: float, n_trades: int, seed: int = 1) -> PerformanceInput:
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2015-01-02", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * bar_ns
    eq = 1e6 * np.cumprod(1 + rng.normal(0.0004 / (ppy / 252), 0.01 / np.sqrt(ppy / 252), n))
    bench = 1e6 * np.cumprod(1 + rng.normal(0.0003 / (ppy / 252), 0.009 / np.sqrt(ppy / 252), n))
    start = dt.datetime(2015, 1, 2)
    trades = [TradeRow(f"SYM{i % 50}", "long", start + dt.timedelta(hours=i),
                       start + dt.timedelta(hours=i + 5), 100.0, 50.0, 50.5,
                       float(rng.normal(20, 400))) for i in range(n_trades)]
    pnl = np.array([t.pnl for t in trades])
    return PerformanceInput(
        "Benchmark Capital", f"{n:,} bars, {n_trades:,} trades", ts, eq, ppy,
        benchmark_name="Index", benchmark_equity=bench, trades=trades,
        robustness=robustness_report(eq, trade_pnl=pnl, n_params=3, n_sims=200),
        live_timestamps=ts[-n // 10:], live_equity=eq[-n // 10:] * 1.001)


def statement(n_fills: int) -> AccountActivity:
    t0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
    fills = [Fill(t0 + dt.timedelta(minutes=7 * i), f"SYM{i % 40}", "buy" if i % 3 else "sell",
                  Decimal(10), Decimal("100.25") + Decimal(i % 17) / 4, Decimal("0.35"), "XNAS")
             for i in range(n_fills)]
    return AccountActivity("Benchmark account", dt.date(2024, 1, 1), dt.date(2024, 1, 31),
                           opening_cash=Decimal(10_000_000), fills=fills,
                           closing_prices={f"SYM{k}": Decimal("103.5") for k in range(40)})


def main() -> None:
    day, minute = 86_400 * 10**9, 60 * 10**9
    _timed("performance: 2,520 daily bars, 1,000 trades",
           lambda: performance_pdf(performance(2520, day, 252.0, 1000)))
    _timed("performance: 1 y of 1-minute bars, 5,000 trades",
           lambda: performance_pdf(performance(98_280, minute, 98_280.0, 5000)))
    _timed("statement: 5,000 fills",
           lambda: statement_pdf(statement_compute(statement(5000)),
                                 organization="Benchmark Capital"))


if __name__ == "__main__":
    main()

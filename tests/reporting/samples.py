"""Known data for the reporting tests: a small account month and a deterministic equity curve."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np

from reporting.pdf.performance import PerformanceInput, TradeRow
from reporting.statements import AccountActivity, AccountCashFlow, Fill, Holding

D = Decimal
UTC = dt.UTC


def account_activity() -> AccountActivity:
    """January 2024 of a small account (the numbers are worked through in test_statements)."""
    return AccountActivity(
        account="Main account", period_start=dt.date(2024, 1, 1),
        period_end=dt.date(2024, 1, 31), currency="USD", opening_cash=D("10000"),
        opening_positions=[Holding("ACME", D("100"), D("50"))],
        opening_prices={"ACME": D("55")},
        fills=[
            Fill(dt.datetime(2024, 1, 10, 15, 30, tzinfo=UTC), "ACME", "buy", D("100"),
                 D("60"), D("1"), "XNYS", "F1"),
            Fill(dt.datetime(2024, 1, 20, 15, 30, tzinfo=UTC), "ACME", "sell", D("50"),
                 D("70"), D("1"), "XNYS", "F2"),
        ],
        cash_flows=[
            AccountCashFlow(dt.date(2024, 1, 5), "deposit", D("5000")),
            AccountCashFlow(dt.date(2024, 1, 25), "withdrawal", D("1000")),
            AccountCashFlow(dt.date(2024, 1, 31), "fee", D("10"), "Platform fee"),
        ],
        closing_prices={"ACME": D("65")},
    )


def account_activity_dict() -> dict:
    return {
        "account": "Main account", "period_start": "2024-01-01", "period_end": "2024-01-31",
        "currency": "USD", "opening_cash": "10000",
        "opening_positions": [{"symbol": "ACME", "quantity": "100", "average_cost": "50"}],
        "opening_prices": {"ACME": "55"},
        "fills": [
            {"time": "2024-01-10T15:30:00Z", "symbol": "ACME", "side": "buy", "quantity": "100",
             "price": "60", "fee": "1", "venue": "XNYS", "reference": "F1"},
            {"time": "2024-01-20T15:30:00Z", "symbol": "ACME", "side": "sell", "quantity": "50",
             "price": "70", "fee": "1", "venue": "XNYS", "reference": "F2"},
        ],
        "cash_flows": [
            {"date": "2024-01-05", "kind": "deposit", "amount": "5000"},
            {"date": "2024-01-25", "kind": "withdrawal", "amount": "1000"},
            {"date": "2024-01-31", "kind": "fee", "amount": "10", "description": "Platform fee"},
        ],
        "closing_prices": {"ACME": "65"},
    }


def daily_timestamps(n: int, start: str = "2023-01-02") -> np.ndarray:
    days = np.datetime64(start) + np.arange(n).astype("timedelta64[D]")
    return days.astype("datetime64[ns]").astype(np.int64)


def performance_input(n: int = 400, *, trades: int = 12, live: bool = False,
                      organization: str = "Acme Capital LLP") -> PerformanceInput:
    rng = np.random.default_rng(7)
    ts = daily_timestamps(n)
    eq = 100_000 * np.cumprod(1 + rng.normal(0.0006, 0.01, n))
    bench = 100_000 * np.cumprod(1 + rng.normal(0.0003, 0.008, n))
    rows = [TradeRow("ACME", "long", dt.datetime(2023, 1, 3) + dt.timedelta(days=7 * i),
                     dt.datetime(2023, 1, 6) + dt.timedelta(days=7 * i), 10.0, 100.0 + i,
                     101.0 + i, float((-1) ** i * (100 + 10 * i))) for i in range(trades)]
    data = PerformanceInput(
        organization=organization, subject="Simulation 7: SMA crossover on ACME",
        timestamps=ts, equity=eq, periods_per_year=365.0, benchmark_name="SPY buy and hold",
        benchmark_equity=bench, trades=rows,
        generated_at=dt.datetime(2024, 2, 1, 9, 0, tzinfo=UTC))
    if live:
        data.live_timestamps = ts[-60:]
        data.live_equity = eq[-60:] * np.cumprod(1 + rng.normal(0, 0.002, 60))
    return data

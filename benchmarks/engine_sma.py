"""Benchmark: the reference SMA(10/50) crossover in Nexow, backtrader and vectorbt.

Generates one-minute GBM bars deterministically (seeded), writes them as the reference CSV and
reads them back, runs the reference strategy (SMA reference, shared docs) in the three engines,
checks that the trade lists and final equity agree within the reference tolerances (exit
status 1 if not) and prints bars per second of each engine and the ratios. Nexow is timed like
the peers (signals, fills, trades, final equity) and, on a second line, with its full metrics
set. Peers are imported lazily (the "bench" extras); a missing peer is reported and skipped.

    python benchmarks/engine_sma.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trading.engine.backtest import BacktestConfig, run_backtest  # noqa: E402
from trading.engine.costs import bps_commission  # noqa: E402
from trading.engine.data import read_csv, write_csv  # noqa: E402
from trading.engine.strategies import create_strategy  # noqa: E402
from trading.engine.synthetic import gbm  # noqa: E402
from trading.engine.types import BarSet  # noqa: E402

CASH = 100_000.0
FEE = 0.001
FAST, SLOW = 10, 50
PRICE_RTOL = 1e-9
EQUITY_RTOL = 1e-6

# One record per trade: (entry_bar, entry_price, exit_bar | None, exit_price | None, qty)
TradeRow = tuple[int, float, int | None, float | None, float]


def make_bars(n: int, seed: int = 20240101) -> BarSet:
    return gbm(n, seed=seed, s0=100.0, volatility=0.001, symbol="SYN")


def reference_csv(n: int, directory: Path, seed: int = 20240101) -> Path:
    return write_csv(make_bars(n, seed), directory / f"sma_ref_{n}.csv")


# --- Nexow ---------------------------------------------------------------------------------------
def run_nexow(bars: BarSet, metrics: bool = False) -> tuple[list[TradeRow], float]:
    """Trades and final equity, like the peers (metrics=True adds the full metrics set)."""
    result = run_backtest(bars, create_strategy("sma_cross", fast=FAST, slow=SLOW),
                          BacktestConfig(cash=CASH, commission=bps_commission(FEE * 10_000)),
                          metrics=metrics)
    trades = [(t.entry_bar, t.entry_price, t.exit_bar, t.exit_price, t.quantity)
              for t in result.trades]
    return trades, result.final_equity


# --- backtrader ----------------------------------------------------------------------------------
def run_backtrader(bars: BarSet) -> tuple[list[TradeRow], float]:
    import backtrader as bt
    import pandas as pd

    class TickData(bt.feeds.PandasData):
        lines = ("ctick",)
        params = (("ctick", -1),)

    class SmaReference(bt.Strategy):
        def __init__(self) -> None:
            fast = bt.ind.SMA(self.data.ctick, period=FAST)
            slow = bt.ind.SMA(self.data.ctick, period=SLOW)
            self.cross = bt.ind.CrossOver(fast, slow)
            self.signal = 0.0
            self.fills: list[tuple[int, float, float]] = []

        def next(self) -> None:  # bar t's close: latch the signal
            self.signal = self.cross[0]

        def next_open(self) -> None:  # bar t+1's open: act on it
            if self.signal > 0 and not self.position:
                q = math.floor((self.broker.getcash() / (1 + FEE)) / self.data.open[0])
                if q > 0:
                    self.buy(size=q)
            elif self.signal < 0 and self.position:
                self.close()
            self.signal = 0.0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills.append((len(self.data) - 1, order.executed.size,
                                   order.executed.price))

    df = pd.DataFrame({
        "open": bars.open[:, 0], "high": bars.high[:, 0], "low": bars.low[:, 0],
        "close": bars.close[:, 0], "volume": bars.volume[:, 0],
        "ctick": np.rint(bars.close[:, 0] / bars.tick_size),
    }, index=pd.to_datetime(bars.timestamps))
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.broker.set_coo(True)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.adddata(TickData(dataname=df))
    cerebro.addstrategy(SmaReference)
    strat = cerebro.run()[0]
    trades: list[TradeRow] = []
    for bar, size, price in strat.fills:
        if size > 0:
            trades.append((bar, price, None, None, float(size)))
        else:
            e = trades[-1]
            trades[-1] = (e[0], e[1], bar, price, e[4])
    return trades, float(cerebro.broker.getvalue())


# --- vectorbt ------------------------------------------------------------------------------------
def run_vectorbt(bars: BarSet) -> tuple[list[TradeRow], float]:
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(bars.close[:, 0])
    price = pd.Series(bars.open[:, 0])
    ctick = pd.Series(np.rint(bars.close[:, 0] / bars.tick_size))
    fast = vbt.MA.run(ctick, FAST)
    slow = vbt.MA.run(ctick, SLOW)
    entries = fast.ma_crossed_above(slow).vbt.fshift(1, fill_value=False).astype(bool)
    exits = fast.ma_crossed_below(slow).vbt.fshift(1, fill_value=False).astype(bool)
    pf = vbt.Portfolio.from_signals(close, entries.to_numpy(), exits.to_numpy(), price=price,
                                    size=np.inf, size_granularity=1, fees=FEE, init_cash=CASH,
                                    direction="longonly", accumulate=False)
    rec = pf.trades.values  # the structured records array
    trades = [
        (int(r["entry_idx"]), float(r["entry_price"]),
         int(r["exit_idx"]) if r["status"] == 1 else None,
         float(r["exit_price"]) if r["status"] == 1 else None, float(r["size"]))
        for r in rec
    ]
    return trades, float(pf.final_value())


PEERS = {"backtrader": run_backtrader, "vectorbt": run_vectorbt}


def compare(a: list[TradeRow], b: list[TradeRow], eq_a: float, eq_b: float) -> list[str]:
    """Differences under the reference tolerances (empty when the runs agree)."""
    problems = []
    if len(a) != len(b):
        problems.append(f"n_trades {len(a)} != {len(b)}")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x[0] != y[0] or x[2] != y[2] or x[4] != y[4]:
            problems.append(f"trade {i}: bars/qty {x[0], x[2], x[4]} != {y[0], y[2], y[4]}")
        for k in (1, 3):
            if (x[k] is None) != (y[k] is None) or (
                    x[k] is not None and not math.isclose(x[k], y[k], rel_tol=PRICE_RTOL)):
                problems.append(f"trade {i}: price {x[k]} != {y[k]}")
        if len(problems) > 10:
            break
    if not math.isclose(eq_a, eq_b, rel_tol=EQUITY_RTOL):
        problems.append(f"final equity {eq_a!r} != {eq_b!r}")
    return problems


def timed(fn: Any, bars: BarSet, repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(bars)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--peers", default="backtrader,vectorbt")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the fast engines")
    args = ap.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            bars = read_csv(reference_csv(n, Path(tmp), args.seed))
            run_nexow(make_bars(200))  # compile outside the timing
            t_nexow, (trades, equity) = timed(run_nexow, bars, args.repeat)
            t_full, _ = timed(lambda b: run_nexow(b, metrics=True), bars, args.repeat)
            print(f"{n:>9,} bars  nexow      {n / t_nexow:>14,.0f} bars/s  ({t_nexow:.4f} s)  "
                  f"trades={len(trades)} final_equity={equity:.6f}")
            print(f"{'':>15}+ metrics  {n / t_full:>14,.0f} bars/s  ({t_full:.4f} s)  "
                  "(the full result: Sharpe, drawdown, ... which the peers do not compute)")
            for name in [p for p in args.peers.split(",") if p]:
                try:
                    __import__(name)
                except ImportError:
                    print(f"{'':>15}{name:<10} not installed, skipped")
                    continue
                rep = 1 if name == "backtrader" else args.repeat
                if name == "vectorbt":
                    run_vectorbt(make_bars(200))  # numba compile outside the timing
                t_peer, (p_trades, p_equity) = timed(PEERS[name], bars, rep)
                problems = compare(trades, p_trades, equity, p_equity)
                status = "agree" if not problems else "DISAGREE: " + "; ".join(problems)
                failed |= bool(problems)
                print(f"{'':>15}{name:<10} {n / t_peer:>14,.0f} bars/s  ({t_peer:.4f} s)  "
                      f"nexow is {t_peer / t_nexow:,.1f}x faster; {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

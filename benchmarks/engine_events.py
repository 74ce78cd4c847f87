"""Benchmark: the full event path (limit, stop and bracket orders, partial fills, many symbols).

A seeded signal strategy on a correlated basket places limit entries (and stop entries on some
symbols) with take-profit/stop-loss brackets and DAY time in force; a volume participation cap
makes large orders fill partially over several bars. Everything runs in the compiled loop on
one core. Prints symbol-bars per second (one symbol's bar processed = one unit).

    python benchmarks/engine_events.py --bars 250000 --symbols 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trading.engine.backtest import BacktestConfig, run_backtest  # noqa: E402
from trading.engine.costs import Commission, Slippage  # noqa: E402
from trading.engine.sizing import Sizing  # noqa: E402
from trading.engine.synthetic import correlated_basket  # noqa: E402
from trading.engine.types import BarSet, Signals, VectorStrategy  # noqa: E402


class RandomLimitStop(VectorStrategy):
    """Seeded random decisions: limit entries below the close, stop entries above it."""

    name = "bench_random_limit_stop"

    def __init__(self, seed: int = 0, rate: float = 0.02) -> None:
        super().__init__()
        self.seed, self.rate = seed, rate

    def signals(self, bars: BarSet) -> Signals:
        rng = np.random.default_rng(self.seed)
        shape = (bars.n_bars, bars.n_symbols)
        entries = rng.random(shape) < self.rate
        exits = rng.random(shape) < self.rate / 4
        limit = np.where(entries, bars.close * 0.999, np.nan)
        stop = np.full(shape, np.nan)
        stop[:, ::3] = np.where(entries[:, ::3], bars.close[:, ::3] * 1.0005, np.nan)
        limit[:, ::3] = np.where(entries[:, ::3], bars.close[:, ::3] * 1.002, np.nan)
        return Signals(entries=entries, exits=exits, limit_price=limit, stop_price=stop,
                       take_profit=0.004, stop_loss=0.004)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=250_000)
    ap.add_argument("--symbols", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    bars = correlated_basket(args.bars, seed=7, n_assets=args.symbols, correlation=0.3)
    config = BacktestConfig(
        cash=1_000_000.0, commission=Commission(rate=0.0005, maker_rate=0.0001),
        slippage=Slippage(bps=1.0, impact=0.05), sizing=Sizing("percent-equity", 0.05),
        participation=0.02, entry_tif="DAY")
    warm = correlated_basket(500, seed=1, n_assets=args.symbols)
    run_backtest(warm, RandomLimitStop(seed=1), config)  # compile outside the timing
    best = float("inf")
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_backtest(bars, RandomLimitStop(seed=3), config)
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    fills = result.fills
    partial = len(np.unique(fills[:, 6])) < len(fills)  # some orders filled in several parts
    units = args.bars * args.symbols
    print(f"{args.bars:,} bars x {args.symbols} symbols = {units:,} symbol-bars in {best:.3f} s")
    print(f"  {units / best:,.0f} symbol-bars/s/core  ({args.bars / best:,.0f} bars/s)")
    print(f"  fills={len(fills):,} trades={len(result.trades):,} partial fills={partial} "
          f"final equity={result.final_equity:,.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: advancing many paper deployments by one 1-minute bar each, in one process.

Every deployment runs the SMA(10/50) crossover on its own seeded random walk, with its own
paper account (commission 10 bps) and risk rulebook (order-notional, position and drawdown
limits), warmed up with `--lookback` bars of history. Each round gives every deployment its
next bar. Two figures are printed, in deployments advanced per second:

* step — `advance()` on objects already in memory;
* task — what an "advance deployment to t" task does apart from the database: build the
  strategy, load the deployment state, paper account and rulebook state from JSON, advance,
  and serialise them back to JSON.

    python benchmarks/live_advance.py --deployments 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from risk.core import RiskLimits, Rulebook  # noqa: E402
from trading.brokers.paper import PaperBroker  # noqa: E402
from trading.engine.costs import bps_commission  # noqa: E402
from trading.engine.strategies import create_strategy  # noqa: E402
from trading.engine.synthetic import gbm  # noqa: E402
from trading.engine.types import BarSet  # noqa: E402
from trading.live_engine import DeploymentState, LiveConfig, advance, warm_up  # noqa: E402

PARAMS = {"fast": 10, "slow": 50}
LIMITS = RiskLimits(max_order_notional=50_000.0, max_position_fraction=1.5, max_drawdown=0.5)


def rows(bars: BarSet, a: int, b: int) -> BarSet:
    return BarSet(bars.timestamps[a:b], bars.symbols, bars.open[a:b], bars.high[a:b],
                  bars.low[a:b], bars.close[a:b], bars.volume[a:b], tick_size=bars.tick_size)


def setup(n: int, lookback: int, rounds: int) -> list[tuple[BarSet, str, str, dict]]:
    out = []
    config = LiveConfig(cash=10_000.0, fee_rate=0.001, lookback=lookback)
    for i in range(n):
        bars = gbm(lookback + rounds, seed=1000 + i, volatility=0.002, symbol="BTC/USDT")
        strategy = create_strategy("sma_cross", **PARAMS)
        state = warm_up(DeploymentState.new(f"dep-{i}", bars.symbols, config,
                                            strategy=strategy), rows(bars, 0, lookback))
        broker = PaperBroker(bars.symbols, cash=10_000.0, commission=bps_commission(10))
        rulebook = Rulebook(LIMITS)
        out.append((bars, state.to_json(), json.dumps(broker.state()),
                    rulebook.state()))
    return out


def bench(n: int, lookback: int, rounds: int) -> None:
    fleet = setup(n, lookback, rounds)
    # one warm-up step outside the timing (numba dispatch, first imports)
    bars, s, b, _ = fleet[0]
    advance(DeploymentState.from_json(s), rows(bars, lookback, lookback + 1),
            create_strategy("sma_cross", **PARAMS), PaperBroker.from_state(json.loads(b)),
            Rulebook(LIMITS))

    # step: objects in memory
    live = [(bars, DeploymentState.from_json(s), PaperBroker.from_state(json.loads(b)),
             create_strategy("sma_cross", **PARAMS), Rulebook(LIMITS)) for bars, s, b, _ in fleet]
    actions = 0
    t0 = time.perf_counter()
    for r in range(rounds):
        nxt = []
        for bars, state, broker, strategy, rulebook in live:
            state, acts = advance(state, rows(bars, lookback + r, lookback + r + 1), strategy,
                                  broker, rulebook)
            actions += len(acts)
            nxt.append((bars, state, broker, strategy, rulebook))
        live = nxt
    step = time.perf_counter() - t0

    # task: JSON in, advance, JSON out
    saved = list(fleet)
    t0 = time.perf_counter()
    for r in range(rounds):
        nxt = []
        for bars, s, b, risk in saved:
            state = DeploymentState.from_json(s)
            broker = PaperBroker.from_state(json.loads(b))
            rulebook = Rulebook(LIMITS)
            rulebook.restore(risk)
            strategy = create_strategy("sma_cross", **PARAMS)
            state, _ = advance(state, rows(bars, lookback + r, lookback + r + 1), strategy,
                               broker, rulebook)
            nxt.append((bars, state.to_json(), json.dumps(broker.state()), rulebook.state()))
        saved = nxt
    task = time.perf_counter() - t0

    total = n * rounds
    print(f"deployments={n} rounds={rounds} lookback={lookback} actions={actions}")
    print(f"step: {total / step:,.0f} deployments/s ({step / total * 1e6:,.0f} us each)")
    print(f"task: {total / task:,.0f} deployments/s ({task / total * 1e6:,.0f} us each, "
          "JSON load and save included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deployments", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lookback", type=int, default=200)
    a = ap.parse_args()
    bench(a.deployments, a.lookback, a.rounds)


if __name__ == "__main__":
    main()

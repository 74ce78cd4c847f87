"""The SMA(10/50) crossover reproduces backtrader and vectorbt exactly (SMA reference).

The peers are the optional "bench" extras; a test that needs one skips, saying so, when it is
not installed. The adapters live in benchmarks/engine_sma.py so the benchmark and these tests
run the peers the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from trading.engine.data import read_csv, write_csv
from trading.engine.strategies.sma_cross import crossover, sma_diff_sign
from trading.engine.synthetic import bars_from_closes, gbm

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_sma.py"


def _bench():
    spec = importlib.util.spec_from_file_location("engine_sma_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # backtrader looks its classes up by module
    spec.loader.exec_module(mod)
    return mod


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        pytest.skip(f"{module} (the 'bench' extra) is not installed; cannot compare against it")


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def gbm_3000(tmp_path_factory):
    # through the CSV, as the reference prescribes (4-decimal prices parsed back)
    path = write_csv(gbm(3000, seed=20240101), tmp_path_factory.mktemp("ref") / "ref.csv")
    return read_csv(path)


def _tie_bars():
    """Falling, then a long flat plateau (fast == slow exactly), then rising: the cross up must
    come after the plateau, because zero differences neither signal nor reset the state."""
    down = 100.0 - 0.0123 * np.arange(80)
    flat = np.full(70, down[-1])
    up = down[-1] + 0.0117 * np.arange(1, 81)
    again = up[-1] - 0.0131 * np.arange(1, 121)
    close = np.round(np.concatenate([down, flat, up, again]), 4)
    return bars_from_closes(close, np.random.default_rng(1), symbols=["TIE"])


def test_crossover_ignores_zero_differences():
    sign = np.array([0, 0, -1, 0, 0, 1, 0, 1, -1, 0, -1, 1])[:, None]
    up, down = crossover(sign)
    assert np.flatnonzero(up[:, 0]).tolist() == [5, 11]
    assert np.flatnonzero(down[:, 0]).tolist() == [8]


def test_exact_ticks_find_ties_that_float_means_blur():
    bars = _tie_bars()
    exact = sma_diff_sign(bars.close, 10, 50, bars.tick_size)[:, 0]
    # the plateau gives exact ties once both windows lie inside it
    assert (exact[128:150] == 0).all() and exact[127] == -1 and exact[150] == 1
    float_means = sma_diff_sign(bars.close, 10, 50, None)[:, 0]
    assert (float_means[49:] != exact[49:]).any()  # naive float sums mis-sign some ties


@pytest.mark.parametrize("peer", ["backtrader", "vectorbt"])
def test_agrees_with_peer_on_gbm(bench, gbm_3000, peer):
    _need(peer)
    trades, equity = bench.run_nexow(gbm_3000)
    p_trades, p_equity = bench.PEERS[peer](gbm_3000)
    assert len(trades) > 10
    assert bench.compare(trades, p_trades, equity, p_equity) == []


@pytest.mark.parametrize("peer", ["backtrader", "vectorbt"])
def test_agrees_with_peer_on_crafted_ties(bench, peer):
    _need(peer)
    bars = _tie_bars()
    trades, equity = bench.run_nexow(bars)
    p_trades, p_equity = bench.PEERS[peer](bars)
    assert len(trades) == 1  # one entry after the plateau, one exit on the way down
    assert bench.compare(trades, p_trades, equity, p_equity) == []


def test_reference_accounting_by_hand(bench):
    bars = _tie_bars()
    trades, equity = bench.run_nexow(bars)
    (entry_bar, entry_px, exit_bar, exit_px, qty), = trades
    q = np.floor((100_000.0 / 1.001) / entry_px)
    cash = 100_000.0 - (q * entry_px + q * entry_px * 0.001)
    cash = cash + (q * exit_px - q * exit_px * 0.001)
    assert qty == q
    assert equity == pytest.approx(cash, rel=1e-12)
    assert entry_px == bars.open[entry_bar, 0] and exit_px == bars.open[exit_bar, 0]

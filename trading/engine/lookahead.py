"""The look-ahead check: proof, by truncation, that a strategy's decisions use no future data.

A strategy that decides at bar t from bars <= t must produce, on the data cut after bar k, the
same decisions for bars 0..k as on the full data. `check_lookahead` runs the strategy on the
data truncated at many points and compares every signal array (entries, exits, shorts, limit and
stop prices, target weights) and, through `run_backtest`, the fills and the equity curve, which
also covers event-driven strategies. The report names the first bar that differs, if any. It
works on any strategy instance, including a tenant's rules program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from trading.engine.types import BarSet, Signals, VectorStrategy

SIGNAL_FIELDS = ("entries", "exits", "short_entries", "short_exits", "limit_price",
                 "stop_price", "target_weight")


@dataclass(slots=True)
class Difference:
    cutoff: int  # number of bars the truncated run saw
    bar: int  # first bar whose decision changed
    timestamp: int
    symbol: str | None
    field: str  # a Signals field, "fills" or "equity"
    full_value: Any = None
    truncated_value: Any = None


@dataclass(slots=True)
class LookaheadReport:
    strategy: str
    passed: bool
    n_bars: int
    cutoffs: list[int]
    checked_backtest: bool
    first_difference: Difference | None = None
    differences: list[Difference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_difference"] = asdict(self.first_difference) if self.first_difference else None
        return out

    def summary(self) -> str:
        if self.passed:
            return (f"{self.strategy}: no look-ahead found at {len(self.cutoffs)} cut points "
                    f"({'signals and fills' if self.checked_backtest else 'signals'})")
        d = self.first_difference
        assert d is not None
        return (f"{self.strategy}: LOOK-AHEAD: {d.field} at bar {d.bar} ({d.symbol}) changes "
                f"when the data is cut after bar {d.cutoff - 1}")


def truncate(bars: BarSet, stop: int) -> BarSet:
    """The first `stop` bars (copies, so a strategy cannot write through to the full data)."""
    cut = {k: getattr(bars, k)[:stop].copy()
           for k in ("timestamps", "open", "high", "low", "close", "volume")}
    return replace(bars, **cut, symbols=list(bars.symbols), meta=dict(bars.meta))


def cut_points(n_bars: int, n_points: int, min_bars: int) -> list[int]:
    """`n_points` bar counts spread from `min_bars` to n_bars - 1, plus a few right at the start.

    The early cuts catch strategies that peek during their warm-up.
    """
    lo = max(2, min(min_bars, n_bars - 1))
    pts = set(np.linspace(lo, n_bars - 1, num=max(n_points, 2)).round().astype(int).tolist())
    pts |= {p for p in (lo + 1, lo + 2) if p < n_bars}
    return sorted(p for p in pts if 1 < p < n_bars)


def _first_mismatch(full: np.ndarray, part: np.ndarray) -> tuple[int, int] | None:
    a, b = np.asarray(full), np.asarray(part)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape != b.shape:
        return (0, 0)
    same = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    bad = np.argwhere(~same)
    if bad.size == 0:
        return None
    row, col = bad[0]
    return int(row), int(col)


def _compare_signals(full: Signals, part: Signals, k: int, bars: BarSet) -> list[Difference]:
    out = []
    for name in SIGNAL_FIELDS:
        a, b = getattr(full, name), getattr(part, name)
        if a is None and b is None:
            continue
        if (a is None) != (b is None):
            out.append(Difference(k, 0, int(bars.timestamps[0]), None, name))
            continue
        hit = _first_mismatch(np.asarray(a)[:k], b)
        if hit is not None:
            row, col = hit
            a2 = np.asarray(a).reshape(len(a), -1)
            b2 = np.asarray(b).reshape(len(b), -1)
            out.append(Difference(k, row, int(bars.timestamps[row]), bars.symbols[col], name,
                                  a2[row, col].item(), b2[row, col].item()))
    return out


def _compare_backtests(full: Any, part: Any, k: int, bars: BarSet) -> list[Difference]:
    from trading.engine.orders import F_BAR, F_SYM

    out = []
    ff = full.fills[full.fills[:, F_BAR] <= k - 1] if len(full.fills) else full.fills
    pf = part.fills
    if ff.shape != pf.shape or not np.array_equal(ff, pf, equal_nan=True):
        n = min(len(ff), len(pf))
        rows = [i for i in range(n) if not np.array_equal(ff[i], pf[i], equal_nan=True)]
        i = rows[0] if rows else n
        src = ff[i] if i < len(ff) else pf[i]
        bar = int(src[F_BAR])
        out.append(Difference(k, bar, int(bars.timestamps[bar]), bars.symbols[int(src[F_SYM])],
                              "fills", ff[i].tolist() if i < len(ff) else None,
                              pf[i].tolist() if i < len(pf) else None))
    hit = _first_mismatch(full.equity[:k], part.equity)
    if hit is not None:
        row = hit[0]
        out.append(Difference(k, row, int(bars.timestamps[row]), None, "equity",
                              float(full.equity[row]), float(part.equity[row])))
    return out


def check_lookahead(strategy: Any, bars: BarSet, *, n_points: int = 12,
                    min_bars: int | None = None, backtest: bool = True,
                    config: Any = None, stop_at_first: bool = False) -> LookaheadReport:
    """Run `strategy` on `bars` cut at `n_points` places and compare with the full run.

    `backtest=True` also compares fills and equity of `run_backtest` (with `config`), which is
    the only comparison possible for event-driven strategies.
    """
    n = bars.n_bars
    if n < 4:
        raise ValueError("the look-ahead check needs at least 4 bars")
    cutoffs = cut_points(n, n_points, min_bars if min_bars is not None else max(3, n // 20))
    run: Callable[[BarSet], Any] | None = None
    if backtest:
        from trading.engine.backtest import BacktestConfig, run_backtest

        cfg = config or BacktestConfig(allow_short=True)

        def run(b: BarSet) -> Any:
            return run_backtest(b, strategy, cfg)

    full_sig = strategy.signals(bars) if isinstance(strategy, VectorStrategy) else None
    full_bt = run(bars) if run is not None else None
    diffs: list[Difference] = []
    for k in cutoffs:
        part = truncate(bars, k)
        if full_sig is not None:
            diffs += _compare_signals(full_sig, strategy.signals(part), k, bars)
        if run is not None:
            diffs += _compare_backtests(full_bt, run(part), k, bars)
        if diffs and stop_at_first:
            break
    first = min(diffs, key=lambda d: (d.bar, d.cutoff)) if diffs else None
    return LookaheadReport(
        strategy=getattr(strategy, "name", type(strategy).__name__), passed=not diffs,
        n_bars=n, cutoffs=cutoffs, checked_backtest=run is not None, first_difference=first,
        differences=diffs[:50],
    )

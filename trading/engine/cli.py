"""The `nexow backtest` command: run a strategy on a bar file and print or save the result.

    nexow backtest --data BARS.csv --strategy sma_cross -p fast=10 -p slow=50 --cash 100000 \
        --commission-bps 10 [--slippage-bps 0] [--sizing all-cash --whole-units] [--json OUT.json]

Every bad input (missing file, bad rows, unknown strategy, bad parameter) ends with a one-line
error on stderr and exit status 2; a finished run exits 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from .backtest import BacktestConfig, BacktestResult, run_backtest
from .costs import Commission, Slippage
from .data import BarValidationError, read_bars
from .sizing import MODES, Sizing
from .strategies import UnknownStrategyError, create_strategy, list_strategies
from .types import ParamError

PROG = "nexow backtest"
PROGRESS_MIN_BARS = 100_000


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Backtest a strategy on a CSV or Parquet bar file.")
    p.add_argument("--data", help="bar file (.csv or .parquet)")
    p.add_argument("--strategy", help="strategy name (see --list-strategies)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="strategy parameter, repeatable")
    p.add_argument("--cash", type=float, default=100_000.0)
    p.add_argument("--commission-bps", type=float, default=0.0)
    p.add_argument("--maker-bps", type=float, default=None, help="fee of resting limit fills")
    p.add_argument("--commission-per-unit", type=float, default=0.0)
    p.add_argument("--commission-min", type=float, default=0.0)
    p.add_argument("--commission-fixed", type=float, default=0.0)
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--impact", type=float, default=0.0, help="price impact per unit of volume share")
    p.add_argument("--sizing", choices=sorted(MODES), default="all-cash")
    p.add_argument("--size", type=float, default=1.0,
                   help="units, currency or fraction of equity, by --sizing")
    units = p.add_mutually_exclusive_group()
    units.add_argument("--whole-units", dest="whole_units", action="store_true", default=True)
    units.add_argument("--fractional", dest="whole_units", action="store_false")
    p.add_argument("--allow-short", action="store_true")
    p.add_argument("--participation", type=float, default=0.0, help="max share of bar volume")
    p.add_argument("--calendar", choices=["24/7", "exchange"], default="24/7")
    p.add_argument("--risk-free", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--symbol", default=None, help="symbol name for a file without a symbol column")
    p.add_argument("--json", metavar="OUT.json", help="write the full result as JSON ('-' = stdout)")
    p.add_argument("--quiet", action="store_true", help="no summary and no progress bar")
    p.add_argument("--list-strategies", action="store_true")
    return p


def _params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"bad -p value {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


class _ProgressBar:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = -1

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("type") != "progress":
            return
        pct = int(event["fraction"] * 100)
        if pct == self.last:
            return
        self.last = pct
        filled = pct // 4
        self.stream.write(f"\rbacktest [{'#' * filled}{' ' * (25 - filled)}] {pct:3d}%")
        if pct >= 100:
            self.stream.write("\n")
        self.stream.flush()


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:.2f} %" if pct else f"{value:,.4f}"
    return str(value)


def summary(result: BacktestResult, strategy: str) -> str:
    m = result.metrics
    fp = result.fingerprint
    lines = [
        f"strategy      {strategy} {fp['strategy']['params']}",
        f"bars          {fp['n_bars']:,} x {len(result.symbols)} symbol(s)",
        f"final equity  {result.final_equity:,.2f}",
        f"total return  {_fmt(m.get('total_return'), pct=True)}",
        f"trades        {len(result.trades)}",
        f"sharpe        {_fmt(m.get('sharpe'))}",
        f"max drawdown  {_fmt(m.get('max_drawdown'), pct=True)}",
    ]
    if result.halted_at is not None:
        lines.append(f"halted at     {result.to_dict()['halted_at']}")
    lines.append(f"result hash   {result.result_hash}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_strategies:
        for s in list_strategies():
            params = ", ".join(f"{p['name']}={p['default']}" for p in s["params"])
            print(f"{s['name']:<16} {s['description']} ({params})")
        return 0
    if not args.data:
        raise UsageError("--data is required")
    if not args.strategy:
        raise UsageError("--strategy is required")
    values = _params(args.param)
    try:
        strategy = create_strategy(args.strategy, **values)
    except UnknownStrategyError as exc:
        raise UsageError(str(exc)) from None
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    try:
        commission = Commission(
            rate=args.commission_bps / 10_000.0,
            maker_rate=None if args.maker_bps is None else args.maker_bps / 10_000.0,
            per_unit=args.commission_per_unit, minimum=args.commission_min,
            fixed=args.commission_fixed)
        config = BacktestConfig(
            cash=args.cash, commission=commission,
            slippage=Slippage(bps=args.slippage_bps, impact=args.impact),
            sizing=Sizing(args.sizing, args.size), whole_units=args.whole_units,
            allow_short=args.allow_short, participation=args.participation,
            calendar=args.calendar, risk_free=args.risk_free, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = Path(args.data)
    try:
        bars = read_bars(path, symbol=args.symbol)
    except FileNotFoundError:
        raise UsageError(f"data file {str(path)!r} not found") from None
    except BarValidationError as exc:
        raise UsageError(str(exc)) from None
    show_progress = (not args.quiet and bars.n_bars >= PROGRESS_MIN_BARS
                     and sys.stderr.isatty())
    try:
        result = run_backtest(bars, strategy, config,
                              on_event=_ProgressBar(sys.stderr) if show_progress else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        text = result.to_json()
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                Path(args.json).write_text(text + "\n")
            except OSError as exc:
                raise UsageError(f"cannot write {args.json!r}: {exc.strerror}") from None
    if not args.quiet and args.json != "-":
        print(summary(result, args.strategy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

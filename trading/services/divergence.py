"""The divergence monitor: what a deployment did next to what its backtest does on the same bars.

`deployment_divergence(dep)` replays the bars the deployment saw, from its first decision bar
to its last processed bar, through `run_backtest` with the same strategy version, sizing,
costs, cash and bracket exits. It then compares the two runs:

- **equity**: the deployment's equity after each step (the ``deployment.step`` events) next to
  the backtest's equity at the same bars;
- **fills**: each of the deployment's fills is paired with a backtest fill of the same symbol
  and side at the nearest bar (at most `MATCH_BARS` bars apart). Fills of one order side at one
  bar are first combined (total quantity, volume-weighted price, total fee). A fill left
  unpaired is ``live_only`` or ``backtest_only``. Orders a trader placed by hand (manual and
  flatten orders) are never paired: they are ``live_only`` and marked ``manual``.

The bars come from `bars_for(dep, k_from, k_to)`, that is `deployments.deployment_bars`: the
exchange's candles for a live account, the paper feed's deterministic random walk regenerated
from its seed otherwise (a venue that does not answer is a 503). The backtest sees the deployment's warm-up
bars as history, but its strategy decides only from the first decision bar on, as the deployment
did. Bars that went by while the deployment was paused are decision bars for the backtest, so a
pause shows as divergence: the monitor compares with the strategy run without interruption.

Rounding happens only at the boundary (`Divergence.to_dict`): money (equity, P&L, drift, gap,
P&L effect) to the cent, slippage to 0.01 bps, price differences to 8 decimals; prices and
quantities are given as recorded. Everything is computed on unrounded values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nexow_site.errors import ServiceUnavailable
from trading.brokers.base import BrokerError
from trading.engine.backtest import BacktestConfig, run_backtest
from trading.engine.orders import F_BAR, F_FEE, F_PRICE, F_QTY, F_SIDE, F_SYM
from trading.engine.sizing import Sizing
from trading.engine.types import BarSet, Signals, VectorStrategy
from trading.live_engine import LiveConfig
from trading.models import Deployment, DeploymentEvent, LiveFill, LiveOrder
from trading.services import deployments as deployment_services
from trading.services.strategies import _commission_slippage, engine_strategy

NS = 10**9
MATCH_BARS = 3  # the furthest apart (in bars) a live and a backtest fill may be paired
MANUAL_LEGS = ("manual:", "flatten:")  # legs of the orders a person placed (services/orders.py)


@dataclass(slots=True)
class Divergence:
    """The comparison; `to_dict()` is the API's and the portal's shape."""

    bars: int = 0
    from_ts: int | None = None
    to_ts: int | None = None
    cash: float = 0.0
    live_equity: list[tuple[int, float]] = field(default_factory=list)
    backtest_equity: list[tuple[int, float]] = field(default_factory=list)
    live_fills: int = 0
    backtest_fills: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)

    @property
    def live_final(self) -> float:
        return self.live_equity[-1][1] if self.live_equity else self.cash

    @property
    def backtest_final(self) -> float:
        return self.backtest_equity[-1][1] if self.backtest_equity else self.cash

    @property
    def pnl_drift(self) -> float:
        return (self.live_final - self.cash) - (self.backtest_final - self.cash)

    def equity_gaps(self) -> list[tuple[int, float]]:
        """Live minus backtest equity at each step of the deployment."""
        bt = dict(self.backtest_equity)
        return [(ts, eq - bt[ts]) for ts, eq in self.live_equity if ts in bt]

    def first_divergence_ts(self) -> int | None:
        times = [f["live_ts"] if f["live_ts"] is not None else f["backtest_ts"]
                 for f in self.fills if f["status"] != "matched" or _differs(f)]
        times += [ts for ts, gap in self.equity_gaps() if abs(gap) >= 0.005]
        return min(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        matched = [f for f in self.fills if f["status"] == "matched"]
        slips = [f["slippage_bps"] for f in matched if f["slippage_bps"] is not None]
        gaps = [abs(g) for _, g in self.equity_gaps()]
        count = {s: sum(1 for f in self.fills if f["status"] == s)
                 for s in ("matched", "live_only", "backtest_only")}
        return {
            "bars": self.bars, "from_ts": self.from_ts, "to_ts": self.to_ts,
            "live": _side(self.live_equity, self.live_final, self.cash, self.live_fills),
            "backtest": _side(self.backtest_equity, self.backtest_final, self.cash,
                              self.backtest_fills),
            "fills": [_rounded(f) for f in self.fills],
            "summary": {
                **count,
                "mean_slippage_bps": _round(sum(slips) / len(slips), 2) if slips else None,
                "pnl_drift": _money(self.pnl_drift),
                "max_equity_gap": _money(max(gaps)) if gaps else 0.0,
                "first_divergence_ts": self.first_divergence_ts(),
            },
        }


def _round(x: float | None, digits: int) -> float | None:
    if x is None:
        return None
    return round(x, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def _money(x: float | None) -> float | None:
    return _round(x, 2)


def _side(equity: list[tuple[int, float]], final: float, cash: float,
          fills: int) -> dict[str, Any]:
    return {"equity": [[ts, _money(v)] for ts, v in equity], "final_equity": _money(final),
            "pnl": _money(final - cash), "fills": fills}


def _differs(f: dict[str, Any]) -> bool:
    return (f["live_ts"] != f["backtest_ts"]
            or abs(f["live_price"] - f["backtest_price"]) > 1e-9 * abs(f["backtest_price"])
            or abs(f["live_quantity"] - f["backtest_quantity"])
            > 1e-9 * abs(f["backtest_quantity"]))


def _rounded(f: dict[str, Any]) -> dict[str, Any]:
    return {**f, "price_diff": _round(f["price_diff"], 8),
            "slippage_bps": _round(f["slippage_bps"], 2),
            "pnl_effect": _money(f["pnl_effect"])}


# --- the bars the deployment saw ------------------------------------------------------------------

def _config(dep: Deployment) -> dict[str, Any]:
    return {**deployment_services.DEFAULTS, "seed": dep.pk, **(dep.config or {})}


def bars_for(dep: Deployment, k_from: int, k_to: int) -> BarSet:
    """Bars ``k_from .. k_to - 1`` of the deployment's feed (negative ``k``: warm-up), from
    `deployment_services.deployment_bars` (the paper walk, or the exchange's candles). A venue
    that cannot answer is a 503 to retry, not an error of the page."""
    try:
        return deployment_services.deployment_bars(dep, k_from, k_to)
    except BrokerError as exc:
        raise ServiceUnavailable(
            "The exchange did not return the deployment's bars; try again shortly. "
            f"({type(exc).__name__})", headers={"Retry-After": "30"}) from None


class _DecidingFrom(VectorStrategy):
    """The strategy computing its signals on all bars, deciding only from bar `first` on."""

    name = "deciding_from"

    def __init__(self, inner: VectorStrategy, first: int) -> None:
        super().__init__()
        self.inner, self.first = inner, first
        self.name = getattr(inner, "name", type(inner).__name__)  # type: ignore[misc]
        self.values = dict(getattr(inner, "values", {}))

    def signals(self, bars: BarSet) -> Signals:
        sig = self.inner.signals(bars)
        head = slice(0, self.first)
        for name in ("entries", "exits", "short_entries", "short_exits"):
            a = getattr(sig, name)
            if a is not None:
                a = np.array(a, dtype=bool)
                a[head] = False
                setattr(sig, name, a)
        if sig.target_weight is not None:
            w = np.array(sig.target_weight, dtype=np.float64)
            w[head] = np.nan
            sig.target_weight = w
        return sig


# --- the comparison -------------------------------------------------------------------------------

def deployment_divergence(dep: Deployment) -> Divergence:
    """The deployment next to its backtest over the bars it has processed (see the module doc)."""
    cfg = _config(dep)
    cash = float(cfg["cash"])
    out = Divergence(cash=cash)
    if not dep.state or dep.last_bar_ts is None or dep.feed_anchor_ns is None:
        return out
    step = int(cfg["bar_seconds"]) * NS
    k_last = (dep.last_bar_ts - dep.feed_anchor_ns) // step
    if k_last < 0:
        return out  # warm-up only: no decision yet
    warm = int(cfg["warm_bars"])
    bars = bars_for(dep, -warm, k_last + 1)
    if bars.n_bars == 0:
        return out
    # Index of the first decision bar (k = 0, opening at the feed's anchor): found by its time,
    # because an exchange's history can miss candles (a timestamp without every symbol).
    first = int(np.searchsorted(bars.timestamps, dep.feed_anchor_ns))
    if first >= bars.n_bars:
        return out
    version = dep.strategy_version
    live_config = LiveConfig.from_dict(json.loads(dep.state)["config"])
    commission, slippage = _commission_slippage(version.costs or {})
    config = BacktestConfig(
        cash=cash, commission=commission, slippage=slippage,
        sizing=Sizing(**(version.sizing or {})), whole_units=live_config.whole_units,
        allow_short=live_config.allow_short, entry_tif=live_config.entry_tif,
        take_profit=live_config.take_profit, stop_loss=live_config.stop_loss)
    result = run_backtest(bars, _DecidingFrom(engine_strategy(version), first), config,
                          metrics=False)
    ts = bars.timestamps
    out.bars = int(len(ts) - first)
    out.from_ts, out.to_ts = int(ts[first]), int(ts[-1])
    out.backtest_equity = [(int(t), float(e)) for t, e in zip(ts[first:], result.equity[first:],
                                                              strict=True)]
    out.live_equity = _live_equity(dep, out.from_ts, out.to_ts)
    last_close = {s: float(bars.close[-1, j]) for j, s in enumerate(bars.symbols)}
    live = _live_fills(dep, out.from_ts)
    backtest = [{"symbol": bars.symbols[int(r[F_SYM])],
                 "side": "buy" if r[F_SIDE] > 0 else "sell", "ts": int(ts[int(r[F_BAR])]),
                 "price": float(r[F_PRICE]), "quantity": float(r[F_QTY]), "fee": float(r[F_FEE]),
                 "manual": False, "client_order_id": ""}
                for r in result.fills if int(r[F_BAR]) >= first]
    out.live_fills, out.backtest_fills = len(live), len(backtest)
    out.fills = _match(_combined(live), _combined(backtest), step, last_close)
    return out


def _live_equity(dep: Deployment, from_ts: int, to_ts: int) -> list[tuple[int, float]]:
    points: dict[int, float] = {}
    steps = (DeploymentEvent.objects.filter(deployment=dep, type="deployment.step")
             .order_by("seq").values_list("payload", flat=True))
    for payload in steps:
        ts, eq = payload.get("last_bar_ts"), payload.get("equity")
        if ts is not None and eq is not None and from_ts <= ts <= to_ts:
            points[int(ts)] = float(eq)
    return sorted(points.items())


def _live_fills(dep: Deployment, from_ts: int) -> list[dict[str, Any]]:
    legs = dict(LiveOrder.objects.filter(deployment=dep).values_list("client_order_id", "leg"))
    return [{"symbol": f.symbol, "side": f.side, "ts": f.ts, "price": float(f.price),
             "quantity": float(f.quantity), "fee": float(f.fee or 0),
             "manual": legs.get(f.client_order_id, "").startswith(MANUAL_LEGS),
             "client_order_id": f.client_order_id}
            for f in LiveFill.objects.filter(deployment=dep, ts__gte=from_ts).order_by("ts", "id")]


def _combined(fills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One fill per (symbol, side, bar, manual): total quantity, volume-weighted price."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for f in fills:
        groups[(f["symbol"], f["side"], f["ts"], f["manual"])].append(f)
    out = []
    for (symbol, side, ts, manual), group in groups.items():
        qty = sum(f["quantity"] for f in group)
        price = (sum(f["price"] * f["quantity"] for f in group) / qty if len(group) > 1
                 else group[0]["price"])
        out.append({"symbol": symbol, "side": side, "ts": ts, "price": price, "quantity": qty,
                    "fee": sum(f["fee"] for f in group), "manual": manual,
                    "client_order_id": group[0]["client_order_id"]})
    return sorted(out, key=lambda f: (f["ts"], f["symbol"], f["side"]))


def _match(live: list[dict[str, Any]], backtest: list[dict[str, Any]], step: int,
           last_close: dict[str, float]) -> list[dict[str, Any]]:
    """Pair fills of the same symbol and side, nearest bar first (ties: the earlier fill)."""
    candidates = []
    for i, lf in enumerate(live):
        if lf["manual"]:
            continue
        for j, bf in enumerate(backtest):
            if bf["symbol"] == lf["symbol"] and bf["side"] == lf["side"]:
                gap = abs(lf["ts"] - bf["ts"]) // step
                if gap <= MATCH_BARS:
                    candidates.append((gap, min(lf["ts"], bf["ts"]), i, j))
    pair_of_live: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, i, j in sorted(candidates):
        if i not in pair_of_live and j not in taken:
            pair_of_live[i] = j
            taken.add(j)
    rows = [_row(lf, backtest[pair_of_live[i]] if i in pair_of_live else None, last_close)
            for i, lf in enumerate(live)]
    rows += [_row(None, bf, last_close) for j, bf in enumerate(backtest) if j not in taken]
    return sorted(rows, key=lambda r: (r["live_ts"] if r["live_ts"] is not None
                                       else r["backtest_ts"], r["symbol"], r["side"]))


def _pnl_effect(f: dict[str, Any], last_close: dict[str, float]) -> float:
    """What the fill adds to P&L at the last bar: its position marked at the last close,
    less what was paid for it and its fee."""
    sign = 1.0 if f["side"] == "buy" else -1.0
    return sign * f["quantity"] * (last_close[f["symbol"]] - f["price"]) - f["fee"]


def _row(lf: dict[str, Any] | None, bf: dict[str, Any] | None,
         last_close: dict[str, float]) -> dict[str, Any]:
    one = lf or bf
    assert one is not None
    status = "matched" if lf and bf else "live_only" if lf else "backtest_only"
    diff = slip = effect = None
    if lf and bf:
        diff = lf["price"] - bf["price"]
        sign = 1.0 if one["side"] == "buy" else -1.0
        slip = sign * diff / bf["price"] * 1e4 if bf["price"] else None
    else:
        effect = _pnl_effect(one, last_close)
    return {"symbol": one["symbol"], "side": one["side"], "status": status,
            "manual": bool(lf and lf["manual"]),
            "client_order_id": lf["client_order_id"] if lf else "",
            "live_ts": lf["ts"] if lf else None, "live_price": lf["price"] if lf else None,
            "live_quantity": lf["quantity"] if lf else None,
            "backtest_ts": bf["ts"] if bf else None,
            "backtest_price": bf["price"] if bf else None,
            "backtest_quantity": bf["quantity"] if bf else None,
            "price_diff": diff, "slippage_bps": slip, "pnl_effect": effect}

"""The rulebook: pre-trade checks and per-bar kill-switch rules behind `hooks.PreTradeCheck`.

One `Rulebook` guards one deployment (or one backtest). The engine asks `check()` before every
order and calls `on_bar()` once per bar; the same object serves simulation and live trading, so
a backtest shows what the limits would have done. `check()` is on the hot path of every
simulated order: the constructor turns the limits into plain attributes and per-symbol lookup
tuples so that a call does a handful of comparisons, one pass over the open positions when an
exposure limit needs it, and builds no container or text unless it refuses.

Rules, in the order they are tried (the first refusal is reported):

1. halted — a tripped kill switch (the deployment's own or the organisation's) refuses every
   order, except orders that only reduce a position when `flatten_on_halt` is set;
2. restricted_symbols;
3. max_order_notional;
4. position limits (units, notional, fraction of equity), then per-asset, per-asset-class and
   per-sector exposure, then gross and net exposure — all evaluated on the portfolio as it would
   be after the order, and all skipped for orders that only reduce an existing position, so a
   portfolio over its limits can always be brought back under them;
5. max_orders_per_minute — counted over orders this rulebook accepted in the last 60 s.

A limit is breached when the value strictly exceeds it (an order exactly at the limit passes).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trading.engine.hooks import CheckResult, OrderIntent, PortfolioSnapshot

from .killswitch import KillSwitch, KillSwitchEvent
from .limits import EffectiveLimits, RiskLimits

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_DAY = 86_400 * NS_PER_SECOND
UNCLASSIFIED = "unclassified"  # asset class / sector of a symbol missing from `instruments`

# A reducing order may be a hair larger than the position because of float fills.
_REDUCE_TOLERANCE = 1e-9


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _units(x: float) -> str:
    text = f"{x:,.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_SECOND, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Rulebook:
    """Pre-trade and per-bar risk rules for one deployment; implements `hooks.PreTradeCheck`.

    `limits` is a `RiskLimits` or the `EffectiveLimits` from `merge_limits` (then each reason
    names the level whose limit was hit). `instruments` maps symbol to
    `{"asset_class": ..., "sector": ...}`. `kill_switch` is this deployment's switch (a new
    armed one if omitted); `emergency_switches` are broader switches shared with other
    deployments, such as the organisation's, which stop this rulebook too when tripped.
    """

    def __init__(
        self,
        limits: RiskLimits | EffectiveLimits,
        instruments: Mapping[str, Mapping[str, str]] | None = None,
        *,
        kill_switch: KillSwitch | None = None,
        emergency_switches: Sequence[KillSwitch] = (),
    ) -> None:
        if isinstance(limits, EffectiveLimits):
            self.limits, sources = limits.limits, dict(limits.sources)
        else:
            self.limits, sources = limits, {}
        self._sources = sources
        self.instruments = {s: dict(v) for s, v in (instruments or {}).items()}
        self.kill_switch = kill_switch if kill_switch is not None else KillSwitch()
        # The organisation's switch is consulted first so its reason is the one reported.
        self._switches: tuple[KillSwitch, ...] = (*emergency_switches, self.kill_switch)
        self._announced: KillSwitchEvent | None = None
        self._halt_text: tuple[KillSwitchEvent | None, str] = (None, "")

        lim = self.limits
        self._restricted = lim.restricted_symbols
        self._max_order_notional = lim.max_order_notional
        self._pos_units = lim.max_position_units
        self._pos_notional = lim.max_position_notional
        self._pos_fraction = lim.max_position_fraction
        self._gross_fraction = lim.max_gross_exposure
        self._gross_notional = lim.max_gross_notional
        self._net_fraction = lim.max_net_exposure
        self._net_notional = lim.max_net_notional
        self._rate = lim.max_orders_per_minute
        self._flatten = bool(lim.flatten_on_halt)
        self._has_groups = bool(lim.asset_class_limits or lim.sector_limits)
        self._needs_portfolio = self._has_groups or any(
            v is not None
            for v in (
                self._gross_fraction,
                self._gross_notional,
                self._net_fraction,
                self._net_notional,
            )
        )
        self._needs_equity = any(
            v is not None for v in (self._pos_fraction, self._gross_fraction, self._net_fraction)
        ) or bool(lim.asset_limits or lim.asset_class_limits or lim.sector_limits)
        self._recent: deque[int] = deque()
        # symbol -> (asset class, sector, asset limit, class limit, sector limit)
        self._symbol_info: dict[str, tuple[str, str, float | None, float | None, float | None]] = {}
        for symbol in self.instruments:
            self._info(symbol)
        # After a re-arm, losses are measured from the equity at the re-arm, not from the old
        # peak or day start, or the switch would trip again on the very next bar.
        self._peak_since_rearm: float | None = None
        self._day_base_override: tuple[int, float] | None = None

    # -- lookups --------------------------------------------------------------------------

    def _info(self, symbol: str) -> tuple[str, str, float | None, float | None, float | None]:
        info = self._symbol_info.get(symbol)
        if info is None:
            meta = self.instruments.get(symbol, {})
            cls = meta.get("asset_class") or UNCLASSIFIED
            sector = meta.get("sector") or UNCLASSIFIED
            lim = self.limits
            info = (
                cls,
                sector,
                lim.asset_limits.get(symbol, lim.asset_limits.get("*")),
                lim.asset_class_limits.get(cls, lim.asset_class_limits.get("*")),
                lim.sector_limits.get(sector, lim.sector_limits.get("*")),
            )
            self._symbol_info[symbol] = info
        return info

    def _level(self, key: str) -> str:
        source = self._sources.get(key)
        return f" ({source})" if source else ""

    def _group_level(self, field: str, group: str) -> str:
        source = self._sources.get(f"{field}.{group}") or self._sources.get(f"{field}.*")
        return f" ({source})" if source else ""

    @property
    def flatten_on_halt(self) -> bool:
        """Whether the engine should close out positions after a halt (those orders pass)."""
        return self._flatten

    @property
    def halted(self) -> bool:
        return any(s.state == "tripped" for s in self._switches)

    def orders_in_last_minute(self, now: int) -> int:
        cutoff = now - NS_PER_MINUTE
        return sum(1 for t in self._recent if t > cutoff)

    # -- the pre-trade check --------------------------------------------------------------

    def check(self, intent: OrderIntent, snapshot: PortfolioSnapshot) -> CheckResult | None:
        symbol = intent.symbol
        qty = intent.quantity
        price = intent.price
        side = intent.side
        if not (qty > 0 and price > 0 and (side == 1 or side == -1)):
            return self._invalid(intent)
        if math.isinf(qty) or math.isinf(price):
            return self._invalid(intent)
        positions = snapshot.positions
        pos = positions.get(symbol, 0.0)
        reducing = pos * side < 0 and qty <= abs(pos) * (1.0 + _REDUCE_TOLERANCE)

        for switch in self._switches:
            if switch.state == "tripped":
                if self._flatten and reducing:
                    return None  # closing out is the point of flatten_on_halt
                # A switch tripped by a person between bars halts the engine at this order,
                # not at the next bar; the halt is reported once.
                event = switch.history[-1] if switch.history else None
                first = event is not None and event != self._announced
                if first:
                    self._announced = event
                return CheckResult("halted", self._halted_reason(switch), first)

        if self._restricted and symbol in self._restricted and not reducing:
            return CheckResult(
                "restricted_symbols",
                f"restricted_symbols: {symbol} is restricted"
                f"{self._level('restricted_symbols.' + symbol)}",
            )

        limit = self._max_order_notional
        if limit is not None:
            notional = qty * price
            if notional > limit:
                return CheckResult(
                    "max_order_notional",
                    f"max_order_notional: order notional {_money(notional)} exceeds the limit "
                    f"{_money(limit)}{self._level('max_order_notional')}",
                )

        if not reducing:
            refusal = self._exposure_rules(symbol, pos + side * qty, price, snapshot)
            if refusal is not None:
                return refusal

        rate = self._rate
        if rate is not None:
            recent = self._recent
            cutoff = intent.timestamp - NS_PER_MINUTE
            while recent and recent[0] <= cutoff:
                recent.popleft()
            if len(recent) >= rate:
                return CheckResult(
                    "max_orders_per_minute",
                    f"max_orders_per_minute: {len(recent)} orders accepted in the last 60 s, "
                    f"the limit is {rate} per minute{self._level('max_orders_per_minute')}",
                )
            recent.append(intent.timestamp)
        return None

    def _exposure_rules(
        self, symbol: str, new_pos: float, price: float, snapshot: PortfolioSnapshot
    ) -> CheckResult | None:
        equity = snapshot.equity
        if self._needs_equity and not equity > 0:
            return CheckResult(
                "equity",
                f"equity: equity {_money(equity)} is not positive, so no order that adds "
                f"exposure can meet the limits set as a fraction of equity",
            )
        position_value = abs(new_pos) * price

        limit = self._pos_units
        if limit is not None and abs(new_pos) > limit:
            return CheckResult(
                "max_position_units",
                f"max_position_units: position in {symbol} after the order {_units(new_pos)} "
                f"units exceeds the limit {_units(limit)}{self._level('max_position_units')}",
            )
        limit = self._pos_notional
        if limit is not None and position_value > limit:
            return CheckResult(
                "max_position_notional",
                f"max_position_notional: position in {symbol} after the order "
                f"{_money(position_value)} exceeds the limit {_money(limit)}"
                f"{self._level('max_position_notional')}",
            )
        limit = self._pos_fraction
        if limit is not None and position_value > limit * equity:
            return self._fraction_refusal(
                "max_position_fraction",
                f"position in {symbol}",
                position_value,
                equity,
                limit,
                self._level("max_position_fraction"),
            )

        cls, sector, asset_limit, class_limit, sector_limit = self._info(symbol)
        if asset_limit is not None and position_value > asset_limit * equity:
            return self._fraction_refusal(
                "asset_limits",
                f"exposure to {symbol}",
                position_value,
                equity,
                asset_limit,
                self._group_level("asset_limits", symbol),
            )
        if not self._needs_portfolio:
            return None

        # One pass over the other open positions, valued at their latest close.
        gross = position_value
        net = new_pos * price
        class_exposure = position_value
        sector_exposure = position_value
        prices = snapshot.prices
        by_class = class_limit is not None
        by_sector = sector_limit is not None
        symbol_info = self._symbol_info
        for other, quantity in snapshot.positions.items():
            if not quantity or other == symbol:
                continue
            other_price = prices.get(other)
            if other_price is None or other_price != other_price:  # missing or NaN
                return CheckResult(
                    "missing_price",
                    f"missing_price: no price for the open position in {other}, so exposure "
                    f"cannot be valued",
                )
            value = quantity * other_price
            net += value
            value = abs(value)
            gross += value
            if by_class or by_sector:
                info = symbol_info.get(other) or self._info(other)
                if by_class and info[0] == cls:
                    class_exposure += value
                if by_sector and info[1] == sector:
                    sector_exposure += value

        if class_limit is not None and class_exposure > class_limit * equity:
            return self._fraction_refusal(
                "asset_class_limits",
                f"exposure to asset class {cls}",
                class_exposure,
                equity,
                class_limit,
                self._group_level("asset_class_limits", cls),
            )
        if sector_limit is not None and sector_exposure > sector_limit * equity:
            return self._fraction_refusal(
                "sector_limits",
                f"exposure to sector {sector}",
                sector_exposure,
                equity,
                sector_limit,
                self._group_level("sector_limits", sector),
            )
        limit = self._gross_fraction
        if limit is not None and gross > limit * equity:
            return self._fraction_refusal(
                "max_gross_exposure",
                "gross exposure",
                gross,
                equity,
                limit,
                self._level("max_gross_exposure"),
            )
        limit = self._gross_notional
        if limit is not None and gross > limit:
            return CheckResult(
                "max_gross_notional",
                f"max_gross_notional: gross exposure after the order {_money(gross)} exceeds "
                f"the limit {_money(limit)}{self._level('max_gross_notional')}",
            )
        limit = self._net_fraction
        if limit is not None and abs(net) > limit * equity:
            return self._fraction_refusal(
                "max_net_exposure",
                "net exposure",
                net,
                equity,
                limit,
                self._level("max_net_exposure"),
            )
        limit = self._net_notional
        if limit is not None and abs(net) > limit:
            return CheckResult(
                "max_net_notional",
                f"max_net_notional: net exposure after the order {_money(net)} exceeds the "
                f"limit {_money(limit)} in absolute value{self._level('max_net_notional')}",
            )
        return None

    @staticmethod
    def _fraction_refusal(
        rule: str, what: str, value: float, equity: float, limit: float, level: str
    ) -> CheckResult:
        return CheckResult(
            rule,
            f"{rule}: {what} after the order {_money(value)} is {_pct(value / equity)} of equity "
            f"{_money(equity)}, above the limit {_pct(limit)}{level}",
        )

    @staticmethod
    def _invalid(intent: OrderIntent) -> CheckResult:
        return CheckResult(
            "invalid_order",
            f"invalid_order: {intent.symbol} side {intent.side} quantity {intent.quantity} "
            f"price {intent.price} (side must be +1 or -1, quantity and price positive and finite)",
        )

    def _halted_reason(self, switch: KillSwitch) -> str:
        event = switch.history[-1] if switch.history else None
        cached_event, text = self._halt_text
        if event is None or event != cached_event:
            since = f" since {_iso(switch.tripped_at)}" if switch.tripped_at is not None else ""
            text = (
                f"halted: trading is stopped by the {switch.scope} kill switch{since}: "
                f"{switch.reason}"
            )
            self._halt_text = (event, text)
        return text

    # -- per-bar rules: the kill switch ---------------------------------------------------

    def on_bar(self, snapshot: PortfolioSnapshot) -> CheckResult | None:
        """Trip the deployment's switch on a daily-loss or drawdown breach.

        Returns a halting result once per trip (whichever switch tripped, this rulebook's or
        an emergency switch, unless `check` already reported it), and None on every other bar.
        """
        equity = snapshot.equity
        if self._peak_since_rearm is not None and equity > self._peak_since_rearm:
            self._peak_since_rearm = equity
        for switch in self._switches:
            if switch.state == "tripped":
                event = switch.history[-1] if switch.history else None
                # Compared by value: a rulebook restored from saved state has equal, not
                # identical, events.
                if event is not None and event == self._announced:
                    return None
                self._announced = event
                return CheckResult(switch.rule or "halted", self._halted_reason(switch), True)

        breach = self._loss_breach(snapshot)
        if breach is None:
            return None
        rule, reason = breach
        self.kill_switch.trip(reason=reason, at=snapshot.timestamp, actor="system", rule=rule)
        self._announced = self.kill_switch.history[-1]
        return CheckResult(rule, reason, True)

    def _day_base(self, snapshot: PortfolioSnapshot) -> float:
        override = self._day_base_override
        if override is not None and override[0] == snapshot.timestamp // NS_PER_DAY:
            return override[1]
        return snapshot.day_start_equity

    def _peak(self, snapshot: PortfolioSnapshot) -> float:
        if self._peak_since_rearm is not None:
            return self._peak_since_rearm
        return max(snapshot.peak_equity, snapshot.equity)

    def _loss_breach(self, snapshot: PortfolioSnapshot) -> tuple[str, str] | None:
        lim = self.limits
        equity = snapshot.equity
        day_base = self._day_base(snapshot)
        if day_base > 0:
            loss = day_base - equity
            if lim.daily_loss_amount is not None and loss > lim.daily_loss_amount:
                return "daily_loss_amount", (
                    f"daily_loss_amount: loss today {_money(loss)} (equity {_money(equity)} "
                    f"against {_money(day_base)} at the start of the day) exceeds the limit "
                    f"{_money(lim.daily_loss_amount)}{self._level('daily_loss_amount')}"
                )
            if lim.daily_loss_fraction is not None and loss > lim.daily_loss_fraction * day_base:
                return "daily_loss_fraction", (
                    f"daily_loss_fraction: loss today {_money(loss)} is {_pct(loss / day_base)} "
                    f"of the day-start equity {_money(day_base)}, above the limit "
                    f"{_pct(lim.daily_loss_fraction)}{self._level('daily_loss_fraction')}"
                )
        peak = self._peak(snapshot)
        if lim.max_drawdown is not None and peak > 0:
            drawdown = (peak - equity) / peak
            if drawdown > lim.max_drawdown:
                return "max_drawdown", (
                    f"max_drawdown: drawdown {_pct(drawdown)} (equity {_money(equity)} against "
                    f"the peak {_money(peak)}) exceeds the limit {_pct(lim.max_drawdown)}"
                    f"{self._level('max_drawdown')}"
                )
        return None

    def rearm(self, *, actor: str, reason: str, at: int, equity: float) -> None:
        """Re-arm this deployment's switch; losses are then measured from `equity`."""
        self.kill_switch.rearm(actor=actor, reason=reason, at=at)
        self._peak_since_rearm = equity
        self._day_base_override = (at // NS_PER_DAY, equity)
        self._recent.clear()

    # -- persistence between steps of a live deployment ----------------------------------

    def state(self) -> dict[str, Any]:
        """The rulebook's mutable state as plain JSON, to persist between live steps.

        Emergency switches belong to the organisation and are stored with it, not here.
        """
        override = self._day_base_override
        return {
            "kill_switch": self.kill_switch.to_dict(),
            "announced": None if self._announced is None else self._announced.to_dict(),
            "recent_orders": list(self._recent),
            "peak_since_rearm": self._peak_since_rearm,
            "day_base_override": None if override is None else list(override),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what `state()` saved (into a rulebook built with the same limits)."""
        switch = KillSwitch.from_dict(state["kill_switch"])
        self.kill_switch = switch
        self._switches = (*self._switches[:-1], switch)
        announced = state.get("announced")
        self._announced = None if announced is None else KillSwitchEvent(**announced)
        self._recent = deque(int(t) for t in state.get("recent_orders", ()))
        peak = state.get("peak_since_rearm")
        self._peak_since_rearm = None if peak is None else float(peak)
        override = state.get("day_base_override")
        self._day_base_override = (
            None if override is None else (int(override[0]), float(override[1]))
        )

    # -- utilisation ----------------------------------------------------------------------

    def utilisation(self, snapshot: PortfolioSnapshot) -> list[LimitUsage]:
        """How much of every configured limit the portfolio uses now (for the portal's bars)."""
        return utilisation(
            EffectiveLimits(self.limits, self._sources),
            snapshot,
            self.instruments,
            orders_last_minute=self.orders_in_last_minute(snapshot.timestamp),
            peak_equity=self._peak(snapshot),
            day_start_equity=self._day_base(snapshot),
        )


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One bar of the utilisation chart: `fraction` = current / limit (1.0 = at the limit)."""

    rule: str
    subject: str  # the symbol or group for per-symbol/per-group limits, else ""
    current: float
    limit: float
    fraction: float
    level: str = ""


def utilisation(
    limits: RiskLimits | EffectiveLimits,
    snapshot: PortfolioSnapshot,
    instruments: Mapping[str, Mapping[str, str]] | None = None,
    *,
    orders_last_minute: int = 0,
    peak_equity: float | None = None,
    day_start_equity: float | None = None,
) -> list[LimitUsage]:
    """Current value, limit and fraction used for every configured limit.

    Position limits report the symbol that uses the most of them; per-group limits report
    every group that is held or named. Fractions of equity are reported as fractions (0.25),
    amounts in the account currency. `max_order_notional` concerns single orders, not the
    portfolio, and has no utilisation.
    """
    if isinstance(limits, EffectiveLimits):
        lim, sources = limits.limits, limits.sources
    else:
        lim, sources = limits, {}
    instruments = instruments or {}
    equity = snapshot.equity
    rows: list[LimitUsage] = []

    def add(rule: str, subject: str, current: float, limit: float, key: str = "") -> None:
        level = sources.get(key or rule, "")
        if not level and "." in (key or ""):
            level = sources.get(key.rsplit(".", 1)[0] + ".*", "")
        rows.append(LimitUsage(rule, subject, current, limit, current / limit, level))

    values = {s: abs(q) * snapshot.prices.get(s, 0.0) for s, q in snapshot.positions.items() if q}
    by_class: dict[str, float] = {}
    by_sector: dict[str, float] = {}
    for s, v in values.items():
        meta = instruments.get(s, {})
        c = meta.get("asset_class") or UNCLASSIFIED
        t = meta.get("sector") or UNCLASSIFIED
        by_class[c] = by_class.get(c, 0.0) + v
        by_sector[t] = by_sector.get(t, 0.0) + v
    gross = sum(values.values())
    net = sum(q * snapshot.prices.get(s, 0.0) for s, q in snapshot.positions.items())
    eq = equity if equity > 0 else math.nan

    def worst(rule: str, limit: float | None, measure: dict[str, float]) -> None:
        if limit is None:
            return
        if measure:
            symbol = max(measure, key=lambda k: measure[k])
            add(rule, symbol, measure[symbol], limit)
        else:
            add(rule, "", 0.0, limit)

    worst(
        "max_position_units",
        lim.max_position_units,
        {s: abs(q) for s, q in snapshot.positions.items() if q},
    )
    worst("max_position_notional", lim.max_position_notional, values)
    worst(
        "max_position_fraction", lim.max_position_fraction, {s: v / eq for s, v in values.items()}
    )
    for rule, limit_map, measure in (
        ("asset_limits", lim.asset_limits, values),
        ("asset_class_limits", lim.asset_class_limits, by_class),
        ("sector_limits", lim.sector_limits, by_sector),
    ):
        subjects = sorted((set(measure) | set(limit_map)) - {"*"})
        for subject in subjects:
            limit = limit_map.get(subject, limit_map.get("*"))
            if limit is not None:
                add(rule, subject, measure.get(subject, 0.0) / eq, limit, f"{rule}.{subject}")
    if lim.max_gross_exposure is not None:
        add("max_gross_exposure", "", gross / eq, lim.max_gross_exposure)
    if lim.max_gross_notional is not None:
        add("max_gross_notional", "", gross, lim.max_gross_notional)
    if lim.max_net_exposure is not None:
        add("max_net_exposure", "", abs(net) / eq, lim.max_net_exposure)
    if lim.max_net_notional is not None:
        add("max_net_notional", "", abs(net), lim.max_net_notional)
    if lim.max_orders_per_minute is not None:
        add("max_orders_per_minute", "", float(orders_last_minute), lim.max_orders_per_minute)
    day_base = snapshot.day_start_equity if day_start_equity is None else day_start_equity
    loss = max(0.0, day_base - equity) if day_base > 0 else 0.0
    if lim.daily_loss_amount is not None:
        add("daily_loss_amount", "", loss, lim.daily_loss_amount)
    if lim.daily_loss_fraction is not None:
        add(
            "daily_loss_fraction",
            "",
            loss / day_base if day_base > 0 else 0.0,
            lim.daily_loss_fraction,
        )
    if lim.max_drawdown is not None:
        peak = max(snapshot.peak_equity, equity) if peak_equity is None else peak_equity
        drawdown = max(0.0, (peak - equity) / peak) if peak > 0 else 0.0
        add("max_drawdown", "", drawdown, lim.max_drawdown)
    return rows

"""Market making: quote a bid and an ask around the mid, skewed against the inventory.

Event-driven (a Python `Strategy`): at each bar's close it quotes limit orders for the next
bar only (time in force IOC), at mid * (1 -/+ spread/2) shifted by `skew_bps` per unit of
inventory so that a long inventory lowers both quotes (sell sooner, buy later). A quote fills
when the next bar trades through it (low <= bid, high >= ask), at the quote or at the open if
the market gapped through. Quoting stops on the side that would exceed `max_inventory`.
"""

from __future__ import annotations

import math

from ..types import Param
from .base import Context, Strategy
from .registry import register


@register
class MarketMaking(Strategy):
    name = "market_making"
    description = "Quote both sides around the mid with inventory skew; filled when a bar " \
        "trades through the quote (event-driven, first symbol)."
    params = (
        Param("spread_bps", float, 20.0, min=0.0, help="quoted spread, basis points of the mid"),
        Param("quote_size", float, 10.0, min=0.0, help="units per quote"),
        Param("max_inventory", float, 100.0, min=0.0, help="absolute inventory limit, units"),
        Param("skew_bps", float, 1.0, min=0.0, help="quote shift per unit of inventory, bps"),
    )

    def on_bar(self, ctx: Context) -> None:
        v = self.values
        sym = ctx.symbols[0]
        mid = ctx.bar(sym)["close"]
        inv = ctx.position(sym)
        shift = -inv * v["skew_bps"] / 10_000.0
        half = v["spread_bps"] / 20_000.0
        bid = mid * (1.0 - half + shift)
        ask = mid * (1.0 + half + shift)
        tick = ctx.tick_size
        if tick:
            bid = math.floor(bid / tick + 1e-9) * tick
            ask = math.ceil(ask / tick - 1e-9) * tick
        size = v["quote_size"]
        if size <= 0:
            return
        if inv + size <= v["max_inventory"] and bid > 0:
            ctx.buy(sym, size, order_type="limit", limit_price=bid, tif="IOC")
        if inv - size >= -v["max_inventory"]:
            ctx.sell(sym, size, order_type="limit", limit_price=ask, tif="IOC")

"""United Kingdom: share matching (TCGA 1992 ss.104–106A) and an SA108-style summary.

For each symbol, all acquisitions on one day count as one acquisition and all disposals on one
day as one disposal. A disposal is matched, in this order:

1. with acquisitions on the same day;
2. with acquisitions in the 30 days after it ("bed and breakfast"), earliest first — an
   acquisition used for an earlier disposal is not available again;
3. with the Section 104 holding: all other units, pooled at their total cost (purchase price
   plus fees); a disposal from the pool takes pool cost × units / pooled units.

The same rules apply to cryptoassets (HMRC's Cryptoassets Manual CRYPTO22200 uses the same
same-day / 30-day / pool identification). Disposal proceeds are the gross consideration;
incidental costs of disposal (the sell fee) are allowable costs, as on SA108. Gains and losses
are per disposal, rounded to the penny (ROUND_HALF_UP); the summary adds the rounded figures.

``year`` 2024 means the tax year 6 April 2024 – 5 April 2025 ("2024-25").
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from reporting.tax.model import CONTEXT, ZERO, Trade, to_cents

WINDOW_DAYS = 30


def tax_year_bounds(year: int) -> tuple[dt.date, dt.date]:
    """First and last day of the UK tax year that starts in ``year`` (6 April – 5 April)."""
    return dt.date(year, 4, 6), dt.date(year + 1, 4, 5)


def tax_year_label(year: int) -> str:
    return f"{year}-{(year + 1) % 100:02d}"


@dataclass
class Match:
    """One identification of part of a disposal with its cost."""

    rule: str  # "same_day" | "30_day" | "section_104"
    quantity: Decimal
    cost: Decimal  # full precision allowable cost of the acquisition side
    acquired: dt.date | None  # acquisition date for same-day and 30-day matches


@dataclass
class UKDisposal:
    symbol: str
    asset_class: str
    date: dt.date
    quantity: Decimal
    proceeds: Decimal  # gross, to the penny
    allowable_costs: Decimal  # matched cost + disposal fees, to the penny
    gain: Decimal  # proceeds − allowable costs (negative for a loss)
    matches: list[Match] = field(default_factory=list)
    trade_ids: list[str] = field(default_factory=list)


@dataclass
class PoolHolding:
    symbol: str
    quantity: Decimal
    cost: Decimal  # to the penny


@dataclass
class UKSummary:
    disposals: int
    proceeds: Decimal
    allowable_costs: Decimal
    gains: Decimal  # gains in the year, before losses
    losses: Decimal  # losses in the year (a positive amount)
    net: Decimal  # gains − losses


@dataclass
class UKReport:
    year: int
    label: str
    start: dt.date
    end: dt.date
    disposals: list[UKDisposal]
    summary: UKSummary
    summary_by_class: dict[str, UKSummary]
    pools: list[PoolHolding]


class _Day:
    __slots__ = ("quantity", "amount", "fees", "left", "ids")

    def __init__(self) -> None:
        self.quantity = ZERO
        self.amount = ZERO  # acquisition: cost incl. fees; disposal: gross proceeds
        self.fees = ZERO  # disposal fees
        self.left = ZERO  # units not yet matched
        self.ids: list[str] = []


def _match_symbol(trades: list[Trade], end: dt.date) -> tuple[list[UKDisposal], PoolHolding]:
    buys: dict[dt.date, _Day] = defaultdict(_Day)
    sells: dict[dt.date, _Day] = defaultdict(_Day)
    for trade in trades:
        day = (buys if trade.side == "buy" else sells)[trade.trade_date]
        day.quantity += trade.quantity
        if trade.side == "buy":
            day.amount += trade.quantity * trade.price + trade.fee
        else:
            day.amount += trade.quantity * trade.price
            day.fees += trade.fee
        day.ids.append(trade.id)
    for day in (*buys.values(), *sells.values()):
        day.left = day.quantity
    matches: dict[dt.date, list[Match]] = defaultdict(list)

    def take(buy_date: dt.date, units: Decimal, rule: str, sell_date: dt.date) -> None:
        buy = buys[buy_date]
        cost = buy.amount * units / buy.quantity
        buy.left -= units
        sells[sell_date].left -= units
        matches[sell_date].append(Match(rule, units, cost, buy_date))

    for date, sell in sells.items():  # 1. same day
        buy = buys.get(date)
        if buy is not None:
            take(date, min(sell.left, buy.left), "same_day", date)
    buy_dates = sorted(buys)
    for date in sorted(sells):  # 2. the following 30 days, disposals in date order
        sell = sells[date]
        last = date + dt.timedelta(days=WINDOW_DAYS)
        i = bisect_right(buy_dates, date)
        while sell.left > 0 and i < len(buy_dates) and buy_dates[i] <= last:
            buy_date = buy_dates[i]
            i += 1
            if buys[buy_date].left <= 0:
                continue
            take(buy_date, min(sell.left, buys[buy_date].left), "30_day", date)
    pool_quantity, pool_cost = ZERO, ZERO  # 3. Section 104
    snapshot: PoolHolding | None = None
    symbol = trades[0].symbol
    for date in sorted(set(buys) | set(sells)):
        if snapshot is None and date > end:
            snapshot = PoolHolding(symbol, pool_quantity, to_cents(pool_cost))
        bought = buys.get(date)
        if bought is not None and bought.left > 0:
            pool_cost += bought.amount * bought.left / bought.quantity
            pool_quantity += bought.left
        sold = sells.get(date)
        if sold is not None and sold.left > 0:
            units = sold.left
            cost = pool_cost if units == pool_quantity else pool_cost * units / pool_quantity
            pool_cost -= cost
            pool_quantity -= units
            sold.left = ZERO
            matches[date].append(Match("section_104", units, cost, None))
    if snapshot is None:
        snapshot = PoolHolding(symbol, pool_quantity, to_cents(pool_cost))

    asset_class = trades[0].asset_class
    disposals = []
    for date in sorted(sells):
        sell = sells[date]
        proceeds = to_cents(sell.amount)
        costs = to_cents(sum((m.cost for m in matches[date]), ZERO) + sell.fees)
        disposals.append(UKDisposal(symbol, asset_class, date, sell.quantity, proceeds, costs,
                                    proceeds - costs, matches[date], sell.ids))
    return disposals, snapshot


def summarise(disposals: Sequence[UKDisposal]) -> UKSummary:
    gains = sum((d.gain for d in disposals if d.gain > 0), ZERO)
    losses = -sum((d.gain for d in disposals if d.gain < 0), ZERO)
    return UKSummary(
        disposals=len(disposals),
        proceeds=sum((d.proceeds for d in disposals), ZERO),
        allowable_costs=sum((d.allowable_costs for d in disposals), ZERO),
        gains=gains, losses=losses, net=gains - losses)


def uk_report(trades: Sequence[Trade], year: int) -> UKReport:
    """Matched disposals in the UK tax year starting 6 April ``year``, and the pools at its end.

    ``trades`` are validated and ordered (see :mod:`reporting.tax.parse`); include the 30 days
    after the year end so bed-and-breakfast matches of late disposals are found.
    """
    start, end = tax_year_bounds(year)
    by_symbol: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        by_symbol[trade.symbol].append(trade)
    disposals: list[UKDisposal] = []
    pools: list[PoolHolding] = []
    with localcontext(CONTEXT):
        for symbol in sorted(by_symbol):
            matched, pool = _match_symbol(by_symbol[symbol], end)
            disposals.extend(d for d in matched if start <= d.date <= end)
            if pool.quantity > 0:
                pools.append(pool)
    disposals.sort(key=lambda d: (d.date, d.symbol))
    by_class: dict[str, list[UKDisposal]] = defaultdict(list)
    for disposal in disposals:
        family = "cryptoassets" if disposal.asset_class == "digital_asset" else "shares"
        by_class[family].append(disposal)
    return UKReport(year, tax_year_label(year), start, end, disposals, summarise(disposals),
                    {k: summarise(v) for k, v in sorted(by_class.items())}, pools)

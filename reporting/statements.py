"""Account statements: what happened in an account over a period, in Decimal money.

The input is a plain `AccountActivity` (opening cash and positions, fills, external cash flows,
prices at the start and end of the period), so a statement can be fed from a simulation's fills
today and from paper or live accounts later. `statement_compute` turns it into a `Statement`:
the summary (opening and closing value, deposits, withdrawals, fees, income, realised and
unrealised P&L), the closing positions with cost and market value, and the activity list.

Cost is **average cost** per symbol (buy fees are *not* capitalised; all fees are reported on
their own line), which makes the statement reconcile exactly::

    closing value = opening value + deposits - withdrawals + income - fees
                    + realised P&L + change in unrealised P&L

`Statement.reconciliation_difference` is that identity's residual and is zero for consistent
input (tax lots, with their own matching rules, are the tax engine's business).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

ZERO = Decimal(0)
FlowKind = Literal["deposit", "withdrawal", "fee", "interest", "dividend"]
FLOW_KINDS = ("deposit", "withdrawal", "fee", "interest", "dividend")


class StatementInputError(ValueError):
    """The activity is inconsistent (unknown flow kind, a missing closing price, ...)."""


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    quantity: Decimal  # negative for a short position
    average_cost: Decimal  # per unit


@dataclass(frozen=True, slots=True)
class Fill:
    time: dt.datetime
    symbol: str
    side: Literal["buy", "sell"]
    quantity: Decimal  # positive
    price: Decimal
    fee: Decimal = ZERO
    venue: str = ""
    reference: str = ""


@dataclass(frozen=True, slots=True)
class AccountCashFlow:
    date: dt.date
    kind: FlowKind
    amount: Decimal  # positive; the kind gives the direction
    description: str = ""


@dataclass(slots=True)
class AccountActivity:
    """Everything a statement needs about one account over one period."""

    account: str
    period_start: dt.date
    period_end: dt.date
    currency: str = "USD"
    opening_cash: Decimal = ZERO
    opening_positions: list[Holding] = field(default_factory=list)
    opening_prices: dict[str, Decimal] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    cash_flows: list[AccountCashFlow] = field(default_factory=list)
    closing_prices: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PositionLine:
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    cost: Decimal
    price: Decimal
    market_value: Decimal
    unrealised: Decimal


@dataclass(frozen=True, slots=True)
class ActivityLine:
    date: dt.datetime | dt.date
    kind: str
    description: str
    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal  # effect on cash (+ in, - out)
    fee: Decimal
    realised: Decimal


@dataclass(slots=True)
class Statement:
    activity: AccountActivity
    opening_value: Decimal
    closing_value: Decimal
    opening_cash: Decimal
    closing_cash: Decimal
    deposits: Decimal
    withdrawals: Decimal
    fees: Decimal
    income: Decimal
    realised: Decimal
    unrealised_open: Decimal
    unrealised_close: Decimal
    positions: list[PositionLine]
    lines: list[ActivityLine]

    @property
    def unrealised_change(self) -> Decimal:
        return self.unrealised_close - self.unrealised_open

    @property
    def reconciliation_difference(self) -> Decimal:
        expected = (self.opening_value + self.deposits - self.withdrawals + self.income
                    - self.fees + self.realised + self.unrealised_change)
        return self.closing_value - expected

    def summary(self) -> list[tuple[str, Decimal]]:
        return [
            ("Opening value", self.opening_value),
            ("Deposits", self.deposits),
            ("Withdrawals", -self.withdrawals),
            ("Income (interest, dividends)", self.income),
            ("Fees and commissions", -self.fees),
            ("Realised P&L", self.realised),
            ("Change in unrealised P&L", self.unrealised_change),
            ("Closing value", self.closing_value),
            ("Unrealised P&L at close", self.unrealised_close),
            ("Closing cash", self.closing_cash),
        ]


def _price(prices: Mapping[str, Decimal], symbol: str, when: str) -> Decimal:
    try:
        return Decimal(prices[symbol])
    except KeyError:
        raise StatementInputError(f"no {when} price for {symbol}") from None


def statement_compute(activity: AccountActivity) -> Statement:
    """The statement of `activity` (average cost; see the module docstring)."""
    a = activity
    book: dict[str, list[Decimal]] = {}  # symbol -> [quantity, average cost]
    for h in a.opening_positions:
        book[h.symbol] = [Decimal(h.quantity), Decimal(h.average_cost)]
    unrealised_open = sum(
        (q * (_price(a.opening_prices, s, "opening") - c) for s, (q, c) in book.items()), ZERO)
    opening_value = Decimal(a.opening_cash) + sum(
        (q * _price(a.opening_prices, s, "opening") for s, (q, _) in book.items()), ZERO)

    cash = Decimal(a.opening_cash)
    deposits = withdrawals = fees = income = realised = ZERO
    events: list[tuple[Any, int, Any]] = []
    for f in a.cash_flows:
        if f.kind not in FLOW_KINDS:
            raise StatementInputError(f"unknown cash flow kind {f.kind!r} "
                                      f"(expected one of {', '.join(FLOW_KINDS)})")
        events.append((dt.datetime.combine(f.date, dt.time.min), 0, f))
    for fill in a.fills:
        if fill.quantity <= 0:
            raise StatementInputError(f"fill {fill.reference or fill.time}: quantity must be "
                                      "positive (the side gives the direction)")
        t = fill.time.replace(tzinfo=None) if fill.time.tzinfo else fill.time
        events.append((t, 1, fill))
    events.sort(key=lambda e: (e[0], e[1]))

    lines: list[ActivityLine] = []
    for when, _, ev in events:
        if isinstance(ev, AccountCashFlow):
            amount = Decimal(ev.amount)
            signed = -amount if ev.kind in ("withdrawal", "fee") else amount
            cash += signed
            if ev.kind == "deposit":
                deposits += amount
            elif ev.kind == "withdrawal":
                withdrawals += amount
            elif ev.kind == "fee":
                fees += amount
            else:
                income += amount
            lines.append(ActivityLine(ev.date, ev.kind, ev.description or ev.kind.title(), None,
                                      None, signed, ZERO, ZERO))
            continue
        qty, price, fee = Decimal(ev.quantity), Decimal(ev.price), Decimal(ev.fee)
        signed_qty = qty if ev.side == "buy" else -qty
        pos, avg = book.get(ev.symbol, [ZERO, ZERO])
        pnl = ZERO
        if pos != 0 and (pos > 0) != (signed_qty > 0):
            closed = min(abs(pos), qty)
            # A sell closing a long earns (price - cost); a buy closing a short earns (cost - price).
            pnl = (price - avg) * closed * (1 if pos > 0 else -1)
            realised += pnl
        new_pos = pos + signed_qty
        if new_pos == 0:
            new_avg = ZERO
        elif pos == 0 or (pos > 0) != (new_pos > 0):
            new_avg = price  # opened, or flipped through zero: the remainder costs this price
        elif (pos > 0) == (signed_qty > 0):
            new_avg = (pos * avg + signed_qty * price) / new_pos  # added to the position
        else:
            new_avg = avg  # partly closed: the rest keeps its cost
        book[ev.symbol] = [new_pos, new_avg]
        amount = -signed_qty * price - fee
        cash += amount
        fees += fee
        lines.append(ActivityLine(when, ev.side, f"{ev.side.title()} {ev.symbol}"
                                  + (f" on {ev.venue}" if ev.venue else ""),
                                  qty, price, amount, fee, pnl))

    positions: list[PositionLine] = []
    for symbol in sorted(book):
        q, avg = book[symbol]
        if q == 0:
            continue
        close = _price(a.closing_prices, symbol, "closing")
        positions.append(PositionLine(symbol, q, avg, q * avg, close, q * close,
                                      q * (close - avg)))
    unrealised_close = sum((p.unrealised for p in positions), ZERO)
    closing_value = cash + sum((p.market_value for p in positions), ZERO)
    return Statement(a, opening_value, closing_value, Decimal(a.opening_cash), cash, deposits,
                     withdrawals, fees, income, realised, unrealised_open, unrealised_close,
                     positions, lines)


def activity_from_dict(data: Mapping[str, Any]) -> AccountActivity:
    """An `AccountActivity` from JSON-shaped data (the API's and subscriptions' parameters):
    amounts as strings or numbers, dates as ISO strings."""
    def dec(v: Any) -> Decimal:
        return Decimal(str(v))

    def day(v: Any) -> dt.date:
        return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))

    def moment(v: Any) -> dt.datetime:
        return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(
            str(v).replace("Z", "+00:00"))

    try:
        return AccountActivity(
            account=str(data.get("account", "Account")),
            period_start=day(data["period_start"]),
            period_end=day(data["period_end"]),
            currency=str(data.get("currency", "USD")),
            opening_cash=dec(data.get("opening_cash", "0")),
            opening_positions=[Holding(p["symbol"], dec(p["quantity"]), dec(p["average_cost"]))
                               for p in data.get("opening_positions", [])],
            opening_prices={k: dec(v) for k, v in data.get("opening_prices", {}).items()},
            fills=[Fill(moment(f["time"]), f["symbol"], f["side"], dec(f["quantity"]),
                        dec(f["price"]), dec(f.get("fee", "0")), f.get("venue", ""),
                        f.get("reference", "")) for f in data.get("fills", [])],
            cash_flows=[AccountCashFlow(day(c["date"]), c["kind"], dec(c["amount"]),
                                        c.get("description", ""))
                        for c in data.get("cash_flows", [])],
            closing_prices={k: dec(v) for k, v in data.get("closing_prices", {}).items()},
        )
    except (KeyError, ValueError, ArithmeticError, TypeError) as exc:
        raise StatementInputError(f"invalid account activity: {exc!r}") from exc

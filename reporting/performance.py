"""Account-level return measures: time-weighted (TWR) and money-weighted (MWR) returns.

Both answer a different question, and reports print them side by side with a disclosure:

* **TWR** measures the manager: the growth of one unit invested for the whole period, with the
  effect of the client's deposits and withdrawals removed. The account is valued every day; a
  day's sub-period return is ``r_t = V_t / (V_{t-1} + F_t) - 1`` where ``F_t`` is the net external
  flow of day t, assumed to arrive at the **start** of the day (before that day's market move,
  so it earns that day's return); sub-period returns are geometrically linked:
  ``TWR = prod(1 + r_t) - 1``. (GIPS requires valuing at least at every large flow; daily
  valuation satisfies that.)
* **MWR** measures the investor's experience: the internal rate of return (IRR) that sets the net
  present value of all flows to zero — the opening value as an investment at the start, each
  deposit as an investment and each withdrawal as a return on its date, and the closing value as
  a return at the end. Time is actual/365 in days (the XIRR convention). The annualised IRR is
  found with ``scipy.optimize.brentq`` (``newton`` as a fallback when no sign change brackets a
  root) on floats; amounts enter and the result leaves as ``Decimal``. Periods shorter than a
  year are reported **not annualised** (``(1 + irr) ** (days / 365) - 1``), as GIPS requires.

Flows are signed from the account's point of view: a deposit is positive, a withdrawal negative.
Money stays Decimal; returns are Decimal rounded to ``RETURN_PLACES`` decimal places.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from scipy import optimize

RETURN_PLACES = Decimal("0.00000001")  # 1e-8: far below the 0.01% a report prints
DAYS_PER_YEAR = 365


class ReturnInputError(ValueError):
    """The valuations or flows cannot give a return (e.g. an empty or non-positive base)."""


@dataclass(frozen=True, slots=True)
class CashFlow:
    """An external flow into (+) or out of (-) the account on a date."""

    date: dt.date
    amount: Decimal


def _q(value: Decimal) -> Decimal:
    return value.quantize(RETURN_PLACES, rounding=ROUND_HALF_UP)


def _flows_by_date(flows: Sequence[CashFlow]) -> dict[dt.date, Decimal]:
    out: dict[dt.date, Decimal] = defaultdict(Decimal)
    for f in flows:
        out[f.date] += Decimal(f.amount)
    return out


def time_weighted_return(valuations: Mapping[dt.date, Decimal] | Sequence[tuple[dt.date, Decimal]],
                         flows: Sequence[CashFlow] = ()) -> dict[str, object]:
    """Daily-valued, geometrically linked TWR.

    `valuations` are end-of-day account values (the first is the opening value, before any flow
    on a later day). Returns ``{"twr", "sub_periods": [(date, r_t)], "annualised"}``;
    ``annualised`` is None for periods shorter than a year (GIPS: never annualise those).
    """
    items = sorted(valuations.items() if isinstance(valuations, Mapping) else valuations)
    if len(items) < 2:
        raise ReturnInputError("a time-weighted return needs at least two valuations")
    by_date = _flows_by_date(flows)
    first_date = items[0][0]
    stray = [d for d in by_date if d <= first_date or d > items[-1][0]]
    if stray:
        raise ReturnInputError(f"cash flow on {min(stray)} is outside the valued period "
                               f"({first_date} exclusive to {items[-1][0]})")
    valued = {d for d, _ in items}
    unvalued = sorted(d for d in by_date if d not in valued)
    if unvalued:
        raise ReturnInputError(f"cash flow on {unvalued[0]} has no valuation that day: TWR "
                               "needs the account valued on every flow date")
    growth = Decimal(1)
    subs: list[tuple[dt.date, Decimal]] = []
    for (_, prev), (day, value) in zip(items, items[1:], strict=False):
        base = Decimal(prev) + by_date.get(day, Decimal(0))
        if base <= 0:
            raise ReturnInputError(f"the value at the start of {day} (after flows) is {base}; "
                                   "a return needs a positive base")
        r = Decimal(value) / base - 1
        subs.append((day, _q(r)))
        growth *= 1 + r
    twr = growth - 1
    days = (items[-1][0] - first_date).days
    annualised = None
    if days >= DAYS_PER_YEAR:
        annualised = _q(Decimal(float(growth) ** (DAYS_PER_YEAR / days) - 1))
    return {"twr": _q(twr), "sub_periods": subs, "annualised": annualised, "days": days}


def xnpv(rate: float, flows: Sequence[tuple[dt.date, float]]) -> float:
    t0 = flows[0][0]
    return sum(a / (1.0 + rate) ** ((d - t0).days / DAYS_PER_YEAR) for d, a in flows)


def irr(flows: Sequence[tuple[dt.date, Decimal]]) -> Decimal:
    """Annualised IRR (actual/365) of dated flows from the investor's side: money put in is
    negative, money taken out (and the final value) positive. Raises ReturnInputError when no
    rate zeroes the NPV (e.g. all flows of one sign)."""
    pts = sorted(((d, float(a)) for d, a in flows), key=lambda p: p[0])
    if not any(a > 0 for _, a in pts) or not any(a < 0 for _, a in pts):
        raise ReturnInputError("an IRR needs both money in and money out")
    if pts[-1][0] == pts[0][0]:
        raise ReturnInputError("an IRR needs flows on more than one date")
    f = lambda r: xnpv(r, pts)  # noqa: E731
    lo, hi = -0.9999, 10.0
    # Widen the upper bound until the NPV changes sign (very short periods give huge annual
    # rates); brentq is guaranteed to converge inside a sign-changing bracket.
    while f(lo) * f(hi) > 0 and hi < 1e9:
        hi *= 10
    try:
        if f(lo) * f(hi) < 0:
            rate = optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-12, maxiter=500)
        else:
            rate = optimize.newton(f, 0.1, maxiter=200)
    except (RuntimeError, OverflowError, ZeroDivisionError) as exc:
        raise ReturnInputError(f"the IRR did not converge: {exc}") from exc
    return _q(Decimal(repr(float(rate))))


def money_weighted_return(*, start: dt.date, end: dt.date, opening_value: Decimal,
                          closing_value: Decimal, flows: Sequence[CashFlow] = ()
                          ) -> dict[str, object]:
    """MWR of an account over [start, end]: the IRR of (−opening at start, −deposits,
    +withdrawals, +closing at end). ``mwr`` is for the period (not annualised when shorter than a
    year); ``annualised`` is the annual IRR, given only for periods of a year or more."""
    investor = [(start, -Decimal(opening_value))]
    investor += [(f.date, -Decimal(f.amount)) for f in flows]
    investor.append((end, Decimal(closing_value)))
    annual = irr(investor)
    days = (end - start).days
    period = _q(Decimal(repr((1.0 + float(annual)) ** (days / DAYS_PER_YEAR) - 1.0)))
    return {"mwr": period, "annualised": annual if days >= DAYS_PER_YEAR else None,
            "days": days}


DISCLOSURE = (
    "Time-weighted return (TWR) removes the effect of deposits and withdrawals: it is the return "
    "of one unit invested for the whole period, computed from daily valuations with flows at the "
    "start of the day and sub-period returns linked geometrically; it measures the strategy. "
    "Money-weighted return (MWR) is the internal rate of return of the account's actual flows "
    "(actual/365): it measures the investor's own result and is higher than the TWR when money "
    "was added before good periods. Returns for periods shorter than one year are not annualised."
)

"""Data types shared by the tax engine: trades, input errors, money rounding and tax dates.

This module owns the vocabulary of the tax package — what a trade is, how a bad input row is
reported, how a Decimal becomes a reported figure (to the cent, ROUND_HALF_UP) and when a holding
is long-term. It has no Django import and no behaviour beyond those definitions.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Literal

Side = Literal["buy", "sell"]
AssetClass = Literal["security", "fund", "digital_asset"]
Method = Literal["fifo", "lifo", "hifo", "specific", "average"]

ASSET_CLASSES: tuple[str, ...] = ("security", "fund", "digital_asset")
METHODS: tuple[str, ...] = ("fifo", "lifo", "hifo", "specific", "average")

ZERO = Decimal(0)
CENT = Decimal("0.01")
# Internal arithmetic keeps far more digits than any reported figure needs, so proportional
# splits of a lot are exact to well below a millionth of a cent before the last piece of a lot
# takes the exact remainder.
CONTEXT = Context(prec=40, rounding=ROUND_HALF_UP)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a batch computation.

    Matching a million fills allocates millions of small objects that all stay alive until the
    result is dropped; the collector would rescan them again and again (measured: about half
    the matching time) without ever finding garbage. Nested use is safe.

    On leaving, the objects the batch created are still in the youngest generation, so the next
    allocation would start a collection over all of them (and later a second one when they are
    promoted again) — about a fifth of the matching time for a million fills, spent proving that
    live results are live. Instead they are moved straight to the oldest generation (freeze then
    unfreeze: two list splices, no scan), where the next full collection will see them as usual,
    so cycles in a dropped result are still reclaimed. This is skipped when the process keeps
    objects frozen for its own reasons (``gc.get_freeze_count()``), which unfreezing would undo.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def to_cents(value: Decimal) -> Decimal:
    """Round a full-precision amount to the reported cent (ROUND_HALF_UP)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Decimal) -> str:
    """The decimal string of a reported figure, e.g. ``"1234.56"`` or ``"-0.50"``."""
    cents = to_cents(value)
    if cents == 0:
        cents = abs(cents)  # never print "-0.00"
    return f"{cents:f}"


def quantity_str(value: Decimal) -> str:
    """A quantity without trailing zeros or exponent: ``Decimal("100.000")`` → ``"100"``."""
    text = f"{value.normalize():f}"
    return text


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill as the tax engine sees it.

    ``date`` is the trade date (a ``datetime`` keeps its time for ordering fills within a day).
    ``fee`` is in the price currency; on a buy it adds to basis, on a sell it reduces proceeds.
    ``lot`` on a sell names the ``id`` of the buy it closes (specific identification).
    """

    id: str
    date: dt.date | dt.datetime
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal = ZERO
    lot: str | None = None
    asset_class: AssetClass = "security"
    line: int = 0  # where the trade came from (CSV line, or 1-based position in a list)

    @property
    def trade_date(self) -> dt.date:
        if isinstance(self.date, dt.datetime):
            return self.date.date()
        return self.date


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one input row: where (line, column) and what."""

    line: int
    column: str
    message: str
    column_number: int | None = None

    def __str__(self) -> str:
        if self.column_number is not None:
            where = f"line {self.line}, column {self.column_number} ({self.column})"
        else:
            where = f"line {self.line}, column {self.column}"
        return f"{where}: {self.message}"


class TaxInputError(ValueError):
    """The trades were rejected; ``errors`` lists every problem found, by line and column."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.column_number or 0, e.column))
        lines = "\n".join(str(e) for e in self.errors)
        count = len(self.errors)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the trades:\n{lines}")


class TaxConfigError(ValueError):
    """The requested computation is not allowed for these trades (e.g. average cost on stock)."""


@lru_cache(maxsize=65536)
def one_year_mark(acquired: dt.date) -> dt.date:
    """The first sale date on which a holding acquired on ``acquired`` is long-term.

    IRS Publication 550: "To figure if you held property for more than 1 year, start counting on
    the date after the day you acquired the property. The day you disposed of the property is
    part of your holding period." The count starts the day after acquisition; one year of holding
    ends the day before the same calendar date a year after that start, so the holding is more
    than one year from that calendar date onwards. A start on 29 February has no calendar date a
    year on; its year ends on 28 February and long-term begins on 1 March.

    Examples: acquired 2022-02-05 → long-term from 2023-02-06; acquired 2024-02-29 (count starts
    2024-03-01) → long-term from 2025-03-01; acquired 2023-02-28 (count starts 2023-03-01, the
    year runs through 2024-02-29) → long-term from 2024-03-01.
    """
    start = acquired + dt.timedelta(days=1)
    try:
        return start.replace(year=start.year + 1)
    except ValueError:  # start is 29 February
        return dt.date(start.year + 1, 3, 1)


def is_long_term(acquired: dt.date, sold: dt.date) -> bool:
    """Held more than one year (see :func:`one_year_mark`)."""
    return sold >= one_year_mark(acquired)


# --- Lot book-keeping -------------------------------------------------------------------------
# Plain slotted classes rather than dataclasses: a million fills create millions of these and the
# engine mutates them in place.


class WashMove:
    """Audit of one disallowed loss moved by a wash sale: from a sold piece (``sale_id``,
    ``from_lot``) to replacement units of ``to_lot``, whose holding period now starts on
    ``acquired``. The sold piece lists it in ``wash_out``, the replacement tranche in
    ``wash_in``: one object, seen from both ends."""

    __slots__ = ("sale_id", "from_lot", "to_lot", "quantity", "amount", "acquired")

    def __init__(self, sale_id: str, from_lot: str, to_lot: str, quantity: Decimal,
                 amount: Decimal, acquired: dt.date) -> None:
        self.sale_id = sale_id
        self.from_lot = from_lot
        self.to_lot = to_lot
        self.quantity = quantity
        self.amount = amount
        self.acquired = acquired  # the replacement's holding-period start after the carry-over


class Tranche:
    """Units of one lot sharing a basis and a holding-period start.

    A lot starts as one tranche; a wash sale that reaches only some of its units splits it, so
    the units carrying the disallowed loss (and the carried-over holding period) are a tranche
    of their own. ``basis`` is full precision and includes the buy fee share and any wash-sale
    additions (``wash_basis`` of it).
    """

    __slots__ = ("lot", "quantity", "basis", "acquired", "replacement", "wash_basis", "wash_in",
                 "version")

    def __init__(self, lot: Lot, quantity: Decimal, basis: Decimal, acquired: dt.date) -> None:
        self.lot = lot
        self.quantity = quantity
        self.basis = basis
        self.acquired = acquired
        self.replacement = False  # has already absorbed a wash-sale loss (one loss per unit)
        self.wash_basis = ZERO
        self.wash_in: list[WashMove] | None = None
        self.version = 0  # bumped when the per-unit basis changes (HIFO heap entries go stale)


class Lot:
    """One buy: its replacement tranches, its free units, and running totals for rounding.

    Units never touched by a wash sale all share the buy's unit cost and date, so they are one
    ``free`` tranche; every wash sale that reaches the lot carves its units out of ``free`` into
    a new tranche appended to ``used``. Units are sold from ``used`` first (oldest carve-out
    first), then from ``free``. Emptied tranches stay in ``used`` until they reach its front;
    an emptied ``free`` stays empty (free units are never added back).
    """

    __slots__ = ("id", "symbol", "asset_class", "trade_date", "used", "free", "remaining",
                 "available", "in_book", "index", "consumed_basis", "reported_basis")

    def __init__(self, trade: Trade, index: int) -> None:
        self.id = trade.id
        self.symbol = trade.symbol
        self.asset_class = trade.asset_class
        when = trade.date
        day = self.trade_date = when.date() if isinstance(when, dt.datetime) else when
        # Most lots are never reached by a wash sale: share one empty tuple until one is.
        self.used: list[Tranche] | tuple[()] = ()
        self.free = Tranche(self, trade.quantity, trade.quantity * trade.price + trade.fee, day)
        self.remaining = trade.quantity
        # Units that can still serve as a wash-sale replacement (free units not yet claimed).
        self.available = trade.quantity
        self.in_book = False
        self.index = index  # position in the symbol's acquisition order
        self.consumed_basis = ZERO  # full precision basis sold so far
        self.reported_basis = ZERO  # the same, as the sum of the cents already reported

    def tranches(self) -> list[Tranche]:
        """Tranches still holding units, in the order they are sold."""
        held = [t for t in self.used if t.quantity > 0]
        if self.free.quantity > 0:
            held.append(self.free)
        return held


class Piece:
    """The part of a sale that consumed units of one tranche of one lot."""

    __slots__ = ("lot", "quantity", "acquired", "proceeds", "basis", "wash_basis", "disallowed",
                 "wash_out", "long_term", "proceeds_cents", "basis_cents", "disallowed_cents",
                 "washed_quantity", "wash_from")

    def __init__(self, lot: Lot, quantity: Decimal, acquired: dt.date, basis: Decimal,
                 wash_basis: Decimal) -> None:
        self.lot = lot
        self.quantity = quantity
        self.acquired = acquired
        self.basis = basis
        self.wash_basis = wash_basis
        self.disallowed = ZERO
        self.washed_quantity = ZERO
        self.wash_out: list[WashMove] | None = None
        self.wash_from: list[WashMove] | None = None  # wash additions the sold tranche received
        self.disallowed_cents = ZERO
        # ``proceeds``, ``proceeds_cents``, ``basis_cents`` (all Decimal) and ``long_term``
        # are set by the matcher as soon as the sale's pieces are all known, before anything
        # reads them.


class Disposal:
    """One sell and the pieces it consumed, in consumption order."""

    __slots__ = ("trade", "pieces", "proceeds")

    def __init__(self, trade: Trade, pieces: list[Piece], proceeds: Decimal) -> None:
        self.trade = trade
        self.pieces = pieces
        self.proceeds = proceeds  # quantity × price − fee, full precision


@dataclass(frozen=True, slots=True)
class OpenLot:
    """Units of a lot still held at a date, with their adjusted basis (rounded) for reporting."""

    symbol: str
    lot: str
    quantity: Decimal
    cost_basis: Decimal
    date_acquired: dt.date
    asset_class: str

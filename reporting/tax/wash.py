"""Wash sales (IRC §1091): disallowing a loss and moving it to the replacement units.

A loss on units sold is disallowed when substantially identical units — here: the same symbol —
are acquired within 30 days before or after the sale (a 61-day window of trade dates). Rules
applied, in the order a sale is processed (sales are processed chronologically, so earlier
sales claim replacements first):

* Replacement candidates are the symbol's buys dated within the window, taken in order of
  acquisition (trade date, time, input order). Buys after the sale count even across a year
  end; the file must therefore include the first 30 days of the next year.
* Units of any lot this sale draws from are never replacements for it (Rev. Rul. 56-602: shares
  bought in the same purchase as the ones sold are not "acquired" to replace them).
* A candidate bought on or before the sale must still be held at the sale: the disallowed loss
  is added to the basis of units held, so units already sold cannot carry it.
* Each replacement unit absorbs one loss only (Treas. Reg. §1.1091-1).
* When fewer units are acquired than were sold at a loss, only that proportion of the loss is
  disallowed: loss × replacement units / units sold (Treas. Reg. §1.1091-1).
* The disallowed loss is added to the replacement units' basis, split over the replacement lots
  by units, and the replacement units' holding period includes the sold units' holding period:
  their acquisition date moves back by the number of days the sold units were held
  (§1223(3)).

Finding candidates is a bisect over the symbol's acquisition dates plus a "next lot with free
units" union-find, so each exhausted lot is skipped once, not rescanned by every later sale.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import Decimal

from reporting.tax.model import ZERO, Lot, Piece, Tranche, WashMove

WINDOW_DAYS = 30

# Called with (lot, tranche, added_basis, new_tranche_or_None) whenever a replacement tranche's
# basis grows, so a lot book that orders by basis (HIFO) or pools it (average) can follow.
BasisHook = Callable[[Lot, Tranche, Decimal, "Tranche | None"], None]


class _SymbolIndex:
    __slots__ = ("lots", "dates", "next_free")

    def __init__(self, lots: list[Lot]) -> None:
        self.lots = lots
        self.dates = [lot.trade_date.toordinal() for lot in lots]
        # next_free[i] points at a lot at or after i that may still have free units; i == len
        # means none. Exhausted lots are linked past lazily (path halving).
        self.next_free = list(range(len(lots) + 1))


class WashTracker:
    """Applies the wash-sale rule to each sale's loss pieces, in sale order."""

    def __init__(self, lots_by_symbol: dict[str, list[Lot]], *,
                 on_basis_change: BasisHook | None,
                 include_digital_assets: bool = False) -> None:
        self._index = {symbol: _SymbolIndex(lots) for symbol, lots in lots_by_symbol.items()}
        self._on_basis_change = on_basis_change
        self._include_digital_assets = include_digital_assets

    def applies_to(self, asset_class: str) -> bool:
        return asset_class != "digital_asset" or self._include_digital_assets

    def apply(self, sale_id: str, symbol: str, sale_date: dt.date, pieces: Sequence[Piece]) -> None:
        """Disallow what the rule disallows on ``pieces`` (their proceeds already allocated)."""
        index = self._index[symbol]
        lots, dates, parent = index.lots, index.dates, index.next_free
        count = len(lots)
        sale_ord = sale_date.toordinal()
        last = sale_ord + WINDOW_DAYS
        touched = ({pieces[0].lot.index} if len(pieces) == 1
                   else {piece.lot.index for piece in pieces})
        j = bisect_left(dates, sale_ord - WINDOW_DAYS)  # the loop below skips exhausted lots
        mark = self._mark
        fromordinal = dt.date.fromordinal
        for piece in pieces:
            loss = piece.basis - piece.proceeds
            if loss <= 0:
                continue
            need = piece.quantity
            takes: list[tuple[Lot, Decimal]] = []
            while need > 0:
                while parent[j] != j:  # next lot that may have free units (path halving)
                    parent[j] = parent[parent[j]]
                    j = parent[j]
                if j >= count or dates[j] > last:
                    break
                lot = lots[j]
                if lot.available <= 0:
                    parent[j] = j + 1
                    continue
                if j in touched:
                    j += 1
                    continue
                units = need if need < lot.available else lot.available
                takes.append((lot, units))
                need -= units
                lot.available -= units
                if lot.available <= 0:
                    parent[j] = j + 1
            if not takes:
                continue
            washed = piece.quantity - need
            disallowed = loss if need == 0 else loss * washed / piece.quantity
            piece.disallowed = disallowed
            piece.washed_quantity = washed
            held_days = sale_ord - piece.acquired.toordinal()
            from_lot = piece.lot.id
            if len(takes) == 1:  # the common case: one replacement lot takes the whole amount
                lot, units = takes[0]
                acquired = fromordinal(dates[lot.index] - held_days)
                piece.wash_out = [mark(lot, units, disallowed, acquired, sale_id, from_lot)]
                continue
            wash_out = piece.wash_out = []
            left = disallowed
            last_take = len(takes) - 1
            for n, (lot, units) in enumerate(takes):
                amount = left if n == last_take else disallowed * units / washed
                left -= amount
                acquired = fromordinal(dates[lot.index] - held_days)
                wash_out.append(mark(lot, units, amount, acquired, sale_id, from_lot))

    def _mark(self, lot: Lot, units: Decimal, amount: Decimal, acquired: dt.date, sale_id: str,
              from_lot: str) -> WashMove:
        """Carve ``units`` free units of ``lot`` into a replacement tranche carrying ``amount``.

        Replacement units of one lot that end up with the same holding-period start (typically
        several fills of one day sold at a loss together) join one tranche: they are the same
        purchase with the same holding period, so nothing distinguishes them for identification;
        their disallowed losses pool. This keeps wash-sale chains from splitting lots into ever
        smaller tranches. Returns the move, for the sold piece's audit.
        """
        free = lot.free
        used = lot.used
        if not used:
            used = lot.used = []
        if units < free.quantity:
            basis = free.basis * units / free.quantity
            free.basis -= basis
            free.quantity -= units
        else:
            basis = free.basis
            # Emptied for good (a HIFO heap entry still pointing at it sees it as spent).
            free.quantity = ZERO
            free.basis = ZERO
        target = used[-1] if used else None
        if target is not None and target.acquired == acquired and target.quantity > 0:
            target.quantity += units
            target.basis += basis + amount
        else:
            target = Tranche(lot, units, basis + amount, acquired)
            target.replacement = True
            target.wash_in = []
            used.append(target)
        target.wash_basis += amount
        target.version += 1
        move = WashMove(sale_id, from_lot, lot.id, units, amount, acquired)
        target.wash_in.append(move)  # type: ignore[union-attr]
        if lot.in_book and self._on_basis_change is not None:
            self._on_basis_change(lot, target, amount, None)
        return move

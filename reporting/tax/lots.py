"""Lot matching: which buys each sell consumed, at what basis, with wash sales applied.

Methods (the default for a sell that names no lot):

* ``fifo`` — first in, first out by acquisition (trade date, time, input order); the IRS default.
* ``lifo`` — last in, first out.
* ``hifo`` — highest adjusted basis per unit first (ties: earliest acquired).
* ``specific`` — every sell must name the buy it closes in ``lot``.
* ``average`` — average cost: the basis of units sold is the symbol's pooled basis × units /
  units held; units leave the pool first in, first out for the holding period (as Treas. Reg.
  §1.1012-1(e) prescribes for fund shares). Only for ``fund`` and ``digital_asset`` symbols; a
  file with any ``security`` symbol is refused with :class:`TaxConfigError`.

A sell that names a ``lot`` is specific identification whatever the default method (an adequate
identification overrides FIFO), except under ``average``, where naming a lot is an error.

Arithmetic: a buy's basis is quantity × price + fee; a sell's proceeds are quantity × price − fee.
A partial take of a tranche gets basis × taken / held at 40 significant digits and the tranche
keeps the exact remainder, so a lot's pieces always add back to its cost exactly; the same holds
for a sell's proceeds over its pieces (the last piece takes the remainder). Reported cents use
running totals: a piece reports round(total consumed so far including it) − round(total consumed
before it), per lot for basis and per sell for proceeds, so the reported pieces of a lot add up to
the lot's rounded basis and the pieces of a sell to its rounded proceeds, to the cent.
"""

from __future__ import annotations

import datetime as dt
import heapq
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from reporting.tax.model import (
    CENT,
    CONTEXT,
    METHODS,
    ZERO,
    Disposal,
    Lot,
    OpenLot,
    Piece,
    RowError,
    TaxConfigError,
    TaxInputError,
    Trade,
    Tranche,
    gc_paused,
    one_year_mark,
    to_cents,
)
from reporting.tax.wash import WashTracker

AVERAGE_ALLOWED = ("fund", "digital_asset")


@dataclass
class LotResult:
    """Everything matched: each sell's pieces (all years) and the lots open at ``as_of``."""

    method: str
    disposals: list[Disposal]
    open_lots: list[OpenLot]
    as_of: dt.date | None


class _Pool:
    """Pooled basis of one symbol under average cost."""

    __slots__ = ("quantity", "basis", "consumed", "reported")

    def __init__(self) -> None:
        self.quantity = ZERO
        self.basis = ZERO
        self.consumed = ZERO
        self.reported = ZERO


def _consume(lot: Lot, tranche: Tranche, need: Decimal, out: list[Piece]) -> Decimal:
    """Take up to ``need`` units of one tranche as a piece; return what is still needed."""
    held = tranche.quantity
    if need >= held:
        piece = Piece(lot, held, tranche.acquired, tranche.basis, tranche.wash_basis)
        tranche.quantity = ZERO
        tranche.basis = ZERO
        tranche.wash_basis = ZERO
        taken = held
    else:
        basis = tranche.basis * need / held
        wash_basis = tranche.wash_basis * need / held if tranche.wash_basis else ZERO
        piece = Piece(lot, need, tranche.acquired, basis, wash_basis)
        tranche.basis -= basis
        tranche.wash_basis -= wash_basis
        tranche.quantity = held - need
        taken = need
    piece.wash_from = tranche.wash_in
    if not tranche.replacement:
        lot.available -= taken
    lot.remaining -= taken
    out.append(piece)
    return need - taken


def _take(lot: Lot, need: Decimal, out: list[Piece]) -> Decimal:
    """Consume up to ``need`` units of ``lot``: carved-out tranches first, then free units."""
    used = lot.used
    while need > 0 and used:
        tranche = used[0]
        if tranche.quantity > 0:
            need = _consume(lot, tranche, need, out)
        if tranche.quantity <= 0:
            del used[0]  # type: ignore[union-attr]
    if need > 0 and lot.free.quantity > 0:
        need = _consume(lot, lot.free, need, out)
    return need


def _take_front(queue: deque[Lot], need: Decimal, out: list[Piece]) -> None:
    """FIFO / average: consume ``need`` units from the front of a symbol's queue of lots.

    The common case — a lot no wash sale has reached, sold whole or in part — is inlined here
    (one piece from the free tranche, same arithmetic as :func:`_consume`) because it is most
    of the pieces of a large book.
    """
    while need > 0:
        lot = queue[0]
        if lot.remaining <= 0:
            queue.popleft()
            continue
        if lot.used:
            need = _take(lot, need, out)
            continue
        free = lot.free
        held = free.quantity
        if need >= held:
            piece = Piece(lot, held, free.acquired, free.basis, ZERO)
            free.quantity = ZERO
            free.basis = ZERO
            taken = held
        else:
            basis = free.basis * need / held
            piece = Piece(lot, need, free.acquired, basis, ZERO)
            free.basis -= basis
            free.quantity = held - need
            taken = need
        # A free tranche has received no wash-sale addition (wash_basis 0, wash_in None).
        lot.available -= taken
        lot.remaining -= taken
        out.append(piece)
        need -= taken


class _Engine:
    def __init__(self, trades: Sequence[Trade], method: str, wash_sales: bool,
                 wash_sale_digital_assets: bool) -> None:
        if method not in METHODS:
            raise TaxConfigError(f"unknown lot method {method!r}; expected {', '.join(METHODS)}")
        self.method = method
        self.errors: list[RowError] = []
        self._by_id: dict[str, Lot] | None = None  # built when a sell first names a lot
        by_symbol: dict[str, list[Lot]] = defaultdict(list)
        # The lot of each trade in processing order (None for a sell), so the main loop needs
        # no look-up by id.
        self.order: list[Lot | None] = []
        order = self.order.append
        for trade in trades:
            if trade.side == "buy":
                lots = by_symbol[trade.symbol]
                lot = Lot(trade, len(lots))
                lots.append(lot)
                order(lot)
            else:
                order(None)
        self.by_symbol = by_symbol
        if method == "average":
            refused = sorted({t.symbol for t in trades if t.asset_class not in AVERAGE_ALLOWED})
            if refused:
                raise TaxConfigError(
                    "average cost is allowed only for fund shares and digital assets; refused "
                    f"for the security symbol(s) {', '.join(refused)} (use fifo, lifo, hifo or "
                    "specific, or mark fund shares with asset_class=fund)")
        self.queues: dict[str, deque[Lot]] = defaultdict(deque)
        self.stacks: dict[str, list[Lot]] = defaultdict(list)
        # HIFO: (−unit basis, acquisition index, push order, version, tranche); an entry whose
        # version is stale or whose tranche is empty is dropped when it reaches the top.
        self.heaps: dict[str, list[tuple[Decimal, int, int, int, Tranche]]] = defaultdict(list)
        self.pools: dict[str, _Pool] = defaultdict(_Pool)
        self._tie = 0
        hook = self._basis_changed if method in ("hifo", "average") else None
        self.wash = (WashTracker(by_symbol, on_basis_change=hook,
                                 include_digital_assets=wash_sale_digital_assets)
                     if wash_sales else None)

    # -- books --------------------------------------------------------------------------------

    def _push_tranche(self, symbol: str, tranche: Tranche) -> None:
        self._tie += 1
        lot = tranche.lot
        heapq.heappush(self.heaps[symbol], (-(tranche.basis / tranche.quantity),
                                            lot.index, self._tie, tranche.version, tranche))

    def _basis_changed(self, lot: Lot, tranche: Tranche, amount: Decimal,
                       new: Tranche | None) -> None:
        # Only called for lots already bought: a future buy's tranches enter the book with
        # the basis already adjusted.
        if self.method == "hifo" and tranche.quantity > 0:
            self._push_tranche(lot.symbol, tranche)
        elif self.method == "average":
            self.pools[lot.symbol].basis += amount

    def buy(self, lot: Lot) -> None:
        lot.in_book = True
        method = self.method
        symbol = lot.symbol
        if method == "lifo":
            self.stacks[symbol].append(lot)
        elif method == "hifo":
            if lot.used:
                for tranche in lot.tranches():
                    self._push_tranche(symbol, tranche)
            else:  # no wash sale reached the lot before it was bought: one tranche
                free = lot.free
                self._tie += 1
                heapq.heappush(self.heaps[symbol], (-(free.basis / free.quantity), lot.index,
                                                    self._tie, free.version, free))
        else:
            self.queues[symbol].append(lot)
            if method == "average":
                pool = self.pools[symbol]
                pool.quantity += lot.remaining
                pool.basis += sum((t.basis for t in lot.tranches()), ZERO)

    def sell(self, trade: Trade) -> Disposal | None:
        pieces: list[Piece] = []
        symbol = trade.symbol
        need = trade.quantity
        method = self.method
        if trade.lot is not None:
            if method == "average":
                self.errors.append(RowError(trade.line, "lot", "a sell cannot name a lot under "
                                            "average cost"))
                return None
            by_id = self._by_id
            if by_id is None:
                by_id = self._by_id = {lot.id: lot for lots in self.by_symbol.values()
                                       for lot in lots}
            lot = by_id[trade.lot]
            if lot.remaining < need:
                self.errors.append(RowError(trade.line, "quantity", f"selling {need} from lot "
                                            f"{lot.id!r} which holds only {lot.remaining}"))
                return None
            need = _take(lot, need, pieces)
        elif method == "specific":
            self.errors.append(RowError(trade.line, "lot", "required: with the specific method "
                                        "every sell names the id of the buy it closes"))
            return None
        elif method == "lifo":
            stack = self.stacks[symbol]
            while need > 0:
                if stack[-1].remaining <= 0:
                    stack.pop()
                    continue
                need = _take(stack[-1], need, pieces)
        elif method == "hifo":
            heap = self.heaps[symbol]
            heappop = heapq.heappop
            while need > 0:
                entry = heap[0]
                tranche = entry[4]
                if tranche.quantity <= 0 or entry[3] != tranche.version:
                    heappop(heap)
                    continue
                # Consumed wherever it sits in its lot; an emptied tranche in ``used`` is
                # skipped lazily by the lot's front-first consumer.
                lot = tranche.lot
                if tranche.replacement:
                    need = _consume(lot, tranche, need, pieces)
                    continue
                # Units no wash sale reached (no wash addition): as in _consume, without the
                # wash-sale bookkeeping, because they are most of the pieces.
                held = tranche.quantity
                if need >= held:
                    piece = Piece(lot, held, tranche.acquired, tranche.basis, ZERO)
                    tranche.quantity = ZERO
                    tranche.basis = ZERO
                    taken = held
                else:
                    basis = tranche.basis * need / held
                    piece = Piece(lot, need, tranche.acquired, basis, ZERO)
                    tranche.basis -= basis
                    tranche.quantity = held - need
                    taken = need
                lot.available -= taken
                lot.remaining -= taken
                pieces.append(piece)
                need -= taken
        else:
            _take_front(self.queues[symbol], need, pieces)
        if method == "average":
            self._average_basis(symbol, trade.quantity, pieces)
        else:
            for piece in pieces:
                lot = piece.lot
                consumed = lot.consumed_basis + piece.basis
                lot.consumed_basis = consumed
                cents = consumed.quantize(CENT, ROUND_HALF_UP)
                piece.basis_cents = cents - lot.reported_basis
                lot.reported_basis = cents

        quantity = trade.quantity
        proceeds = quantity * trade.price - trade.fee
        sale_date = trade.date
        if isinstance(sale_date, dt.datetime):  # its trade date, as Trade.trade_date
            sale_date = sale_date.date()
        if len(pieces) == 1:  # the common case: one lot, no split of the proceeds
            piece = pieces[0]
            piece.proceeds = proceeds
            piece.proceeds_cents = proceeds.quantize(CENT, ROUND_HALF_UP)
            piece.long_term = sale_date >= one_year_mark(piece.acquired)
            loss = piece.basis > proceeds
        else:
            loss = False
            left = proceeds
            running = ZERO
            reported = ZERO
            last = len(pieces) - 1
            for n, piece in enumerate(pieces):
                share = left if n == last else proceeds * piece.quantity / quantity
                left -= share
                piece.proceeds = share
                running += share
                cents = running.quantize(CENT, ROUND_HALF_UP)
                piece.proceeds_cents = cents - reported
                reported = cents
                piece.long_term = sale_date >= one_year_mark(piece.acquired)
                if piece.basis > share:
                    loss = True
        wash = self.wash
        if loss and wash is not None and wash.applies_to(trade.asset_class):
            wash.apply(trade.id, symbol, sale_date, pieces)
            for piece in pieces:
                if piece.disallowed:
                    if piece.washed_quantity == piece.quantity:
                        # Fully washed: the reported adjustment is the reported loss, so the row
                        # nets to exactly zero.
                        piece.disallowed_cents = piece.basis_cents - piece.proceeds_cents
                    else:
                        piece.disallowed_cents = to_cents(piece.disallowed)
        return Disposal(trade, pieces, proceeds)

    def _average_basis(self, symbol: str, quantity: Decimal, pieces: list[Piece]) -> None:
        pool = self.pools[symbol]
        if quantity == pool.quantity:
            total = pool.basis
        else:
            total = pool.basis * quantity / pool.quantity
        pool.basis -= total
        pool.quantity -= quantity
        left = total
        last = len(pieces) - 1
        for n, piece in enumerate(pieces):
            share = left if n == last else total * piece.quantity / quantity
            left -= share
            piece.basis = share
            piece.wash_basis = ZERO  # pooled: wash additions are spread over the pool
            pool.consumed += share
            cents = to_cents(pool.consumed)
            piece.basis_cents = cents - pool.reported
            pool.reported = cents

    # -- results ------------------------------------------------------------------------------

    def open_lots(self) -> list[OpenLot]:
        result: list[OpenLot] = []
        for symbol in sorted(self.by_symbol):
            lots = [lot for lot in self.by_symbol[symbol] if lot.in_book and lot.remaining > 0]
            if self.method == "average":
                pool = self.pools[symbol]
                consumed, reported = pool.consumed, pool.reported
                held = pool.quantity
                for lot in lots:
                    for tranche in lot.tranches():
                        basis = pool.basis * tranche.quantity / held if held else ZERO
                        consumed += basis
                        cents = to_cents(consumed)
                        result.append(OpenLot(symbol, lot.id, tranche.quantity, cents - reported,
                                              tranche.acquired, lot.asset_class))
                        reported = cents
                continue
            for lot in lots:
                consumed, reported = lot.consumed_basis, lot.reported_basis
                for tranche in lot.tranches():
                    consumed += tranche.basis
                    cents = to_cents(consumed)
                    result.append(OpenLot(symbol, lot.id, tranche.quantity, cents - reported,
                                          tranche.acquired, lot.asset_class))
                    reported = cents
        return result


def match_lots(trades: Sequence[Trade], *, method: str = "fifo", wash_sales: bool = True,
               wash_sale_digital_assets: bool = False,
               as_of: dt.date | None = None) -> LotResult:
    """Match every sell in ``trades`` (validated and ordered, as the parse functions return them).

    ``as_of`` (e.g. 31 December of the tax year) is the date of the open-lots snapshot; without
    it the snapshot is taken after the last trade. Raises :class:`TaxInputError` for sells that
    cannot be matched (a named lot that no longer holds enough, a missing ``lot`` under
    ``specific``) and :class:`TaxConfigError` for a method the assets do not allow.
    """
    with localcontext(CONTEXT), gc_paused():
        engine = _Engine(trades, method, wash_sales, wash_sale_digital_assets)
        disposals: list[Disposal] = []
        open_lots: list[OpenLot] | None = None
        # Trades are in date order: the snapshot falls before the first trade after as_of.
        cut = len(trades)
        if as_of is not None:
            cut = bisect_right(trades, as_of, key=lambda t: t.trade_date)
        buy, sell, append = engine.buy, engine.sell, disposals.append
        for n, lot in enumerate(engine.order):
            if n == cut:
                open_lots = engine.open_lots()
            if lot is not None:
                buy(lot)
            else:
                trade = trades[n]
                disposal = sell(trade)
                if disposal is not None:
                    append(disposal)
        if engine.errors:
            raise TaxInputError(engine.errors)
        if open_lots is None:
            open_lots = engine.open_lots()
    return LotResult(method, disposals, open_lots, as_of)

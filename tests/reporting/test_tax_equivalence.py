"""Equivalence of the lot engine's results across performance work.

Two guards. First, digests of the full output (Form 8949 JSON and CSV, and every full-precision
field of the raw matching) for a seeded 5,000-fill book with long wash-sale chains, one per lot
method, recorded from the engine before it was optimised: any change in any figure, date, lot
or audit entry changes a digest. Second, hypothesis-generated small books matched without wash
sales are compared piece by piece with a plain first-in-first-out reference written from the
rules in docs/tax.md (proportional basis at 40 digits, the last piece takes the remainder,
running-total cents per lot and per sell).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import deque
from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.tax import match_lots, output, trades_from_objects, us_report
from reporting.tax.lots import LotResult
from reporting.tax.model import CONTEXT, Trade, one_year_mark

CENT = Decimal("0.01")


def churning_book(count: int, *, symbols: int = 60, seed: int = 7,
                  asset_class: str = "security") -> list[Trade]:
    """A seeded book that enters and exits positions per symbol, often re-entering within a
    few days of a losing exit (long wash-sale chains), with fractional quantities, several fills
    a day and some timed fills."""
    rng = random.Random(seed)
    start = dt.date(2022, 1, 3)
    price = [rng.uniform(20, 200) for _ in range(symbols)]
    plans: list[list[tuple[str, int]]] = [[] for _ in range(symbols)]
    flat_until = [0] * symbols
    fills: list[Trade] = []
    for i in range(count):
        day = i * 3 * 365 // count
        s = rng.randrange(symbols)
        for _ in range(50):
            if plans[s] or flat_until[s] <= day:
                break
            s = rng.randrange(symbols)
        if not plans[s]:
            buys = [rng.randint(10, 300) for _ in range(rng.randint(1, 3))]
            total = sum(buys)
            cuts = sorted(rng.sample(range(1, total), min(rng.randint(0, 2), total - 1)))
            sells = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
            plans[s] = [("sell", q) for q in reversed(sells)] + [("buy", q) for q in buys]
        side, qty = plans[s].pop()
        if not plans[s]:
            flat_until[s] = day + (rng.randint(0, 5) if rng.random() < 0.6 else rng.randint(31, 60))
        price[s] *= 1 + rng.gauss(0, 0.03)
        when: dt.date | dt.datetime = start + dt.timedelta(days=day)
        if day % 4 == 0:  # every fill of such a day is timed, in input order
            when = dt.datetime.combine(when, dt.time(9)) + dt.timedelta(seconds=i)
        fills.append(Trade(id=f"t{i}", date=when, symbol=f"S{s}", side=side,  # type: ignore[arg-type]
                           quantity=Decimal(qty) * Decimal("0.37"),
                           price=Decimal(f"{price[s]:.2f}"), fee=Decimal("1.25"),
                           asset_class=asset_class, line=i + 1))  # type: ignore[arg-type]
    return fills


def raw_digest(result: LotResult) -> str:
    """SHA-256 over every full-precision field of every piece and every open lot."""
    h = hashlib.sha256()
    for d in result.disposals:
        h.update(repr((d.trade.id, str(d.proceeds))).encode())
        for p in d.pieces:
            h.update(repr((
                p.lot.id, str(p.quantity), p.acquired, str(p.proceeds), str(p.basis),
                str(p.wash_basis), str(p.disallowed), str(p.washed_quantity), p.long_term,
                str(p.proceeds_cents), str(p.basis_cents), str(p.disallowed_cents),
                [(w.to_lot, str(w.quantity), str(w.amount), w.acquired) for w in p.wash_out or []],
                [(w.sale_id, w.from_lot, str(w.quantity), str(w.amount))
                 for w in p.wash_from or []],
            )).encode())
    for o in result.open_lots:
        h.update(repr((o.symbol, o.lot, str(o.quantity), str(o.cost_basis), o.date_acquired,
                       o.asset_class)).encode())
    return h.hexdigest()


def digests(method: str) -> dict[str, str]:
    asset_class = "fund" if method == "average" else "security"
    trades = trades_from_objects(churning_book(5000, asset_class=asset_class))
    report = us_report(trades, 2023, method=method)
    return {
        "json": hashlib.sha256(output.us_json(report).encode()).hexdigest(),
        "csv": hashlib.sha256(output.us_csv(report).encode()).hexdigest(),
        "raw": raw_digest(match_lots(trades, method=method, as_of=dt.date(2023, 12, 31))),
        "raw_no_wash": raw_digest(match_lots(trades, method=method, wash_sales=False,
                                             as_of=dt.date(2023, 12, 31))),
    }


# Recorded from the engine as it was before its performance work (results then were reviewed
# against the hand-derived cases in the other test_tax_* modules).
EXPECTED = {
    "fifo": {
        "json": "dfe818579fc77f2a79b4432d2401cf84aa2bceb27e81b31e5d80164590820089",
        "csv": "34bff7a90a604be83cec59661b10b97a13c6d1a4de70e10d224f927389f5c0df",
        "raw": "00e2dff51111a2f2be9aa19dcd737abd79141cff00bdaef90421ab5fd72a0be7",
        "raw_no_wash": "f471bcd2684996ee6f8232168e6ab1043f289274c8ceba4765d38a549d340102",
    },
    "lifo": {
        "json": "4933ce6640604b9022ba9f5176ced7e25a51c421dad3c1a78d488f1186b8ff52",
        "csv": "8dcdf816fc4d71cf222ea6d636ee2856652c75792dde8b79f906fee6a5896e65",
        "raw": "9e8ee1a38f28444f4088a5519364e90754ca278750257318397a3cf4f2e90c3b",
        "raw_no_wash": "f6e8afa78db43e2cd125c9c141989c847691c43e30e3515cf019cfdb894d2875",
    },
    "hifo": {
        "json": "3f8bf7304c46b0c9d5c97d25a4d9091c7c48f0025cf032111456c71117d5abe0",
        "csv": "d6a472aa88756281f4f016afadfc421d0ded7439b1307117fc41d6790276294b",
        "raw": "5f80de00ade6db8af98a302c0e2060022b38ce7a44bda230bde8528d73be89d4",
        "raw_no_wash": "868416c5c32ca00fe4c5f09f0b21d4338349563d68c0ce195a9ce17b4f033f69",
    },
    "average": {
        "json": "e28e944e126af0c7a54191d68543bbaec8fcab19442ebedef898c465c1a7efd9",
        "csv": "5d17d52dc18bc99b55690f3c48c5a3070641284f9ed11a9e718d6141f75e789f",
        "raw": "bddaa4c8d0b953eb67d1c7779fcd971707436d76a0c1907d6af28e3ca3e16244",
        "raw_no_wash": "00e474f5ceb5bed9c1c5f5f61407526fc8d747cf33ffb07452712aac8ea365cb",
    },
}


def test_book_has_long_wash_sale_chains():
    # The digests below only guard the wash-sale path if the book exercises it heavily.
    result = match_lots(trades_from_objects(churning_book(5000)), method="fifo")
    pieces = [p for d in result.disposals for p in d.pieces]
    washed = [p for p in pieces if p.disallowed]
    carried = [p for p in pieces if p.wash_from]
    assert len(washed) > len(pieces) // 4
    assert len(carried) > len(pieces) // 4


def test_fifo_output_is_unchanged():
    assert digests("fifo") == EXPECTED["fifo"]


def test_lifo_output_is_unchanged():
    assert digests("lifo") == EXPECTED["lifo"]


def test_hifo_output_is_unchanged():
    assert digests("hifo") == EXPECTED["hifo"]


def test_average_output_is_unchanged():
    assert digests("average") == EXPECTED["average"]


def reference_fifo(trades: list[Trade]) -> list[list[tuple]]:
    """First in, first out without wash sales, written straight from docs/tax.md."""
    queues: dict[str, deque[list]] = {}
    lots: dict[str, list] = {}  # id -> [quantity, basis, consumed, reported]
    sales: list[list[tuple]] = []
    with localcontext(CONTEXT):
        for t in trades:
            if t.side == "buy":
                lot = [t.quantity, t.quantity * t.price + t.fee, Decimal(0), Decimal(0)]
                lots[t.id] = lot
                queues.setdefault(t.symbol, deque()).append((t.id, t.date, lot))
                continue
            need = t.quantity
            taken = []
            queue = queues[t.symbol]
            while need > 0:
                lot_id, when, lot = queue[0]
                take = min(need, lot[0])
                basis = lot[1] if take == lot[0] else lot[1] * take / lot[0]
                lot[0] -= take
                lot[1] -= basis
                lot[2] += basis
                cents = lot[2].quantize(CENT, ROUND_HALF_UP)
                taken.append((lot_id, take, basis, cents - lot[3], when))
                lot[3] = cents
                need -= take
                if lot[0] == 0:
                    queue.popleft()
            proceeds = t.quantity * t.price - t.fee
            left, running, reported = proceeds, Decimal(0), Decimal(0)
            pieces = []
            for n, (lot_id, take, basis, basis_cents, when) in enumerate(taken):
                share = left if n == len(taken) - 1 else proceeds * take / t.quantity
                left -= share
                running += share
                cents = running.quantize(CENT, ROUND_HALF_UP)
                day = when.date() if isinstance(when, dt.datetime) else when
                sold = t.date.date() if isinstance(t.date, dt.datetime) else t.date
                pieces.append((lot_id, take, basis, basis_cents, share, cents - reported,
                               sold >= one_year_mark(day)))
                reported = cents
            sales.append(pieces)
    return sales


@st.composite
def small_books(draw: st.DrawFn) -> list[Trade]:
    fills: list[Trade] = []
    held = {"A": Decimal(0), "B": Decimal(0)}
    day = dt.date(2023, 1, 2)
    for i in range(draw(st.integers(1, 25))):
        day += dt.timedelta(days=draw(st.integers(0, 200)))
        symbol = draw(st.sampled_from("AB"))
        price = Decimal(draw(st.integers(1, 50_000))) / 100
        fee = Decimal(draw(st.integers(0, 300))) / 100
        if held[symbol] > 0 and draw(st.booleans()):
            quantity = held[symbol] * draw(st.integers(1, 100)) / 100
            side = "sell"
            held[symbol] -= quantity
        else:
            quantity = Decimal(draw(st.integers(1, 3000))) / 7
            quantity = quantity.quantize(Decimal("0.0001"))
            side = "buy"
            held[symbol] += quantity
        fills.append(Trade(id=f"t{i}", date=day, symbol=symbol, side=side,  # type: ignore[arg-type]
                           quantity=quantity, price=price, fee=fee, line=i + 1))
    return fills


@settings(max_examples=150, deadline=None)
@given(small_books())
def test_fifo_without_wash_sales_matches_the_plain_reference(fills: list[Trade]):
    trades = trades_from_objects(fills)
    result = match_lots(trades, method="fifo", wash_sales=False)
    got = [[(p.lot.id, p.quantity, p.basis, p.basis_cents, p.proceeds, p.proceeds_cents,
             p.long_term) for p in d.pieces] for d in result.disposals]
    assert got == reference_fifo(trades)

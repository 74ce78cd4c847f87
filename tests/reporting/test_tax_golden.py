"""Golden results of the lot engine on a seeded 20,000-fill history, per method, with and
without wash sales.

The golden file (``data/tax_golden_20k.json``) was written by this module's ``--write`` entry
point from the engine as it was before its integer-arithmetic rewrite, and is never regenerated
to make a failing test pass: a difference means a figure, date, lot or audit entry changed. Each
case keeps readable figures (counts, Schedule D totals, the sums of the reported cents) next to
SHA-256 digests of the Form 8949 JSON and CSV and of every full-precision field of the raw
matching (pieces, wash-sale audit in and out, open lots), so a failure says what moved.

The history is harsher than the churning book of ``test_tax_equivalence``: fractional and
whole quantities, sells that cut across several lots, re-entries within days of a losing exit,
timed fills within a day, sells that name their lot (specific identification under any default
method), zero fees and sub-cent prices, and digital assets (outside the wash-sale rule) next to
securities.

Regenerate (only after a reviewed, intended change of results)::

    python -m tests.reporting.test_tax_golden --write
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from reporting.tax import match_lots, output, trades_from_objects, us_report
from reporting.tax.lots import LotResult
from reporting.tax.model import Trade

GOLDEN = Path(__file__).parent / "data" / "tax_golden_20k.json"
CASES = [(method, wash) for method in ("fifo", "lifo", "hifo") for wash in (True, False)]
AS_OF = dt.date(2023, 12, 31)


def history(count: int = 20_000, *, symbols: int = 120, seed: int = 20240101) -> list[Trade]:
    """A seeded three-year history over ``symbols`` symbols: every fifth a digital asset, and
    on every eighth (from the fourth) each sell names the buy it closes — on the others the
    default method picks, so the bookkeeping of what each buy still holds stays exact."""
    rng = random.Random(seed)
    start = dt.date(2022, 1, 3)
    price = [rng.uniform(0.5, 300) for _ in range(symbols)]
    lots: list[list[list]] = [[] for _ in range(symbols)]  # open buys: [id, quantity held]
    fills: list[Trade] = []
    for i in range(count):
        day = i * 3 * 365 // count
        s = rng.randrange(symbols)
        price[s] = max(0.01, price[s] * (1 + rng.gauss(0, 0.03)))
        when: dt.date | dt.datetime = start + dt.timedelta(days=day)
        if day % 3 == 0:  # every fill of such a day is timed, in input order
            when = dt.datetime.combine(when, dt.time(9, 30)) + dt.timedelta(seconds=i)
        decimals = "0.0001" if price[s] < 1 else "0.01"
        px = Decimal(f"{price[s]:.6f}").quantize(Decimal(decimals))
        fee = Decimal(rng.choice(("0", "0", "1.00", "0.35", "4.95")))
        asset_class = "digital_asset" if s % 5 == 0 else "security"
        held = sum((q for _, q in lots[s]), Decimal(0))
        lot_id = None
        if held > 0 and rng.random() < 0.5:
            side = "sell"
            if s % 8 == 3:  # these symbols identify the buy every sell closes
                named = rng.choice(lots[s])
                lot_id = named[0]
                quantity = named[1] if rng.random() < 0.5 else named[1] * rng.randint(1, 99) / 100
            elif rng.random() < 0.3:  # close the whole position
                quantity = held
            else:
                quantity = held * rng.randint(1, 99) / 100
            quantity = min(quantity.quantize(Decimal("0.001")), held)
            if quantity <= 0:
                quantity = held
            if lot_id is not None:
                quantity = min(quantity, named[1])
                named[1] -= quantity
            else:  # only the total held matters on these symbols
                left = quantity
                for entry in lots[s]:
                    take = min(left, entry[1])
                    entry[1] -= take
                    left -= take
            lots[s] = [entry for entry in lots[s] if entry[1] > 0]
        else:
            side = "buy"
            if rng.random() < 0.5:
                quantity = Decimal(rng.randint(1, 500))
            else:
                quantity = (Decimal(rng.randint(1, 500_000)) / 1000).quantize(Decimal("0.001"))
            lots[s].append([f"f{i}", quantity])
        fills.append(Trade(id=f"f{i}", date=when, symbol=f"X{s}", side=side,  # type: ignore[arg-type]
                           quantity=quantity, price=px, fee=fee, lot=lot_id,
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


def summarise(trades: list[Trade], method: str, wash_sales: bool) -> dict:
    result = match_lots(trades, method=method, wash_sales=wash_sales, as_of=AS_OF)
    pieces = [p for d in result.disposals for p in d.pieces]
    figures = {
        "sales": len(result.disposals),
        "pieces": len(pieces),
        "washed_pieces": sum(1 for p in pieces if p.disallowed),
        "carried_pieces": sum(1 for p in pieces if p.wash_from),
        "open_lots_2023": len(result.open_lots),
        "proceeds_cents": str(sum(p.proceeds_cents for p in pieces)),
        "basis_cents": str(sum(p.basis_cents for p in pieces)),
        "disallowed_cents": str(sum(p.disallowed_cents for p in pieces)),
        "open_basis_2023": str(sum(o.cost_basis for o in result.open_lots)),
        "raw_sha256": raw_digest(result),
    }
    if wash_sales:  # us_report always applies the wash-sale rule
        report = us_report(trades, 2023, method=method)
        figures["form_8949_rows_2023"] = len(report.rows)
        figures["schedule_d_2023"] = output.schedule_d_dict(report.schedule_d)
        figures["json_sha256"] = hashlib.sha256(output.us_json(report).encode()).hexdigest()
        figures["csv_sha256"] = hashlib.sha256(output.us_csv(report).encode()).hexdigest()
    return figures


def case_name(method: str, wash_sales: bool) -> str:
    return f"{method}{'' if wash_sales else '_no_wash'}"


@pytest.fixture(scope="module")
def trades() -> list[Trade]:
    return trades_from_objects(history())


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_history_exercises_every_path(trades: list[Trade], golden: dict):
    # The golden figures only guard the engine if the history reaches every path heavily.
    assert len(trades) == 20_000
    assert sum(1 for t in trades if t.lot) > 500
    assert sum(1 for t in trades if isinstance(t.date, dt.datetime)) > 5000
    assert sum(1 for t in trades if t.asset_class == "digital_asset") > 3000
    fifo = golden["fifo"]
    assert fifo["washed_pieces"] > fifo["pieces"] // 5
    assert fifo["carried_pieces"] > fifo["pieces"] // 10
    assert fifo["pieces"] > fifo["sales"] * 1.5  # sells cut across lots
    assert golden["fifo_no_wash"]["washed_pieces"] == 0


@pytest.mark.parametrize(("method", "wash_sales"), CASES,
                         ids=[case_name(m, w) for m, w in CASES])
def test_results_match_the_golden_file(trades: list[Trade], golden: dict, method: str,
                                       wash_sales: bool):
    assert summarise(trades, method, wash_sales) == golden[case_name(method, wash_sales)]


def write_golden() -> None:
    trades = trades_from_objects(history())
    data = {case_name(m, w): summarise(trades, m, w) for m, w in CASES}
    GOLDEN.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.reporting.test_tax_golden --write")
    write_golden()

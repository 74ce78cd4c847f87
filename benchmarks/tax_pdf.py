"""Benchmark: a 10,000-row Form 8949 PDF (target: under 15 s).

Builds 10,000 sales (a mix of short- and long-term, gains and losses, some wash sales) over
500 symbols, computes the US report (not timed separately from the PDF but reported), renders
the PDF with reportlab and counts its pages with pypdf.

    python benchmarks/tax_pdf.py [--rows 10000] [--out report.pdf]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporting.tax.model import Trade  # noqa: E402
from reporting.tax.parse import trades_from_objects  # noqa: E402
from reporting.tax.pdf import us_pdf  # noqa: E402
from reporting.tax.us import us_report  # noqa: E402


def round_trips(rows: int, *, seed: int = 11) -> list[Trade]:
    rng = random.Random(seed)
    trades: list[Trade] = []
    for i in range(rows):
        symbol = f"SYM{rng.randrange(500):03d}"
        bought = dt.date(2023, 1, 2) + dt.timedelta(days=rng.randrange(600))
        sold = max(bought + dt.timedelta(days=rng.randrange(1, 500)), dt.date(2024, 1, 1))
        sold = min(sold, dt.date(2024, 12, 31))
        if sold <= bought:
            bought = sold - dt.timedelta(days=rng.randrange(1, 400))
        qty = Decimal(rng.randint(1, 500))
        price = Decimal(f"{rng.uniform(5, 500):.2f}")
        exit_price = Decimal(f"{float(price) * rng.uniform(0.7, 1.4):.2f}")
        trades.append(Trade(id=f"b{i}", date=bought, symbol=symbol, side="buy", quantity=qty,
                            price=price, fee=Decimal("1.00")))
        trades.append(Trade(id=f"s{i}", date=sold, symbol=symbol, side="sell", quantity=qty,
                            price=exit_price, fee=Decimal("1.00"), lot=f"b{i}"))
    return trades_from_objects(trades)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--out", help="also write the PDF here")
    args = parser.parse_args()

    trades = round_trips(args.rows)
    t0 = time.perf_counter()
    report = us_report(trades, 2024)
    t1, c1 = time.perf_counter(), time.process_time()
    buffer = io.BytesIO()
    us_pdf(report, buffer)
    t2, c2 = time.perf_counter(), time.process_time()
    from pypdf import PdfReader

    pages = len(PdfReader(io.BytesIO(buffer.getvalue())).pages)
    print(f"report: {len(report.rows):,} Form 8949 rows in {t1 - t0:.2f} s; "
          f"PDF: {pages:,} pages, {len(buffer.getvalue()) / 1e6:.1f} MB in {t2 - t1:.2f} s wall, "
          f"{c2 - c1:.2f} s CPU")
    if args.out:
        Path(args.out).write_bytes(buffer.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

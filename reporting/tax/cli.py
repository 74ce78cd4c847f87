"""The ``nexow tax`` command: tax lots and forms from a trade CSV.

    tax TRADES.csv --year 2024 [--method fifo|lifo|hifo|specific|average]
        [--jurisdiction us|uk] [--format json|csv|pdf] [--out FILE]
        [--wash-sale-digital-assets] [--securities-reporting MODE]
        [--digital-asset-reporting MODE] [--married-filing-separately]

Bad input prints one line per problem (line and column) on stderr and exits with status 2;
nothing is written. JSON and CSV go to stdout unless ``--out`` is given; PDF needs ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reporting.tax.model import METHODS, TaxConfigError, TaxInputError
from reporting.tax.us import REPORTING_MODES

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexow tax",
        description="Capital gains from a trade CSV: Form 8949 and Schedule D (us) or "
                    "share matching and an SA108 summary (uk).")
    parser.add_argument("trades", help="CSV with id,date,symbol,side,quantity,price"
                                       "[,fee,lot,asset_class]")
    parser.add_argument("--year", type=int, required=True,
                        help="tax year: calendar year (us) or the year it starts on 6 April (uk)")
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="lot method for sells that name no lot (us; default fifo)")
    parser.add_argument("--jurisdiction", choices=("us", "uk"), default="us")
    parser.add_argument("--format", choices=("json", "csv", "pdf"), default="json")
    parser.add_argument("--out", help="output file (required for pdf; stdout otherwise)")
    parser.add_argument("--wash-sale-digital-assets", action="store_true",
                        help="apply the wash-sale rule to digital assets too (us)")
    parser.add_argument("--securities-reporting", choices=REPORTING_MODES,
                        default="basis_reported",
                        help="what Form 1099-B reported for securities: picks box A/B/C, D/E/F")
    parser.add_argument("--digital-asset-reporting", choices=REPORTING_MODES,
                        default="basis_reported",
                        help="what Form 1099-DA reported for digital assets: box G/H/I, J/K/L")
    parser.add_argument("--married-filing-separately", action="store_true",
                        help="use the $1,500 capital-loss limit (us)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imported here so `--help` stays instant and argument errors need no heavy imports.
    from reporting.tax import output
    from reporting.tax.parse import parse_trades_csv

    if args.format == "pdf" and not args.out:
        print("nexow tax: --format pdf needs --out FILE", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.jurisdiction == "uk" and args.method is not None:
        print("nexow tax: note: --method is ignored for uk; UK share identification (same day, "
              "30 days, Section 104 pool) is set by law", file=sys.stderr)
    source = Path(args.trades)
    try:
        trades = parse_trades_csv(source)
        if args.jurisdiction == "uk":
            from reporting.tax.uk import uk_report

            uk = uk_report(trades, args.year)
            us = None
        else:
            from reporting.tax.us import us_report

            us = us_report(trades, args.year, method=args.method or "fifo",
                           wash_sale_digital_assets=args.wash_sale_digital_assets,
                           security_reporting=args.securities_reporting,
                           digital_asset_reporting=args.digital_asset_reporting,
                           married_filing_separately=args.married_filing_separately)
            uk = None
    except FileNotFoundError:
        print(f"nexow tax: {source}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as exc:
        print(f"nexow tax: {source}: not UTF-8 text ({exc.reason})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TaxInputError as exc:
        count = len(exc.errors)
        print(f"nexow tax: {source}: {count} bad row{'s' if count != 1 else ''}; nothing was "
              "computed", file=sys.stderr)
        for error in exc.errors:
            print(f"{source}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TaxConfigError as exc:
        print(f"nexow tax: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if args.format == "pdf":
        from reporting.tax import pdf

        if us is not None:
            pdf.us_pdf(us, args.out)
        else:
            assert uk is not None
            pdf.uk_pdf(uk, args.out)
        return 0
    if us is not None:
        text = output.us_json(us) if args.format == "json" else output.us_csv(us)
    else:
        assert uk is not None
        text = output.uk_json(uk) if args.format == "json" else output.uk_csv(uk)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

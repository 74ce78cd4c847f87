"""The tax engine: lot matching, wash sales, US Form 8949 / Schedule D and UK share matching.

Pure Python with Decimal money and no Django import, so the platform, the ``nexow tax`` command
and notebooks share one implementation. Typical use::

    trades = parse_trades_csv("trades.csv")          # or trades_from_objects(fills)
    report = us_report(trades, 2024, method="fifo")  # or uk_report(trades, 2024)
    text = output.us_json(report)                    # output.us_csv, pdf.us_pdf(report, path)
"""

from reporting.tax.lots import LotResult, match_lots
from reporting.tax.model import TaxConfigError, TaxInputError, Trade
from reporting.tax.parse import parse_trades_csv, parse_trades_text, trades_from_objects
from reporting.tax.uk import UKReport, uk_report
from reporting.tax.us import USReport, us_report

__all__ = [
    "LotResult",
    "TaxConfigError",
    "TaxInputError",
    "Trade",
    "UKReport",
    "USReport",
    "match_lots",
    "parse_trades_csv",
    "parse_trades_text",
    "trades_from_objects",
    "uk_report",
    "us_report",
]

"""Reading trades for the tax engine: the trade CSV and lists of trade objects.

This module owns input validation. Every bad row is reported by line and column in one
:class:`~reporting.tax.model.TaxInputError`; a file with any bad row yields no trades at all, so
nothing is ever computed from a rejected file. Accepted trades come back in processing order
(trade date, then time of day when given, then input order).

CSV columns: ``id,date,symbol,side,quantity,price,fee,lot,asset_class`` — ``fee``, ``lot`` and
``asset_class`` may be absent or empty. Line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from reporting.tax.model import (
    ASSET_CLASSES,
    ZERO,
    RowError,
    TaxInputError,
    Trade,
    gc_paused,
)

REQUIRED_COLUMNS = ("id", "date", "symbol", "side", "quantity", "price")
OPTIONAL_COLUMNS = ("fee", "lot", "asset_class")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


def sort_key(trade: Trade) -> tuple[dt.date, dt.time, int]:
    """Processing order: trade date, time of day if known (date-only sorts first), input order."""
    if isinstance(trade.date, dt.datetime):
        return (trade.date.date(), trade.date.time().replace(tzinfo=None), trade.line)
    return (trade.date, dt.time.min, trade.line)


def parse_trades_csv(source: str | Path | io.TextIOBase) -> list[Trade]:
    """Read and validate a trade CSV (a path, or an open text file)."""
    with gc_paused():
        if isinstance(source, (str, Path)):
            with open(source, newline="", encoding="utf-8-sig") as handle:
                return _parse_rows(csv.reader(handle))
        return _parse_rows(csv.reader(source))


def parse_trades_text(text: str) -> list[Trade]:
    """Read and validate trade CSV content held in a string."""
    with gc_paused():
        return _parse_rows(csv.reader(io.StringIO(text)))


def _parse_rows(reader: Iterable[list[str]]) -> list[Trade]:
    errors: list[RowError] = []
    rows = iter(reader)
    header = next(rows, None)
    if header is None:
        raise TaxInputError([RowError(1, "header", "the file is empty; expected a header row")])
    names = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name not in ALL_COLUMNS:
            errors.append(RowError(1, name or "(blank)", f"unknown column {name!r}; expected "
                                   f"{', '.join(ALL_COLUMNS)}", number))
        elif name in index:
            errors.append(RowError(1, name, "column appears twice", number))
        else:
            index[name] = number - 1
    for name in REQUIRED_COLUMNS:
        if name not in index:
            errors.append(RowError(1, name, "required column is missing"))
    if errors:
        raise TaxInputError(errors)

    trades: list[Trade] = []
    numbers = {name: i + 1 for name, i in index.items()}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines carry nothing
        if len(row) > len(names):
            errors.append(RowError(line, "row", f"{len(row)} fields but the header has "
                                   f"{len(names)}", len(names) + 1))
            continue
        values = {name: (row[i].strip() if i < len(row) else "") for name, i in index.items()}
        trade = _build_trade(values, line, errors, numbers)
        if trade is not None:
            trades.append(trade)
    return _validated(trades, errors, numbers)


def trades_from_objects(items: Iterable[Trade | Mapping[str, Any] | Any]) -> list[Trade]:
    """Validate trades given as :class:`Trade`, mappings or objects with the same attributes.

    Lines in errors are 1-based positions in ``items``. Floats are refused for quantity, price
    and fee: money stays Decimal from the source.
    """
    with gc_paused():
        return _from_objects(items)


def _from_objects(items: Iterable[Trade | Mapping[str, Any] | Any]) -> list[Trade]:
    errors: list[RowError] = []
    trades: list[Trade] = []
    for position, item in enumerate(items, start=1):
        if type(item) is Trade and _well_formed(item):
            # Already typed: keep the object (a platform feed of a million fills would spend
            # most of its time rebuilding identical trades otherwise).
            trades.append(item if item.line == position else replace(item, line=position))
            continue
        values: dict[str, Any] = {}
        for name in ALL_COLUMNS:
            if isinstance(item, Mapping):
                values[name] = item.get(name)
            else:
                values[name] = getattr(item, name, None)
        trade = _build_trade(values, position, errors, None)
        if trade is not None:
            trades.append(trade)
    return _validated(trades, errors)


def _well_formed(trade: Trade) -> bool:
    """True when a Trade needs no conversion and breaks no per-row rule (else the slow path
    rebuilds it and words the errors)."""
    quantity, price, fee = trade.quantity, trade.price, trade.fee
    return (type(quantity) is Decimal and type(price) is Decimal and type(fee) is Decimal
            and quantity.is_finite() and price.is_finite() and fee.is_finite()
            and quantity > 0 and price >= 0 and fee >= 0
            and (trade.side == "buy" or trade.side == "sell")
            and isinstance(trade.date, dt.date)
            and bool(trade.id) and trade.id == trade.id.strip()
            and bool(trade.symbol) and trade.symbol == trade.symbol.strip()
            and trade.asset_class in ASSET_CLASSES
            and (trade.lot is None or (trade.side == "sell" and trade.lot == trade.lot.strip()
                                       and trade.lot != "")))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _decimal(value: Any, column: str, line: int, errors: list[RowError],
             numbers: dict[str, int] | None, *, required: bool) -> Decimal | None:
    number = numbers.get(column) if numbers else None
    if isinstance(value, float):
        errors.append(RowError(line, column, "must be a Decimal or a decimal string, not a float",
                               number))
        return None
    if isinstance(value, Decimal):
        result = value
    else:
        text = _text(value)
        if not text:
            if required:
                errors.append(RowError(line, column, "is required", number))
                return None
            return ZERO
        try:
            result = Decimal(text)
        except InvalidOperation:
            errors.append(RowError(line, column, f"{text!r} is not a number", number))
            return None
    if not result.is_finite():
        errors.append(RowError(line, column, f"{value!r} is not a finite number", number))
        return None
    return result


def _build_trade(values: Mapping[str, Any], line: int, errors: list[RowError],
                 numbers: dict[str, int] | None) -> Trade | None:
    def num(column: str) -> int | None:
        return numbers.get(column) if numbers else None

    before = len(errors)
    trade_id = _text(values.get("id"))
    if not trade_id:
        errors.append(RowError(line, "id", "is required", num("id")))

    raw_date = values.get("date")
    when: dt.date | dt.datetime | None = None
    if isinstance(raw_date, (dt.date, dt.datetime)):
        when = raw_date
    else:
        text = _text(raw_date)
        if not text:
            errors.append(RowError(line, "date", "is required", num("date")))
        else:
            when = _parse_date(text)
            if when is None:
                errors.append(RowError(line, "date", f"{text!r} is not an ISO 8601 date or "
                                       "datetime (e.g. 2024-03-15 or 2024-03-15T14:30:00)",
                                       num("date")))

    symbol = _text(values.get("symbol"))
    if not symbol:
        errors.append(RowError(line, "symbol", "is required", num("symbol")))

    side = _text(values.get("side")).lower()
    if side not in ("buy", "sell"):
        shown = _text(values.get("side"))
        errors.append(RowError(line, "side", f"unknown side {shown!r}; expected buy or sell"
                               if shown else "is required; expected buy or sell", num("side")))

    quantity = _decimal(values.get("quantity"), "quantity", line, errors, numbers, required=True)
    if quantity is not None and quantity <= 0:
        word = "negative" if quantity < 0 else "zero"
        errors.append(RowError(line, "quantity", f"{word} quantity {quantity}; quantities are "
                               "positive (the side says buy or sell)", num("quantity")))
    price = _decimal(values.get("price"), "price", line, errors, numbers, required=True)
    if price is not None and price < 0:
        errors.append(RowError(line, "price", f"negative price {price}", num("price")))
    fee = _decimal(values.get("fee"), "fee", line, errors, numbers, required=False)
    if fee is not None and fee < 0:
        errors.append(RowError(line, "fee", f"negative fee {fee}", num("fee")))

    lot = _text(values.get("lot")) or None
    if lot is not None and side == "buy":
        errors.append(RowError(line, "lot", "only a sell can name the lot it closes", num("lot")))

    asset_class = _text(values.get("asset_class")).lower() or "security"
    if asset_class not in ASSET_CLASSES:
        errors.append(RowError(line, "asset_class", f"unknown asset class {asset_class!r}; "
                               f"expected {', '.join(ASSET_CLASSES)}", num("asset_class")))

    if len(errors) != before:
        return None
    assert when is not None and quantity is not None and price is not None and fee is not None
    return Trade(id=trade_id, date=when, symbol=symbol, side=side,  # type: ignore[arg-type]
                 quantity=quantity, price=price, fee=fee, lot=lot,
                 asset_class=asset_class, line=line)  # type: ignore[arg-type]


def _parse_date(text: str) -> dt.date | dt.datetime | None:
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _validated(trades: list[Trade], errors: list[RowError],
               columns: dict[str, int] | None = None) -> list[Trade]:
    """Cross-row checks, then processing order. Raises if any row anywhere was bad."""

    def numbers(column: str) -> int | None:
        return columns.get(column) if columns else None

    seen: dict[str, Trade] = {}
    for trade in trades:
        first = seen.get(trade.id)
        if first is not None:
            errors.append(RowError(trade.line, "id", f"duplicate id {trade.id!r} (first used on "
                                   f"line {first.line})", numbers("id")))
        else:
            seen[trade.id] = trade

    asset_of: dict[str, Trade] = {}
    for trade in trades:
        first = asset_of.setdefault(trade.symbol, trade)
        if first.asset_class != trade.asset_class:
            errors.append(RowError(trade.line, "asset_class", f"{trade.symbol} is "
                                   f"{first.asset_class} on line {first.line} but "
                                   f"{trade.asset_class} here", numbers("asset_class")))

    ordered = sorted(trades, key=sort_key)
    held: dict[str, Decimal] = {}
    for trade in ordered:
        if trade.side == "buy":
            held[trade.symbol] = held.get(trade.symbol, ZERO) + trade.quantity
            continue
        if trade.lot is not None:
            buy = seen.get(trade.lot)
            if buy is None or buy.side != "buy":
                errors.append(RowError(trade.line, "lot", f"unknown lot {trade.lot!r}: no buy "
                                       "has that id", numbers("lot")))
            elif buy.symbol != trade.symbol:
                errors.append(RowError(trade.line, "lot", f"lot {trade.lot!r} is a buy of "
                                       f"{buy.symbol}, not {trade.symbol}", numbers("lot")))
            elif sort_key(buy) > sort_key(trade):
                errors.append(RowError(trade.line, "lot", f"lot {trade.lot!r} is bought after "
                                       "this sell", numbers("lot")))
        holding = held.get(trade.symbol, ZERO)
        if trade.quantity > holding:
            errors.append(RowError(trade.line, "quantity", f"selling {trade.quantity} "
                                   f"{trade.symbol} but only {holding} held on "
                                   f"{trade.trade_date.isoformat()} (short sales are not "
                                   "supported)", numbers("quantity")))
            held[trade.symbol] = ZERO
        else:
            held[trade.symbol] = holding - trade.quantity
    if errors:
        raise TaxInputError(errors)
    return ordered

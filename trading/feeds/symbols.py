"""One symbol convention for every feed and broker: `BASE/QUOTE` in upper case ("BTC/USDT").

Exchanges spell the same market differently (Binance "BTCUSDT", others "btc-usdt" or
"BTC_USDT"; Interactive Brokers a contract with a symbol and a currency). Everything inside
the platform uses the normalised form, and each adapter converts at its edge.
"""

from __future__ import annotations

import re

# Quote assets recognised at the end of a concatenated exchange symbol, longest first so that
# "BTCUSDT" splits as BTC/USDT and not BTCUSD/T.
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR",
                "USD", "GBP", "JPY", "TRY", "BRL", "AUD")
_SEPARATORS = re.compile(r"[-_/:. ]")


class SymbolError(ValueError):
    pass


def normalise_symbol(raw: str, *, quotes: tuple[str, ...] = QUOTE_ASSETS) -> str:
    """"btc-usdt", "BTC_USDT", "BTCUSDT", "btc/usdt" -> "BTC/USDT"."""
    text = raw.strip().upper()
    if not text:
        raise SymbolError("empty symbol")
    parts = [p for p in _SEPARATORS.split(text) if p]
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 1:
        for quote in sorted(quotes, key=len, reverse=True):
            if text.endswith(quote) and len(text) > len(quote):
                return f"{text[: -len(quote)]}/{quote}"
    raise SymbolError(f"cannot tell base and quote apart in {raw!r}")


def exchange_symbol(symbol: str) -> str:
    """The concatenated form of exchanges like Binance ("BTC/USDT" -> "BTCUSDT")."""
    return normalise_symbol(symbol).replace("/", "")


def split_symbol(symbol: str) -> tuple[str, str]:
    base, quote = normalise_symbol(symbol).split("/")
    return base, quote

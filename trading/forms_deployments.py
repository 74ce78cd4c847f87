"""Portal forms of live and paper trading: a new deployment, a broker account, a manual order.

Forms parse and check shape only. The rules (configuration ranges, which accounts can deploy, the
risk rulebook of an order) are the services' (`trading.services.deployments`,
`trading.services.orders`); their refusals come back as `ApplicationError` field errors, which
`add_service_error` puts next to the field they concern (``config.cash`` → ``cash``). The
configuration fields take their ranges from the service's `CONFIG_FIELDS`, so the browser's own
checks and the service's agree.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from nexow_site.errors import ApplicationError
from trading.models import AccountMode, BrokerKind
from trading.services.deployments import CONFIG_FIELDS, DEFAULTS

MAX_SYMBOLS = 50
# Where a service error with no field belongs, by its code.
CODE_FIELDS = {"broker_unsupported": "broker_account"}
CONFIG_HELP = {
    "cash": "Starting cash of the paper account.",
    "bar_seconds": "Length of one bar: the strategy decides once per bar (60 = one minute).",
    "lookback": "Bars of history the strategy sees at each decision.",
    "warm_bars": "Bars loaded as history before the first decision (at most the lookback).",
    "seed": "The paper feed's random walk; empty = the deployment's number.",
    "volatility": "Standard deviation of one bar's log return of the paper feed (0.002 = 0.2 %).",
}
CONFIG_LABELS = {"cash": "Starting cash", "bar_seconds": "Bar length (seconds)",
                 "lookback": "Lookback (bars)", "warm_bars": "Warm-up bars",
                 "seed": "Feed seed", "volatility": "Feed volatility"}
CONFIG_ORDER = ("cash", "bar_seconds", "lookback", "warm_bars", "seed", "volatility")


def add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """Puts a service refusal next to the field it names, or above the form."""
    placed = False
    for name, messages in (getattr(error, "fields", None) or {}).items():
        field = name.removeprefix("config.")
        if field in form.fields:
            for message in messages if isinstance(messages, list | tuple) else [messages]:
                form.add_error(field, str(message))
            placed = True
    field = CODE_FIELDS.get(getattr(error, "code", ""))
    if not placed and field in form.fields:
        form.add_error(field, error.message)
        placed = True
    if not placed:
        form.add_error(None, getattr(error, "message", str(error)))


def _config_field(name: str) -> forms.Field:
    kind, lo, hi = CONFIG_FIELDS[name]
    required = name in ("cash", "bar_seconds", "lookback", "warm_bars")
    common: dict[str, Any] = {"label": CONFIG_LABELS[name], "help_text": CONFIG_HELP[name],
                              "required": required, "min_value": lo, "max_value": hi,
                              "initial": DEFAULTS.get(name) if required else None}
    if kind is int:
        return forms.IntegerField(**common)
    return forms.FloatField(**common, widget=forms.NumberInput(attrs={"step": "any"}))


class DeploymentForm(forms.Form):
    name = forms.CharField(max_length=80, required=False,
                           help_text="How the deployment is listed; empty = its number.")
    strategy_version = forms.ModelChoiceField(queryset=None, label="Strategy version",
                                              empty_label=None)
    broker_account = forms.ModelChoiceField(queryset=None, label="Broker account",
                                            empty_label=None)
    symbols = forms.CharField(
        max_length=2000, help_text="Separated by commas, e.g. BTC/USD, ETH/USD.")
    start = forms.BooleanField(required=False, initial=True, label="Start it now")

    def __init__(self, *args: Any, versions, accounts, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["strategy_version"].queryset = versions
        self.fields["strategy_version"].label_from_instance = (
            lambda v: f"{v.strategy.name} v{v.number}" + (f" — {v.note}" if v.note else ""))
        self.fields["broker_account"].queryset = accounts
        self.fields["broker_account"].label_from_instance = (
            lambda a: f"{a.name} ({a.get_kind_display()}, {a.get_mode_display().lower()})")
        start = self.fields.pop("start")
        for name in CONFIG_ORDER:
            self.fields[name] = _config_field(name)
        self.fields["start"] = start

    def clean_symbols(self) -> list[str]:
        symbols = [s.strip().upper() for s in self.cleaned_data["symbols"].split(",")
                   if s.strip()]
        if not symbols:
            raise forms.ValidationError("Give at least one symbol.")
        if len(symbols) > MAX_SYMBOLS:
            raise forms.ValidationError(f"At most {MAX_SYMBOLS} symbols.")
        too_long = [s for s in symbols if len(s) > 40]
        if too_long:
            raise forms.ValidationError(f"A symbol has at most 40 characters: {too_long[0]}.")
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise forms.ValidationError(f"Each symbol once: {', '.join(repeated)} is repeated.")
        return symbols

    def config(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in CONFIG_ORDER
                if self.cleaned_data.get(name) is not None}


class BrokerAccountForm(forms.Form):
    name = forms.CharField(max_length=80)
    kind = forms.ChoiceField(choices=BrokerKind.choices, initial=BrokerKind.PAPER,
                             help_text="Paper accounts trade a simulated market and need no "
                                       "credentials.")
    mode = forms.ChoiceField(choices=AccountMode.choices, initial=AccountMode.PAPER,
                             help_text="A paper account is always in paper mode.")
    # Write-only: an entered secret is never sent back to the browser, not even when the form
    # is shown again with errors.
    api_key = forms.CharField(label="API key", required=False, max_length=4096, strip=True,
                              widget=forms.PasswordInput(render_value=False,
                                                         attrs={"autocomplete": "off"}),
                              help_text="Not for paper accounts. Stored encrypted; only its last "
                                        "four characters are shown.")
    api_secret = forms.CharField(label="API secret", required=False, max_length=4096,
                                 strip=True,
                                 widget=forms.PasswordInput(render_value=False,
                                                            attrs={"autocomplete": "off"}),
                                 help_text="Not for paper accounts. Stored encrypted, never "
                                           "shown.")
    # The ccxt account's options (`trading.services.venues.ccxt_options` checks them again).
    exchange = forms.ChoiceField(choices=[("binance", "Binance spot")], initial="binance",
                                 required=False, help_text="For exchange (ccxt) accounts.")
    testnet = forms.BooleanField(required=False, label="Testnet",
                                 help_text="Trade on the exchange's test network (required for "
                                           "an exchange account in paper mode).")
    dedicated = forms.BooleanField(
        required=False, label="Dedicated to one deployment",
        help_text="The account's holdings are the deployment's positions. Leave off for an "
                  "account shared with other trading.")
    base_url = forms.ChoiceField(required=False, label="Endpoint",
                                 help_text="One of the endpoints the platform's operator allows "
                                           "(empty: the exchange's own).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        super().__init__(*args, **kwargs)
        allowed = list(getattr(settings, "NEXOW_CCXT_BASE_URLS", ()))
        self.fields["base_url"].choices = [("", "The exchange's own")] + [
            (url, url) for url in allowed]
        if not allowed:
            self.fields["base_url"].widget = forms.HiddenInput()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        has_credentials = bool(data.get("api_key") or data.get("api_secret"))
        kind = data.get("kind")
        if kind == BrokerKind.PAPER:
            if data.get("mode") and data["mode"] != AccountMode.PAPER:
                self.add_error("mode", "A paper account is always in paper mode.")
            if has_credentials:
                self.add_error("api_key", "A paper account takes no credentials.")
        elif kind == BrokerKind.CCXT:
            if not data.get("api_key"):
                self.add_error("api_key", "An exchange account needs its API key.")
            if not data.get("api_secret"):
                self.add_error("api_secret", "An exchange account needs its API secret.")
            if data.get("mode") == AccountMode.PAPER and not data.get("testnet"):
                self.add_error("testnet", "An exchange account in paper mode trades on the "
                                          "testnet.")
        return data

    def credentials(self) -> dict[str, str]:
        """As the venues read them: ``api_key`` and ``secret``."""
        names = {"api_key": "api_key", "api_secret": "secret"}
        return {stored: self.cleaned_data[field] for field, stored in names.items()
                if self.cleaned_data.get(field)}

    def options(self) -> dict[str, Any]:
        if self.cleaned_data.get("kind") != BrokerKind.CCXT:
            return {}
        options: dict[str, Any] = {"exchange": self.cleaned_data.get("exchange") or "binance",
                                   "testnet": bool(self.cleaned_data.get("testnet")),
                                   "dedicated": bool(self.cleaned_data.get("dedicated"))}
        if self.cleaned_data.get("base_url"):
            options["base_url"] = self.cleaned_data["base_url"]
        return options


class OrderForm(forms.Form):
    symbol = forms.ChoiceField(choices=())
    side = forms.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")])
    quantity = forms.FloatField(min_value=1e-12, max_value=1e12,
                                widget=forms.NumberInput(attrs={"step": "any"}))
    order_type = forms.ChoiceField(label="Type", choices=[("market", "Market"),
                                                          ("limit", "Limit")])
    limit_price = forms.FloatField(label="Limit price", required=False, min_value=1e-12,
                                   max_value=1e12, help_text="For a limit order.",
                                   widget=forms.NumberInput(attrs={"step": "any"}))
    # One id per rendered form: submitting the same form twice places one order.
    leg = forms.RegexField(regex=r"^[A-Za-z0-9_-]{1,40}$", widget=forms.HiddenInput)

    def __init__(self, *args: Any, symbols: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("leg", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [(s, s) for s in symbols]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("order_type") == "limit" and data.get("limit_price") is None:
            self.add_error("limit_price", "A limit order needs a limit price.")
        if data.get("order_type") == "market":
            data["limit_price"] = None
        return data

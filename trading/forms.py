"""Portal forms of the trading app: dataset import and generation, strategies and versions (with
parameter fields generated from the engine's `Param` specs), and the simulate form.

Forms only parse and check shape; the rules (parameter ranges, rules syntax, sizes, tenancy) are
the services' and come back as `ApplicationError` field errors, which `add_service_error` puts
next to the field they concern.
"""

from __future__ import annotations

from typing import Any

from django import forms

from nexow_site.errors import ApplicationError
from trading.engine.sizing import MODES as SIZING_MODES
from trading.engine.strategies.registry import list_strategies
from trading.models import AssetClass, Calendar, StrategyKind
from trading.services.marketdata import GENERATORS

PARAM_PREFIX = "param_"
GENERATOR_LABELS = {"gbm": "Geometric Brownian motion", "regime_switching": "Regime switching",
                    "jump_diffusion": "Jump diffusion", "correlated_basket": "Correlated basket",
                    "cointegrated_pair": "Cointegrated pair"}
GENERATOR_CHOICES = [(name, GENERATOR_LABELS.get(name, name.replace("_", " ").capitalize()))
                     for name in sorted(GENERATORS)]
SIZING_CHOICES = [(mode, mode.replace("-", " ").capitalize()) for mode in SIZING_MODES]


def strategy_types() -> list[dict[str, Any]]:
    """The engine's strategy types as the portal offers them (name, description, params)."""
    return list_strategies()


def strategy_type(kind: str) -> dict[str, Any] | None:
    return next((t for t in strategy_types() if t["name"] == kind), None)


def add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """Puts a service refusal next to the field it names (``params.fast`` → ``param_fast``)."""
    placed = False
    for name, messages in (getattr(error, "fields", None) or {}).items():
        field = PARAM_PREFIX + name.split(".", 1)[1] if name.startswith("params.") else name
        if field in form.fields:
            for message in messages if isinstance(messages, list | tuple) else [messages]:
                form.add_error(field, str(message))
            placed = True
    if not placed:
        form.add_error(None, getattr(error, "message", str(error)))


def _param_field(spec: dict[str, Any], initial: Any) -> forms.Field:
    label = spec["name"].replace("_", " ").capitalize()
    common = {"label": label, "help_text": spec.get("help") or "", "initial": initial}
    if spec.get("choices"):
        return forms.TypedChoiceField(choices=[(c, c) for c in spec["choices"]], **common)
    kind = spec["type"]
    if kind == "bool":
        return forms.BooleanField(required=False, **common)
    if kind == "int":
        return forms.IntegerField(min_value=spec.get("min"), max_value=spec.get("max"), **common)
    if kind == "float":
        return forms.FloatField(min_value=spec.get("min"), max_value=spec.get("max"), **common)
    return forms.CharField(**common)


class _ParamsMixin:
    """Adds one field per engine parameter (``param_<name>``) of the strategy type ``kind``."""

    def add_param_fields(self, kind: str, values: dict[str, Any] | None) -> None:
        info = strategy_type(kind) or {"params": []}
        values = values or {}
        self.param_names: list[str] = []
        for spec in info["params"]:
            if kind == StrategyKind.RULES and spec["name"] == "program":
                continue  # the rules text has its own editor
            name = spec["name"]
            self.fields[PARAM_PREFIX + name] = _param_field(spec, values.get(name, spec["default"]))
            self.param_names.append(name)

    def params(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(PARAM_PREFIX + name) for name in self.param_names
                if self.cleaned_data.get(PARAM_PREFIX + name) is not None}

    def param_fields(self) -> list[forms.BoundField]:
        return [self[PARAM_PREFIX + name] for name in self.param_names]


class VersionFieldsMixin(_ParamsMixin):
    """Sizing, costs and universe of a version, shared by the create and new-version forms."""

    def add_version_fields(self, kind: str, version=None) -> None:
        self.add_param_fields(kind, version.params if version else None)
        sizing = (version.sizing if version else None) or {}
        costs = (version.costs if version else None) or {}
        if kind == StrategyKind.RULES:
            self.fields["rules_text"] = forms.CharField(
                label="Rules", required=True,
                initial=version.rules_text if version else (strategy_type(kind) or {}).get(
                    "params", [{}])[0].get("default", ""),
                help_text="One rule per line: entry:, exit:, short_entry:, short_exit: followed "
                          "by a condition, e.g. entry: crossover(sma(close, 10), sma(close, 50)).",
                widget=forms.Textarea(attrs={"rows": 6, "class": "code", "spellcheck": "false",
                                             }))
        self.fields["universe"] = forms.CharField(
            required=False, initial=", ".join(version.universe) if version else "",
            help_text="Symbols to trade, separated by commas; empty = every symbol of the dataset.")
        self.fields["sizing_mode"] = forms.ChoiceField(
            label="Sizing", choices=SIZING_CHOICES, initial=sizing.get("mode", "all-cash"),
            help_text="How large each entry is.")
        self.fields["sizing_value"] = forms.FloatField(
            label="Sizing value", min_value=0.000001, initial=sizing.get("value", 1.0),
            help_text="Units, currency or fraction of equity (0.5 = 50 %) by mode; "
                      "ignored for all cash.")
        self.fields["commission_bps"] = forms.FloatField(
            label="Commission (bps)", min_value=0, initial=costs.get("commission_bps", 0.0),
            help_text="Per fill, in basis points of the traded value.")
        self.fields["slippage_bps"] = forms.FloatField(
            label="Slippage (bps)", min_value=0, initial=costs.get("slippage_bps", 0.0),
            help_text="Price moved against each fill, in basis points.")

    def version_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "params": self.params(),
            "rules_text": data.get("rules_text", "") or "",
            "universe": [s.strip() for s in (data.get("universe") or "").split(",") if s.strip()],
            "sizing": {"mode": data["sizing_mode"], "value": data["sizing_value"]},
            "costs": {"commission_bps": data["commission_bps"],
                      "slippage_bps": data["slippage_bps"]},
        }


class StrategyCreateForm(VersionFieldsMixin, forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2,
                                                                                }))

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.add_version_fields(kind)


class VersionForm(VersionFieldsMixin, forms.Form):
    note = forms.CharField(max_length=200, required=False,
                           help_text="What changed, for the versions list.")

    def __init__(self, *args: Any, kind: str, version=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.add_version_fields(kind, version)


class DatasetImportForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="How the dataset is listed.")
    file = forms.FileField(help_text="CSV or Parquet with timestamp, open, high, low, close, "
                                     "volume (and symbol for several instruments).")
    symbol = forms.CharField(max_length=40, required=False,
                             help_text="For a single-instrument file without a symbol column; "
                                       "defaults to the file name.")
    asset_class = forms.ChoiceField(choices=AssetClass.choices, initial=AssetClass.EQUITY,
                                    help_text="For instruments the file introduces.")
    calendar = forms.ChoiceField(choices=Calendar.choices, initial=Calendar.EXCHANGE,
                                 help_text="24/7 for crypto; exchange sessions otherwise.")


class DatasetGenerateForm(forms.Form):
    name = forms.CharField(max_length=120)
    generator = forms.ChoiceField(choices=GENERATOR_CHOICES, initial="gbm")
    n_bars = forms.IntegerField(label="Bars", min_value=2, max_value=1_000_000, initial=2000)
    seed = forms.IntegerField(initial=1, help_text="The same seed gives the same data.")


class SimulationForm(forms.Form):
    strategy_version = forms.ModelChoiceField(queryset=None, label="Strategy version",
                                              empty_label=None)
    dataset = forms.ModelChoiceField(queryset=None, empty_label=None)
    period_start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                   help_text="Empty = from the first bar.")
    period_end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                 help_text="Empty = to the last bar.")
    cash = forms.FloatField(min_value=0.01, initial=100_000.0, help_text="Starting cash.")
    commission_bps = forms.FloatField(
        label="Commission (bps)", min_value=0, required=False,
        help_text="Empty = the version's. A different value saves a new version with it.")
    slippage_bps = forms.FloatField(label="Slippage (bps)", min_value=0, required=False,
                                    help_text="Empty = the version's.")
    sizing_mode = forms.ChoiceField(label="Sizing", required=False,
                                    choices=[("", "The version's"), *SIZING_CHOICES])
    sizing_value = forms.FloatField(label="Sizing value", min_value=0.000001, required=False)
    allow_short = forms.BooleanField(required=False, label="Allow short selling")

    def __init__(self, *args: Any, versions, datasets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["strategy_version"].queryset = versions
        self.fields["strategy_version"].label_from_instance = (
            lambda v: f"{v.strategy.name} v{v.number}" + (f" — {v.note}" if v.note else ""))
        self.fields["dataset"].queryset = datasets

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and start > end:
            self.add_error("period_end", "The period ends before it starts.")
        if data.get("sizing_mode") and data.get("sizing_mode") != "all-cash" \
                and not data.get("sizing_value"):
            self.add_error("sizing_value", "Give the size for this sizing mode.")
        return data


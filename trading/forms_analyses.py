"""Portal forms that start an analysis: a parameter sweep, a walk-forward or a Monte Carlo run.

The sweep and walk-forward forms get one small group of fields per parameter of the chosen
version's strategy type: *from*, *to* and *step* for numbers (a grid of every step from *from* to
*to*, or a uniform range for random search), a set of checkboxes for parameters with choices.
A parameter left empty keeps the version's value. The forms only parse; the service
(`trading.services.analyses.analysis_create`) decides what is allowed, and its
`ApplicationError` field names (``spec.n_chunks``, ``spec.space.fast``…) are put next to the
field they concern by `add_service_error`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from nexow_site.errors import ApplicationError
from trading.forms import strategy_type
from trading.models import StrategyKind

MAX_VALUES_PER_PARAMETER = 1000
OBJECTIVES = [
    ("sharpe", "Sharpe ratio"), ("sortino", "Sortino ratio"), ("calmar", "Calmar ratio"),
    ("total_return", "Total return"), ("cagr", "CAGR"), ("max_drawdown", "Max drawdown"),
    ("profit_factor_trades", "Profit factor"), ("win_rate_trades", "Win rate"),
    ("expectancy", "Expectancy"),
]
SEARCH_METHODS = [("grid", "Grid: every combination"),
                  ("random", "Random: draws from the ranges")]
MC_METHODS = [("returns", "Block bootstrap of the run's returns"),
              ("trades", "Bootstrap of its closed trades' P&L")]


class _ParameterGridMixin:
    """One group of fields per engine parameter of the strategy type ``kind``."""

    def add_grid_fields(self, kind: str, params: dict[str, Any] | None) -> None:
        info = strategy_type(kind) or {"params": []}
        params = params or {}
        self.grid: list[dict[str, Any]] = []
        for spec in info["params"]:
            name = spec["name"]
            if kind == StrategyKind.RULES and name == "program":
                continue
            label = name.replace("_", " ").capitalize()
            current = params.get(name, spec["default"])
            entry = {"name": name, "label": label, "help": spec.get("help") or "",
                     "current": current, "type": spec["type"]}
            if spec.get("choices") or spec["type"] == "bool":
                choices = ([(str(c), str(c)) for c in spec["choices"]] if spec.get("choices")
                           else [("true", "true"), ("false", "false")])
                self.fields[f"p_{name}_values"] = forms.MultipleChoiceField(
                    label=f"{label}: values", choices=choices, required=False,
                    widget=forms.CheckboxSelectMultiple,
                    help_text=f"None ticked = the version's value ({current}).")
                entry["fields"] = [f"p_{name}_values"]
            elif spec["type"] in ("int", "float"):
                field = forms.IntegerField if spec["type"] == "int" else forms.DecimalField
                bounds = {"min_value": spec.get("min"), "max_value": spec.get("max")}
                self.fields[f"p_{name}_from"] = field(label=f"{label}: from", required=False,
                                                      **bounds)
                self.fields[f"p_{name}_to"] = field(label=f"{label}: to", required=False,
                                                    **bounds)
                self.fields[f"p_{name}_step"] = field(
                    label=f"{label}: step", required=False,
                    min_value=1 if spec["type"] == "int" else Decimal("0.000001"),
                    help_text="Grid only; default 1." if spec["type"] == "int" else
                    "Grid only.")
                entry["fields"] = [f"p_{name}_from", f"p_{name}_to", f"p_{name}_step"]
            else:
                continue  # free text parameters are not swept
            self.grid.append(entry)

    def grid_groups(self) -> list[dict[str, Any]]:
        return [{**entry, "bound": [self[f] for f in entry["fields"]]} for entry in self.grid]

    def _range_values(self, name: str, kind: str, lo, hi, step, method: str) -> Any:
        if lo is None and hi is None:
            return None
        if lo is None or hi is None:
            self.add_error(f"p_{name}_to" if hi is None else f"p_{name}_from",
                           "Give both ends of the range (or neither).")
            return None
        if hi < lo:
            self.add_error(f"p_{name}_to", "The range ends below where it starts.")
            return None
        cast = int if kind == "int" else float
        if method == "random":
            return {"low": cast(lo), "high": cast(hi)} if hi > lo else [cast(lo)]
        if step is None:
            if kind != "int" and hi != lo:
                self.add_error(f"p_{name}_step", "Give the step of the grid.")
                return None
            step = 1
        count = int((Decimal(hi) - Decimal(lo)) / Decimal(step)) + 1
        if count > MAX_VALUES_PER_PARAMETER:
            self.add_error(f"p_{name}_step",
                           f"That makes {count} values; at most {MAX_VALUES_PER_PARAMETER}.")
            return None
        # Decimal arithmetic: 0.1 steps land on 0.3, not 0.30000000000000004.
        return [cast(Decimal(lo) + i * Decimal(step)) for i in range(count)]

    def space(self) -> dict[str, Any]:
        data, method = self.cleaned_data, self.cleaned_data.get("method") or "grid"
        out: dict[str, Any] = {}
        for entry in self.grid:
            name = entry["name"]
            if len(entry["fields"]) == 1:
                ticked = data.get(f"p_{name}_values") or []
                if ticked:
                    out[name] = [v == "true" for v in ticked] if entry["type"] == "bool" else \
                        [_typed(v, entry["type"]) for v in ticked]
                continue
            values = self._range_values(name, entry["type"], data.get(f"p_{name}_from"),
                                        data.get(f"p_{name}_to"), data.get(f"p_{name}_step"),
                                        method)
            if values is not None:
                out[name] = values
        return out


def _typed(value: str, kind: str) -> Any:
    try:
        return int(value) if kind == "int" else float(value) if kind == "float" else value
    except ValueError:
        return value


class _SearchForm(_ParameterGridMixin, forms.Form):
    dataset = forms.ModelChoiceField(queryset=None, empty_label=None)
    method = forms.ChoiceField(label="Search", choices=SEARCH_METHODS, initial="grid")
    n_samples = forms.IntegerField(label="Random draws", min_value=1, initial=20, required=False,
                                   help_text="Parameter sets drawn by a random search.")
    objective = forms.ChoiceField(label="Objective", choices=OBJECTIVES, initial="sharpe",
                                  help_text="The metric that ranks the parameter sets.")
    maximize = forms.TypedChoiceField(
        label="Best is", choices=[("true", "the highest value"), ("false", "the lowest value")],
        coerce=lambda v: v == "true", initial="true")
    seed = forms.IntegerField(min_value=0, initial=0, required=False,
                              help_text="Random search draws the same sets for the same seed.")

    def __init__(self, *args: Any, version, datasets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = version
        self.fields["dataset"].queryset = datasets
        self.add_grid_fields(version.strategy.kind, version.params)

    def spec(self) -> dict[str, Any]:
        data = self.cleaned_data
        spec: dict[str, Any] = {"space": self.space(), "method": data["method"],
                                "objective": data["objective"], "maximize": data["maximize"],
                                "seed": data.get("seed") or 0}
        if data["method"] == "random":
            spec["n_samples"] = data.get("n_samples") or 20
        return spec


class SweepForm(_SearchForm):
    pass


class WalkForwardForm(_SearchForm):
    n_windows = forms.IntegerField(label="Windows", min_value=1, initial=5,
                                   help_text="Out-of-sample test periods, back to back.")
    train_bars = forms.IntegerField(label="Training bars", min_value=2, required=False,
                                    help_text="Empty = three test windows' worth.")
    test_bars = forms.IntegerField(label="Test bars", min_value=2, required=False,
                                   help_text="Empty = the bars divided by (windows + 3).")
    anchored = forms.BooleanField(label="Anchored: every window trains from the first bar",
                                  required=False)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        data = self.cleaned_data
        spec.update({"n_windows": data["n_windows"], "anchored": bool(data.get("anchored"))})
        for name in ("train_bars", "test_bars"):
            if data.get(name):
                spec[name] = data[name]
        return spec


class MonteCarloForm(forms.Form):
    simulation = forms.ModelChoiceField(queryset=None, empty_label=None,
                                        help_text="A finished run whose equity is resampled.")
    method = forms.ChoiceField(choices=MC_METHODS, initial="returns")
    n_sims = forms.IntegerField(label="Paths", min_value=1, initial=1000,
                                help_text="Simulated equity paths.")
    n_chunks = forms.IntegerField(label="Batches", min_value=1, initial=8,
                                  help_text="Paths are computed in this many parallel batches.")
    block = forms.IntegerField(label="Block length", min_value=1, required=False,
                               help_text="Bars per bootstrap block; empty = about n^(1/3).")
    seed = forms.IntegerField(initial=0, required=False,
                              help_text="The same seed gives the same paths.")

    def __init__(self, *args: Any, simulations, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["simulation"].queryset = simulations
        self.fields["simulation"].label_from_instance = (
            lambda s: f"#{s.pk} {s.strategy_version.strategy.name} v{s.strategy_version.number}"
                      f" on {s.dataset.name}")

    def spec(self) -> dict[str, Any]:
        data = self.cleaned_data
        spec = {"method": data["method"], "n_sims": data["n_sims"],
                "n_chunks": data["n_chunks"], "seed": data.get("seed") or 0}
        if data.get("block"):
            spec["block"] = data["block"]
        return spec


def add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """Puts the service's refusal next to the field it names: ``spec.n_chunks`` → ``n_chunks``,
    ``spec.space.fast`` → the first field of parameter ``fast``; the rest above the form."""
    placed = False
    for name, messages in (getattr(error, "fields", None) or {}).items():
        key = name.removeprefix("spec.")
        field = key
        if key.startswith("space."):
            param = key.split(".", 1)[1]
            field = next((f for f in (f"p_{param}_from", f"p_{param}_values")
                          if f in form.fields), "")
        if field in form.fields:
            for message in messages if isinstance(messages, list | tuple) else [messages]:
                form.add_error(field, str(message))
            placed = True
    if not placed:
        form.add_error(None, getattr(error, "message", str(error)))


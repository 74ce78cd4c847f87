"""The `rules` strategy: runs a tenant's rules-language program (see trading.engine.rules)."""

from __future__ import annotations

from typing import Any

from trading.engine.rules import RuleSyntaxError, compile_rules
from trading.engine.strategies.registry import register
from trading.engine.types import BarSet, Param, ParamError, Signals, VectorStrategy

EXAMPLE_PROGRAM = (
    "entry: crossover(sma(close, 10), sma(close, 50))\n"
    "exit: rsi(close, 14) > 70 or crossunder(sma(close, 10), sma(close, 50))\n"
)


@register
class RulesStrategy(VectorStrategy):
    name = "rules"
    description = "Entry/exit rules written in the platform's safe rules language."
    params = (
        Param("program", str, EXAMPLE_PROGRAM,
              help="Lines 'entry: ...', 'exit: ...', optionally 'short_entry:'/'short_exit:'."),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        try:
            self.program = compile_rules(self.values["program"])
        except RuleSyntaxError as err:
            raise ParamError(self.name, "program", str(err)) from err

    def signals(self, bars: BarSet) -> Signals:
        return self.program.evaluate(bars)

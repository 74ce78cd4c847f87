"""The rules language: what programs mean, and how bad programs are refused."""

from __future__ import annotations

import numpy as np
import pytest

from trading.engine import indicators as ind
from trading.engine.rules import (
    MAX_DEPTH,
    MAX_WINDOW,
    RuleSyntaxError,
    compile_rules,
    validate_rules,
)
from trading.engine.types import BarSet


def _bars(close) -> BarSet:
    c = np.asarray(close, dtype=float).reshape(-1, 1)
    n = c.shape[0]
    return BarSet(np.arange(n, dtype=np.int64) * 60_000_000_000, ["X"], c, c + 1, c - 1, c,
                  np.full_like(c, 100.0))


def test_crossover_program_matches_the_indicator_library():
    rng = np.random.default_rng(0)
    bars = _bars(100 + np.cumsum(rng.normal(0, 1, 300)))
    program = compile_rules(
        "entry: crossover(sma(close, 10), sma(close, 50))\n"
        "exit: rsi(close, 14) > 70 or close < sma(close, 200)\n"
    )
    sig = program.evaluate(bars)
    c = bars.close
    expected_entry = ind.crossover(ind.sma(c, 10), ind.sma(c, 50))
    with np.errstate(invalid="ignore"):
        expected_exit = (ind.rsi(c, 14) > 70) | (c < ind.sma(c, 200))
    np.testing.assert_array_equal(sig.entries, expected_entry)
    np.testing.assert_array_equal(sig.exits, expected_exit)
    assert sig.entries.any() and sig.exits.any()
    assert sig.short_entries is None
    assert program.max_lookback == 200


def test_arithmetic_precedence_and_comparisons_on_a_tiny_series():
    bars = _bars([1, 2, 3, 4, 5])
    # 1 + 2 * close > 7  <=>  close > 3
    sig = compile_rules("entry: 1 + 2 * close > 7\nexit: not (close >= 2) or close == 5").evaluate(
        bars)
    assert sig.entries[:, 0].tolist() == [False, False, False, True, True]
    assert sig.exits[:, 0].tolist() == [True, False, False, False, True]


def test_lag_looks_back_and_the_warm_up_satisfies_no_comparison():
    bars = _bars([1, 2, 3, 2, 5])
    sig = compile_rules("entry: close > lag(close, 1)\nexit: close != lag(close, 2)").evaluate(bars)
    assert sig.entries[:, 0].tolist() == [False, True, True, False, True]
    # bar 0 and 1 have no value two bars ago, so "!=" is False there too.
    assert sig.exits[:, 0].tolist() == [False, False, True, False, True]


def test_short_rules_and_functions_min_max_abs_highest_lowest_atr():
    bars = _bars([5, 4, 3, 4, 6])
    sig = compile_rules(
        "short_entry: close <= lowest(close, 3)\n"
        "short_exit: close >= highest(close, 3) and atr(2) > 0\n"
        "entry: abs(close - 4) >= max(1, min(2, 3))\n"
    ).evaluate(bars)
    # lowest(3) is NaN for bars 0-1, then 3, 3, 3 -> bar 2 close 3 <= 3
    assert sig.short_entries[:, 0].tolist() == [False, False, True, False, False]
    # highest(3) = 5, 4, 6 from bar 2 on (closes 3, 4, 6); atr(2) defined from bar 1
    assert sig.short_exits[:, 0].tolist() == [False, False, False, True, True]
    # max(1, min(2, 3)) = 2; |close - 4| = 1, 0, 1, 0, 2 -> only the last bar
    assert sig.entries[:, 0].tolist() == [False, False, False, False, True]


def test_division_by_zero_is_no_value_rather_than_infinity():
    bars = _bars([0, 1, 2])
    sig = compile_rules("entry: 1 / (close - 1) > 0").evaluate(bars)
    assert sig.entries[:, 0].tolist() == [False, False, True]


@pytest.mark.parametrize(
    ("program", "line", "column", "token", "message"),
    [
        ("entry: close > 1\nexit: exec(close)", 2, 7, "exec", "unknown function 'exec'"),
        ("entry: __import__('os')", 1, 8, "__import__", "unknown function '__import__'"),
        ("entry: close.real > 1", 1, 13, ".", "unexpected character '.'"),
        ("entry: sma(close, 0) > 1", 1, 19, "0", "window must be a whole number"),
        ("entry: sma(close, 10.5) > 1", 1, 19, "10.5", "window must be a whole number"),
        (f"entry: sma(close, {MAX_WINDOW + 1}) > 1", 1, 19, str(MAX_WINDOW + 1),
         "window must be a whole number"),
        ("entry: lag(close, -1) > 1", 1, 19, "-", "lag must be a whole number"),
        ("entry: sma(close, n) > 1", 1, 19, "n", "unknown name 'n'"),
        ("entry: close + 1", 1, 8, "close", "the 'entry' rule must be boolean"),
        ("entry: close > 1 and 3", 1, 22, "3", "right side of 'and' must be boolean"),
        ("entry: 1 < close < 3", 1, 18, "<", "comparisons cannot be chained"),
        ("entry: sma(close) > 1", 1, 17, ")", "sma() takes 2 argument(s), got 1"),
        ("entry: (close > 1", 1, 18, "", "expected ')', found end of line"),
        ("buy: close > 1", 1, 1, "buy", "a line must start with one of"),
        ("entry: close > 1\nentry: close < 1", 2, 1, "entry", "already defined on line 1"),
        ("exit: close > 1", 1, 1, "", "needs an 'entry' or 'short_entry' rule"),
        ("entry: open >", 1, 14, "", "expression is incomplete"),
    ],
)
def test_bad_programs_are_refused_with_line_column_and_token(program, line, column, token,
                                                             message):
    with pytest.raises(RuleSyntaxError) as info:
        compile_rules(program)
    err = info.value
    assert (err.line, err.column, err.token) == (line, column, token)
    assert message in err.message
    assert str(err).startswith(f"line {line}, column {column}: ")


def test_the_error_message_reads_like_the_documentation():
    with pytest.raises(RuleSyntaxError, match=r"^line 2, column 7: unknown function 'exec'$"):
        compile_rules("entry: close > 1\nexit: exec(close)")


def test_validate_reports_every_bad_line_and_nothing_for_a_good_program():
    errors = validate_rules("entry: foo(close)\nexit: close >\n# comment only\nshort_entry: 1 > 0")
    assert [(e.line, e.column) for e in errors] == [(1, 8), (2, 14)]
    assert errors[0].as_dict()["token"] == "foo"
    assert validate_rules("entry: close > sma(close, 20)  # trend\nexit: close < open") == []


def test_nesting_depth_and_program_size_are_bounded():
    deep = "entry: " + "(" * (MAX_DEPTH + 5) + "close > 1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(RuleSyntaxError, match="nested too deeply"):
        compile_rules(deep)
    big = "entry: " + " + ".join(["close"] * 400) + " > 1"
    with pytest.raises(RuleSyntaxError, match="too large|longer than"):
        compile_rules(big)
    with pytest.raises(RuleSyntaxError, match="longer than"):
        compile_rules("entry: close > 1 " + "#" * 5000)


def test_programs_are_prefix_stable_so_they_do_not_look_ahead():
    rng = np.random.default_rng(5)
    bars = _bars(100 + np.cumsum(rng.normal(0, 1, 400)))
    program = compile_rules(
        "entry: crossover(ema(close, 5), sma(close, 30)) and zscore(close, 20) < 1\n"
        "exit: crossunder(close, lowest(low, 10) + atr(14)) or lag(close > open, 3)\n"
    )
    full = program.evaluate(bars)
    for cut in (50, 123, 399):
        part = program.evaluate(_bars(bars.close[:cut, 0]))
        np.testing.assert_array_equal(part.entries, full.entries[:cut])
        np.testing.assert_array_equal(part.exits, full.exits[:cut])


def test_arbitrary_text_is_either_a_program_or_a_rule_syntax_error():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list("entryxiscloe_():,.+-*/<>=!# \n0123456789'\"[]{}\\ab"))
    words = st.sampled_from(["entry:", "exit:", "close", "sma(", "rsi(", ",", ")", "(", " and ",
                             " or ", "not ", ">", "<=", "1", "20", "lag(", "__class__", "exec(",
                             "\n", "-", "*", "/"])
    text = st.one_of(st.text(alphabet, max_size=60), st.lists(words, max_size=25).map("".join))
    bars = _bars(np.linspace(1, 2, 30))

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text)
    def check(source):
        try:
            program = compile_rules(source)
        except RuleSyntaxError as err:
            assert err.line >= 1 and err.column >= 1
            return
        sig = program.evaluate(bars)
        assert sig.entries.shape == (30, 1) and sig.entries.dtype == bool

    check()

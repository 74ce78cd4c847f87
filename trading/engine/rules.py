"""The rules language: trading rules that tenants write, parsed from a whitelist and evaluated on
numpy arrays.

A program is a few lines ``<rule>: <expression>`` where the rule is ``entry``, ``exit``,
``short_entry`` or ``short_exit``, for example::

    # trend following with an RSI exit
    entry: crossover(sma(close, 10), sma(close, 50))
    exit: rsi(close, 14) > 70 or close < sma(close, 200)

Expressions use the series ``open high low close volume``, numeric literals, ``+ - * /``,
comparisons ``< <= > >= == !=``, ``and or not``, parentheses and the functions listed in
``FUNCTIONS``. Text is tokenised and parsed by a small recursive-descent parser into a typed tree;
nothing is ever handed to Python's eval/exec/compile, and only whitelisted names exist. Program
size, nesting depth, node count and window lengths are bounded so a tenant cannot make a worker
spin. Every error carries its line, column and offending token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading.engine import indicators as ind
from trading.engine.types import BarSet, Signals

MAX_PROGRAM_CHARS = 4000
MAX_LINES = 40
MAX_NODES = 300
MAX_DEPTH = 24
MAX_WINDOW = 2000
MAX_LITERAL = 1e12

RULE_NAMES = ("entry", "exit", "short_entry", "short_exit")
SERIES = ("open", "high", "low", "close", "volume")
KEYWORDS = ("and", "or", "not")

NUM, SER, BOOL = "number", "series", "boolean"


class RuleSyntaxError(ValueError):
    """A rules program is invalid; `line`/`column` are 1-based, `token` is the offending text."""

    def __init__(self, message: str, line: int, column: int, token: str = "") -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message, self.line, self.column, self.token = message, line, column, token

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "token": self.token,
                "message": self.message}


# --- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    line: int
    column: int


_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|[()+\-*/<>,:])"
)


def tokenize_line(text: str, line: int) -> list[Token]:
    """Tokens of one line (comments after '#' dropped), ending with an "end" token."""
    text = text.split("#", 1)[0].rstrip()
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            # Reported by the parser when it reaches it, so errors come in reading order.
            tokens.append(Token("bad", text[pos], line, pos + 1))
            pos += 1
            continue
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), line, pos + 1))
        pos = m.end()
    tokens.append(Token("end", "", line, len(text) + 1))
    return tokens


# --- the typed tree ----------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    op: str  # "num", "series", a function name, an operator, "neg", "not", "and", "or"
    type: str  # NUM, SER or BOOL
    args: tuple[Node, ...] = ()
    value: Any = None  # the literal, the series name, or a window length

    def key(self) -> str:
        """A canonical text for caching identical sub-expressions."""
        inner = ",".join(a.key() for a in self.args)
        return f"{self.op}[{self.value}]({inner})"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A whitelisted function: argument kinds ("x" numeric, "b" boolean-or-numeric, "w" window,
    "n" positive lag) and the result type."""

    args: tuple[str, ...]
    result: str
    help: str


FUNCTIONS: dict[str, FunctionSpec] = {
    "sma": FunctionSpec(("x", "w"), SER, "simple moving average"),
    "ema": FunctionSpec(("x", "w"), SER, "exponential moving average"),
    "rsi": FunctionSpec(("x", "w"), SER, "Wilder's RSI, 0..100"),
    "zscore": FunctionSpec(("x", "w"), SER, "(x - sma) / std over the window"),
    "highest": FunctionSpec(("x", "w"), SER, "highest value of the window (incl. this bar)"),
    "lowest": FunctionSpec(("x", "w"), SER, "lowest value of the window (incl. this bar)"),
    "stdev": FunctionSpec(("x", "w"), SER, "population standard deviation over the window"),
    "atr": FunctionSpec(("w",), SER, "average true range of the bars"),
    "crossover": FunctionSpec(("x", "x"), BOOL, "a crosses above b on this bar"),
    "crossunder": FunctionSpec(("x", "x"), BOOL, "a crosses below b on this bar"),
    "lag": FunctionSpec(("b", "n"), "same", "value n bars ago (n >= 1)"),
    "shift": FunctionSpec(("b", "n"), "same", "alias of lag"),
    "abs": FunctionSpec(("x",), SER, "absolute value"),
    "min": FunctionSpec(("x", "x"), SER, "element-wise minimum"),
    "max": FunctionSpec(("x", "x"), SER, "element-wise maximum"),
}


# --- the parser ----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over one rule's expression, with type checking and limits.

    expr := or ; or := and ("or" and)* ; and := not ("and" not)* ; not := "not" not | cmp
    cmp := sum (("<"|"<="|">"|">="|"=="|"!=") sum)? ; sum := prod (("+"|"-") prod)*
    prod := unary (("*"|"/") unary)* ; unary := "-" unary | atom
    atom := NUMBER | SERIES | NAME "(" args ")" | "(" expr ")"
    """

    def __init__(self, tokens: list[Token], budget: list[int]) -> None:
        self.tokens, self.i, self.depth, self.budget = tokens, 0, 0, budget

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> RuleSyntaxError:
        t = tok or self.tok
        if t.kind == "bad":
            message = f"unexpected character {t.text!r}"
        return RuleSyntaxError(message, t.line, t.column, t.text)

    def advance(self) -> Token:
        t = self.tok
        if t.kind != "end":
            self.i += 1
        return t

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind == "end":
            found = repr(self.tok.text) if self.tok.kind != "end" else "end of line"
            raise self.error(f"expected {text!r}, found {found}")
        return self.advance()

    def node(self, tok: Token, op: str, typ: str, args: tuple[Node, ...] = (), value=None) -> Node:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise self.error(f"program too large (more than {MAX_NODES} terms)", tok)
        return Node(op, typ, args, value)

    def nested(self, fn: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        try:
            return fn()
        finally:
            self.depth -= 1

    def need(self, node: Node, types: tuple[str, ...], tok: Token, what: str) -> None:
        if node.type not in types:
            wanted = " or ".join(types)
            raise self.error(f"{what} must be {wanted}, got a {node.type}", tok)

    def parse_rule(self) -> Node:
        tree = self.parse_or()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return tree

    def parse_or(self) -> Node:
        start = self.tok
        left = self.parse_and()
        while self.tok.kind == "name" and self.tok.text == "or":
            op = self.advance()
            rstart = self.tok
            right = self.parse_and()
            self.need(left, (BOOL,), start, "the left side of 'or'")
            self.need(right, (BOOL,), rstart, "the right side of 'or'")
            left = self.node(op, "or", BOOL, (left, right))
        return left

    def parse_and(self) -> Node:
        start = self.tok
        left = self.parse_not()
        while self.tok.kind == "name" and self.tok.text == "and":
            op = self.advance()
            rstart = self.tok
            right = self.parse_not()
            self.need(left, (BOOL,), start, "the left side of 'and'")
            self.need(right, (BOOL,), rstart, "the right side of 'and'")
            left = self.node(op, "and", BOOL, (left, right))
        return left

    def parse_not(self) -> Node:
        if self.tok.kind == "name" and self.tok.text == "not":
            op = self.advance()
            rstart = self.tok
            operand = self.nested(self.parse_not)
            self.need(operand, (BOOL,), rstart, "the operand of 'not'")
            return self.node(op, "not", BOOL, (operand,))
        return self.parse_cmp()

    def parse_cmp(self) -> Node:
        start = self.tok
        left = self.parse_sum()
        if self.tok.text in ("<", "<=", ">", ">=", "==", "!=") and self.tok.kind == "op":
            op = self.advance()
            rstart = self.tok
            right = self.parse_sum()
            self.need(left, (NUM, SER), start, f"the left side of {op.text!r}")
            self.need(right, (NUM, SER), rstart, f"the right side of {op.text!r}")
            if self.tok.text in ("<", "<=", ">", ">=", "==", "!="):
                raise self.error("comparisons cannot be chained; use 'and'")
            return self.node(op, op.text, BOOL, (left, right))
        return left

    def _arith(self, left: Node, op: Token, start: Token, rstart: Token, right: Node) -> Node:
        self.need(left, (NUM, SER), start, f"the left side of {op.text!r}")
        self.need(right, (NUM, SER), rstart, f"the right side of {op.text!r}")
        typ = NUM if left.type == NUM and right.type == NUM else SER
        return self.node(op, op.text, typ, (left, right))

    def parse_sum(self) -> Node:
        start = self.tok
        left = self.parse_prod()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.advance()
            left = self._arith(left, op, start, self.tok, self.parse_prod())
        return left

    def parse_prod(self) -> Node:
        start = self.tok
        left = self.parse_unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.advance()
            left = self._arith(left, op, start, self.tok, self.parse_unary())
        return left

    def parse_unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            op = self.advance()
            rstart = self.tok
            operand = self.nested(self.parse_unary)
            self.need(operand, (NUM, SER), rstart, "the operand of '-'")
            return self.node(op, "neg", operand.type, (operand,))
        return self.parse_atom()

    def parse_atom(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            value = float(tok.text)
            if abs(value) > MAX_LITERAL:
                raise self.error(f"number too large (limit {MAX_LITERAL:g})", tok)
            return self.node(tok, "num", NUM, value=value)
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            inner = self.nested(self.parse_or)
            self.expect(")")
            return inner
        if tok.kind == "name":
            self.advance()
            name = tok.text
            if self.tok.text == "(" and self.tok.kind == "op":
                return self.parse_call(tok)
            if name in SERIES:
                return self.node(tok, "series", SER, value=name)
            if name in FUNCTIONS:
                raise self.error(f"function {name!r} needs arguments in parentheses", tok)
            if name in KEYWORDS:
                raise self.error(f"unexpected keyword {name!r}", tok)
            raise self.error(
                f"unknown name {name!r} (series are {', '.join(SERIES)})", tok
            )
        if tok.kind == "end":
            raise self.error("expression is incomplete")
        raise self.error(f"unexpected {tok.text!r}")

    def parse_call(self, name_tok: Token) -> Node:
        name = name_tok.text
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise self.error(f"unknown function {name!r}", name_tok)
        self.expect("(")
        raw: list[tuple[Token, Node]] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            while True:
                arg_tok = self.tok
                raw.append((arg_tok, self.nested(self.parse_or)))
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.advance()
                    continue
                break
        close = self.expect(")")
        if len(raw) != len(spec.args):
            raise self.error(
                f"{name}() takes {len(spec.args)} argument(s), got {len(raw)}", close
            )
        args: list[Node] = []
        window: int | None = None
        for kind, (arg_tok, arg) in zip(spec.args, raw, strict=True):
            if kind in ("w", "n"):
                # Windows are literals, so their cost is known (and bounded) before running.
                if not (arg.op == "num" and float(arg.value).is_integer()
                        and 1 <= arg.value <= MAX_WINDOW):
                    label = "window" if kind == "w" else "lag"
                    raise self.error(
                        f"{name}(): {label} must be a whole number from 1 to {MAX_WINDOW}",
                        arg_tok,
                    )
                window = int(arg.value)
                if name in ("rsi", "zscore") and window < 2:
                    raise self.error(f"{name}(): window must be at least 2", arg_tok)
            elif kind == "x":
                self.need(arg, (NUM, SER), arg_tok, f"argument of {name}()")
                args.append(arg)
            else:  # "b": anything
                args.append(arg)
        result = args[0].type if spec.result == "same" else spec.result
        if result == NUM:
            result = SER
        return self.node(name_tok, name, result, tuple(args), value=window)


# --- programs ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RuleProgram:
    """A compiled rules program: evaluate it on bars to get Signals."""

    source: str
    rules: dict[str, Node] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    @property
    def max_lookback(self) -> int:
        """The longest window used anywhere (bars of warm-up the program needs)."""

        def walk(n: Node) -> int:
            own = int(n.value) if n.op in FUNCTIONS and n.value is not None else 0
            return max([own, *(walk(a) for a in n.args)])

        return max((walk(n) for n in self.rules.values()), default=0)

    def evaluate(self, bars: BarSet) -> Signals:
        cache: dict[str, np.ndarray] = {}
        shape = bars.close.shape
        out: dict[str, np.ndarray] = {}
        with np.errstate(all="ignore"):
            for rule, tree in self.rules.items():
                value = _evaluate(tree, bars, cache)
                out[rule] = np.broadcast_to(np.asarray(value, dtype=bool), shape).copy()
        false = np.zeros(shape, dtype=bool)
        return Signals(
            entries=out.get("entry", false),
            exits=out.get("exit", false.copy()),
            short_entries=out.get("short_entry"),
            short_exits=out.get("short_exit"),
            info={"rules": self.fingerprint},
        )


def _bool(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr
    return np.nan_to_num(arr, nan=0.0) != 0


def _evaluate(n: Node, bars: BarSet, cache: dict[str, np.ndarray]) -> Any:
    key = n.key()
    if key in cache:
        return cache[key]
    op = n.op
    a = [_evaluate(x, bars, cache) for x in n.args]
    res: Any
    if op == "num":
        res = n.value
    elif op == "series":
        res = np.asarray(getattr(bars, n.value), dtype=np.float64)
    elif op == "neg":
        res = -a[0]
    elif op in ("+", "-", "*", "/"):
        res = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op](a[0], a[1])
        if np.ndim(res):
            res = np.where(np.isfinite(res), res, np.nan)  # x / 0 is "no value", not infinity
    elif op in ("<", "<=", ">", ">=", "==", "!="):
        cmp = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}[op]
        res = cmp(a[0], a[1])
        if op == "!=":  # NaN != x is True in IEEE; a missing value satisfies no comparison
            res = res & ~np.isnan(np.asarray(a[0], dtype=float)) & ~np.isnan(
                np.asarray(a[1], dtype=float))
    elif op == "and":
        res = _bool(a[0]) & _bool(a[1])
    elif op == "or":
        res = _bool(a[0]) | _bool(a[1])
    elif op == "not":
        res = ~_bool(a[0])
    else:
        res = _call(op, n, a, bars)
    cache[key] = res
    return res


def _series(x: Any, bars: BarSet) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), bars.close.shape)


def _call(name: str, n: Node, a: list[Any], bars: BarSet) -> Any:
    w = n.value
    if name == "sma":
        return ind.sma(_series(a[0], bars), w)
    if name == "ema":
        return ind.ema(_series(a[0], bars), w)
    if name == "rsi":
        return ind.rsi(_series(a[0], bars), w)
    if name == "zscore":
        return ind.zscore(_series(a[0], bars), w)
    if name == "highest":
        return ind.highest(_series(a[0], bars), w)
    if name == "lowest":
        return ind.lowest(_series(a[0], bars), w)
    if name == "stdev":
        return ind.rolling_std(_series(a[0], bars), w)
    if name == "atr":
        return ind.atr(bars.high, bars.low, bars.close, w)
    if name == "crossover":
        return ind.crossover(_series(a[0], bars), _series(a[1], bars))
    if name == "crossunder":
        return ind.crossunder(_series(a[0], bars), _series(a[1], bars))
    if name in ("lag", "shift"):
        if n.args[0].type == BOOL:
            return ind.shift(_bool(a[0]).astype(np.float64), w) == 1.0
        return ind.shift(_series(a[0], bars), w)
    if name == "abs":
        return np.abs(_series(a[0], bars))
    if name == "min":
        return np.minimum(_series(a[0], bars), _series(a[1], bars))
    if name == "max":
        return np.maximum(_series(a[0], bars), _series(a[1], bars))
    raise AssertionError(f"unhandled function {name}")  # the parser admits only FUNCTIONS


def _parse(text: str, *, collect: bool) -> tuple[RuleProgram, list[RuleSyntaxError]]:
    errors: list[RuleSyntaxError] = []
    program = RuleProgram(source=text)
    if not isinstance(text, str):
        raise TypeError("a rules program is text")
    if len(text) > MAX_PROGRAM_CHARS:
        too_long = RuleSyntaxError(f"program longer than {MAX_PROGRAM_CHARS} characters", 1, 1)
        if not collect:
            raise too_long
        return program, [too_long]
    lines = text.splitlines()
    budget = [MAX_NODES]
    seen: dict[str, int] = {}
    content_lines = 0
    for lineno, line in enumerate(lines, start=1):
        try:
            tokens = tokenize_line(line, lineno)
            if tokens[0].kind == "end":
                continue
            content_lines += 1
            if content_lines > MAX_LINES:
                raise RuleSyntaxError(f"more than {MAX_LINES} rules", lineno, 1)
            head = tokens[0]
            if head.kind != "name" or head.text not in RULE_NAMES:
                raise RuleSyntaxError(
                    f"a line must start with one of {', '.join(RULE_NAMES)} and ':'",
                    lineno, head.column, head.text,
                )
            if head.text in seen:
                raise RuleSyntaxError(
                    f"rule {head.text!r} already defined on line {seen[head.text]}",
                    lineno, head.column, head.text,
                )
            parser = _Parser(tokens, budget)
            parser.advance()
            parser.expect(":")
            start = parser.tok
            tree = parser.parse_rule()
            parser.need(tree, (BOOL,), start, f"the {head.text!r} rule")
            seen[head.text] = lineno
            program.rules[head.text] = tree
        except RuleSyntaxError as err:
            if not collect:
                raise
            errors.append(err)
    if not errors and "entry" not in program.rules and "short_entry" not in program.rules:
        missing = RuleSyntaxError("the program needs an 'entry' or 'short_entry' rule",
                                  max(len(lines), 1), 1)
        if not collect:
            raise missing
        errors.append(missing)
    return program, errors


def compile_rules(text: str) -> RuleProgram:
    """Parse and type-check a rules program; raises RuleSyntaxError on the first error."""
    program, _ = _parse(text, collect=False)
    return program


def validate_rules(text: str) -> list[RuleSyntaxError]:
    """Every error of a program (at most one per line), for validate-on-save; [] when valid."""
    _, errors = _parse(text, collect=True)
    return errors

"""A small, safe evaluator for the expr-lang subset that job-classification rules use (contract §9).

Upstream compiles rule expressions with `github.com/expr-lang/expr`; a site's rule files must mean the
same here. This module never calls Python's ``eval``: source text is tokenized, parsed by a Pratt parser
with expr-lang's operator precedences into an AST, and the AST is compiled into nested closures (one
Python call per node, so evaluating a rule costs a few microseconds — see
``benchmarks/bench_taggers.py``).

Supported: literals (integers with ``_`` separators and ``0x``, floats, single/double/back-quoted
strings, ``true``/``false``/``nil``, array literals ``[a, b]``), names, member access ``a.b``,
``a?.b``, ``a["b"]``, ``a[0]``, unary ``!``/``not``/``-``/``+``, ``**``/``^``, ``*``/``/``/``%``,
``+``/``-``, comparisons, ``in``/``not in``, ``contains``/``startsWith``/``endsWith``,
``&&``/``and``, ``||``/``or``, ``??``, ``cond ? a : b``, parentheses and the functions ``abs``,
``min``, ``max``, ``len``, ``float``, ``int``, ``round``, ``ceil``, ``floor``.

Runtime semantics follow expr-lang (and Go): ``/`` always yields a float and follows IEEE 754 for a
zero divisor (``x/0`` is ``+Inf``, ``0/0`` NaN, no error); ``%`` needs integers; ``&&``/``||``/``!``
need booleans; an unknown name is ``nil`` (upstream compiles without a typed environment), and
fetching a member of ``nil`` is an error; ints and floats compare and add as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]


class ExprSyntaxError(ValueError):
    """The expression does not parse; ``pos`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} (column {pos + 1})")
        self.message = message
        self.pos = pos


class ExprEvalError(ValueError):
    """The expression failed on this environment (wrong operand types, member of nil, …)."""


# ----------------------------------------------------------------------------------------- tokens


@dataclass(slots=True)
class Token:
    kind: str  # "num", "str", "name", "op", "eof"
    value: Any
    pos: int


_OPERATORS = (
    "?.",
    "??",
    "**",
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "!",
    "?",
    ":",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a"}
_ESCAPES |= {"b": "\b", "f": "\f", "v": "\v"}


def tokenize(src: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
            continue
        start = i
        if c.isdigit():
            i = _number(src, i, out)
            continue
        if c.isalpha() or c in "_$":
            while i < n and (src[i].isalnum() or src[i] in "_$"):
                i += 1
            out.append(Token("name", src[start:i], start))
            continue
        if c in "\"'`":
            i = _string(src, i, out)
            continue
        for op in _OPERATORS:
            if src.startswith(op, i):
                out.append(Token("op", op, start))
                i += len(op)
                break
        else:
            raise ExprSyntaxError(f"unexpected character {c!r}", i)
    out.append(Token("eof", None, n))
    return out


def _number(src: str, i: int, out: list[Token]) -> int:
    start, n = i, len(src)
    if src.startswith(("0x", "0X"), i):
        i += 2
        while i < n and (src[i] in "0123456789abcdefABCDEF_"):
            i += 1
        text = src[start:i].replace("_", "")
        try:
            out.append(Token("num", int(text, 16), start))
        except ValueError:
            raise ExprSyntaxError(f"invalid number {src[start:i]!r}", start) from None
        return i
    is_float = False
    while i < n and (src[i].isdigit() or src[i] == "_"):
        i += 1
    if i < n and src[i] == "." and i + 1 < n and src[i + 1].isdigit():
        is_float = True
        i += 1
        while i < n and (src[i].isdigit() or src[i] == "_"):
            i += 1
    if i < n and src[i] in "eE":
        j = i + 1
        if j < n and src[j] in "+-":
            j += 1
        if j < n and src[j].isdigit():
            is_float = True
            i = j
            while i < n and src[i].isdigit():
                i += 1
    text = src[start:i].replace("_", "")
    if i < n and (src[i].isalpha() or src[i] == "_"):
        raise ExprSyntaxError(f"invalid number {src[start : i + 1]!r}", start)
    out.append(Token("num", float(text) if is_float else int(text), start))
    return i


def _string(src: str, i: int, out: list[Token]) -> int:
    quote, start, n = src[i], i, len(src)
    i += 1
    buf: list[str] = []
    while i < n and src[i] != quote:
        c = src[i]
        if c == "\\" and quote != "`":
            if i + 1 >= n:
                break
            e = src[i + 1]
            if e in _ESCAPES:
                buf.append(_ESCAPES[e])
                i += 2
            elif e in "uU" or e == "x":
                width = {"x": 2, "u": 4, "U": 8}[e]
                digits = src[i + 2 : i + 2 + width]
                try:
                    buf.append(chr(int(digits, 16)))
                except ValueError:
                    raise ExprSyntaxError("invalid escape sequence", i) from None
                i += 2 + width
            else:
                raise ExprSyntaxError(f"invalid escape sequence \\{e}", i)
            continue
        if c == "\n" and quote != "`":
            break
        buf.append(c)
        i += 1
    if i >= n or src[i] != quote:
        raise ExprSyntaxError("unterminated string literal", start)
    out.append(Token("str", "".join(buf), start))
    return i + 1


# ------------------------------------------------------------------------------------------- AST


@dataclass(slots=True)
class Node:
    op: str  # "lit", "name", "member", "index", "unary", "binary", "cond", "call", "array"
    pos: int
    value: Any = None
    args: tuple[Node, ...] = ()
    optional: bool = False


# expr-lang's precedences (parser/operator/operator.go); all left-associative except ** and ^.
BINARY: dict[str, int] = {
    "or": 10,
    "||": 10,
    "and": 15,
    "&&": 15,
    "==": 20,
    "!=": 20,
    "<": 20,
    ">": 20,
    ">=": 20,
    "<=": 20,
    "in": 20,
    "not in": 20,
    "contains": 20,
    "startsWith": 20,
    "endsWith": 20,
    "+": 30,
    "-": 30,
    "*": 60,
    "/": 60,
    "%": 60,
    "**": 100,
    "^": 100,
    "??": 500,
}
RIGHT_ASSOC = {"**", "^"}
UNARY: dict[str, int] = {"not": 50, "!": 50, "-": 90, "+": 90}
_ALIASES = {"and": "&&", "or": "||", "not": "!", "^": "**"}
_KEYWORDS = {"true": True, "false": False, "nil": None}


class Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, op: str) -> Token:
        t = self.tok
        if t.kind != "op" or t.value != op:
            raise ExprSyntaxError(f"expected {op!r}, found {_describe(t)}", t.pos)
        return self.next()

    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise ExprSyntaxError("empty expression", 0)
        node = self.expression(0)
        if self.tok.kind != "eof":
            raise ExprSyntaxError(f"unexpected {_describe(self.tok)}", self.tok.pos)
        return node

    def _binary_op(self) -> tuple[str, int] | None:
        t = self.tok
        if t.kind == "op" and t.value in BINARY:
            return t.value, 1
        if t.kind == "name":
            if t.value == "not":
                nxt = self.toks[self.i + 1]
                if nxt.kind == "name" and nxt.value == "in":
                    return "not in", 2
                return None
            if t.value in BINARY:
                return t.value, 1
        return None

    def expression(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            found = self._binary_op()
            if found is None:
                break
            op, width = found
            prec = BINARY[op]
            if prec < min_prec:
                break
            pos = self.tok.pos
            self.i += width
            right = self.expression(prec if op in RIGHT_ASSOC else prec + 1)
            left = Node("binary", pos, _ALIASES.get(op, op), (left, right))
        if min_prec == 0 and self.tok.kind == "op" and self.tok.value == "?":
            pos = self.next().pos
            yes = self.expression(0)
            self.expect(":")
            no = self.expression(0)
            left = Node("cond", pos, None, (left, yes, no))
        return left

    def unary(self) -> Node:
        t = self.tok
        if (t.kind == "op" and t.value in ("!", "-", "+")) or (t.kind == "name" and t.value == "not"):
            self.next()
            operand = self.expression(UNARY[t.value])
            return Node("unary", t.pos, _ALIASES.get(t.value, t.value), (operand,))
        return self.postfix(self.primary())

    def primary(self) -> Node:
        t = self.next()
        if t.kind in ("num", "str"):
            return Node("lit", t.pos, t.value)
        if t.kind == "name":
            if t.value in _KEYWORDS:
                return Node("lit", t.pos, _KEYWORDS[t.value])
            if self.tok.kind == "op" and self.tok.value == "(":
                if t.value not in FUNCTIONS:
                    raise ExprSyntaxError(f"unknown function {t.value}()", t.pos)
                self.next()
                args = self._list(")")
                return Node("call", t.pos, t.value, tuple(args))
            if t.value in BINARY or t.value in ("not", "in"):
                raise ExprSyntaxError(f"unexpected {t.value!r}", t.pos)
            return Node("name", t.pos, t.value)
        if t.kind == "op" and t.value == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        if t.kind == "op" and t.value == "[":
            return Node("array", t.pos, None, tuple(self._list("]")))
        raise ExprSyntaxError(f"unexpected {_describe(t)}", t.pos)

    def _list(self, close: str) -> list[Node]:
        items: list[Node] = []
        if self.tok.kind == "op" and self.tok.value == close:
            self.next()
            return items
        while True:
            items.append(self.expression(0))
            if self.tok.kind == "op" and self.tok.value == ",":
                self.next()
                if self.tok.kind == "op" and self.tok.value == close:  # trailing comma
                    self.next()
                    return items
                continue
            self.expect(close)
            return items

    def postfix(self, node: Node) -> Node:
        while self.tok.kind == "op" and self.tok.value in (".", "?.", "["):
            t = self.next()
            if t.value == "[":
                key = self.expression(0)
                self.expect("]")
                node = Node("index", t.pos, None, (node, key))
                continue
            name = self.next()
            if name.kind != "name":
                raise ExprSyntaxError(f"expected a member name after {t.value!r}", name.pos)
            node = Node("member", t.pos, name.value, (node,), optional=t.value == "?.")
        return node


def _describe(t: Token) -> str:
    if t.kind == "eof":
        return "end of expression"
    if t.kind == "str":
        return f"string {t.value!r}"
    return repr(str(t.value))


# ------------------------------------------------------------------------------------ semantics


def _is_num(v: Any) -> bool:
    return (type(v) is int or type(v) is float) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def type_name(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, (list, tuple)):
        return "array"
    return type(v).__name__


def _bad(op: str, a: Any, b: Any) -> ExprEvalError:
    return ExprEvalError(f"invalid operation: {type_name(a)} {op} {type_name(b)}")


_PLAIN = (str, int, float)


def equal(a: Any, b: Any) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _PLAIN:  # fast path: same plain type (bool is not in _PLAIN)
        return bool(a == b)
    if _is_num(a) and _is_num(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is None and b is None
    if type_name(a) != type_name(b):
        return False
    return bool(a == b)


def _add(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    raise _bad("+", a, b)


def _sub(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return a - b
    raise _bad("-", a, b)


def _mul(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return a * b
    raise _bad("*", a, b)


def _div(a: Any, b: Any) -> float:
    if not (_is_num(a) and _is_num(b)):
        raise _bad("/", a, b)
    x, y = float(a), float(b)
    if y == 0.0:  # Go float division: ±Inf or NaN, never an error
        if x == 0.0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _mod(a: Any, b: Any) -> int:
    if not (type(a) is int and type(b) is int):
        raise _bad("%", a, b)
    if b == 0:
        raise ExprEvalError("integer divide by zero")
    r = abs(a) % abs(b)  # Go: the result has the sign of the dividend
    return -r if a < 0 else r


def _pow(a: Any, b: Any) -> float:
    if not (_is_num(a) and _is_num(b)):
        raise _bad("**", a, b)
    try:
        return math.pow(float(a), float(b))
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def _ordered(op: str, cmp: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
            return cmp(a, b)
        raise _bad(op, a, b)

    return run


def _in(a: Any, b: Any) -> bool:
    if isinstance(b, Mapping):
        return a in b if isinstance(a, str) else False
    if isinstance(b, (list, tuple)):
        return any(equal(a, x) for x in b)
    raise _bad("in", a, b)


def _strop(op: str, fn: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return fn(a, b)
        raise _bad(op, a, b)

    return run


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "**": _pow,
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": _ordered("<", lambda a, b: a < b),
    ">": _ordered(">", lambda a, b: a > b),
    "<=": _ordered("<=", lambda a, b: a <= b),
    ">=": _ordered(">=", lambda a, b: a >= b),
    "in": _in,
    "not in": lambda a, b: not _in(a, b),
    "contains": _strop("contains", lambda a, b: b in a),
    "startsWith": _strop("startsWith", lambda a, b: a.startswith(b)),
    "endsWith": _strop("endsWith", lambda a, b: a.endswith(b)),
}


def _num_arg(name: str, v: Any) -> float | int:
    if not _is_num(v):
        raise ExprEvalError(f"invalid argument for {name} (type {type_name(v)})")
    return v  # type: ignore[no-any-return]


def _minmax(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        if not args:
            raise ExprEvalError(f"not enough arguments to call {name}")
        return pick(_num_arg(name, a) for a in args)

    return run


def _len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v)
    raise ExprEvalError(f"invalid argument for len (type {type_name(v)})")


def _int(v: Any) -> int:
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            raise ExprEvalError(f"invalid argument for int: {v!r}") from None
    n = _num_arg("int", v)
    if isinstance(n, float) and not math.isfinite(n):
        raise ExprEvalError("invalid argument for int: not a finite number")
    return int(n)


def _float(v: Any) -> float:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise ExprEvalError(f"invalid argument for float: {v!r}") from None
    return float(_num_arg("float", v))


def go_round(x: float) -> float:
    """Go's ``math.Round``: half away from zero, exact (no ``x + 0.5`` rounding error)."""
    if not math.isfinite(x):
        return x
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return float(t)


def _float_fn(name: str, fn: Callable[[float], float]) -> Callable[[Any], float]:
    def run(v: Any) -> float:
        x = float(_num_arg(name, v))
        return fn(x) if math.isfinite(x) else x

    return run


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda v: abs(_num_arg("abs", v)),
    "min": _minmax("min", min),
    "max": _minmax("max", max),
    "len": _len,
    "int": _int,
    "float": _float,
    "round": _float_fn("round", go_round),
    "ceil": _float_fn("ceil", lambda x: float(math.ceil(x))),
    "floor": _float_fn("floor", lambda x: float(math.floor(x))),
}


def _fetch(obj: Any, key: Any, optional: bool) -> Any:
    if type(obj) is dict:  # fast path: the rule environment is plain dicts
        return obj.get(key) if type(key) is str else None
    if obj is None:
        if optional:
            return None
        raise ExprEvalError(f"cannot fetch {key} from nil")
    if isinstance(obj, Mapping):
        return obj.get(key) if isinstance(key, str) else None
    if isinstance(obj, (list, tuple, str)) and type(key) is int:
        i = key + len(obj) if key < 0 else key
        if not 0 <= i < len(obj):
            raise ExprEvalError(f"index out of range: {key} (array length is {len(obj)})")
        return obj[i]
    raise ExprEvalError(f"cannot fetch {key!r} from {type_name(obj)}")


def _need_bool(op: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ExprEvalError(f"invalid operation: {op} on {type_name(v)} (needs bool)")


# -------------------------------------------------------------------------------------- compile


def _compile(node: Node) -> Evaluator:
    op = node.op
    if op == "lit":
        value = node.value
        return lambda env: value
    if op == "name":
        name = node.value
        return lambda env: env.get(name)
    if op == "member":
        chain = _member_chain(node)
        if chain is not None:  # name.a.b…: one closure, dict lookups in a loop
            root, keys = chain

            def fetch_chain(env: Env) -> Any:
                v = env.get(root)
                for k in keys:
                    v = v.get(k) if type(v) is dict else _fetch(v, k, False)
                return v

            return fetch_chain
        obj = _compile(node.args[0])
        key, optional = node.value, node.optional
        return lambda env: _fetch(obj(env), key, optional)
    if op == "index":
        obj, key_fn = _compile(node.args[0]), _compile(node.args[1])
        return lambda env: _fetch(obj(env), key_fn(env), False)
    if op == "array":
        items = [_compile(a) for a in node.args]
        return lambda env: [f(env) for f in items]
    if op == "call":
        fn = FUNCTIONS[node.value]
        args = [_compile(a) for a in node.args]
        name = node.value

        def call(env: Env) -> Any:
            try:
                return fn(*(a(env) for a in args))
            except TypeError:
                raise ExprEvalError(f"wrong number of arguments for {name}()") from None

        return call
    if op == "unary":
        operand = _compile(node.args[0])
        if node.value == "!":
            return lambda env: not _need_bool("!", operand(env))
        sign = node.value

        def num(env: Env) -> Any:
            v = operand(env)
            if not _is_num(v):
                raise ExprEvalError(f"invalid operation: {sign}{type_name(v)}")
            return -v if sign == "-" else v

        return num
    if op == "cond":
        c, yes, no = (_compile(a) for a in node.args)
        return lambda env: yes(env) if _need_bool("?:", c(env)) else no(env)
    if op == "binary":
        left, right = _compile(node.args[0]), _compile(node.args[1])
        bop = node.value
        if node.args[1].op == "lit" and bop in ("==", "!=", ">", "<", ">=", "<=", "*", "/", "+", "-"):
            return _binary_literal(bop, left, node.args[1].value)
        if bop == "&&":
            return lambda env: _need_bool("&&", left(env)) and _need_bool("&&", right(env))
        if bop == "||":
            return lambda env: _need_bool("||", left(env)) or _need_bool("||", right(env))
        if bop == "??":

            def coalesce(env: Env) -> Any:
                v = left(env)
                return right(env) if v is None else v

            return coalesce
        if bop in ("*", "-", "+"):  # numbers fast, everything else through the checked operator
            slow = _BINOPS[bop]
            arith = {"*": lambda a, b: a * b, "-": lambda a, b: a - b, "+": lambda a, b: a + b}[bop]

            def arithmetic(env: Env) -> Any:
                a, b = left(env), right(env)
                ta, tb = type(a), type(b)
                if (ta is float or ta is int) and (tb is float or tb is int):
                    return arith(a, b)
                return slow(a, b)

            return arithmetic
        if bop == ">":  # the rules' most common operators get a direct path
            return lambda env: _gt(left(env), right(env))
        if bop == "<":
            return lambda env: _gt(right(env), left(env), "<")
        fn = _BINOPS[bop]
        return lambda env: fn(left(env), right(env))
    raise AssertionError(f"unknown node {op}")


def _binary_literal(bop: str, left: Evaluator, value: Any) -> Evaluator:
    """``expr <op> literal``: the literal is captured, not called (the rules' most common shape)."""
    fn = _BINOPS[bop]
    if bop == "==":
        tv = type(value)
        if tv in _PLAIN:

            def eq(env: Env) -> bool:
                a = left(env)
                return a == value if type(a) is tv else equal(a, value)

            return eq
    return lambda env: fn(left(env), value)


def _member_chain(node: Node) -> tuple[str, tuple[str, ...]] | None:
    """``name.a.b`` without ``?.`` as (name, (a, b)); None for anything else."""
    keys: list[str] = []
    while node.op == "member" and not node.optional:
        keys.append(node.value)
        node = node.args[0]
    if node.op != "name" or not keys:
        return None
    return node.value, tuple(reversed(keys))


def _gt(a: Any, b: Any, op: str = ">") -> bool:
    ta, tb = type(a), type(b)
    if (ta is float or ta is int) and (tb is float or tb is int):
        return a > b  # type: ignore[no-any-return]
    if (_is_num(a) and _is_num(b)) or (ta is str and tb is str):
        return a > b  # type: ignore[no-any-return]
    raise _bad(op, b, a) if op == "<" else _bad(op, a, b)


@dataclass(slots=True)
class Program:
    """A compiled expression: ``run(env)`` evaluates it; ``source`` is the text it came from."""

    source: str
    ast: Node
    _fn: Evaluator

    def run(self, env: Env) -> Any:
        try:
            return self._fn(env)
        except ExprEvalError:
            raise
        except RecursionError:
            raise ExprEvalError("expression too deeply nested") from None

    def run_bool(self, env: Env) -> bool:
        """expr-lang's ``AsBool()``: the result must be a boolean."""
        try:
            v = self._fn(env)
        except RecursionError:
            raise ExprEvalError("expression too deeply nested") from None
        if v is True or v is False:
            return v
        if not isinstance(v, bool):
            raise ExprEvalError(f"expected bool, but got {type_name(v)}")
        return v

    def run_float(self, env: Env) -> float:
        """expr-lang's ``AsFloat64()``: the result must be a number; it becomes a float."""
        try:
            v = self._fn(env)
        except RecursionError:
            raise ExprEvalError("expression too deeply nested") from None
        if type(v) is float:
            return v
        if not _is_num(v):
            raise ExprEvalError(f"expected float64, but got {type_name(v)}")
        return float(v)


MAX_SOURCE = 10_000


def compile_expr(source: str) -> Program:
    """Parse ``source``; `ExprSyntaxError` (with the column) if it is not a valid expression."""
    if not isinstance(source, str):
        raise ExprSyntaxError("expression must be a string", 0)
    if len(source) > MAX_SOURCE:
        raise ExprSyntaxError(f"expression longer than {MAX_SOURCE} characters", MAX_SOURCE)
    try:
        ast = Parser(source).parse()
    except RecursionError:
        raise ExprSyntaxError("expression too deeply nested", 0) from None
    return Program(source, ast, _compile(ast))

"""The part of Go's ``text/template`` that job-classification hints use, and Go's value printing.

Upstream renders a rule's ``hint`` with ``text/template`` over the rule's environment (floats rounded to
two decimals first). The shipped rules only print fields: ``{{.cpu_load.avg}}``,
``{{.load_threshold}}``. Supported here: text, field chains ``{{.a.b.c}}`` and ``{{.}}``, trim markers
``{{-``/``-}}`` and comments ``{{/* … */}}``. Any other action (pipelines, ``if``, ``range``,
functions) is a `TemplateError` at load time with its position, so a site learns at once that its rule
needs more than this subset — never a silently different message.

Values print as Go's ``fmt.Print`` does: floats in ``%v`` form (shortest representation, exponent form
when the exponent is < -4 or >= 6, as strconv decides for the shortest form), ``<no value>`` for a key a map lacks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class TemplateError(ValueError):
    """The template does not parse (or uses more than the supported subset); ``pos`` is 0-based."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} (column {pos + 1})")
        self.message = message
        self.pos = pos


_FIELD = re.compile(r"\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?\Z")
NO_VALUE = "<no value>"


def go_float(x: float) -> str:
    """``fmt.Sprint(float64)``: ``%g`` with the shortest precision that round-trips."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    if 1e-4 <= abs(x) < 1e6:  # fixed notation in Go and in Python's repr: same shortest digits
        r = repr(x)
        return r[:-2] if r.endswith(".0") else r
    sign, digits_t, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp += len("".join(map(str, digits_t))) - len(digits)  # trailing zeros moved into the exponent
    point = len(digits) + exp  # position of the decimal point relative to the digit string
    e = point - 1
    neg = "-" if sign else ""
    if e < -4 or e >= 6:  # strconv: shortest %g decides with precision 6
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_print(v: Any) -> str:
    """A value as Go's ``fmt.Print`` shows it (the cases a rule environment holds)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{go_print(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_print(x) for x in v) + "]"
    return str(v)


@dataclass(slots=True)
class Template:
    """A parsed hint: literal text and field chains, alternating."""

    source: str
    parts: tuple[str | tuple[str, ...], ...]

    def render(self, data: Mapping[str, Any], float_filter: Callable[[float], float] | None = None) -> str:
        """The text for ``data``; ``float_filter`` is applied to every float printed (e.g. rounding)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value: Any = data
            for key in part:
                if isinstance(value, Mapping):
                    if key not in value:
                        value = _MISSING
                        break
                    value = value[key]
                else:
                    raise TemplateError(f"can't evaluate field {key} in type {type(value).__name__}", 0)
            if value is _MISSING:
                out.append(NO_VALUE)
            elif float_filter is not None and type(value) is float:
                out.append(go_float(float_filter(value)))
            elif float_filter is not None and isinstance(value, Mapping):
                out.append(go_print(_filter_floats(value, float_filter)))
            else:
                out.append(go_print(value))
        return "".join(out)


_MISSING = object()


def _filter_floats(value: Any, fn: Callable[[float], float]) -> Any:
    if type(value) is float:
        return fn(value)
    if isinstance(value, Mapping):
        return {k: _filter_floats(v, fn) for k, v in value.items()}
    return value


def parse_template(source: str) -> Template:
    if not isinstance(source, str):
        raise TemplateError("hint must be a string", 0)
    parts: list[str | tuple[str, ...]] = []
    i, n = 0, len(source)
    text: list[str] = []
    while i < n:
        j = source.find("{{", i)
        if j < 0:
            text.append(source[i:])
            break
        text.append(source[i:j])
        k = source.find("}}", j + 2)
        if k < 0:
            raise TemplateError("unclosed action", j)
        inner = source[j + 2 : k]
        if inner.startswith("- ") or inner == "-":  # {{- trims the whitespace before
            text[-1] = text[-1].rstrip(" \t\r\n")
            inner = inner[1:]
        trim_after = inner.endswith(" -")
        if trim_after:
            inner = inner[:-1]
        action = inner.strip()
        i = k + 2
        if trim_after:
            while i < n and source[i] in " \t\r\n":
                i += 1
        if action.startswith("/*"):
            if not action.endswith("*/"):
                raise TemplateError("unclosed comment", j)
            continue
        if not _FIELD.match(action):
            raise TemplateError(
                f"unsupported template action {{{{{action}}}}}: only field references like "
                "{{.metric.avg}} are supported",
                j,
            )
        if text:
            parts.append("".join(text))
            text = []
        parts.append(tuple(p for p in action.split(".") if p))
    if text and "".join(text):
        parts.append("".join(text))
    return Template(source, tuple(parts))

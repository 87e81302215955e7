"""The expr-lang subset: precedence, Go/expr-lang semantics, errors with positions, and no escape hatch."""

from __future__ import annotations

import math

import pytest

from cc_core.taggers.expr import ExprEvalError, ExprSyntaxError, compile_expr

ENV = {
    "job": {"shared": "none", "duration": 3600, "numNodes": 2, "jobState": "completed", "smt": 1},
    "cpu_load": {"min": 1.0, "max": 80.0, "avg": 50.0, "limits": {"peak": 72.0, "alert": 20.0}},
    "job_min_duration_seconds": 600.0,
    "factor": 0.85,
    "names": ["a", "b"],
}


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ('job.shared == "none" && job.duration > job_min_duration_seconds', True),
        ("job.shared == 'none' and not (job.numNodes < 2)", True),
        ("cpu_load.avg < cpu_load.limits.peak * factor", True),
        ("cpu_load.limits.peak * factor", 61.199999999999996),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),  # '/' is always a float division
        ("7 % 3", 1),
        ("-7 % 3", -1),  # Go: sign of the dividend
        ("2 ** 3 ** 2", 512.0),  # right-associative
        ("-2 ** 2", -4.0),  # unary minus binds weaker than **
        ("2 ^ 10", 1024.0),
        ("!true || true", True),  # ! binds tighter than ||
        ("not true == false", True),  # (not true) == false, as expr-lang parses it
        ("1 == 1.0", True),
        ("true == 1", False),
        ("nil == nil", True),
        ("missing == nil", True),  # unknown names are nil (untyped compile, as upstream)
        ('"a" + "b" == "ab"', True),
        ('"b" in names', True),
        ('"c" not in names', True),
        ('"shared" in job', True),
        ("2 in [1, 2, 3]", True),
        ('job.jobState in ["completed", "timeout"]', True),
        ('"mem_bw" startsWith "mem"', True),
        ('"mem_bw" endsWith "bw" && "mem_bw" contains "_"', True),
        ('job["duration"] / 60', 60.0),
        ("names[-1]", "b"),
        ("missing?.x ?? 5", 5),
        ("job.smt > 0 ? 2 : 1", 2),
        ("1_000 + 0x10", 1016),
        ("1.5e3", 1500.0),
        ("max(1, 2.5, job.numNodes) + min([4, 3]) + abs(-1)", 6.5),
        ("round(2.5) + floor(1.7) + ceil(1.2)", 6.0),
        ("len(names) + int(2.9) + float(1)", 5.0),
        ("job.duration > 600 || 1 / 0 > 0", True),  # short-circuit
    ],
)
def test_expressions(src: str, expected: object) -> None:
    got = compile_expr(src).run(ENV)
    assert got == expected and type(got) is type(expected)


def test_float_division_by_zero_is_ieee_as_in_go() -> None:
    assert compile_expr("1 / 0").run({}) == math.inf
    assert compile_expr("-1 / 0").run({}) == -math.inf
    assert math.isnan(compile_expr("0 / 0.0").run({}))
    # A rule comparing NaN is simply false, not an error.
    assert compile_expr("x / y * 100.0 > 5").run_bool({"x": 0.0, "y": 0.0}) is False


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ('"a" && true', "invalid operation: && on string"),
        ("1 % 0", "integer divide by zero"),
        ("1.5 % 2", "invalid operation: float64 % int"),
        ("missing.x", "cannot fetch x from nil"),
        ('"a" < 1', "invalid operation: string < int"),
        ("-job", "invalid operation: -map"),
        ("names[5]", "index out of range"),
        ('1 in "abc"', "invalid operation: int in string"),
    ],
)
def test_evaluation_errors(src: str, message: str) -> None:
    with pytest.raises(ExprEvalError, match=message):
        compile_expr(src).run(ENV)


def test_result_type_checks() -> None:
    with pytest.raises(ExprEvalError, match="expected bool, but got float64"):
        compile_expr("cpu_load.avg").run_bool(ENV)
    with pytest.raises(ExprEvalError, match="expected float64, but got bool"):
        compile_expr("true").run_float(ENV)
    assert compile_expr("job.duration").run_float(ENV) == 3600.0


@pytest.mark.parametrize(
    ("src", "pos", "message"),
    [
        ("", 0, "empty expression"),
        ("a &&", 4, "unexpected end of expression"),
        ("(a > 1", 6, "expected ')'"),
        ("a +* b", 3, "unexpected '*'"),
        ('"abc', 0, "unterminated string literal"),
        ("a ? b", 5, "expected ':'"),
        ("1 2", 2, "unexpected '2'"),
        ("a = 1", 2, "unexpected character '='"),
        ("a.", 2, "expected a member name"),
        ("12abc", 0, "invalid number"),
        # No way out to Python: no attribute magic, no calls beyond the fixed function table.
        ('__import__("os")', 0, "unknown function __import__()"),
        ("eval(1)", 0, "unknown function eval()"),
        ("a.__class__()", 11, "unexpected '('"),
    ],
)
def test_syntax_errors_have_positions(src: str, pos: int, message: str) -> None:
    with pytest.raises(ExprSyntaxError) as e:
        compile_expr(src)
    assert message in e.value.message
    assert e.value.pos == pos


def test_dunder_names_are_plain_map_keys() -> None:
    # Member access only ever looks up mapping keys; Python attributes are unreachable.
    assert compile_expr("job.__class__ == nil").run(ENV) is True
    with pytest.raises(ExprEvalError, match="cannot fetch"):
        compile_expr("names.__len__").run(ENV)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExprSyntaxError):
        compile_expr("(" * 5000 + "1" + ")" * 5000)

"""Our strawberry schema against upstream's SDL (``../shared/reference/api/schema.graphqls``).

Both schemas are compared through graphql-core introspection, so what is checked is exactly what a
client can see: every type with its kind; every field with its type (including nullability and list
nesting); every argument with its type and default value; every input field; every enum value. The
comparison runs in both directions: nothing upstream has may be missing or different here, and nothing
may be added (an extra *required* argument would break upstream's queries; anything else extra would be
drift that upstream's frontend does not know about).

The SDL is read from ``../shared`` at test time (it is upstream's file, not part of this project); on a
clone without ``../shared`` the test is skipped, under ``CI=true`` it fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, get_introspection_query, graphql_sync, introspection_from_schema

from cc_core.graphql.schema import schema

# Upstream's SDL mentions no subscription type; the built-in scalars are present in both.
_BUILTIN = {"String", "Int", "Float", "Boolean", "ID"}


def _type_ref(ref: dict[str, Any]) -> str:
    kind = ref["kind"]
    if kind == "NON_NULL":
        return _type_ref(ref["ofType"]) + "!"
    if kind == "LIST":
        return "[" + _type_ref(ref["ofType"]) + "]"
    return ref["name"]


def _describe(introspection: dict[str, Any]) -> dict[str, Any]:
    """A comparable digest: {type name: {kind, fields/inputs/enum values}}."""
    out: dict[str, Any] = {}
    for tp in introspection["__schema"]["types"]:
        name = tp["name"]
        if name.startswith("__"):
            continue
        entry: dict[str, Any] = {"kind": tp["kind"]}
        if tp["kind"] in ("OBJECT", "INTERFACE"):
            entry["fields"] = {
                f["name"]: {
                    "type": _type_ref(f["type"]),
                    "args": {a["name"]: (_type_ref(a["type"]), a["defaultValue"]) for a in f["args"]},
                }
                for f in tp["fields"]
            }
            entry["interfaces"] = sorted(i["name"] for i in tp["interfaces"] or [])
        elif tp["kind"] == "INPUT_OBJECT":
            entry["inputs"] = {
                f["name"]: (_type_ref(f["type"]), f["defaultValue"]) for f in tp["inputFields"]
            }
        elif tp["kind"] == "ENUM":
            entry["values"] = sorted(v["name"] for v in tp["enumValues"])
        elif tp["kind"] == "UNION":
            entry["members"] = sorted(p["name"] for p in tp["possibleTypes"])
        out[name] = entry
    return out


@pytest.fixture(scope="module")
def upstream_sdl() -> str:
    import os

    path = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "api" / "schema.graphqls"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing (CI requires ../shared)")
        pytest.skip(f"{path} not present (a clone without ../shared)")
    return path.read_text()


@pytest.fixture(scope="module")
def upstream(upstream_sdl: str) -> dict[str, Any]:
    return _describe(introspection_from_schema(build_schema(upstream_sdl)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    result = graphql_sync(schema._schema, get_introspection_query())
    assert result.errors is None, result.errors
    return _describe(result.data)  # type: ignore[arg-type]


def _diff(upstream: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, up in sorted(upstream.items()):
        here = ours.get(name)
        if here is None:
            problems.append(f"type {name} ({up['kind']}) is missing")
            continue
        if here["kind"] != up["kind"]:
            problems.append(f"type {name}: kind {here['kind']} here, {up['kind']} upstream")
            continue
        for key in ("values", "members", "interfaces"):
            if key in up and here.get(key) != up[key]:
                problems.append(f"{name}: {key} {here.get(key)} here, {up[key]} upstream")
        if "fields" in up:
            for fname, ufield in up["fields"].items():
                hfield = here["fields"].get(fname)
                if hfield is None:
                    problems.append(f"field {name}.{fname} is missing")
                    continue
                if hfield["type"] != ufield["type"]:
                    problems.append(f"field {name}.{fname}: {hfield['type']} here, {ufield['type']} upstream")
                for aname, uarg in ufield["args"].items():
                    harg = hfield["args"].get(aname)
                    if harg is None:
                        problems.append(f"argument {name}.{fname}({aname}) is missing")
                    elif harg != uarg:
                        problems.append(
                            f"argument {name}.{fname}({aname}): type/default {harg} here, {uarg} upstream"
                        )
                for aname, harg in hfield["args"].items():
                    if aname not in ufield["args"]:
                        problems.append(f"argument {name}.{fname}({aname}: {harg[0]}) is not upstream's")
            for fname in here["fields"].keys() - up["fields"].keys():
                problems.append(f"field {name}.{fname} is not upstream's")
        if "inputs" in up:
            for fname, uinput in up["inputs"].items():
                hinput = here["inputs"].get(fname)
                if hinput is None:
                    problems.append(f"input field {name}.{fname} is missing")
                elif hinput != uinput:
                    problems.append(f"input field {name}.{fname}: {hinput} here, {uinput} upstream")
            for fname in here["inputs"].keys() - up["inputs"].keys():
                problems.append(f"input field {name}.{fname} is not upstream's")
    for name in sorted(ours.keys() - upstream.keys() - _BUILTIN):
        problems.append(f"type {name} ({ours[name]['kind']}) is not upstream's")
    return problems


def test_every_upstream_type_field_argument_and_value_matches(
    upstream: dict[str, Any], ours: dict[str, Any]
) -> None:
    problems = _diff(upstream, ours)
    assert not problems, "schema drift from upstream:\n  " + "\n  ".join(problems)


def test_root_types_are_upstreams(upstream_sdl: str) -> None:
    theirs = build_schema(upstream_sdl)
    here = schema._schema
    assert here.query_type is not None and here.query_type.name == theirs.query_type.name  # type: ignore[union-attr]
    assert here.mutation_type is not None and here.mutation_type.name == theirs.mutation_type.name  # type: ignore[union-attr]
    assert here.subscription_type is None and theirs.subscription_type is None


def test_the_comparison_catches_drift(upstream: dict[str, Any], ours: dict[str, Any]) -> None:
    """The checker itself: nullability, a default, an enum value and an argument change are all caught."""
    import copy

    drifted = copy.deepcopy(ours)
    drifted["Job"]["fields"]["footprint"]["type"] = "[FootprintValue!]"
    drifted["OrderByInput"]["inputs"]["order"] = ("SortDirectionEnum!", "DESC")
    drifted["Aggregate"]["values"].remove("SUBCLUSTER")
    del drifted["Query"]["fields"]["jobs"]["args"]["order"]
    drifted["Query"]["fields"]["jobs"]["args"]["limit"] = ("Int!", None)
    problems = "\n".join(_diff(upstream, drifted))
    assert "Job.footprint" in problems
    assert "OrderByInput.order" in problems
    assert "Aggregate" in problems
    assert "Query.jobs(order) is missing" in problems
    assert "Query.jobs(limit" in problems

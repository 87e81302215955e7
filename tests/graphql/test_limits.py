"""Cost and depth limits refuse with clear GraphQL errors; parse/validation results are cached."""

from __future__ import annotations

from graphql import get_introspection_query

from cc_core.auth.user import User
from cc_core.graphql import GraphQLEngine, QueryLimits
from cc_core.graphql.limits import operation_cost

from .conftest import context_for, run


def _cost(query: str) -> tuple[int, int]:
    from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

    doc = parse(query)
    fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    op = next(d for d in doc.definitions if isinstance(d, OperationDefinitionNode))
    return operation_cost(op, fragments)


def test_cost_is_gqlgens_default_complexity() -> None:
    # every field 1 + its children; fragments count where spread; inline fragments add no depth
    assert _cost("{ clusters { name } }") == (2, 2)
    assert _cost("{ jobs { items { id tags { name } } count } }") == (6, 4)
    assert _cost("{ jobs { items { ...F ...F } } } fragment F on Job { id user }") == (6, 3)
    assert _cost("{ jobs { ... on JobResultList { count } } }") == (2, 2)


def _wide_query(fields: int) -> str:
    aliases = " ".join(f"a{i}: name" for i in range(fields))
    return f"{{ clusters {{ {aliases} }} }}"


def test_complexity_limit_5000_refuses_with_gqlgen_message_and_code(engine: GraphQLEngine) -> None:
    status, body = run(engine, _wide_query(4999), context_for())  # 1 + 4999 = 5000: allowed
    assert status == 200
    status, body = run(engine, _wide_query(5000), context_for())
    assert status == 422
    assert body["data"] is None
    error = body["errors"][0]
    assert error["message"] == "operation has complexity 5001, which exceeds the limit of 5000"
    assert error["extensions"]["code"] == "COMPLEXITY_LIMIT_EXCEEDED"


def test_depth_limit_refuses_with_clear_error() -> None:
    engine = GraphQLEngine(limits=QueryLimits(max_depth=3))
    status, _ = run(engine, "{ clusters { subClusters { name } } }", context_for())
    assert status != 422
    status, body = run(
        engine,
        "query Deep { clusters { subClusters { topology { node } } } }",
        context_for(User("a", ["admin"])),
    )
    assert status == 422
    error = body["errors"][0]
    assert error["message"] == "operation 'Deep' has depth 4, which exceeds the limit of 3"
    assert error["extensions"]["code"] == "DEPTH_LIMIT_EXCEEDED"
    assert error["locations"] == [{"line": 1, "column": 1}]


def test_introspection_fits_the_default_limits(engine: GraphQLEngine) -> None:
    status, body = run(engine, get_introspection_query(descriptions=True), context_for())
    assert status == 200, body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_parse_and_validation_errors_are_422_with_codes(engine: GraphQLEngine) -> None:
    status, body = run(engine, "{ clusters { name }", context_for())
    assert status == 422
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert body["errors"][0]["message"].startswith("Syntax Error")
    status, body = run(engine, "{ clusters { nmae } }", context_for())
    assert status == 422
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean 'name'?" in body["errors"][0]["message"]
    status, body = run(engine, "  ", context_for())
    assert (status, body["errors"][0]["message"]) == (422, "no operation provided")
    status, body = run(engine, "query ($id: ID!) { job(id: $id) { id } }", context_for())
    assert status == 422  # a required variable missing: refused before execution
    assert "$id" in body["errors"][0]["message"]


def test_token_and_size_limits() -> None:
    engine = GraphQLEngine(limits=QueryLimits(max_tokens=50, max_query_bytes=1000))
    status, body = run(engine, _wide_query(60), context_for())
    assert status == 422
    assert "token" in body["errors"][0]["message"].lower()
    status, body = run(engine, "{ clusters { name } }" + " " * 1000, context_for())
    assert status == 422
    assert "exceeds the limit of 1000" in body["errors"][0]["message"]


def test_parse_and_validation_are_cached(engine: GraphQLEngine) -> None:
    query = "{ clusters { name } }"
    first = engine.prepare(query)
    assert engine.prepare(query) is first
    assert (engine.cache_hits, engine.cache_misses) == (1, 1)
    refused = engine.prepare("{ nope }")
    assert engine.prepare("{ nope }") is refused  # refusals are cached too
    small = GraphQLEngine(limits=QueryLimits(cache_size=2))
    for q in ("{ tags { id } }", "{ tags { name } }", "{ tags { scope } }"):
        small.prepare(q)
    assert len(small._cache) == 2 and "{ tags { id } }" not in small._cache

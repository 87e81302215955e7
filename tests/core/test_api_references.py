"""The generated REST and GraphQL references (docs/rest.md, docs/graphql.md) are complete and current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cc_core import graphql_reference, rest_reference
from cc_core.graphql.schema import schema

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def rest() -> tuple[Any, Any]:
    return rest_reference.build()


def test_rest_reference_is_current(rest: tuple[Any, Any]) -> None:
    assert (DOCS / "rest.md").read_text() == rest_reference.render_markdown(*rest), (
        "docs/rest.md is stale: run `clustercockpit rest-reference -o docs/rest.md`"
    )


def test_rest_reference_lists_every_operation_with_its_auth_group(rest: tuple[Any, Any]) -> None:
    doc, auth = rest
    text = rest_reference.render_markdown(doc, auth)
    operations = [(p, m) for p, item in doc["paths"].items() for m in item if m in rest_reference._METHODS]
    assert len(operations) >= 40
    for path, method in operations:
        assert f"## `{method.upper()} {path}`" in text
        group, _ = auth[(path, method.upper())]
        assert group in rest_reference.GROUP_RULES, (path, method, group)
    assert auth[("/api/jobs/start_job", "POST")][0] == "api"
    assert auth[("/api/write", "POST")][0] == "metricstore"
    assert auth[("/userapi/jobs", "GET")][0] == "userapi"
    assert auth[("/config/users", "GET")][0] == "config"
    assert "admin_api_guard" in auth[("/api/plugins", "GET")][1]


def test_graphql_reference_is_current() -> None:
    assert graphql_reference.undocumented_limits() == []
    text = graphql_reference.render_markdown()
    assert (DOCS / "graphql.md").read_text() == text, (
        "docs/graphql.md is stale: run `clustercockpit graphql-reference -o docs/graphql.md`"
    )
    assert schema.as_str().strip() in text and "type Query {" in text

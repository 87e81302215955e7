"""Running one GraphQL request: cached parse + validation, execution, error shaping, JSON encoding.

The engine drives graphql-core directly on strawberry's schema (``schema._schema``) instead of going
through ``strawberry.Schema.execute`` because it needs three things that path does not give together:

* parse and validation results cached per query text (the UI sends the same dozen queries all day;
  validating a job-list query costs more than executing it from cache);
* the numeric-series executor (`execution.SeriesExecutor`) and a response encoder that writes its
  pre-formatted fragments (`execution.encode_response`);
* upstream's HTTP statuses: 422 for documents that do not parse or validate or exceed the limits
  (gqlgen's ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` / ``COMPLEXITY_LIMIT_EXCEEDED``),
  200 for executed operations, with or without field errors.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from strawberry.execution.is_awaitable import optimized_is_awaitable

from cc_core.graphql.errors import format_error
from cc_core.graphql.execution import SeriesExecutor, encode_response
from cc_core.graphql.limits import QueryLimits, limits_rule

__all__ = ["GraphQLEngine", "GraphQLResponse", "Prepared"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed and validated document, or the errors that refuse it (cached per query text)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()
    code: str = ""


@dataclass(frozen=True, slots=True)
class GraphQLResponse:
    status_code: int
    body: bytes


class GraphQLEngine:
    """Executes queries against ``schema`` within ``limits``. One instance per server."""

    def __init__(
        self,
        schema: strawberry.Schema | None = None,
        *,
        limits: QueryLimits | None = None,
        dev: bool = False,
    ) -> None:
        if schema is None:
            from cc_core.graphql.schema import schema as default_schema

            schema = default_schema
        self.schema = schema
        self.limits = limits or QueryLimits()
        self.dev = dev
        self._rules = (*specified_rules, limits_rule(self.limits))
        self._cache: OrderedDict[str, Prepared] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    # ------------------------------------------------------------------------------------ prepare

    def prepare(self, query: str) -> Prepared:
        """Parse and validate ``query`` (cached: the same text is checked once)."""
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
            self.cache_hits += 1
            return cached
        self.cache_misses += 1
        prepared = self._prepare(query)
        if self.limits.cache_size:
            self._cache[query] = prepared
            if len(self._cache) > self.limits.cache_size:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> Prepared:
        if not query.strip():
            return Prepared(None, (GraphQLError("no operation provided"),), "GRAPHQL_PARSE_FAILED")
        if self.limits.max_query_bytes and len(query) > self.limits.max_query_bytes:
            message = (
                f"query text of {len(query)} characters exceeds the limit of {self.limits.max_query_bytes}"
            )
            return Prepared(None, (GraphQLError(message),), "GRAPHQL_PARSE_FAILED")
        try:
            document = parse(query, max_lexical_tokens=self.limits.max_tokens or None)
        except GraphQLError as e:
            return Prepared(None, (e,), "GRAPHQL_PARSE_FAILED")
        errors = validate(self.schema._schema, document, self._rules)
        if errors:
            return Prepared(None, tuple(errors), "GRAPHQL_VALIDATION_FAILED")
        return Prepared(document)

    # ------------------------------------------------------------------------------------ execute

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        context: Any = None,
        *,
        allow_mutations: bool = True,
    ) -> GraphQLResponse:
        """Run one request and return the HTTP status and JSON body."""
        prepared = self.prepare(query)
        if prepared.document is None:
            return self._refuse(prepared.errors, prepared.code)
        if (
            not allow_mutations
            and _operation_type(prepared.document, operation_name) is OperationType.MUTATION
        ):
            return self._refuse(
                (GraphQLError("mutations are not allowed here"),), "GRAPHQL_VALIDATION_FAILED"
            )
        result = execute(
            self.schema._schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=SeriesExecutor,
            is_awaitable=optimized_is_awaitable,
            operation_extensions=None,
        )
        if inspect.isawaitable(result):
            result = await result
        errors = result.errors or []
        if result.data is None and errors and all(e.path is None for e in errors):
            # Variables that do not coerce, an unknown operation name: refused before execution.
            return self._refuse(tuple(errors), "GRAPHQL_VALIDATION_FAILED")
        formatted = [format_error(e, dev=self.dev) for e in errors] if errors else None
        return GraphQLResponse(200, encode_response(result.data, formatted))

    def _refuse(self, errors: tuple[GraphQLError, ...], code: str) -> GraphQLResponse:
        formatted = []
        for error in errors:
            item = error.formatted
            extensions = dict(item.get("extensions") or {})
            extensions.setdefault("code", code)
            item["extensions"] = extensions
            formatted.append(item)
        return GraphQLResponse(422, encode_response(None, formatted))


def _operation_type(document: DocumentNode, operation_name: str | None) -> OperationType | None:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name and definition.name.value == operation_name)
        ):
            return definition.operation
    return None

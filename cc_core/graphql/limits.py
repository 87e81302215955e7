"""Query cost and depth limits, checked once per distinct query text during (cached) validation.

**Cost** is upstream's: gqlgen's ``FixedComplexityLimit(5000)`` with the default complexity function,
i.e. every selected field costs 1 plus the cost of its sub-selection, fragments counted where they are
spread, arguments (page sizes) not considered. We keep that rule rather than a list multiplier so that
every query upstream accepts is accepted here (``jobs(page: {itemsPerPage: -1})`` would have no finite
multiplier); the expensive list queries are bounded by their own limits (500 jobs for analyses, paging).
``@skip``/``@include`` are ignored (the cost is an upper bound, known before variables are seen).

**Depth** (upstream has none) counts nested fields: ``{ job(id: 1) { tags { name } } }`` has depth 3.
Upstream's frontend needs at most 7 (``nodeMetricsList → items → metrics → metric → series →
statistics → min``); introspection queries need 13 (GraphiQL 3) to 15 (graphql-core 3.3's). The
default 20 leaves room for both and still stops pathological nesting.

Both run as one graphql-core validation rule, so they are cached with the rest of validation and their
refusals are GraphQL validation errors with ``extensions.code`` ``COMPLEXITY_LIMIT_EXCEEDED`` (gqlgen's
code) or ``DEPTH_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

__all__ = ["QueryLimits", "limits_rule", "operation_cost"]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Limits of one GraphQL endpoint. 0 disables a limit."""

    max_complexity: int = 5000  # upstream's FixedComplexityLimit
    max_depth: int = 20
    max_tokens: int = 20_000  # lexical tokens per document (parser)
    max_query_bytes: int = 200_000  # characters of query text
    cache_size: int = 512  # distinct query texts whose parse/validation result is kept


def operation_cost(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[int, int]:
    """``(complexity, depth)`` of one operation as defined in the module docstring."""

    def walk(selection_set: SelectionSetNode | None, depth: int, path: frozenset[str]) -> tuple[int, int]:
        if selection_set is None:
            return 0, depth - 1
        cost, deepest = 0, depth - 1
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                child_cost, child_depth = walk(sel.selection_set, depth + 1, path)
                cost += 1 + child_cost
                deepest = max(deepest, depth, child_depth)
            elif isinstance(sel, InlineFragmentNode):
                child_cost, child_depth = walk(sel.selection_set, depth, path)
                cost += child_cost
                deepest = max(deepest, child_depth)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = fragments.get(name)
                if fragment is None or name in path:  # unknown or cyclic: other rules report those
                    continue
                child_cost, child_depth = walk(fragment.selection_set, depth, path | {name})
                cost += child_cost
                deepest = max(deepest, child_depth)
        return cost, deepest

    return walk(operation.selection_set, 1, frozenset())


def limits_rule(limits: QueryLimits) -> type[ValidationRule]:
    """A validation rule class enforcing ``limits`` on every operation of a document."""

    class LimitsRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            context: ValidationContext = self.context
            fragments = {
                d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }
            cost, depth = operation_cost(node, fragments)
            label = f"operation {node.name.value!r}" if node.name else "operation"
            if limits.max_complexity and cost > limits.max_complexity:
                self.report_error(
                    GraphQLError(
                        f"{label} has complexity {cost}, which exceeds the limit of {limits.max_complexity}",
                        node,
                        extensions={"code": "COMPLEXITY_LIMIT_EXCEEDED"},
                    )
                )
            if limits.max_depth and depth > limits.max_depth:
                self.report_error(
                    GraphQLError(
                        f"{label} has depth {depth}, which exceeds the limit of {limits.max_depth}",
                        node,
                        extensions={"code": "DEPTH_LIMIT_EXCEEDED"},
                    )
                )

    return LimitsRule

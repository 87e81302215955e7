"""The GraphQL API: upstream's schema (``api/schema.graphqls``) in strawberry, served at ``POST /query``.

Modules:

* `schema` — `Query`, `Mutation` and the `schema` object; `types` — object, input and enum types;
  `scalars` — ``Time``, ``Any``, ``NullableFloat`` and the string scalars;
* `resolvers` — root resolvers; `convert` — their pure logic; `services` — the Protocols of what they call
  (the `cc_core.db` repositories satisfy them as they are) and the request context; `loaders` —
  per-request batching;
* `engine` — cached parse/validation, limits (`limits`), execution, errors (`errors`);
  `execution`/`floats` — numeric series without per-element completion;
* `router` — `graphql_router()`, the Litestar routes.

Import cost matters (the CLI imports `cc_core`): nothing here is imported by `cc_core/__init__`.
"""

from cc_core.graphql.engine import GraphQLEngine, GraphQLResponse
from cc_core.graphql.limits import QueryLimits
from cc_core.graphql.router import graphql_router
from cc_core.graphql.schema import schema
from cc_core.graphql.services import GraphQLContext, GraphQLServices, GraphQLSettings

__all__ = [
    "GraphQLContext",
    "GraphQLEngine",
    "GraphQLResponse",
    "GraphQLServices",
    "GraphQLSettings",
    "QueryLimits",
    "graphql_router",
    "schema",
]

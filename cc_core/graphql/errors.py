"""Errors of the GraphQL API: which messages a client may see, and the GraphQL error objects sent.

A resolver refuses with one of the `GraphQLRequestError` subclasses; their message goes to the client
verbatim (with an ``extensions.code``). Database errors (`cc_core.db.errors.DBError`) are written to be
shown to the client as well. Anything else is a bug or an outage: it is logged with its traceback and the
client gets ``internal server error`` — unless the server runs with ``--dev``, where the original message
helps (upstream only hides panics unless ``DEBUG=1``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from graphql import GraphQLError

log = logging.getLogger("cc_core.graphql")

INTERNAL_MESSAGE = "internal server error (details are in the server log)"

# graphql-core's own completion messages describe the schema, not server internals: always shown.
_GRAPHQL_CORE_MESSAGES = (
    "Cannot return null for non-nullable field",
    "Expected Iterable",
    "Expected `",
    "Int cannot represent",
    "Float cannot represent",
    "String cannot represent",
    "Boolean cannot represent",
    "ID cannot represent",
    "Enum ",
)


class GraphQLRequestError(Exception):
    """A refusal whose message is meant for the client (shown verbatim)."""

    code = "BAD_REQUEST"


class InvalidInput(GraphQLRequestError, ValueError):
    """An argument that cannot be used (bad id, bad page, unknown node state query type, …)."""

    code = "BAD_USER_INPUT"


class Forbidden(GraphQLRequestError, PermissionError):
    """The user's roles do not allow this query or mutation (contract §6)."""

    code = "FORBIDDEN"


class NotFound(GraphQLRequestError, LookupError):
    code = "NOT_FOUND"


class TooManyJobs(GraphQLRequestError):
    """An analysis query matched more jobs than it may process (upstream: 500)."""

    code = "TOO_MANY_JOBS"


class ServiceUnavailable(GraphQLRequestError):
    """A service the query needs (database, metric store, archive) is not configured on this server."""

    code = "SERVICE_UNAVAILABLE"


def _is_db_error(exc: BaseException) -> bool:
    # Looked up, not imported: importing cc_core.db costs a second, and if it was never imported no
    # database error can exist.
    module = sys.modules.get("cc_core.db.errors")
    return module is not None and isinstance(exc, module.DBError)


def client_error_code(exc: BaseException) -> str | None:
    """The ``extensions.code`` for an error whose message may be shown, or None when it must be hidden."""
    if isinstance(exc, GraphQLRequestError):
        return exc.code
    if _is_db_error(exc):
        status = getattr(exc, "status_code", 500)
        return {400: "BAD_USER_INPUT", 403: "FORBIDDEN", 404: "NOT_FOUND", 422: "CONFLICT"}.get(
            status, "INTERNAL"
        )
    return None


def format_error(error: GraphQLError, *, dev: bool = False) -> dict[str, Any]:
    """The JSON object of one error: ``message``, ``locations``, ``path`` and ``extensions`` when set.

    Unexpected exceptions are logged here, once, with the field path, and their message replaced.
    """
    formatted = error.formatted
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return formatted
    code = client_error_code(original)
    if code is not None:
        formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
        return formatted
    if str(original).startswith(_GRAPHQL_CORE_MESSAGES):
        return formatted
    log.error(
        "GraphQL resolver failed at %s: %s",
        ".".join(map(str, error.path or ())) or "<operation>",
        original,
        exc_info=(type(original), original, original.__traceback__),
    )
    if not dev:
        formatted["message"] = INTERNAL_MESSAGE
    formatted["extensions"] = {"code": "INTERNAL"}
    return formatted

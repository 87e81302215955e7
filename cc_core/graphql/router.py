"""The HTTP side: ``POST /query`` (upstream's only GraphQL transport) and, with ``--dev``, GraphiQL.

``/query`` is in upstream's "secured" route group: a session cookie or an API token (any roles) is
required; without one the answer is 401 with the JSON error body of contract §0. Requests must be
``Content-Type: application/json`` like gqlgen's POST transport — which also keeps cross-site form posts
(no CORS preflight) out.

GraphiQL is served at ``/playground`` (upstream's path for its playground) only when the server runs with
``--dev``. It loads React and GraphiQL from ``/static/vendor/graphiql/`` — files the asset build copies
from the pinned npm packages — so it works offline and no page of ours ever loads code from a CDN.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.exceptions import NotAuthorizedException

from cc_core.auth.user import User
from cc_core.graphql.engine import GraphQLEngine
from cc_core.graphql.execution import encode_response
from cc_core.graphql.limits import QueryLimits
from cc_core.graphql.services import GraphQLContext, GraphQLServices

__all__ = ["GRAPHIQL_ASSETS", "GraphQLRequest", "graphiql_page", "graphql_router"]

Authenticate = Callable[[Request[Any, Any, Any]], "User | Awaitable[User]"]
ServicesProvider = GraphQLServices | Callable[[Request[Any, Any, Any]], GraphQLServices]

# Files under web/vendor/graphiql/ (see the npm packages named in `graphiql_page`'s docstring).
GRAPHIQL_ASSETS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
)


class GraphQLRequest(msgspec.Struct):
    """The POST body: ``{"query", "variables"?, "operationName"?, "extensions"?}``."""

    query: str = ""
    variables: dict[str, Any] | None = None
    operationName: str | None = None  # the wire name
    extensions: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(GraphQLRequest)


def _error_response(status: int, message: str, code: str) -> Response[bytes]:
    body = encode_response(None, [{"message": message, "extensions": {"code": code}}])
    return Response(content=body, status_code=status, media_type=MediaType.JSON)


async def default_authenticate(request: Request[Any, Any, Any]) -> User:
    """The user the app's route-group guard resolved (``scope["cc_user"]``), else an API token first and
    then the login session (`cc_core.api.auth.secured_user`), as upstream's ``/query``.

    A token with any roles is enough here (the resolvers apply the role rules), unlike ``/api`` which
    requires the ``api`` role.
    """
    user = request.scope.get("cc_user")  # type: ignore[typeddict-item]
    if isinstance(user, User):
        return user
    if request.app.state.get("token_auth") is None:
        raise NotAuthorizedException("authentication required: log in, or send an API token")
    from cc_core.api.auth import secured_user

    return await secured_user(request)


def _services_from_state(request: Request[Any, Any, Any]) -> GraphQLServices:
    services = request.app.state.get("graphql_services")
    return services if isinstance(services, GraphQLServices) else GraphQLServices()


def graphql_router(
    *,
    dev: bool = False,
    services: ServicesProvider | None = None,
    authenticate: Authenticate | None = None,
    limits: QueryLimits | None = None,
    engine: GraphQLEngine | None = None,
    path: str = "/",
) -> Router:
    """A Litestar router with ``POST /query`` (and ``GET /playground`` when ``dev``).

    ``services``: the `GraphQLServices` of this server, or a callable returning them per request;
    default: ``app.state["graphql_services"]`` (all services absent when unset, so each query says what
    is not configured). ``authenticate``: returns the request's `User` or raises
    `NotAuthorizedException`; default `default_authenticate`.
    """
    engine = engine or GraphQLEngine(limits=limits, dev=dev)
    auth = authenticate or default_authenticate
    if services is None:
        get_services: Callable[[Request[Any, Any, Any]], GraphQLServices] = _services_from_state
    elif isinstance(services, GraphQLServices):
        fixed = services

        def get_services(_request: Request[Any, Any, Any]) -> GraphQLServices:
            return fixed

    else:
        get_services = services

    @post("/query", status_code=200, include_in_schema=False)
    async def graphql_query(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Execute one GraphQL operation (JSON body ``{query, variables, operationName}``)."""
        user = auth(request)
        if inspect.isawaitable(user):
            user = await user
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            return _error_response(
                415, "the request body must be JSON (Content-Type: application/json)", "BAD_REQUEST"
            )
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError as e:
            return _error_response(400, f"json request body could not be decoded: {e}", "BAD_REQUEST")
        context = GraphQLContext(user=user, services=get_services(request), dev=dev, request=request)
        result = await engine.execute(body.query, body.variables, body.operationName, context)
        return Response(content=result.body, status_code=result.status_code, media_type=MediaType.JSON)

    handlers: list[Any] = [graphql_query]
    if dev:
        # Public like upstream's playground: the page is static, every query it sends is authenticated.
        @get(
            "/playground",
            include_in_schema=False,
            media_type=MediaType.HTML,
            sync_to_thread=False,
            opt={"auth_group": "public"},
        )
        def graphiql() -> str:
            """GraphiQL for this server (development mode only)."""
            return graphiql_page()

        handlers.append(graphiql)
    return Router(path=path, route_handlers=handlers)


def graphiql_page(assets: str = "/static/vendor/graphiql", endpoint: str = "/query") -> str:
    """The GraphiQL page; its scripts and styles come from ``assets`` on this server.

    The files come from the npm packages ``graphiql@3.9.0`` (``graphiql.min.js``, ``graphiql.min.css``),
    ``react@18.3.1`` (``umd/react.production.min.js``) and ``react-dom@18.3.1``
    (``umd/react-dom.production.min.js``): GraphiQL 3 is the last release with a browser (UMD) build,
    which needs no bundler. Without them (assets not built) the page says how to build them.
    """
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GraphiQL · ClusterCockpit</title>
<link rel="stylesheet" href="{assets}/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">GraphiQL is loading. If this stays, its files are missing from {assets}/:
build the web assets with <code>make assets</code>.</div>
<script src="{assets}/react.production.min.js"></script>
<script src="{assets}/react-dom.production.min.js"></script>
<script src="{assets}/graphiql.min.js"></script>
<script>
(function () {{
  if (!window.GraphiQL || !window.React || !window.ReactDOM) return;
  const fetcher = GraphiQL.createFetcher({{ url: {msgspec.json.encode(endpoint).decode()} }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{ fetcher: fetcher, isHeadersEditorEnabled: true }})
  );
}})();
</script>
</body>
</html>
"""

"""A lean path for ``POST /api/write``: the accepted request without Litestar's per-request machinery.

A collector posts one host's metrics (~660 lines, ~60 KB) every interval; parsing and storing them takes
~0.5 ms, and Litestar's request path around the handler (routing, the connection and request objects,
the group guard, the route guard, kwargs, the response object, the exception wrapper) added 0.2–0.4 ms
more. `FastWrite` sits in front of the app's ASGI handler (inside `Litestar.__call__`, so the
``before_send`` hooks — security headers — still apply to what it sends) and answers the *accepted*
request itself. It makes the same checks with the same code:

* the route group's rule through the app guard's own `authenticate_group` (token, roles, whatever
  the metric-store group requires) and the route guard's `metric_store_roles_ok`;
* the body size against the app's ``request_max_body_size`` (announced and streamed);
* the body through the same ``ingest``.

Anything else — no or a bad token, a missing role, a body over the limit, a malformed line, a query
string other than one ``cluster``, a CORS or cross-site request, a store that is not running, any
unexpected error — is handed to the regular Litestar route with the already-received body replayed, so
every 401/403/413/400/503 answer is produced by the one code path that the rest of the API uses. (A
rejected body stores nothing, so parsing it a second time there cannot store anything twice.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.plugins import InitPluginProtocol

from cc_core.api.auth import AuthGroup, authenticate_group, metric_store_roles_ok

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

PATHS = frozenset(("/api/write", "/api/write/"))
_THREAD_THRESHOLD = 256 * 1024  # as the Litestar handler: big bodies are parsed in a worker thread
# Requests with these headers go the regular way (CORS answers, the cross-site check, encodings).
_DELEGATE_HEADERS = frozenset((b"origin", b"sec-fetch-site", b"content-encoding", b"transfer-encoding"))
_OK_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"0")]


class FastWrite:
    """ASGI wrapper: ``POST /api/write`` accepted here, everything else passed to ``inner``."""

    def __init__(self, inner: ASGIApp, app: Any, get_store: Callable[[], Any], max_body: int | None) -> None:
        self.inner = inner
        self.app = app
        self.get_store = get_store
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS:
            await self.inner(scope, receive, send)
            return
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                    break
            elif name in _DELEGATE_HEADERS:
                length = -1
                break
        cluster = _cluster(scope.get("query_string", b""))
        store = self.get_store()
        if (
            length < 0
            or (self.max_body is not None and length > self.max_body)
            or cluster is False
            or store is None
            or store.engine is None
            or not await self._authorised(scope)
        ):
            await self.inner(scope, receive, send)
            return
        received: list[Any] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":  # disconnect: let the regular path deal with it
                await self.inner(scope, _replay(received, receive), send)
                return
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                if self.max_body is not None and size > self.max_body:
                    await self.inner(scope, _replay(received, receive), send)
                    return
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if len(body) > _THREAD_THRESHOLD:
                await asyncio.to_thread(store.ingest, body, cluster)
            else:
                store.ingest(body, cluster)
        except Exception:  # a bad line (400: nothing was stored), a store error: the route answers
            # (should an error come after samples were stored, storing them again writes the same
            # values to the same slots, and a replayed WAL does the same)
            await self.inner(scope, _replay(received, receive), send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
        await send({"type": "http.response.body", "body": b""})

    async def _authorised(self, scope: Any) -> bool:
        """What the route's guards decide: the metric-store route group's rule (`authenticate_group`,
        the app-wide guard) and the route's own `metric_store_roles_ok`. False means "let the guards
        answer" (401/403)."""
        try:
            user = await authenticate_group(ASGIConnection(scope), AuthGroup.METRIC_STORE)
        except Exception:
            return False
        return user is not None and bool(metric_store_roles_ok(user))


def _cluster(query: bytes) -> str | bool | None:
    """The ``cluster`` query parameter (None when absent or empty); False for anything else in the
    query string, which the regular route then interprets."""
    if not query:
        return None
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    if len(pairs) != 1 or pairs[0][0] != "cluster":
        return False
    return pairs[0][1] or None


def _replay(received: list[Any], receive: Any) -> Any:
    """A ``receive`` that first returns the messages already taken, then reads on."""
    queue = list(received)

    async def replay() -> Any:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def install(app: Any, get_store: Callable[[], Any]) -> None:
    """Put `FastWrite` in front of ``app``'s ASGI handler (once; called at startup)."""
    if isinstance(app.asgi_handler, FastWrite):
        return
    max_body = getattr(app, "request_max_body_size", None)
    app.asgi_handler = FastWrite(app.asgi_handler, app, get_store, max_body)


class FastWritePlugin(InitPluginProtocol):
    """Installs `FastWrite` when the app starts (the ASGI handler exists only once the app is built)."""

    def __init__(self, get_store: Callable[[], Any]) -> None:
        self.get_store = get_store

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(self._install)
        return app_config

    def _install(self, app: Any) -> None:
        install(app, self.get_store)

"""Lean ASGI paths for the few requests that arrive all day: the accepted ones answered before Litestar.

Batch-system adapters call ``start_job`` for every job and collectors post metrics every interval. For
them Litestar's per-request machinery (middleware chain, routing, connection and request objects, kwargs,
the response object, the exception wrapper) costs as much as the work itself. `FastPaths` sits in front
of the app's ASGI handler (inside ``Litestar.__call__``, so the ``before_send`` hooks — the security
headers — still apply to what it sends). A `FastRoute` gets the request's scope and complete body and
either answers it or returns ``None``; the route makes the same checks with the same code as its
Litestar twin (the route group's `authenticate_group`, the strict decoder, the same service call).

Everything it does not answer — no or a bad token, a missing role, a body over the limit, a decoding
error, a rejected job, CORS and cross-site requests, content encodings, any unexpected error — goes to
the regular route with the already-received body replayed, so every error answer is produced by the one
code path the rest of the API uses. A fast route must therefore only return ``None`` or raise *before*
it changed anything (a rejected start inserts nothing; a rejected metric body stores nothing).
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

log = logging.getLogger(__name__)

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

# Requests with these headers go the regular way (CORS answers, the cross-site check, encodings).
_DELEGATE_HEADERS = frozenset((b"origin", b"sec-fetch-site", b"content-encoding", b"transfer-encoding"))


@dataclass(frozen=True, slots=True)
class FastAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class FastRoute(Protocol):
    """One endpoint's lean twin: the (method, path) pairs it serves and how it answers them."""

    methods: frozenset[str]
    paths: frozenset[str]

    async def answer(self, app: Any, scope: Any, body: bytes) -> FastAnswer | None:
        """The answer to an accepted request, or ``None`` (or an exception) to let the route answer.

        Must not have changed anything when it returns ``None`` or raises."""
        ...


class FastPaths:
    """ASGI wrapper: requests of a registered `FastRoute` are offered to it, everything else to ``inner``."""

    def __init__(self, inner: ASGIApp, app: Any, max_body: int | None) -> None:
        self.inner = inner
        self.app = app
        self.max_body = max_body
        self.routes: dict[tuple[str, str], FastRoute] = {}

    def add(self, route: FastRoute) -> None:
        for method in route.methods:
            for path in route.paths:
                self.routes[(method, path)] = route

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = (
            self.routes.get((scope.get("method", ""), scope.get("path", "")))
            if scope["type"] == "http"
            else None
        )
        if route is None or scope.get("root_path"):
            await self.inner(scope, receive, send)
            return
        length = _content_length(scope["headers"])
        if length < 0 or (self.max_body is not None and length > self.max_body):
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
            answer = await route.answer(self.app, scope, body)
        except Exception as e:  # the regular route answers (and says what was wrong)
            log.debug("fast path for %s %s declined: %r", scope["method"], scope["path"], e)
            answer = None
        if answer is None:
            await self.inner(scope, _replay(received, receive), send)
            return
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The announced body length; -1 when absent, malformed or the request must go the regular way."""
    length = -1
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
        elif name in _DELEGATE_HEADERS:
            return -1
    return length


def _replay(received: list[Any], receive: Any) -> Any:
    """A ``receive`` that first returns the messages already taken, then reads on."""
    queue = list(received)

    async def replay() -> Any:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def add_route(app: Any, route: FastRoute) -> None:
    """Serve ``route`` through the app's `FastPaths` (put in front of its ASGI handler on first use)."""
    handler = app.asgi_handler
    if not isinstance(handler, FastPaths):
        handler = FastPaths(handler, app, getattr(app, "request_max_body_size", None))
        app.asgi_handler = handler
    handler.add(route)


def json_answer(status: int, body: bytes, *, app: Any = None, scope: Any = None) -> FastAnswer:
    """A JSON answer with the headers Litestar sends for a serialised return value.

    With ``app`` and ``scope``: compressed as the app's gzip compression would (a client that accepts
    gzip, a body of at least its ``minimum_size``), for routes that do not opt out of it."""
    headers = [(b"content-type", b"application/json")]
    config = getattr(app, "compression_config", None) if app is not None else None
    if config is not None and scope is not None and len(body) >= config.minimum_size and _accepts_gzip(scope):
        buffer = io.BytesIO()
        with gzip.GzipFile(mode="wb", fileobj=buffer, compresslevel=config.gzip_compress_level) as f:
            f.write(body)
        body = buffer.getvalue()
        headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
    headers.append((b"content-length", str(len(body)).encode()))
    return FastAnswer(status, headers, body)


def _accepts_gzip(scope: Any) -> bool:
    """Litestar's own test (``gzip`` anywhere in ``Accept-Encoding``), so both paths compress alike."""
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"])


class FastPathPlugin(InitPluginProtocol):
    """Adds fast routes when the app starts (its ASGI handler exists only once the app is built)."""

    def __init__(self, *routes: FastRoute) -> None:
        self.routes = routes

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(self._install)
        return app_config

    def _install(self, app: Any) -> None:
        for route in self.routes:
            add_route(app, route)

"""``POST /api/write`` on the core's lean path (`cc_core.api.fastpath`): accepted bodies without Litestar.

A collector posts one host's metrics (~660 lines, ~60 KB) every interval; parsing and storing them takes
~0.5 ms, and Litestar's request path around the handler added 0.2–0.4 ms more. `FastWrite` answers the
*accepted* request itself, with the same checks and the same code as the route:

* the route group's rule through `authenticate_group` (token, roles, whatever the metric-store group
  requires) and the route guard's `metric_store_roles_ok`;
* the body size against the app's ``request_max_body_size`` (checked by `FastPaths`);
* the body through the same ``ingest``.

Anything else — no or a bad token, a missing role, a body over the limit, a malformed line, a query
string other than one ``cluster``, a CORS or cross-site request, a store that is not running, any
unexpected error — is answered by the regular route with the body replayed. (A rejected body stores
nothing, so parsing it a second time there cannot store anything twice; should an error come after
samples were stored, storing them again writes the same values to the same slots, as a replayed WAL does.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar.connection import ASGIConnection

from cc_core.api.auth import AuthGroup, authenticate_group, metric_store_roles_ok
from cc_core.api.fastpath import FastAnswer

_THREAD_THRESHOLD = 256 * 1024  # as the Litestar handler: big bodies are parsed in a worker thread
_OK = FastAnswer(200, [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"0")], b"")


class FastWrite:
    """The `cc_core.api.fastpath.FastRoute` of ``POST /api/write``."""

    methods = frozenset(("POST",))
    paths = frozenset(("/api/write", "/api/write/"))

    def __init__(self, get_store: Callable[[], Any]) -> None:
        self.get_store = get_store

    async def answer(self, app: Any, scope: Any, body: bytes) -> FastAnswer | None:
        cluster = _cluster(scope.get("query_string", b""))
        store = self.get_store()
        if cluster is False or store is None or store.engine is None:
            return None
        user = await authenticate_group(ASGIConnection(scope), AuthGroup.METRIC_STORE)
        if user is None or not metric_store_roles_ok(user):
            return None
        if len(body) > _THREAD_THRESHOLD:
            await asyncio.to_thread(store.ingest, body, cluster)
        else:
            store.ingest(body, cluster)
        return _OK


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

"""Testing a `cc_core.api.fastpath.FastRoute`: which of the two paths answered a request.

``counter = RouteCounter.install(app)`` puts a counter between the app's `FastPaths` and the regular
Litestar handler; ``answered_by(counter, route=True, fn)`` runs ``fn()`` (a request) and asserts that the
route answered it (``route=False``: the fast route did). See ``tests/api/test_fastpath.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cc_core.api.fastpath import FastPaths

T = TypeVar("T")


class RouteCounter:
    """Counts the HTTP requests that `FastPaths` hands to the regular Litestar handler."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    @classmethod
    def install(cls, app: Any) -> RouteCounter:
        handler = app.asgi_handler
        assert isinstance(handler, FastPaths), "the fast paths are installed when the app starts"
        counter = cls(handler.inner)
        handler.inner = counter
        return counter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.inner(scope, receive, send)


def answered_by(counter: RouteCounter, route: bool, fn: Callable[[], T]) -> T:
    """``fn()``, asserting that the regular route (``route=True``) or the fast route answered it."""
    before = counter.calls
    result = fn()
    expected = before + (1 if route else 0)
    assert counter.calls == expected, f"expected the {'regular route' if route else 'fast path'} to answer"
    return result

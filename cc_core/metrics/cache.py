"""An LRU cache with per-entry time-to-live and a byte budget, for loaded job data (upstream's
``lrucache``, 128 MB).

Entries are computed once even under concurrency: the first caller of a missing key computes it, later
callers of the same key await that computation (a job view asks for the same data from several
components at once). Failures are not cached. Sizes are what the caller says an entry costs (the
bytes of its numpy arrays); the least recently used entries go when the budget is exceeded, and expired
ones on access.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires: float


class TTLCache(Generic[V]):
    """See the module docstring. ``clock`` is injectable for tests."""

    def __init__(
        self, max_bytes: int = 128 * 1024 * 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        e = self._entries.get(key)
        if e is None:
            return None
        if e.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return e.value

    def put(self, key: Hashable, value: V, size: int, ttl: float) -> None:
        if size > self.max_bytes or ttl <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(value, size, self.clock() + ttl)
        self.bytes += size
        while self.bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        e = self._entries.pop(key)
        self.bytes -= e.size

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Drop every entry (or those whose key matches); returns how many."""
        keys = [k for k in self._entries if predicate is None or predicate(k)]
        for k in keys:
            self._drop(k)
        return len(keys)

    async def get_or_compute(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[tuple[V, int, float]]],
    ) -> V:
        """The cached value, or ``compute()`` → ``(value, size, ttl)`` stored and returned."""
        hit = self.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            value, size, ttl = await compute()
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._inflight.pop(key, None)
        self.put(key, value, size, ttl)
        fut.set_result(value)
        return value

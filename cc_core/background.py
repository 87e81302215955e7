"""Background work the server must finish before it exits (archiving, checkpoints, tagger runs).

Graceful shutdown drains this: new work is refused, running work gets ``timeout`` seconds, then it is
cancelled and what was cancelled is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class ShuttingDown(RuntimeError):
    """New background work was submitted after shutdown began."""


class BackgroundWork:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        if self._closing:
            coro.close()
            raise ShuttingDown("the server is shutting down")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 60.0) -> int:
        """Wait for running work; cancel what is left after ``timeout``. Returns how many were cancelled."""
        self._closing = True
        if not self._tasks:
            return 0
        log.info("waiting for %d background task(s) to finish", len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            log.warning("cancelling background task %s at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

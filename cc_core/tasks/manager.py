"""The task manager: runs the periodic services plugins register (upstream ``internal/taskmanager``,
contract §10).

A task is a class registered through the ``register_tasks`` hook (`cc_core.interfaces.Task`): a
``name``, ``cls.create(context)`` returning an instance or None when the configuration does not enable
it, a ``schedule`` (seconds or daily ``"HH:MM"``) and ``async run()``. The manager gives every enabled
task its own loop in the server's event loop: sleep until the next due time, claim it in the database
(`cc_core.tasks.lease`, so replicas run it once), run it, log the outcome and duration. A task that
raises is logged with its traceback and runs again at its next due time; no task can stop another.
A run still going when its next due time passes is not started twice: the loop waits for it and then
skips to the first due time after it ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cc_core.config import ConfigError
from cc_core.tasks.lease import TaskLease
from cc_core.tasks.schedule import Schedule, ScheduleError, format_seconds

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.db import Database
    from cc_core.interfaces import Task

log = logging.getLogger(__name__)

HISTORY = 20
# Clocks of replicas differ a little and sleeps end a little early or late: wake slightly after the
# due time, never before it.
WAKE_SLACK = 0.01


@dataclass(slots=True)
class RunResult:
    """One finished run: when, how long, ``ok`` or ``failed``, and the task's message or the error."""

    name: str
    started: float
    duration: float
    ok: bool
    message: str | None

    def describe(self) -> str:
        took = format_seconds(self.duration) if self.duration >= 1 else f"{self.duration * 1000:.0f} ms"
        state = "ok" if self.ok else "FAILED"
        return f"{state} in {took}" + (f": {self.message}" if self.message else "")


@dataclass
class ScheduledTask:
    task: Task
    schedule: Schedule
    plugin: str = ""
    history: deque[RunResult] = field(default_factory=lambda: deque(maxlen=HISTORY))
    runs: int = 0
    failures: int = 0
    skipped: int = 0  # due times another replica claimed

    @property
    def name(self) -> str:
        return self.task.name


def build_tasks(context: PluginContext) -> list[ScheduledTask]:
    """Instantiate every registered task the configuration enables, sorted by name.

    A task whose ``create`` raises `ConfigError` stops start-up (the configuration is wrong and says
    where); any other exception is logged and only that task is left out.
    """
    out: list[ScheduledTask] = []
    for name, cls in sorted(context.registry.classes("task").items()):
        reg = context.registry.get("task", name)
        plugin = reg.distribution if reg is not None else ""
        try:
            task = cls.create(context)
        except ConfigError:
            raise
        except Exception:
            log.exception("task %s (%s): cannot be created; it will not run", name, plugin)
            continue
        if task is None:
            log.debug("task %s: not enabled by the configuration", name)
            continue
        try:
            schedule = Schedule.parse(task.schedule)
        except ScheduleError as e:
            log.error("task %s (%s): %s; it will not run", name, plugin, e)
            continue
        out.append(ScheduledTask(task, schedule, plugin))
    return out


class TaskManager:
    """Runs `ScheduledTask` s until `stop`; see the module docstring."""

    def __init__(
        self, tasks: Sequence[ScheduledTask], db: Database | None, *, holder: str | None = None
    ) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.lease = TaskLease(db, holder) if db is not None else None
        self._loops: list[asyncio.Task[None]] = []
        self._stopping: asyncio.Event | None = None  # created in start, inside the running loop
        self.clock = time.time

    @classmethod
    def from_context(cls, context: PluginContext) -> TaskManager:
        return cls(build_tasks(context), context.services.get("db"))

    # ------------------------------------------------------------------------------ running

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        for st in self.tasks.values():
            log.info("task %s: scheduled %s", st.name, st.schedule.describe())
            self._loops.append(asyncio.create_task(self._loop(st), name=f"task:{st.name}"))
        if self.tasks:
            log.info("task manager started with %d task(s)", len(self.tasks))

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling; give runs in progress ``timeout`` seconds, then cancel them."""
        if self._stopping is not None:
            self._stopping.set()
        if not self._loops:
            return
        _, pending = await asyncio.wait(self._loops, timeout=timeout)
        for t in pending:
            log.warning("task manager: cancelling %s at shutdown", t.get_name())
            t.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()

    async def _sleep_until(self, due: float) -> bool:
        """Sleep until ``due``; False when the manager is stopping."""
        assert self._stopping is not None
        delay = due - self.clock() + WAKE_SLACK
        if delay > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return False
            except TimeoutError:
                pass
        return not self._stopping.is_set()

    async def _loop(self, st: ScheduledTask) -> None:
        while True:
            due = st.schedule.next_due(self.clock())
            if not await self._sleep_until(due):
                return
            try:
                won = self.lease is None or await self.lease.claim(st.name, due)
            except Exception as e:  # the database is away: try again at the next due time
                log.error("task %s: cannot claim the run due at %.0f: %s", st.name, due, e)
                continue
            if not won:
                st.skipped += 1
                log.debug("task %s: run due at %.3f is another replica's", st.name, due)
                continue
            await self.run_task(st, record_claimed=True)

    async def run_task(self, st: ScheduledTask, *, record_claimed: bool = False) -> RunResult:
        """Run one task now, log and record the outcome; never raises (except on cancellation)."""
        started = self.clock()
        t0 = time.perf_counter()
        log.info("task %s: started", st.name)
        try:
            message = await st.task.run()
            ok = True
        except asyncio.CancelledError:
            log.warning("task %s: cancelled after %.1f s", st.name, time.perf_counter() - t0)
            raise
        except Exception as e:
            ok = False
            message = f"{type(e).__name__}: {e}"
            log.exception("task %s: failed after %.2f s", st.name, time.perf_counter() - t0)
        result = RunResult(st.name, started, time.perf_counter() - t0, ok, message)
        st.runs += 1
        st.failures += 0 if ok else 1
        st.history.append(result)
        if ok:
            log.info("task %s: %s", st.name, result.describe())
        if self.lease is not None:
            try:
                await self.lease.record(
                    st.name,
                    started=started,
                    duration=result.duration,
                    outcome="ok" if ok else "failed",
                    message=message,
                )
            except Exception as e:
                log.warning("task %s: cannot record the outcome: %s", st.name, e)
        return result

    async def run_now(self, name: str) -> RunResult:
        """Run the task ``name`` by hand (``clustercockpit tasks run``); KeyError when unknown."""
        return await self.run_task(self.tasks[name])

    def describe(self) -> list[dict[str, Any]]:
        """Name, schedule, next due time and counters of each task (for ``tasks list`` and the UI)."""
        now = self.clock()
        return [
            {
                "name": st.name,
                "plugin": st.plugin,
                "schedule": st.schedule.describe(),
                "next": st.schedule.next_due(now),
                "runs": st.runs,
                "failures": st.failures,
                "last": st.history[-1].describe() if st.history else None,
            }
            for st in self.tasks.values()
        ]

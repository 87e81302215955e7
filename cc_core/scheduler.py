"""Batch-system integrations in the server: the `JobEventSink` they feed, and the service that runs them.

`LifecycleSink` is the one implementation of `cc_core.interfaces.JobEventSink`: its methods are the
REST API's start_job, stop_job and nodestate (`cc_core.lifecycle`, `cc_core.api.nodestate`), so a job a
scheduler plugin reports goes through the same checks, duplicate detection and archiving as one posted
by cc-slurm-adapter. Errors are the same typed `cc_core.db.errors` exceptions (a duplicate start is
`DuplicateJobError`), which a plugin catches to stay restart-safe.

`SchedulerService` runs each configured scheduler (``schedulers[]`` in ``config.json``) as a background
task of the app's lifespan: ``await instance.run(sink)``; a scheduler that crashes or returns is logged
and restarted after a pause that doubles up to `BACKOFF_MAX` (reset once it has run for a while);
shutdown cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.db.errors import InvalidInputError

if TYPE_CHECKING:
    from cc_core.config import Config
    from cc_core.context import PluginContext
    from cc_core.interfaces import Scheduler
    from cc_core.plugins import PluginRegistry
    from cc_core.schema.job import Job
    from cc_core.services import CoreServices

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 300.0
# A scheduler that ran this long before failing is restarted after BACKOFF_INITIAL again.
HEALTHY_AFTER = 60.0


class LifecycleSink:
    """`JobEventSink` over the lifecycle functions the REST API uses."""

    def __init__(self, services: CoreServices) -> None:
        self.services = services

    async def start_job(self, job: Job) -> int:
        """Check and insert a running job (as ``POST /api/jobs/start_job/``); returns its database id."""
        from cc_core.lifecycle import start_job

        stored = await start_job(self.services, job, None)
        assert stored.id is not None
        log.info(
            "new job (id %d): cluster=%s jobId=%d user=%s start=%d (scheduler)",
            stored.id,
            stored.cluster,
            stored.job_id,
            stored.user,
            stored.start_time,
        )
        return stored.id

    async def stop_job(
        self, job_id: int, cluster: str, start_time: int | None, state: str, stop_time: int
    ) -> None:
        """Stop the running job and queue it for archiving (as ``POST /api/jobs/stop_job/``)."""
        from cc_core.lifecycle import stop_job

        job = await stop_job(
            self.services, job_id, stop_time=stop_time, state=state, cluster=cluster, start_time=start_time
        )
        log.info("job stopped (id %s): cluster=%s jobId=%d state=%s", job.id, cluster, job_id, job.job_state)

    async def update_node_states(self, cluster: str, nodes: Sequence[Mapping[str, Any]]) -> None:
        """Store node states (as ``POST /api/nodestate/``); ``nodes`` are cc-lib ``NodePayload`` objects
        (camelCase keys). A malformed node or an unknown cluster is `InvalidInputError`."""
        from cc_core.api.errors import APIError
        from cc_core.api.nodestate import NodePayload, update_node_states

        try:
            payload = msgspec.convert(list(nodes), list[NodePayload])
        except msgspec.ValidationError as e:
            raise InvalidInputError(f"node states: {e}") from None
        try:
            stored, skipped = await update_node_states(self.services, cluster, payload)
        except APIError as e:
            raise InvalidInputError(str(e.detail)) from None
        if skipped:
            log.debug("node states of %s: %d host(s) match no subcluster", cluster, len(skipped))
        log.debug("node states of %s: stored %d", cluster, stored)

    async def running_jobs(self, cluster: str) -> list[Job]:
        """The cluster's running jobs as the database has them (what a scheduler reconciles with)."""
        return await self.services.db.jobs.running(cluster)


def build_schedulers(
    config: Config, registry: PluginRegistry, context: PluginContext
) -> list[tuple[str, Any]]:
    """One instance per ``schedulers[]`` entry, as ``(json path, instance)`` (config already validated)."""
    out = []
    for i, entry in enumerate(config.schedulers):
        path = f"$.schedulers[{i}]"
        cls = registry.resolve("scheduler", entry["kind"], path=f"{path}.kind", file=config.source)
        out.append((path, cls(context.section(path), context)))
    return out


@dataclass
class _Supervised:
    name: str
    instance: Scheduler
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    last_error: str | None = None


@dataclass
class SchedulerService:
    """Runs the schedulers as supervised background tasks (see the module docstring)."""

    schedulers: list[tuple[str, Any]]
    sink: Any
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX
    healthy_after: float = HEALTHY_AFTER
    _running: list[_Supervised] = field(default_factory=list)

    def start(self) -> None:
        for name, instance in self.schedulers:
            sup = _Supervised(f"{name} ({instance.kind})", instance)
            sup.task = asyncio.get_running_loop().create_task(self._supervise(sup), name=f"scheduler {name}")
            self._running.append(sup)
            log.info("scheduler %s started", sup.name)

    def status(self) -> list[dict[str, Any]]:
        """Per scheduler: name, whether it runs, how often it was restarted, the last error."""
        return [
            {
                "name": s.name,
                "running": s.task is not None and not s.task.done(),
                "restarts": s.restarts,
                "lastError": s.last_error,
            }
            for s in self._running
        ]

    async def _supervise(self, sup: _Supervised) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff_initial
        while True:
            began = loop.time()
            try:
                await sup.instance.run(self.sink)
                sup.last_error = "run() returned"
                log.warning("scheduler %s returned; restarting it in %g s", sup.name, delay)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                sup.last_error = f"{type(e).__name__}: {e}"
                log.error("scheduler %s crashed; restarting it in %g s", sup.name, delay, exc_info=e)
            if loop.time() - began >= self.healthy_after:
                delay = self.backoff_initial
            sup.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def stop(self) -> None:
        """Cancel every scheduler and wait for them; then call their optional ``close()``."""
        tasks = [s.task for s in self._running if s.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for sup in self._running:
            closer = getattr(sup.instance, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception as e:
                    log.warning("scheduler %s: close() failed: %s", sup.name, e)
            log.info("scheduler %s stopped", sup.name)
        self._running.clear()

"""Tasks on running jobs: stored duration, live footprint, and failing jobs far past their walltime."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

from cc_core.config import parse_duration
from cc_core.tasks.builtin import SECTION_CRON, SECTION_WALLTIME

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema.cluster import Cluster
    from cc_core.schema.job import Job

log = logging.getLogger(__name__)

# Upstream's FindRunningJobs skips jobs shorter than this (repository MinRunningJobDuration): their
# statistics would say little, and the footprint worker would mostly query empty ranges.
MIN_RUNNING_SECONDS = 600


def _interval(context: PluginContext, key: str, default: str) -> float:
    cron = context.section(SECTION_CRON)
    return parse_duration(getattr(cron, key, default) if cron is not None else default)


class UpdateDuration:
    """Store ``now - start_time`` as the duration of every running job (upstream ``duration-worker``)."""

    name: ClassVar[str] = "update-duration"

    def __init__(self, context: PluginContext, interval: float) -> None:
        self.db = context.services["db"]
        self.interval = interval

    @classmethod
    def create(cls, context: PluginContext) -> UpdateDuration | None:
        interval = _interval(context, "duration_worker", "5m")
        return cls(context, interval) if interval > 0 else None

    @property
    def schedule(self) -> float:
        return self.interval

    async def run(self) -> str:
        n = await self.db.jobs.update_running_durations()
        return f"duration of {n} running job(s) updated"


class UpdateFootprint:
    """Recompute footprint and energy of running jobs from their metric backend (upstream
    ``footprint-worker``), so lists and filters show live values before a job is archived.

    Per job the node statistics over its run so far are combined as the archiver does (avg = Σ / nodes,
    min of minimums — upstream starts its minimum at 0 —, max of maximums, two decimals), then footprint,
    energy footprint and energy are stored in one UPDATE. A job whose statistics cannot be loaded is
    counted and skipped.
    """

    name: ClassVar[str] = "update-footprint"

    def __init__(self, context: PluginContext, interval: float) -> None:
        self.services = context.services
        self.interval = interval

    @classmethod
    def create(cls, context: PluginContext) -> UpdateFootprint | None:
        interval = _interval(context, "footprint_worker", "10m")
        if interval <= 0 or context.services.get("metrics") is None:
            return None
        return cls(context, interval)

    @property
    def schedule(self) -> float:
        return self.interval

    async def run(self) -> str:
        db, metrics, clusters = self.services["db"], self.services["metrics"], self.services["clusters"]
        from cc_core.metrics.errors import NoMetricBackend

        seen = updated = failed = no_backend = 0
        for cluster in clusters.clusters():
            jobs = await db.jobs.running(cluster.name, min_running=MIN_RUNNING_SECONDS)
            try:
                for sub in {j.sub_cluster for j in jobs}:
                    metrics.backend_for(cluster.name, sub)
            except NoMetricBackend:
                no_backend += len(jobs)
                continue
            for job in jobs:
                seen += 1
                try:
                    await self._update(db, metrics, cluster, job)
                    updated += 1
                except Exception as e:
                    failed += 1
                    log.warning("footprint of job %s (%s): %s", job.job_id, job.cluster, e)
        text = f"footprints of {updated} of {seen} running job(s) updated"
        text += f", {failed} failed" if failed else ""
        return text + (f"; {no_backend} job(s) on clusters without a metric backend" if no_backend else "")

    @staticmethod
    async def _update(db: Any, metrics: Any, cluster: Cluster, job: Job) -> None:
        from cc_core.metrics.archiver import compute_energy, compute_footprint
        from cc_core.schema.job import JobStatistics
        from cc_core.schema.units import Unit

        names = [mc.name for mc in cluster.metric_config]
        units = {mc.name: mc.unit for mc in cluster.metric_config}
        raw = await metrics.load_job_stats(job, names)
        stats: dict[str, JobStatistics] = {}
        for name, st in raw.items():
            unit = units.get(name)
            stats[name] = JobStatistics(
                unit=Unit(base=unit.base, prefix=unit.prefix) if unit is not None else Unit(base=""),
                avg=_finite(st.avg),
                min=_finite(st.min),
                max=_finite(st.max),
            )
        footprint = compute_footprint(cluster, job, stats)
        energy_fp, energy = compute_energy(cluster, job, stats)
        assert job.id is not None
        await db.jobs.update_footprint(job.id, footprint=footprint, energy_footprint=energy_fp, energy=energy)


def _finite(value: float | None) -> float:
    """Two decimals; a missing or NaN statistic is 0 (JSON has no NaN, and upstream writes 0)."""
    if value is None or not math.isfinite(value):
        return 0.0
    return round(float(value), 2)


class StopJobsExceedingWalltime:
    """Mark running jobs failed once they are ``main.stop-jobs-exceeding-walltime`` seconds past their
    walltime (upstream: daily at 03:00; jobs without walltime are never touched).

    They get state ``failed`` and monitoring status 2 (not archived) as upstream; the stored duration
    is how long they ran (upstream writes 0, which makes them look like they never ran).
    """

    name: ClassVar[str] = "stop-jobs-exceeding-walltime"

    def __init__(self, context: PluginContext, grace: int) -> None:
        self.db = context.services["db"]
        self.grace = grace

    @classmethod
    def create(cls, context: PluginContext) -> StopJobsExceedingWalltime | None:
        grace = context.section(SECTION_WALLTIME) or 0
        return cls(context, int(grace)) if grace > 0 else None

    @property
    def schedule(self) -> str:
        return "03:00"

    async def run(self) -> str:
        n = await self.db.jobs.stop_exceeding_walltime(self.grace)
        return f"{n} job(s) running {self.grace} s past their walltime marked failed"

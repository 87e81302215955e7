"""Whole-archive operations behind ``clustercockpit archive``: count, validate, copy, remove.

They work on any `ArchiveBackend` (file ↔ S3 ↔ third-party), report per-job problems with the job's
path instead of stopping, and call an optional ``progress`` callback after every job so the CLI can draw
a progress bar with rate and ETA.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cc_core.archive.backend import ArchiveBase
from cc_core.archive.errors import ArchiveError, ClusterNotFoundError
from cc_core.archive.layout import job_dir_of
from cc_core.interfaces import ArchivedJob

if TYPE_CHECKING:
    from cc_core.interfaces import ArchiveBackend
    from cc_core.schema.job import Job


@dataclass
class Tally:
    """Counts and per-job errors of a whole-archive operation."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def fail(self, message: str) -> None:
        self.failed += 1
        self.errors.append(message)


Progress = Callable[[Tally], None] | None


async def count_jobs(backend: ArchiveBackend, cluster: str | None = None) -> int:
    """Number of jobs, from directory listings only where the backend allows it."""
    n = 0
    if isinstance(backend, ArchiveBase):
        async for _ in backend.job_locations(cluster):
            n += 1
    else:
        async for _ in backend.iter_jobs(cluster=cluster):
            n += 1
    return n


# ---------------------------------------------------------------------------------------- validate


async def validate_archive(
    backend: ArchiveBackend, *, cluster: str | None = None, progress: Progress = None
) -> Tally:
    """Decode every cluster config and every job's meta and data (schema-validated if
    ``backend.validate``); check that each job sits in the directory its meta.json names."""
    tally = Tally()
    clusters = [cluster] if cluster else await backend.get_clusters()
    for name in clusters:
        try:
            (await backend.load_cluster_config(name)).derive(source=f"{name}/cluster.json")
        except (ArchiveError, ValueError) as e:
            tally.errors.append(str(e))
    async for job in backend.iter_jobs(load_data=True, cluster=cluster):
        problem = _job_problem(job)
        if problem:
            tally.fail(problem)
        else:
            tally.done += 1
        if progress:
            progress(tally)
    return tally


def _job_problem(job: ArchivedJob) -> str | None:
    if job.error:
        return job.error
    if job.meta is None:
        return f"{job.path}: no meta data"
    expected = job_dir_of(job.meta)
    if not job.path.replace("\\", "/").endswith(expected):
        return (
            f"{job.path}: meta.json describes job {job.meta.job_id} of {job.meta.cluster} started at "
            f"{job.meta.start_time}, which belongs in {expected}"
        )
    return None


# ---------------------------------------------------------------------------------------- copy


async def copy_archive(
    src: ArchiveBackend,
    dst: ArchiveBackend,
    *,
    workers: int = 8,
    cluster: str | None = None,
    progress: Progress = None,
) -> Tally:
    """Copy cluster configs and jobs (files byte for byte); jobs already in ``dst`` are skipped, so an
    interrupted copy resumes where it stopped. ``done`` counts copied jobs."""
    tally = Tally()
    for name in [cluster] if cluster else await src.get_clusters():
        try:
            await dst.store_cluster_config(await src.load_cluster_config(name), name=name)
        except ClusterNotFoundError as e:
            tally.errors.append(f"{e} (jobs are copied anyway)")

    sem = asyncio.Semaphore(max(1, workers))

    async def one(meta: Job, path: str) -> None:
        async with sem:
            try:
                if await dst.exists(meta):
                    tally.skipped += 1
                else:
                    raw = await src.read_job_raw(meta)
                    if raw.data is None:
                        tally.fail(f"{path}: job directory without data.json or data.json.gz; not copied")
                    else:
                        await dst.write_job_raw(raw)
                        tally.done += 1
            except ArchiveError as e:
                tally.fail(str(e))
        if progress:
            progress(tally)

    pending: set[asyncio.Task[None]] = set()
    async for job in src.iter_jobs(cluster=cluster):
        if job.meta is None:
            tally.fail(job.error or f"{job.path}: unreadable")
            if progress:
                progress(tally)
            continue
        pending.add(asyncio.ensure_future(one(job.meta, job.path)))
        if len(pending) >= 4 * max(1, workers):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.gather(*pending)
    return tally


# ---------------------------------------------------------------------------------------- remove


async def count_in_range(
    backend: ArchiveBackend, before: int = 0, after: int = 0, cluster: str | None = None
) -> int:
    """How many jobs `ArchiveBackend.clean` with the same arguments would remove."""

    def hit(start: int) -> bool:
        return start < before or (after > 0 and start > after)

    n = 0
    if isinstance(backend, ArchiveBase):
        async for loc in backend.job_locations(cluster):
            n += hit(loc.start_time)
    else:
        async for j in backend.iter_jobs(cluster=cluster):
            n += bool(j.meta and hit(j.meta.start_time))
    return n

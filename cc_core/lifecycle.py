"""Job lifecycle operations shared by every way a batch system reports jobs: the REST API (start_job,
stop_job), and later the NATS subjects and scheduler plugins (`cc_core.interfaces.JobEventSink`).

`sanity_checks` is upstream's `importer.SanityChecks` plus the integer ranges Go's decoder enforces by
its types (a Python int is unbounded; a value beyond SQLite's 64 bits would otherwise fail deep in the
database layer). `start_job` inserts the job visible at once and returns it with its database id;
`stop_job` marks it stopped and queues it for archiving unless monitoring is disabled.
`sync_archive_meta` rewrites ``meta.json`` of an archived job after a tag or metadata edit, as
upstream's ``UpdateTags``/``UpdateMetadata`` do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.db.errors import InvalidInputError
from cc_core.schema.job import JOB_STATES, MonitoringStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cc_core.auth.user import User
    from cc_core.schema.job import Job
    from cc_core.services import CoreServices

log = logging.getLogger(__name__)

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
# Go's field types in cc-lib `schema.Job` (int32 where the struct says so, int64 otherwise).
_JOB_INT_FIELDS: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("job_id", "jobId", INT64),
    ("start_time", "startTime", INT64),
    ("submit_time", "submitTime", INT64),
    ("array_job_id", "arrayJobId", INT64),
    ("walltime", "walltime", INT64),
    ("requested_memory", "requestedMemory", INT64),
    ("num_nodes", "numNodes", INT32),
    ("num_hwthreads", "numHwthreads", INT32),
    ("num_acc", "numAcc", INT32),
    ("smt", "smt", INT32),
    ("duration", "duration", INT32),
)


def check_range(value: int, name: str, bounds: tuple[int, int] = INT64) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidInputError(f"{name} {value} is out of range")
    return value


def sanity_checks(job: Job, clusters: Any) -> Job:
    """Upstream's checks for a job to start; returns the job with its subcluster assigned.

    Raises `InvalidInputError` (400) naming the first problem: unknown cluster; subcluster (the named
    one must exist, else the one whose node list has the first host, else a ``*`` subcluster); invalid
    state; empty ``resources`` or ``user``; ``numNodes < 1``, ``numAcc < 0``, ``numHwthreads < 0``;
    ``len(resources) != numNodes``; integers outside Go's types.
    """
    for attr, name, bounds in _JOB_INT_FIELDS:
        value = getattr(job, attr)
        if not bounds[0] <= value <= bounds[1]:
            raise InvalidInputError(f"{name} {value} is out of range")
    for r in job.resources:
        if r.hwthreads and not (INT32[0] <= min(r.hwthreads) and max(r.hwthreads) <= INT32[1]):
            bad = next(hw for hw in r.hwthreads if not INT32[0] <= hw <= INT32[1])
            raise InvalidInputError(f"resources.hwthreads {bad} is out of range")
    cluster = clusters.cluster(job.cluster) if job.cluster else None
    if cluster is None:
        raise InvalidInputError(f"no such cluster: {job.cluster!r}")
    try:
        sub = cluster.assign_subcluster(job)
    except ValueError as e:
        raise InvalidInputError(str(e)) from None
    if job.job_state not in JOB_STATES:
        raise InvalidInputError(f"not a valid job state: {job.job_state!r}")
    if not job.resources or not job.user:
        raise InvalidInputError("'resources' and 'user' should not be empty")
    if job.num_acc < 0 or job.num_hwthreads < 0 or job.num_nodes < 1:
        raise InvalidInputError("'numNodes', 'numAcc' or 'numHwthreads' invalid")
    if len(job.resources) != job.num_nodes:
        raise InvalidInputError(
            f"len(resources) does not equal numNodes ({len(job.resources)} vs {job.num_nodes})"
        )
    return msgspec.structs.replace(job, sub_cluster=sub) if sub != job.sub_cluster else job


async def start_job(services: CoreServices, job: Job, user: User | None) -> Job:
    """Check and insert a running job; the stored job (with ``id``) is returned and visible at once.

    The state is forced to ``running`` and any client-sent ``id`` ignored (upstream); tags in the job
    are attached with ``user``'s scope rights. A job with the same jobId and cluster that started less
    than 24 h before is a `cc_core.db.DuplicateJobError` (422). With ``main.enable-job-taggers`` the
    start taggers then run in the background (`cc_core.taggers.service`).
    """
    job = msgspec.structs.replace(job, job_state="running", id=None)
    job = sanity_checks(job, services.clusters)
    stored = await services.db.jobs.start(job, user=user)
    taggers = getattr(services, "taggers", None)
    if taggers is not None:  # start taggers (app detection) run in the background
        try:
            taggers.on_job_started(stored)
        except Exception:  # the job is stored: its start must be answered as such (no retry, no 500)
            log.exception("start taggers for job %s could not be scheduled", stored.id)
    return stored


async def stop_job(
    services: CoreServices,
    job_id: int,
    *,
    stop_time: int,
    state: str = "",
    cluster: str | None = None,
    start_time: int | None = None,
) -> Job:
    """Mark the newest matching running job stopped and queue it for archiving (unless its
    ``monitoringStatus`` is 0). Errors are the repository's: not found 404, already stopped 422, stop
    before start 400, invalid state 400."""
    check_range(job_id, "jobId")
    check_range(stop_time, "stopTime")
    if start_time is not None:
        check_range(start_time, "startTime")
    job = await services.db.jobs.stop(
        job_id, stop_time=stop_time, state=state, cluster=cluster, start_time=start_time
    )
    if job.monitoring_status != MonitoringStatus.DISABLED:
        archiver = getattr(services, "archiver", None)
        if archiver is not None:
            try:
                archiver.enqueue(job)
            except Exception:  # the stop is stored (the archiver's sweep finds the job later): say so
                log.exception("job %s is stopped but could not be queued for archiving", job.id)
    return job


def is_archived(job: Job) -> bool:
    """Whether ``meta.json`` of the job is in the archive (and so must follow edits)."""
    return job.job_state != "running" and job.monitoring_status == MonitoringStatus.ARCHIVING_SUCCESSFUL


async def sync_archive_meta(services: CoreServices, job: Job) -> None:
    """Rewrite an archived job's ``meta.json`` with its current tags (all scopes) and metadata.

    Running and not-yet-archived jobs are skipped: the archiver writes their meta from the database.
    Errors propagate: the caller reports that the database changed but the archive did not.
    """
    if not is_archived(job) or job.id is None:
        return
    tags = (await services.db.tags.of_jobs(None, [job.id])).get(job.id, [])  # type: ignore[arg-type]
    meta = await services.archive.load_job_meta(job)
    fresh = await services.db.jobs.find_by_id(_system_user(), job.id, with_metadata=True)
    meta = msgspec.structs.replace(meta, tags=tags or None, meta_data=fresh.meta_data)
    await services.archive.store_job_meta(meta)


async def resync_archive_meta(services: CoreServices, job_ids: Sequence[int]) -> int:
    """Rewrite ``meta.json`` of archived jobs whose tags changed in bulk (a tag was deleted).

    One failing job is logged and the rest still run; returns how many were rewritten.
    """
    done = 0
    for job_id in job_ids:
        try:
            job = await services.db.jobs.find_by_id(_system_user(), job_id, with_metadata=False)
            await sync_archive_meta(services, job)
            done += 1
        except Exception as e:
            log.error("job %s: a deleted tag is still listed in the archive's meta.json: %s", job_id, e)
    if job_ids:
        log.info("archive meta.json rewritten for %d of %d jobs after a tag deletion", done, len(job_ids))
    return done


def _system_user() -> User:
    from cc_core.db import SYSTEM_USER

    return SYSTEM_USER

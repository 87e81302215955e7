"""The archiver: a stopped job's metric data goes from its metric backend into the job archive
(upstream ``internal/archiver``, contract §11).

`Archiver.enqueue(job)` puts the job into a bounded queue (128, as upstream's channel) served by a
worker. For each job the worker

1. re-reads the job (metadata and tags) from the database — a job that vanished is marked failed;
2. loads every metric of the cluster from the backend at scope node, plus core for jobs of at most
   8 nodes and accelerator for jobs with accelerators, native resolution;
3. computes the job statistics per metric from the node series (avg = Σ node averages / nodes,
   min of the node minimums, max of the node maximums — upstream starts the minimum at 0, a bug);
4. computes footprint and energy footprint as upstream (contract §4);
5. writes ``meta.json`` and ``data.json`` through the archive's ``import_job``;
6. stores footprint, energy footprint, energy and ``monitoringStatus = 3`` in one database UPDATE.

Any failure of steps 1-5 sets ``monitoringStatus = 2`` and logs why. On shutdown the queue is drained
(60 s by default, then the rest stays at status 1), and at start-up jobs that are stopped but still at
status 1 — the server stopped before archiving them — are queued again.

Several replicas on one database: before step 1 the worker claims the job (`cc_core.metrics.claims`),
so each stopped job is archived by one replica only; a job claimed elsewhere is skipped. The claim is
renewed every ``ttl / 3`` while the job is archived and checked once more before step 5: a job whose
claim another replica took over meanwhile is given up with a warning, not written a second time. Every
``sweep_interval`` seconds (PostgreSQL: 60 s by default; SQLite: at start-up only) the archiver queues
stopped jobs at status 1 that nobody holds a live claim on, which picks up the jobs of a replica that
died (after its claim expired).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.metrics import jobdata
from cc_core.schema.job import JobStatistics, MonitoringStatus

if TYPE_CHECKING:
    from cc_core.db import Database
    from cc_core.interfaces import ArchiveBackend
    from cc_core.metrics.dispatcher import MetricDispatcher
    from cc_core.schema import Job
    from cc_core.schema.cluster import Cluster, SubCluster

log = logging.getLogger(__name__)

QUEUE_SIZE = 128
#: Jobs with at most this many nodes are archived with core scope too (upstream's FIXME constant).
CORE_SCOPE_MAX_NODES = 8


class ArchivingError(Exception):
    """Archiving one job failed; the message says at which step and why."""


class ClaimLost(Exception):
    """Another replica took over the job's archive claim while this one was archiving it."""


def _sub(cluster: Cluster, job: Job) -> SubCluster | None:
    name = job.sub_cluster or (
        cluster.subcluster_for_node(job.resources[0].hostname) if job.resources else ""
    )
    return cluster.subcluster(name or "")


def compute_footprint(cluster: Cluster, job: Job, stats: dict[str, JobStatistics]) -> dict[str, float]:
    """``{"<metric>_<stat>": value}`` for the subcluster's footprint metrics (contract §4): the statistic
    named by the metric's (subcluster) ``footprint`` setting; 0 where the job has no statistics."""
    sc = _sub(cluster, job)
    if sc is None:
        return {}
    configs = {m.name: m for m in sc.metric_config or []}
    out: dict[str, float] = {}
    for name in sc.footprint or []:
        mc = configs.get(name) or cluster.metric(name)
        stat = mc.footprint if mc is not None else ""
        if stat not in ("avg", "min", "max"):
            log.warning(
                "job %s: metric %s has unknown footprint statistic %r, skipped", job.job_id, name, stat
            )
            continue
        st = stats.get(name)
        out[f"{name}_{stat}"] = float(getattr(st, stat)) if st is not None else 0.0
    return out


def compute_energy(
    cluster: Cluster, job: Job, stats: dict[str, JobStatistics]
) -> tuple[dict[str, float], float]:
    """``({metric: kWh}, total kWh)`` (contract §4): a ``power`` metric contributes
    avg W × nodes × duration h / 1000 rounded to two decimals; an ``energy`` metric 0 (as upstream,
    which has no sum statistic to integrate)."""
    sc = _sub(cluster, job)
    if sc is None:
        return {}, 0.0
    configs = {m.name: m for m in sc.metric_config or []}
    out: dict[str, float] = {}
    total = 0.0
    for name in sc.energy_footprint or []:
        mc = configs.get(name)
        value = 0.0
        if mc is None:
            log.warning("job %s: energy metric %s is not configured for %s", job.job_id, name, sc.name)
        elif mc.energy == "power":
            st = stats.get(name)
            avg = float(st.avg) if st is not None else 0.0
            value = jobdata.round2(avg * job.num_nodes * (job.duration / 3600.0) / 1000.0)
        elif mc.energy == "energy":
            log.debug("job %s: energy metric %s of kind 'energy' is not integrated (0)", job.job_id, name)
        out[name] = value
        total += value
    return out, jobdata.round2(total)


class Archiver:
    """See the module docstring. ``on_archived`` callbacks run after a job was archived (the stop
    taggers hook in there)."""

    def __init__(
        self,
        db: Database,
        archive: ArchiveBackend,
        dispatcher: MetricDispatcher,
        clusters: Any,
        *,
        queue_size: int = QUEUE_SIZE,
        drain_timeout: float = 60.0,
        holder: str | None = None,
        claim_ttl: float | None = None,
        sweep_interval: float | None = None,
    ) -> None:
        from cc_core.metrics.claims import DEFAULT_TTL, ArchiveClaims
        from cc_core.tasks.lease import default_holder

        self.db = db
        self.archive = archive
        self.dispatcher = dispatcher
        self.clusters = clusters
        self.queue: asyncio.Queue[Job] = asyncio.Queue(queue_size)
        self.drain_timeout = drain_timeout
        self.on_archived: list[Callable[[Job], Awaitable[None]]] = []
        self.archived = 0
        self.failed = 0
        self.skipped = 0
        self.lost = 0  # given up: the claim was taken over mid-archive
        self.claims = ArchiveClaims(db, holder or default_holder(), ttl=claim_ttl or DEFAULT_TTL)
        # The sweep reads the partial index jobs_archive_pending (migration 7). Periodic only where
        # replicas can share the database (PostgreSQL); an SQLite site has one server, which sweeps at
        # start-up only.
        if sweep_interval is None:
            sweep_interval = 0.0 if db.is_sqlite else 60.0
        self.sweep_interval = sweep_interval
        self._queued: set[int] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._putters: set[asyncio.Task[None]] = set()
        self._closing = False

    # ------------------------------------------------------------------------------ life cycle

    async def start(self, *, resume: bool = True) -> int:
        """Start the worker; with ``resume`` queue the stopped jobs still waiting (status 1).
        Returns how many were queued again."""
        self._worker = asyncio.create_task(self._work(), name="archiver")
        if not resume:
            return 0
        n = await self.sweep()
        if n:
            log.info("archiver: %d stopped job(s) were not archived yet, queued again", n)
        if self.sweep_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="archiver-sweep")
        return n

    async def sweep(self) -> int:
        """Queue the stopped jobs at status 1 that no replica holds a live claim on; how many."""
        held = await self.claims.held_elsewhere()
        n = 0
        for job in await self.pending_jobs():
            if job.id is not None and job.id not in held and job.id not in self._queued:
                self.enqueue(job)
                n += 1
        return n

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                n = await self.sweep()
            except Exception as e:  # a database hiccup must not end the sweeping
                log.warning("archiver: sweep failed: %s", e)
                continue
            if n:
                log.info("archiver: sweep queued %d stopped job(s) not archived yet", n)

    async def pending_jobs(self) -> list[Job]:
        """Jobs that are stopped but not archived (monitoring status 1), oldest first."""
        from sqlalchemy import Integer, literal_column, select

        from cc_core.db import tables as T
        from cc_core.db.convert import rows_to_jobs, select_columns
        from cc_core.db.filters import state_literal

        dialect = self.db.dialect
        now = int(time.time())

        def run(conn: Any) -> list[Job]:
            j = T.job.c
            q = (
                select(*select_columns(dialect))
                # Literals, as the partial index jobs_archive_pending spells them (T.ARCHIVE_PENDING).
                .where(
                    j.monitoring_status == literal_column("1", Integer),
                    j.job_state != state_literal("running"),
                )
                .order_by(j.start_time)
            )
            return rows_to_jobs(conn.execute(q).all(), now)

        return await self.db.read(run)

    def enqueue(self, job: Job) -> asyncio.Future[None]:
        """Queue ``job`` for archiving. Returns an awaitable that completes once the job is *queued*
        (at once unless the queue is full); awaiting it is optional — the job is queued either way."""
        loop = asyncio.get_running_loop()
        if self._closing:
            log.warning("archiver: shutting down, job %s (id %s) stays unarchived", job.job_id, job.id)
            fut: asyncio.Future[None] = loop.create_future()
            fut.set_result(None)
            return fut
        if job.id is not None:
            self._queued.add(job.id)
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            task = loop.create_task(self.queue.put(job))
            self._putters.add(task)
            task.add_done_callback(self._putters.discard)
            return task
        fut = loop.create_future()
        fut.set_result(None)
        return fut

    async def join(self) -> None:
        """Wait until everything queued so far is archived (tests, shutdown)."""
        while self._putters:
            await asyncio.gather(*list(self._putters), return_exceptions=True)
        await self.queue.join()

    async def close(self, timeout: float | None = None) -> None:
        """Archive what is queued (up to ``timeout`` seconds), then stop the worker."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        timeout = self.drain_timeout if timeout is None else timeout
        if self._worker is not None and not self._worker.done():
            try:
                await asyncio.wait_for(self.join(), timeout)
            except TimeoutError:
                log.warning(
                    "archiver: %d job(s) not archived at shutdown; they are queued again at the next start",
                    self.queue.qsize(),
                )
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for t in list(self._putters):
            t.cancel()
        self._worker = None

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            claimed = False
            try:
                if job.id is not None:
                    self._queued.discard(job.id)
                    claimed = await self.claims.claim(job.id)
                    if not claimed:
                        self.skipped += 1
                        log.debug(
                            "archiver: job %s (id %s) archived or claimed elsewhere", job.job_id, job.id
                        )
                        continue
                    await self._archive_claimed(job, job.id)
                else:
                    await self.archive_job(job)
            except ClaimLost as e:
                self.lost += 1
                claimed = False  # not ours any more: neither status 2 nor a release
                log.warning("archiving job %s (id %s) given up: %s", job.job_id, job.id, e)
            except Exception as e:
                self.failed += 1
                log.error("archiving job %s (id %s) failed: %s", job.job_id, job.id, e)
                if job.id is not None and claimed:
                    try:
                        await self.db.jobs.update_monitoring_status(job.id, MonitoringStatus.ARCHIVING_FAILED)
                    except Exception as e2:
                        log.error("job %s: cannot set monitoring status 2: %s", job.id, e2)
            else:
                self.archived += 1
            finally:
                if claimed and job.id is not None:
                    try:
                        await self.claims.release(job.id)
                    except Exception as e3:  # the claim then simply expires
                        log.warning("job %s: cannot release the archive claim: %s", job.id, e3)
                self.queue.task_done()

    # ---------------------------------------------------------------------------- claim keeping

    async def _archive_claimed(self, job: Job, job_id: int) -> None:
        """`archive_job` under this archiver's claim on ``job_id``: renewed in the background every
        ``ttl / 3``, and once more right before the archive is written."""
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claim(job_id, lost), name=f"archive-claim-{job_id}")

        async def still_held() -> None:
            if lost.is_set():
                raise ClaimLost("its archive claim was taken over by another replica")
            try:
                held = await self.claims.renew(job_id)
            except Exception as e:
                raise ArchivingError(f"cannot renew the archive claim: {e}") from e
            if not held:
                raise ClaimLost("its archive claim was taken over by another replica before the write")

        try:
            await self.archive_job(job, before_write=still_held)
        except (ClaimLost, asyncio.CancelledError):
            raise
        except Exception as e:
            if lost.is_set():  # failed, but the job is another replica's now: leave its status alone
                raise ClaimLost(f"its archive claim was taken over by another replica ({e})") from e
            raise
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_claim(self, job_id: int, lost: asyncio.Event) -> None:
        interval = max(self.claims.ttl / 3.0, 0.01)
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.claims.renew(job_id)
            except Exception as e:  # a database hiccup: try again; the claim holds for ttl
                log.warning("job %s: cannot renew the archive claim: %s", job_id, e)
                continue
            if not held:
                log.warning("job %s: archive claim taken over by another replica while archiving", job_id)
                lost.set()
                return

    # -------------------------------------------------------------------------------- the work

    async def archive_job(
        self, job: Job, *, before_write: Callable[[], Awaitable[None]] | None = None
    ) -> Job:
        """Archive one job now (the worker's step list); returns the job as archived. ``before_write``
        runs right before the archive is written and may raise to stop it (the claim check)."""
        from cc_core.db import SYSTEM_USER

        started = time.perf_counter()
        if job.id is None:
            raise ArchivingError("job has no database id")
        try:
            job = await self.db.jobs.find_by_id(SYSTEM_USER, job.id, with_metadata=True, with_tags=True)
        except Exception as e:
            raise ArchivingError(f"cannot read the job from the database: {e}") from e
        if job.job_state == "running":
            raise ArchivingError("job is still running")
        cluster = self.clusters.cluster(job.cluster) if self.clusters is not None else None
        if cluster is None:
            raise ArchivingError(f"unknown cluster {job.cluster!r}")
        metrics = [mc.name for mc in cluster.metric_config]
        scopes = ["node"]
        if job.num_nodes <= CORE_SCOPE_MAX_NODES:
            scopes.append("core")
        if job.num_acc > 0:
            scopes.append("accelerator")
        live = msgspec.structs.replace(job, monitoring_status=MonitoringStatus.RUNNING_OR_ARCHIVING)
        try:
            data = await self.dispatcher.load_data(live, metrics, scopes, 0, use_cache=False)
        except Exception as e:
            raise ArchivingError(f"cannot load metric data: {e}") from e
        units = {mc.name: mc.unit for mc in cluster.metric_config}
        stats = jobdata.job_statistics(data, job.num_nodes, units)
        footprint = compute_footprint(cluster, job, stats)
        energy_fp, energy = compute_energy(cluster, job, stats)
        meta = msgspec.structs.replace(
            job,
            statistics=stats,
            footprint=footprint or None,
            energy_footprint=energy_fp or None,
            energy=energy,
            monitoring_status=MonitoringStatus.ARCHIVING_SUCCESSFUL,
        )
        if before_write is not None:
            await before_write()
        try:
            await self.archive.import_job(meta, data)
        except Exception as e:
            raise ArchivingError(f"cannot write the archive: {e}") from e
        await self.db.jobs.update_footprint(
            job.id,
            footprint=footprint,
            energy_footprint=energy_fp,
            energy=energy,
            monitoring_status=MonitoringStatus.ARCHIVING_SUCCESSFUL,
        )
        self.dispatcher.invalidate(job)
        log.info(
            "archived job %s (id %s, %s) in %.0f ms by %s",
            job.job_id,
            job.id,
            job.cluster,
            (time.perf_counter() - started) * 1000,
            self.claims.holder,
        )
        for hook in self.on_archived:
            try:
                await hook(meta)
            except Exception:
                log.exception("after-archiving hook failed for job %s", job.id)
        return meta

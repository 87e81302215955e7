"""Jobs from the archive into the database: ``init-db`` and ``import-job`` (upstream ``internal/importer``).

Both enrich a job's meta data the way upstream does before it reaches the database (contract §12):
monitoring status 3 (archived), the subcluster assigned from the node lists if missing, the footprint
from the meta's ``statistics`` per the subcluster's footprint list, the energy footprint and the total
energy. The arithmetic is the archiver's (`cc_core.metrics.archiver.compute_footprint` /
`compute_energy`), so a job gets the same numbers whether it was archived by this server or imported.

Deliberate differences from upstream, each a fix:

* **Footprint statistic.** Upstream's importer inverts an error check and therefore always stores the
  ``avg`` statistic (``mem_used_avg`` instead of ``mem_used_max``); its archiver uses the metric's
  ``footprint`` setting. We use the setting in both paths, so footprint keys are the same everywhere.
* **Tag scopes** are kept (upstream's init-db writes every tag as ``global``, leaking private tags).
* **init-db is atomic.** Upstream deletes all jobs and tags, then commits every 100 inserts: a crash
  or a full disk half-way leaves a half-empty database. Here the deletion and the whole re-import are one
  database transaction (SQLite and PostgreSQL alike): a failure rolls back to the old content. Jobs
  that cannot be imported (unreadable, schema-invalid, failing the sanity checks) are not failures of
  the transaction: they are reported with their archive path and skipped.
* **import-job leaves no orphan.** Upstream writes the archive and then inserts into the database; if
  the insert fails, the archive keeps a job the database does not know. Here a failed insert restores
  the archive to what it was (removes the new copy, or puts back the one it replaced). All files are
  read, decoded and checked before anything is written.
* init-db also refuses a ``meta.json`` that names another job than its directory (it could never be
  found in the archive again), and the sanity checks run before the enrichment, so a job without
  ``subCluster`` gets one assigned instead of failing.

init-db pipeline: the archive backend reads and decodes ``meta.json`` files one batch ahead in a worker
thread (`FsArchive.iter_jobs`), the event loop checks and enriches each job, and a dedicated writer
thread holds the database transaction and bulk-inserts batch after batch (`JobRepository` bulk path:
deferred indexes, ids assigned in bulk, tags with their scope). The three overlap: file reads and
SQLite's statement execution release the GIL. A process pool for decoding was measured and does not
pay on 2 cores (shipping decoded jobs back costs as much as decoding them; benchmarks/RESULTS.md).

Why one transaction rather than building a new SQLite file and swapping it in: it works the same on
PostgreSQL, keeps users, node states and configuration untouched without copying them, and on SQLite
(WAL) a running server keeps reading the old jobs until the commit. On PostgreSQL, dropping the job
indexes for the load locks the job table until the commit: run init-db with the server stopped, as
upstream requires anyway. The bulk path's row insert is ``JobRepository.insert_many_in`` — the
repository's own per-transaction helper, used here because `JobRepository.bulk_loader` commits per
batch and so cannot give one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.archive.errors import ArchiveError
from cc_core.archive.layout import job_dir_of
from cc_core.metrics.archiver import compute_energy, compute_footprint
from cc_core.schema.job import (
    JOB_STATES,
    SHARED_VALUES,
    ConcurrentJobs,
    Job,
    JobLink,
    JobStatistics,
    MonitoringStatus,
    Resource,
    StrictJob,
    Tag,
)
from cc_core.schema.units import Unit

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cc_core.db import Database
    from cc_core.interfaces import ArchiveBackend
    from cc_core.schema.cluster import Cluster
    from cc_core.schema.metrics import JobData

log = logging.getLogger(__name__)

#: Jobs per bulk insert in init-db: large enough to amortise the per-batch work, small enough that the
#: pipeline stages overlap and memory stays flat.
BATCH_SIZE = 2000
#: How often (in jobs) init-db calls its progress callback.
PROGRESS_EVERY = 500
#: Longest tag type/name/scope the database accepts (see `cc_core.db.tags`).
TAG_MAX = 255


class ImportProblem(Exception):
    """A job cannot be imported; the message says why (the caller adds where the job came from)."""


class ImportJobError(Exception):
    """``import-job`` failed; the message is ``"<file>: <problem>"``, ready for one ``error:`` line."""


# =============================================================================== checks and enrichment


def sanity_check(job: Job, clusters: Mapping[str, Cluster]) -> tuple[Cluster, str]:
    """Upstream's `SanityChecks`: ``(cluster, subcluster name)`` of a job, or `ImportProblem`.

    The cluster must be in the archive and the subcluster must exist or be found from the first host;
    state, ``shared``, user, resources and the node/thread/accelerator counts must be valid, and tags
    must fit the tag table. Does not modify ``job``.
    """
    cluster = clusters.get(job.cluster)
    if cluster is None:
        raise ImportProblem(
            f"no such cluster: {job.cluster!r} (not in the archive, or its cluster.json is unusable)"
        )
    try:
        sub = cluster.assign_subcluster(job)
    except ValueError as e:
        raise ImportProblem(str(e)) from None
    if job.job_state not in JOB_STATES:
        raise ImportProblem(f"not a valid job state: {job.job_state!r}")
    if job.shared not in SHARED_VALUES:
        raise ImportProblem(
            f"not a valid value of shared: {job.shared!r} (one of {', '.join(SHARED_VALUES)})"
        )
    if not job.resources or not job.user:
        raise ImportProblem("'resources' and 'user' should not be empty")
    if job.num_acc < 0 or job.num_hwthreads < 0 or job.num_nodes < 1:
        raise ImportProblem("'numNodes', 'numAcc' or 'numHWThreads' invalid")
    if len(job.resources) != job.num_nodes:
        raise ImportProblem(
            f"len(resources) does not equal numNodes ({len(job.resources)} vs {job.num_nodes})"
        )
    for tag in job.tags or ():
        if not tag.type or not tag.name:
            raise ImportProblem(f"tag {tag.type!r}:{tag.name!r} needs a type and a name")
        if max(len(tag.type), len(tag.name), len(tag.scope or "")) > TAG_MAX:
            raise ImportProblem(
                f"tag {tag.type[:40]!r}:{tag.name[:40]!r}: type, name and scope are limited to 255 characters"
            )
    return cluster, sub


def enrich_job(job: Job, cluster: Cluster, subcluster: str) -> Job:
    """The job as the database stores an archived job: subcluster set, monitoring status 3, footprint,
    energy footprint and energy computed from its ``statistics`` (upstream `enrichJobMetadata`).

    Footprint and energy footprint are dicts even when empty (upstream stores ``{}``). The database id
    an old archive may carry is dropped: ids belong to the database being filled.
    """
    if job.sub_cluster != subcluster:
        job = msgspec.structs.replace(job, sub_cluster=subcluster)
    stats = job.statistics or {}
    footprint = compute_footprint(cluster, job, stats)
    energy_footprint, energy = compute_energy(cluster, job, stats)
    return msgspec.structs.replace(
        job,
        monitoring_status=MonitoringStatus.ARCHIVING_SUCCESSFUL,
        footprint=footprint,
        energy_footprint=energy_footprint,
        energy=energy,
        id=None,
    )


def prepare_job(job: Job, clusters: Mapping[str, Cluster]) -> Job:
    """`sanity_check` then `enrich_job`: the job ready for the database, or `ImportProblem`."""
    cluster, sub = sanity_check(job, clusters)
    return enrich_job(job, cluster, sub)


async def load_archive_clusters(backend: ArchiveBackend) -> tuple[dict[str, Cluster], dict[str, str]]:
    """Every usable cluster of the archive (derived, contract §3.5), and for each unusable one the
    message saying why (``{name: "<path>: <problem>"}``).

    Unlike `cc_core.archive.load_clusters` this does not stop at the first broken ``cluster.json``: the
    importer reports it and still imports the jobs of the other clusters.
    """
    from cc_core.schema.cluster import ClusterConfigError

    out: dict[str, Cluster] = {}
    broken: dict[str, str] = {}
    for name in await backend.get_clusters():
        try:
            raw = await backend.load_cluster_config(name)
            out[name] = raw.derive(source=f"{name}/cluster.json")
        except (ArchiveError, ClusterConfigError) as e:
            broken[name] = str(e)
    return out, broken


# =============================================================================== init-db


@dataclass(slots=True)
class JobFailure:
    """A job init-db skipped: where it is in the archive and why."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class InitDBReport:
    """What init-db did. ``processed``/``failed``/``seconds`` are also what progress callbacks read."""

    imported: int = 0
    failed: int = 0
    processed: int = 0
    removed: int = 0
    failures: list[JobFailure] = field(default_factory=list)
    cluster_errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished if self.finished is not None else time.perf_counter()) - self.started

    @property
    def rate(self) -> float:
        """Jobs per second (imported or skipped)."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.cluster_errors

    def fail(self, path: str, problem: str) -> None:
        self.failed += 1
        self.failures.append(JobFailure(path, problem))

    @property
    def errors(self) -> list[str]:
        """Every problem as one line: unusable cluster configs first, then jobs in archive order."""
        return [*self.cluster_errors, *(str(f) for f in self.failures)]


Progress = Callable[[InitDBReport], None] | None

_DONE = object()
_ABORT = object()


class _Aborted(Exception):
    """The producer gave up (error or interrupt): roll the transaction back."""


class _WriterThread:
    """Holds init-db's single write transaction: delete everything, then insert batches as they come.

    Runs ``Database.write_sync`` in its own thread so the event loop keeps reading the archive; on any
    error, or when told to abort, the transaction is rolled back and the database is as before.
    """

    def __init__(self, db: Database, report: InitDBReport) -> None:
        self.db = db
        self.report = report
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.duplicates: list[JobFailure] = []
        self.inserted = 0
        self.thread = threading.Thread(target=self._run, name="cc-init-db-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.db.bulk_journal():  # SQLite: the load's pages are written once, not WAL + checkpoint
                self.db.write_sync(self._load)
        except BaseException as e:
            self.error = e

    def _load(self, conn: Connection) -> None:
        from sqlalchemy import delete, func, select

        from cc_core.db import tables as T
        from cc_core.db.jobs import analyze

        repo = self.db.jobs
        self.report.removed = int(conn.execute(select(func.count()).select_from(T.job)).scalar_one())
        conn.execute(delete(T.jobtag))
        conn.execute(delete(T.tag))
        conn.execute(delete(T.job))
        repo.drop_job_indexes(conn)
        while True:
            item = self.queue.get()
            if item is _DONE:
                break
            if item is _ABORT:
                raise _Aborted()
            paths, jobs = item
            # conflict="ignore": a duplicate key must not cost the other jobs of the batch. Every other
            # constraint was checked by `prepare_job`, so a skipped row is a duplicate.
            ids = repo.insert_many_in(conn, jobs, "ignore")
            for path, job, id_ in zip(paths, jobs, ids, strict=True):
                if id_ is None:
                    self.duplicates.append(
                        JobFailure(
                            path,
                            f"job {job.job_id} of cluster {job.cluster} started at {job.start_time} "
                            "was already imported from another directory",
                        )
                    )
                else:
                    self.inserted += 1
        repo.create_job_indexes(conn)
        analyze(conn)

    async def send(self, item: Any) -> None:
        """Hand a batch to the writer; waits (without blocking the loop) while the writer is behind."""
        while True:
            if self.error is not None or not self.thread.is_alive():
                raise self._failure()
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.002)

    def abort(self) -> None:
        """Make the writer roll back (drops batches it has not taken yet)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(_ABORT)

    async def finish(self) -> None:
        await self.send(_DONE)
        await asyncio.to_thread(self.thread.join)
        if self.error is not None:
            raise self._failure()

    def _failure(self) -> BaseException:
        if self.error is None:
            return RuntimeError("the init-db writer thread stopped unexpectedly")
        return self.error


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC during the import: jobs are acyclic and freed by reference counting batch by batch,
    while each collection would traverse every object alive (~20 % of the run time at 100k jobs)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _misplaced(path: str, job: Job) -> str | None:
    """Why a job's meta.json does not belong to its directory, or None if it does."""
    expected = job_dir_of(job)
    if path.replace("\\", "/").rstrip("/").endswith("/" + expected) or path == expected:
        return None
    return (
        f"meta.json describes job {job.job_id} of cluster {job.cluster!r} started at {job.start_time}, "
        f"which belongs in {expected}/"
    )


async def init_db(
    db: Database,
    backend: ArchiveBackend,
    *,
    clusters: Mapping[str, Cluster] | None = None,
    progress: Progress = None,
    batch_size: int = BATCH_SIZE,
) -> InitDBReport:
    """Replace every job and tag in ``db`` with the jobs of ``backend`` (upstream ``-init-db``).

    ``backend`` must be initialised (``await backend.init()``). ``clusters`` defaults to the archive's
    own cluster configs (unusable ones are listed in ``report.cluster_errors``). Jobs that cannot be
    imported are skipped and listed in ``report.failures`` with their archive path. Errors of the
    database or of the archive as a whole (an unreadable directory) raise, and the database keeps its
    previous content.
    """
    report = InitDBReport()
    if clusters is None:
        clusters, broken = await load_archive_clusters(backend)
        report.cluster_errors.extend(broken.values())
    writer = _WriterThread(db, report)
    batch_paths: list[str] = []
    batch_jobs: list[Job] = []
    next_progress = PROGRESS_EVERY
    with _gc_paused():
        writer.start()
        try:
            async for archived in backend.iter_jobs(load_data=False):
                report.processed += 1
                meta = archived.meta
                if meta is None:
                    report.fail(
                        archived.path, _strip_path(archived.error or "meta.json unreadable", archived.path)
                    )
                else:
                    try:
                        wrong = _misplaced(archived.path, meta)
                        if wrong is not None:
                            raise ImportProblem(wrong)
                        batch_jobs.append(prepare_job(meta, clusters))
                        batch_paths.append(archived.path)
                    except ImportProblem as e:
                        report.fail(archived.path, str(e))
                    except Exception as e:  # a bug must not hide which job triggered it
                        log.debug("init-db: unexpected error for %s", archived.path, exc_info=True)
                        report.fail(archived.path, f"unexpected {type(e).__name__}: {e}")
                if len(batch_jobs) >= batch_size:
                    await writer.send((batch_paths, batch_jobs))
                    report.imported += len(batch_jobs)
                    batch_paths, batch_jobs = [], []
                if progress is not None and report.processed >= next_progress:
                    next_progress = report.processed + PROGRESS_EVERY
                    progress(report)
            if batch_jobs:
                await writer.send((batch_paths, batch_jobs))
                report.imported += len(batch_jobs)
            await writer.finish()
        except BaseException:
            writer.abort()
            await asyncio.shield(asyncio.to_thread(writer.thread.join))
            raise
    report.imported = writer.inserted
    for dup in writer.duplicates:
        report.fail(dup.path, dup.problem)
    report.finished = time.perf_counter()
    if progress is not None:
        progress(report)
    log.info(
        "init-db: %d jobs imported, %d skipped, in %.1f s (%.0f jobs/s)",
        report.imported,
        report.failed,
        report.seconds,
        report.rate,
    )
    return report


def _strip_path(error: str, path: str) -> str:
    """Archive errors start with the file path; the report adds the job directory itself."""
    for prefix in (path + "/meta.json: ", path + ": "):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error


def init_db_sync(
    db: Database,
    backend: ArchiveBackend,
    *,
    clusters: Mapping[str, Cluster] | None = None,
    progress: Progress = None,
    batch_size: int = BATCH_SIZE,
) -> InitDBReport:
    """`init_db` for synchronous callers (tests, the demo generator): initialises and closes ``backend``."""

    async def run() -> InitDBReport:
        await backend.init()
        try:
            return await init_db(db, backend, clusters=clusters, progress=progress, batch_size=batch_size)
        finally:
            await backend.close()

    return asyncio.run(run())


# =============================================================================== import-job


class _StrictUnit(Unit, forbid_unknown_fields=True):
    pass


class _StrictJobStatistics(JobStatistics, forbid_unknown_fields=True):
    unit: _StrictUnit = msgspec.field(default_factory=lambda: _StrictUnit(base=""))


class _StrictResource(Resource, forbid_unknown_fields=True):
    pass


class _StrictTag(Tag, forbid_unknown_fields=True):
    pass


class _StrictJobLink(JobLink, forbid_unknown_fields=True):
    pass


class _StrictConcurrentJobs(ConcurrentJobs, forbid_unknown_fields=True):
    items: list[_StrictJobLink] = msgspec.field(default_factory=list)


class _StrictJobMeta(StrictJob):
    """`StrictJob` with every nested object strict too, as Go's ``DisallowUnknownFields`` is."""

    resources: list[_StrictResource]
    tags: list[_StrictTag] | None = None
    concurrent_jobs: _StrictConcurrentJobs | None = None
    statistics: dict[str, _StrictJobStatistics] | None = None


class _StrictStats(msgspec.Struct, forbid_unknown_fields=True):
    avg: float | None = None
    min: float | None = None
    max: float | None = None


class _StrictSeries(msgspec.Struct, forbid_unknown_fields=True):
    hostname: str
    data: msgspec.Raw
    statistics: _StrictStats | None = None
    id: str | None = None


class _StrictStatsSeries(msgspec.Struct, forbid_unknown_fields=True):
    mean: msgspec.Raw | None = None
    median: msgspec.Raw | None = None
    min: msgspec.Raw | None = None
    max: msgspec.Raw | None = None
    percentiles: dict[str, msgspec.Raw] | None = None


class _StrictJobMetric(
    msgspec.Struct, forbid_unknown_fields=True, rename={"statistics_series": "statisticsSeries"}
):
    unit: _StrictUnit | None = None
    timestep: int = 0
    series: list[_StrictSeries] = msgspec.field(default_factory=list)
    statistics_series: _StrictStatsSeries | None = None


# Key checks only: the arrays stay raw (msgspec.Raw), the real decode turns them into numpy arrays.
_STRICT_META = msgspec.json.Decoder(_StrictJobMeta)
_STRICT_DATA = msgspec.json.Decoder(dict[str, dict[str, _StrictJobMetric]])
_META = msgspec.json.Decoder(Job)


def parse_import_spec(specs: str | Sequence[str]) -> list[tuple[Path, Path]]:
    """``"meta.json:data.json[,meta2:data2…]"`` (one or several arguments) → ``[(meta, data), …]``."""
    items = [specs] if isinstance(specs, str) else list(specs)
    pairs: list[tuple[Path, Path]] = []
    for spec in items:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            files = part.split(":")
            if len(files) != 2 or not files[0] or not files[1]:
                raise ImportJobError(f"{part}: expected <meta.json>:<data.json>")
            pairs.append((Path(files[0]), Path(files[1])))
    if not pairs:
        raise ImportJobError("nothing to import: expected <meta.json>:<data.json>[,…]")
    return pairs


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImportJobError(f"{path}: cannot read: {e.strerror or e}") from None


def _schema_check(kind: str, raw: bytes, path: Path) -> None:
    from cc_core.archive import validation

    try:
        problems = validation.validate(kind, raw)  # type: ignore[arg-type]
    except msgspec.DecodeError as e:
        raise ImportJobError(f"{path}: invalid JSON: {e}") from None
    if problems:
        raise ImportJobError(f"{path}: does not match the JSON schema: " + "; ".join(problems))


def read_job_meta(path: Path, *, validate: bool = False) -> Job:
    """A job meta file, decoded strictly: unknown keys anywhere are an error (upstream's
    ``DisallowUnknownFields``); ``shared`` defaults to ``none``."""
    raw = _read(path)
    if validate:
        _schema_check("meta", raw, path)
    try:
        _STRICT_META.decode(raw)
        return _META.decode(raw)
    except msgspec.DecodeError as e:
        raise ImportJobError(f"{path}: invalid job meta: {_decode_message(e, raw)}") from None


def read_job_data(path: Path, *, validate: bool = False) -> JobData:
    """A job data file (``.gz`` is gunzipped), decoded strictly."""
    from cc_core.archive import codec
    from cc_core.schema.metrics import decode_job_data

    raw = _read(path)
    if path.suffix == ".gz":
        try:
            raw = codec.gunzip(raw, str(path))
        except ArchiveError as e:
            raise ImportJobError(str(e)) from None
    if validate:
        _schema_check("data", raw, path)
    try:
        _STRICT_DATA.decode(raw)
        return decode_job_data(raw)
    except msgspec.DecodeError as e:
        raise ImportJobError(f"{path}: invalid job data: {_decode_message(e, raw)}") from None


def _decode_message(e: msgspec.DecodeError, raw: bytes) -> str:
    from cc_core.archive.codec import _msg

    return _msg(e, len(raw))


@dataclass(slots=True)
class PreparedImport:
    """One job of an import-job run, read, checked and enriched, not yet written anywhere."""

    meta_path: Path
    data_path: Path
    job: Job
    data: JobData


async def prepare_imports(
    db: Database,
    clusters: Mapping[str, Cluster],
    pairs: Sequence[tuple[Path, Path]],
    *,
    validate: bool = False,
    broken: Mapping[str, str] | None = None,
) -> list[PreparedImport]:
    """Read, decode, check and enrich every pair before anything is written; the first problem raises
    `ImportJobError` naming the file. Jobs already in the database, or given twice, are problems.
    ``broken`` (from `load_archive_clusters`) explains why a job's cluster is unusable."""
    from cc_core.db import SYSTEM_USER

    out: list[PreparedImport] = []
    seen: dict[tuple[int, str, int], Path] = {}
    for meta_path, data_path in pairs:
        job = read_job_meta(meta_path, validate=validate)
        data = read_job_data(data_path, validate=validate)
        try:
            job = prepare_job(job, clusters)
        except ImportProblem as e:
            if broken and job.cluster in broken:
                raise ImportJobError(
                    f"{meta_path}: cluster {job.cluster!r} cannot be used: {broken[job.cluster]}"
                ) from None
            raise ImportJobError(f"{meta_path}: {e}") from None
        key = (job.job_id, job.cluster, job.start_time)
        if key in seen:
            raise ImportJobError(f"{meta_path}: the same job as {seen[key]} (jobId, cluster and startTime)")
        seen[key] = meta_path
        existing = await db.jobs.find_all(SYSTEM_USER, job.job_id, job.cluster, job.start_time)
        if existing:
            raise ImportJobError(
                f"{meta_path}: job {job.job_id} of cluster {job.cluster} started at {job.start_time} "
                f"is already in the database (id {existing[0].id})"
            )
        out.append(PreparedImport(meta_path, data_path, job, data))
    return out


async def import_prepared(db: Database, backend: ArchiveBackend, item: PreparedImport) -> Job:
    """Write one prepared job to the archive, then insert it (with tags) into the database.

    If the insert fails the archive is put back as it was, so no job is left in the archive that the
    database does not list. Returns the job with its new database id.
    """
    job, source = item.job, item.meta_path
    previous = None
    try:
        if await backend.exists(job):
            previous = await backend.read_job_raw(job)
        await backend.import_job(job, item.data)
    except ArchiveError as e:
        raise ImportJobError(f"{source}: cannot write the job to the archive: {e}") from None
    try:
        ids = await db.jobs.bulk_insert([job], conflict="error", defer_indexes=False)
    except BaseException as e:
        undo = "put back the previous archive copy" if previous is not None else "removed the archive copy"
        try:
            if previous is not None:
                await backend.write_job_raw(previous)
            else:
                await backend.clean_up([job])
        except Exception as e2:
            undo = f"could not undo the archive write ({e2}): remove {job_dir_of(job)} by hand"
        if isinstance(e, Exception):
            raise ImportJobError(f"{source}: database insert failed ({e}); {undo}") from None
        raise
    return msgspec.structs.replace(job, id=ids[0])


async def import_jobs(
    db: Database,
    backend: ArchiveBackend,
    pairs: Sequence[tuple[Path, Path]],
    *,
    clusters: Mapping[str, Cluster] | None = None,
    validate: bool = False,
) -> list[Job]:
    """Upstream ``-import-job``: import ``(meta, data)`` file pairs into the archive and the database.

    Every pair is read and checked first (fail fast, nothing written); then the jobs are imported one
    by one, each atomically (see `import_prepared`). ``backend`` must be initialised.
    """
    broken: dict[str, str] = {}
    if clusters is None:
        clusters, broken = await load_archive_clusters(backend)
    prepared = await prepare_imports(db, clusters, pairs, validate=validate, broken=broken)
    done: list[Job] = []
    for item in prepared:
        try:
            done.append(await import_prepared(db, backend, item))
        except ImportJobError as e:
            if done:
                names = ", ".join(str(p.meta_path) for p in prepared[: len(done)])
                raise ImportJobError(f"{e} (already imported: {names})") from None
            raise
    return done

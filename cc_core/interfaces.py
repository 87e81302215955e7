"""Typed boundaries between the core and its plugins.

Each Protocol mirrors an upstream Go interface (named in its docstring) with async methods. A plugin
class satisfies one of them structurally; `cc_core.testing` holds the contract suites that check it
against a real server. Classes also carry two class attributes the registry reads:

* ``kind``   – the string the config's ``kind`` key selects the class by;
* ``Config`` – a msgspec struct validating the class's own config section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cc_core.auth.user import User
    from cc_core.schema import Job, Tag
    from cc_core.schema.cluster import Cluster
    from cc_core.schema.metrics import JobData, JobStats

# Metric scopes from fine to coarse, as upstream orders them (`schema.MetricScope`).
SCOPES: tuple[str, ...] = ("hwthread", "accelerator", "core", "memoryDomain", "socket", "node")


@runtime_checkable
class MetricBackend(Protocol):
    """A source of metric time series (upstream `metricdispatch.MetricDataRepository`, contract §8.5).

    ``job`` arguments are `cc_core.schema.Job`; results use the archive's data structures
    (``JobData = {metric: {scope: JobMetric}}``) so that a job's data reads the same from a live
    backend as from the archive.
    """

    kind: ClassVar[str]

    async def load_data(
        self, job: Job, metrics: Sequence[str], scopes: Sequence[str], resolution: int
    ) -> Mapping[str, Mapping[str, Any]]:
        """Time series of ``metrics`` for the job's nodes and time range, at each requested scope
        (effective scope = the coarser of native and requested) and ``resolution`` seconds
        (0 = native)."""
        ...

    async def load_stats(self, job: Job, metrics: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """Node-scope statistics ``{metric: {hostname: {min, avg, max}}}`` over the job's run."""
        ...

    async def load_scoped_stats(
        self, job: Job, metrics: Sequence[str], scopes: Sequence[str]
    ) -> Mapping[str, Mapping[str, Sequence[Any]]]:
        """Statistics per scope ``{metric: {scope: [{hostname, id, data: {min, avg, max}}]}}``."""
        ...

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str],
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> Mapping[str, Mapping[str, Sequence[Any]]]:
        """Per-node series for the systems views ``{hostname: {metric: [JobMetric]}}``."""
        ...

    async def load_node_list_data(
        self,
        cluster: str,
        sub_cluster: str,
        nodes: Sequence[str],
        metrics: Sequence[str],
        scopes: Sequence[str],
        resolution: int,
        start: int,
        stop: int,
    ) -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
        """Node-list data ``{hostname: JobData}`` for one page of the node list."""
        ...

    async def health_check(
        self, cluster: str, nodes: Sequence[str], metrics: Sequence[str]
    ) -> Mapping[str, NodeHealth]:
        """Health of each node from the freshness of its metrics (contract §8.6)."""
        ...

    async def close(self) -> None:
        """Release connections and flush state; called once on shutdown."""
        ...


@dataclass(slots=True)
class NodeHealth:
    state: Literal["full", "partial", "failed"]
    missing: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)


@runtime_checkable
class ArchiveBackend(Protocol):
    """A job archive (upstream `archive.ArchiveBackend`, contract §3.1), version-3 layout.

    Jobs are addressed by ``(cluster, jobId, startTime)`` — any object with ``cluster``, ``job_id`` and
    ``start_time`` (usually `cc_core.schema.Job`); meta is `Job`, data is
    `cc_core.schema.metrics.JobData`. Writes are atomic: a reader never sees half a job (a job exists
    once its ``meta.json`` does, and that is written last). Errors are `cc_core.archive.errors`
    exceptions whose message names the job's path and the problem.

    Classes are instantiated as ``cls(config, context)``; `cc_core.archive.backend.ArchiveBase`
    implements everything here on top of a handful of storage primitives, and
    `cc_core.testing.archive_contract.ArchiveBackendContract` is the test suite every backend passes.
    ``validate`` (from ``main.validate``) turns on JSON-schema validation of everything read.
    """

    kind: ClassVar[str]
    validate: bool

    async def init(self) -> int:
        """Check (or, for an empty archive, create) ``version.txt`` and return the version (3).

        A version-2 archive raises `ArchiveVersionError` pointing at ``clustercockpit archive migrate``.
        """
        ...

    async def info(self) -> Mapping[str, ArchiveClusterInfo]:
        """Per-cluster summary: job count, first/last start time, bytes."""
        ...

    async def exists(self, job: Job) -> bool:
        """Whether the job is archived (its ``meta.json`` exists)."""
        ...

    async def load_job_meta(self, job: Job) -> Job: ...

    async def load_job_data(self, job: Job) -> JobData:
        """The job's ``data.json.gz`` (preferred) or ``data.json``."""
        ...

    async def load_job_stats(self, job: Job) -> JobStats:
        """Per-metric, per-scope statistics of each stored series (upstream `LoadJobStats`)."""
        ...

    async def load_cluster_config(self, cluster: str) -> Cluster:
        """The cluster's ``cluster.json`` as stored (call `Cluster.derive` before use)."""
        ...

    async def store_cluster_config(self, cluster: Cluster, name: str | None = None) -> None:
        """Write ``<name or cluster.name>/cluster.json``."""
        ...

    async def store_job_meta(self, job: Job) -> None:
        """Rewrite ``meta.json`` of an archived job (tag and metadata edits)."""
        ...

    async def import_job(self, meta: Job, data: JobData) -> None:
        """Store a finished job: ``meta.json`` and ``data.json`` (gzipped above 2000 bytes)."""
        ...

    async def read_job_raw(self, job: Job) -> RawJob:
        """The job's files as stored, for lossless copies between backends."""
        ...

    async def write_job_raw(self, raw: RawJob) -> None:
        """Store files read by `read_job_raw` (of this or another backend) unchanged, atomically."""
        ...

    async def get_clusters(self) -> list[str]:
        """Names of the archive's top-level cluster directories, sorted."""
        ...

    async def clean(self, before: int = 0, after: int = 0, cluster: str | None = None) -> int:
        """Remove jobs started before ``before`` or after ``after`` (epoch s; 0 = no bound), optionally
        only of ``cluster``; returns how many were removed."""
        ...

    async def clean_up(self, jobs: Sequence[Job]) -> int:
        """Remove the given jobs (retention); returns how many existed."""
        ...

    async def move(self, jobs: Sequence[Job], target: ArchiveBackend) -> int:
        """Move jobs to another archive (copy, then remove here); returns how many moved."""
        ...

    async def compress(self, jobs: Sequence[Job]) -> int:
        """Gzip ``data.json`` of these jobs where larger than 2000 bytes; returns how many."""
        ...

    async def compress_last(self, start_time: int) -> int:
        """Record ``start_time`` in ``compress.txt`` and return the previous value (or ``start_time``)."""
        ...

    def iter_jobs(self, load_data: bool = False, cluster: str | None = None) -> AsyncIterator[ArchivedJob]:
        """Every job of the archive (or of one cluster), meta (and data when asked).

        A job that cannot be read is yielded with ``error`` set (and ``meta``/``data`` None) instead of
        stopping the iteration.
        """
        ...

    async def close(self) -> None:
        """Release connections; called once on shutdown."""
        ...


@dataclass(slots=True)
class ArchivedJob:
    """One job from `ArchiveBackend.iter_jobs`: ``path`` is its directory (or ``s3://`` prefix)."""

    path: str
    meta: Job | None
    data: JobData | None = None
    error: str | None = None


@dataclass(slots=True)
class RawJob:
    """A job's files as bytes: ``meta.json`` and ``data.json`` (``data_compressed``: it is the .gz)."""

    cluster: str
    job_id: int
    start_time: int
    meta: bytes
    data: bytes | None
    data_compressed: bool = False


@dataclass(slots=True)
class ArchiveClusterInfo:
    """`ArchiveBackend.info` per cluster; start times are epoch seconds (None without jobs)."""

    jobs: int = 0
    first_start: int | None = None
    last_start: int | None = None
    bytes: int = 0


@runtime_checkable
class Authenticator(Protocol):
    """A login mechanism (upstream `auth.Authenticator`, contract §6.3).

    ``can_login`` decides cheaply whether this mechanism applies to a login attempt (e.g. the user exists
    with this auth source, or the request carries this mechanism's token); ``login`` then verifies the
    credentials and returns the user, or raises `cc_core.auth.errors.LoginError` with a message safe to
    show on the login page.
    """

    kind: ClassVar[str]

    async def can_login(self, user: User | None, username: str, request: Any) -> User | bool | None: ...

    async def login(self, user: User | None, username: str, password: str, request: Any) -> User: ...


@dataclass(slots=True)
class TaggerResult:
    tags: list[Tag] = field(default_factory=list)
    message: str | None = None


@runtime_checkable
class Tagger(Protocol):
    """A job tagger (upstream `tagger.Tagger`, contract §9): app detection, job classification, …"""

    kind: ClassVar[str]
    event: ClassVar[Literal["start", "stop"]]

    async def match(self, job: Job) -> TaggerResult:
        """The tags this tagger wants on ``job``; pure, so ``apply-tags`` can re-run it on any job."""
        ...


@runtime_checkable
class JobEventSink(Protocol):
    """What a `Scheduler` feeds: the same operations as the REST API's start/stop/nodestate.

    Implemented by `cc_core.scheduler.LifecycleSink`. Errors are `cc_core.db.errors` exceptions: a start
    of a job already recorded is `DuplicateJobError`, a stop of a stopped job `JobAlreadyStoppedError`,
    bad input (unknown cluster or host) `InvalidInputError`. ``nodes`` are cc-lib ``NodePayload``
    objects with camelCase keys.
    """

    async def start_job(self, job: Job) -> int: ...

    async def stop_job(
        self, job_id: int, cluster: str, start_time: int | None, state: str, stop_time: int
    ) -> None: ...

    async def update_node_states(self, cluster: str, nodes: Sequence[Mapping[str, Any]]) -> None: ...

    async def running_jobs(self, cluster: str) -> list[Job]: ...


@runtime_checkable
class Scheduler(Protocol):
    """A batch-system integration: polls or subscribes to the scheduler and feeds a `JobEventSink`."""

    kind: ClassVar[str]

    async def run(self, sink: JobEventSink) -> None:
        """Run until cancelled; must be restart-safe (no duplicate starts, no missed stops)."""
        ...


@runtime_checkable
class Task(Protocol):
    """A periodic background service (upstream `taskmanager`, contract §10), run by
    `cc_core.tasks.TaskManager` inside the server.

    The class is registered with ``register_tasks``; ``name`` is unique across plugins (``tasks run
    NAME`` uses it). At start-up the manager calls ``cls.create(context)``: it reads the task's settings
    with ``context.section(...)`` and the core objects from ``context.services`` (``"db"``,
    ``"archive"``, ``"clusters"``, ``"metrics"``) and returns the instance, or None when the
    configuration does not enable the task. Raise `cc_core.config.ConfigError` for a wrong setting
    (start-up stops with the message); any other exception leaves only this task out.

    ``run`` returns a short outcome for the log and ``tasks list`` (e.g. "12 jobs updated"); raising
    marks the run failed with the exception's message. Neither stops the task's later runs nor other
    tasks. With several replicas on one database each due run happens on one replica only.
    """

    name: ClassVar[str]

    @classmethod
    def create(cls, context: Any) -> Task | None:
        """The task for this configuration (``context``: `cc_core.context.PluginContext`), or None."""
        ...

    @property
    def schedule(self) -> float | str:
        """Seconds between runs (due at every multiple of it since the epoch), or a daily ``"HH:MM"``
        (local time)."""
        ...

    async def run(self) -> str | None:
        """Do one run; return a short outcome for the log. Exceptions are logged, never fatal."""
        ...

"""The schema: upstream's tables after its migration 11, as SQLModel tables in a registry of our own.

Names are upstream's (``job``, ``tag``, ``jobtag``, ``hpc_user``, ``configuration``, ``node``,
``node_state``; columns such as ``hpc_user``, ``cluster_partition``, ``ldap``) so that a cc-backend
``job.db`` opens in place and a database we create can be opened by cc-backend again. Where we differ
it is deliberate and done by our own migrations (`cc_core.db.migrations`):

* ``tag`` is unique over (type, name, **scope**): upstream's (type, name) made a private tag collide
  with a global one of the same name.
* ``job_cache`` is gone: a started job is in ``job`` at once.
* the index set is ours (`JOB_INDEXES` …), every index justified by a query-plan test.

JSON columns (`JSONText`) are TEXT on SQLite and JSONB on PostgreSQL. The repositories read and write
them as JSON *text* on both (encoded/decoded with msgspec), never through per-row Python objects.

The SQLModel classes exist for the metadata (DDL, introspection, documentation); queries use their
``__table__`` with SQLAlchemy Core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import registry
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel

from cc_core.schema.job import JOB_STATES, SHARED_VALUES

NODE_STATES: tuple[str, ...] = ("allocated", "reserved", "idle", "mixed", "down", "unknown")
HEALTH_STATES: tuple[str, ...] = ("full", "partial", "failed")
MONITORING_STATES: tuple[int, ...] = (0, 1, 2, 3)


class JSONText(UserDefinedType[str]):
    """A JSON document: TEXT on SQLite, JSONB on PostgreSQL; bound and read as JSON text.

    No bind or result processing: the repositories encode with msgspec and pass strings (psycopg
    sends a ``str`` parameter as *unknown*, so PostgreSQL coerces it to jsonb), and read PostgreSQL
    values as text (see `cc_core.db.engine`, which registers a text loader for jsonb).
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT"


@compiles(JSONText, "postgresql")
def _jsonb(type_: JSONText, compiler: Any, **kw: Any) -> str:
    return "JSONB"


# `INTEGER PRIMARY KEY` makes the column SQLite's rowid; BIGINT (and BIGSERIAL) on PostgreSQL.
RowId = BigInteger().with_variant(Integer(), "sqlite")


def _in_list(column: str, values: tuple[Any, ...]) -> str:
    """``col = 'a' OR col = 'b' …`` rather than ``col IN (…)``: SQLite evaluates an IN list in a CHECK
    through a temporary b-tree per row (~2 µs each); the OR chain costs ~0.1 µs. Same meaning."""
    return " OR ".join(f"{column} = {v!r}" for v in values)


_registry = registry(metadata=MetaData())


class _Base(SQLModel, registry=_registry):
    """Base of our tables: a registry of their own, so other SQLModel tables never mix in."""


metadata: MetaData = _Base.metadata


class JobRow(_Base, table=True):
    """One job (upstream ``job``)."""

    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("job_id", "cluster", "start_time", name="uq_job_jobid_cluster_starttime"),
        CheckConstraint(_in_list("job_state", JOB_STATES), name="ck_job_state"),
        CheckConstraint(_in_list("shared", SHARED_VALUES), name="ck_job_shared"),
        CheckConstraint(_in_list("monitoring_status", MONITORING_STATES), name="ck_job_monitoring_status"),
    )

    id: int | None = Field(default=None, sa_column=Column("id", RowId, primary_key=True))
    job_id: int = Field(sa_column=Column("job_id", BigInteger, nullable=False))
    cluster: str = Field(sa_column=Column("cluster", Text, nullable=False))
    subcluster: str = Field(sa_column=Column("subcluster", Text, nullable=False))
    submit_time: int = Field(
        default=0, sa_column=Column("submit_time", BigInteger, nullable=False, server_default="0")
    )
    start_time: int = Field(
        default=0, sa_column=Column("start_time", BigInteger, nullable=False, server_default="0")
    )
    hpc_user: str = Field(sa_column=Column("hpc_user", Text, nullable=False))
    project: str = Field(sa_column=Column("project", Text, nullable=False))
    cluster_partition: str | None = Field(default=None, sa_column=Column("cluster_partition", Text))
    array_job_id: int | None = Field(default=None, sa_column=Column("array_job_id", BigInteger))
    duration: int = Field(sa_column=Column("duration", Integer, nullable=False))
    walltime: int = Field(sa_column=Column("walltime", Integer, nullable=False))
    job_state: str = Field(sa_column=Column("job_state", Text, nullable=False))
    meta_data: str | None = Field(default=None, sa_column=Column("meta_data", JSONText()))
    resources: str = Field(sa_column=Column("resources", JSONText(), nullable=False))
    num_nodes: int = Field(sa_column=Column("num_nodes", Integer, nullable=False))
    num_hwthreads: int | None = Field(default=None, sa_column=Column("num_hwthreads", Integer))
    num_acc: int | None = Field(default=None, sa_column=Column("num_acc", Integer))
    smt: int = Field(default=1, sa_column=Column("smt", Integer, nullable=False, server_default="1"))
    shared: str = Field(sa_column=Column("shared", Text, nullable=False))
    monitoring_status: int = Field(
        default=1, sa_column=Column("monitoring_status", SmallInteger, nullable=False, server_default="1")
    )
    energy: float = Field(default=0.0, sa_column=Column("energy", Float, nullable=False, server_default="0"))
    energy_footprint: str | None = Field(default=None, sa_column=Column("energy_footprint", JSONText()))
    footprint: str | None = Field(default=None, sa_column=Column("footprint", JSONText()))


class TagRow(_Base, table=True):
    """A tag (upstream ``tag``); ``tag_scope`` is ``global``, ``admin`` or a username."""

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("tag_type", "tag_name", "tag_scope", name="uq_tag_type_name_scope"),)

    id: int | None = Field(default=None, sa_column=Column("id", RowId, primary_key=True))
    tag_type: str = Field(sa_column=Column("tag_type", String(255), nullable=False))
    tag_name: str = Field(sa_column=Column("tag_name", String(255), nullable=False))
    insert_ts: str | None = Field(
        default=None, sa_column=Column("insert_ts", Text, server_default=text("CURRENT_TIMESTAMP"))
    )
    tag_scope: str = Field(
        default="global", sa_column=Column("tag_scope", Text, nullable=False, server_default="global")
    )


class JobTagRow(_Base, table=True):
    """Job ↔ tag (upstream ``jobtag``); deleting a job or a tag deletes its links."""

    __tablename__ = "jobtag"
    __table_args__ = (PrimaryKeyConstraint("job_id", "tag_id", name="pk_jobtag"),)

    job_id: int = Field(sa_column=Column("job_id", RowId, ForeignKey("job.id", ondelete="CASCADE")))
    tag_id: int = Field(sa_column=Column("tag_id", RowId, ForeignKey("tag.id", ondelete="CASCADE")))
    insert_ts: str | None = Field(
        default=None, sa_column=Column("insert_ts", Text, server_default=text("CURRENT_TIMESTAMP"))
    )


class UserRow(_Base, table=True):
    """A user (upstream ``hpc_user``); ``ldap`` holds the auth source (0 local, 1 LDAP, 2 token, 3 OIDC)."""

    __tablename__ = "hpc_user"

    username: str = Field(sa_column=Column("username", String(255), primary_key=True))
    password: str | None = Field(default=None, sa_column=Column("password", String(255)))
    ldap: int = Field(default=0, sa_column=Column("ldap", SmallInteger, nullable=False, server_default="0"))
    name: str | None = Field(default=None, sa_column=Column("name", String(255)))
    roles: str = Field(
        default="[]", sa_column=Column("roles", JSONText(), nullable=False, server_default="[]")
    )
    email: str | None = Field(default=None, sa_column=Column("email", String(255)))
    projects: str = Field(
        default="[]", sa_column=Column("projects", JSONText(), nullable=False, server_default="[]")
    )


class ConfigurationRow(_Base, table=True):
    """Per-user UI configuration (upstream ``configuration``); ``value`` is JSON text."""

    __tablename__ = "configuration"
    __table_args__ = (PrimaryKeyConstraint("username", "confkey", name="pk_configuration"),)

    username: str = Field(
        sa_column=Column("username", String(255), ForeignKey("hpc_user.username", ondelete="CASCADE"))
    )
    confkey: str = Field(sa_column=Column("confkey", String(255)))
    value: str | None = Field(default=None, sa_column=Column("value", Text))


class NodeRow(_Base, table=True):
    """A node known from node-state reports (upstream ``node``)."""

    __tablename__ = "node"
    __table_args__ = (UniqueConstraint("hostname", "cluster", name="uq_node_hostname_cluster"),)

    id: int | None = Field(default=None, sa_column=Column("id", RowId, primary_key=True))
    hostname: str = Field(sa_column=Column("hostname", String(255), nullable=False))
    cluster: str = Field(sa_column=Column("cluster", String(255), nullable=False))
    subcluster: str = Field(sa_column=Column("subcluster", String(255), nullable=False))
    meta_data: str | None = Field(default=None, sa_column=Column("meta_data", JSONText()))


class NodeStateRow(_Base, table=True):
    """One scheduler/health state report of a node (upstream ``node_state``); the latest one counts."""

    __tablename__ = "node_state"
    __table_args__ = (
        CheckConstraint(_in_list("node_state", NODE_STATES), name="ck_node_state_state"),
        CheckConstraint(_in_list("health_state", HEALTH_STATES), name="ck_node_state_health"),
    )

    id: int | None = Field(default=None, sa_column=Column("id", RowId, primary_key=True))
    time_stamp: int = Field(sa_column=Column("time_stamp", BigInteger, nullable=False))
    jobs_running: int = Field(
        default=0, sa_column=Column("jobs_running", Integer, nullable=False, server_default="0")
    )
    cpus_allocated: int = Field(
        default=0, sa_column=Column("cpus_allocated", Integer, nullable=False, server_default="0")
    )
    memory_allocated: int = Field(
        default=0, sa_column=Column("memory_allocated", BigInteger, nullable=False, server_default="0")
    )
    gpus_allocated: int = Field(
        default=0, sa_column=Column("gpus_allocated", Integer, nullable=False, server_default="0")
    )
    node_state: str = Field(sa_column=Column("node_state", String(255), nullable=False))
    health_state: str = Field(sa_column=Column("health_state", String(255), nullable=False))
    health_metrics: str | None = Field(default=None, sa_column=Column("health_metrics", JSONText()))
    node_id: int | None = Field(default=None, sa_column=Column("node_id", RowId, ForeignKey("node.id")))


class TaskRunRow(_Base, table=True):
    """Ours (migration 5): the last claimed run of each scheduled task (`cc_core.tasks.lease`).

    ``due_ms`` only ever grows; a replica runs a task for a due time only if it moved ``due_ms`` up to
    that time itself, which is how several servers on one database run each task once per due time.
    """

    __tablename__ = "cc_task_run"

    name: str = Field(sa_column=Column("name", String(255), primary_key=True))
    due_ms: int = Field(sa_column=Column("due_ms", BigInteger, nullable=False))
    holder: str = Field(
        default="", sa_column=Column("holder", String(255), nullable=False, server_default="")
    )
    started_ms: int | None = Field(default=None, sa_column=Column("started_ms", BigInteger))
    duration_ms: int | None = Field(default=None, sa_column=Column("duration_ms", BigInteger))
    outcome: str = Field(
        default="", sa_column=Column("outcome", String(16), nullable=False, server_default="")
    )
    message: str | None = Field(default=None, sa_column=Column("message", Text))


class ArchiveClaimRow(_Base, table=True):
    """Ours (migration 6): which replica is archiving a stopped job, until when (`cc_core.metrics.claims`).

    A row exists only while a job is being archived; a replica that dies leaves its row behind, and
    once ``expires_ms`` has passed another replica may take the claim over. No foreign key: the row is
    short-lived and a deleted job's leftover claim is harmless (nothing selects it).
    """

    __tablename__ = "cc_archive_claim"

    job_id: int = Field(sa_column=Column("job_id", BigInteger, primary_key=True, autoincrement=False))
    holder: str = Field(sa_column=Column("holder", String(255), nullable=False))
    expires_ms: int = Field(sa_column=Column("expires_ms", BigInteger, nullable=False))


job: Table = JobRow.__table__  # type: ignore[attr-defined]
tag: Table = TagRow.__table__  # type: ignore[attr-defined]
jobtag: Table = JobTagRow.__table__  # type: ignore[attr-defined]
hpc_user: Table = UserRow.__table__  # type: ignore[attr-defined]
configuration: Table = ConfigurationRow.__table__  # type: ignore[attr-defined]
node: Table = NodeRow.__table__  # type: ignore[attr-defined]
node_state: Table = NodeStateRow.__table__  # type: ignore[attr-defined]
task_run: Table = TaskRunRow.__table__  # type: ignore[attr-defined]
archive_claim: Table = ArchiveClaimRow.__table__  # type: ignore[attr-defined]

TABLES: tuple[Table, ...] = (
    job,
    tag,
    jobtag,
    hpc_user,
    configuration,
    node,
    node_state,
    task_run,
    archive_claim,
)


# --------------------------------------------------------------------------------------------------
# Indexes. One definition serves DDL (create_all), migrations and the query-plan tests, which name
# for every index the query it exists for (tests/db/test_query_plans.py).

RUNNING = "job_state = 'running'"
#: Stopped jobs not archived yet (monitoring status 1): the archiver's sweep. A query must spell these
#: literals (not bound parameters) for SQLite to use the partial index.
ARCHIVE_PENDING = "monitoring_status = 1 AND job_state <> 'running'"


@dataclass(frozen=True, slots=True)
class IndexDef:
    """An index by name; ``where`` makes it partial (SQLite and PostgreSQL alike)."""

    name: str
    table: str
    columns: tuple[str, ...]
    where: str | None = None
    why: str = ""

    def create_sql(self, *, if_not_exists: bool = True) -> str:
        ine = "IF NOT EXISTS " if if_not_exists else ""
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE INDEX {ine}{self.name} ON {self.table} ({', '.join(self.columns)}){where}"

    def drop_sql(self) -> str:
        return f"DROP INDEX IF EXISTS {self.name}"


_STATS_COLS = ("duration", "job_state", "num_nodes", "num_hwthreads", "num_acc")

JOB_INDEXES: tuple[IndexDef, ...] = (
    IndexDef("jobs_starttime", "job", ("start_time",), why="unfiltered list by start time; delete before"),
    IndexDef(
        "jobs_cluster_starttime_state",
        "job",
        ("cluster", "start_time", "job_state"),
        why="cluster (+ state, + time range) list sorted by start time, and its count, from the index",
    ),
    IndexDef("jobs_user_starttime", "job", ("hpc_user", "start_time"), why="'my jobs' sorted by start time"),
    IndexDef("jobs_project_starttime", "job", ("project", "start_time"), why="project list by start time"),
    IndexDef("jobs_arrayjobid_starttime", "job", ("array_job_id", "start_time"), why="jobs of one array job"),
    IndexDef(
        "jobs_cluster_user_starttime_stats",
        "job",
        ("cluster", "hpc_user", "start_time", *_STATS_COLS),
        why="statistics grouped by user for a cluster and time range, index only",
    ),
    IndexDef(
        "jobs_cluster_project_starttime_stats",
        "job",
        ("cluster", "project", "start_time", *_STATS_COLS),
        why="statistics grouped by project for a cluster and time range, index only",
    ),
    IndexDef(
        "jobs_running",
        "job",
        (
            "cluster",
            "start_time",
            "hpc_user",
            "project",
            "subcluster",
            "num_nodes",
            "num_hwthreads",
            "num_acc",
            "job_state",
            "duration",
        ),
        where=RUNNING,
        why="running jobs of a cluster (status views, lists, statistics) from a tiny covering partial index",
    ),
    IndexDef(
        "jobs_running_starttime",
        "job",
        ("start_time",),
        where=RUNNING,
        why="running jobs of all clusters by start time (used nodes, walltime and duration workers)",
    ),
    IndexDef(
        "jobs_archive_pending",
        "job",
        ("start_time",),
        where=ARCHIVE_PENDING,
        why="stopped jobs not archived yet, oldest first (the archiver's periodic sweep); tiny",
    ),
)

OTHER_INDEXES: tuple[IndexDef, ...] = (
    IndexDef("tags_tagid", "jobtag", ("tag_id",), why="jobs of a tag (tag filter, tag deletion)"),
    IndexDef(
        "nodestates_nodeid_timestamp",
        "node_state",
        ("node_id", "time_stamp"),
        why="latest state of each node",
    ),
    IndexDef("nodestates_timestamp", "node_state", ("time_stamp",), why="states over time; retention"),
)

ALL_INDEXES: tuple[IndexDef, ...] = JOB_INDEXES + OTHER_INDEXES


def _attach_indexes() -> None:
    tables = {t.name: t for t in TABLES}
    for d in ALL_INDEXES:
        t = tables[d.table]
        kw: dict[str, Any] = {}
        if d.where:
            kw = {"sqlite_where": text(d.where), "postgresql_where": text(d.where)}
        Index(d.name, *(t.c[c] for c in d.columns), **kw)


_attach_indexes()

"""Schema versions: upstream's golang-migrate table, our own numbered reversible migrations.

A database carries two version marks:

* ``schema_migrations(version, dirty)`` — golang-migrate's table as cc-backend writes it. We accept
  upstream version 10 or 11 and move 10 → 11 ourselves (upstream's migration 11 only changes indexes,
  plus a column that early version-10 databases lack). We keep writing 11 there, so cc-backend can
  open a database we migrated (its schema is still upstream's, plus our compatible changes).
* ``cc_schema_migrations(version, name, applied_at)`` — one row per migration of ours, applied in
  order after upstream 11. Each has ``up`` and ``down`` for SQLite and PostgreSQL.

A fresh database is created from the table metadata at the current version and stamped with both.
`migrate` brings an older one forward (SQLite: after an online backup copy), `revert` undoes the last
step, `optimize` runs VACUUM + ANALYZE. Opening for serving (`Database(..., check_version=True)`)
refuses any database that is not exactly current, with a message naming the command to run.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, MetaData, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateTable

from cc_core.db import tables as T
from cc_core.db.errors import (
    MigrationError,
    NotAClusterCockpitDatabase,
    SchemaDirtyError,
    SchemaOutdatedError,
    SchemaTooNewError,
)
from cc_core.db.tables import IndexDef

if TYPE_CHECKING:
    from cc_core.db.engine import Database

log = logging.getLogger(__name__)

UPSTREAM_VERSION = 11
SUPPORTED_UPSTREAM = (10, 11)
OURS_TABLE = "cc_schema_migrations"
UPSTREAM_TABLE = "schema_migrations"
MIGRATE_HINT = "run `clustercockpit migrate-db` (it backs up an SQLite database first)"


# --------------------------------------------------------------------------------------------------
# Where a database stands


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """The version marks found in a database (``empty`` = no tables at all)."""

    upstream: int | None
    dirty: bool
    ours: int | None
    empty: bool = False

    def describe(self) -> str:
        if self.empty:
            return "empty"
        up = "none" if self.upstream is None else str(self.upstream)
        ours = 0 if self.ours is None else self.ours
        return f"upstream {up}{' (dirty)' if self.dirty else ''} + ours {ours}"

    @property
    def is_current(self) -> bool:
        return self.upstream == UPSTREAM_VERSION and not self.dirty and (self.ours or 0) == CURRENT_VERSION


def current_version() -> SchemaVersion:
    return SchemaVersion(UPSTREAM_VERSION, False, CURRENT_VERSION)


# --------------------------------------------------------------------------------------------------
# A connection for DDL: raw sqlite3 (so we control BEGIN and foreign_keys) or an SQLAlchemy connection


class MigrationContext:
    """What a migration step may do: run SQL, and look at the schema, on either dialect."""

    def __init__(
        self,
        dialect: str,
        *,
        sqlite_conn: sqlite3.Connection | None = None,
        sa_conn: Connection | None = None,
    ) -> None:
        self.dialect = dialect
        self._sqlite = sqlite_conn
        self._sa = sa_conn

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with ``?`` placeholders; the rows it returns (if any)."""
        if self._sqlite is not None:
            cur = self._sqlite.execute(sql, tuple(params))
            return cur.fetchall() if cur.description else []
        assert self._sa is not None
        res = self._sa.exec_driver_sql(sql.replace("?", "%s"), tuple(params))
        return [tuple(r) for r in res.fetchall()] if res.returns_rows else []

    def table_names(self) -> set[str]:
        if self.is_sqlite:
            rows = self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        return {r[0] for r in rows}

    def columns(self, table: str) -> list[str]:
        if self.is_sqlite:
            return [r[1] for r in self.execute(f"PRAGMA table_info({_ident(table)})")]
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]

    def plain_indexes(self, tables: Iterable[str]) -> list[str]:
        """Indexes on ``tables`` that no constraint owns (those a migration may drop and re-create)."""
        wanted = set(tables)
        if self.is_sqlite:
            rows = self.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
            )
        else:
            rows = self.execute(
                "SELECT i.relname, t.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = current_schema() "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
                "ORDER BY i.relname"
            )
        return [r[0] for r in rows if r[1] in wanted]

    def table_sql(self, table: str) -> str:
        rows = self.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return rows[0][0] if rows else ""

    def create_table_sql(self, table: Table, name: str | None = None) -> str:
        if name is not None:
            table = table.to_metadata(MetaData(), name=name)
        dialect = sqlite_dialect.dialect() if self.is_sqlite else pg_dialect.dialect()
        return str(CreateTable(table).compile(dialect=dialect)).strip()


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    """Identifiers in our DDL come from our own constants; refuse anything else loudly."""
    if not _IDENT.match(name):
        raise MigrationError(f"refusing unexpected identifier {name!r} in DDL")
    return name


def _copy_rows(ctx: MigrationContext, source: str, target: str, columns: Sequence[str]) -> None:
    cols = ", ".join(_ident(c) for c in columns)
    ctx.execute(f"INSERT INTO {_ident(target)} ({cols}) SELECT {cols} FROM {_ident(source)}")  # noqa: S608


def _rebuild_sqlite_table(ctx: MigrationContext, new_def: Table, *, keep_indexes: bool = True) -> None:
    """SQLite's documented way to change constraints: create new, copy, drop old, rename.

    Runs with foreign_keys OFF (the migration connection), so dropping the old table does not cascade
    into jobtag; indexes of the old table are re-created from their stored SQL.
    """
    name = new_def.name
    tmp = f"{name}__new"
    index_sql = [
        r[0]
        for r in ctx.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (name,),
        )
    ]
    old_cols = set(ctx.columns(name))
    ctx.execute(f"DROP TABLE IF EXISTS {_ident(tmp)}")
    ctx.execute(ctx.create_table_sql(new_def, tmp))
    _copy_rows(ctx, name, tmp, [c.name for c in new_def.columns if c.name in old_cols])
    ctx.execute(f"DROP TABLE {_ident(name)}")
    ctx.execute(f"ALTER TABLE {_ident(tmp)} RENAME TO {_ident(name)}")
    if keep_indexes:
        for sql in index_sql:
            ctx.execute(sql)


# --------------------------------------------------------------------------------------------------
# Upstream's index sets (schema facts of cc-backend's migrations 09-11, as data)

_S = ("duration", "start_time")  # upstream's "<x>_duration_starttime" suffix
_U11_STATS = ("duration", "job_state", "num_nodes", "num_hwthreads", "num_acc")
_U11_STATUS = ("duration", "start_time", "num_nodes", "num_hwthreads", "num_acc")
_U11_RUNNING = ("num_nodes", "num_hwthreads", "num_acc", "duration", "start_time")


def _ix(name: str, *cols: str, table: str = "job", where: str | None = None) -> IndexDef:
    return IndexDef(name, table, tuple(cols), where)


def _pairs(prefix: str, lead: tuple[str, ...]) -> list[IndexDef]:
    """Upstream's "<prefix>_duration_starttime" and "<prefix>_starttime_duration" pairs."""
    return [
        _ix(f"{prefix}_duration_starttime", *lead, "duration", "start_time"),
        _ix(f"{prefix}_starttime_duration", *lead, "start_time", "duration"),
    ]


# Indexes upstream's migration 11 creates.
UPSTREAM_11_CREATES: tuple[IndexDef, ...] = (
    _ix("jobs_cluster_user_starttime_stats", "cluster", "hpc_user", "start_time", *_U11_STATS),
    _ix("jobs_cluster_project_starttime_stats", "cluster", "project", "start_time", *_U11_STATS),
    _ix("jobs_cluster_jobstate_user_stats", "cluster", "job_state", "hpc_user", *_U11_STATUS),
    _ix("jobs_cluster_jobstate_project_stats", "cluster", "job_state", "project", *_U11_STATUS),
    _ix("jobs_cluster_jobstate_subcluster_stats", "cluster", "job_state", "subcluster", *_U11_STATUS),
    _ix("jobs_running_user_stats", "cluster", "hpc_user", *_U11_RUNNING, where=T.RUNNING),
    _ix("jobs_running_project_stats", "cluster", "project", *_U11_RUNNING, where=T.RUNNING),
    _ix("jobs_running_subcluster_stats", "cluster", "subcluster", *_U11_RUNNING, where=T.RUNNING),
)


def _sort_quartet(prefix: str, lead: tuple[str, ...]) -> list[IndexDef]:
    return [
        _ix(f"{prefix}_numnodes", *lead, "num_nodes"),
        _ix(f"{prefix}_numhwthreads", *lead, "num_hwthreads"),
        _ix(f"{prefix}_numacc", *lead, "num_acc"),
        _ix(f"{prefix}_energy", *lead, "energy"),
    ]


# Indexes upstream's migration 11 drops (and its down migration re-creates).
UPSTREAM_11_DROPS: tuple[IndexDef, ...] = (
    *_sort_quartet("jobs_cluster_partition", ("cluster", "cluster_partition")),
    *_sort_quartet("jobs_cluster_jobstate", ("cluster", "job_state")),
    *_sort_quartet("jobs_cluster_shared", ("cluster", "shared")),
    *_sort_quartet("jobs_user", ("hpc_user",)),
    *_sort_quartet("jobs_project", ("project",)),
    *_sort_quartet("jobs_jobstate", ("job_state",)),
    *_sort_quartet("jobs_shared", ("shared",)),
    _ix("jobs_cluster_arrayjobid_starttime", "cluster", "array_job_id", "start_time"),
    _ix("jobs_duration", "duration"),
    _ix("jobs_cluster_jobstate_user", "cluster", "job_state", "hpc_user"),
    _ix("jobs_cluster_jobstate_project", "cluster", "job_state", "project"),
)

# The job indexes of a database that went through upstream's migrations 09 and 11.
UPSTREAM_11_JOB_INDEXES: tuple[IndexDef, ...] = (
    _ix("jobs_cluster_user", "cluster", "hpc_user"),
    _ix("jobs_cluster_project", "cluster", "project"),
    _ix("jobs_cluster_subcluster", "cluster", "subcluster"),
    _ix("jobs_cluster_numnodes", "cluster", "num_nodes"),
    _ix("jobs_cluster_numhwthreads", "cluster", "num_hwthreads"),
    _ix("jobs_cluster_numacc", "cluster", "num_acc"),
    _ix("jobs_cluster_energy", "cluster", "energy"),
    *_pairs("jobs_cluster", ("cluster",)),
    _ix("jobs_cluster_partition_user", "cluster", "cluster_partition", "hpc_user"),
    _ix("jobs_cluster_partition_project", "cluster", "cluster_partition", "project"),
    _ix("jobs_cluster_partition_jobstate", "cluster", "cluster_partition", "job_state"),
    _ix("jobs_cluster_partition_shared", "cluster", "cluster_partition", "shared"),
    *_pairs("jobs_cluster_partition", ("cluster", "cluster_partition")),
    *_pairs("jobs_cluster_jobstate", ("cluster", "job_state")),
    _ix("jobs_cluster_shared_user", "cluster", "shared", "hpc_user"),
    _ix("jobs_cluster_shared_project", "cluster", "shared", "project"),
    *_pairs("jobs_cluster_shared", ("cluster", "shared")),
    *_pairs("jobs_user", ("hpc_user",)),
    _ix("jobs_project_user", "project", "hpc_user"),
    *_pairs("jobs_project", ("project",)),
    _ix("jobs_jobstate_user", "job_state", "hpc_user"),
    _ix("jobs_jobstate_project", "job_state", "project"),
    *_pairs("jobs_jobstate", ("job_state",)),
    _ix("jobs_shared_user", "shared", "hpc_user"),
    _ix("jobs_shared_project", "shared", "project"),
    *_pairs("jobs_shared", ("shared",)),
    _ix("jobs_arrayjobid_starttime", "array_job_id", "start_time"),
    _ix("jobs_duration_starttime", "duration", "start_time"),
    _ix("jobs_numnodes_starttime", "num_nodes", "start_time"),
    _ix("jobs_numhwthreads_starttime", "num_hwthreads", "start_time"),
    _ix("jobs_numacc_starttime", "num_acc", "start_time"),
    _ix("jobs_energy_starttime", "energy", "start_time"),
    _ix("jobs_numnodes_duration", "num_nodes", "duration"),
    _ix("jobs_numhwthreads_duration", "num_hwthreads", "duration"),
    _ix("jobs_numacc_duration", "num_acc", "duration"),
    _ix("jobs_energy_duration", "energy", "duration"),
    _ix("jobs_starttime", "start_time"),
    *UPSTREAM_11_CREATES,
)

# Indexes of upstream's migration 10 on the node and tag tables.
UPSTREAM_10_OTHER_INDEXES: tuple[IndexDef, ...] = (
    _ix("nodes_cluster", "cluster", table="node"),
    _ix("nodes_cluster_subcluster", "cluster", "subcluster", table="node"),
    _ix("nodestates_timestamp", "time_stamp", table="node_state"),
    _ix("nodestates_state_timestamp", "node_state", "time_stamp", table="node_state"),
    _ix("nodestates_health_timestamp", "health_state", "time_stamp", table="node_state"),
    _ix("nodestates_nodeid_state", "node_id", "node_state", table="node_state"),
    _ix("nodestates_nodeid_health", "node_id", "health_state", table="node_state"),
    _ix("nodestates_nodeid_timestamp", "node_id", "time_stamp DESC", table="node_state"),
    _ix("tags_jobid", "job_id", table="jobtag"),
    _ix("tags_tagid", "tag_id", table="jobtag"),
)

INDEXED_TABLES = ("job", "tag", "jobtag", "node", "node_state")


# --------------------------------------------------------------------------------------------------
# Table shapes of upstream version 11 that our migrations change (for the down direction)

_upstream_md = MetaData()
UPSTREAM_TAG = Table(
    "tag",
    _upstream_md,
    *(c._copy() for c in T.tag.columns),
    UniqueConstraint("tag_type", "tag_name", name="uq_tag_type_name"),
)
UPSTREAM_JOB_CACHE = Table(
    "job_cache",
    _upstream_md,
    *(c._copy() for c in T.job.columns),
    UniqueConstraint("job_id", "cluster", "start_time", name="uq_job_cache_jobid_cluster_starttime"),
)


# --------------------------------------------------------------------------------------------------
# Upstream step 10 -> 11 (SQLite only: upstream never ran on PostgreSQL)


def upstream_11_up(ctx: MigrationContext) -> None:
    for d in UPSTREAM_11_DROPS:
        ctx.execute(d.drop_sql())
    for d in UPSTREAM_11_CREATES:
        ctx.execute(d.create_sql())
    # Early version-10 databases (cc-backend pre-releases) lack this column of migration 10.
    if "node_state" in ctx.table_names() and "health_metrics" not in ctx.columns("node_state"):
        ctx.execute("ALTER TABLE node_state ADD COLUMN health_metrics TEXT")


def upstream_11_down(ctx: MigrationContext) -> None:
    for d in UPSTREAM_11_CREATES:
        ctx.execute(d.drop_sql())
    for d in UPSTREAM_11_DROPS:
        ctx.execute(d.create_sql())


# --------------------------------------------------------------------------------------------------
# Our migrations


def m1_tag_scope_unique_up(ctx: MigrationContext) -> None:
    """Tags are unique per (type, name, scope): a private tag no longer collides with a global one."""
    if ctx.is_sqlite:
        _rebuild_sqlite_table(ctx, T.tag)
    else:
        ctx.execute("ALTER TABLE tag DROP CONSTRAINT IF EXISTS uq_tag_type_name")
        ctx.execute(
            "ALTER TABLE tag ADD CONSTRAINT uq_tag_type_name_scope UNIQUE (tag_type, tag_name, tag_scope)"
        )


def m1_tag_scope_unique_down(ctx: MigrationContext) -> None:
    clashes = ctx.execute(
        "SELECT tag_type, tag_name, COUNT(*) FROM tag GROUP BY tag_type, tag_name HAVING COUNT(*) > 1"
    )
    if clashes:
        shown = ", ".join(f"{t}:{n}" for t, n, _ in clashes[:5])
        raise MigrationError(
            f"cannot revert: {len(clashes)} tag type:name pairs exist in more than one scope ({shown}); "
            "upstream's schema allows only one. Delete or rename them first."
        )
    if ctx.is_sqlite:
        _rebuild_sqlite_table(ctx, UPSTREAM_TAG)
    else:
        ctx.execute("ALTER TABLE tag DROP CONSTRAINT IF EXISTS uq_tag_type_name_scope")
        ctx.execute("ALTER TABLE tag ADD CONSTRAINT uq_tag_type_name UNIQUE (tag_type, tag_name)")


_JOB_COPY_COLS = [c.name for c in T.job.columns if c.name != "id"]


def m2_drop_job_cache_up(ctx: MigrationContext) -> None:
    """Started jobs go straight into ``job``; jobs still staged by cc-backend move there now."""
    if "job_cache" not in ctx.table_names():
        return
    cols = ", ".join(_JOB_COPY_COLS)
    if ctx.is_sqlite:
        ctx.execute(f"INSERT OR IGNORE INTO job ({cols}) SELECT {cols} FROM job_cache")  # noqa: S608
    else:
        ctx.execute(f"INSERT INTO job ({cols}) SELECT {cols} FROM job_cache ON CONFLICT DO NOTHING")  # noqa: S608
    ctx.execute("DROP TABLE job_cache")


def m2_drop_job_cache_down(ctx: MigrationContext) -> None:
    if "job_cache" not in ctx.table_names():
        ctx.execute(ctx.create_table_sql(UPSTREAM_JOB_CACHE))


def m3_job_constraints_up(ctx: MigrationContext) -> None:
    """Rebuild an upstream ``job`` table with our constraint spelling (same rules, 4× faster inserts).

    Upstream's CHECKs use ``IN (…)`` lists, which SQLite evaluates through a temporary b-tree for every
    inserted row (~2 µs each, 6 µs per job); ours say the same with ``OR`` chains. Some cc-backend 1.5
    pre-release databases also spell ``out-of-memory`` in the job_state CHECK, which rejects
    upstream's own state ``out_of_memory``; the rebuild fixes that too. PostgreSQL: nothing to do.
    """
    if not ctx.is_sqlite:
        return
    sql = ctx.table_sql("job")
    if " IN (" in sql.upper() or "'out-of-memory'" in sql:
        # The old indexes are not re-created: migration 4 replaces the whole index set anyway, and
        # building ~50 upstream indexes on a large table only to drop them would take minutes.
        _rebuild_sqlite_table(ctx, T.job, keep_indexes=False)


def m3_job_constraints_down(ctx: MigrationContext) -> None:
    """Nothing: the constraints mean the same (and the misspelt one is never put back)."""


def _replace_indexes(ctx: MigrationContext, wanted: Iterable[IndexDef]) -> None:
    present = set(ctx.table_names())
    for name in ctx.plain_indexes([t for t in INDEXED_TABLES if t in present]):
        ctx.execute(f"DROP INDEX IF EXISTS {_ident(name)}")
    for d in wanted:
        if d.table in present:
            ctx.execute(d.create_sql(if_not_exists=False))


#: Indexes added by a later migration of ours (not part of migration 4's set).
_LATER_INDEXES = frozenset({"jobs_archive_pending"})


def m4_index_set_up(ctx: MigrationContext) -> None:
    """Our index set (`cc_core.db.tables.ALL_INDEXES`): fewer, covering, each with a query-plan test."""
    _replace_indexes(ctx, [d for d in T.ALL_INDEXES if d.name not in _LATER_INDEXES])


def m4_index_set_down(ctx: MigrationContext) -> None:
    _replace_indexes(ctx, UPSTREAM_11_JOB_INDEXES + UPSTREAM_10_OTHER_INDEXES)


def m5_task_runs_up(ctx: MigrationContext) -> None:
    """``cc_task_run``: one row per scheduled task, so replicas sharing a database run it once."""
    if "cc_task_run" not in ctx.table_names():
        ctx.execute(ctx.create_table_sql(T.task_run))


def m5_task_runs_down(ctx: MigrationContext) -> None:
    ctx.execute("DROP TABLE IF EXISTS cc_task_run")


def m6_archive_claims_up(ctx: MigrationContext) -> None:
    """``cc_archive_claim``: replicas sharing a database archive each stopped job once."""
    if "cc_archive_claim" not in ctx.table_names():
        ctx.execute(ctx.create_table_sql(T.archive_claim))


def m6_archive_claims_down(ctx: MigrationContext) -> None:
    ctx.execute("DROP TABLE IF EXISTS cc_archive_claim")


def _index(name: str) -> IndexDef:
    return next(d for d in T.ALL_INDEXES if d.name == name)


def m7_archive_pending_index_up(ctx: MigrationContext) -> None:
    """``jobs_archive_pending``: a partial index on the few stopped jobs still at monitoring status 1,
    so each replica's periodic archive sweep reads those rows instead of scanning the job table."""
    ctx.execute(_index("jobs_archive_pending").create_sql())


def m7_archive_pending_index_down(ctx: MigrationContext) -> None:
    ctx.execute(_index("jobs_archive_pending").drop_sql())


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: Callable[[MigrationContext], None]
    down: Callable[[MigrationContext], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tag-unique-per-scope", m1_tag_scope_unique_up, m1_tag_scope_unique_down),
    Migration(2, "drop-job-cache", m2_drop_job_cache_up, m2_drop_job_cache_down),
    Migration(3, "job-table-constraints", m3_job_constraints_up, m3_job_constraints_down),
    Migration(4, "index-set", m4_index_set_up, m4_index_set_down),
    Migration(5, "task-runs", m5_task_runs_up, m5_task_runs_down),
    Migration(6, "archive-claims", m6_archive_claims_up, m6_archive_claims_down),
    Migration(7, "archive-pending-index", m7_archive_pending_index_up, m7_archive_pending_index_down),
)
CURRENT_VERSION = MIGRATIONS[-1].version


# --------------------------------------------------------------------------------------------------
# Running steps


class _Session:
    """A migration connection: raw sqlite3 with foreign_keys OFF, or an SQLAlchemy connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite: sqlite3.Connection | None = None
        self._sa: Connection | None = None

    def __enter__(self) -> _Session:
        from cc_core.db.engine import connect_sqlite

        if self.db.is_sqlite:
            assert self.db.path is not None
            self._sqlite = connect_sqlite(self.db.path, self.db.db_config, writer=True)
            self._sqlite.execute("PRAGMA foreign_keys = OFF")
        else:
            self._sa = self.db.write_engine.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._sa is not None:
            self._sa.close()

    def step(self, fn: Callable[[MigrationContext], None]) -> None:
        """Run ``fn`` in one transaction (commit on success, rollback and re-raise on failure)."""
        if self._sqlite is not None:
            conn = self._sqlite
            conn.execute("BEGIN IMMEDIATE")
            try:
                ctx = MigrationContext("sqlite", sqlite_conn=conn)
                fn(ctx)
                bad = conn.execute("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise MigrationError(f"foreign key check failed after migration: {bad[:5]}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return
        assert self._sa is not None
        with self._sa.begin():
            fn(MigrationContext("postgresql", sa_conn=self._sa))

    def read(self) -> SchemaVersion:
        out: list[SchemaVersion] = []
        self.step(lambda ctx: out.append(read_version(ctx)))
        return out[0]


def read_version(ctx: MigrationContext) -> SchemaVersion:
    names = {n for n in ctx.table_names() if not n.startswith("sqlite_")}
    if not names:
        return SchemaVersion(None, False, None, empty=True)
    upstream: int | None = None
    dirty = False
    ours: int | None = None
    if UPSTREAM_TABLE in names:
        rows = ctx.execute("SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1")
        if rows:
            upstream, dirty = int(rows[0][0]), bool(rows[0][1])
    if OURS_TABLE in names:
        rows = ctx.execute("SELECT MAX(version) FROM cc_schema_migrations")
        ours = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if UPSTREAM_TABLE not in names and OURS_TABLE not in names:
        raise NotAClusterCockpitDatabase(
            "the database has tables but no schema version (neither cc-backend's schema_migrations nor "
            f"our {OURS_TABLE}); it is not a ClusterCockpit job database"
        )
    return SchemaVersion(upstream, dirty, ours)


def _set_upstream(ctx: MigrationContext, version: int) -> None:
    ctx.execute("DELETE FROM schema_migrations")
    ctx.execute("INSERT INTO schema_migrations (version, dirty) VALUES (?, ?)", (version, False))


def _create_version_tables(ctx: MigrationContext) -> None:
    names = ctx.table_names()
    if UPSTREAM_TABLE not in names:
        if ctx.is_sqlite:  # exactly golang-migrate's shape, so cc-backend accepts the file
            ctx.execute(f"CREATE TABLE {UPSTREAM_TABLE} (version uint64, dirty bool)")
            ctx.execute(f"CREATE UNIQUE INDEX version_unique ON {UPSTREAM_TABLE} (version)")
        else:
            ctx.execute(
                f"CREATE TABLE {UPSTREAM_TABLE} (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)"
            )
    if OURS_TABLE not in names:
        ctx.execute(
            f"CREATE TABLE {OURS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at BIGINT NOT NULL)"
        )


def _record(ctx: MigrationContext, m: Migration) -> None:
    ctx.execute(
        "INSERT INTO cc_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (m.version, m.name, int(time.time())),
    )


def create_schema(ctx: MigrationContext) -> None:
    """A fresh database at the current version: all tables and indexes, both version marks."""
    dialect = sqlite_dialect.dialect() if ctx.is_sqlite else pg_dialect.dialect()
    from sqlalchemy.schema import CreateIndex

    for table in T.TABLES:
        ctx.execute(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            ctx.execute(str(CreateIndex(index).compile(dialect=dialect)).strip())
    _create_version_tables(ctx)
    _set_upstream(ctx, UPSTREAM_VERSION)
    for m in MIGRATIONS:
        _record(ctx, m)


def prepare(db: Database, *, check_version: bool, create: bool) -> SchemaVersion:
    """Called by `Database()`: create an empty database, else (optionally) insist it is current."""
    with _Session(db) as s:
        v = s.read()
        if v.empty and create:
            s.step(create_schema)
            return current_version()
        if check_version:
            check_servable(v, where=str(db.path or "database"))
            s.step(_restore_missing_indexes)
    return v


def _restore_missing_indexes(ctx: MigrationContext) -> None:
    """Re-create any of our indexes that is missing (a bulk load with deferred indexes that died)."""
    present = set(ctx.plain_indexes(INDEXED_TABLES))
    for d in T.ALL_INDEXES:
        if d.name not in present:
            log.warning("index %s is missing (interrupted bulk load?); re-creating it", d.name)
            ctx.execute(d.create_sql())


def check_servable(v: SchemaVersion, *, where: str = "database") -> None:
    """Raise the error that tells an operator what to do, unless ``v`` is exactly current."""
    if v.is_current:
        return
    want = current_version().describe()
    if v.dirty:
        raise SchemaDirtyError(
            f"{where}: cc-backend marked the schema dirty at upstream version {v.upstream} (a migration "
            "failed half-way). Restore the backup made before that migration and run `clustercockpit "
            "migrate-db`, or, once you have checked that migration's changes by hand, `clustercockpit "
            "migrate-db --force`."
        )
    if v.empty:
        raise SchemaOutdatedError(f"{where}: the database is empty; {MIGRATE_HINT} to create the schema")
    if (v.upstream or 0) > UPSTREAM_VERSION or (v.ours or 0) > CURRENT_VERSION:
        raise SchemaTooNewError(
            f"{where}: the schema ({v.describe()}) is newer than this version of ClusterCockpit "
            f"understands ({want}); upgrade ClusterCockpit, or restore a backup made before the upgrade"
        )
    if v.upstream is not None and v.upstream not in SUPPORTED_UPSTREAM:
        raise SchemaOutdatedError(
            f"{where}: upstream schema version {v.upstream} is older than 10; migrate it with cc-backend "
            "1.5 (`cc-backend -migrate-db`) first, then run `clustercockpit migrate-db`"
        )
    raise SchemaOutdatedError(
        f"{where}: the database schema is outdated ({v.describe()}; this version needs {want}); {MIGRATE_HINT}"
    )


def _plan(
    v: SchemaVersion,
) -> list[tuple[str, Callable[[MigrationContext], None], Callable[[MigrationContext], None]]]:
    if v.dirty:
        check_servable(v)
    if (v.upstream or 0) > UPSTREAM_VERSION or (v.ours or 0) > CURRENT_VERSION:
        check_servable(v)
    steps: list[tuple[str, Callable[[MigrationContext], None], Callable[[MigrationContext], None]]] = []
    if v.upstream is not None and v.upstream not in SUPPORTED_UPSTREAM:
        check_servable(v)
    if v.upstream == 10:

        def up11(ctx: MigrationContext) -> None:
            upstream_11_up(ctx)
            _create_version_tables(ctx)
            _set_upstream(ctx, 11)

        steps.append(("upstream 11: optimise indexes", up11, upstream_11_down))
    if v.upstream is None:  # our table without upstream's: only a database we created
        raise MigrationError("the database has our version table but not upstream's; it was not made by us")
    done = v.ours or 0
    for m in MIGRATIONS:
        if m.version <= done:
            continue

        def run(ctx: MigrationContext, m: Migration = m) -> None:
            _create_version_tables(ctx)
            m.up(ctx)
            _record(ctx, m)

        steps.append((f"{m.version:03d} {m.name}", run, m.down))
    return steps


def backup_sqlite(path: Path, *, label: str = "backup") -> Path:
    """A consistent copy of a (possibly live, WAL-mode) SQLite database next to it; returns its path."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
        n += 1
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return target


def _backup_label(v: SchemaVersion) -> str:
    return f"backup-v{v.upstream or 0}.{v.ours or 0}"


@dataclass(slots=True)
class MigrationResult:
    before: SchemaVersion
    after: SchemaVersion
    steps: list[str]
    backup: Path | None = None


def migrate(
    db: Database, *, backup: bool = True, analyze: bool = True, force: bool = False
) -> MigrationResult:
    """Bring the database to the current version, one transaction per step; SQLite is backed up first.

    ``force`` is upstream's ``-force-db``: a schema golang-migrate marked dirty (one of cc-backend's
    migrations failed half-way) is declared clean at its recorded version, then migrated as usual. Only
    for an operator who has checked (or repaired) that migration's changes by hand.
    """
    with _Session(db) as s:
        before = s.read()
        if before.empty:
            s.step(create_schema)
            return MigrationResult(before, current_version(), ["create schema"])
        copy: Path | None = None
        done: list[str] = []
        if before.dirty and force:
            if backup and db.path is not None:
                copy = backup_sqlite(db.path, label=_backup_label(before) + "-dirty")
            log.warning(
                "forcing upstream schema version %s: clearing golang-migrate's dirty flag", before.upstream
            )
            s.step(
                lambda ctx: ctx.execute(
                    "UPDATE schema_migrations SET dirty = ? WHERE version = ?", (False, before.upstream)
                )
            )
            done.append(f"force upstream version {before.upstream} (dirty flag cleared)")
            before = s.read()
        plan = _plan(before)
        if not plan:
            return MigrationResult(before, before, done, copy)
        if copy is None and backup and db.path is not None:
            copy = backup_sqlite(db.path, label=_backup_label(before))
        for name, up, _down in plan:
            log.info("migrating: %s", name)
            s.step(up)
            done.append(name)
        if analyze:
            s.step(lambda ctx: ctx.execute("ANALYZE"))
        return MigrationResult(before, s.read(), done, copy)


def revert(db: Database, *, backup: bool = True) -> MigrationResult:
    """Undo the last applied step (ours, then upstream's 11 on SQLite)."""
    with _Session(db) as s:
        before = s.read()
        if before.empty:
            raise MigrationError("the database is empty; nothing to revert")
        if before.dirty:
            check_servable(before)
        ours = before.ours or 0
        if ours > CURRENT_VERSION:
            check_servable(before)
        copy = backup_sqlite(db.path, label=_backup_label(before)) if backup and db.path is not None else None
        if ours > 0:
            m = MIGRATIONS[ours - 1]

            def down(ctx: MigrationContext) -> None:
                m.down(ctx)
                ctx.execute("DELETE FROM cc_schema_migrations WHERE version = ?", (m.version,))

            s.step(down)
            name = f"{m.version:03d} {m.name}"
        elif before.upstream == UPSTREAM_VERSION and db.is_sqlite:

            def down11(ctx: MigrationContext) -> None:
                upstream_11_down(ctx)
                _set_upstream(ctx, 10)

            s.step(down11)
            name = "upstream 11: optimise indexes"
        else:
            raise MigrationError(
                f"nothing to revert at {before.describe()} (upstream versions below 11 are cc-backend's own)"
            )
        return MigrationResult(before, s.read(), [name], copy)


def optimize(db: Database) -> None:
    """VACUUM and ANALYZE (upstream ``-optimize-db``): reclaim space, refresh planner statistics."""
    if db.is_sqlite:
        from cc_core.db.engine import connect_sqlite

        assert db.path is not None
        conn = connect_sqlite(db.path, db.db_config, writer=True)
        try:
            conn.execute("VACUUM")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        with db.write_engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE")


def schema_version(db: Database) -> SchemaVersion:
    with _Session(db) as s:
        return s.read()


def initialise_database(path_or_url: str | Path) -> SchemaVersion:
    """Create a database at the current version (or check an existing one); `clustercockpit init` calls this."""
    from cc_core.db.engine import Database

    with Database(path_or_url, check_version=False) as db:
        v = schema_version(db)
        check_servable(v, where=str(path_or_url))
        return v


__all__ = [
    "CURRENT_VERSION",
    "MIGRATIONS",
    "UPSTREAM_VERSION",
    "MigrationResult",
    "SchemaVersion",
    "backup_sqlite",
    "check_servable",
    "create_schema",
    "initialise_database",
    "migrate",
    "optimize",
    "revert",
    "schema_version",
]

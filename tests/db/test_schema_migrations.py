"""Schema creation, version checks, upstream database migration, our reversible migrations, backups."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import inspect

from cc_core.db import (
    CURRENT_VERSION,
    Database,
    MigrationError,
    NotAClusterCockpitDatabase,
    PageRequest,
    SchemaDirtyError,
    SchemaOutdatedError,
    SchemaTooNewError,
    initialise_database,
    migrate,
    optimize,
    revert,
    schema_version,
)
from cc_core.db import tables as T
from cc_core.db.migrations import MIGRATIONS, UPSTREAM_11_JOB_INDEXES
from cc_core.schema.job import Tag
from tests.db.conftest import ADMIN
from tests.db.test_lifecycle import make_job

UPSTREAM_COLUMNS = {
    "job": {
        "id",
        "job_id",
        "cluster",
        "subcluster",
        "submit_time",
        "start_time",
        "hpc_user",
        "project",
        "cluster_partition",
        "array_job_id",
        "duration",
        "walltime",
        "job_state",
        "meta_data",
        "resources",
        "num_nodes",
        "num_hwthreads",
        "num_acc",
        "smt",
        "shared",
        "monitoring_status",
        "energy",
        "energy_footprint",
        "footprint",
    },
    "tag": {"id", "tag_type", "tag_name", "insert_ts", "tag_scope"},
    "jobtag": {"job_id", "tag_id", "insert_ts"},
    "hpc_user": {"username", "password", "ldap", "name", "roles", "email", "projects"},
    "configuration": {"username", "confkey", "value"},
    "node": {"id", "hostname", "cluster", "subcluster", "meta_data"},
    "node_state": {
        "id",
        "time_stamp",
        "jobs_running",
        "cpus_allocated",
        "memory_allocated",
        "gpus_allocated",
        "node_state",
        "health_state",
        "health_metrics",
        "node_id",
    },
}


def _affinity(type_name: str) -> str:
    t = type_name.upper()
    if "INT" in t:
        return "INTEGER"
    if any(x in t for x in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(x in t for x in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return t


def _default(value: Any) -> Any:
    if value is None or str(value).upper() == "NULL":
        return None
    return str(value).strip("'\"").replace("'", "").replace('"', "")


def _where(clause: Any) -> str:
    return "" if clause is None else str(clause).strip("()")


def describe_schema(url: str) -> dict[str, Any]:
    """Tables, columns (type affinity, null, default), indexes (+ partial), uniques and foreign keys."""
    db = Database(url, check_version=False)
    try:
        insp = inspect(db.read_engine)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            if table.startswith("sqlite_"):
                continue
            pk = set(insp.get_pk_constraint(table)["constrained_columns"])
            cols = {
                c["name"]: (
                    _affinity(str(c["type"])) if db.is_sqlite else str(c["type"]),
                    True if c["name"] in pk else c["nullable"],
                    _default(c.get("default")),
                )
                for c in insp.get_columns(table)
            }
            indexes = {
                i["name"]: (
                    tuple(i["column_names"]),
                    bool(i["unique"]),
                    _where(i.get("dialect_options", {}).get(f"{db.dialect}_where")),
                )
                for i in insp.get_indexes(table)
                if not i["name"].startswith("sqlite_autoindex") and not i.get("duplicates_constraint")
            }
            uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
            fks = sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    (f.get("options") or {}).get("ondelete"),
                )
                for f in insp.get_foreign_keys(table)
            )
            out[table] = {
                "columns": cols,
                "indexes": indexes,
                "uniques": uniques,
                "fks": fks,
                "pk": sorted(pk),
            }
        return out
    finally:
        db.close_sync()


def test_fresh_database_is_current(db_url: str) -> None:
    with Database(db_url) as db:
        v = schema_version(db)
    assert (v.upstream, v.dirty, v.ours) == (11, False, CURRENT_VERSION)
    schema = describe_schema(db_url)
    for table, cols in UPSTREAM_COLUMNS.items():
        assert set(schema[table]["columns"]) == cols, table
    assert ("tag_type", "tag_name", "tag_scope") in schema["tag"]["uniques"]
    assert ("job_id", "cluster", "start_time") in schema["job"]["uniques"]
    assert set(schema["job"]["indexes"]) == {d.name for d in T.JOB_INDEXES}
    assert (
        schema["job"]["indexes"]["jobs_running"][2].replace(" ", "") == "job_state='running'::text"
        if ("postgresql" in db_url)
        else schema["job"]["indexes"]["jobs_running"][2] == "job_state = 'running'"
    )
    if "postgresql" in db_url:
        for col in ("meta_data", "resources", "footprint", "energy_footprint"):
            assert schema["job"]["columns"][col][0] == "JSONB"
        assert schema["hpc_user"]["columns"]["roles"][0] == "JSONB"


def test_reopening_is_cheap_and_idempotent(db_url: str) -> None:
    with Database(db_url) as db:
        db.jobs.bulk_insert_sync([make_job(1, job_state="completed")])
    initialise_database(db_url)  # an existing current database is fine
    with Database(db_url) as db:
        assert anyio.run(db.jobs.count, ADMIN, None) == 1


def _stamp(
    path: Path, *, upstream: int | None = 11, dirty: int = 0, ours: int | None = CURRENT_VERSION
) -> None:
    conn = sqlite3.connect(path)
    if upstream is not None:
        conn.execute("UPDATE schema_migrations SET version = ?, dirty = ?", (upstream, dirty))
    if ours is not None:
        conn.execute("DELETE FROM cc_schema_migrations WHERE version > ?", (ours,))
        if ours > CURRENT_VERSION:
            conn.execute("INSERT INTO cc_schema_migrations VALUES (?, 'future', 0)", (ours,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("stamp", "error", "says"),
    [
        ({"ours": CURRENT_VERSION - 1}, SchemaOutdatedError, "clustercockpit migrate-db"),
        ({"ours": CURRENT_VERSION + 1}, SchemaTooNewError, "newer"),
        ({"upstream": 12}, SchemaTooNewError, "newer"),
        ({"dirty": 1}, SchemaDirtyError, "dirty"),
        ({"upstream": 9}, SchemaOutdatedError, "cc-backend"),
    ],
)
def test_serving_refuses_other_versions(
    tmp_path: Path, stamp: dict[str, int], error: type[Exception], says: str
) -> None:
    path = tmp_path / "job.db"
    initialise_database(path)
    _stamp(path, **stamp)
    with pytest.raises(error, match=says):
        Database(path)
    with Database(path, check_version=False) as db:  # the migration commands can still open it
        assert not schema_version(db).is_current


def test_force_clears_the_dirty_flag_then_migrates(tmp_path: Path) -> None:
    """Upstream's -force-db: `migrate-db --force` declares a dirty schema clean (backup first)."""
    from cc_core.db import migrate

    path = tmp_path / "job.db"
    initialise_database(path)
    _stamp(path, dirty=1, ours=CURRENT_VERSION - 1)
    with Database(path, check_version=False) as db:
        with pytest.raises(SchemaDirtyError):
            migrate(db)  # without force: refused, nothing changed
        assert schema_version(db).dirty
        result = migrate(db, force=True)
        assert result.steps[0] == "force upstream version 11 (dirty flag cleared)"
        assert len(result.steps) == 2 and result.after.is_current
        assert result.backup is not None and "dirty" in result.backup.name
    backup = sqlite3.connect(result.backup)
    assert backup.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(11, 1)]
    backup.close()
    with Database(path) as db:  # servable now
        assert schema_version(db).is_current


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (x)")
    conn.close()
    with pytest.raises(NotAClusterCockpitDatabase):
        Database(path)


def test_bad_urls() -> None:
    from cc_core.db import DBError

    with pytest.raises(DBError, match="unsupported"):
        Database("mysql://user@host/db")
    with pytest.raises(DBError):
        Database("")


def test_reversible_migrations_both_dialects(db_url: str) -> None:
    """Down through every migration of ours (and upstream's 11 on SQLite), up again: same schema."""
    fresh = describe_schema(db_url)
    with Database(db_url, check_version=False) as db:
        db.jobs.bulk_insert_sync(
            [make_job(i, job_state="completed", tags=[Tag(type="app", name="x")]) for i in range(1, 6)]
        )
        for m in reversed(MIGRATIONS):
            result = revert(db, backup=False)
            assert result.steps == [f"{m.version:03d} {m.name}"]
        at_zero = describe_schema(db_url)
        assert "job_cache" in at_zero
        assert ("tag_type", "tag_name") in at_zero["tag"]["uniques"]
        assert {d.name for d in UPSTREAM_11_JOB_INDEXES} <= set(at_zero["job"]["indexes"])
        if db.is_sqlite:
            assert revert(db, backup=False).after.upstream == 10
            with pytest.raises(MigrationError):
                revert(db, backup=False)
        else:
            with pytest.raises(MigrationError):
                revert(db, backup=False)
        result = migrate(db, backup=False)
        assert result.after.is_current
    assert describe_schema(db_url) == fresh
    with Database(db_url) as db:
        page = anyio.run(
            lambda: db.jobs.list(ADMIN, None, PageRequest(items_per_page=-1, page=1), with_tags=True)
        )
        assert sorted(j.job_id for j in page.items) == [1, 2, 3, 4, 5]
        assert all(j.tags and j.tags[0].name == "x" for j in page.items)


def test_revert_refuses_scope_collisions(db: Database) -> None:
    anyio.run(lambda: db.tags.create(ADMIN, "app", "vasp", "global"))
    anyio.run(lambda: db.tags.create(ADMIN, "app", "vasp", "admin"))
    for _ in range(CURRENT_VERSION - 1):
        revert(db, backup=False)
    with pytest.raises(MigrationError, match="more than one scope"):
        revert(db, backup=False)
    assert schema_version(db).ours == 1  # unchanged


def test_job_cache_rows_are_moved(sqlite_db: Database) -> None:
    for _ in range(CURRENT_VERSION - 1):
        revert(sqlite_db, backup=False)
    assert schema_version(sqlite_db).ours == 1
    cols = ", ".join(c.name for c in T.job.columns if c.name != "id")
    job = make_job(77, job_state="running")
    from cc_core.db.convert import INSERT_COLUMNS, job_to_row

    row = dict(zip(INSERT_COLUMNS, job_to_row(job), strict=True))
    conn = sqlite3.connect(sqlite_db.path)  # type: ignore[arg-type]
    conn.execute(
        f"INSERT INTO job_cache ({cols}) VALUES ({', '.join('?' for _ in T.job.columns if _.name != 'id')})",  # noqa: S608
        [row[c.name] for c in T.job.columns if c.name != "id"],
    )
    conn.commit()
    conn.close()
    migrate(sqlite_db, backup=False)
    got = anyio.run(lambda: sqlite_db.jobs.find(ADMIN, 77))
    assert got.job_state == "running" and got.resources == job.resources


def test_backup_is_a_consistent_copy(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    with Database(path) as db:
        db.jobs.bulk_insert_sync([make_job(i, job_state="completed") for i in range(1, 11)])
        result = revert(db)  # backs up first
    assert result.backup is not None and result.backup.name.startswith("job.db.backup-v11.")
    conn = sqlite3.connect(result.backup)
    assert conn.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 10
    assert conn.execute("SELECT MAX(version) FROM cc_schema_migrations").fetchone()[0] == CURRENT_VERSION
    conn.close()
    with Database(path, check_version=False) as db:
        optimize_result = migrate(db)
        assert optimize_result.backup is not None and optimize_result.after.is_current
        optimize(db)


# ------------------------------------------------------------------ upstream's job-v10.db


@pytest.fixture
def upstream_copy(shared_reference: Path, tmp_path: Path) -> Path:
    source = shared_reference / "upstream-db" / "job-v10.db"
    if not source.is_file():
        pytest.fail(f"{source} is missing from ../shared/reference")
    target = tmp_path / "job.db"
    shutil.copyfile(source, target)
    target.chmod(0o644)
    return target


def _counts(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        return {
            "jobs": conn.execute("SELECT COUNT(*), SUM(id), SUM(job_id), SUM(duration) FROM job").fetchone(),
            "tags": conn.execute("SELECT id, tag_type, tag_name, tag_scope FROM tag ORDER BY id").fetchall(),
            "jobtag": conn.execute("SELECT job_id, tag_id FROM jobtag ORDER BY 1, 2").fetchall(),
            "users": conn.execute(
                "SELECT username, password, ldap, roles, projects FROM hpc_user"
            ).fetchall(),
            "config": conn.execute("SELECT * FROM configuration ORDER BY 1, 2").fetchall(),
            "nodes": conn.execute("SELECT COUNT(*) FROM node").fetchone(),
        }
    finally:
        conn.close()


def test_upstream_v10_database_migrates_in_place(upstream_copy: Path, tmp_path: Path) -> None:
    before = _counts(upstream_copy)
    assert before["jobs"][0] == 544
    with pytest.raises(SchemaOutdatedError, match="clustercockpit migrate-db"):
        Database(upstream_copy)
    with Database(upstream_copy, check_version=False) as db:
        result = migrate(db)
    assert result.before.upstream == 10 and result.after.is_current
    assert result.steps[0].startswith("upstream 11") and len(result.steps) == 1 + CURRENT_VERSION
    assert result.backup is not None and _counts(result.backup) == before
    assert _counts(upstream_copy) == before  # every row (and id) kept

    # the migrated file has exactly the schema of a fresh database (and upstream can still read it)
    fresh = tmp_path / "fresh.db"
    initialise_database(fresh)
    assert describe_schema(str(upstream_copy)) == describe_schema(str(fresh))
    conn = sqlite3.connect(upstream_copy)
    assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(11, 0)]
    conn.close()

    with Database(upstream_copy) as db:
        page = anyio.run(
            lambda: db.jobs.list(
                ADMIN, None, PageRequest(items_per_page=-1, page=1), with_tags=True, with_metadata=True
            )
        )
        assert page.count == 544 and all(j.resources for j in page.items)
        assert sum(1 for j in page.items if j.tags) > 0
        stats = anyio.run(lambda: db.stats.jobs_statistics(ADMIN, None, group_by="CLUSTER"))
        assert {s.id: s.total_jobs for s in stats} == {"alex": 303, "fritz": 241}
        demo = anyio.run(lambda: db.users.get("demo"))
        assert demo is not None and demo.roles == ["admin", "api"] and demo.password_hash
        assert anyio.run(lambda: db.user_config.get("demo"))["jobList_showFootprint:fritz"] is False
        # now possible: the same tag name in another scope, and upstream's out_of_memory state
        anyio.run(lambda: db.tags.create(ADMIN, "app", "python", "global"))
        db.jobs.bulk_insert_sync([make_job(1, job_state="out_of_memory")])


def test_upstream_database_reverts_to_v10_and_back(upstream_copy: Path) -> None:
    with Database(upstream_copy, check_version=False) as db:
        migrate(db, backup=False)
        for _ in range(CURRENT_VERSION + 1):
            revert(db, backup=False)
        v = schema_version(db)
        assert (v.upstream, v.ours) == (10, 0)
        assert migrate(db, backup=False).after.is_current
    with Database(upstream_copy) as db:
        assert anyio.run(lambda: db.jobs.count(ADMIN, None)) == 544


def test_missing_indexes_are_restored_on_open(db_url: str) -> None:
    """A bulk load with deferred indexes that died leaves the job table without indexes."""
    with Database(db_url) as db:
        db.write_sync(lambda c: [c.exec_driver_sql(d.drop_sql()) for d in T.JOB_INDEXES])
    with Database(db_url) as db:
        pass
    assert set(describe_schema(db_url)["job"]["indexes"]) == {d.name for d in T.JOB_INDEXES}

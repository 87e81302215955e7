"""Every index we create is used by the query it exists for (SQLite EXPLAIN QUERY PLAN).

The statements are the ones the repositories really send (captured from the engine), run against a
generated database with planner statistics (as after ``migrate-db``, ``optimize-db`` or a bulk
load), and each test names the index the plan must use. An index no test justifies is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event

from cc_core.auth.user import User
from cc_core.db import (
    Database,
    JobFilter,
    NodeFilter,
    NodeStateUpdate,
    PageRequest,
    StringInput,
    TimeRange,
)
from cc_core.db import tables as T
from cc_core.db.generate import generate_jobs
from tests.db.conftest import ADMIN, NOW


@pytest.fixture(scope="module")
def plan_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("plans") / "job.db"
    db = Database(path)
    db.clock = lambda: NOW
    jobs = generate_jobs(20_000, seed=3, now=NOW, span_days=365, users=400, projects=60, with_hwthreads=False)
    db.jobs.bulk_insert_sync(jobs, defer_indexes=True)  # ends with ANALYZE
    anyio.run(
        lambda: db.nodes.update_states(
            "fritz",
            [NodeStateUpdate(hostname=f"f{i:04d}", state="idle", subcluster="main") for i in range(200)],
            time_stamp=NOW - 600,
        )
    )
    anyio.run(
        lambda: db.nodes.update_states(
            "fritz",
            [NodeStateUpdate(hostname=f"f{i:04d}", state="allocated") for i in range(200)],
            time_stamp=NOW,
        )
    )
    db.write_sync(lambda c: c.exec_driver_sql("ANALYZE"))
    yield db
    db.close_sync()


def plans(db: Database, call: Callable[[], Any]) -> list[str]:
    """The query plans (one string per SELECT/DELETE/UPDATE statement) of what ``call`` executes."""
    captured: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE")):
            captured.append((statement, parameters))

    for engine in (db.read_engine, db.write_engine):
        event.listen(engine, "before_cursor_execute", capture)
    try:
        anyio.run(call)
    finally:
        for engine in (db.read_engine, db.write_engine):
            event.remove(engine, "before_cursor_execute", capture)
    conn = db.read_engine.raw_connection()
    try:
        out = []
        for sql, params in captured:
            rows = conn.cursor().execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            out.append(" | ".join(r[3] for r in rows))
        return out
    finally:
        conn.close()


FRITZ = StringInput(eq="fritz")
USER = User("u0001", ["user"])

# (index, why, call, which statement) — the statement index picks the query among those a call runs.
CASES: list[tuple[str, Callable[[Database], Callable[[], Any]], int]] = [
    ("jobs_starttime", lambda db: lambda: db.jobs.list(ADMIN, None, PageRequest(50, 1), count=False), 0),
    (
        "jobs_cluster_starttime_state",  # the count of the jobs page: index only
        lambda db: (
            lambda: db.jobs.list(
                ADMIN,
                [JobFilter(cluster=FRITZ, state=["completed"], start_time=TimeRange(range="last30d"))],
                PageRequest(50, 1),
            )
        ),
        1,
    ),
    (
        "jobs_cluster_starttime_state",  # histograms over a cluster and time range
        lambda db: (
            lambda: db.stats.jobs_statistics(
                ADMIN,
                [JobFilter(cluster=FRITZ, start_time=TimeRange(range="last7d"))],
                fields=["histNumNodes"],
            )
        ),
        0,
    ),
    ("jobs_user_starttime", lambda db: lambda: db.jobs.list(USER, None, PageRequest(50, 1)), 0),
    (
        "jobs_project_starttime",
        lambda db: (
            lambda: db.jobs.list(ADMIN, [JobFilter(project=StringInput(eq="p007"))], PageRequest(50, 1))
        ),
        0,
    ),
    (
        "jobs_arrayjobid_starttime",
        lambda db: lambda: db.jobs.list(ADMIN, [JobFilter(array_job_id=1_000_007)], PageRequest(50, 1)),
        0,
    ),
    (
        "jobs_cluster_user_starttime_stats",
        lambda db: (
            lambda: db.stats.jobs_statistics(
                ADMIN,
                [JobFilter(cluster=FRITZ, start_time=TimeRange(range="last30d"))],
                fields=["totalJobs", "totalCoreHours"],
                group_by="USER",
                sort_by="TOTALCOREHOURS",
                page=PageRequest(10, 1),
            )
        ),
        0,
    ),
    (
        "jobs_cluster_project_starttime_stats",
        lambda db: (
            lambda: db.stats.jobs_statistics(
                ADMIN, [JobFilter(cluster=FRITZ)], fields=["totalJobs", "totalNodeHours"], group_by="PROJECT"
            )
        ),
        0,
    ),
    (
        "jobs_running",
        lambda db: (
            lambda: db.stats.jobs_statistics(
                ADMIN,
                [JobFilter(cluster=FRITZ, state=["running"])],
                fields=["totalJobs", "totalNodes"],
                group_by="USER",
            )
        ),
        0,
    ),
    (
        "jobs_running",
        lambda db: (
            lambda: db.jobs.list(ADMIN, [JobFilter(cluster=FRITZ, state=["running"])], PageRequest(50, 1))
        ),
        0,
    ),
    ("jobs_running_starttime", lambda db: lambda: db.jobs.used_nodes(ADMIN, NOW), 0),
    ("jobs_archive_pending", lambda db: lambda: _archiver(db).pending_jobs(), 0),
    ("tags_tagid", lambda db: lambda: db.jobs.list(ADMIN, [JobFilter(tags=[1, 2])], PageRequest(50, 1)), 0),
    ("nodestates_nodeid_timestamp", lambda db: lambda: db.nodes.list(ADMIN), 0),
    (
        "nodestates_timestamp",
        lambda db: lambda: db.nodes.count_states_timed(ADMIN, [NodeFilter(time_start=NOW - 60)]),
        0,
    ),
    # Constraint indexes: the job key (find / duplicate check) and the jobtag primary key.
    ("sqlite_autoindex_job_1", lambda db: lambda: db.jobs.find(ADMIN, 1_000_042, "fritz"), 0),
    ("sqlite_autoindex_jobtag_1", lambda db: lambda: db.tags.of_jobs(ADMIN, [1, 2, 3]), 0),
]


def _archiver(db: Database) -> Any:
    """An archiver on ``db`` alone: its sweep query needs neither archive nor metric backend."""
    from cc_core.metrics.archiver import Archiver

    return Archiver(db, None, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("index", "make", "which"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_index_is_used(
    plan_db: Database, index: str, make: Callable[[Database], Callable[[], Any]], which: int
) -> None:
    try:
        got = plans(plan_db, make(plan_db))
    except Exception as e:  # a lookup that finds nothing still ran its query
        if type(e).__name__ != "JobNotFoundError":
            raise
        got = plans_of_failed(plan_db, make(plan_db))
    assert f"INDEX {index} " in got[which] + " ", got


def plans_of_failed(db: Database, call: Callable[[], Any]) -> list[str]:
    async def swallow() -> None:
        try:
            await call()
        except Exception:  # noqa: S110 - the plan of the query is what we look at
            pass

    return plans(db, swallow)


def test_every_index_is_justified() -> None:
    justified = {c[0] for c in CASES}
    ours = {d.name for d in T.ALL_INDEXES}
    assert ours <= justified, f"indexes without a query-plan test: {sorted(ours - justified)}"


def test_jobs_page_reads_only_the_page(plan_db: Database) -> None:
    """The page query walks an index in start-time order and stops after the page, without sorting."""
    got = plans(
        plan_db,
        lambda: plan_db.jobs.list(
            ADMIN,
            [JobFilter(cluster=FRITZ, state=["completed"], start_time=TimeRange(range="last30d"))],
            PageRequest(50, 1),
        ),
    )
    assert "USE TEMP B-TREE FOR ORDER BY" not in got[0], got
    assert "INDEX" in got[0], got

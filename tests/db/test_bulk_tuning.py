"""SQLite tuning of the write paths: rollback journal for bulk loads, WAL size, writer thread, inline start_job.

A bulk load with deferred indexes runs with SQLite's rollback journal (pages written once instead of
WAL + checkpoint) and must return the file to WAL mode afterwards, fall back to WAL when the file is in
use elsewhere, and stay atomic across a real process crash in the middle of the load.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy.exc

from cc_core.config import DbConfig
from cc_core.db import Database
from cc_core.db import tables as T
from cc_core.db.engine import NOT_RUN, connect_sqlite
from cc_core.db.errors import DuplicateJobError
from cc_core.db.generate import generate_jobs
from cc_core.db.jobs import SYSTEM_USER
from tests.db.conftest import NOW


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def _index_names(db: Database) -> set[str]:
    rows = db.read_sync(
        lambda c: c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    )
    return {r[0] for r in rows}


def test_bulk_load_uses_the_rollback_journal_and_restores_wal(sqlite_db: Database) -> None:
    path = sqlite_db.path
    assert path is not None
    sqlite_db.jobs.count  # noqa: B018 - the repository exists before the load
    seen: list[str] = []
    real_create = sqlite_db.jobs.create_job_indexes

    def spy(conn: object) -> None:  # the mode while the load's transaction is open
        seen.append(str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()))  # type: ignore[attr-defined]
        real_create(conn)  # type: ignore[arg-type]

    sqlite_db.jobs.create_job_indexes = spy  # type: ignore[method-assign]
    # A reader used before the load: its idle pooled connection must not block the switch.
    assert sqlite_db.jobs.list_sync(SYSTEM_USER, None).count == 0
    ids = sqlite_db.jobs.bulk_insert_sync(generate_jobs(300, seed=5, now=NOW), defer_indexes=True)
    assert seen == ["delete"]
    assert len(ids) == 300 and None not in ids
    assert _journal_mode(path) == "wal"
    writer = sqlite_db._writer
    assert writer is not None
    assert writer.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert {d.name for d in T.JOB_INDEXES} <= _index_names(sqlite_db)
    # Full statistics for the rebuilt indexes (every row counted, not sampled).
    stat = sqlite_db.read_sync(lambda c: c.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1").fetchall())
    by_index = {r[0]: r[1] for r in stat}
    assert {d.name for d in T.JOB_INDEXES if not d.where} <= set(by_index)
    assert by_index["jobs_starttime"].split()[0] == "300"
    assert sqlite_db.jobs.list_sync(SYSTEM_USER, None).count == 300


def test_bulk_load_stays_in_wal_when_another_connection_has_the_file(sqlite_db: Database) -> None:
    path = sqlite_db.path
    assert path is not None
    other = sqlite3.connect(str(path), isolation_level=None)  # e.g. a running server's reader
    try:
        other.execute("SELECT COUNT(*) FROM job").fetchone()
        with sqlite_db.bulk_journal() as switched:
            assert switched is False
        ids = sqlite_db.jobs.bulk_insert_sync(generate_jobs(50, seed=6, now=NOW), defer_indexes=True)
        assert len(ids) == 50
        assert other.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 50
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_failed_bulk_load_in_rollback_mode_leaves_the_database_unchanged(sqlite_db: Database) -> None:
    sqlite_db.jobs.bulk_insert_sync(generate_jobs(100, seed=7, now=NOW))
    dup = generate_jobs(100, seed=7, now=NOW)[40]  # same key as a stored job: the load fails half-way
    fresh = generate_jobs(200, seed=8, now=NOW, first_job_id=50_000_000)
    with pytest.raises(DuplicateJobError):
        sqlite_db.jobs.bulk_insert_sync([*fresh[:150], dup, *fresh[150:]], defer_indexes=True)
    assert sqlite_db.jobs.list_sync(SYSTEM_USER, None).count == 100
    assert {d.name for d in T.JOB_INDEXES} <= _index_names(sqlite_db)
    assert _journal_mode(sqlite_db.path) == "wal"  # type: ignore[arg-type]


_CRASHING_LOAD = """
import os, sys
from cc_core.config import DbConfig
from cc_core.db import Database
from cc_core.db.generate import generate_jobs

path, victim = sys.argv[1], int(sys.argv[2])
# A small page cache, so the load spills pages into the database file before it dies.
db = Database(path, db_config=DbConfig(cache_size_mb=1))
raw = db._writer.connection.driver_connection
raw.create_function("cc_crash", 0, lambda: os._exit(17))
db.write_sync(lambda c: c.exec_driver_sql(
    f"CREATE TRIGGER crash BEFORE INSERT ON job WHEN NEW.job_id = {victim} BEGIN SELECT cc_crash(); END"
))
db.jobs.bulk_insert_sync(generate_jobs(6000, seed=9, now=1_760_000_000, first_job_id=70_000_000),
                         defer_indexes=True, batch_size=500)
print("not reached")
"""


def test_process_crash_during_a_bulk_load_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    with Database(path) as db:
        db.jobs.bulk_insert_sync(generate_jobs(100, seed=7, now=NOW))
    victim = generate_jobs(6000, seed=9, now=NOW, first_job_id=70_000_000)[5500].job_id
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(_CRASHING_LOAD))
    r = subprocess.run(
        [sys.executable, str(script), str(path), str(victim)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 17, r.stderr
    # The process died inside the transaction in rollback-journal mode: a hot journal is left behind.
    assert Path(f"{path}-journal").exists()
    with Database(path) as db:
        assert db.jobs.list_sync(SYSTEM_USER, None).count == 100
        assert {d.name for d in T.JOB_INDEXES} <= _index_names(db)
        assert db.read_sync(lambda c: c.exec_driver_sql("PRAGMA integrity_check").scalar()) == "ok"
        db.write_sync(lambda c: c.exec_driver_sql("DROP TRIGGER crash"))
    assert _journal_mode(path) == "wal"


@pytest.mark.parametrize(("mb", "pages"), [(64, 64 * 256), (0, 1000)])
def test_wal_autocheckpoint_setting(tmp_path: Path, mb: int, pages: int) -> None:
    conn = connect_sqlite(tmp_path / "x.db", DbConfig(wal_autocheckpoint_mb=mb), writer=True)
    try:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
        if mb:
            assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == mb * 1024 * 1024
    finally:
        conn.close()


def test_async_writes_use_the_writer_thread(sqlite_db: Database) -> None:
    async def session() -> list[str]:
        names = [await sqlite_db.write(lambda c: threading.current_thread().name) for _ in range(3)]
        with pytest.raises(DuplicateJobError, match="boom"):
            await sqlite_db.write(lambda c: (_ for _ in ()).throw(DuplicateJobError("boom")))
        return names

    assert asyncio.run(session()) == ["cc-db-writer"] * 3
    assert asyncio.run(session()) == ["cc-db-writer"] * 3  # a second event loop, same thread
    thread = sqlite_db._write_thread
    assert thread is not None and thread._thread.is_alive()
    sqlite_db.close_sync()
    assert not thread._thread.is_alive()


def test_cancelled_async_write_still_finishes_before_the_caller_returns(sqlite_db: Database) -> None:
    def slow_insert(conn: Any) -> None:
        time.sleep(0.3)
        conn.exec_driver_sql("INSERT INTO tag (tag_type, tag_name, tag_scope) VALUES ('t', 'n', 'global')")

    async def cancelled() -> float:
        t0 = time.perf_counter()
        with anyio.move_on_after(0.05) as scope:
            await sqlite_db.write(slow_insert)
        assert scope.cancelled_caught or scope.cancel_called
        return time.perf_counter() - t0

    assert asyncio.run(cancelled()) >= 0.3  # waited for the transaction instead of abandoning it
    rows = sqlite_db.read_sync(lambda c: c.exec_driver_sql("SELECT tag_name FROM tag").fetchall())
    assert [r[0] for r in rows] == ["n"]


# The driver's error on the plain-sqlite3 paths, SQLAlchemy's wrapper of it on the writer thread's.
COMMIT_ERRORS = (sqlite3.IntegrityError, sqlalchemy.exc.IntegrityError)


def _fail_at_commit(db: Database) -> None:
    """A real commit-time failure: a job insert adds a row whose deferred foreign key is unmet."""

    def run(conn: Any) -> None:
        conn.exec_driver_sql(
            "CREATE TABLE commit_guard (ref INTEGER REFERENCES tag(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER guard AFTER INSERT ON job WHEN NEW.job_id >= 900 "
            "BEGIN INSERT INTO commit_guard VALUES (-1); END"
        )

    db.write_sync(run)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-thread"])
def test_start_job_reports_a_failed_commit(tmp_path: Path, inline: bool) -> None:

    with Database(tmp_path / "job.db", db_config=DbConfig(inline_start_job=inline)) as db:
        _check_failed_commits(db)


def _check_failed_commits(sqlite_db: Database) -> None:
    from tests.db.test_lifecycle import make_job

    _fail_at_commit(sqlite_db)

    async def one_then_many() -> list[str]:
        with pytest.raises(COMMIT_ERRORS, match="FOREIGN KEY"):
            await sqlite_db.jobs.start(make_job(900))
        outcomes: list[str] = []

        async def client(i: int) -> None:
            try:
                await sqlite_db.jobs.start(make_job(i))
                outcomes.append("ok")
            except COMMIT_ERRORS:
                outcomes.append("failed")

        async with anyio.create_task_group() as tg:  # a group commit with one poisoned job in it
            for i in (1, 2, 901, 3):
                tg.start_soon(client, i)
        return outcomes

    outcomes = asyncio.run(one_then_many())
    stored = {j.job_id for j in sqlite_db.jobs.list_sync(SYSTEM_USER, None).items}
    # Nobody was told "started" for a job that is not in the database (a failed commit fails all of
    # its batch); the first job, alone in its transaction, is not stored.
    assert 900 not in stored and 901 not in stored
    assert outcomes.count("ok") == len(stored) and len(outcomes) == 4
    with pytest.raises(sqlite3.IntegrityError):
        sqlite_db.jobs.start_sync(make_job(902))
    assert sqlite_db._writer is not None
    assert not sqlite_db._writer.connection.driver_connection.in_transaction  # type: ignore[union-attr]
    assert sqlite_db.jobs.start_sync(make_job(4)).id is not None


def test_start_job_runs_inline_when_the_writer_is_idle(tmp_path: Path) -> None:
    from tests.db.test_lifecycle import make_job

    db = Database(tmp_path / "job.db", db_config=DbConfig(wal_autocheckpoint_mb=1))  # 256 pages
    checkpoints: list[int] = []
    real_checkpoint = db._checkpoint
    db._checkpoint = lambda: (checkpoints.append(1), real_checkpoint())  # type: ignore[method-assign]
    writer = db._writer
    assert writer is not None
    raw = writer.connection.driver_connection
    assert raw is not None
    try:

        async def starts() -> list[int | None]:
            out = [(await db.jobs.start(make_job(i))).id for i in range(1, 61)]
            assert db._inline_mode  # set up for inline commits ...
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
            await db.write(lambda c: None)  # ... until a thread-side write restores the settings
            return out

        ids = asyncio.run(starts())
        assert len(set(ids)) == 60 and None not in ids
        assert not db._inline_mode
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 256
        # every 256 // 12 = 21 inline commits a checkpoint was queued to the checkpoint thread (one at
        # a time: a second one due while the first is still copying is left to it)
        assert 1 <= len(checkpoints) <= 2
        assert db.jobs.list_sync(SYSTEM_USER, None).count == 60
        with pytest.raises(DuplicateJobError):  # the duplicate check holds on the inline path
            asyncio.run(db.jobs.start(make_job(5)))
    finally:
        db.close_sync()


def test_start_job_waits_in_the_thread_while_another_process_writes(sqlite_db: Database) -> None:
    from tests.db.test_lifecycle import make_job

    path = sqlite_db.path
    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # e.g. a CLI command holding the write lock
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))

    async def start() -> tuple[int | None, float]:
        t0 = time.perf_counter()
        timer.start()
        job = await sqlite_db.jobs.start(make_job(1))
        return job.id, time.perf_counter() - t0

    try:
        id_, waited = asyncio.run(start())
    finally:
        timer.join()
        other.close()
    assert id_ is not None and waited >= 0.25  # waited for the lock (not failed, not blocked the loop)
    assert sqlite_db.jobs.list_sync(SYSTEM_USER, None).count == 1


def test_inline_start_job_can_be_switched_off(tmp_path: Path) -> None:
    from tests.db.test_lifecycle import make_job

    with Database(tmp_path / "job.db", db_config=DbConfig(inline_start_job=False)) as db:
        asyncio.run(db.jobs.start(make_job(1)))
        assert not db._inline_mode and db._write_thread is not None


def _wal_frames(db: Database) -> int:
    """Frames in the WAL file now (a PASSIVE checkpoint reports them)."""
    conn = sqlite3.connect(str(db.path))
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def test_checkpoints_do_not_block_the_writer(tmp_path: Path) -> None:
    """A checkpoint of the inline writes runs on its own connection: a write in flight on the writer
    (its lock held) does not hold it up, and it copies the WAL into the database file."""
    from tests.db.test_lifecycle import make_job

    with Database(tmp_path / "job.db") as db:
        for i in range(1, 40):
            db.jobs.start_sync(make_job(i))
        with db._write_lock:  # a write in flight
            t = threading.Thread(target=db._checkpoint)
            t.start()
            t.join(10)
            assert not t.is_alive(), "the checkpoint waited for the writer"
        assert db._wal_frames > 0
        conn = sqlite3.connect(str(db.path))
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
        assert busy == 0 and copied == frames  # everything was copied


def test_an_overgrown_wal_is_checkpointed_under_the_write_lock_and_restarts(tmp_path: Path) -> None:
    """Under sustained inline writes a concurrent checkpoint never lets the WAL restart; past 4x its
    size the checkpoint takes the writer's lock, and the next write starts the WAL from the top."""
    from tests.db.test_lifecycle import make_job

    with Database(tmp_path / "job.db", db_config=DbConfig(wal_autocheckpoint_mb=1)) as db:
        raw = db._writer.connection.driver_connection  # type: ignore[union-attr]
        raw.execute("PRAGMA wal_autocheckpoint = 0")  # as in inline mode: only our checkpoints
        for i in range(1, 200):
            db.jobs.start_sync(make_job(i))
            raw.execute("PRAGMA wal_autocheckpoint = 0")
        grown = _wal_frames(db)
        assert grown > 4 * db._wal_pages  # 256 pages
        db._wal_frames = grown
        release = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            with db._write_lock:
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        holding.wait(10)
        t = threading.Thread(target=db._checkpoint)
        t.start()
        t.join(0.3)
        assert t.is_alive(), "an overgrown WAL is checkpointed under the write lock"
        release.set()
        t.join(10)
        holder.join(10)
        db.jobs.start_sync(make_job(500))  # restarts the WAL: it now holds only this commit
        assert _wal_frames(db) < 50


def test_the_writer_copies_the_tail_so_the_wal_restarts(tmp_path: Path) -> None:
    """Frames a background checkpoint could not take keep the WAL from restarting; the writer's next
    inline write copies them first (`_checkpoint_tail`), so that write starts the WAL from the top."""
    from tests.db.test_lifecycle import make_job

    with Database(tmp_path / "job.db") as db:

        def inline(job_id: int) -> None:
            out = db.write_raw_inline(lambda c: db.jobs._start(c, make_job(job_id), None))
            assert out is not NOT_RUN

        for i in range(1, 30):
            inline(i)
        reader = sqlite3.connect(str(db.path), isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM job").fetchone()  # a snapshot of the WAL as it is now
        for i in range(30, 40):  # frames the checkpoint below cannot copy while that reader looks
            inline(i)
        db._checkpoint()  # the background checkpoint: takes the frames up to the reader's snapshot
        reader.execute("COMMIT")
        reader.close()
        assert db._checkpoint_tail  # ... and leaves the rest to the writer
        inline(40)
        assert not db._checkpoint_tail
        assert _wal_frames(db) < db._wal_frames  # the WAL restarted: it holds only the last commit
        assert db.jobs.list_sync(SYSTEM_USER, None).count == 40

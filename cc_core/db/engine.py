"""Connections: one writer and a small read pool on SQLite, a pool on PostgreSQL; async by worker threads.

Why this shape:

* SQLite allows one writer at a time. A single writer connection (``BEGIN IMMEDIATE``, serialised by a
  capacity-1 limiter) never sees ``SQLITE_BUSY`` from our own process, and readers on separate
  connections keep reading during a write thanks to WAL.
* Queries are SQLAlchemy Core on synchronous connections, run in worker threads
  (`anyio.to_thread.run_sync`): one thread hop per repository call, never one await per row.
  SQLAlchemy's async engines cost ~7× per query here (see ARCHITECTURE.md).
* PostgreSQL gets an ordinary pool; concurrent writers are fine there, and the few places that need
  mutual exclusion across server replicas (the duplicate check of start_job) take an advisory lock.

`Database` is the object the rest of the program holds; the repositories hang off it
(``db.jobs``, ``db.stats``, ``db.tags``, ``db.users``, ``db.user_config``, ``db.nodes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from cc_core.db.errors import DBError

if TYPE_CHECKING:
    from cc_core.config import Config, DbConfig
    from cc_core.db.jobs import JobRepository
    from cc_core.db.nodes import NodeRepository
    from cc_core.db.stats import StatsRepository
    from cc_core.db.tags import TagRepository
    from cc_core.db.users import UserConfigRepository, UserRepository

log = logging.getLogger(__name__)

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]


def _default_db_config() -> DbConfig:
    from cc_core.config import DbConfig

    return DbConfig()


def resolve_url(db: str, base_dir: Path | None = None) -> tuple[Dialect, str]:
    """``main.db`` → (dialect, SQLAlchemy URL). A path (or ``sqlite:///``) is SQLite, a URL PostgreSQL.

    Relative paths are relative to ``base_dir`` (the directory of config.json), as every other path
    in the config.
    """
    text = db.strip()
    if not text:
        raise DBError("main.db is empty: give a file path (SQLite) or a postgresql:// URL")
    lowered = text.lower()
    if lowered.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        url = make_url(text)
        return "postgresql", url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if "://" in text and not lowered.startswith("sqlite:"):
        scheme = text.split("://", 1)[0]
        raise DBError(
            f"main.db: unsupported database URL scheme {scheme!r}; use a file path (SQLite) "
            "or postgresql://user@host/dbname"
        )
    if lowered.startswith("sqlite:"):
        url = make_url(text)
        path = Path(url.database or "")
    else:
        path = Path(text)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return "sqlite", f"sqlite:///{path}"


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def connect_sqlite(path: Path | str, cfg: DbConfig, *, writer: bool = False) -> sqlite3.Connection:
    """A tuned sqlite3 connection in autocommit mode (we issue BEGIN ourselves).

    WAL lets readers work during writes; ``synchronous=NORMAL`` is durable across application crashes
    (only a power loss can lose the last transactions) and makes commits cheap; ``foreign_keys``
    enforces jobtag/configuration cascades; the busy timeout covers other processes (CLI commands,
    a second server) holding the write lock. ``wal-autocheckpoint-mb`` sets how large the WAL grows
    before a commit copies it back (durability is the same at any size: WAL + ``synchronous=NORMAL``).
    """
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=cfg.busy_timeout_ms / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {int(cfg.busy_timeout_ms)}")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
    wal_mb = int(cfg.wal_autocheckpoint_mb)
    if wal_mb > 0:
        # Checkpoint (and truncate the -wal file back) only every few dozen MB: a start_job commit
        # touches ~11 b-tree pages, mostly the same hot ones, so rare checkpoints copy each once, and
        # their fsyncs are amortised (1.5-1.8x faster single-job transactions at 1 M jobs).
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute(f"PRAGMA wal_autocheckpoint = {wal_mb * 1024 * 1024 // page_size}")
        conn.execute(f"PRAGMA journal_size_limit = {wal_mb * 1024 * 1024}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = {-int(cfg.cache_size_mb) * 1024}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA soft_heap_limit = {int(cfg.soft_heap_limit_mb) * 1024 * 1024}")
    return conn


class Database:
    """The job database: engines, version check, repositories and the sync/async execution helpers.

    ``Database(url_or_path)`` opens an existing database for serving: it must be at the current schema
    version (else `SchemaOutdatedError` naming ``clustercockpit migrate-db``). A file or database
    without any tables is created at the current version. ``check_version=False`` is for the migration
    commands themselves.
    """

    def __init__(
        self,
        url_or_path: str | Path,
        *,
        db_config: DbConfig | None = None,
        base_dir: Path | None = None,
        short_running_jobs_duration: int = 300,
        check_version: bool = True,
        create: bool = True,
    ) -> None:
        self.db_config = db_config or _default_db_config()
        self.dialect, self.url = resolve_url(str(url_or_path), base_dir)
        self.short_running_jobs_duration = short_running_jobs_duration
        # "Now" for running-job durations and named time ranges; tests replace it with a fixed clock.
        self.clock: Callable[[], float] = time.time
        n = max(1, int(self.db_config.max_open_connections))
        self._read_limiter = anyio.CapacityLimiter(n)
        self._write_limiter = anyio.CapacityLimiter(1)
        # Serialises SQLite writes from threads that bypass the limiter (sync helpers, CLI).
        self._write_lock = threading.RLock()
        # Group commit (`write_grouped`): calls waiting for the next batch, whether a flush of them is
        # scheduled on the event loop, and whether a batch is being written in the writer thread.
        self._group_queue: list[_GroupedWrite[Any]] = []
        self._group_scheduled = False
        self._group_in_thread = False
        self._closed = False
        self._opened = False
        self._write_thread: _WriteThread | None = None
        # Checkpoints of inline writes: their own thread and connection, one at a time, and the WAL's
        # size in frames as the last one found it.
        self._checkpoint_thread: _WriteThread | None = None
        self._checkpoint_pending = False
        self._checkpoint_tail = False  # a checkpoint finished: the writer copies what came meanwhile
        self._wal_frames = 0
        # Inline start_job writes (write_raw_inline): whether the writer connection is currently set
        # up for them (busy timeout and auto-checkpoint off), and commits since the last checkpoint.
        self._inline_mode = False
        self._inline_commits = 0
        self._bulk_active = False
        if self.dialect == "sqlite":
            path = sqlite_path(self.url)
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise DBError(f"database file {path} does not exist")
            self.path: Path | None = path
            cfg = self.db_config
            self.write_engine = create_engine(
                "sqlite://",
                creator=lambda: connect_sqlite(path, cfg, writer=True),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=0,
            )
            self.read_engine = create_engine(
                "sqlite://",
                creator=lambda: connect_sqlite(path, cfg),
                poolclass=QueuePool,
                pool_size=n,
                max_overflow=0,
                pool_timeout=600,
                # Reuse the most recently used connection: its page cache is the warm one (each
                # SQLite connection has its own), the others only serve concurrent readers.
                pool_use_lifo=True,
            )
            # sqlite3 runs in autocommit mode; we open transactions ourselves (straight on the driver
            # connection: this is on every call's path). The writer takes the write lock up front.
            event.listen(self.write_engine, "begin", _begin("BEGIN IMMEDIATE"))
            event.listen(self.read_engine, "begin", _begin("BEGIN"))
        else:
            self.path = None
            engine = create_engine(
                self.url,
                poolclass=QueuePool,
                pool_size=n,
                max_overflow=max(0, int(self.db_config.max_idle_connections) - n) + 4,
                pool_recycle=max(60, int(self.db_config.max_idle_time_minutes) * 60),
                pool_pre_ping=True,
            )
            event.listen(engine, "connect", _register_pg_adapters)
            self.write_engine = engine
            self.read_engine = engine
        from cc_core.db import migrations

        try:
            migrations.prepare(self, check_version=check_version, create=create)
        except BaseException:
            self.close_sync()
            raise
        self._opened = True
        self._repos: dict[str, Any] = {}
        # SQLite: the single writer connection stays checked out for the life of the Database.
        self._writer: Connection | None = self.write_engine.connect() if self.is_sqlite else None
        self._wal_pages = 1000
        if self._writer is not None:
            raw = self._writer.connection.driver_connection
            self._wal_pages = int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) or 1000  # type: ignore[union-attr]

    @classmethod
    def from_config(cls, config: Config, *, check_version: bool = True) -> Database:
        """Open ``main.db`` with ``main.db-config`` (paths relative to the config file)."""
        return cls(
            config.main.db,
            db_config=config.main.db_config,
            base_dir=config.base_dir,
            short_running_jobs_duration=config.main.short_running_jobs_duration,
            check_version=check_version,
        )

    # ------------------------------------------------------------------ repositories

    def _repo(self, name: str, factory: Callable[[Database], T]) -> T:
        repo = self._repos.get(name)
        if repo is None:
            repo = self._repos[name] = factory(self)
        return repo

    @property
    def jobs(self) -> JobRepository:
        from cc_core.db.jobs import JobRepository

        return self._repo("jobs", JobRepository)

    @property
    def stats(self) -> StatsRepository:
        from cc_core.db.stats import StatsRepository

        return self._repo("stats", StatsRepository)

    @property
    def tags(self) -> TagRepository:
        from cc_core.db.tags import TagRepository

        return self._repo("tags", TagRepository)

    @property
    def users(self) -> UserRepository:
        from cc_core.db.users import UserRepository

        return self._repo("users", UserRepository)

    @property
    def user_config(self) -> UserConfigRepository:
        from cc_core.db.users import UserConfigRepository

        return self._repo("user_config", UserConfigRepository)

    @property
    def nodes(self) -> NodeRepository:
        from cc_core.db.nodes import NodeRepository

        return self._repo("nodes", NodeRepository)

    # ------------------------------------------------------------------ execution

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a read connection in one (read) transaction, in the calling thread."""
        with self.read_engine.connect() as conn:
            return fn(conn)

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction (committed on return, rolled back on error)."""
        if self._writer is not None:  # SQLite: the one writer connection, one thread at a time
            with self._write_lock:
                if self._inline_mode:
                    self._leave_inline_mode()
                try:
                    with self._writer.begin():
                        return fn(self._writer)
                finally:
                    # A failed COMMIT (deferred constraint, full disk) leaves SQLite's transaction
                    # open while SQLAlchemy considers it over: end it, or every later write fails.
                    raw = self._writer.connection.driver_connection
                    if raw is not None and raw.in_transaction:  # type: ignore[attr-defined]
                        raw.rollback()  # type: ignore[attr-defined]
        with self.write_engine.begin() as conn:  # PostgreSQL: concurrent transactions from the pool
            return fn(conn)

    def write_raw_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite: ``fn(driver_connection)`` in one write transaction, without SQLAlchemy.

        For the hottest single-row writes (start_job), where SQLAlchemy's transaction bookkeeping is a
        tenth of the call. ``fn`` gets the writer's sqlite3 connection and must only use bound
        parameters on it; it must not touch the SQLAlchemy connection (that would begin a second
        transaction). Committed on return, rolled back on error.
        """
        if self._writer is None:
            raise DBError("write_raw_sync is for SQLite only")
        raw = self._writer.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        with self._write_lock:
            if self._inline_mode:
                self._leave_inline_mode()
            raw.execute("BEGIN IMMEDIATE")
            return _commit_or_roll_back(raw, fn)

    def write_raw_inline(self, fn: Callable[[sqlite3.Connection], T], *, weight: int = 1) -> T | object:
        """SQLite: `write_raw_sync` right here (the event loop's thread) if that cannot wait; else `NOT_RUN`.

        For start_job: its transaction takes ~0.15 ms, and handing it to the writer thread costs as
        much again (thread wake-ups, GIL hand-over). Run inline only when nothing can block: the
        writer lock is free this instant (no write in flight in our threads), ``BEGIN IMMEDIATE``
        succeeds at once (busy timeout 0: another process writing means ``NOT_RUN``, the caller then
        waits in the thread as usual), and no checkpoint runs in the commit (auto-checkpoint is off
        while in this mode; every so many inline commits a PASSIVE checkpoint is queued to a thread
        of its own instead, see `_checkpoint`). Not during a bulk load (rollback journal: a commit could wait for
        readers). Durability is the same as any other write: committed before it returns.
        ``weight``: how many start_job-sized writes ``fn`` does (for the checkpoint interval).
        """
        if self._writer is None or self._closed or self._bulk_active or not self.db_config.inline_start_job:
            return NOT_RUN
        if not self._write_lock.acquire(blocking=False):
            return NOT_RUN
        try:
            raw = self._writer.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            if not self._inline_mode:
                raw.execute("PRAGMA busy_timeout = 0")
                raw.execute("PRAGMA wal_autocheckpoint = 0")
                self._inline_mode = True
            if self._checkpoint_tail:  # the frames a background checkpoint could not take (see there)
                self._checkpoint_tail = False
                try:
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as e:
                    log.debug("checkpoint failed: %s", e)
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # locked by another process: wait in the writer thread
                return NOT_RUN
            out = _commit_or_roll_back(raw, fn)
            self._inline_commits += weight
            # ~12 pages a start_job commit: checkpoint about as often as wal-autocheckpoint-mb would.
            if self._inline_commits >= max(1, self._wal_pages // 12):
                self._inline_commits = 0
                self._queue_checkpoint()
            return out
        finally:
            self._write_lock.release()

    def _leave_inline_mode(self) -> None:
        """Back to the settings of thread-side writes (caller holds the write lock)."""
        assert self._writer is not None
        raw = self._writer.connection.driver_connection
        assert raw is not None
        raw.execute(f"PRAGMA busy_timeout = {int(self.db_config.busy_timeout_ms)}")
        raw.execute(f"PRAGMA wal_autocheckpoint = {self._wal_pages}")
        self._inline_mode = False

    def _queue_checkpoint(self) -> None:
        if self._checkpoint_pending:  # the previous one is still copying: it takes the new frames too
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop: nothing to keep unblocked
            self._checkpoint()
            return
        if self._checkpoint_thread is None:
            self._checkpoint_thread = _WriteThread("cc-db-checkpoint")
        self._checkpoint_pending = True
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(lambda _: setattr(self, "_checkpoint_pending", False))
        self._checkpoint_thread.submit(loop, done, self._checkpoint)

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint (never waits for readers) for the inline writes, in its own thread.

        It runs on a connection of its own, so inline writes go on meanwhile: SQLite lets a
        checkpoint copy WAL frames into the database file while a writer appends new ones (at 1 M
        jobs one copies ~19,000 frames in ~70 ms, a third of a start_job's time when it blocked the
        writer). It repeats while frames keep coming (each round is shorter), then leaves the last
        few to the writer (`_checkpoint_tail`): the WAL restarts from its beginning only when a
        checkpoint caught up with every frame, which only the writer itself can be sure of. Should the
        WAL still grow past 4x its configured size (readers holding old snapshots), the checkpoint
        runs on the writer connection under the write lock.
        """
        if self._writer is None or self._closed:
            return
        try:
            if self._wal_frames > 4 * self._wal_pages:
                with self._write_lock:
                    raw = self._writer.connection.driver_connection
                    row = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
            else:
                assert self.path is not None
                # Opened per checkpoint (~0.2 ms against ~70 ms of copying): an idle extra connection
                # would keep `bulk_journal` from switching the journal mode.
                conn = connect_sqlite(self.path, self.db_config)
                try:
                    for _ in range(4):
                        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if int(row[1]) - int(row[2]) < 256:  # frames in the WAL - frames copied
                            break
                finally:
                    conn.close()
                self._checkpoint_tail = True
            self._wal_frames = int(row[1])
        except sqlite3.Error as e:  # the next one retries; a failed checkpoint loses nothing
            log.debug("checkpoint failed: %s", e)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`read_sync` in a worker thread; at most ``max-open-connections`` at once."""
        return await anyio.to_thread.run_sync(self.read_sync, fn, limiter=self._read_limiter)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`write_sync` in a worker thread; on SQLite one at a time (the single writer).

        SQLite under asyncio: the writer's own long-lived thread (`_WriteThread`), half the hand-off
        cost of anyio's thread pool and limiter — on start_job's path that is a tenth of each call.
        Like ``anyio.to_thread.run_sync``, a cancelled caller still waits until its write is done,
        so it never returns while its transaction is open or with an unknown outcome.
        """
        if self._writer is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # another async backend
                loop = None
            if loop is not None:
                if self._write_thread is None:
                    self._write_thread = _WriteThread()
                fut: asyncio.Future[T] = loop.create_future()
                self._write_thread.submit(loop, fut, functools.partial(self.write_sync, fn))
                with anyio.CancelScope(shield=True):
                    return await fut
        limiter = self._write_limiter if self.is_sqlite else self._read_limiter
        return await anyio.to_thread.run_sync(self.write_sync, fn, limiter=limiter)

    @contextlib.contextmanager
    def bulk_journal(self) -> Iterator[bool]:
        """For a big load (init-db, a deferred-index bulk insert): SQLite's rollback journal instead of WAL.

        In WAL mode every page of a load is written twice, into the WAL and again by the checkpoint;
        with the rollback journal new pages go straight into the database file and only pages that
        existed before are copied to the journal, so a load into an empty table writes its data once.
        A crash or error still leaves the database as before (the journal rolls the transaction back).
        Switching needs the file to ourselves: idle read connections are closed first, and when another
        connection or process holds it open the load simply runs in WAL mode. Yields whether it switched;
        WAL is restored on exit (and by the next writer connection, should the process die meanwhile).
        Only the journal changes: ``synchronous`` stays NORMAL. PostgreSQL: no-op.
        """
        if self._writer is None:
            yield False
            return
        raw = self._writer.connection.driver_connection
        assert raw is not None
        switched = False
        with self._write_lock:
            if self._inline_mode:
                self._leave_inline_mode()
            self._bulk_active = True
            self.read_engine.dispose()  # idle readers keep the WAL open; the pool reopens on demand
            raw.execute("PRAGMA busy_timeout = 0")  # in use elsewhere: stay in WAL, do not wait
            try:
                switched = str(raw.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower() == "delete"
            except sqlite3.OperationalError as e:
                log.debug("bulk load stays in WAL mode: %s", e)
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(self.db_config.busy_timeout_ms)}")
        try:
            yield switched
        finally:
            self._bulk_active = False
            if switched:
                with self._write_lock:
                    try:
                        raw.execute("PRAGMA journal_mode = WAL")
                    except sqlite3.OperationalError as e:  # readers of another process: next open restores it
                        log.warning("could not switch the database back to WAL mode: %s", e)

    def group_commit_idle(self) -> bool:
        """No `write_grouped` call is queued or being written right now."""
        return not self._group_queue and not self._group_in_thread

    async def write_grouped(self, fn: Callable[[Any], T]) -> T:
        """`write` for short, frequent writes (start_job, stop_job): concurrent calls share a commit.

        ``fn`` gets the DB-API connection (sqlite3 / psycopg) and must use only that.

        SQLite: calls made during one event-loop round are queued and written together at the end
        of it, in one transaction with a savepoint per call, so one call's error (any ``Exception``
        from ``fn``) rolls back only its own changes and is raised to its own caller; every caller
        returns only after the transaction committed. The batch runs right in the event loop's thread
        when the writer is free this instant (`write_raw_inline`: ~60 µs of SQLite per start_job, so a
        batch of 32 blocks the loop ~2 ms) — handing it to the writer thread would cost each caller a
        thread hop and GIL hand-overs, more than the write. Otherwise (another write in flight, another
        process holding the lock, inline writes switched off) the batch goes to the writer thread and
        calls arriving meanwhile form the next batch. PostgreSQL: a plain `write` (concurrent
        transactions on the pool).
        """
        if not self.is_sqlite:
            return await self.write(lambda c: fn(driver(c)))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async backend: one call, one transaction in the thread
            return await self.write(lambda c: fn(driver(c)))
        req: _GroupedWrite[T] = _GroupedWrite(fn, loop.create_future())
        self._group_queue.append(req)
        if not self._group_scheduled and not self._group_in_thread:
            self._group_scheduled = True
            loop.call_soon(self._flush_group, loop)
        try:
            return await asyncio.shield(req.future)
        except asyncio.CancelledError:
            if req in self._group_queue:  # not written yet: a write nobody waits for must not happen later
                self._group_queue.remove(req)
                raise
            # Its batch is being written: like `write`, wait for the outcome before giving up.
            with anyio.CancelScope(shield=True):
                await asyncio.wait([req.future])
            raise

    def _flush_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the queued `write_grouped` calls: inline if the writer is free, else in its thread."""
        self._group_scheduled = False
        if self._group_in_thread:  # a batch waits in the writer thread: it flushes the queue when done
            return
        batch, self._group_queue = self._group_queue[:_GROUP_MAX], self._group_queue[_GROUP_MAX:]
        if self._group_queue:  # more than one transaction's worth: the rest in the next round
            self._group_scheduled = True
            loop.call_soon(self._flush_group, loop)
        if not batch:
            return
        write = functools.partial(_write_batch, batch)
        try:
            out = self.write_raw_inline(write, weight=len(batch))
        except BaseException as e:  # the transaction failed: every call of the batch failed
            _settle_batch(batch, e)
            if not isinstance(e, Exception):
                raise
            return
        if out is not NOT_RUN:
            _settle_batch(batch, None)
            return
        # The writer is busy (or inline writes are off): the batch waits in the writer thread, and
        # calls arriving meanwhile queue up for the next batch, flushed when this one is done.
        self._group_in_thread = True
        if self._write_thread is None:
            self._write_thread = _WriteThread()
        done: asyncio.Future[None] = loop.create_future()

        def finished(f: asyncio.Future[None]) -> None:
            self._group_in_thread = False
            _settle_batch(batch, f.exception())
            if self._group_queue and not self._group_scheduled:
                self._group_scheduled = True
                loop.call_soon(self._flush_group, loop)

        done.add_done_callback(finished)
        self._write_thread.submit(loop, done, functools.partial(self.write_raw_sync, write))

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._write_thread is not None:
            self._write_thread.stop()
        if self._checkpoint_thread is not None:
            self._checkpoint_thread.stop()
        writer = getattr(self, "_writer", None)
        if writer is not None:
            # SQLite's advice: let it refresh planner statistics that have become stale, on close.
            with self._write_lock:
                try:
                    writer.connection.driver_connection.execute("PRAGMA optimize")  # type: ignore[union-attr]
                except Exception:  # never let housekeeping hide the real outcome of a session
                    log.debug("PRAGMA optimize failed", exc_info=True)
                writer.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.close_sync)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else make_url(self.url).render_as_string()
        return f"<Database {self.dialect} {where}>"


NOT_RUN = object()  # `Database.write_raw_inline` did not run the write


def _commit_or_roll_back(raw: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(raw)`` in the transaction just begun: committed if it returns, rolled back if anything fails."""
    try:
        out = fn(raw)
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return out


class _WriteThread:
    """The SQLite writer's own thread for async callers: a queue in, the event loop's future out.

    One thread, because there is one writer connection anyway; started on the first async write,
    stopped by `Database.close_sync` (after the writes queued before it).
    """

    def __init__(self, name: str = "cc-db-writer") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], fn: Callable[[], Any]
    ) -> None:
        self._queue.put((loop, fut, fn))

    def stop(self) -> None:
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, fut, fn = item
            try:
                result, error = fn(), None
            except BaseException as e:  # handed to the awaiting caller
                result, error = None, e
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, fut, result, error)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


_GROUP_MAX = 128  # calls per group-commit transaction (bounds how long an inline batch holds the loop)


class _GroupedWrite(Generic[T]):
    """One queued `Database.write_grouped` call."""

    __slots__ = ("error", "fn", "future", "result")

    def __init__(self, fn: Callable[[Any], T], future: asyncio.Future[T]) -> None:
        self.fn = fn
        self.future = future
        self.result: T | None = None
        self.error: BaseException | None = None


def _write_batch(batch: list[_GroupedWrite[Any]], raw: sqlite3.Connection) -> None:
    """Run a batch in the writer's open transaction, each call in its own savepoint."""
    if len(batch) == 1:  # its error fails the transaction, which has nothing else in it
        batch[0].result = batch[0].fn(raw)
        return
    for r in batch:
        raw.execute("SAVEPOINT cc_group")
        try:
            r.result = r.fn(raw)
        except Exception as e:
            raw.execute("ROLLBACK TO SAVEPOINT cc_group")
            r.error = e
        raw.execute("RELEASE SAVEPOINT cc_group")


def _settle_batch(batch: list[_GroupedWrite[Any]], failure: BaseException | None) -> None:
    """Answer every caller of a batch once its transaction is over (``failure``: it did not commit)."""
    for r in batch:
        if r.future.done():
            continue
        error = failure if failure is not None else r.error
        if error is not None:
            r.future.set_exception(error)
        else:
            r.future.set_result(r.result)


def driver(conn: Connection | Any) -> Any:
    """The DB-API connection under a SQLAlchemy connection, or ``conn`` itself if it is one already."""
    if isinstance(conn, Connection):
        raw = conn.connection.driver_connection
        assert raw is not None
        return raw
    return conn


def _begin(statement: str) -> Callable[[Connection], None]:
    def begin(conn: Connection) -> None:
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]

    return begin


def _register_pg_adapters(dbapi_connection: Any, _record: Any) -> None:
    """Read jsonb as text: the repositories decode JSON with msgspec into typed structs themselves."""
    from psycopg.types.string import TextLoader

    dbapi_connection.adapters.register_loader("jsonb", TextLoader)
    dbapi_connection.adapters.register_loader("json", TextLoader)

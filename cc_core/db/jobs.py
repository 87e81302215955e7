"""The job repository: finding, listing and counting jobs (with visibility), and their lifecycle writes.

Reads take the acting `User` first and apply upstream's visibility rules (§6.2) inside the query, so
no caller can forget them; internal callers (archiver, retention, taggers) pass `SYSTEM_USER`.
Writes are the lifecycle operations of the REST/NATS API (start, stop, metadata, footprint,
delete) and the bulk path of archive import; authorising them is the API route's job.

Every public method is one worker-thread hop (`Database.read`/`Database.write`) doing all its SQL on
one connection; rows become `cc_core.schema.Job` structs in `cc_core.db.convert`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.lowlevel
import msgspec
from sqlalchemy import Connection, delete, select, update

from cc_core.auth.user import User
from cc_core.db import tables as T
from cc_core.db.convert import (
    INSERT_COLUMNS,
    JOB_COLUMN_NAMES,
    JSON_COLUMNS,
    check_job,
    encode_json,
    job_to_row,
    json_column,
    row_to_job,
    rows_to_jobs,
    select_columns,
)
from cc_core.db.engine import NOT_RUN, driver
from cc_core.db.errors import (
    DuplicateJobError,
    InvalidFilterError,
    InvalidInputError,
    InvalidStateError,
    InvalidStopTimeError,
    JobAlreadyStoppedError,
    JobNotFoundError,
)
from cc_core.db.filters import (
    JobFilter,
    OrderByInput,
    PageRequest,
    StringInput,
    check_page,
    job_conditions,
    job_where,
    order_by,
    resource_condition,
    state_literal,
    visibility,
)
from cc_core.db.tags import (
    _check_write,
    ensure_tags,
    link_tags,
    omit_tagged_condition,
    tags_of_jobs,
)
from cc_core.schema.job import JOB_STATES, ConcurrentJobs, Job, JobLink, Resource

log = logging.getLogger(__name__)

# A pure API identity for internal callers (archiver, retention, taggers): sees every job.
SYSTEM_USER = User(username="clustercockpit", roles=["api"])

SECONDS_PER_DAY = 86400
# Upstream ignores running jobs for concurrency overlap within this many seconds of start/stop.
OVERLAP_BUFFER = 200


class JobPage(msgspec.Struct, rename="camel"):
    """GraphQL's ``JobResultList``: a page of jobs, the total count (if asked) and whether more follow."""

    items: list[Job]
    count: int | None = None
    has_next_page: bool = False
    offset: int | None = None
    limit: int | None = None


def _advisory_key(cluster: str, job_id: int) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` per (cluster, jobId)."""
    digest = hashlib.blake2b(f"cc-start:{cluster}:{job_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_COLS = ", ".join(INSERT_COLUMNS)


def _insert_sql(mark: str, n: int) -> str:
    """The job INSERT for a DB-API placeholder style; columns come from our constant list."""
    return f"INSERT INTO job ({_COLS}) VALUES ({', '.join([mark] * n)})"  # noqa: S608


_JSON_INSERT = {"footprint", "energy_footprint", "resources", "meta_data"}


class JobRepository:
    """Jobs in the database; see the module docstring for the rules every method follows."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._stop_sql: dict[tuple[bool, bool], str] = {}
        self._starts_in_flight = 0  # `start` calls not yet returned (lone caller → inline path)
        self.dialect: str = db.dialect
        self.pg = self.dialect == "postgresql"
        n = len(INSERT_COLUMNS)
        if self.pg:
            marks = ", ".join(
                f"%s::{'jsonb' if c in _JSON_INSERT else _PG_LOAD_TYPES.get(c, 'text')}"
                for c in INSERT_COLUMNS
            )
            self._insert_sql = (
                f"INSERT INTO job ({_COLS}) SELECT {marks} WHERE NOT EXISTS "  # noqa: S608 - constants only
                "(SELECT 1 FROM job WHERE job_id = %s AND cluster = %s AND start_time > %s) RETURNING id"
            )
            self._dup_sql = (
                "SELECT id, start_time FROM job WHERE job_id = %s AND cluster = %s AND start_time > %s "
                "ORDER BY id DESC LIMIT 1"
            )
        mark = "%s" if self.pg else "?"
        self._stop_update_sql = f"UPDATE job SET job_state = {mark}, duration = {mark} WHERE id = {mark}"  # noqa: S608 - placeholders only
        if not self.pg:
            self._insert_sql = _insert_sql("?", n)
            self._dup_sql = (
                "SELECT id, start_time FROM job WHERE job_id = ? AND cluster = ? AND start_time > ? "
                "ORDER BY id DESC LIMIT 1"
            )

    # ================================================================== reads

    def _find_by_id(
        self, conn: Connection, user: User, id_: int, *, with_metadata: bool, with_tags: bool, now: int
    ) -> Job:
        q = select(*select_columns(self.dialect, with_metadata=with_metadata)).where(T.job.c.id == id_)
        vis = visibility(user)
        if vis is not None:
            q = q.where(vis)
        row = conn.execute(q).first()
        if row is None:
            raise JobNotFoundError(f"job {id_} not found")
        job = row_to_job(row, now)
        if with_tags:
            job.tags = tags_of_jobs(conn, [id_], user).get(id_, [])
        return job

    async def find_by_id(
        self, user: User, id_: int, *, with_metadata: bool = True, with_tags: bool = False
    ) -> Job:
        """The job with database id ``id_``, if ``user`` may see it (else `JobNotFoundError`)."""
        id_ = _int(id_, "job id")
        now = int(self.db.clock())
        return await self.db.read(
            lambda c: self._find_by_id(
                c, user, id_, with_metadata=with_metadata, with_tags=with_tags, now=now
            )
        )

    def _key_query(self, job_id: int, cluster: str | None, start_time: int | None) -> Any:
        q = select(*select_columns(self.dialect, with_metadata=True)).where(T.job.c.job_id == job_id)
        if cluster is not None:
            q = q.where(T.job.c.cluster == cluster)
        if start_time is not None:
            q = q.where(T.job.c.start_time == start_time)
        return q

    async def find(
        self,
        user: User,
        job_id: int,
        cluster: str | None = None,
        start_time: int | None = None,
        *,
        with_tags: bool = False,
    ) -> Job:
        """The newest (highest db id) job with this scheduler ``job_id`` (and cluster / start time).

        This is upstream's lookup for stop_job, edit_meta and delete_job by key.
        """
        job_id = _int(job_id, "jobId")
        now = int(self.db.clock())

        def run(conn: Connection) -> Job:
            q = self._key_query(job_id, cluster, start_time).order_by(T.job.c.id.desc()).limit(1)
            vis = visibility(user)
            if vis is not None:
                q = q.where(vis)
            row = conn.execute(q).first()
            if row is None:
                raise JobNotFoundError(_key_text(job_id, cluster, start_time) + " not found")
            job = row_to_job(row, now)
            if with_tags and job.id is not None:
                job.tags = tags_of_jobs(conn, [job.id], user).get(job.id, [])
            return job

        return await self.db.read(run)

    async def find_all(
        self, user: User, job_id: int, cluster: str | None = None, start_time: int | None = None
    ) -> list[Job]:
        """Every job with this scheduler ``job_id`` (and cluster / start time), oldest first."""
        job_id = _int(job_id, "jobId")
        now = int(self.db.clock())

        def run(conn: Connection) -> list[Job]:
            q = self._key_query(job_id, cluster, start_time).order_by(T.job.c.id)
            vis = visibility(user)
            if vis is not None:
                q = q.where(vis)
            return rows_to_jobs(conn.execute(q).all(), now)

        return await self.db.read(run)

    def _list(
        self,
        conn: Connection,
        user: User,
        filters: Sequence[JobFilter] | JobFilter | None,
        page: PageRequest | None,
        order: OrderByInput | None,
        *,
        count: bool,
        with_tags: bool,
        with_metadata: bool,
        now: int,
    ) -> JobPage:
        q = job_where(user, filters, self.dialect, now=now)
        order_sql = order_by(order, q, now=now)
        limit, offset = check_page(page)
        where = q.where
        count_params = dict(q.params)
        # Text of ours only (column list, conditions with placeholders, whitelisted order): see filters.Sql.
        sql = f"SELECT {_select_sql(self.dialect, with_metadata)} FROM job WHERE {where} ORDER BY {order_sql}"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {q.bind(limit + 1)} OFFSET {q.bind(offset)}"
        rows = conn.exec_driver_sql(q.driver_sql(sql), q.params).all()
        has_next = limit is not None and len(rows) > limit
        if has_next:
            rows = rows[:limit]
        jobs = rows_to_jobs(rows, now)
        total = None
        if count:
            if not has_next and (rows or offset == 0):  # the page reaches the end: nothing to count
                total = offset + len(rows)
            else:
                count_sql = q.driver_sql(f"SELECT COUNT(*) FROM job WHERE {where}")  # noqa: S608
                total = conn.exec_driver_sql(count_sql, count_params).scalar_one()
        if with_tags and jobs:
            tags = tags_of_jobs(conn, [j.id for j in jobs if j.id is not None], user)
            for j in jobs:
                j.tags = tags.get(j.id or 0, [])
        return JobPage(items=jobs, count=total, has_next_page=has_next)

    async def list(
        self,
        user: User,
        filters: Sequence[JobFilter] | JobFilter | None = None,
        page: PageRequest | None = None,
        order: OrderByInput | None = None,
        *,
        count: bool = True,
        with_tags: bool = False,
        with_metadata: bool = False,
    ) -> JobPage:
        """A page of the jobs ``user`` may see that match all ``filters`` (GraphQL ``jobs``).

        ``page`` defaults to 50 items of page 1 (``itemsPerPage: -1`` = all); ``order`` to start time
        descending. ``count`` adds the total number of matches; ``hasNextPage`` comes from fetching
        one extra row.
        """
        now = int(self.db.clock())
        return await self.db.read(
            lambda c: self._list(
                c,
                user,
                filters,
                page,
                order,
                count=count,
                with_tags=with_tags,
                with_metadata=with_metadata,
                now=now,
            )
        )

    def list_sync(
        self,
        user: User,
        filters: Sequence[JobFilter] | JobFilter | None = None,
        page: PageRequest | None = None,
        order: OrderByInput | None = None,
        *,
        count: bool = True,
        with_tags: bool = False,
        with_metadata: bool = False,
    ) -> JobPage:
        """`list` for synchronous callers (CLI tools, benchmarks)."""
        now = int(self.db.clock())
        return self.db.read_sync(
            lambda c: self._list(
                c,
                user,
                filters,
                page,
                order,
                count=count,
                with_tags=with_tags,
                with_metadata=with_metadata,
                now=now,
            )
        )

    async def count(self, user: User, filters: Sequence[JobFilter] | JobFilter | None = None) -> int:
        """How many jobs ``user`` may see match ``filters``."""
        now = int(self.db.clock())

        def run(conn: Connection) -> int:
            q = job_where(user, filters, self.dialect, now=now)
            sql = q.driver_sql(f"SELECT COUNT(*) FROM job WHERE {q.where}")  # noqa: S608
            return int(conn.exec_driver_sql(sql, q.params).scalar_one())

        return await self.db.read(run)

    async def used_nodes(self, user: User, before: int) -> dict[str, list[str]]:
        """Hosts of running jobs that started before ``before``, per cluster (REST ``used_nodes``)."""

        def run(conn: Connection) -> dict[str, list[str]]:
            j = T.job.c
            conds = job_conditions(user, None, self.dialect)
            q = select(j.cluster, json_column(self.dialect, "resources")).where(
                j.job_state == state_literal("running"), j.start_time < before, *conds
            )
            hosts: dict[str, set[str]] = {}
            for cluster, raw in conn.execute(q):
                for r in _resources(raw):
                    hosts.setdefault(cluster, set()).add(r.hostname)
            return {c: sorted(h) for c, h in sorted(hosts.items())}

        return await self.db.read(run)

    async def allocated_nodes(self, user: User, cluster: str) -> dict[str, dict[str, int]]:
        """Per subcluster, the hosts running jobs on ``cluster`` and how many jobs each runs."""

        def run(conn: Connection) -> dict[str, dict[str, int]]:
            j = T.job.c
            conds = job_conditions(user, None, self.dialect)
            q = select(j.subcluster, json_column(self.dialect, "resources")).where(
                j.job_state == state_literal("running"), j.cluster == cluster, *conds
            )
            out: dict[str, dict[str, int]] = {}
            for sub, raw in conn.execute(q):
                hosts = out.setdefault(sub, {})
                for r in _resources(raw):
                    hosts[r.hostname] = hosts.get(r.hostname, 0) + 1
            return out

        return await self.db.read(run)

    async def partitions(self, cluster: str) -> list[str]:
        """The distinct partitions of ``cluster`` that occur in jobs (GraphQL ``Cluster.partitions``)."""

        def run(conn: Connection) -> list[str]:
            q = (
                select(T.job.c.cluster_partition)
                .where(T.job.c.cluster == cluster)
                .distinct()
                .order_by(T.job.c.cluster_partition)
            )
            return [r[0] for r in conn.execute(q) if r[0] is not None]

        return await self.db.read(run)

    async def concurrent_jobs(self, user: User, job: Job) -> ConcurrentJobs:
        """Jobs that overlapped ``job`` in time on its first node (upstream's FindConcurrentJobs)."""
        if not job.resources:
            raise InvalidInputError("job has no resources")
        now = int(self.db.clock())
        start = job.start_time
        stop = now if job.job_state == "running" else start + job.duration
        host = job.resources[0].hostname

        def run(conn: Connection) -> ConcurrentJobs:
            j = T.job.c
            q = job_where(user, None, self.dialect)
            q.add(f"job.cluster = {q.bind(job.cluster)}")
            q.add(resource_condition(q, StringInput(eq=host)))
            base = [q.clause()]
            finished = select(j.id, j.job_id).where(
                *base,
                j.job_state != state_literal("running"),
                j.start_time < stop - OVERLAP_BUFFER,
                (j.start_time + j.duration) > start + OVERLAP_BUFFER,
            )
            running = select(j.id, j.job_id).where(
                *base, j.job_state == state_literal("running"), j.start_time <= stop - OVERLAP_BUFFER
            )
            items = [JobLink(id=r[0], job_id=r[1]) for r in conn.execute(finished.order_by(j.id))]
            items += [JobLink(id=r[0], job_id=r[1]) for r in conn.execute(running.order_by(j.id))]
            return ConcurrentJobs(items=items, count=len(items))

        return await self.db.read(run)

    async def find_between(
        self, start_from: int, start_before: int, *, omit_tagged: str = "none", user: User = SYSTEM_USER
    ) -> list[Job]:
        """Jobs that started in [start_from, start_before) (``start_from`` 0 = unbounded), for retention.

        Ordered by cluster, subcluster, project, start time, as upstream's FindJobsBetween.
        """
        if start_from >= start_before:
            raise InvalidFilterError("start_from must be before start_before")
        now = int(self.db.clock())

        def run(conn: Connection) -> list[Job]:
            j = T.job.c
            conds = job_conditions(user, None, self.dialect)
            conds.append(j.start_time < start_before)
            if start_from > 0:
                conds.append(j.start_time >= start_from)
            omit = omit_tagged_condition(omit_tagged)
            if omit is not None:
                conds.append(omit)
            q = (
                select(*select_columns(self.dialect))
                .where(*conds)
                .order_by(j.cluster, j.subcluster, j.project, j.start_time)
            )
            return rows_to_jobs(conn.execute(q).all(), now)

        return await self.db.read(run)

    async def running(self, cluster: str, *, min_running: int = 0, user: User = SYSTEM_USER) -> list[Job]:
        """Running jobs of ``cluster`` that started at least ``min_running`` seconds ago."""
        now = int(self.db.clock())

        def run(conn: Connection) -> list[Job]:
            j = T.job.c
            conds = job_conditions(user, None, self.dialect)
            q = select(*select_columns(self.dialect)).where(
                j.job_state == state_literal("running"),
                j.cluster == cluster,
                j.start_time <= now - min_running,
                *conds,
            )
            return rows_to_jobs(conn.execute(q.order_by(j.start_time)).all(), now)

        return await self.db.read(run)

    # ================================================================== lifecycle writes

    def _start(self, conn: Connection | sqlite3.Connection, job: Job, user: User | None) -> Job:
        """Insert one job in the caller's transaction. ``conn`` is the sqlite3 writer connection itself
        on start_job's fast paths (jobs without tags, `Database.write_raw_inline` / `write_raw_sync`), else
        SQLAlchemy's."""
        raw = driver(conn)
        key = (job.job_id, job.cluster, job.start_time - SECONDS_PER_DAY)
        if self.pg:
            # Lock (cluster, jobId) for this transaction, then insert unless a duplicate exists: a
            # statement after the lock sees every start committed before it, on any server replica.
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (_advisory_key(job.cluster, job.job_id),))
            row = raw.execute(self._insert_sql, (*job_to_row(job), *key)).fetchone()
            dup = raw.execute(self._dup_sql, key).fetchone() if row is None else None
        else:
            dup = raw.execute(self._dup_sql, key).fetchone()
        if dup is not None:
            raise DuplicateJobError(
                f"a job with jobId {job.job_id} on cluster {job.cluster} started less than 24 h before "
                f"this one already exists (db id {dup[0]}, startTime {dup[1]})",
                existing_id=dup[0],
            )
        if self.pg:
            new_id = int(row[0])
        else:
            try:
                cur = raw.execute(self._insert_sql, job_to_row(job))
            except sqlite3.IntegrityError as e:
                raise DuplicateJobError(f"job {job.job_id} on {job.cluster} already exists: {e}") from None
            new_id = int(cur.lastrowid)
        if job.tags:
            assert isinstance(conn, Connection), "jobs with tags take the SQLAlchemy path"
            keys = [(t.type, t.name, t.scope or "global") for t in job.tags]
            ids = ensure_tags(conn, self.dialect, keys)
            link_tags(conn, self.dialect, [(new_id, ids[k]) for k in keys])
        return msgspec.structs.replace(job, id=new_id)

    def _stop_find_sql(self, by_cluster: bool, by_start: bool) -> str:
        """The newest job with a jobId (and cluster / start time), all columns, as driver SQL."""
        key = (by_cluster, by_start)
        sql = self._stop_sql.get(key)
        if sql is None:
            mark = "%s" if self.pg else "?"
            where = f"job_id = {mark}"
            if by_cluster:
                where += f" AND cluster = {mark}"
            if by_start:
                where += f" AND start_time = {mark}"
            cols = _select_sql(self.dialect, True)
            sql = f"SELECT {cols} FROM job WHERE {where} ORDER BY id DESC LIMIT 1"  # noqa: S608 - ours
            self._stop_sql[key] = sql
        return sql

    def _prepare_start(self, job: Job, user: User | None) -> Job:
        if job.job_state != "running":
            job = msgspec.structs.replace(job, job_state="running")
        check_job(job)
        if job.num_nodes < 1:
            raise InvalidInputError("numNodes must be at least 1")
        if not job.resources:
            raise InvalidInputError("a job needs resources")
        for t in job.tags or ():
            _check_write(user, t.scope or "global")
        return job

    async def start(self, job: Job, *, user: User | None = None) -> Job:
        """Insert a running job; it is visible at once. Returns it with its database ``id``.

        Refuses (`DuplicateJobError`) when a job with the same jobId and cluster started less than
        24 h before (upstream's rule, which also catches a later-started duplicate). Tags in
        ``job.tags`` are created as needed and attached, each scope checked against ``user``.

        SQLite: concurrent calls share a commit (`Database.write_grouped`); every caller returns only
        after its job is committed. PostgreSQL: one transaction per job, concurrently on the pool.
        """
        job = self._prepare_start(job, user)
        if self.pg:  # concurrent transactions on the pool; the advisory lock orders same-key starts
            return await self.db.write(lambda c: self._start(c, job, None))
        if job.tags:  # tags are created through SQLAlchemy: a transaction of its own in the thread
            return await self.db.write(lambda c: self._start(c, job, None))
        self._starts_in_flight += 1
        try:
            if self._starts_in_flight == 1 and self.db.group_commit_idle():
                # A lone caller and an idle writer: one short transaction right here, without even
                # the group commit's round through the event loop (see Database.write_raw_inline).
                out = self.db.write_raw_inline(lambda c: self._start(c, job, None))
                if out is not NOT_RUN:
                    # Still a scheduling point, as the group commit would be: a caller starting
                    # jobs in a loop lets other tasks run between them.
                    await anyio.lowlevel.checkpoint()
                    return out  # type: ignore[return-value]
            # Concurrent callers share commits (with 32 REST clients, batches of ~10).
            return await self.db.write_grouped(lambda c: self._start(c, job, None))
        finally:
            self._starts_in_flight -= 1

    def start_sync(self, job: Job, *, user: User | None = None) -> Job:
        job = self._prepare_start(job, user)
        if self.pg or job.tags:
            return self.db.write_sync(lambda c: self._start(c, job, user))
        return self.db.write_raw_sync(lambda c: self._start(c, job, user))

    async def stop(
        self,
        job_id: int,
        *,
        stop_time: int,
        state: str = "",
        cluster: str | None = None,
        start_time: int | None = None,
    ) -> Job:
        """Mark the newest matching running job stopped (REST ``stop_job``); returns the job.

        Checks in upstream's order: not found → `JobNotFoundError`; not running →
        `JobAlreadyStoppedError`; ``stop_time`` before start → `InvalidStopTimeError`; invalid
        ``state`` → `InvalidStateError` (empty means ``completed``; ``running`` is refused).
        """
        job_id = _int(job_id, "jobId")
        now = int(self.db.clock())
        find_sql = self._stop_find_sql(cluster is not None, start_time is not None)
        params = tuple(v for v in (job_id, cluster, start_time) if v is not None)

        def run(conn: Any) -> Job:
            # Driver SQL prepared once per key shape: this runs under the single writer on every
            # stop_job, where building and compiling the equivalent Core statements cost ~1 ms.
            raw = driver(conn)
            row = raw.execute(find_sql, params).fetchone()
            if row is None:
                raise JobNotFoundError(_key_text(job_id, cluster, start_time) + " not found")
            job = row_to_job(row, now)
            if job.job_state != "running":
                raise JobAlreadyStoppedError(
                    f"jobId {job.job_id} (id {job.id}) on {job.cluster}: job has already been stopped "
                    f"(state is: {job.job_state})"
                )
            if stop_time < job.start_time:
                raise InvalidStopTimeError(
                    f"jobId {job.job_id} (id {job.id}) on {job.cluster}: stopTime {stop_time} must be "
                    f"larger/equal than startTime {job.start_time}"
                )
            new_state = state or "completed"
            if new_state not in JOB_STATES or new_state == "running":
                raise InvalidStateError(f"invalid requested job state {new_state!r}")
            duration = stop_time - job.start_time
            raw.execute(self._stop_update_sql, (new_state, duration, job.id))
            return msgspec.structs.replace(job, job_state=new_state, duration=duration)

        return await self.db.write_grouped(run)

    async def update_metadata(self, id_: int, key: str, value: str) -> Job:
        """Set one ``meta_data`` key (REST ``edit_meta``); returns the job with its metadata."""
        id_ = _int(id_, "job id")
        if not isinstance(key, str) or not key:
            raise InvalidInputError("metadata key must be a non-empty string")
        if not isinstance(value, str):
            raise InvalidInputError("metadata value must be a string")
        now = int(self.db.clock())

        def run(conn: Connection) -> Job:
            job = self._find_by_id(conn, SYSTEM_USER, id_, with_metadata=True, with_tags=False, now=now)
            meta = dict(job.meta_data or {})
            meta[key] = value
            conn.execute(update(T.job).where(T.job.c.id == id_).values(meta_data=encode_json(meta)))
            job.meta_data = meta
            return job

        return await self.db.write(run)

    async def update_footprint(
        self,
        id_: int,
        *,
        footprint: dict[str, float] | None = None,
        energy_footprint: dict[str, float] | None = None,
        energy: float | None = None,
        monitoring_status: int | None = None,
    ) -> None:
        """Store what the archiver computed, in one UPDATE (any subset of the fields)."""
        id_ = _int(id_, "job id")
        values: dict[str, Any] = {}
        if footprint is not None:
            values["footprint"] = encode_json(footprint)
        if energy_footprint is not None:
            values["energy_footprint"] = encode_json(energy_footprint)
        if energy is not None:
            values["energy"] = float(energy)
        if monitoring_status is not None:
            if monitoring_status not in T.MONITORING_STATES:
                raise InvalidInputError(f"invalid monitoringStatus {monitoring_status!r}")
            values["monitoring_status"] = monitoring_status
        if not values:
            return
        # Driver SQL (the column names are the constants above; values are bound): this runs once per
        # archived job under the single writer, where compiling the Core UPDATE cost more than running it.
        mark = "%s" if self.pg else "?"
        casts = {"footprint": "::jsonb", "energy_footprint": "::jsonb"} if self.pg else {}
        assignments = ", ".join(f"{c} = {mark}{casts.get(c, '')}" for c in values)
        sql = f"UPDATE job SET {assignments} WHERE id = {mark}"  # noqa: S608 - constant names, bound values
        params = (*values.values(), id_)

        def run(conn: Any) -> None:
            if driver(conn).execute(sql, params).rowcount == 0:
                raise JobNotFoundError(f"job {id_} not found")

        await self.db.write_grouped(run)

    async def update_monitoring_status(self, id_: int, status: int) -> None:
        await self.update_footprint(id_, monitoring_status=status)

    async def delete(self, id_: int) -> None:
        """Delete one job (its tag links go with it)."""
        id_ = _int(id_, "job id")

        def run(conn: Connection) -> None:
            if conn.execute(delete(T.job).where(T.job.c.id == id_)).rowcount == 0:
                raise JobNotFoundError(f"job {id_} not found")

        await self.db.write(run)

    async def delete_by_key(
        self, job_id: int, cluster: str | None = None, start_time: int | None = None
    ) -> int:
        """Delete the newest job matching the key (REST ``delete_job``); returns its db id."""
        job_id = _int(job_id, "jobId")

        def run(conn: Connection) -> int:
            q = select(T.job.c.id).where(T.job.c.job_id == job_id)
            if cluster is not None:
                q = q.where(T.job.c.cluster == cluster)
            if start_time is not None:
                q = q.where(T.job.c.start_time == start_time)
            id_ = conn.execute(q.order_by(T.job.c.id.desc()).limit(1)).scalar()
            if id_ is None:
                raise JobNotFoundError(_key_text(job_id, cluster, start_time) + " not found")
            conn.execute(delete(T.job).where(T.job.c.id == id_))
            return int(id_)

        return await self.db.write(run)

    async def delete_before(self, start_time: int, *, omit_tagged: str = "none") -> int:
        """Delete jobs that started before ``start_time``; ``omit_tagged``: ``none``, ``all`` or ``user``.

        ``user`` keeps jobs carrying any tag other than the automatic ``app``/``jobClass`` ones.
        """
        cond = omit_tagged_condition(omit_tagged)

        def run(conn: Connection) -> int:
            q = delete(T.job).where(T.job.c.start_time < start_time)
            if cond is not None:
                q = q.where(cond)
            return int(conn.execute(q).rowcount)

        return await self.db.write(run)

    async def stop_exceeding_walltime(self, grace_seconds: int) -> int:
        """Fail running jobs past walltime + grace (upstream's ``stop-jobs-exceeding-walltime``).

        They get state ``failed`` and monitoring status 2 (archiving failed) as upstream; unlike
        upstream the duration is set to how long they ran rather than 0.
        """
        now = int(self.db.clock())

        def run(conn: Connection) -> int:
            j = T.job.c
            q = (
                update(T.job)
                .where(
                    j.job_state == state_literal("running"),
                    j.walltime > 0,
                    j.start_time < (now - grace_seconds) - j.walltime,
                )
                .values(job_state="failed", monitoring_status=2, duration=now - j.start_time)
            )
            return int(conn.execute(q).rowcount)

        return await self.db.write(run)

    async def update_running_durations(self) -> int:
        """Store ``now - start_time`` as the duration of running jobs (upstream's duration worker).

        Reads already report the live value; this keeps the stored column useful for other tools.
        """
        now = int(self.db.clock())

        def run(conn: Connection) -> int:
            j = T.job.c
            q = (
                update(T.job)
                .where(j.job_state == state_literal("running"))
                .values(duration=now - j.start_time)
            )
            return int(conn.execute(q).rowcount)

        return await self.db.write(run)

    # ================================================================== bulk path (archive import)

    def _insert_many_sqlite(
        self, conn: Connection, jobs: Sequence[Job], conflict: str, batch_size: int
    ) -> list[int | None]:
        """executemany with ids we assign (we are the only writer inside this transaction).

        Converting jobs to rows (JSON encoding) runs in a helper thread one batch ahead, while
        sqlite3 executes the previous batch without holding the GIL.
        """
        raw = conn.connection.driver_connection
        assert raw is not None
        first = int(raw.execute("SELECT COALESCE(MAX(id), 0) FROM job").fetchone()[0]) + 1
        verb = "INSERT OR IGNORE" if conflict == "ignore" else "INSERT"
        sql = f"{verb} INTO job (id, {_COLS}) VALUES ({', '.join(['?'] * (len(INSERT_COLUMNS) + 1))})"
        n = len(jobs)

        def convert(lo: int) -> list[tuple[Any, ...]]:
            return [(first + i, *job_to_row(jobs[i])) for i in range(lo, min(lo + batch_size, n))]

        with ThreadPoolExecutor(1, thread_name_prefix="cc-bulk") as pool:
            pending = pool.submit(convert, 0)
            for lo in range(0, n, batch_size):
                rows = pending.result()
                if lo + batch_size < n:
                    pending = pool.submit(convert, lo + batch_size)
                try:
                    raw.executemany(sql, rows)
                except sqlite3.IntegrityError as e:
                    raise DuplicateJobError(
                        f"bulk insert: {e} (pass conflict='ignore' to skip duplicates)"
                    ) from None
        ids: list[int | None] = list(range(first, first + n))
        if conflict == "ignore":
            present = {r[0] for r in raw.execute("SELECT id FROM job WHERE id >= ?", (first,))}
            ids = [i if i in present else None for i in ids]
        return ids

    def _insert_many_pg(self, conn: Connection, jobs: Sequence[Job], conflict: str) -> list[int | None]:
        """COPY, PostgreSQL's bulk path. Ids are drawn from the job sequence first, so they are known
        without RETURNING; with ``conflict='ignore'`` rows go through a temporary table and
        ``INSERT … ON CONFLICT DO NOTHING`` instead."""
        raw = conn.connection.driver_connection
        assert raw is not None
        if conflict != "ignore":
            ids: list[int | None] = [
                int(r[0])
                for r in raw.execute(
                    "SELECT nextval(pg_get_serial_sequence('job', 'id')) FROM generate_series(1, %s)",
                    (len(jobs),),
                ).fetchall()
            ]
            try:
                with raw.cursor() as cur, cur.copy(f"COPY job (id, {_COLS}) FROM STDIN") as cp:
                    for id_, j in zip(ids, jobs, strict=True):
                        cp.write_row((id_, *job_to_row(j)))
            except Exception as e:  # psycopg.errors.UniqueViolation
                if type(e).__name__ == "UniqueViolation":
                    raise DuplicateJobError(
                        f"bulk insert: {e} (pass conflict='ignore' to skip duplicates)"
                    ) from None
                raise
            return ids
        cols = ", ".join(f"{c} {_PG_LOAD_TYPES.get(c, 'text')}" for c in INSERT_COLUMNS)
        raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS cc_job_load (ord bigint, {cols}) ON COMMIT DROP")
        with raw.cursor() as cur, cur.copy(f"COPY cc_job_load (ord, {_COLS}) FROM STDIN") as cp:
            for i, j in enumerate(jobs):
                cp.write_row((i, *job_to_row(j)))
        select_list = ", ".join(f"{c}::jsonb" if c in _JSON_INSERT else c for c in INSERT_COLUMNS)
        sql = f"INSERT INTO job ({_COLS}) SELECT {select_list} FROM cc_job_load ORDER BY ord"  # noqa: S608
        rows = raw.execute(
            sql + " ON CONFLICT DO NOTHING RETURNING id, job_id, cluster, start_time"
        ).fetchall()
        raw.execute("DROP TABLE IF EXISTS cc_job_load")
        by_key = {(r[1], r[2], r[3]): int(r[0]) for r in rows}
        out: list[int | None] = []
        seen: set[tuple[int, str, int]] = set()
        for j in jobs:
            key = (j.job_id, j.cluster, j.start_time)
            out.append(by_key.get(key) if key not in seen else None)
            seen.add(key)
        return out

    def insert_many_in(
        self, conn: Connection, jobs: Sequence[Job], conflict: str, batch_size: int = 20_000
    ) -> list[int | None]:
        """Insert jobs and their tags (scopes kept) in the caller's transaction; their new ids.

        The bulk path for callers that hold the writer's transaction themselves (init-db streams batches
        into one transaction, with the job indexes dropped; see `drop_job_indexes`). ``conflict='ignore'``
        gives ``None`` for a job whose key exists already.
        """
        if conflict not in ("error", "ignore"):
            raise InvalidInputError(f"conflict must be 'error' or 'ignore', got {conflict!r}")
        for j in jobs:
            check_job(j)
        if not jobs:
            return []
        if self.pg:
            ids = self._insert_many_pg(conn, jobs, conflict)
        else:
            ids = self._insert_many_sqlite(conn, jobs, conflict, max(1, batch_size))
        tagged = [(i, j) for i, j in zip(ids, jobs, strict=True) if i is not None and j.tags]
        if tagged:
            keys = {(t.type, t.name, t.scope or "global") for _, j in tagged for t in j.tags or ()}
            tag_ids = ensure_tags(conn, self.dialect, keys)
            pairs = [
                (i, tag_ids[(t.type, t.name, t.scope or "global")]) for i, j in tagged for t in j.tags or ()
            ]
            raw = conn.connection.driver_connection
            assert raw is not None
            if self.pg:
                with raw.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO jobtag (job_id, tag_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", pairs
                    )
            else:
                raw.executemany("INSERT OR IGNORE INTO jobtag (job_id, tag_id) VALUES (?, ?)", pairs)
        return ids

    def drop_job_indexes(self, conn: Connection) -> None:
        for d in T.JOB_INDEXES:
            conn.exec_driver_sql(d.drop_sql())

    def create_job_indexes(self, conn: Connection) -> None:
        for d in T.JOB_INDEXES:
            conn.exec_driver_sql(d.create_sql())

    def bulk_insert_sync(
        self,
        jobs: Iterable[Job],
        *,
        conflict: str = "error",
        batch_size: int = 20_000,
        defer_indexes: bool | None = None,
    ) -> list[int | None]:
        """Insert many jobs (with their tags, scopes kept) in one transaction; their db ids.

        ``conflict='ignore'`` skips jobs whose (jobId, cluster, startTime) exists (their id is
        ``None``). ``defer_indexes`` drops the job indexes first and rebuilds them at the end — much
        faster for large loads; ``None`` does so when loading ≥ 50,000 jobs into an empty table.
        """
        batch = list(jobs)
        defer = defer_indexes
        if defer is None:
            defer = len(batch) >= 50_000 and self.db.read_sync(
                lambda c: c.execute(select(T.job.c.id).limit(1)).first() is None
            )

        def run(conn: Connection) -> list[int | None]:
            with _gc_paused():
                return load(conn)

        def load(conn: Connection) -> list[int | None]:
            if defer:
                self.drop_job_indexes(conn)
            out = self.insert_many_in(conn, batch, conflict, batch_size)
            if defer:
                self.create_job_indexes(conn)
                analyze(conn)
            return out

        if not defer:
            return self.db.write_sync(run)
        with self.db.bulk_journal():  # a big load: write the pages once (see Database.bulk_journal)
            return self.db.write_sync(run)

    async def bulk_insert(
        self,
        jobs: Iterable[Job],
        *,
        conflict: str = "error",
        batch_size: int = 20_000,
        defer_indexes: bool | None = None,
    ) -> list[int | None]:
        """`bulk_insert_sync` in a worker thread (on SQLite: the writer)."""
        import anyio.to_thread

        limiter = self.db._write_limiter if self.db.is_sqlite else self.db._read_limiter
        return await anyio.to_thread.run_sync(
            lambda: self.bulk_insert_sync(
                jobs, conflict=conflict, batch_size=batch_size, defer_indexes=defer_indexes
            ),
            limiter=limiter,
        )

    @contextlib.contextmanager
    def bulk_loader(
        self, *, conflict: str = "error", defer_indexes: bool = True, batch_size: int = 20_000
    ) -> Iterator[Callable[[Iterable[Job]], list[int | None]]]:
        """For loads that arrive in batches (``init-db`` walking an archive): drop the job indexes
        once, insert every batch with the returned function (one transaction each), re-create the
        indexes and ANALYZE at the end — also when the load fails. If the process dies half-way, the
        next `Database` open re-creates the missing indexes.

        ::

            with db.jobs.bulk_loader() as load:
                for batch in batches:
                    ids = load(batch)
        """
        if defer_indexes:
            self.db.write_sync(self.drop_job_indexes)

        def load(jobs: Iterable[Job]) -> list[int | None]:
            return self.bulk_insert_sync(jobs, conflict=conflict, batch_size=batch_size, defer_indexes=False)

        try:
            yield load
        finally:
            if defer_indexes:

                def rebuild(conn: Connection) -> None:
                    self.create_job_indexes(conn)
                    analyze(conn)

                self.db.write_sync(rebuild)

    def flush_sync(self) -> None:
        """Delete all jobs, tags and their links (upstream's Flush, used by ``init-db``)."""

        def run(conn: Connection) -> None:
            conn.execute(delete(T.jobtag))
            conn.execute(delete(T.tag))
            conn.execute(delete(T.job))

        self.db.write_sync(run)

    async def flush(self) -> None:
        await self.db.write(
            lambda c: (c.execute(delete(T.jobtag)), c.execute(delete(T.tag)), c.execute(delete(T.job)))
        )


_PG_LOAD_TYPES = {
    "job_id": "bigint",
    "array_job_id": "bigint",
    "num_nodes": "integer",
    "num_hwthreads": "integer",
    "num_acc": "integer",
    "monitoring_status": "smallint",
    "smt": "integer",
    "start_time": "bigint",
    "submit_time": "bigint",
    "duration": "integer",
    "walltime": "integer",
    "energy": "double precision",
}

_dec_resources = msgspec.json.Decoder(list[Resource])


def _resources(raw: Any) -> list[Resource]:
    if not raw:
        return []
    try:
        return _dec_resources.decode(raw)
    except msgspec.DecodeError:
        return []


def analyze(conn: Connection) -> None:
    """Fresh planner statistics after a bulk load (e.g. how small the partial indexes are).

    A full ANALYZE, deliberately: a sampled one (``PRAGMA analysis_limit``) saved ~5 % of a bulk
    load but estimated ~1,000 jobs per cluster instead of 67,000 at 200k jobs; the planner then chose
    other indexes, and the benchmark's jobs page took 1.6-2.4 ms instead of ~1.1 ms."""
    conn.exec_driver_sql("ANALYZE")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC during a bulk load: every row tuple allocated would otherwise trigger
    collections that traverse all Job objects the caller holds (~30 % of the load time at 100k jobs).
    Nothing cyclic is created here, so nothing is lost; the previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@functools.cache
def _select_sql(dialect: str, with_metadata: bool) -> str:
    """The job column list as SQL text (JSONB as text on PostgreSQL), in `JOB_COLUMN_NAMES` order."""
    names = JOB_COLUMN_NAMES + (("meta_data",) if with_metadata else ())
    pg = dialect == "postgresql"
    return ", ".join(
        f"CAST(job.{n} AS TEXT) AS {n}" if pg and n in JSON_COLUMNS else f"job.{n}" for n in names
    )


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidInputError(f"invalid {what} {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"invalid {what} {value!r} (expected an integer)") from None


def _key_text(job_id: int, cluster: str | None, start_time: int | None) -> str:
    text = f"job with jobId {job_id}"
    if cluster is not None:
        text += f" on cluster {cluster}"
    if start_time is not None:
        text += f" and startTime {start_time}"
    return text

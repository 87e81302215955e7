"""Running the taggers and writing what they find (contract §9).

Taggers are classes registered through the ``register_taggers`` hook; `TaggerService` builds one of
each (``cls(context)``) and runs them:

* on job start (``event == "start"``) from `cc_core.lifecycle.start_job`, in the background, when
  ``main.enable-job-taggers`` is set;
* after a job was archived (``event == "stop"``) from `Archiver.on_archived`, same condition;
* over every finished job from ``clustercockpit apply-tags`` (both kinds) and from the admin UI
  (``POST /config/taggers/run/``, one tagger by name, in the background; 409 while it runs).

Writes go through the tag repository's helpers in one transaction per job: the tags (``global`` scope,
created when missing) are linked unless the job already carries a tag of that type and name (upstream's
``HasTag``), and a message replaces ``metaData.message`` (upstream's ``UpdateMetadata``). Re-running is
idempotent. When a job that is already in the archive changed, its ``meta.json`` is rewritten, as
upstream's ``AddTagDirect``/``UpdateMetadata`` do. An error on one job is logged and never stops the
others. Stop taggers need the archived statistics: for ``apply-tags`` they come from ``meta.json``, so
jobs that were never archived get the start taggers only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Connection, select, update

from cc_core.db import tables as T
from cc_core.db.tags import ensure_tags, link_tags, tags_of_jobs
from cc_core.interfaces import TaggerResult
from cc_core.schema.job import MonitoringStatus

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.db import Database
    from cc_core.interfaces import ArchiveBackend, Tagger
    from cc_core.plugins import PluginRegistry
    from cc_core.schema import Job

log = logging.getLogger(__name__)

BATCH = 500
READ_CONCURRENCY = 16


@dataclass
class RunReport:
    """What a run over many jobs did."""

    jobs: int = 0
    changed: int = 0
    tags_added: int = 0
    messages: int = 0
    skipped_stop: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


@dataclass
class WriteResult:
    tags_added: int = 0
    message_changed: bool = False
    missing: bool = False
    # The job's tags (all scopes) and metadata after the write, when something changed (for meta.json).
    tags: list[Any] = field(default_factory=list)
    meta_data: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        return self.tags_added > 0 or self.message_changed


def _decode_meta(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def write_result(conn: Connection, dialect: str, job_id: int, result: TaggerResult) -> WriteResult:
    """Apply one job's tags and message on ``conn`` (the caller's transaction)."""
    out = WriteResult()
    row = conn.execute(select(T.job.c.id, T.job.c.meta_data).where(T.job.c.id == job_id)).first()
    if row is None:  # deleted meanwhile: nothing to tag
        out.missing = True
        return out
    meta = _decode_meta(row[1])
    if result.tags:
        have = {
            (r[0], r[1])
            for r in conn.execute(
                select(T.tag.c.tag_type, T.tag.c.tag_name)
                .join(T.jobtag, T.jobtag.c.tag_id == T.tag.c.id)
                .where(T.jobtag.c.job_id == job_id)
            )
        }
        keys = list(
            dict.fromkeys(
                (t.type, t.name, t.scope or "global") for t in result.tags if (t.type, t.name) not in have
            )
        )
        if keys:
            ids = ensure_tags(conn, dialect, keys)
            link_tags(conn, dialect, [(job_id, ids[k]) for k in keys])
            out.tags_added = len(keys)
    if result.message is not None and meta.get("message") != result.message:
        meta["message"] = result.message
        conn.execute(
            update(T.job).where(T.job.c.id == job_id).values(meta_data=msgspec.json.encode(meta).decode())
        )
        out.message_changed = True
    if out.changed:
        out.tags = tags_of_jobs(conn, [job_id], None).get(job_id, [])
        out.meta_data = meta
    return out


def merge_results(results: Iterable[TaggerResult]) -> TaggerResult:
    """Several taggers' results for one job: all tags; messages joined by newlines."""
    merged = TaggerResult()
    messages: list[str] = []
    for r in results:
        merged.tags.extend(r.tags)
        if r.message:
            messages.append(r.message)
    merged.message = "\n".join(messages) if messages else None
    return merged


class TaggerService:
    """The registered taggers, their event hooks, and runs over all jobs (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        archive: ArchiveBackend,
        registry: PluginRegistry | None = None,
        context: PluginContext | None = None,
        taggers: Sequence[Tagger] | None = None,
        enabled: bool = False,
    ) -> None:
        self.db = db
        self.archive = archive
        self.enabled = enabled
        self._registry = registry
        self._context = context
        self._taggers: dict[str, Tagger] | None = (
            {t.kind: t for t in taggers} if taggers is not None else None
        )
        self._running: dict[str, asyncio.Task[RunReport]] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        self.last_reports: dict[str, RunReport] = {}

    # ---------------------------------------------------------------------------------- taggers

    @property
    def taggers(self) -> dict[str, Tagger]:
        """One instance per registered tagger class, built on first use."""
        if self._taggers is None:
            built: dict[str, Tagger] = {}
            if self._registry is not None:
                for kind, cls in sorted(self._registry.classes("tagger").items()):
                    try:
                        built[kind] = cls(self._context)
                    except Exception as e:
                        log.error("tagger %s cannot be set up: %s", kind, e)
            self._taggers = built
        return self._taggers

    def of_event(self, event: str) -> list[Tagger]:
        return [t for t in self.taggers.values() if getattr(t, "event", None) == event]

    def problems(self) -> list[str]:
        """Rule files that did not load, of every tagger that reports them."""
        out: list[str] = []
        for t in self.taggers.values():
            out.extend(str(p) for p in getattr(t, "problems", []) or [])
        return out

    # ---------------------------------------------------------------------------- per job

    async def run_taggers(self, taggers: Sequence[Tagger], job: Job) -> TaggerResult:
        results: list[TaggerResult] = []
        for t in taggers:
            try:
                results.append(await t.match(job))
            except Exception as e:  # a broken tagger must not cost the job its other tags
                log.error("tagger %s failed on job %s (id %s): %s", t.kind, job.job_id, job.id, e)
        return merge_results(results)

    async def write(self, job: Job, result: TaggerResult) -> WriteResult:
        """Store ``result`` for ``job`` in one transaction; rewrite ``meta.json`` if archived."""
        if job.id is None or (not result.tags and result.message is None):
            return WriteResult()
        job_id = job.id
        dialect = self.db.dialect
        written: WriteResult = await self.db.write(lambda c: write_result(c, dialect, job_id, result))
        if written.missing:
            from cc_core.db.errors import JobNotFoundError

            raise JobNotFoundError(f"job {job_id} not found")
        await self._sync_archive(job, written)
        return written

    async def _sync_archive(self, job: Job, written: WriteResult, meta: Job | None = None) -> None:
        """Rewrite ``meta.json`` of an archived job whose tags or message changed (upstream's
        ``UpdateTags``/``UpdateMetadata``); ``meta`` is the archive's meta when already loaded."""
        from cc_core.lifecycle import is_archived

        if not written.changed or not is_archived(job):
            return
        try:
            if meta is None:
                meta = await self.archive.load_job_meta(job)
            meta = msgspec.structs.replace(meta, tags=written.tags or None, meta_data=written.meta_data)
            await self.archive.store_job_meta(meta)
        except Exception as e:
            log.error("job %s: tags stored, but meta.json could not be updated: %s", job.id, e)

    async def tag_job(self, job: Job, event: str) -> WriteResult:
        return await self.write(job, await self.run_taggers(self.of_event(event), job))

    # ---------------------------------------------------------------------------- event hooks

    def on_job_started(self, job: Job) -> None:
        """Start taggers for a freshly started job, in the background (the start reply does not wait)."""
        if not self.enabled or not self.of_event("start"):
            return
        task = asyncio.get_running_loop().create_task(self._guarded(job, "start"), name=f"tag-start-{job.id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def on_job_archived(self, meta: Job) -> None:
        """`Archiver.on_archived` hook: stop taggers on the archived job (``meta`` has its statistics)."""
        if self.enabled:
            await self._guarded(meta, "stop")

    async def _guarded(self, job: Job, event: str) -> None:
        try:
            await self.tag_job(job, event)
        except Exception as e:
            log.error("tagging job %s (id %s) on %s failed: %s", job.job_id, job.id, event, e)

    async def join(self) -> None:
        """Wait for the start taggers in flight and any running tagger runs (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def close(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self.join(), timeout)
        except TimeoutError:
            log.warning("tagger runs still in progress at shutdown were cancelled")
            for t in [*self._pending, *self._running.values()]:
                t.cancel()

    # ---------------------------------------------------------------------------- runs over jobs

    async def finished_job_ids(self) -> list[int]:
        """Database ids of all jobs that are not running (upstream ``GetJobList``), oldest first."""
        from cc_core.db.filters import state_literal

        def run(conn: Connection) -> list[int]:
            q = select(T.job.c.id).where(T.job.c.job_state != state_literal("running")).order_by(T.job.c.id)
            return [int(r[0]) for r in conn.execute(q)]

        return await self.db.read(run)

    async def _jobs(self, ids: Sequence[int]) -> list[Job]:
        from cc_core.db.convert import rows_to_jobs, select_columns

        dialect = self.db.dialect
        now = int(time.time())

        def run(conn: Connection) -> list[Job]:
            q = select(*select_columns(dialect, with_metadata=True)).where(T.job.c.id.in_(list(ids)))
            return rows_to_jobs(conn.execute(q).all(), now)

        jobs = await self.db.read(run)
        jobs.sort(key=lambda j: j.id or 0)
        return jobs

    async def _with_statistics(self, job: Job) -> Job | None:
        if job.monitoring_status != MonitoringStatus.ARCHIVING_SUCCESSFUL:
            return None
        meta = await self.archive.load_job_meta(job)
        if not meta.statistics:
            return None
        return msgspec.structs.replace(job, statistics=meta.statistics)

    async def run_all(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: Callable[[RunReport, int], None] | None = None,
    ) -> RunReport:
        """Run the named taggers (default: all) over every finished job; returns what changed."""
        chosen = [t for k, t in self.taggers.items() if names is None or k in names]
        start = [t for t in chosen if t.event == "start"]
        stop = [t for t in chosen if t.event == "stop"]
        report = RunReport()
        began = time.perf_counter()
        ids = await self.finished_job_ids()
        total = len(ids)
        limit = asyncio.Semaphore(READ_CONCURRENCY)
        for i in range(0, total, BATCH):
            jobs = await self._jobs(ids[i : i + BATCH])

            # Archive reads overlap (they wait on I/O threads); tagging itself stays on this loop.
            async def evaluate(job: Job) -> tuple[Job, TaggerResult, Job | None] | None:
                async with limit:
                    try:
                        return await self._evaluate(job, start, stop, report)
                    except Exception as e:
                        self._failed(report, job, e)
                        return None

            evaluated = await asyncio.gather(*(evaluate(j) for j in jobs))
            await self._write_batch([x for x in evaluated if x is not None], report, limit)
            report.jobs += len(ids[i : i + BATCH])
            if progress is not None:
                report.seconds = time.perf_counter() - began
                progress(report, total)
        report.seconds = time.perf_counter() - began
        return report

    async def _evaluate(
        self, job: Job, start: list[Tagger], stop: list[Tagger], report: RunReport
    ) -> tuple[Job, TaggerResult, Job | None]:
        """One job's merged result, and its archive meta if it was loaded for the stop taggers."""
        results = [await self.run_taggers(start, job)] if start else []
        full: Job | None = None
        if stop:
            full = await self._with_statistics(job)
            if full is None:
                report.skipped_stop += 1
            else:
                results.append(await self.run_taggers(stop, full))
        return job, merge_results(results), full

    @staticmethod
    def _failed(report: RunReport, job: Job, e: Exception) -> None:
        report.errors.append(f"job {job.job_id} (id {job.id}, {job.cluster}): {e}")
        log.error("tagging job %s (id %s) failed: %s", job.job_id, job.id, e)

    async def _write_batch(
        self, batch: list[tuple[Job, TaggerResult, Job | None]], report: RunReport, limit: asyncio.Semaphore
    ) -> None:
        """All results of a batch in one transaction (re-running over unchanged jobs costs one commit
        per batch); if that transaction fails, job by job, so one bad job never costs the others."""
        todo = [(j, r, m) for j, r, m in batch if j.id is not None and (r.tags or r.message is not None)]
        if not todo:
            return
        dialect = self.db.dialect

        def run(conn: Connection) -> list[WriteResult]:
            return [write_result(conn, dialect, j.id, r) for j, r, _ in todo]  # type: ignore[arg-type]

        try:
            written = await self.db.write(run)
        except Exception as e:
            log.warning("tagger batch write failed (%s); writing job by job", e)
            for job, result, meta in todo:
                try:
                    w = await self.db.write(lambda c, j=job, r=result: write_result(c, dialect, j.id, r))
                except Exception as e2:
                    self._failed(report, job, e2)
                    continue
                await self._count(report, job, w, meta)
            return

        async def count(job: Job, w: WriteResult, meta: Job | None) -> None:
            async with limit:  # meta.json rewrites overlap too
                await self._count(report, job, w, meta)

        await asyncio.gather(*(count(job, w, meta) for (job, _, meta), w in zip(todo, written, strict=True)))

    async def _count(self, report: RunReport, job: Job, w: WriteResult, meta: Job | None) -> None:
        if w.missing:
            return
        await self._sync_archive(job, w, meta)
        if w.changed:
            report.changed += 1
        report.tags_added += w.tags_added
        report.messages += int(w.message_changed)

    # ---------------------------------------------------------------------------- admin trigger

    def is_running(self, name: str) -> bool:
        task = self._running.get(name)
        return task is not None and not task.done()

    def start(self, name: str) -> asyncio.Task[RunReport]:
        """Run one tagger over all finished jobs in the background (the admin UI's button)."""
        if name not in self.taggers:
            raise KeyError(name)
        if self.is_running(name):
            raise RuntimeError(f"tagger {name} is already running")
        task = asyncio.get_running_loop().create_task(self._run_named(name), name=f"tagger-run-{name}")
        self._running[name] = task
        return task

    async def _run_named(self, name: str) -> RunReport:
        log.info("running tagger %s on all finished jobs", name)
        try:
            report = await self.run_all([name])
        except Exception as e:
            log.error("tagger run %s failed: %s", name, e)
            raise
        self.last_reports[name] = report
        log.info(
            "tagger %s done: %d jobs in %.1f s, %d changed, %d tags added, %d error(s)",
            name,
            report.jobs,
            report.seconds,
            report.changed,
            report.tags_added,
            len(report.errors),
        )
        return report

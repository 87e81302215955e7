"""Tasks on the job archive: compression of old job data, and retention (delete, copy or move old jobs).

Retention follows upstream's services (contract §10): jobs that started more than ``age`` days ago
(``omit-tagged`` keeps tagged ones) are, by ``policy``,

* ``delete`` (03:00): removed from the archive, and with ``include-db`` from the database (+ VACUUM);
* ``copy`` (04:00): copied to the target — jobs since the last copy's cutoff, which is kept in
  ``<target-path>/.copy-marker`` (an S3 target keeps it in the temp directory, as upstream);
* ``move`` (05:00): copied, then removed as by ``delete``.

The target is ``format: json`` (an archive in upstream's layout, ``target-kind`` file or s3) or
``parquet`` (upstream's Parquet layout). Unlike upstream, a move deletes only what reached the target:
if any archived job could not be copied, nothing is deleted from the database in that run, the task
reports the failure and the next run tries again. Jobs that were never archived (monitoring off or
failed) cannot be copied and are deleted as upstream does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cc_core.archive.errors import ArchiveError
from cc_core.tasks.builtin import SECTION_COMPRESSION, SECTION_RETENTION

if TYPE_CHECKING:
    from cc_core.config import Retention
    from cc_core.context import PluginContext
    from cc_core.interfaces import ArchiveBackend
    from cc_core.schema.job import Job

log = logging.getLogger(__name__)

DAY = 86400
DEFAULT_COMPRESS_DAYS = 7
RETENTION_TIMES = {"delete": "03:00", "copy": "04:00", "move": "05:00"}
COPY_MARKER = ".copy-marker"


class ArchiveCompression:
    """Gzip ``data.json`` (above 2000 bytes) of jobs older than ``archive.compression`` days (default 7),
    daily at 05:00. The archive's ``compress.txt`` remembers where the last run stopped, so each run
    only looks at jobs that started since; the first run covers the whole archive."""

    name: ClassVar[str] = "archive-compression"

    def __init__(self, context: PluginContext, days: int) -> None:
        self.services = context.services
        self.days = days

    @classmethod
    def create(cls, context: PluginContext) -> ArchiveCompression:
        days = context.section(SECTION_COMPRESSION) or 0
        return cls(context, int(days) if days > 0 else DEFAULT_COMPRESS_DAYS)

    @property
    def schedule(self) -> str:
        return "05:00"

    async def run(self) -> str:
        db, archive = self.services["db"], self.services["archive"]
        before = int(time.time()) - self.days * DAY
        last = await archive.compress_last(before)
        if last > before:
            return "nothing to do (compress.txt is newer than the cutoff)"
        start = 0 if last == before else last
        jobs = await db.jobs.find_between(start, before)
        n = await archive.compress(jobs)
        scope = "whole archive" if start == 0 else "since the last run"
        return f"{n} of {len(jobs)} job(s) compressed ({scope})"


class ArchiveRetention:
    """``archive.retention``: see the module docstring."""

    name: ClassVar[str] = "archive-retention"

    def __init__(self, context: PluginContext, settings: Retention) -> None:
        self.context = context
        self.services = context.services
        self.settings = settings

    @classmethod
    def create(cls, context: PluginContext) -> ArchiveRetention | None:
        settings = context.section(SECTION_RETENTION)
        if settings is None or settings.policy not in RETENTION_TIMES:
            return None
        check_target(settings, "$.archive.retention", needed=settings.policy in ("copy", "move"))
        return cls(context, settings)

    @property
    def schedule(self) -> str:
        return RETENTION_TIMES[self.settings.policy]

    async def run(self) -> str:
        s = self.settings
        db, archive = self.services["db"], self.services["archive"]
        cutoff = int(time.time()) - s.age * DAY
        start = self._read_marker() if s.policy == "copy" else 0
        if start >= cutoff:
            return f"nothing to copy: the last copy reached the cutoff ({start})"
        jobs = await db.jobs.find_between(start, cutoff, omit_tagged=s.omit_tagged)
        if not jobs:
            if s.policy == "copy":
                self._write_marker(cutoff)
            return f"no job started before the cutoff ({cutoff})"
        archived = [j for j in jobs if await archive.exists(j)]
        parts = [f"{len(jobs)} job(s) before {cutoff}, {len(archived)} archived"]
        failed = 0
        if s.policy in ("copy", "move") and archived:
            copied, errors = await self._transfer(archive, archived)
            failed = len(errors)
            for e in errors[:20]:
                log.warning("retention %s: %s", s.policy, e)
            parts.append(f"{copied} copied as {s.format}" + (f", {failed} failed" if failed else ""))
            if failed:
                raise RetentionError("; ".join(parts) + ": nothing deleted, retried at the next run")
        if s.policy == "copy":
            self._write_marker(cutoff)
            return "; ".join(parts)
        removed = await archive.clean_up(archived)
        parts.append(f"{removed} removed from the archive")
        if s.include_db:
            n = await db.jobs.delete_before(cutoff, omit_tagged=s.omit_tagged)
            parts.append(f"{n} deleted from the database")
            if n:
                await _optimize(db)
        return "; ".join(parts)

    # ---------------------------------------------------------------------------------- target

    def _target_section(self) -> dict[str, Any]:
        s = self.settings
        if s.target_kind == "s3":
            return {
                "kind": "s3",
                "endpoint": s.target_endpoint,
                "bucket": s.target_bucket,
                "access-key": s.target_access_key,
                "secret-key": s.target_secret_key,
                "region": s.target_region,
                "use-path-style": s.target_use_path_style,
            }
        return {"kind": s.target_kind, "path": s.target_path}

    def _open_target(self) -> ArchiveBackend:
        from cc_core.archive import open_backend

        return open_backend(
            self._target_section(),
            registry=self.context.registry,
            context=self.context,
            source="config.json: archive.retention (target-*)",
        )

    async def _transfer(self, src: ArchiveBackend, jobs: list[Job]) -> tuple[int, list[str]]:
        target = self._open_target()
        try:
            if self.settings.format == "parquet":
                from cc_core.archive.parquet import export_jobs_parquet

                tally, files = await export_jobs_parquet(
                    src, target, jobs, max_file_size_mb=self.settings.max_file_size_mb or 512
                )
                log.info("retention: wrote %d Parquet file(s): %s", len(files), ", ".join(files[:10]))
                return tally.done, tally.errors
            return await copy_jobs(src, target, jobs)
        finally:
            await target.close()

    # ---------------------------------------------------------------------------------- marker

    def _marker_path(self) -> Path:
        s = self.settings
        if s.target_kind == "s3":
            return Path(tempfile.gettempdir()) / f"cc-copy-marker-{s.target_bucket}"
        root = Path(s.target_path).expanduser()
        return (root if root.is_absolute() else self.context.base_dir / root) / COPY_MARKER

    def _read_marker(self) -> int:
        try:
            return int(self._marker_path().read_text().strip())
        except (OSError, ValueError):
            return 0

    def _write_marker(self, ts: int) -> None:
        path = self._marker_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(str(ts))
        tmp.replace(path)


def check_target(settings: Any, path: str, *, needed: bool) -> None:
    """A copy or move needs somewhere to go: refuse at start-up, not at 03:00."""
    from cc_core.config import ConfigError

    if not needed:
        return
    if settings.target_kind == "s3":
        if not settings.target_bucket:
            raise ConfigError("`target-bucket` is required with target-kind s3", path=f"{path}.target-bucket")
    elif not settings.target_path:
        raise ConfigError(
            f"`target-path` is required for policy {settings.policy!r}", path=f"{path}.target-path"
        )


class RetentionError(RuntimeError):
    """A retention run could not copy every job; nothing was deleted."""


async def copy_jobs(src: ArchiveBackend, dst: ArchiveBackend, jobs: list[Job]) -> tuple[int, list[str]]:
    """Copy jobs (files as stored) and their clusters' ``cluster.json`` into an archive; returns how
    many were copied and the errors of the others."""
    await dst.init()
    errors: list[str] = []
    for name in sorted({j.cluster for j in jobs}):
        try:
            await dst.store_cluster_config(await src.load_cluster_config(name), name=name)
        except ArchiveError as e:
            errors.append(f"cluster {name}: {e}")
    copied = 0
    for job in jobs:
        try:
            await dst.write_job_raw(await src.read_job_raw(job))
            copied += 1
        except ArchiveError as e:
            errors.append(str(e))
    return copied, errors


async def _optimize(db: Any) -> None:
    from cc_core.db.migrations import optimize

    try:
        await asyncio.to_thread(optimize, db)
    except Exception as e:  # the rows are gone; a failed VACUUM only costs disk space until next time
        log.warning("retention: database optimisation failed: %s", e)

"""`ArchiveBase`: the whole `ArchiveBackend` protocol on top of a few storage primitives.

A backend (file system, S3, a third-party store) subclasses `ArchiveBase` and implements how bytes are
read, written, listed and deleted under ``/``-separated keys. Layout, formats, version handling, gzip
rules, error messages and the order of writes that makes them atomic live here once, so every backend
behaves the same and passes the same contract suite (`cc_core.testing.archive_contract`).

Atomicity: a job is visible when its ``meta.json`` exists. `_write_job_files` writes the data file first
and ``meta.json`` last (the file backend goes further and renames a complete temporary directory into
place), and `_delete_job_dir` removes ``meta.json`` first. A reader therefore never sees a job whose data
is missing or half written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from cc_core.archive import codec
from cc_core.archive.errors import (
    ArchiveError,
    ArchiveFormatError,
    ArchiveVersionError,
    ClusterNotFoundError,
    JobNotFoundError,
)
from cc_core.archive.layout import (
    COMPRESS_FILE,
    DATA_FILE,
    DATA_GZ_FILE,
    GZIP_THRESHOLD,
    META_FILE,
    VERSION_FILE,
    cluster_file,
    is_hidden,
    job_dir,
    job_dir_of,
)
from cc_core.interfaces import ArchiveClusterInfo, ArchivedJob, RawJob

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.interfaces import ArchiveBackend
    from cc_core.schema.cluster import Cluster
    from cc_core.schema.job import Job
    from cc_core.schema.metrics import JobData, JobStats

log = logging.getLogger(__name__)

# Jobs per walk batch (meta only) and per load batch when data is loaded (13 MB each, decoded).
WALK_BATCH = 256
DATA_BATCH = 4
# Above this size, data files are decoded in a worker thread so the event loop stays responsive.
THREAD_DECODE_BYTES = 64 * 1024


@dataclass(slots=True)
class JobLocation:
    """A job directory found by a walk; ``files`` maps file name → size when the listing knew them."""

    dir: str
    cluster: str
    start_time: int
    files: dict[str, int] | None = None


class ArchiveBase:
    """Base class of archive backends. Subclasses set ``kind`` and ``Config`` and implement the
    primitives below (``_read`` … ``_display``); they may override the batch methods for speed."""

    kind: ClassVar[str] = ""
    # Parallel requests in batch loads (S3); the file backend reads in a worker thread instead.
    io_concurrency: ClassVar[int] = 16

    def __init__(self, config: Any, context: PluginContext | None = None) -> None:
        self.config = config
        self.context = context
        # main.validate: JSON-schema validation of every file read (set by the app and the CLI).
        self.validate = False

    # ================================================================ primitives (implement these)

    async def _read(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist. Storage errors → `ArchiveAccessError`."""
        raise NotImplementedError

    async def _write(self, key: str, data: bytes) -> None:
        """Create or replace one object atomically (readers see the old or the new bytes)."""
        raise NotImplementedError

    async def _delete(self, keys: Sequence[str]) -> None:
        """Delete objects; missing ones are fine."""
        raise NotImplementedError

    async def _exists(self, key: str) -> bool:
        raise NotImplementedError

    async def _list(self, prefix: str) -> tuple[list[str], dict[str, int]]:
        """Immediate children of a directory key (``""`` = root): sub-directory names, files → sizes."""
        raise NotImplementedError

    def _display(self, key: str) -> str:
        """How a key is shown to people: a file path, ``s3://bucket/key``."""
        raise NotImplementedError

    async def _prepare(self) -> None:
        """Called by `init` before the version check (create the root directory, check the bucket)."""

    # ================================================================ overridable batch operations

    async def _write_job_files(self, dir: str, files: dict[str, bytes], stale: Sequence[str]) -> None:
        """Write a job's files so that it becomes visible only when complete: data, then meta.

        If a write fails for a job that did not exist, the files already written are removed again
        (best effort), so no data is left without its ``meta.json``.
        """
        meta_key = f"{dir}/{META_FILE}"
        written: list[str] = []
        try:
            for name, data in files.items():
                if name != META_FILE:
                    await self._write(f"{dir}/{name}", data)
                    written.append(f"{dir}/{name}")
            if stale:
                await self._delete([f"{dir}/{n}" for n in stale])
            if META_FILE in files:
                await self._write(meta_key, files[META_FILE])
        except BaseException:
            # Still no meta.json: the job is new, so its data must not stay behind. (Checked only on
            # failure, which saves a request per job on object stores.)
            with contextlib.suppress(Exception):
                if written and not await self._exists(meta_key):
                    await self._delete(written)
            raise

    async def _delete_job_dir(self, dir: str) -> None:
        """Remove a job: ``meta.json`` first (the job disappears at once), then the rest."""
        await self._delete([f"{dir}/{META_FILE}"])
        _, files = await self._list(dir)
        if files:
            await self._delete([f"{dir}/{n}" for n in files])

    async def _prune(self, dirs: set[str]) -> None:
        """Remove directories left empty by deletions (file systems; object stores have none)."""

    async def _walk(
        self, cluster: str | None = None, *, with_files: bool = False
    ) -> AsyncIterator[list[JobLocation]]:
        """Batches of job directories, cluster by cluster. ``with_files`` also lists each job's files."""
        clusters = [cluster] if cluster is not None else await self.get_clusters()
        batch: list[JobLocation] = []
        for c in clusters:
            lvl1s, _ = await self._list(c)
            for lvl1 in sorted(lvl1s):
                if is_hidden(lvl1):
                    continue
                lvl2s, _ = await self._list(f"{c}/{lvl1}")
                for lvl2 in sorted(lvl2s):
                    if is_hidden(lvl2):
                        continue
                    starts, _ = await self._list(f"{c}/{lvl1}/{lvl2}")
                    for start in sorted(starts):
                        if is_hidden(start):
                            continue
                        try:
                            st = int(start)
                        except ValueError:
                            continue
                        d = f"{c}/{lvl1}/{lvl2}/{start}"
                        files = (await self._list(d))[1] if with_files else None
                        batch.append(JobLocation(d, c, st, files))
                        if len(batch) >= WALK_BATCH:
                            yield batch
                            batch = []
        if batch:
            yield batch

    async def _load_batch(self, locs: Sequence[JobLocation], load_data: bool) -> list[ArchivedJob]:
        """Read and decode a batch of jobs, `io_concurrency` requests at a time."""
        sem = asyncio.Semaphore(self.io_concurrency)

        async def one(loc: JobLocation) -> ArchivedJob | None:
            async with sem:
                return await self._load_one(loc, load_data)

        return [j for j in await asyncio.gather(*(one(loc) for loc in locs)) if j is not None]

    async def _load_one(self, loc: JobLocation, load_data: bool) -> ArchivedJob | None:
        """One job, or None for a directory without ``meta.json`` (an aborted write: not a job)."""
        path = self._display(loc.dir)
        try:
            if loc.files is not None and META_FILE not in loc.files:
                return None
            buf = await self._read(f"{loc.dir}/{META_FILE}")
            if buf is None:
                return None
            meta = codec.decode_meta(buf, self._display(f"{loc.dir}/{META_FILE}"), validate=self.validate)
            data = None
            if load_data:
                key, raw, compressed = await self._read_data(loc.dir, loc.files)
                data = await self._decode_data(raw, key, compressed)
            return ArchivedJob(path=path, meta=meta, data=data)
        except ArchiveError as e:
            return ArchivedJob(path=path, meta=None, error=str(e))

    # ================================================================ protocol

    async def init(self) -> int:
        await self._prepare()
        buf = await self._read(VERSION_FILE)
        if buf is None:
            dirs, files = await self._list("")
            if any(not is_hidden(n) for n in [*dirs, *files]):
                raise ArchiveVersionError(
                    self._display(VERSION_FILE),
                    "missing, but the archive is not empty; if it is an old (version 2) archive, "
                    f"{codec.MIGRATE_HINT}",
                )
            log.info("bootstrapping a new job archive at %s", self._display(""))
            await self._write(VERSION_FILE, codec.version_bytes())
            return codec.parse_version(codec.version_bytes(), VERSION_FILE)
        return codec.parse_version(buf, self._display(VERSION_FILE))

    async def info(self) -> dict[str, ArchiveClusterInfo]:
        out: dict[str, ArchiveClusterInfo] = {c: ArchiveClusterInfo() for c in await self.get_clusters()}
        async for batch in self._walk(with_files=True):
            for loc in batch:
                ci = out.setdefault(loc.cluster, ArchiveClusterInfo())
                ci.jobs += 1
                ci.first_start = (
                    loc.start_time if ci.first_start is None else min(ci.first_start, loc.start_time)
                )
                ci.last_start = (
                    loc.start_time if ci.last_start is None else max(ci.last_start, loc.start_time)
                )
                ci.bytes += sum((loc.files or {}).values())
        return out

    async def exists(self, job: Job) -> bool:
        return await self._exists(f"{job_dir_of(job)}/{META_FILE}")

    async def load_job_meta(self, job: Job) -> Job:
        d = job_dir_of(job)
        key = f"{d}/{META_FILE}"
        buf = await self._read(key)
        if buf is None:
            raise JobNotFoundError(self._display(d), "job is not in the archive (no meta.json)")
        return codec.decode_meta(buf, self._display(key), validate=self.validate)

    async def _read_data(self, dir: str, files: dict[str, int] | None = None) -> tuple[str, bytes, bool]:
        """``(key, bytes, compressed)`` of the job's data file, preferring ``data.json.gz``."""
        for name, compressed in ((DATA_GZ_FILE, True), (DATA_FILE, False)):
            if files is not None and name not in files:
                continue
            key = f"{dir}/{name}"
            buf = await self._read(key)
            if buf is not None:
                return key, buf, compressed
        if files is None and not await self._exists(f"{dir}/{META_FILE}"):
            raise JobNotFoundError(self._display(dir), "job is not in the archive (no meta.json)")
        raise ArchiveFormatError(self._display(dir), "job directory without data.json or data.json.gz")

    async def _decode_data(self, raw: bytes, key: str, compressed: bool) -> JobData:
        path = self._display(key)
        if len(raw) > THREAD_DECODE_BYTES:
            return await asyncio.to_thread(
                codec.decode_data, raw, path, compressed=compressed, validate=self.validate
            )
        return codec.decode_data(raw, path, compressed=compressed, validate=self.validate)

    async def load_job_data(self, job: Job) -> JobData:
        key, raw, compressed = await self._read_data(job_dir_of(job))
        return await self._decode_data(raw, key, compressed)

    async def load_job_stats(self, job: Job) -> JobStats:
        key, raw, compressed = await self._read_data(job_dir_of(job))
        return await asyncio.to_thread(
            codec.decode_stats, raw, self._display(key), compressed=compressed, validate=self.validate
        )

    async def load_cluster_config(self, cluster: str) -> Cluster:
        key = cluster_file(cluster)
        buf = await self._read(key)
        if buf is None:
            raise ClusterNotFoundError(
                self._display(key), f"cluster {cluster!r} is not in the archive (no cluster.json)"
            )
        return codec.decode_cluster_file(buf, self._display(key), validate=self.validate)

    async def store_cluster_config(self, cluster: Cluster, name: str | None = None) -> None:
        await self._write(cluster_file(name or cluster.name), codec.encode_cluster_file(cluster))

    async def store_job_meta(self, job: Job) -> None:
        d = job_dir_of(job)
        if not await self._exists(f"{d}/{META_FILE}"):
            raise JobNotFoundError(self._display(d), "cannot update meta.json: job is not in the archive")
        await self._write(f"{d}/{META_FILE}", codec.encode_meta(job))

    async def import_job(self, meta: Job, data: JobData) -> None:
        meta_bytes = codec.encode_meta(meta)
        name, data_bytes = await asyncio.to_thread(codec.encode_data, data)
        stale = [DATA_FILE if name == DATA_GZ_FILE else DATA_GZ_FILE]
        await self._write_job_files(job_dir_of(meta), {name: data_bytes, META_FILE: meta_bytes}, stale)

    async def read_job_raw(self, job: Job) -> RawJob:
        d = job_dir_of(job)
        meta = await self._read(f"{d}/{META_FILE}")
        if meta is None:
            raise JobNotFoundError(self._display(d), "job is not in the archive (no meta.json)")
        try:
            _, data, compressed = await self._read_data(d)
        except ArchiveFormatError:
            data, compressed = None, False
        return RawJob(job.cluster, job.job_id, job.start_time, meta, data, compressed)

    async def write_job_raw(self, raw: RawJob) -> None:
        files: dict[str, bytes] = {}
        stale: list[str] = []
        if raw.data is not None:
            name = DATA_GZ_FILE if raw.data_compressed else DATA_FILE
            files[name] = raw.data
            stale.append(DATA_FILE if raw.data_compressed else DATA_GZ_FILE)
        files[META_FILE] = raw.meta
        await self._write_job_files(job_dir(raw.cluster, raw.job_id, raw.start_time), files, stale)

    async def get_clusters(self) -> list[str]:
        dirs, _ = await self._list("")
        return sorted(d for d in dirs if not is_hidden(d))

    async def clean(self, before: int = 0, after: int = 0, cluster: str | None = None) -> int:
        upper = after if after else None
        doomed: list[JobLocation] = []
        async for batch in self._walk(cluster):
            doomed.extend(
                loc
                for loc in batch
                if loc.start_time < before or (upper is not None and loc.start_time > upper)
            )
        await self._delete_many([loc.dir for loc in doomed])
        return len(doomed)

    async def _delete_many(self, dirs: Sequence[str]) -> None:
        sem = asyncio.Semaphore(self.io_concurrency)

        async def one(d: str) -> None:
            async with sem:
                await self._delete_job_dir(d)

        await asyncio.gather(*(one(d) for d in dirs))
        await self._prune({d.rsplit("/", 1)[0] for d in dirs})

    async def clean_up(self, jobs: Sequence[Job]) -> int:
        present = [job_dir_of(j) for j in jobs if await self.exists(j)]
        await self._delete_many(present)
        return len(present)

    async def move(self, jobs: Sequence[Job], target: ArchiveBackend) -> int:
        moved: list[str] = []
        for job in jobs:
            raw = await self.read_job_raw(job)
            await target.write_job_raw(raw)
            moved.append(job_dir_of(job))
        await self._delete_many(moved)
        return len(moved)

    async def compress(self, jobs: Sequence[Job]) -> int:
        count = 0
        for job in jobs:
            d = job_dir_of(job)
            raw = await self._read(f"{d}/{DATA_FILE}")
            if raw is None or len(raw) <= GZIP_THRESHOLD:
                continue
            await self._write(f"{d}/{DATA_GZ_FILE}", await asyncio.to_thread(codec.gzip_bytes, raw))
            await self._delete([f"{d}/{DATA_FILE}"])
            count += 1
        return count

    async def compress_last(self, start_time: int) -> int:
        buf = await self._read(COMPRESS_FILE)
        await self._write(COMPRESS_FILE, str(int(start_time)).encode())
        if buf is None:
            return start_time
        try:
            return int(buf.decode().strip())
        except ValueError:
            log.warning("%s: unreadable content, resetting", self._display(COMPRESS_FILE))
            return start_time

    async def iter_jobs(
        self, load_data: bool = False, cluster: str | None = None
    ) -> AsyncIterator[ArchivedJob]:
        async for batch in self._walk(cluster):
            step = DATA_BATCH if load_data else len(batch)
            for i in range(0, len(batch), step):
                for job in await self._load_batch(batch[i : i + step], load_data):
                    yield job

    async def close(self) -> None:
        return None

    # ================================================================ helpers for tools

    async def job_locations(
        self, cluster: str | None = None, *, with_files: bool = False
    ) -> AsyncIterator[JobLocation]:
        """Every job directory (without reading any file): for counting, cleaning, migrating."""
        async for batch in self._walk(cluster, with_files=with_files):
            for loc in batch:
                yield loc

    async def remove_cluster(self, name: str) -> None:
        """Delete ``<name>/cluster.json`` and, where storage has directories, the emptied cluster
        directory (jobs must have been removed with `clean` first)."""
        await self._delete([f"{name}/cluster.json"])
        await self._prune({name})

    async def cluster_sizes(self) -> dict[str, int]:
        """Job count per cluster without reading job files."""
        counts: dict[str, int] = defaultdict(int)
        async for batch in self._walk():
            for loc in batch:
                counts[loc.cluster] += 1
        return dict(counts)

"""Parquet export and import of a job archive (upstream ``pkg/archive/parquet``, contract §3.6).

Layout (readable by upstream's converter): ``<cluster>/cluster.json`` and
``<cluster>/cc-archive-<YYYY-MM-DD>-<NNN>.parquet``, zstd-compressed, rows sorted by sub_cluster, project
and start_time, a new file whenever the estimated size passes ``max_file_size_mb``. One row per job
with upstream's columns (``ParquetJobRow``); ``metric_data_gz`` is the job's gzipped ``data.json``.

Upstream's row loses the job's ``shared`` value (its ``exclusive`` column is never filled), its submit
time, requested memory, array job id and monitoring status. We write ``exclusive`` from ``shared`` (1 none,
2 single_user, 0 multi_user) and add these as extra nullable columns, which upstream's reader ignores;
reading prefers them and falls back to upstream's defaults.

pyarrow is an optional dependency (``pip install "clustercockpit[parquet]"``); the targets and sources are
archive backends used as plain object stores (a directory, an S3 bucket), without ``version.txt``.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.archive import codec
from cc_core.archive.backend import ArchiveBase
from cc_core.archive.errors import ArchiveError, ArchiveFormatError, ClusterNotFoundError
from cc_core.archive.layout import CLUSTER_FILE, GZIP_THRESHOLD, is_hidden
from cc_core.archive.tools import Tally
from cc_core.interfaces import RawJob
from cc_core.schema.job import Job, JobStatistics, Resource, Tag

if TYPE_CHECKING:
    from cc_core.interfaces import ArchiveBackend

INSTALL_HINT = 'Parquet support needs pyarrow: pip install "clustercockpit[parquet]"'
SHARED_TO_EXCLUSIVE = {"none": 1, "single_user": 2, "multi_user": 0}


class ParquetUnavailableError(RuntimeError):
    """pyarrow is not installed."""


def _pa() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # the submodule must be loadable too
    except ImportError:
        raise ParquetUnavailableError(INSTALL_HINT) from None
    return pyarrow


def job_schema() -> Any:
    """The Arrow schema of a job row: upstream's columns, then ours (nullable)."""
    pa = _pa()
    req = [
        ("job_id", pa.int64()),
        ("cluster", pa.string()),
        ("sub_cluster", pa.string()),
    ]
    fields = [pa.field(n, t, nullable=False) for n, t in req]
    fields.append(pa.field("partition", pa.string(), nullable=True))
    for n, t in (
        ("project", pa.string()),
        ("user", pa.string()),
        ("job_state", pa.string()),
        ("start_time", pa.int64()),
        ("duration", pa.int32()),
        ("walltime", pa.int64()),
        ("num_nodes", pa.int32()),
        ("num_hwthreads", pa.int32()),
        ("num_acc", pa.int32()),
        ("exclusive", pa.int32()),
        ("energy", pa.float64()),
        ("smt", pa.int32()),
        ("resources_json", pa.binary()),
    ):
        fields.append(pa.field(n, t, nullable=False))
    for n in ("statistics_json", "tags_json", "meta_data_json", "footprint_json", "energy_footprint_json"):
        fields.append(pa.field(n, pa.binary(), nullable=True))
    fields.append(pa.field("metric_data_gz", pa.binary(), nullable=False))
    for n, t in (
        ("shared", pa.string()),
        ("submit_time", pa.int64()),
        ("requested_memory", pa.int64()),
        ("array_job_id", pa.int64()),
        ("monitoring_status", pa.int32()),
    ):
        fields.append(pa.field(n, t, nullable=True))
    return pa.schema(fields)


def _json(value: Any) -> bytes | None:
    return None if value is None else msgspec.json.encode(value)


def job_to_row(meta: Job, data: bytes, data_compressed: bool) -> dict[str, Any]:
    """One Parquet row from a job's meta and its stored data file."""
    gz = data if data_compressed else codec.gzip_bytes(data)
    return {
        "job_id": meta.job_id,
        "cluster": meta.cluster,
        "sub_cluster": meta.sub_cluster,
        "partition": meta.partition or None,
        "project": meta.project,
        "user": meta.user,
        "job_state": meta.job_state,
        "start_time": meta.start_time,
        "duration": meta.duration,
        "walltime": meta.walltime,
        "num_nodes": meta.num_nodes,
        "num_hwthreads": meta.num_hwthreads,
        "num_acc": meta.num_acc,
        "exclusive": SHARED_TO_EXCLUSIVE.get(meta.shared, 1),
        "energy": meta.energy,
        "smt": meta.smt,
        "resources_json": msgspec.json.encode(meta.resources),
        "statistics_json": _json(meta.statistics),
        "tags_json": _json(meta.tags),
        "meta_data_json": _json(meta.meta_data),
        "footprint_json": _json(meta.footprint),
        "energy_footprint_json": _json(meta.energy_footprint),
        "metric_data_gz": gz,
        "shared": meta.shared,
        "submit_time": meta.submit_time,
        "requested_memory": meta.requested_memory,
        "array_job_id": meta.array_job_id,
        "monitoring_status": int(meta.monitoring_status),
    }


def row_to_raw_job(row: dict[str, Any]) -> tuple[Job, RawJob]:
    """A job back from a row (ours or upstream's); data is stored gzipped only above 2000 bytes."""

    def dec(key: str, type_: Any) -> Any:
        value = row.get(key)
        return msgspec.json.decode(value, type=type_) if value else None

    meta = Job(
        job_id=row["job_id"],
        user=row["user"],
        project=row["project"],
        cluster=row["cluster"],
        sub_cluster=row["sub_cluster"] or "",
        partition=row.get("partition") or "",
        start_time=row["start_time"],
        num_nodes=row["num_nodes"],
        num_hwthreads=row.get("num_hwthreads") or 0,
        num_acc=row.get("num_acc") or 0,
        shared=row.get("shared") or "none",
        monitoring_status=row["monitoring_status"] if row.get("monitoring_status") is not None else 3,
        smt=row.get("smt") or 0,
        walltime=row.get("walltime") or 0,
        requested_memory=row.get("requested_memory") or 0,
        job_state=row["job_state"],
        submit_time=row.get("submit_time") or 0,
        array_job_id=row.get("array_job_id") or 0,
        duration=row["duration"],
        energy=row.get("energy") or 0.0,
        resources=dec("resources_json", list[Resource]) or [],
        statistics=dec("statistics_json", dict[str, JobStatistics]),
        tags=dec("tags_json", list[Tag]),
        meta_data=dec("meta_data_json", dict[str, str]),
        footprint=dec("footprint_json", dict[str, float]),
        energy_footprint=dec("energy_footprint_json", dict[str, float]),
    )
    gz = row["metric_data_gz"]
    plain = codec.gunzip(gz, f"job {meta.job_id} of {meta.cluster}: metric_data_gz")
    if len(plain) > GZIP_THRESHOLD:
        data, compressed = gz, True
    else:
        data, compressed = plain, False
    return meta, RawJob(meta.cluster, meta.job_id, meta.start_time, codec.encode_meta(meta), data, compressed)


def _estimate(row: dict[str, Any]) -> int:
    size = 200
    for v in row.values():
        if isinstance(v, bytes | str):
            size += len(v)
    return size


@dataclass
class _ClusterWriter:
    cluster: str
    target: ArchiveBase
    max_bytes: int
    date: str
    counter: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    files: list[str] = field(default_factory=list)

    async def add(self, row: dict[str, Any]) -> None:
        est = _estimate(row)
        if self.rows and self.size + est > self.max_bytes:
            await self.flush()
        self.rows.append(row)
        self.size += est

    async def flush(self) -> None:
        if not self.rows:
            return
        pa = _pa()
        import pyarrow.parquet as pq

        self.rows.sort(key=lambda r: (r["sub_cluster"], r["project"], r["start_time"]))
        table = pa.Table.from_pylist(self.rows, schema=job_schema())
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.counter += 1
        name = f"{self.cluster}/cc-archive-{self.date}-{self.counter:03d}.parquet"
        await self.target._write(name, buf.getvalue())
        self.files.append(name)
        self.rows, self.size = [], 0


async def _open_writer(target: ArchiveBase, name: str, date: str, max_file_size_mb: int) -> _ClusterWriter:
    """A writer for one cluster that never overwrites an earlier export of the same day: it continues
    that day's file numbering."""
    _, files = await target._list(name)
    prefix = f"cc-archive-{date}-"
    used = [int(f[len(prefix) : -8]) for f in files if f.startswith(prefix) and f[len(prefix) : -8].isdigit()]
    return _ClusterWriter(name, target, max_file_size_mb * 1024 * 1024, date, max(used, default=0))


async def export_jobs_parquet(
    src: ArchiveBackend, target: ArchiveBase, jobs: Sequence[Job], *, max_file_size_mb: int = 512
) -> tuple[Tally, list[str]]:
    """Write the given archived jobs as Parquet files into ``target`` (retention ``format: parquet``),
    with each cluster's ``cluster.json``. A job that cannot be read is counted in the tally's errors."""
    _pa()
    tally = Tally()
    date = _dt.date.today().isoformat()
    writers: dict[str, _ClusterWriter] = {}
    for name in sorted({j.cluster for j in jobs}):
        try:
            cfg = await src.load_cluster_config(name)
            await target._write(f"{name}/{CLUSTER_FILE}", codec.encode_cluster_file(cfg))
        except ArchiveError as e:
            tally.errors.append(str(e))
    for job in jobs:
        try:
            raw = await src.read_job_raw(job)
            if raw.data is None:
                raise ArchiveFormatError(f"{job.cluster}/{job.job_id}", "job without data.json")
            meta = await src.load_job_meta(job)
            if job.cluster not in writers:
                writers[job.cluster] = await _open_writer(target, job.cluster, date, max_file_size_mb)
            await writers[job.cluster].add(job_to_row(meta, raw.data, raw.data_compressed))
            tally.done += 1
        except ArchiveError as e:
            tally.fail(str(e))
    files: list[str] = []
    for w in writers.values():
        await w.flush()
        files.extend(w.files)
    return tally, files


async def export_parquet(
    src: ArchiveBackend,
    target: ArchiveBase,
    *,
    max_file_size_mb: int = 512,
    cluster: str | None = None,
    progress: Callable[[Tally], None] | None = None,
) -> tuple[Tally, list[str]]:
    """Write the archive (or one cluster) as Parquet files into ``target``; returns the tally and files."""
    _pa()
    tally = Tally()
    date = _dt.date.today().isoformat()
    writers: dict[str, _ClusterWriter] = {}

    async def writer(name: str) -> _ClusterWriter:
        if name not in writers:
            writers[name] = await _open_writer(target, name, date, max_file_size_mb)
        return writers[name]

    for name in [cluster] if cluster else await src.get_clusters():
        try:
            cfg = await src.load_cluster_config(name)
        except ClusterNotFoundError as e:
            tally.errors.append(str(e))
            continue
        await target._write(f"{name}/{CLUSTER_FILE}", codec.encode_cluster_file(cfg))

    async for job in src.iter_jobs(cluster=cluster):
        try:
            if job.meta is None:
                raise ArchiveFormatError(job.path, job.error or "unreadable")
            raw = await src.read_job_raw(job.meta)
            if raw.data is None:
                raise ArchiveFormatError(job.path, "job directory without data.json or data.json.gz")
            await (await writer(job.meta.cluster)).add(job_to_row(job.meta, raw.data, raw.data_compressed))
            tally.done += 1
        except ArchiveError as e:
            tally.fail(str(e))
        if progress:
            progress(tally)
    files: list[str] = []
    for w in writers.values():
        await w.flush()
        files.extend(w.files)
    return tally, files


async def import_parquet(
    source: ArchiveBase,
    dst: ArchiveBackend,
    *,
    cluster: str | None = None,
    progress: Callable[[Tally], None] | None = None,
) -> Tally:
    """Import Parquet files from ``source`` into an archive; jobs already there are skipped."""
    _pa()
    import pyarrow.parquet as pq

    tally = Tally()
    dirs, _ = await source._list("")
    for name in sorted(d for d in dirs if not is_hidden(d) and (cluster is None or d == cluster)):
        cfg = await source._read(f"{name}/{CLUSTER_FILE}")
        if cfg is not None:
            try:
                await dst.store_cluster_config(
                    codec.decode_cluster_file(cfg, source._display(f"{name}/{CLUSTER_FILE}")), name=name
                )
            except ArchiveError as e:
                tally.errors.append(str(e))
        _, files = await source._list(name)
        for fname in sorted(f for f in files if f.endswith(".parquet")):
            key = f"{name}/{fname}"
            buf = await source._read(key)
            try:
                table = pq.read_table(io.BytesIO(buf or b""))
            except Exception as e:  # pyarrow raises several types for a damaged file
                tally.fail(f"{source._display(key)}: cannot read Parquet file: {e}")
                continue
            for i, row in enumerate(table.to_pylist()):
                try:
                    meta, raw = row_to_raw_job(row)
                    if await dst.exists(meta):
                        tally.skipped += 1
                    else:
                        await dst.write_job_raw(raw)
                        tally.done += 1
                except (ArchiveError, KeyError, TypeError, ValueError, msgspec.DecodeError) as e:
                    tally.fail(f"{source._display(key)}: row {i}: {e}")
                if progress:
                    progress(tally)
    return tally

"""Synthetic job archives (meta only) for init-db tests, benchmarks and demos.

`generate_archive` writes a version-3 file archive with cluster configs and N finished jobs whose
``meta.json`` carries the per-metric ``statistics`` init-db turns into footprints and energy. Jobs come
from `cc_core.db.generate.generate_jobs` (realistic spread of users, sizes, durations, tags with
scopes), so what a test or a benchmark imports looks like a real site's archive. Deterministic for a
seed.

The cluster configs are synthetic but follow upstream's rules (contract §3.4): each cluster of
`cc_core.db.generate.CLUSTERS` gets node-list subclusters covering exactly the host names the job
generator uses, footprint metrics named as the generator's footprints (``flops_any`` avg, ``mem_bw``
avg, ``mem_used`` max, ``cpu_load`` avg, ``acc_utilization`` avg on GPU clusters) and ``cpu_power`` as
the energy metric, so footprint *and* energy are computed for every job.

Files are written straight to disk (no temporary directories): the tree is new and nobody reads it
while it is generated, and 100,000 jobs then take seconds instead of minutes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import msgspec

from cc_core.archive import codec
from cc_core.archive.layout import CLUSTER_FILE, META_FILE, VERSION_FILE, job_dir
from cc_core.db.generate import CLUSTERS, ClusterShape, generate_jobs
from cc_core.schema.cluster import Cluster, MetricConfig, SubCluster, Topology
from cc_core.schema.job import Job, JobStatistics
from cc_core.schema.units import Unit

# A fixed "now" keeps generated archives identical across runs (and years).
DEFAULT_NOW = 1_700_000_000


def _metric(
    name: str, unit: Unit, scope: str, aggregation: str, peak: float, *, footprint: str = "", energy: str = ""
) -> MetricConfig:
    return MetricConfig(
        name=name,
        unit=unit,
        scope=scope,
        aggregation=aggregation,
        timestep=60,
        peak=peak,
        normal=peak / 2,
        caution=peak / 5,
        alert=peak / 10,
        footprint=footprint,
        energy=energy,
    )


def _ranges(prefix: str, lo: int, hi: int) -> str:
    """Upstream's node-list syntax for hosts ``prefix{lo:04d}`` … ``prefix{hi:04d}``."""
    return f"{prefix}[{lo:04d}-{hi:04d}]"


def cluster_config(shape: ClusterShape) -> Cluster:
    """The synthetic (raw, underived) ``cluster.json`` of one generated cluster."""
    metrics = [
        _metric("cpu_load", Unit(""), "node", "avg", shape.hwthreads, footprint="avg"),
        _metric("cpu_user", Unit(""), "hwthread", "avg", 100),
        _metric("flops_any", Unit("F/s", "G"), "hwthread", "sum", 5000, footprint="avg"),
        _metric("mem_bw", Unit("B/s", "G"), "socket", "sum", 350, footprint="avg"),
        _metric("mem_used", Unit("B", "G"), "node", "sum", 512, footprint="max"),
        _metric("cpu_power", Unit("W"), "socket", "sum", 700, energy="power"),
    ]
    if shape.gpus:
        metrics.append(_metric("acc_utilization", Unit(""), "accelerator", "avg", 100, footprint="avg"))
    n_sub = len(shape.subclusters)
    per = shape.nodes // n_sub
    hw = shape.hwthreads
    half = hw // 2
    topology = Topology(
        node=list(range(hw)),
        socket=[list(range(half)), list(range(half, hw))],
        memory_domain=[list(range(half)), list(range(half, hw))],
        core=[[i] for i in range(hw)],
    )
    subclusters = []
    for k, name in enumerate(shape.subclusters):
        lo = k * per
        hi = shape.nodes - 1 if k == n_sub - 1 else (k + 1) * per - 1
        subclusters.append(
            SubCluster(
                name=name,
                nodes=_ranges(shape.prefix, lo, hi),
                processor_type="Synthetic CPU",
                sockets_per_node=2,
                cores_per_socket=half,
                threads_per_core=1,
                topology=topology,
            )
        )
    return Cluster(name=shape.name, metric_config=metrics, sub_clusters=subclusters)


def _statistics(job: Job, gpus: bool) -> dict[str, JobStatistics]:
    """Per-metric job statistics consistent with the footprint and energy the job generator drew."""
    fp = job.footprint or {}
    out: dict[str, JobStatistics] = {}

    def put(name: str, unit: Unit, avg: float, lo: float, hi: float) -> None:
        out[name] = JobStatistics(unit=unit, avg=round(avg, 3), min=round(lo, 3), max=round(hi, 3))

    flops = fp.get("flops_any_avg", 0.0)
    put("flops_any", Unit("F/s", "G"), flops, 0.0, flops * 2.1)
    bw = fp.get("mem_bw_avg", 0.0)
    put("mem_bw", Unit("B/s", "G"), bw, bw * 0.1, bw * 1.7)
    used = fp.get("mem_used_max", 0.0)
    put("mem_used", Unit("B", "G"), used * 0.8, used * 0.1, used)
    load = fp.get("cpu_load_avg", 0.0)
    put("cpu_load", Unit(""), load, 0.0, load * 1.2)
    # Upstream's job-meta schema requires cpu_user among the statistics (percent of the hwthreads).
    user = min(100.0, 100.0 * load / max(1, job.num_hwthreads // max(1, job.num_nodes)))
    put("cpu_user", Unit(""), user, 0.0, min(100.0, user * 1.2))
    # Back from the generator's energy (kWh) to the average node power (W) it implies.
    watts = job.energy * 3_600_000 / (job.num_nodes * job.duration) if job.duration and job.num_nodes else 0.0
    put("cpu_power", Unit("W"), watts, watts * 0.4, watts * 1.3)
    if gpus:
        util = fp.get("acc_utilization_avg", 0.0)
        put("acc_utilization", Unit(""), util, 0.0, min(100.0, util * 1.5))
    return out


def archive_jobs(
    n: int, *, seed: int = 0, now: int = DEFAULT_NOW, first_job_id: int = 1_000_000
) -> list[Job]:
    """``n`` finished jobs as the archiver stores them, without footprint and energy (init-db
    computes those from ``statistics``)."""
    shapes = {c.name: c for c in CLUSTERS}
    out: list[Job] = []
    for job in generate_jobs(n, seed=seed, now=now, first_job_id=first_job_id):
        if job.job_state == "running":  # the archive holds finished jobs only
            job = msgspec.structs.replace(job, job_state="completed", duration=max(1, now - job.start_time))
        stats = _statistics(job, shapes[job.cluster].gpus > 0)
        out.append(
            msgspec.structs.replace(
                job,
                monitoring_status=3,
                statistics=stats,
                footprint=None,
                energy_footprint=None,
                energy=0.0,
            )
        )
    return out


def write_archive_meta(
    root: Path,
    jobs: Iterable[Job],
    clusters: Sequence[Cluster],
    *,
    data: Callable[[Job], tuple[Job, bytes]] | None = None,
    gzip_level: int = codec.GZIP_LEVEL,
) -> None:
    """Write ``version.txt``, each ``cluster.json`` and each job's ``meta.json`` under ``root``.

    With ``data``, each job is first passed to it; it returns the job to store (e.g. with statistics
    computed from its series) and the serialised ``data.json``, written gzipped above upstream's
    threshold (`codec.compress_data`, at ``gzip_level``), before ``meta.json``.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / VERSION_FILE).write_bytes(codec.version_bytes())
    for c in clusters:
        (root / c.name).mkdir(exist_ok=True)
        (root / c.name / CLUSTER_FILE).write_bytes(codec.encode_cluster_file(c))
    base = str(root)
    made: set[str] = set()
    for job in jobs:
        d = os.path.join(base, job_dir(job.cluster, job.job_id, job.start_time))
        parent = os.path.dirname(d)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        os.mkdir(d)
        if data is not None:
            job, raw = data(job)
            name, payload = codec.compress_data(raw, gzip_level)
            _write_file(os.path.join(d, name), payload)
        _write_file(os.path.join(d, META_FILE), codec.encode_meta(job))


def _write_file(path: str, payload: bytes) -> None:
    """Create ``path`` (in a job directory just made, so no one reads it yet) with plain os calls:
    a buffered file object costs more than the write itself for a 2 kB file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def generate_archive(root: Path | str, n: int, *, seed: int = 0, now: int = DEFAULT_NOW) -> list[Job]:
    """A meta-only file archive of ``n`` finished jobs at ``root`` (created; must not hold jobs yet).

    Returns the jobs as written, so callers can compare what init-db imported.
    """
    root = Path(root)
    jobs = archive_jobs(n, seed=seed, now=now)
    write_archive_meta(root, jobs, [cluster_config(c) for c in CLUSTERS])
    return jobs

"""``clustercockpit demo generate``: a complete demo site in ``<dir>/var`` (and config.json / .env).

Steps: the site files (`cc_core.cli.setup.init_site`: config, fresh keys, empty archive), the clusters'
``cluster.json``, N finished jobs with ``meta.json`` and ``data.json[.gz]`` (`cc_core.demo.series`),
the users, and the database filled from the archive through init-db (`cc_core.importer.init_db_sync`),
exactly as a site migrating from upstream would do it.

Idempotent: a finished site is marked by ``var/demo-site.json``; running again does nothing unless
``force`` is given, which removes ``var/`` (config.json and .env are kept). A ``var/`` that is not a demo
site is never touched without ``force``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from cc_core.archive.generate import write_archive_meta
from cc_core.db.generate import generate_jobs
from cc_core.demo.series import ARCHETYPES, Detail, job_data, job_script, pick_archetype
from cc_core.demo.site import DEMO_CLUSTERS, DEMO_LOGIN, ROLE_USERS, cluster_config
from cc_core.schema.job import Job, Resource

MARKER = "demo-site.json"
DEFAULT_JOBS = 3000
#: gzip level of data.json.gz: level 1 is 3× faster than the default 6 and ~20 % larger here.
GZIP_LEVEL = 1
#: The most active user of the generated spread is renamed to this share of jobs' owner ``demo``.
DEMO_USER_SHARE = 0.03


class DemoSiteError(Exception):
    """The directory cannot hold a demo site (the message says why and what to do)."""


@dataclass
class GenerateReport:
    jobs: int = 0
    users: int = 0
    archetypes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    imported: int = 0
    failed: int = 0
    archive_bytes: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def is_generated(directory: Path) -> bool:
    return (directory / "var" / MARKER).exists()


class _JobShaper:
    """Turns a generated job into a demo job: archetype, script, resources, series and statistics."""

    def __init__(self, seed: list[int], now: int, detail: Detail, report: GenerateReport) -> None:
        self.rng = np.random.default_rng(seed)
        self.now = now
        self.detail = detail
        self.report = report
        self.clusters = {c.name: c for c in DEMO_CLUSTERS}

    def __call__(self, job: Job) -> tuple[Job, bytes]:
        rng = self.rng
        cluster = self.clusters[job.cluster]
        sub = cluster.subcluster(job.sub_cluster)
        gpu = sub.gpus > 0
        kind = pick_archetype(rng, job, gpu)
        self.report.archetypes[kind] = self.report.archetypes.get(kind, 0) + 1
        room = max(60, self.now - job.start_time - 60)  # finished before "now"
        state = "completed" if job.job_state == "running" else job.job_state
        duration = job.duration or room
        walltime = job.walltime
        if kind == "failing":
            state, duration = "failed", int(rng.integers(30, 500))
        elif kind == "longmulti":
            walltime = 24 * 3600
            duration = int(rng.integers(8 * 3600, 24 * 3600))
        elif state in ("failed", "node_fail", "out_of_memory") and duration > 600 and rng.random() < 0.5:
            state = "completed"
        elif duration < 900 and kind != "failing":
            duration = int(rng.integers(900, 4 * 3600))  # patterns need more than a few samples
        duration = max(30, min(duration, room, walltime or duration))
        resources = job.resources
        num_acc = job.num_acc
        if gpu:
            accs = sub.accelerator_ids()
            per = accs[: max(1, min(len(accs), job.num_acc // max(1, job.num_nodes)))]
            resources = [
                Resource(hostname=r.hostname, hwthreads=r.hwthreads, accelerators=list(per))
                for r in resources
            ]
            num_acc = len(per) * job.num_nodes
        user = "demo" if rng.random() < DEMO_USER_SHARE else job.user
        app = ARCHETYPES[kind].apps[int(rng.integers(0, len(ARCHETYPES[kind].apps)))]
        # app and job-class tags are the taggers' business; keep the generator's review/note tags.
        tags = [t for t in job.tags or () if t.type not in ("app", "jobClass")] or None
        if tags and user == "demo":
            tags = [t for t in tags if t.scope in ("global", "admin")] or None
        job = msgspec.structs.replace(
            job,
            user=user,
            job_state=state,
            duration=duration,
            walltime=walltime,
            resources=resources,
            num_acc=num_acc,
            tags=tags,
            monitoring_status=3,
            footprint=None,
            energy_footprint=None,
            energy=0.0,
        )
        job = msgspec.structs.replace(
            job,
            meta_data={**(job.meta_data or {}), "jobScript": job_script(job, app, num_acc // job.num_nodes)},
        )
        stats, raw = job_data(job, cluster, sub, kind, rng, self.detail)
        self.report.archive_bytes += len(raw)
        return msgspec.structs.replace(job, statistics=stats), raw


#: Jobs per work unit. Each unit has its own random stream, so the site does not depend on ``workers``.
CHUNK = 2000
_chunk_state: tuple[Path, list[Job], int, int, Detail] | None = None


def _write_chunk(k: int) -> GenerateReport:
    """Series and files of the ``k``-th chunk of jobs (in a worker process, or inline)."""
    assert _chunk_state is not None
    archive, jobs, seed, now, detail = _chunk_state
    part = GenerateReport(jobs=0)
    shaper = _JobShaper([seed, k], now, detail, part)
    chunk = jobs[k * CHUNK : (k + 1) * CHUNK]
    write_archive_meta(archive, chunk, [], data=shaper, gzip_level=GZIP_LEVEL)
    part.jobs = len(chunk)
    return part


def _write_jobs(
    archive: Path,
    jobs: list[Job],
    seed: int,
    now: int,
    detail: Detail,
    report: GenerateReport,
    workers: int | None,
) -> None:
    """Write every job, chunk by chunk; chunks go to a pool of forked workers when there are several
    chunks and cores (series generation is CPU-bound Python + numpy; the children inherit ``jobs``)."""
    global _chunk_state
    n_chunks = -(-len(jobs) // CHUNK)
    workers = min(n_chunks, workers or os.cpu_count() or 1)
    _chunk_state = (archive, jobs, seed, now, detail)
    try:
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            parts = [_write_chunk(k) for k in range(n_chunks)]
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_write_chunk, range(n_chunks), chunksize=1)
    finally:
        _chunk_state = None
    for part in parts:
        report.archive_bytes += part.archive_bytes
        for kind, count in part.archetypes.items():
            report.archetypes[kind] = report.archetypes.get(kind, 0) + count


def _prepare_directory(directory: Path, force: bool) -> None:
    var = directory / "var"
    if not var.exists():
        return
    if not force:
        raise DemoSiteError(
            f"{var} exists but holds no demo site ({MARKER} missing), so it is left untouched. "
            f"Either run `make demo` (or `clustercockpit demo generate --dir DIR`) in another directory, "
            f"or replace it, deleting everything in it, with "
            f"`clustercockpit demo generate --dir {directory} --force`"
        )
    shutil.rmtree(var)


def _enable_taggers(path: Path) -> None:
    """Set ``main.enable-job-taggers`` in the site's config.json (unless the site already chose), so the
    app tagger tags started jobs and the job-class tagger archived ones (rules: the built-in set of
    `cc_core.taggers.rules`, plus ``var/tagger/`` if a site adds its own). Written atomically."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DemoSiteError(f"{path}: cannot read the site's config ({e})") from None
    main = config.setdefault("main", {})
    if not isinstance(main, dict) or "enable-job-taggers" in main:
        return
    main["enable-job-taggers"] = True
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, path)


def generate_site(
    directory: Path,
    *,
    jobs: int = DEFAULT_JOBS,
    seed: int = 0,
    force: bool = False,
    now: int | None = None,
    detail: Detail | None = None,
    workers: int | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> GenerateReport | None:
    """Generate the demo site in ``directory``; None if one is there already (and not ``force``)."""
    from cc_core.archive import open_backend
    from cc_core.cli.setup import init_site
    from cc_core.db import Database
    from cc_core.importer import init_db_sync
    from cc_core.plugins import make_plugin_manager

    if jobs < 1:
        raise DemoSiteError("--jobs must be at least 1")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if is_generated(directory) and not force:
        return None
    _prepare_directory(directory, force)
    report = GenerateReport(jobs=jobs)
    now = int(time.time()) if now is None else now
    detail = detail or Detail.for_jobs(jobs)

    t0 = time.perf_counter()
    for p in init_site(directory):
        say(f"created {p}")
    _enable_taggers(directory / "config.json")
    archive = directory / "var" / "job-archive"
    shapes = tuple(c.shape() for c in DEMO_CLUSTERS)
    span_days = int(min(365, max(14, jobs // 200)))
    generated = generate_jobs(
        jobs,
        seed=seed,
        now=now,
        span_days=span_days,
        users=max(20, min(2000, jobs // 15)),
        projects=max(5, min(300, jobs // 100)),
        tag_fraction=0.08,
        clusters=shapes,
    )
    report.seconds["jobs"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    users = sorted({j.user for j in generated})
    write_archive_meta(archive, [], [cluster_config(c) for c in DEMO_CLUSTERS])
    _write_jobs(archive, generated, seed, now, detail, report, workers)
    del generated
    report.seconds["archive"] = time.perf_counter() - t0
    say(f"wrote {jobs} jobs to {archive} ({report.archive_bytes / 1e6:.0f} MB of series before gzip)")

    t0 = time.perf_counter()
    registry = make_plugin_manager()
    backend = open_backend({"kind": "file", "path": str(archive)}, registry=registry)
    with Database(directory / "var" / "job.db") as db:
        password = DEMO_LOGIN[1]
        # One bcrypt hash per role user (cost 10: the slow part); job owners have no password.
        accounts = [
            {
                "username": name,
                "password": password,
                "roles": roles,
                "projects": projects,
                "name": name.title(),
            }
            for name, (roles, projects) in ROLE_USERS.items()
        ]
        accounts += [
            {"username": u, "name": f"User {u}", "email": f"{u}@example.org"}
            for u in users
            if u not in ROLE_USERS
        ]
        report.users = db.users.add_many_sync(accounts)
        report.seconds["users"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = init_db_sync(db, backend)
    report.seconds["init-db"] = time.perf_counter() - t0
    report.imported, report.failed = result.imported, result.failed
    if result.failed:
        first = "; ".join(f"{f.path}: {f.problem}" for f in result.failures[:3])
        raise DemoSiteError(f"init-db skipped {result.failed} generated jobs (a generator bug): {first}")
    marker = {"jobs": jobs, "seed": seed, "now": now, "detail": asdict(detail), "report": asdict(report)}
    (directory / "var" / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return report

"""Retention runs (contract §10) over N archived jobs, against plain file operations on the same tree.

Each figure is one run of the ``archive-retention`` task on a fresh site (SQLite + file archive)
holding ``CC_BENCH_RETENTION_JOBS`` (default 2000) jobs older than the retention age, each with a
gzipped ``data.json`` of 2 nodes × 60 points:

* ``delete``: archive clean-up + database delete + VACUUM, against ``shutil.rmtree`` of the job
  directories (the file-system part alone);
* ``move`` as ``json``: copy every job to a target archive, then delete, against ``shutil.copytree`` +
  ``rmtree`` of the same directories;
* ``move`` as ``parquet``: reported (pyarrow encoding dominates), no limit.

Targets: ≤ 3× the file-system limit for delete and json move (the rest is per-job existence checks,
the database and atomic writes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._report import Result, report

N = int(os.environ.get("CC_BENCH_RETENTION_JOBS", "2000"))
DAY = 86400


def _site(root: Path, retention: dict[str, Any]) -> Any:
    from cc_core.testing.metric_contract import make_cluster
    from cc_core.testing.site import make_site

    return make_site(
        root, [make_cluster()], config={"metric-store": None, "archive": {"retention": retention}}
    )


async def _fill(services: Any, n: int) -> None:
    import gzip

    from cc_core.archive.codec import encode_meta
    from cc_core.interfaces import RawJob
    from cc_core.schema.job import Job, Resource
    from cc_core.schema.metrics import encode_job_data
    from cc_core.testing.archive_contract import make_data

    now = int(time.time())
    data = gzip.compress(encode_job_data(make_data(points=60, hosts=("na", "nb"))))
    jobs = [
        Job(
            job_id=i,
            user="alice",
            project="p",
            cluster="ctest",
            sub_cluster="main",
            start_time=now - 30 * DAY - i,
            duration=3600,
            num_nodes=2,
            num_hwthreads=16,
            job_state="completed",
            monitoring_status=3,
            resources=[Resource(h, hwthreads=list(range(8))) for h in ("na", "nb")],
        )
        for i in range(1, n + 1)
    ]
    await services.db.jobs.bulk_insert(jobs)
    sem = asyncio.Semaphore(32)

    async def one(j: Job) -> None:
        async with sem:
            await services.archive.write_job_raw(
                RawJob(j.cluster, j.job_id, j.start_time, encode_meta(j), data, data_compressed=True)
            )

    await asyncio.gather(*(one(j) for j in jobs))


def _retention_run(retention: dict[str, Any]) -> tuple[float, str, Path]:
    from tests.tasks.conftest import open_services

    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-retention-"))
    site = _site(tmp / "site", retention)

    async def main() -> tuple[float, str]:
        async with open_services(site) as services:
            await _fill(services, N)
            manager = services.context.services["tasks"]
            t0 = time.perf_counter()
            result = await manager.run_now("archive-retention")
            took = time.perf_counter() - t0
            assert result.ok, result.message
            return took, result.message or ""

    took, message = asyncio.run(main())
    return took, message, tmp


def _fs_limit(copy: bool) -> float:
    """rmtree (and copytree first) of an archive tree like the one the task works on."""
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-fs-"))
    site = _site(tmp / "site", {"policy": "none"})
    from tests.tasks.conftest import open_services

    async def fill() -> None:
        async with open_services(site) as services:
            await _fill(services, N)

    asyncio.run(fill())
    src = site.root / "var" / "job-archive" / "ctest"
    t0 = time.perf_counter()
    if copy:
        shutil.copytree(src, tmp / "copy")
    for d in [p for p in src.iterdir() if p.is_dir()]:
        shutil.rmtree(d)
    took = time.perf_counter() - t0
    shutil.rmtree(tmp)
    return took


def main() -> bool:
    results: list[Result] = []
    delete_s, msg, tmp = _retention_run({"policy": "delete", "age": 7})
    shutil.rmtree(tmp)
    print(f"delete: {msg}")
    limit = _fs_limit(copy=False)
    results.append(
        Result(
            f"retention delete, {N} jobs",
            delete_s,
            limit,
            target="≤ 3×",
            limit_name="rmtree",
            ok=delete_s <= 3 * limit,
        )
    )
    with tempfile.TemporaryDirectory() as target:
        move_s, msg, tmp = _retention_run({"policy": "move", "age": 7, "target-path": target})
        shutil.rmtree(tmp)
    print(f"move json: {msg}")
    limit = _fs_limit(copy=True)
    results.append(
        Result(
            f"retention move json, {N} jobs",
            move_s,
            limit,
            target="≤ 3×",
            limit_name="copytree + rmtree",
            ok=move_s <= 3 * limit,
        )
    )
    try:
        import pyarrow  # noqa: F401

        with tempfile.TemporaryDirectory() as target:
            pq_s, msg, tmp = _retention_run(
                {"policy": "move", "age": 7, "format": "parquet", "target-path": target}
            )
            shutil.rmtree(tmp)
        print(f"move parquet: {msg}")
        results.append(Result(f"retention move parquet, {N} jobs", pq_s, None))
    except ImportError:
        print("pyarrow not installed: parquet move skipped")
    report("tasks", results)
    return all(r.ok is not False for r in results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

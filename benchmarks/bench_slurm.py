"""The Slurm scheduler's own cost per sync on a busy cluster, against what it cannot avoid.

A sync is three Slurm commands (their run time is Slurm's, not measured here) and our processing: decode
and read the JSON, reconcile with the database's running jobs, start and stop jobs through the REST
lifecycle. The commands are replaced by the prepared JSON of N jobs (22.05 shape, as Debian's squeue
writes it), everything else is real: `SlurmScheduler.sync`, `LifecycleSink`, a SQLite site database.

* first sync: N new running jobs (job script and ``scontrol show job`` off — they are one command per
  job each); limit: the same N prepared `Job` objects through ``LifecycleSink.start_job`` alone, 32 at a
  time as the scheduler does.
  Target ≤ 1.5× (the scheduler adds reading and mapping, not database work).
* steady sync: N running jobs, nothing changed; limit: ``msgspec`` decode of the squeue JSON plus the
  database's running-job query. Target ≤ 3×.
* last sync: all N jobs ended; reported (stops go through the same lifecycle as REST stop_job).

Size: ``CC_BENCH_SLURM_JOBS`` (default 5,000).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from benchmarks._report import Result, report

T0 = 1_700_000_000


def _job(i: int, state: str) -> dict[str, Any]:
    host = f"n{i % 500:04d}"
    return {
        "account": f"p{i % 37}",
        "array_job_id": 0,
        "cpus": 4,
        "end_time": T0 + 3600 + i,
        "gres_detail": [],
        "job_id": 1000 + i,
        "job_resources": {
            "nodes": host,
            "allocated_nodes": [
                {
                    "sockets": {"0": {"cores": {"0": "allocated"}}, "1": {"cores": {"1": "allocated"}}},
                    "nodename": host,
                }
            ],
        },
        "job_state": state,
        "name": f"job{i}",
        "node_count": 1,
        "nodes": host,
        "partition": "main",
        "shared": None,
        "start_time": T0 + i,
        "submit_time": T0 + i - 5,
        "time_limit": 120,
        "tres_alloc_str": "cpu=4,node=1,billing=4",
        "user_name": f"user{i % 101}",
    }


class _Prepared:
    """Stands in for `SlurmCommands`: answers with prepared JSON bytes (decoded on every call)."""

    def __init__(self) -> None:
        self.outputs: dict[str, bytes] = {}

    async def json(self, *args: str) -> dict[str, Any]:
        return msgspec.json.decode(self.outputs[args[0]])

    async def text(self, *args: str) -> str | None:
        return None

    async def run(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        return 0, b"", b"Slurm accounting storage is disabled"


async def _bench(root: Path, n: int) -> list[Result]:
    from cc_scheduler_slurm.parse import parse_squeue
    from cc_scheduler_slurm.scheduler import SlurmConfig, SlurmScheduler

    from cc_core.context import PluginContext
    from cc_core.plugins import make_plugin_manager
    from cc_core.scheduler import LifecycleSink
    from cc_core.services import CoreServices
    from cc_core.testing.metric_contract import make_cluster
    from cc_core.testing.site import make_site

    results = []

    async def open_site(name: str) -> tuple[CoreServices, SlurmScheduler, _Prepared]:
        site = make_site(root / name, [make_cluster("bench")], config={"metric-store": None})
        config = site.config()
        registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs"})
        config.validate_plugins(registry)
        context = PluginContext(config, registry)
        services = CoreServices.open(config, registry, context)
        services.archiver = None  # stopped jobs are not archived here: the archiver has its own benchmark
        await services.start()
        sched = SlurmScheduler(
            SlurmConfig(cluster="bench", job_script=False, slurm_info=False, node_state_interval=0), context
        )
        prepared = _Prepared()
        sched.slurm = prepared  # type: ignore[assignment]
        prepared.outputs["sinfo"] = msgspec.json.encode({"nodes": []})
        return services, sched, prepared

    running_doc = msgspec.json.encode({"jobs": [_job(i, "RUNNING") for i in range(n)]})
    ended_doc = msgspec.json.encode({"jobs": [_job(i, "COMPLETED") for i in range(n)]})

    # limit for the first sync: the prepared jobs through the sink alone
    services, sched, prepared = await open_site("limit")
    jobs = [sched.to_job(j) for j in parse_squeue(msgspec.json.decode(running_doc))]
    sink = LifecycleSink(services)
    sem = asyncio.Semaphore(32)  # the scheduler's own concurrency, so both get SQLite's group commit

    async def start(job: Any) -> None:
        async with sem:
            await sink.start_job(job)

    t0 = time.perf_counter()
    await asyncio.gather(*(start(j) for j in jobs))
    limit_start = time.perf_counter() - t0
    await services.close()

    services, sched, prepared = await open_site("ours")
    sink = LifecycleSink(services)
    prepared.outputs["squeue"] = running_doc
    t0 = time.perf_counter()
    res = await sched.sync(sink)
    first = time.perf_counter() - t0
    assert len(res.started) == n, len(res.started)
    results.append(
        Result(
            f"first sync: {n:,} new running jobs",
            n / first,
            n / limit_start,
            unit="/s",
            target="≤ 1.5×",
            limit_name="LifecycleSink.start_job, prepared jobs",
            ok=limit_start * 1.5 >= first,
        )
    )

    async def steady() -> float:
        t = time.perf_counter()
        r = await sched.sync(sink)
        assert not r, r
        return time.perf_counter() - t

    async def floor() -> float:
        t = time.perf_counter()
        msgspec.json.decode(running_doc)
        await sink.running_jobs("bench")
        return time.perf_counter() - t

    best_steady = min([await steady() for _ in range(5)])
    best_floor = min([await floor() for _ in range(5)])
    results.append(
        Result(
            f"steady sync: {n:,} running, no change",
            best_steady,
            best_floor,
            target="≤ 3×",
            limit_name="JSON decode + running-jobs query",
            ok=best_steady <= 3 * best_floor,
        )
    )

    prepared.outputs["squeue"] = ended_doc
    t0 = time.perf_counter()
    res = await sched.sync(sink)
    last = time.perf_counter() - t0
    assert len(res.stopped) == n, len(res.stopped)
    results.append(Result(f"last sync: {n:,} jobs ended", n / last, None, unit="/s", target="(report)"))
    await services.close()
    return results


def main() -> bool:
    n = int(os.environ.get("CC_BENCH_SLURM_JOBS", "5000"))
    root = Path(tempfile.mkdtemp(prefix="cc-bench-slurm-"))
    try:
        results = asyncio.run(_bench(root, n))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report("slurm scheduler", results)
    return all(r.ok is not False for r in results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

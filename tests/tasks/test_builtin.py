"""Each built-in task (contract §10) against a real SQLite database and file archive: what it changes,
what it must leave alone, and what it reports."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from cc_core.archive.codec import encode_meta
from cc_core.db import SYSTEM_USER
from cc_core.db import tables as T
from cc_core.db.nodes import NodeStateUpdate
from cc_core.interfaces import RawJob
from cc_core.schema.job import Job, Resource
from cc_core.schema.metrics import encode_job_data
from cc_core.testing.archive_contract import make_data
from cc_core.testing.metric_contract import CLUSTER
from cc_core.testing.site import Site

from .conftest import open_services, task_site

DAY = 86400
HOSTS = ("na", "nb")


def make_job(job_id: int, start: int, *, state: str = "completed", walltime: int = 0, status: int = 3) -> Job:
    return Job(
        job_id=job_id,
        user="alice",
        project="p",
        cluster=CLUSTER,
        sub_cluster="main",
        start_time=start,
        duration=3600 if state != "running" else 0,
        walltime=walltime,
        num_nodes=2,
        num_hwthreads=16,
        job_state=state,
        monitoring_status=status if state != "running" else 1,
        resources=[Resource(h, hwthreads=list(range(8))) for h in HOSTS],
    )


async def add_jobs(
    services: Any, jobs: list[Job], *, archive: bool = True, gzip_data: bool = True
) -> list[Job]:
    """Insert finished jobs into the database and (optionally) the archive; returns them with ids."""
    ids = await services.db.jobs.bulk_insert(jobs)
    out = [msgspec.structs.replace(j, id=i) for j, i in zip(jobs, ids, strict=True)]
    if archive:
        for j in out:
            if j.job_state == "running":
                continue
            raw = encode_job_data(make_data(points=60, hosts=HOSTS, seed=j.job_id))
            data = gzip.compress(raw) if gzip_data else raw
            await services.archive.write_job_raw(
                RawJob(j.cluster, j.job_id, j.start_time, encode_meta(j), data, data_compressed=gzip_data)
            )
    return out


def run_task(site: Site, setup: Callable[[Any], Awaitable[Any]], name: str) -> tuple[Any, Any, Any]:
    """Open the site, ``setup(services)``, run task ``name`` once; returns (setup's value, result, a
    snapshot taken by ``inspect`` afterwards — here the services are closed, so callers inspect files)."""

    async def main() -> tuple[Any, Any]:
        async with open_services(site) as services:
            value = await setup(services)
            manager = services.context.services["tasks"]
            result = await manager.run_now(name)
            after = await snapshot(services)
            return value, result, after

    return asyncio.run(main())  # type: ignore[return-value]


async def snapshot(services: Any) -> dict[str, Any]:
    """Jobs in the database (raw rows: stored duration) and in the archive after a run."""

    def rows(conn: Any) -> list[Any]:
        c = T.job.c
        q = select(c.id, c.job_id, c.job_state, c.duration, c.monitoring_status, c.footprint)
        return conn.execute(q.order_by(c.job_id)).all()

    db_rows = {r.job_id: r for r in await services.db.read(rows)}
    archived = {j.meta.job_id async for j in services.archive.iter_jobs() if j.meta is not None}
    return {"db": db_rows, "archive": archived}


def archive_root(site: Site) -> Path:
    return site.root / "var" / "job-archive"


def job_files(site: Site, job: Job) -> set[str]:
    d = (
        archive_root(site)
        / job.cluster
        / str(job.job_id // 1000)
        / f"{job.job_id % 1000:03d}"
        / str(job.start_time)
    )
    return {p.name for p in d.iterdir()} if d.exists() else set()


# --------------------------------------------------------------------------------- running jobs


def test_update_duration_stores_the_running_time(site: Site) -> None:
    now = int(time.time())

    async def setup(services: Any) -> None:
        await add_jobs(
            services,
            [make_job(1, now - 1000, state="running"), make_job(2, now - 5000)],
            archive=False,
        )

    _, result, after = run_task(site, setup, "update-duration")
    assert result.ok and result.message == "duration of 1 running job(s) updated"
    assert 1000 <= after["db"][1].duration <= 1010
    assert after["db"][2].duration == 3600  # finished jobs keep theirs


def test_footprint_task_leaves_clusters_without_a_metric_backend_alone(site: Site) -> None:
    now = int(time.time())

    async def setup(services: Any) -> None:
        await add_jobs(services, [make_job(1, now - 3600, state="running")], archive=False)

    _, result, after = run_task(site, setup, "update-footprint")
    assert result.ok, result.message
    assert result.message == (
        "footprints of 0 of 0 running job(s) updated; 1 job(s) on clusters without a metric backend"
    )
    assert after["db"][1].footprint is None


def test_stop_jobs_exceeding_walltime(tmp_path: Path) -> None:
    site = task_site(tmp_path / "site", main={"stop-jobs-exceeding-walltime": 600})
    now = int(time.time())

    async def setup(services: Any) -> None:
        await add_jobs(
            services,
            [
                make_job(1, now - 3600 - 700, state="running", walltime=3600),  # 700 s past: failed
                make_job(2, now - 3600 - 500, state="running", walltime=3600),  # within the grace
                make_job(3, now - 30 * DAY, state="running", walltime=0),  # no walltime: never
            ],
            archive=False,
        )

    _, result, after = run_task(site, setup, "stop-jobs-exceeding-walltime")
    assert result.ok and result.message.startswith("1 job(s) running 600 s past")
    assert (after["db"][1].job_state, after["db"][1].monitoring_status) == ("failed", 2)
    assert after["db"][1].duration >= 4300
    assert after["db"][2].job_state == "running" and after["db"][3].job_state == "running"


def test_walltime_task_is_off_by_default(site: Site) -> None:
    async def main() -> list[str]:
        async with open_services(site) as services:
            return list(services.context.services["tasks"].tasks)

    names = asyncio.run(main())
    assert "stop-jobs-exceeding-walltime" not in names and "archive-retention" not in names
    assert "nodestate-retention" not in names
    assert {"update-duration", "archive-compression"} <= set(names)


# ---------------------------------------------------------------------------------- compression


def test_compression_gzips_old_jobs_and_remembers_where_it_stopped(tmp_path: Path) -> None:
    site = task_site(tmp_path / "site", archive={"compression": 3})
    now = int(time.time())
    old = [make_job(10 + i, now - (10 + i) * DAY) for i in range(3)]
    new = make_job(20, now - DAY)

    async def setup(services: Any) -> list[Job]:
        return await add_jobs(services, [*old, new], gzip_data=False)

    _, result, _ = run_task(site, setup, "archive-compression")
    assert result.ok and result.message == "3 of 3 job(s) compressed (whole archive)"
    for job in old:
        assert job_files(site, job) == {"meta.json", "data.json.gz"}
    assert job_files(site, new) == {"meta.json", "data.json"}
    marker = int((archive_root(site) / "compress.txt").read_text())
    assert abs(marker - (now - 3 * DAY)) < 60

    async def reread(services: Any) -> Any:
        return await services.archive.load_job_data(old[0])

    # Within the same second as the first run the cutoff equals compress.txt, which upstream's rule
    # reads as "no earlier run" (a whole-archive run): the second run must come a second later.
    time.sleep(1.05)

    data, again, _ = run_task(site, reread, "archive-compression")
    assert set(data) == {"flops_any", "mem_used"}  # gzipped data reads back
    assert again.ok and again.message == "0 of 0 job(s) compressed (since the last run)"


# ------------------------------------------------------------------------------------ retention


def _retention_site(tmp_path: Path, **retention: Any) -> Site:
    return task_site(tmp_path / "site", archive={"retention": {"age": 7, **retention}})


async def _retention_jobs(services: Any) -> list[Job]:
    now = int(time.time())
    jobs = await add_jobs(
        services,
        [make_job(100 + i, now - (20 + i) * DAY) for i in range(4)]  # old
        + [make_job(200, now - 2 * DAY)],  # young
    )
    # job 101 carries a user tag, job 102 only an automatic one (jobClass)
    user_tag = await services.db.tags.create(SYSTEM_USER, "review", "later")
    auto_tag = await services.db.tags.create(SYSTEM_USER, "jobClass", "lowload")
    await services.db.tags.add_to_job(SYSTEM_USER, jobs[1].id, [user_tag.id])
    await services.db.tags.add_to_job(SYSTEM_USER, jobs[2].id, [auto_tag.id])
    # job 103 was never archived (monitoring failed): only in the database
    await services.archive.clean_up([jobs[3]])
    return jobs


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"archive": {"retention": {"policy": "move"}}}, "$.archive.retention.target-path"),
        (
            {"archive": {"retention": {"policy": "copy", "target-kind": "s3"}}},
            "$.archive.retention.target-bucket",
        ),
        ({"main": {"nodestate-retention": {"policy": "move"}}}, "$.main.nodestate-retention.target-path"),
    ],
)
def test_a_copy_or_move_without_target_is_refused_at_start_up(
    tmp_path: Path, config: dict[str, Any], where: str
) -> None:
    from cc_core.config import ConfigError

    site = task_site(tmp_path / "site", **config)

    async def main() -> None:
        async with open_services(site):
            pass

    with pytest.raises(ConfigError) as e:
        asyncio.run(main())
    assert e.value.path == where and "required" in str(e.value)


def test_retention_delete_removes_old_jobs_but_keeps_user_tagged_ones(tmp_path: Path) -> None:
    site = _retention_site(tmp_path, policy="delete", **{"omit-tagged": "user"})
    _, result, after = run_task(site, _retention_jobs, "archive-retention")
    assert result.ok, result.message
    assert result.message.startswith("3 job(s) before")
    assert "2 removed from the archive" in result.message and "3 deleted from the database" in result.message
    assert set(after["db"]) == {101, 200}
    assert after["archive"] == {101, 200}


def test_retention_copy_as_json_to_a_target_archive_with_a_marker(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    site = _retention_site(tmp_path, policy="copy", **{"target-path": str(target)})
    _, result, after = run_task(site, _retention_jobs, "archive-retention")
    assert result.ok, result.message
    assert "3 copied as json" in result.message  # 100-102; 103 is not archived
    assert set(after["db"]) == {100, 101, 102, 103, 200} and after["archive"] == {100, 101, 102, 200}
    assert (target / "version.txt").read_text().strip() == "3"
    assert (target / CLUSTER / "cluster.json").exists()
    copied = sorted(p.name for p in (target / CLUSTER).glob("*/*/*"))
    assert len(copied) == 3
    marker = int((target / ".copy-marker").read_text())
    assert abs(marker - (int(time.time()) - 7 * DAY)) < 60

    async def nothing(services: Any) -> None:
        return None

    _, again, _ = run_task(site, nothing, "archive-retention")
    assert again.ok and again.message.startswith("nothing to copy")


def test_retention_move_as_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet support needs pyarrow")

    target = tmp_path / "parquet"
    site = _retention_site(tmp_path, policy="move", format="parquet", **{"target-path": str(target)})
    _, result, after = run_task(site, _retention_jobs, "archive-retention")
    assert result.ok, result.message
    assert "4 deleted from the database" in result.message
    assert set(after["db"]) == {200} and after["archive"] == {200}
    files = sorted((target / CLUSTER).glob("cc-archive-*.parquet"))
    assert len(files) == 1 and (target / CLUSTER / "cluster.json").exists()
    table = pq.read_table(files[0])
    assert sorted(table.column("job_id").to_pylist()) == [100, 101, 102]
    assert all(len(b) > 100 for b in table.column("metric_data_gz").to_pylist())


def test_retention_move_deletes_nothing_when_a_copy_fails(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.parquet", reason="Parquet support needs pyarrow")
    target = tmp_path / "parquet"
    site = _retention_site(tmp_path, policy="move", format="parquet", **{"target-path": str(target)})

    async def setup(services: Any) -> list[Job]:
        jobs = await _retention_jobs(services)
        # job 100 lost its data file: it cannot be written as a Parquet row
        path = archive_root(site) / CLUSTER / "0" / "100" / str(jobs[0].start_time) / "data.json.gz"
        path.unlink()
        return jobs

    _, result, after = run_task(site, setup, "archive-retention")
    assert not result.ok
    assert "1 failed" in result.message and "nothing deleted" in result.message
    assert set(after["db"]) == {100, 101, 102, 103, 200}
    assert after["archive"] == {100, 101, 102, 200}


# ----------------------------------------------------------------------------- node-state retention


async def _node_states(services: Any) -> None:
    """Three reports per node: two old (40 h, 30 h ago) and one recent; plus a node whose only report
    is old (it must stay: it is that node's current state)."""
    now = int(time.time())
    nodes = services.db.nodes
    for age in (40 * 3600, 30 * 3600, 60):
        updates = [
            NodeStateUpdate(hostname=h, state="idle", health_state="full", subcluster="main") for h in HOSTS
        ]
        await nodes.update_states(CLUSTER, updates, time_stamp=now - age)
    await nodes.update_states(
        CLUSTER,
        [NodeStateUpdate(hostname="lonely", state="down", health_state="full", subcluster="main")],
        time_stamp=now - 50 * 3600,
    )


async def _state_rows(services: Any) -> list[tuple[str, int]]:
    def run(conn: Any) -> list[tuple[str, int]]:
        q = select(T.node.c.hostname, T.node_state.c.time_stamp).join(
            T.node, T.node.c.id == T.node_state.c.node_id
        )
        return [tuple(r) for r in conn.execute(q).all()]

    return await services.db.read(run)


def test_nodestate_retention_delete_keeps_recent_and_latest_rows(tmp_path: Path) -> None:
    site = task_site(tmp_path / "site", main={"nodestate-retention": {"policy": "delete", "age": 24}})

    async def setup(services: Any) -> None:
        await _node_states(services)

    async def rows(services: Any) -> Any:
        return await _state_rows(services)

    _, result, _ = run_task(site, setup, "nodestate-retention")
    assert result.ok and result.message.startswith("4 node state(s) older than")
    left, _, _ = run_task(site, rows, "nodestate-retention")
    assert sorted(h for h, _ in left) == ["lonely", "na", "nb"]


def test_nodestate_retention_move_writes_parquet_then_deletes(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet support needs pyarrow")

    target = tmp_path / "states"
    site = task_site(
        tmp_path / "site",
        main={"nodestate-retention": {"policy": "move", "age": 24, "target-path": str(target)}},
    )
    _, result, _ = run_task(site, _node_states, "nodestate-retention")
    assert result.ok and result.message == "4 node state(s) written to 1 Parquet file(s), 4 deleted"
    (file,) = target.glob("cc-nodestate-*-001.parquet")
    table = pq.read_table(file)
    assert table.column_names == [
        "time_stamp", "node_state", "health_state", "health_metrics", "cpus_allocated",
        "memory_allocated", "gpus_allocated", "jobs_running", "hostname", "cluster", "subcluster",
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [r["hostname"] for r in rows] == ["na", "na", "nb", "nb"]
    assert rows[0]["time_stamp"] < rows[1]["time_stamp"] and rows[0]["cluster"] == CLUSTER

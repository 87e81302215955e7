"""The Slurm scheduler against a real single-node Slurm (`cc_core.testing.slurm`) and a real site: jobs
submitted with sbatch appear in our database as running and end with Slurm's state, across restarts of
the server and an unreachable slurmctld.

The app is the real one (`create_app` with a ``schedulers`` entry), so these tests also cover the core's
scheduler service: started in the lifespan, fed through `LifecycleSink`, cancelled at shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from litestar.testing import TestClient

from cc_core.testing.metric_contract import TOPOLOGY, make_cluster
from cc_core.testing.site import Site, make_site
from cc_core.testing.slurm import SlurmCluster, logs, wait_until_jobs_gone

pytestmark = pytest.mark.service("slurm")
T = TypeVar("T")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: SlurmCluster) -> Site:
    entry = {
        "kind": "slurm",
        "cluster": slurm_cluster.cluster,
        "slurm-conf": str(slurm_cluster.conf),
        "bin-dir": str(slurm_cluster.bin_dir),
        "poll-interval": 0.3,
        "node-state-interval": 0.3,
        "retry-max": 1,
        "command-timeout": 5,
    }
    return make_site(
        tmp_path_factory.mktemp("slurm-site"),
        [make_cluster(slurm_cluster.cluster)],
        config={"metric-store": None, "schedulers": [entry]},
    )


def open_app(site: Site) -> TestClient[Any]:
    from cc_core.app import create_app
    from cc_core.plugins import make_plugin_manager

    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs,scheduler-slurm"})
    return TestClient(create_app(site.config(), registry=registry), raise_server_exceptions=False)


@pytest.fixture
def app(site: Site, slurm_cluster: SlurmCluster) -> Iterator[TestClient[Any]]:
    with open_app(site) as client:
        yield client
    slurm_cluster.cancel_all()


def jobs(client: TestClient[Any], site: Site) -> list[dict[str, Any]]:
    """Every job of the site (REST ``GET /api/jobs/`` with metadata)."""
    r = client.get(
        "/api/jobs/",
        params={"items-per-page": 1000, "with-metadata": "true"},
        headers={"Authorization": f"Bearer {site.token(['api', 'admin'])}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["jobs"]


def by_id(client: TestClient[Any], site: Site, job_id: int) -> list[dict[str, Any]]:
    return [j for j in jobs(client, site) if j["jobId"] == job_id]


def eventually(fn: Callable[[], T], what: str, cluster: SlurmCluster, timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{logs(cluster)}")
        time.sleep(0.1)


def state_of(client: TestClient[Any], site: Site, job_id: int) -> str | None:
    rows = by_id(client, site, job_id)
    return rows[0]["jobState"] if len(rows) == 1 else None


def test_jobs_start_and_stop_with_slurm_states(
    app: TestClient[Any], site: Site, slurm_cluster: SlurmCluster
) -> None:
    long = slurm_cluster.sbatch("sleep 60", "-J", "longjob", "--time=10")
    ok = slurm_cluster.sbatch("sleep 1")
    bad = slurm_cluster.sbatch("sleep 1; exit 1")

    running = eventually(lambda: by_id(app, site, long), "the long job to be recorded", slurm_cluster)
    assert len(running) == 1
    job = running[0]
    assert job["jobState"] == "running"
    assert job["cluster"] == slurm_cluster.cluster
    assert job["partition"] == slurm_cluster.partition
    assert job["user"] == "root"
    assert job["walltime"] == 600
    assert job["numNodes"] == 1
    assert job["numHwthreads"] == 2  # one core of two threads (SelectTypeParameters=CR_Core)
    (res,) = job["resources"]
    assert res["hostname"] == slurm_cluster.node
    # The allocated core's threads, as the cluster's topology numbers them.
    assert res["hwthreads"] in [sorted(core) for core in TOPOLOGY["core"]]
    meta = job["metaData"]
    assert meta["jobName"] == "longjob"
    assert "sleep 60" in meta["jobScript"]
    assert f"JobId={long}" in meta["slurmInfo"]
    assert job["submitTime"] > 0 and job["startTime"] >= job["submitTime"]

    eventually(lambda: state_of(app, site, ok) == "completed", "the short job to complete", slurm_cluster)
    eventually(lambda: state_of(app, site, bad) == "failed", "the failing job to fail", slurm_cluster)
    slurm_cluster.scancel(long)
    eventually(lambda: state_of(app, site, long) == "cancelled", "the cancelled job", slurm_cluster)

    rows = {j["jobId"]: j for j in jobs(app, site) if j["jobId"] in (long, ok, bad)}
    assert len(rows) == 3
    assert all(r["duration"] >= 0 for r in rows.values())
    assert rows[long]["duration"] >= 1

    # Node states arrive too: the node with its scheduler state from sinfo.
    services = app.app.state["services"]

    def node() -> Any:
        return app.blocking_portal.call(services.db.nodes.get, slurm_cluster.node, slurm_cluster.cluster)

    found = eventually(node, "the node state", slurm_cluster)
    assert found.scheduler_state in ("idle", "mixed", "allocated")
    assert found.sub_cluster == "main"


def test_requeued_job_stays_one_job(app: TestClient[Any], site: Site, slurm_cluster: SlurmCluster) -> None:
    """``scontrol requeue`` puts a running job back to pending (Slurm delays its restart by minutes):
    the recorded job keeps running, is not stopped as failed nor started twice, and ends with Slurm's
    final state."""
    job_id = slurm_cluster.sbatch("sleep 60")
    eventually(lambda: state_of(app, site, job_id) == "running", "the job running", slurm_cluster)
    slurm_cluster.command("scontrol", "requeue", str(job_id))
    scheduler = app.app.state["schedulers"]._running[0].instance
    syncs = scheduler.syncs
    eventually(lambda: scheduler.syncs >= syncs + 3, "three polls", slurm_cluster)
    assert state_of(app, site, job_id) == "running"
    slurm_cluster.scancel(job_id)
    eventually(lambda: state_of(app, site, job_id) == "cancelled", "the cancelled job", slurm_cluster)
    assert len(by_id(app, site, job_id)) == 1


def test_restart_neither_duplicates_nor_misses(site: Site, slurm_cluster: SlurmCluster) -> None:
    with open_app(site) as first:
        keep = slurm_cluster.sbatch("sleep 60")
        ends = slurm_cluster.sbatch("sleep 2")
        for j in (keep, ends):
            eventually(lambda j=j: state_of(first, site, j) == "running", f"job {j} running", slurm_cluster)

    # The server is down: one job ends, one starts and ends, one starts and keeps running.
    quick = slurm_cluster.sbatch("true")
    later = slurm_cluster.sbatch("sleep 60")
    wait_until_jobs_gone(slurm_cluster, [ends, quick])

    try:
        with open_app(site) as second:
            eventually(
                lambda: state_of(second, site, ends) == "completed", "the job that ended", slurm_cluster
            )
            eventually(
                lambda: state_of(second, site, quick) == "completed", "the job it missed", slurm_cluster
            )
            eventually(lambda: state_of(second, site, later) == "running", "the new job", slurm_cluster)
            assert state_of(second, site, keep) == "running"
            slurm_cluster.scancel(keep)
            slurm_cluster.scancel(later)
            for j in (keep, later):
                eventually(lambda j=j: state_of(second, site, j) == "cancelled", f"job {j}", slurm_cluster)
            ids = [j["jobId"] for j in jobs(second, site) if j["jobId"] in (keep, ends, quick, later)]
            assert sorted(ids) == sorted([keep, ends, quick, later])  # one row each
            status = second.app.state["schedulers"].status()
            assert status[0]["running"] and status[0]["restarts"] == 0
    finally:
        slurm_cluster.cancel_all()


def test_unreachable_slurm_is_retried_and_nothing_is_lost(
    app: TestClient[Any], site: Site, slurm_cluster: SlurmCluster, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = slurm_cluster.sbatch("sleep 3")
    eventually(lambda: state_of(app, site, job_id) == "running", "the job running", slurm_cluster)
    ends_at = time.monotonic() + 3.5
    scheduler = app.app.state["schedulers"]._running[0].instance
    failures = scheduler.failures
    slurm_cluster.stop_controller()
    try:
        eventually(lambda: scheduler.failures > failures, "a failed poll", slurm_cluster)
        assert state_of(app, site, job_id) == "running"  # unreachable is not "gone"
        warnings = [r.getMessage() for r in caplog.records if r.name == "cc_scheduler_slurm.scheduler"]
        assert any("retrying in" in m and ("squeue" in m or "sinfo" in m) for m in warnings), warnings
        time.sleep(max(0.0, ends_at - time.monotonic()))  # the job ends while slurmctld is away
    finally:
        slurm_cluster.start_controller()
    back = time.monotonic()
    eventually(lambda: state_of(app, site, job_id) == "completed", "the job's end", slurm_cluster, 30)
    print(f"job end recorded {time.monotonic() - back:.1f} s after slurmctld came back")
    assert app.get("/healthz").status_code == 200


def test_job_slurm_forgot_is_stopped_at_its_walltime(
    app: TestClient[Any], site: Site, slurm_cluster: SlurmCluster
) -> None:
    """A running job in our database that slurmctld does not know (it ended while we were away for longer
    than MinJobAge): without accounting (this cluster has none; sacct says so) it is stopped as failed."""
    from cc_core.scheduler import LifecycleSink
    from cc_core.schema import Job, Resource

    start = int(time.time()) - 120
    ghost = Job(
        job_id=987654,
        user="root",
        project="",
        cluster=slurm_cluster.cluster,
        start_time=start,
        num_nodes=1,
        walltime=60,
        resources=[Resource(hostname=slurm_cluster.node)],
    )
    sink = LifecycleSink(app.app.state["services"])
    app.blocking_portal.call(sink.start_job, ghost)
    eventually(lambda: state_of(app, site, 987654) == "failed", "the forgotten job to stop", slurm_cluster)
    (row,) = by_id(app, site, 987654)
    assert row["duration"] == 60  # its walltime: the latest it can have ended
    assert app.app.state["schedulers"]._running[0].instance._accounting is False

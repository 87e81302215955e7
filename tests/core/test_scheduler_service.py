"""The core side of scheduler plugins: `LifecycleSink` on a real site, and `SchedulerService` running,
restarting and cancelling a scheduler in the app's lifespan.

The schedulers here are small real classes registered through the plugin door (``extra_plugins``); the
Slurm plugin's own tests run the same service against a real Slurm.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from litestar.testing import TestClient

from cc_core.app import create_app
from cc_core.config import ConfigError
from cc_core.db.errors import DuplicateJobError, InvalidInputError, JobAlreadyStoppedError
from cc_core.hookspecs import hookimpl
from cc_core.plugins import make_plugin_manager
from cc_core.scheduler import LifecycleSink, SchedulerService
from cc_core.schema import Job, Resource
from cc_core.testing.metric_contract import make_cluster
from cc_core.testing.site import Site, make_site

CLUSTER = "testcluster"


class RecordingScheduler:
    """Starts one job per run; the first run crashes after starting its job (to test restarts)."""

    kind: ClassVar[str] = "test-recording"
    instances: ClassVar[list[RecordingScheduler]] = []

    class Config(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
        cluster: str
        crash_first: bool = True

    def __init__(self, config: Config, context: Any) -> None:
        self.config = config
        self.runs = 0
        self.cancelled = False
        self.closed = False
        self.started: list[int] = []
        RecordingScheduler.instances.append(self)

    async def run(self, sink: Any) -> None:
        self.runs += 1
        running = await sink.running_jobs(self.config.cluster)
        job_id = 100 + len(running)
        job = Job(
            job_id=job_id,
            user="alice",
            project="p",
            cluster=self.config.cluster,
            start_time=int(time.time()) - 10,
            num_nodes=1,
            resources=[Resource(hostname="node01")],
        )
        self.started.append(await sink.start_job(job))
        if self.runs == 1 and self.config.crash_first:
            raise RuntimeError("first run fails")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def close(self) -> None:
        self.closed = True


class _Plugin:
    @staticmethod
    @hookimpl
    def register_schedulers(register):  # type: ignore[no-untyped-def]
        register(RecordingScheduler)


def _registry() -> Any:
    return make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs"}, extra_plugins=[_Plugin])


def _site(root: Path, schedulers: list[dict[str, Any]]) -> Site:
    return make_site(root, [make_cluster(CLUSTER)], config={"metric-store": None, "schedulers": schedulers})


def test_scheduler_runs_in_the_lifespan_is_restarted_after_a_crash_and_cancelled(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", [{"kind": "test-recording", "cluster": CLUSTER}])
    RecordingScheduler.instances.clear()
    app = create_app(site.config(), registry=_registry())
    service: SchedulerService = app.state["schedulers"]
    service.backoff_initial = 0.05  # set before the lifespan starts the supervisor
    with TestClient(app) as client:
        (sched,) = RecordingScheduler.instances
        deadline = time.monotonic() + 10
        # Wait until the second run has stored its job (runs counts up before that).
        while len(sched.started) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sched.runs == 2 and len(sched.started) == 2
        (status,) = service.status()
        assert status["running"] and status["restarts"] == 1
        assert status["lastError"] == "RuntimeError: first run fails"
        # Both runs went through the sink into the database (the second saw the first's job).
        services = client.app.state["services"]
        running = client.blocking_portal.call(services.db.jobs.running, CLUSTER)
        assert sorted(j.job_id for j in running) == [100, 101]
        assert sorted(j.id for j in running) == sorted(sched.started)
    assert sched.cancelled and sched.closed
    assert service.status() == []


def test_lifecycle_sink_is_the_rest_lifecycle(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", [])
    app = create_app(site.config(), registry=make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs"}))
    with TestClient(app) as client:
        sink = LifecycleSink(client.app.state["services"])

        def call(fn: Any, *args: Any) -> Any:
            return client.blocking_portal.call(fn, *args)

        start = int(time.time()) - 100
        job = Job(
            job_id=7,
            user="bob",
            project="p",
            cluster=CLUSTER,
            start_time=start,
            num_nodes=1,
            resources=[Resource(hostname="node01", hwthreads=[0, 4])],
            meta_data={"jobName": "x"},
        )
        db_id = call(sink.start_job, job)
        assert isinstance(db_id, int)
        with pytest.raises(DuplicateJobError):
            call(sink.start_job, job)
        (running,) = call(sink.running_jobs, CLUSTER)
        assert (running.id, running.sub_cluster, running.job_state) == (db_id, "main", "running")
        assert call(sink.running_jobs, "other") == []

        bad = msgspec.structs.replace(job, job_id=8, cluster="nope")
        with pytest.raises(InvalidInputError, match="no such cluster"):
            call(sink.start_job, bad)

        call(sink.stop_job, 7, CLUSTER, start, "timeout", start + 50)
        with pytest.raises(JobAlreadyStoppedError):
            call(sink.stop_job, 7, CLUSTER, start, "timeout", start + 50)
        assert call(sink.running_jobs, CLUSTER) == []
        r = client.get(
            f"/api/jobs/{db_id}", headers={"Authorization": f"Bearer {site.token(['api', 'admin'])}"}
        )
        assert r.status_code == 200
        assert (r.json()["Meta"]["jobState"], r.json()["Meta"]["duration"]) == ("timeout", 50)

        nodes = [{"hostname": "node01", "states": ["ALLOCATED"], "cpusAllocated": 2, "jobsRunning": 1}]
        call(sink.update_node_states, CLUSTER, nodes)
        node = call(client.app.state["services"].db.nodes.get, "node01", CLUSTER)
        assert (node.scheduler_state, node.cpus_allocated, node.jobs_running) == ("allocated", 2, 1)
        with pytest.raises(InvalidInputError, match="unknown cluster"):
            call(sink.update_node_states, "nope", nodes)
        with pytest.raises(InvalidInputError, match="node states"):
            call(sink.update_node_states, CLUSTER, [{"hostname": "node01", "cpusAllocated": "two"}])


def test_unknown_scheduler_kind_names_the_extra(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", [{"kind": "slurm", "cluster": CLUSTER}])
    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs"})
    with pytest.raises(ConfigError, match=r"clustercockpit\[slurm\]") as e:
        create_app(site.config(), registry=registry)
    assert e.value.path == "$.schedulers[0].kind"

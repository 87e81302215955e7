"""Acceptance: with ``main.enable-job-taggers`` a job started over REST gets its app tag, and once
stopped and archived its job class and hint (in the database and in ``meta.json``); ``apply-tags`` and
the admin run re-apply the rules idempotently, and one job's failure never stops the others."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import delete, select

from cc_core.cli import build_cli
from cc_core.db import SYSTEM_USER
from cc_core.db import tables as T
from cc_core.schema.cluster import Cluster
from cc_core.taggers.examples import APP_SCRIPTS
from cc_core.testing.metric_contract import CLUSTER, METRICS, TOPOLOGY, MetricDataset
from cc_core.testing.site import Site, make_site

from ..metrics.conftest import App

# Limits for the contract cluster's metrics: the dataset's job (cpu_load avg 2.25, mem_used max 5.75,
# flops_any avg 80, mem_bw avg 212) is then "lowload" (2.25 < 0.85 × 4) and nothing else.
LIMITS = {
    "cpu_load": {"peak": 4.0, "normal": 4.0, "caution": 2.0, "alert": 1.0},
    "mem_used": {"peak": 8.0, "normal": 4.0, "caution": 6.0, "alert": 7.0},
    "flops_any": {"peak": 1000.0, "normal": 100.0, "caution": 60.0, "alert": 50.0},
    "mem_bw": {"peak": 1000.0, "normal": 100.0, "caution": 20.0, "alert": 10.0},
}
LOWLOAD_HINT = (
    "This job was detected as low CPU load: average cpu load 2.25 is below the threshold 3.4 (0.85)."
)


def _cluster() -> Cluster:
    doc = {
        "name": CLUSTER,
        "metricConfig": [{**m, **LIMITS.get(m["name"], {})} for m in METRICS],
        "subClusters": [
            {
                "name": "main",
                "nodes": "*",
                "processorType": "test",
                "socketsPerNode": 2,
                "coresPerSocket": 2,
                "threadsPerCore": 2,
                "flopRateScalar": {"unit": {"base": "F/s", "prefix": "G"}, "value": 10},
                "flopRateSimd": {"unit": {"base": "F/s", "prefix": "G"}, "value": 40},
                "memoryBandwidth": {"unit": {"base": "B/s", "prefix": "G"}, "value": 100},
                "topology": TOPOLOGY,
            }
        ],
    }
    return msgspec.convert(doc, Cluster).derive()


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from cc_core.app import create_app
    from cc_core.plugins import make_plugin_manager

    site = make_site(
        tmp_path_factory.mktemp("taggers") / "site",
        [_cluster()],
        config={"main": {"enable-job-taggers": True}},
    )
    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "metric-ccms,archive-fs"})
    with TestClient(create_app(site.config(), registry=registry), raise_server_exceptions=False) as client:
        yield App(client, site)


def _start_body(ds: MetricDataset, job_id: int, script: str | None) -> dict[str, Any]:
    meta = {"jobName": f"job{job_id}"} | ({"jobScript": script} if script is not None else {})
    return {
        "jobId": job_id,
        "user": "alice",
        "project": "p",
        "cluster": CLUSTER,
        "subCluster": "main",
        "numNodes": 2,
        "numHwthreads": 16,
        "startTime": ds.t0,
        "resources": [{"hostname": h, "hwthreads": list(range(8))} for h in ds.hosts],
        "metaData": meta,
    }


def _tags(app: App, job_id: int) -> set[tuple[str, str, str]]:
    tags = app.call(app.services.db.tags.of_jobs, None, [job_id]).get(job_id, [])
    return {(t.type, t.name, t.scope) for t in tags}


def _run_jobs(app: App) -> tuple[MetricDataset, list[int]]:
    ds = MetricDataset(t0=int(time.time()) // 60 * 60 - 45 * 60, points=40, prefix="tag")
    c = app.client
    assert c.post("/api/write", content=ds.line_protocol(), headers=app.auth()).status_code == 200
    ids = []
    for job_id, script in ((501, APP_SCRIPTS["gromacs"] + "srun python3 post.py\n"), (502, None)):
        r = c.post("/api/jobs/start_job/", json=_start_body(ds, job_id, script), headers=app.auth())
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    app.call(app.services.taggers.join)
    return ds, ids


def test_tags_on_start_and_after_archiving(tagged: App) -> None:
    app = tagged
    services = app.services
    ds, (gmx, plain) = _run_jobs(app)
    # Start tagger: apps from the job script (both, in file order); a job without script gets none.
    assert _tags(app, gmx) == {("app", "gromacs", "global"), ("app", "python", "global")}
    assert _tags(app, plain) == set()

    for job_id in (501, 502):
        body = {
            "jobId": job_id,
            "cluster": CLUSTER,
            "startTime": ds.t0,
            "stopTime": ds.stop,
            "jobState": "completed",
        }
        r = app.client.post("/api/jobs/stop_job/", json=body, headers=app.auth())
        assert r.status_code == 200, r.text
    app.call(services.archiver.join)

    # Stop tagger: job class from the archived statistics and the cluster's limits, hint as message.
    assert ("jobClass", "lowload", "global") in _tags(app, gmx)
    assert _tags(app, plain) == {("jobClass", "lowload", "global")}
    job = app.call(services.db.jobs.find_by_id, SYSTEM_USER, gmx, with_metadata=True)
    assert job.meta_data["message"] == LOWLOAD_HINT
    assert job.meta_data["jobScript"].startswith("#!/bin/bash")  # other metadata kept
    meta = app.call(services.archive.load_job_meta, job)
    assert {(t.type, t.name) for t in meta.tags or []} == {
        ("app", "gromacs"),
        ("app", "python"),
        ("jobClass", "lowload"),
    }
    assert meta.meta_data["message"] == LOWLOAD_HINT

    # The REST job view shows them as any tag.
    r = app.client.get(f"/api/jobs/{gmx}", headers=app.auth(("admin", "api")))
    assert r.status_code == 200
    assert {t["name"] for t in r.json()["Meta"]["tags"]} == {"gromacs", "python", "lowload"}


def test_apply_tags_is_idempotent_and_restores(tagged: App) -> None:
    app = tagged
    services = app.services
    site: Site = app.site
    ids = app.call(services.taggers.finished_job_ids)
    assert len(ids) >= 2
    before = {i: _tags(app, i) for i in ids}

    runner = CliRunner()
    r = runner.invoke(build_cli(), ["--config", str(site.config_path), "apply-tags"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert f"apply-tags: {len(ids)} finished jobs" in r.stdout and "0 changed, 0 tags added" in r.stdout
    assert {i: _tags(app, i) for i in ids} == before
    n_links = app.call(services.db.read, lambda c: c.execute(select(T.jobtag)).all())

    # Lost tags and message come back; nothing is duplicated.
    gmx = ids[0]

    def wipe(conn: Any) -> None:
        conn.execute(delete(T.jobtag).where(T.jobtag.c.job_id == gmx))

    app.call(services.db.write, wipe)
    app.call(services.db.jobs.update_metadata, gmx, "message", "stale")
    report = app.call(services.taggers.run_all)
    assert (report.jobs, report.changed, report.tags_added, report.messages) == (len(ids), 1, 3, 1)
    assert _tags(app, gmx) == before[gmx]
    assert len(app.call(services.db.read, lambda c: c.execute(select(T.jobtag)).all())) == len(n_links)
    job = app.call(services.db.jobs.find_by_id, SYSTEM_USER, gmx, with_metadata=True)
    assert job.meta_data["message"] == LOWLOAD_HINT

    r = runner.invoke(
        build_cli(),
        ["--config", str(site.config_path), "apply-tags", "--tagger", "Nope"],
        catch_exceptions=False,
    )
    assert r.exit_code == 2 and "unknown tagger Nope" in r.stderr


def test_admin_run_and_failures_are_contained(tagged: App, tmp_path: Path) -> None:
    app = tagged
    services = app.services
    taggers = services.taggers
    # One job whose archive meta.json is gone: its stop tagging fails, the others are still processed.
    ids = app.call(taggers.finished_job_ids)
    broken = app.call(services.db.jobs.find_by_id, SYSTEM_USER, ids[0])
    meta_path = Path(site_archive(app)) / CLUSTER / str(broken.job_id // 1000) / f"{broken.job_id % 1000:03d}"
    meta_file = next(meta_path.rglob("meta.json"))
    saved = meta_file.read_bytes()
    meta_file.unlink()
    try:

        async def run() -> Any:
            task = taggers.start("JobClassTagger")
            assert taggers.is_running("JobClassTagger")
            with pytest.raises(RuntimeError, match="already running"):
                taggers.start("JobClassTagger")
            return await task

        report = app.call(run)
    finally:
        meta_file.write_bytes(saved)
    assert not taggers.is_running("JobClassTagger")
    assert report.jobs == len(ids) and len(report.errors) == 1 and f"id {broken.id}" in report.errors[0]
    # Both built-ins come through the plugin door like any third-party tagger.
    info = app.client.app.state["registry"].infos["taggers"]
    assert info.builtin and info.kinds == {"tagger": ["AppTagger", "JobClassTagger"]}

    # With the switch off, new jobs are not tagged on start.
    taggers.enabled = False
    try:
        ds = MetricDataset(t0=int(time.time()) // 60 * 60 - 45 * 60, points=40, prefix="off")
        r = app.client.post(
            "/api/jobs/start_job/", json=_start_body(ds, 601, APP_SCRIPTS["vasp"]), headers=app.auth()
        )
        assert r.status_code == 201
        app.call(taggers.join)
        assert _tags(app, r.json()["id"]) == set()
    finally:
        taggers.enabled = True


def site_archive(app: App) -> str:
    return str(app.site.root / "var" / "job-archive")

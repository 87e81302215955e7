"""Acceptance: a job started, fed with metrics for its nodes through ``POST /api/write``, and stopped is
archived with statistics and footprint, and reads back the same data from the archive as from the
store before. Plus: failures mark the job, a restart archives what was left over, GraphQL serves it."""

from __future__ import annotations

import time

import numpy as np

from cc_core.db import SYSTEM_USER
from cc_core.schema.metrics import round_like_archive
from cc_core.testing.metric_contract import METRIC_NAMES, MetricDataset, make_cluster

from .conftest import App, open_app

SCOPES = ["node", "core"]


def _dataset() -> MetricDataset:
    now = int(time.time()) // 60 * 60
    return MetricDataset(t0=now - 45 * 60, points=40, prefix="acc")


def _start(app: App, ds: MetricDataset, job_id: int = 4711) -> object:
    job = ds.job(id=None, job_id=job_id, job_state="running", duration=0, monitoring_status=1)
    return app.call(app.services.db.jobs.start, job)


def _expected_stats(ds: MetricDataset, metric: str) -> tuple[float, float, float]:
    nodes = [ds.node(metric, h) for h in range(2)]
    return (
        float(np.mean([n.mean() for n in nodes])),
        float(min(n.min() for n in nodes)),
        float(max(n.max() for n in nodes)),
    )


def test_job_lifecycle_archive_matches_store(app: App) -> None:
    ds = _dataset()
    c = app.client
    r = c.post("/api/write", content=ds.line_protocol(), headers=app.auth())
    assert r.status_code == 200, r.text
    job = _start(app, ds)
    db, metrics, archiver = app.services.db, app.services.metrics, app.services.archiver

    running = app.call(metrics.load_data, job, None, ["node"], 0)
    np.testing.assert_array_equal(running["cpu_load"]["node"].series[0].data, ds.node("cpu_load", 0))

    stopped = app.call(
        db.jobs.stop, job.job_id, stop_time=ds.stop, cluster=job.cluster, start_time=job.start_time
    )
    assert stopped.monitoring_status == 1 and stopped.duration == ds.points * 60
    before = app.call(metrics.load_data, stopped, METRIC_NAMES, SCOPES, 0, use_cache=False)

    app.call(lambda: archiver.enqueue(stopped))  # the REST API's call after stop_job
    app.call(archiver.join)

    archived = app.call(db.jobs.find_by_id, SYSTEM_USER, job.id)
    assert archived.monitoring_status == 3
    for metric in ("cpu_load", "flops_any", "mem_used"):
        avg, mn, mx = _expected_stats(ds, metric)
        key = f"{metric}_{'max' if metric == 'mem_used' else 'avg'}"
        assert archived.footprint[key] == round(mx if metric == "mem_used" else avg, 2), key
    # cpu_power: node power (110 W, 112 W) averaged 111 W × 2 nodes × 40 min = 0.148 kWh.
    assert archived.energy_footprint == {"cpu_power": 0.15}
    assert archived.energy == 0.15

    meta = app.call(app.services.archive.load_job_meta, archived)
    assert meta.monitoring_status == 3 and meta.footprint == archived.footprint
    for metric in ("cpu_load", "flops_any", "mem_bw", "mem_used", "cpu_power"):
        avg, mn, mx = _expected_stats(ds, metric)
        st = meta.statistics[metric]
        assert (st.avg, st.min, st.max) == (round(avg, 2), mn, mx), metric
        assert st.unit == make_cluster().metric(metric).unit
    assert set(meta.statistics["flops_any"].__struct_fields__) == {"unit", "avg", "min", "max"}

    after = app.call(metrics.load_data, archived, METRIC_NAMES, SCOPES, 0)
    assert set(after) == set(before)
    assert after == round_like_archive(before)
    assert set(after["flops_any"]) == {"node", "core"} and len(after["flops_any"]["core"].series) == 8

    # The statistics the UI shows for the finished job come from the archive's meta.json.
    stats = app.call(metrics.load_job_stats, archived, ["flops_any"])
    assert stats["flops_any"].max == _expected_stats(ds, "flops_any")[2]

    # GraphQL reads the archived job through the same dispatcher.
    query = '{ jobMetrics(id: "%d", metrics: ["cpu_load"], scopes: [node]) { name scope metric { timestep series { hostname data } } } }'
    r = c.post("/query", json={"query": query % job.id}, headers=app.auth(("admin", "api")))
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]["jobMetrics"]
    assert item["metric"]["timestep"] == 60
    got = {s["hostname"]: s["data"] for s in item["metric"]["series"]}
    assert got[ds.hosts[1]] == ds.node("cpu_load", 1).tolist()


def test_failure_marks_the_job_and_restart_archives_leftovers(app: App) -> None:
    ds = _dataset()
    db, archiver = app.services.db, app.services.archiver
    assert app.client.post("/api/write", content=ds.line_protocol(), headers=app.auth()).status_code == 200
    bad = app.call(
        db.jobs.start, ds.job(id=None, job_id=1, cluster="nocluster", job_state="running", duration=0)
    )
    bad = app.call(db.jobs.stop, 1, stop_time=ds.stop, cluster="nocluster")
    app.call(lambda: archiver.enqueue(bad))
    app.call(archiver.join)
    assert app.call(db.jobs.find_by_id, SYSTEM_USER, bad.id).monitoring_status == 2
    assert archiver.failed == 1

    # Stopped but never queued (the server went down in between): archived at the next start.
    job = _start(app, ds, job_id=2)
    app.call(db.jobs.stop, 2, stop_time=ds.stop, cluster=job.cluster)
    app.client.__exit__(None, None, None)  # graceful shutdown: final checkpoint of the store
    with open_app(app.site) as client:
        again = App(client, app.site)
        again.call(again.services.archiver.join)
        archived = again.call(again.services.db.jobs.find_by_id, SYSTEM_USER, job.id)
        assert archived.monitoring_status == 3
        assert archived.footprint["cpu_load_avg"] == round(_expected_stats(ds, "cpu_load")[0], 2)
        # The failed job is not retried automatically (status 2 is final until someone re-archives).
        assert again.call(again.services.db.jobs.find_by_id, SYSTEM_USER, bad.id).monitoring_status == 2

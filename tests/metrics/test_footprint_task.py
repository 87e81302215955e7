"""The ``update-footprint`` task against the embedded metric store: a running job fed through
``POST /api/write`` gets the footprint and energy the archiver would compute, before it ends."""

from __future__ import annotations

import time

import numpy as np

from cc_core.db import SYSTEM_USER
from cc_core.testing.metric_contract import MetricDataset

from .conftest import App


def test_footprint_task_updates_running_jobs_from_the_metric_store(app: App) -> None:
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix="fp")
    assert app.client.post("/api/write", content=ds.line_protocol(), headers=app.auth()).status_code == 200
    db = app.services.db
    running = app.call(db.jobs.start, ds.job(id=None, job_state="running", duration=0, monitoring_status=1))
    young = app.call(  # started 5 minutes ago: too short to be worth it (upstream: > 600 s)
        db.jobs.start,
        ds.job(id=None, job_id=4712, start_time=now - 300, job_state="running", duration=0),
    )
    tasks = app.services.context.services["tasks"]
    assert "update-footprint" in tasks.tasks

    result = app.call(tasks.run_now, "update-footprint")
    assert result.ok and result.message == "footprints of 1 of 1 running job(s) updated"

    job = app.call(db.jobs.find_by_id, SYSTEM_USER, running.id)
    nodes = [ds.node("cpu_load", h) for h in range(2)]
    assert job.footprint["cpu_load_avg"] == round(float(np.mean([n.mean() for n in nodes])), 2)
    mem = [ds.node("mem_used", h) for h in range(2)]
    assert job.footprint["mem_used_max"] == round(float(max(n.max() for n in mem)), 2)
    # cpu_power ~111 W × 2 nodes × the time it has run so far
    assert job.energy_footprint["cpu_power"] > 0 and job.energy == job.energy_footprint["cpu_power"]
    assert job.job_state == "running" and job.monitoring_status == 1
    assert not app.call(db.jobs.find_by_id, SYSTEM_USER, young.id).footprint

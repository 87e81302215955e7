"""Two app instances on one PostgreSQL database and one archive directory archive each stopped job once,
and a claim left by a replica that died is taken over once it has expired."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from cc_core.db import SYSTEM_USER
from cc_core.db import tables as T
from cc_core.testing.metric_contract import CLUSTER, MetricDataset, make_cluster
from cc_core.testing.site import make_site
from tests.metrics.conftest import App, open_app

N_JOBS = 12


@pytest.fixture
def replicas(tmp_path: Path, postgresql_url: str) -> Iterator[tuple[App, App]]:
    a = make_site(tmp_path / "a", [make_cluster()], config={"main": {"db": postgresql_url}})
    shared_archive = str(tmp_path / "a" / "var" / "job-archive")
    b = make_site(
        tmp_path / "b",
        [make_cluster()],
        config={"main": {"db": postgresql_url}, "archive": {"kind": "file", "path": shared_archive}},
    )
    with open_app(a) as ca, open_app(b) as cb:
        yield App(ca, a), App(cb, b)


def _claims(app: App) -> int:
    db = app.services.db
    return app.call(
        db.read, lambda c: c.execute(select(func.count()).select_from(T.archive_claim)).scalar_one()
    )


def test_each_stopped_job_archived_once(replicas: tuple[App, App], tmp_path: Path) -> None:
    a, b = replicas
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix="two")
    for app in (a, b):  # either replica may archive a job, so both stores hold the data
        r = app.client.post("/api/write", content=ds.line_protocol(), headers=app.auth())
        assert r.status_code == 200, r.text
    ids = []
    for i in range(N_JOBS):
        job = a.call(
            a.services.db.jobs.start, ds.job(id=None, job_id=100 + i, job_state="running", duration=0)
        )
        ids.append(job.id)
        stopper, other = (a, b) if i % 2 else (b, a)
        body = {
            "jobId": 100 + i,
            "cluster": CLUSTER,
            "startTime": ds.t0,
            "jobState": "completed",
            "stopTime": ds.stop,
        }
        r = stopper.client.post("/api/jobs/stop_job/", json=body, headers=stopper.auth())
        assert r.status_code == 200, r.text
        # The other replica's sweep finds the same stopped job: both archivers now hold it.
        stopped = other.call(other.services.db.jobs.find_by_id, SYSTEM_USER, job.id)
        other.call(lambda j=stopped, o=other: o.services.archiver.enqueue(j))
    a.call(a.services.archiver.join)
    b.call(b.services.archiver.join)

    arch_a, arch_b = a.services.archiver, b.services.archiver
    counts = (arch_a.archived, arch_b.archived, arch_a.skipped, arch_b.skipped, arch_a.failed, arch_b.failed)
    assert arch_a.archived + arch_b.archived == N_JOBS, counts
    assert arch_a.skipped + arch_b.skipped == N_JOBS
    assert arch_a.failed == arch_b.failed == 0
    assert arch_a.archived > 0 and arch_b.archived > 0  # both did work, neither twice
    for id_ in ids:
        assert a.call(a.services.db.jobs.find_by_id, SYSTEM_USER, id_).monitoring_status == 3
    metas = list((tmp_path / "a" / "var" / "job-archive").rglob("meta.json"))
    assert len(metas) == N_JOBS
    assert _claims(a) == 0


def test_claim_of_a_dead_replica_expires_and_is_taken_over(replicas: tuple[App, App]) -> None:
    a, b = replicas
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix="dead")
    assert a.client.post("/api/write", content=ds.line_protocol(), headers=a.auth()).status_code == 200
    db = a.services.db
    job = a.call(db.jobs.start, ds.job(id=None, job_id=999, job_state="running", duration=0))
    a.call(db.jobs.stop, 999, stop_time=ds.stop, cluster=CLUSTER, start_time=ds.t0)
    # A replica claimed it and died mid-archive: its claim is still live.
    live = int(time.time() * 1000) + 60_000
    a.call(
        db.write,
        lambda c: c.execute(T.archive_claim.insert().values(job_id=job.id, holder="dead", expires_ms=live)),
    )
    assert a.call(a.services.archiver.sweep) == 0
    assert a.call(b.services.archiver.claims.claim, job.id) is False
    assert a.call(db.jobs.find_by_id, SYSTEM_USER, job.id).monitoring_status == 1
    # The claim expires: the next sweep of a live replica takes the job over and archives it.
    a.call(
        db.write,
        lambda c: c.execute(
            update(T.archive_claim).where(T.archive_claim.c.job_id == job.id).values(expires_ms=1)
        ),
    )
    assert a.call(a.services.archiver.sweep) == 1
    a.call(a.services.archiver.join)
    assert a.call(db.jobs.find_by_id, SYSTEM_USER, job.id).monitoring_status == 3
    assert a.services.archiver.archived == 1
    assert _claims(a) == 0

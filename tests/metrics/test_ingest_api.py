"""``/api/write``, ``/api/free``, ``/api/debug`` in the main server (contract §1.4): auth, strict batches,
and that what was written is what the dispatcher serves."""

from __future__ import annotations

import numpy as np

from cc_core.schema import Job, Resource
from cc_core.testing.metric_contract import CLUSTER

from .conftest import App

T0 = 1_700_000_040


def _lines(host: str, n: int, *, t0: int = T0) -> bytes:
    return "\n".join(f"cpu_load,hostname={host} value={k % 7} {t0 + 60 * k}" for k in range(n)).encode()


def test_write_requires_a_metric_store_token(app: App) -> None:
    c = app.client
    assert c.post("/api/write", content=_lines("n1", 2)).status_code == 401
    r = c.post("/api/write", content=_lines("n1", 2), headers=app.auth(("support", "api")))
    assert r.status_code == 403 and r.json()["status"] == "Forbidden"
    for roles in (("api",), ("admin", "api"), ("user", "api")):
        r = c.post(f"/api/write?cluster={CLUSTER}", content=_lines("n1", 2), headers=app.auth(roles))
        assert r.status_code == 200, (roles, r.text)
        assert r.content == b""


def test_a_bad_line_rejects_the_whole_batch(app: App) -> None:
    c = app.client
    body = _lines("n2", 5) + b"\ncpu_load,hostname=n2 value=1.5.5 1700001000\n"
    r = c.post(f"/api/write/?cluster={CLUSTER}", content=body, headers=app.auth())
    assert r.status_code == 400
    assert r.json() == {"status": "Bad Request", "error": r.json()["error"]}
    assert r.json()["error"].startswith("line 6:")
    r = c.get("/api/debug", params={"selector": f"{CLUSTER}:n2"}, headers=app.auth())
    assert r.status_code == 400  # nothing of the batch was stored: the host does not exist
    # Unknown metrics and path-traversal hosts are dropped, the rest stored.
    body = (
        _lines("n2", 3)
        + b"\nno_such_metric,hostname=n2 value=1 1700000040\ncpu_load,hostname=../x value=1 1700000040"
    )
    assert c.post(f"/api/write?cluster={CLUSTER}", content=body, headers=app.auth()).status_code == 200
    dump = c.get("/api/debug/", params={"selector": f"{CLUSTER}:n2"}, headers=app.auth()).json()
    assert dump["data"]["cpu_load"][0]["len"] == 3


def test_written_data_is_served_and_free_releases_it(app: App) -> None:
    c = app.client
    assert (
        c.post(f"/api/write?cluster={CLUSTER}", content=_lines("n3", 30), headers=app.auth()).status_code
        == 200
    )
    job = Job(
        job_id=1,
        user="u",
        project="p",
        cluster=CLUSTER,
        sub_cluster="main",
        start_time=T0,
        duration=30 * 60,
        num_nodes=1,
        resources=[Resource("n3")],
        id=99,
    )
    data = app.call(app.services.metrics.load_data, job, ["cpu_load"], ["node"], 0)
    np.testing.assert_array_equal(data["cpu_load"]["node"].series[0].data, [k % 7 for k in range(30)])
    r = c.post("/api/free", params={"to": str(T0 + 10**6)}, json=[[CLUSTER, "n3"]], headers=app.auth())
    assert r.status_code == 200 and r.text == "buffers freed: 1\n"
    assert c.post("/api/free", json=[[CLUSTER]], headers=app.auth()).status_code == 400  # `to` missing
    r = c.post("/api/free?to=1", content=b'{"not": "a list"}', headers=app.auth())
    assert r.status_code == 400


def test_large_bodies_are_parsed_off_the_event_loop(app: App) -> None:
    n = 40_000  # ~1.4 MB: above the worker-thread threshold
    body = "\n".join(f"cpu_load,hostname=h{k % 40} value=1 {T0 + 60 * (k // 40)}" for k in range(n)).encode()
    r = app.client.post(f"/api/write?cluster={CLUSTER}", content=body, headers=app.auth())
    assert r.status_code == 200
    store = app.services.context.services["metric_store"]
    assert store.engine.totals.stored >= n


def test_retention_keeps_the_hosts_of_running_jobs(app: App) -> None:
    """The engine's retention (run from its worker thread) asks the database for running jobs' hosts."""
    import asyncio
    import time

    body = _lines("busy", 10) + b"\n" + _lines("idle", 10)
    assert (
        app.client.post(f"/api/write?cluster={CLUSTER}", content=body, headers=app.auth()).status_code == 200
    )
    job = Job(
        job_id=7,
        user="u",
        project="p",
        cluster=CLUSTER,
        sub_cluster="main",
        start_time=T0,
        num_nodes=1,
        resources=[Resource("busy")],
    )
    app.call(app.services.db.jobs.start, job)
    engine = app.services.context.services["metric_store"].engine
    freed = app.call(asyncio.to_thread, engine.run_retention, int(time.time()))
    assert freed >= 1
    assert engine.store.list_children([CLUSTER]) == ["busy"]

"""The lean ``start_job`` path (`cc_core.api.fastpath`, `cc_core.api.jobs.FastStartJob`).

It answers accepted starts itself and leaves every refusal to the regular Litestar route, so the answers
are the API's usual ones. Each test checks which of the two paths answered (a counter in front of the
route), and that the fast answer is byte-for-byte the route's: same status, headers and body shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cc_core.api.jobs import FastStartJob
from cc_core.testing.fastpath import RouteCounter, answered_by

from .conftest import ApiSite, make_server, start_payload


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[ApiSite, RouteCounter]]:
    s = make_server(tmp_path / "site")
    counter = RouteCounter.install(s.app)
    assert isinstance(s.app.asgi_handler.routes[("POST", "/api/jobs/start_job/")], FastStartJob)
    yield s, counter
    s.stop()


def _count_jobs(s: ApiSite) -> int:
    return int(s.run_db(lambda c: c.exec_driver_sql("SELECT count(*) FROM job").scalar()))


def test_accepted_start_is_answered_fast_exactly_like_the_route(site: tuple[ApiSite, RouteCounter]) -> None:
    s, counter = site
    c = s.api()
    for path, method in (("/api/jobs/start_job/", "POST"), ("/api/jobs/start_job", "PUT")):
        job_id = 9001 if method == "POST" else 9002
        fast = answered_by(
            counter,
            False,
            lambda: c.request(method, path, json=start_payload(job_id=job_id)),  # noqa: B023
        )
        assert fast.status_code == 201
        body = fast.json()
        assert body["msg"] == "success" and isinstance(body["id"], int)
        db_id = body["id"]
        row = s.run_db(
            lambda conn, i=db_id: conn.exec_driver_sql(
                "SELECT job_id, job_state FROM job WHERE id = ?", (i,)
            ).one()
        )
        assert tuple(row) == (job_id, "running")

    # The same request through the route alone (fast path removed): the same answer.
    handler = s.app.asgi_handler
    handler.routes.clear()
    try:
        slow = c.post("/api/jobs/start_job/", json=start_payload(job_id=9003))
    finally:
        handler.add(FastStartJob())
    assert slow.status_code == 201 and set(slow.json()) == {"msg", "id"}
    skip = {"date", "content-length"}  # the only headers that may differ: the time and the id's digits
    assert {k: v for k, v in fast.headers.items() if k not in skip} == {
        k: v for k, v in slow.headers.items() if k not in skip
    }
    assert int(fast.headers["content-length"]) == len(fast.content)
    assert "x-frame-options" in fast.headers and "content-security-policy" in fast.headers
    assert _count_jobs(s) == 3


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no token", 401),
        ("bad token", 401),
        ("role user", 403),
        ("malformed json", 400),
        ("unknown field", 400),
        ("unknown cluster", 400),
        ("duplicate", 422),
    ],
)
def test_refusals_are_the_routes_and_insert_nothing(
    site: tuple[ApiSite, RouteCounter], case: str, status: int
) -> None:
    s, counter = site
    r0 = s.api().post("/api/jobs/start_job/", json=start_payload(job_id=77))
    assert r0.status_code == 201
    headers: dict[str, str] = {"X-Auth-Token": s.token(["api"])}
    body: Any = start_payload(job_id=78)
    if case == "no token":
        headers = {}
    elif case == "bad token":
        headers = {"X-Auth-Token": s.token(["api"])[:-4] + "AAAA"}
    elif case == "role user":
        headers = {"X-Auth-Token": s.token(["user"])}
    elif case == "malformed json":
        body = b'{"jobId": 1,'
    elif case == "unknown field":
        body = start_payload(job_id=78, bogus=1)
    elif case == "unknown cluster":
        body = start_payload(job_id=78, cluster="nope")
    elif case == "duplicate":
        body = start_payload(job_id=77, start=1649723812 + 60)
    c = s.client(headers=headers)
    send = (
        (lambda: c.post("/api/jobs/start_job/", content=body, headers={"content-type": "application/json"}))
        if isinstance(body, bytes)
        else (lambda: c.post("/api/jobs/start_job/", json=body))
    )
    r = answered_by(counter, True, send)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"status", "error"}
    assert _count_jobs(s) == 1  # the one accepted start; nothing from the refused one, nothing twice


def test_cross_site_cors_and_encoded_requests_take_the_route(site: tuple[ApiSite, RouteCounter]) -> None:
    s, counter = site
    c = s.api()
    r = answered_by(
        counter,
        True,
        lambda: c.post(
            "/api/jobs/start_job/", json=start_payload(job_id=1), headers={"Origin": "https://x.org"}
        ),
    )
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "*"
    r = answered_by(
        counter,
        True,
        lambda: c.post(
            "/api/jobs/start_job/", json=start_payload(job_id=2), headers={"Sec-Fetch-Site": "cross-site"}
        ),
    )
    assert r.status_code == 403
    assert _count_jobs(s) == 1


def test_with_nats_job_events_the_route_refuses(tmp_path: Path) -> None:
    """With ``main.api-subjects`` job events come from NATS alone; the route says so (the fast path
    must not accept what the route refuses)."""
    s = make_server(
        tmp_path / "site",
        main={"api-subjects": {"subject-job-event": "cc.job.event", "subject-node-state": "cc.node.state"}},
    )
    try:
        r = s.api().post("/api/jobs/start_job/", json=start_payload(job_id=5))
        assert r.status_code >= 400 and set(r.json()) == {"status", "error"}
        assert _count_jobs(s) == 0
    finally:
        s.stop()


def test_a_tagger_scheduling_error_after_the_insert_is_not_a_retry(
    site: tuple[ApiSite, RouteCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the job is stored the start is answered as such: no replay to the route (which would
    insert it again or answer 422)."""
    s, counter = site

    class Broken:
        def on_job_started(self, job: Any) -> None:
            raise RuntimeError("scheduler gone")

    monkeypatch.setattr(s.services, "taggers", Broken(), raising=False)
    r = answered_by(
        counter, False, lambda: s.api().post("/api/jobs/start_job/", json=start_payload(job_id=3))
    )
    assert r.status_code == 201
    assert _count_jobs(s) == 1


def _stop_body(job_id: int, **over: Any) -> dict[str, Any]:
    return {"jobId": job_id, "cluster": "fritz", "startTime": 1649723812, "stopTime": 1649727412, **over}


@pytest.mark.parametrize("encoding", ["gzip, deflate", "identity"])
def test_accepted_stop_is_answered_fast_exactly_like_the_route(
    site: tuple[ApiSite, RouteCounter], encoding: str
) -> None:
    s, counter = site
    c = s.client(headers={"X-Auth-Token": s.token(["api"]), "Accept-Encoding": encoding})
    big = {"jobName": "big", "jobScript": "#!/bin/bash\n" + "srun ./step\n" * 200}  # over gzip's 500 bytes
    for job_id in (11, 12):
        assert (
            c.post("/api/jobs/start_job/", json=start_payload(job_id=job_id, metaData=big)).status_code == 201
        )
    fast = answered_by(
        counter, False, lambda: c.post("/api/jobs/stop_job/", json=_stop_body(11, jobState="failed"))
    )
    handler = s.app.asgi_handler
    routes = dict(handler.routes)
    handler.routes.clear()
    try:
        slow = c.post("/api/jobs/stop_job/", json=_stop_body(12, jobState="failed"))
    finally:
        handler.routes.update(routes)
    assert fast.status_code == slow.status_code == 200
    skip = {"date", "content-length"}
    assert {k: v for k, v in fast.headers.items() if k not in skip} == {
        k: v for k, v in slow.headers.items() if k not in skip
    }
    assert (fast.headers.get("content-encoding") == "gzip") == (encoding != "identity")
    a, b = fast.json(), slow.json()
    assert (a["jobId"], a["jobState"], a["duration"]) == (11, "failed", 3600)
    assert {k: v for k, v in a.items() if k not in ("id", "jobId")} == {
        k: v for k, v in b.items() if k not in ("id", "jobId")
    }
    states = s.run_db(
        lambda conn: conn.exec_driver_sql("SELECT job_id, job_state FROM job ORDER BY job_id").all()
    )
    assert [tuple(r) for r in states] == [(11, "failed"), (12, "failed")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_stop_body(99), 404),  # no such job
        (_stop_body(21, stopTime=1), 400),  # before its start
        (_stop_body(21, jobState="running"), 400),
        (_stop_body(21, jobState="exploded"), 400),
        ({"cluster": "fritz", "stopTime": 1649727412}, 400),  # no jobId
        (_stop_body(21, bogus=1), 400),
    ],
)
def test_refused_stops_are_the_routes_and_change_nothing(
    site: tuple[ApiSite, RouteCounter], body: dict[str, Any], status: int
) -> None:
    s, counter = site
    c = s.api()
    assert c.post("/api/jobs/start_job/", json=start_payload(job_id=21)).status_code == 201
    r = answered_by(counter, True, lambda: c.post("/api/jobs/stop_job/", json=body))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"status", "error"}
    row = s.run_db(lambda conn: conn.exec_driver_sql("SELECT job_state, duration FROM job").one())
    assert row[0] == "running"
    # and stopping it twice: the first is fast, the second the route's 422
    assert (
        answered_by(counter, False, lambda: c.post("/api/jobs/stop_job/", json=_stop_body(21))).status_code
        == 200
    )
    again = answered_by(counter, True, lambda: c.post("/api/jobs/stop_job/", json=_stop_body(21)))
    assert again.status_code == 422


def test_an_archiver_queue_error_after_the_stop_is_not_a_retry(
    site: tuple[ApiSite, RouteCounter], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, counter = site
    c = s.api()
    assert c.post("/api/jobs/start_job/", json=start_payload(job_id=31)).status_code == 201

    class Broken:
        def enqueue(self, job: Any) -> None:
            raise RuntimeError("queue gone")

    monkeypatch.setattr(s.services, "archiver", Broken(), raising=False)
    r = answered_by(counter, False, lambda: c.post("/api/jobs/stop_job/", json=_stop_body(31)))
    assert r.status_code == 200 and r.json()["jobState"] == "completed"

"""The job endpoints of ``/api`` and ``/userapi`` over HTTP against a real server and SQLite (contract §1.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import ApiSite, start_payload


def _start(site: ApiSite, **over: Any) -> int:
    r = site.api().post("/api/jobs/start_job/", json=start_payload(**over))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["msg"] == "success" and isinstance(body["id"], int)
    return int(body["id"])


def test_start_job_answers_201_with_id_and_job_is_visible_at_once(fresh: ApiSite) -> None:
    c = fresh.api()
    r = c.post("/api/jobs/start_job/", json=start_payload())
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    db_id = r.json()["id"]
    r = c.get(f"/api/jobs/{db_id}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"Meta", "Data"}
    assert body["Data"] is None
    meta = body["Meta"]
    assert (meta["jobId"], meta["cluster"], meta["jobState"], meta["subCluster"]) == (
        123000,
        "fritz",
        "running",
        "main",
    )
    assert meta["metaData"]["jobName"] == "ams_pipeline"
    assert meta["shared"] == "none" and meta["id"] == db_id


def test_start_job_put_and_defaults_and_forced_running(fresh: ApiSite) -> None:
    body = start_payload(jobState="completed")
    del body["subCluster"]
    r = fresh.api().put("/api/jobs/start_job", json=body)
    assert r.status_code == 201, r.text
    meta = fresh.api().get(f"/api/jobs/{r.json()['id']}").json()["Meta"]
    assert meta["jobState"] == "running"  # forced, as upstream
    assert meta["subCluster"] == "main"  # assigned from the first host's node list
    assert meta["monitoringStatus"] == 1 and meta["shared"] == "none"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster": "nope"}, "no such cluster"),
        ({"subCluster": "nope"}, "subcluster"),
        ({"resources": [{"hostname": "zz999"}], "subCluster": ""}, "no subcluster found"),
        ({"resources": []}, "resources"),
        ({"user": ""}, "user"),
        ({"numNodes": 2}, "numNodes"),
        ({"numNodes": 0, "resources": []}, ""),
        ({"numAcc": -1}, "numAcc"),
        ({"numHwthreads": -5}, "numHwthreads"),
        ({"jobId": 2**64}, "out of range"),
        ({"numNodes": 2**40}, "out of range"),
        (
            {"resources": [{"hostname": "f0726", "hwthreads": [0, 1, 2**40]}]},
            "hwthreads 1099511627776 is out",
        ),
        ({"resources": [{"hostname": "f0726", "hwthreads": [-(2**40), 3]}]}, "out of range"),
        ({"bogusField": 1}, "unknown field"),
        ({"jobId": "123"}, "Expected `int`"),
        ({"shared": "everyone"}, "shared"),
        ({"monitoringStatus": 7}, "monitoringStatus"),
    ],
)
def test_start_job_sanity_checks_are_400(server: ApiSite, change: dict[str, Any], message: str) -> None:
    r = server.api().post("/api/jobs/start_job/", json=start_payload(job_id=555, **change))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "Bad Request" and message in body["error"]


def test_start_job_bad_json_and_empty_body(server: ApiSite) -> None:
    c = server.api()
    for raw in (b"", b"{", b"[]", b'{"jobId": 1,}', b"\xff\xfe", b"null"):
        r = c.post("/api/jobs/start_job/", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, raw
        assert set(r.json()) == {"status", "error"}


def test_duplicate_start_is_422_and_start_a_day_later_is_fine(fresh: ApiSite) -> None:
    _start(fresh, job_id=7, start=1_700_000_000)
    r = fresh.api().post("/api/jobs/start_job/", json=start_payload(job_id=7, start=1_700_000_100))
    assert r.status_code == 422
    assert "already exists" in r.json()["error"]
    _start(fresh, job_id=7, start=1_700_000_000 + 86400 + 1)


def test_stop_job_flow_and_errors(fresh: ApiSite) -> None:
    c = fresh.api()
    db_id = _start(fresh, job_id=42, start=1_700_000_000)
    r = c.post(
        "/api/jobs/stop_job/",
        json={"jobId": 42, "cluster": "fritz", "startTime": 1_699_999_000, "stopTime": 1_700_001_000},
    )
    assert r.status_code == 404
    r = c.post("/api/jobs/stop_job/", json={"jobId": 42, "cluster": "fritz", "stopTime": 1_699_999_999})
    assert r.status_code == 400 and "stopTime" in r.json()["error"]
    r = c.post(
        "/api/jobs/stop_job/",
        json={"jobId": 42, "cluster": "fritz", "stopTime": 1_700_001_000, "jobState": "exploded"},
    )
    assert r.status_code == 400
    r = c.post("/api/jobs/stop_job/", json={"cluster": "fritz", "stopTime": 1_700_001_000})
    assert r.status_code == 400 and "jobId" in r.json()["error"]
    r = c.post("/api/jobs/stop_job/", json={"jobId": 42, "stopTime": 1_700_001_000, "extra": True})
    assert r.status_code == 400
    r = c.put(
        "/api/jobs/stop_job",
        json={"jobId": 42, "cluster": "fritz", "startTime": 1_700_000_000, "stopTime": 1_700_003_600},
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert (job["id"], job["jobState"], job["duration"]) == (db_id, "completed", 3600)
    r = c.post("/api/jobs/stop_job/", json={"jobId": 42, "cluster": "fritz", "stopTime": 1_700_003_700})
    assert r.status_code == 422 and "already been stopped" in r.json()["error"]


def test_job_list_query_parameters(fresh: ApiSite) -> None:
    c = fresh.api()
    a = _start(fresh, job_id=1, start=1_700_000_000, project="pa")
    b = _start(fresh, job_id=2, start=1_700_000_500, project="pb")
    c.post("/api/jobs/stop_job/", json={"jobId": 1, "cluster": "fritz", "stopTime": 1_700_000_900})
    r = c.get(
        "/api/jobs/", params={"state": "running", "items-per-page": 10, "page": 1, "with-metadata": "false"}
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["items"], body["page"]) == (10, 1)
    assert [j["id"] for j in body["jobs"]] == [b]
    assert "metaData" in body["jobs"][0]  # presence of with-metadata counts, as upstream
    r = c.get("/api/jobs/")
    assert [j["id"] for j in r.json()["jobs"]] == [b, a]  # newest first
    assert "metaData" not in r.json()["jobs"][0]
    assert r.json()["items"] == 25
    r = c.get("/api/jobs/", params=[("state", "running"), ("state", "completed"), ("project", "pa")])
    assert [j["id"] for j in r.json()["jobs"]] == [a]
    r = c.get("/api/jobs", params={"start-time": "1700000100-1700000600", "cluster": "fritz"})
    assert [j["id"] for j in r.json()["jobs"]] == [b]
    r = c.get("/api/jobs/", params={"items-per-page": 1, "page": 2})
    assert [j["id"] for j in r.json()["jobs"]] == [a]
    for bad in (
        {"state": "bogus"},
        {"page": 0},
        {"page": -1},
        {"items-per-page": 0},
        {"page": "x"},
        {"start-time": "5"},
        {"start-time": "a-b"},
        {"unknown": 1},
        {"page": 2**62, "items-per-page": 2**62},
        {"page": 2**70},
    ):
        r = c.get("/api/jobs/", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert set(r.json()) == {"status", "error"}


def test_get_job_by_id_errors(server: ApiSite) -> None:
    c = server.api()
    assert c.get("/api/jobs/abc").status_code == 400
    assert c.get(f"/api/jobs/{2**70}").status_code == 400
    r = c.get("/api/jobs/987654")
    assert r.status_code == 422 and r.json()["status"] == "Unprocessable Entity"


def test_tags_add_remove_delete_and_scopes(fresh: ApiSite) -> None:
    c = fresh.api()
    db_id = _start(fresh, job_id=9)
    r = c.post(
        f"/api/jobs/tag_job/{db_id}",
        json=[{"type": "app", "name": "gromacs"}, {"type": "debug", "name": "x", "scope": "admin"}],
    )
    assert r.status_code == 200, r.text
    # The answer shows the tags the caller may read: admin-scope tags only for admin/support.
    assert {(t["type"], t["name"], t["scope"]) for t in r.json()["tags"]} == {("app", "gromacs", "global")}
    admin_view = fresh.api(["admin", "api"]).get(f"/api/jobs/{db_id}").json()["Meta"]["tags"]
    assert {(t["type"], t["name"], t["scope"]) for t in admin_view} == {
        ("app", "gromacs", "global"),
        ("debug", "x", "admin"),
    }
    assert c.patch(f"/api/jobs/tag_job/{db_id}", json=[{"type": "app", "name": "gromacs"}]).status_code == 200
    # A private scope of another user cannot be written by an API token (contract §6.4).
    r = c.post(f"/api/jobs/tag_job/{db_id}", json=[{"type": "t", "name": "n", "scope": "bob"}])
    assert r.status_code == 403
    assert c.post("/api/jobs/tag_job/999999", json=[{"type": "a", "name": "b"}]).status_code == 404
    assert c.post(f"/api/jobs/tag_job/{db_id}", json=[{"type": "", "name": "b"}]).status_code == 400
    assert c.post(f"/api/jobs/tag_job/{db_id}", json=[{"type": "a", "name": "b", "x": 1}]).status_code == 400
    r = c.request(
        "DELETE", f"/api/jobs/tag_job/{db_id}", json=[{"type": "debug", "name": "x", "scope": "admin"}]
    )
    assert r.status_code == 200
    assert {t["name"] for t in r.json()["tags"]} == {"gromacs"}
    admin_view = fresh.api(["admin", "api"]).get(f"/api/jobs/{db_id}").json()["Meta"]["tags"]
    assert {t["name"] for t in admin_view} == {"gromacs"}
    r = c.request(
        "DELETE",
        "/api/tags/",
        json=[
            {"type": "app", "name": "gromacs", "scope": "global"},
            {"type": "p", "name": "q", "scope": "alice"},
        ],
    )
    assert r.status_code == 200
    assert r.text == "Deleted Tags from DB: 1 successfull of 2 requested\n"
    assert c.get(f"/api/jobs/{db_id}").json()["Meta"].get("tags", []) == []


def test_start_job_with_tags(fresh: ApiSite) -> None:
    db_id = _start(fresh, job_id=11, tags=[{"type": "queue", "name": "long", "scope": "global"}])
    meta = fresh.api().get(f"/api/jobs/{db_id}").json()["Meta"]
    assert [(t["type"], t["name"]) for t in meta["tags"]] == [("queue", "long")]


def test_edit_meta_both_forms(fresh: ApiSite) -> None:
    c = fresh.api()
    db_id = _start(fresh, job_id=12)
    r = c.patch(f"/api/jobs/edit_meta/{db_id}", json={"key": "message", "value": "<b>hi</b>"})
    assert r.status_code == 200 and r.json()["metaData"]["message"] == "<b>hi</b>"
    assert c.patch("/api/jobs/edit_meta/424242", json={"key": "a", "value": "b"}).status_code == 404
    r = c.patch(
        "/api/jobs/edit_meta/", json={"jobId": 12, "cluster": "fritz", "payload": {"key": "k", "value": "v"}}
    )
    assert r.status_code == 200 and r.json()["metaData"]["k"] == "v"
    r = c.patch("/api/jobs/edit_meta/", json={"jobId": 99999, "payload": {"key": "k", "value": "v"}})
    assert r.status_code == 422
    assert c.patch("/api/jobs/edit_meta/", json={"payload": {"key": "k", "value": "v"}}).status_code == 400
    assert c.patch(f"/api/jobs/edit_meta/{db_id}", json={"key": "k", "value": 3}).status_code == 400


def test_edit_meta_and_tags_of_an_archived_job_rewrite_the_archive(fresh: ApiSite) -> None:
    """Upstream's UpdateMetadata/UpdateTags: a finished, archived job's meta.json follows DB edits."""
    c = fresh.api()
    db_id = _start(fresh, job_id=13, start=1_700_000_000)
    r = c.post("/api/jobs/stop_job/", json={"jobId": 13, "cluster": "fritz", "stopTime": 1_700_000_600})
    assert r.status_code == 200
    _wait_archived(fresh, db_id)
    assert (
        c.patch(f"/api/jobs/edit_meta/{db_id}", json={"key": "note", "value": "checked"}).status_code == 200
    )
    assert c.post(f"/api/jobs/tag_job/{db_id}", json=[{"type": "review", "name": "ok"}]).status_code == 200
    meta_file = next((fresh.root / "archive" / "fritz").glob("0/013/*/meta.json"))
    meta = json.loads(meta_file.read_text())
    assert meta["metaData"]["note"] == "checked"
    assert [(t["type"], t["name"]) for t in meta["tags"]] == [("review", "ok")]


def test_deleting_a_tag_removes_it_from_archived_meta_json(fresh: ApiSite) -> None:
    """DELETE /api/tags/ deletes the tag's job links; archived jobs' meta.json must not keep listing it."""
    import time

    c = fresh.api()
    tags = [{"type": "review", "name": "drop-me"}, {"type": "review", "name": "keep-me"}]
    db_id = _start(fresh, job_id=15, start=1_700_000_000, tags=tags)
    c.post("/api/jobs/stop_job/", json={"jobId": 15, "cluster": "fritz", "stopTime": 1_700_000_600})
    _wait_archived(fresh, db_id)
    meta_file = next((fresh.root / "archive" / "fritz").glob("0/015/*/meta.json"))

    def archived_tags() -> list[str]:
        return sorted(t["name"] for t in json.loads(meta_file.read_text()).get("tags") or [])

    assert archived_tags() == ["drop-me", "keep-me"]
    r = c.request("DELETE", "/api/tags/", json=[{"type": "review", "name": "drop-me", "scope": "global"}])
    assert r.status_code == 200 and r.text.startswith("Deleted Tags from DB: 1 successfull of 1")
    deadline = time.monotonic() + 10
    while archived_tags() != ["keep-me"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert archived_tags() == ["keep-me"]


def _wait_archived(site: ApiSite, db_id: int, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = site.api().get(f"/api/jobs/{db_id}").json()["Meta"]
        if job.get("monitoringStatus", 1) != 1:
            assert job["monitoringStatus"] == 3, job
            return
        time.sleep(0.05)
    raise AssertionError(f"job {db_id} was not archived")


def test_archived_jobs_in_the_list_carry_statistics(fresh: ApiSite) -> None:
    c = fresh.api()
    db_id = _start(fresh, job_id=14, start=1_700_000_000)
    c.post("/api/jobs/stop_job/", json={"jobId": 14, "cluster": "fritz", "stopTime": 1_700_000_600})
    _wait_archived(fresh, db_id)
    jobs = c.get("/api/jobs/").json()["jobs"]
    job = next(j for j in jobs if j["id"] == db_id)
    assert "statistics" in job


def test_delete_job_variants(fresh: ApiSite) -> None:
    c = fresh.api()
    a = _start(fresh, job_id=21, start=1_600_000_000)
    _start(fresh, job_id=22, start=1_600_000_100)
    _start(fresh, job_id=23, start=1_700_000_000, tags=[{"type": "keep", "name": "me"}])
    r = c.delete(f"/api/jobs/delete_job/{a}")
    assert r.status_code == 200 and r.json() == {"msg": f"Successfully deleted job {a}"}
    assert c.delete(f"/api/jobs/delete_job/{a}").status_code == 422
    assert c.delete("/api/jobs/delete_job/x").status_code == 400
    r = c.request("DELETE", "/api/jobs/delete_job/", json={"jobId": 22, "cluster": "fritz"})
    assert r.status_code == 200 and r.json()["msg"].startswith("Successfully deleted job ")
    assert c.request("DELETE", "/api/jobs/delete_job/", json={"jobId": 22}).status_code == 422
    assert c.request("DELETE", "/api/jobs/delete_job/", json={"cluster": "fritz"}).status_code == 400
    assert (
        c.delete("/api/jobs/delete_job_before/1800000000", params={"omit-tagged": "sometimes"}).status_code
        == 400
    )
    r = c.delete("/api/jobs/delete_job_before/1800000000", params={"omit-tagged": "all"})
    assert r.status_code == 200 and r.json() == {"msg": "Successfully deleted 0 jobs"}
    r = c.delete("/api/jobs/delete_job_before/1800000000")
    assert r.json() == {"msg": "Successfully deleted 1 jobs"}


def test_used_nodes_and_clusters(fresh: ApiSite) -> None:
    c = fresh.api()
    _start(
        fresh,
        job_id=31,
        start=1_700_000_000,
        resources=[{"hostname": "f0726"}, {"hostname": "f0727"}],
        numNodes=2,
    )
    r = c.get("/api/jobs/used_nodes", params={"ts": 1_800_000_000})
    assert r.status_code == 200 and r.json() == {"usedNodes": {"fritz": ["f0726", "f0727"]}}
    assert c.get("/api/jobs/used_nodes", params={"ts": 1}).json() == {"usedNodes": {}}
    assert c.get("/api/jobs/used_nodes").status_code == 400
    assert c.get("/api/jobs/used_nodes", params={"ts": "soon"}).status_code == 400
    r = c.get("/api/clusters/")
    assert r.status_code == 200
    assert sorted(x["name"] for x in r.json()["clusters"]) == ["alex", "emmy", "fritz"]
    r = c.get("/api/clusters/", params={"cluster": "fritz"})
    fritz = r.json()["clusters"][0]
    assert fritz["name"] == "fritz" and {s["name"] for s in fritz["subClusters"]} >= {"main"}
    assert all("metricConfig" in s for s in fritz["subClusters"])  # derived per subcluster (§3.5)
    assert c.get("/api/clusters/", params={"cluster": "nope"}).status_code == 400


def test_metric_data_endpoints(fresh: ApiSite) -> None:
    """``all-metrics`` and ``POST /api/jobs/{id}`` load through the dispatcher: never an empty 200."""
    c = fresh.api()
    db_id = _start(fresh, job_id=41, start=1_700_000_000)
    r = c.get(f"/api/jobs/{db_id}", params={"all-metrics": "true"})
    assert r.status_code in (200, 422, 503), r.text
    assert r.text
    if r.status_code == 200:
        assert isinstance(r.json()["Data"], dict)
    else:
        assert set(r.json()) == {"status", "error"}
    r = c.post(f"/api/jobs/{db_id}", json=["cpu_load", "mem_bw"])
    assert r.status_code in (200, 422, 503) and r.text
    if r.status_code == 200:
        assert set(r.json()) == {"Meta", "Data"} and isinstance(r.json()["Data"], list)
    assert c.post(f"/api/jobs/{db_id}", json={"cpu_load": 1}).status_code == 400
    # Through the GraphQL resolver and its access check (upstream): a pure API token is neither the
    # owner nor admin/support/manager, so it gets the resolver's refusal in the body.
    r = c.get(f"/api/jobs/metrics/{db_id}", params=[("metric", "cpu_load"), ("scope", "node")])
    assert r.status_code == 200
    assert r.json() == {"data": None, "error": {"message": "you are not allowed to see this job"}}
    r = fresh.api(["admin", "api"]).get(
        f"/api/jobs/metrics/{db_id}", params=[("metric", "cpu_load"), ("scope", "node")]
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "error"}
    assert (body["data"] is None) != (body["error"] is None)
    if body["error"] is None:
        assert isinstance(body["data"]["jobMetrics"], list)
    assert c.get(f"/api/jobs/metrics/{db_id}", params={"scope": "galaxy"}).status_code == 400
    r = c.get("/api/jobs/metrics/99999")
    assert r.status_code == 200 and r.json()["data"] is None and r.json()["error"]["message"]


def test_userapi_sees_only_own_jobs(fresh: ApiSite) -> None:
    _start(fresh, job_id=51, user="alice")
    bob = _start(fresh, job_id=52, user="bob")
    c = fresh.api(["user", "api"], username="bob")
    r = c.get("/userapi/jobs/")
    assert r.status_code == 200
    assert [j["id"] for j in r.json()["jobs"]] == [bob]
    assert c.get(f"/userapi/jobs/{bob}").status_code == 200
    alice_id = bob - 1
    assert c.get(f"/userapi/jobs/{alice_id}").status_code == 422  # not visible = not found
    # /userapi has no start_job: the path is the POST /userapi/jobs/{id} route with a non-integer id.
    assert c.post("/userapi/jobs/start_job/", json=start_payload(job_id=53)).status_code in (400, 404, 405)


def test_machine_state(tmp_path: Path) -> None:
    from .conftest import make_server

    site = make_server(tmp_path / "ms", main={"machine-state-dir": str(tmp_path / "ms-state")})
    try:
        c = site.api()
        r = c.put("/api/machine_state/fritz/f0726", content=b'{"cpus": 72}')
        assert r.status_code == 201
        assert (tmp_path / "ms-state" / "fritz" / "f0726.json").read_bytes() == b'{"cpus": 72}'
        assert c.post("/api/machine_state/fritz/f0726", content=b"{}").status_code == 201
        r = c.get("/api/machine_state/fritz/f0726")
        assert r.status_code == 200 and r.content == b"{}"
        assert c.get("/api/machine_state/fritz/nope").status_code == 404
        for bad in ("..", "a..b", "a%5Cb", "%2e%2e", "x%00y", "a" * 300):
            assert c.put(f"/api/machine_state/{bad}/h", content=b"{}").status_code in (400, 404), bad
            assert c.get(f"/api/machine_state/fritz/{bad}").status_code in (400, 404), bad
        assert not list(tmp_path.glob("*.json"))
    finally:
        site.stop()
    site = make_server(tmp_path / "nms")
    try:
        r = site.api().get("/api/machine_state/fritz/f0726")
        assert r.status_code == 404 and "not enabled" in r.json()["error"]
    finally:
        site.stop()


def test_rest_start_stop_are_off_when_nats_carries_job_events(tmp_path: Path) -> None:
    from .conftest import make_server

    site = make_server(
        tmp_path / "nats",
        main={"api-subjects": {"subject-job-event": "cc.job.event", "subject-node-state": "cc.node.state"}},
    )
    try:
        c = site.api()
        r = c.post("/api/jobs/start_job/", json=start_payload())
        assert r.status_code == 404 and "api-subjects" in r.json()["error"]
        assert c.post("/api/jobs/stop_job/", json={"jobId": 1, "stopTime": 2}).status_code == 404
        assert c.get("/api/jobs/").status_code == 200
    finally:
        site.stop()

"""Acceptance (issue 5): upstream's example payloads, a batch-system adapter's call sequence, and a token
minted by the ``clustercockpit jwt`` command, all against a real server over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ApiSite


def test_replay_upstream_start_and_stop_payloads(fresh: ApiSite, shared_reference: Path) -> None:
    start = (shared_reference / "configs" / "startJobPayload.json").read_bytes()
    stop = (shared_reference / "configs" / "stopJobPayload.json").read_bytes()
    c = fresh.api()
    headers = {"content-type": "application/json"}
    r = c.post("/api/jobs/start_job/", content=start, headers=headers)
    assert r.status_code == 201, r.text
    db_id = r.json()["id"]
    r = c.post("/api/jobs/stop_job/", content=stop, headers=headers)
    assert r.status_code == 200, r.text
    job = r.json()
    expected = json.loads(stop)
    assert job["id"] == db_id and job["jobState"] == "completed"
    assert job["duration"] == expected["stopTime"] - expected["startTime"]
    assert job["metaData"]["jobName"] == "ams_pipeline"


def test_adapter_sequence(fresh: ApiSite) -> None:
    """What cc-slurm-adapter does: sync running jobs, start new ones, stop finished ones, tag, edit meta."""
    c = fresh.api()

    def running() -> list[dict]:
        r = c.get(
            "/api/jobs/",
            params={"state": "running", "items-per-page": 1000, "page": 1, "with-metadata": "false"},
        )
        assert r.status_code == 200
        return r.json()["jobs"]

    assert running() == []
    ids = []
    for i in range(3):
        body = {
            "jobId": 500 + i,
            "user": "u1",
            "project": "p1",
            "cluster": "fritz",
            "partition": "singlenode",
            "numNodes": 1,
            "numHwthreads": 72,
            "resources": [{"hostname": f"f{726 + i:04d}", "hwthreads": list(range(72))}],
            "startTime": 1_700_000_000 + i,
            "submitTime": 1_699_999_000,
            "walltime": 3600,
            "metaData": {"jobName": f"job{i}", "slurmInfo": "JobId=..."},
        }
        r = c.post("/api/jobs/start_job/", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert sorted(j["id"] for j in running()) == sorted(ids)
    r = c.post(
        "/api/jobs/stop_job/",
        json={
            "jobId": 500,
            "cluster": "fritz",
            "startTime": 1_700_000_000,
            "jobState": "failed",
            "stopTime": 1_700_000_100,
        },
    )
    assert r.status_code == 200 and r.json()["jobState"] == "failed"
    assert sorted(j["id"] for j in running()) == sorted(ids[1:])
    r = c.post(f"/api/jobs/tag_job/{ids[1]}", json=[{"type": "slurm", "name": "requeued", "scope": "global"}])
    assert r.status_code == 200 and any(t["name"] == "requeued" for t in r.json()["tags"])
    r = c.patch(f"/api/jobs/edit_meta/{ids[2]}", json={"key": "jobScript", "value": "#!/bin/sh\nsrun x\n"})
    assert r.status_code == 200 and r.json()["metaData"]["jobScript"].startswith("#!/bin/sh")
    r = c.patch(
        "/api/jobs/edit_meta/",
        json={"jobId": 502, "cluster": "fritz", "payload": {"key": "comment", "value": "ok"}},
    )
    assert r.status_code == 200 and r.json()["metaData"]["comment"] == "ok"


def test_token_from_the_jwt_command_works_on_api(fresh: ApiSite) -> None:
    env = {**os.environ, **fresh.env}
    cfg = str(fresh.root / "config.json")

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "cc_core", "--config", cfg, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    cli("add-user", "adapter:api:")
    token = cli("jwt", "adapter")
    r = fresh.client(headers={"X-Auth-Token": token}).get("/api/jobs/")
    assert r.status_code == 200, r.text
    r = fresh.client(headers={"Authorization": f"Bearer {token}"}).get("/api/clusters/")
    assert r.status_code == 200

"""Bad input: every operation of our own OpenAPI spec fuzzed with schemathesis against the real server.

For each operation, bounded numbers of schema-conforming (positive) and schema-violating (negative)
requests, sent with an ``admin``+``api`` token and an admin session so that they reach the handlers.
Every answer must be below 500 (except the documented 503 of an endpoint whose dependency this host
lacks), must not contain a traceback, and a *rejected* request (4xx) must leave the job, tag and
job-tag tables exactly as they were. Oversized bodies are refused with 413 before anything happens.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from .conftest import ApiSite, make_server, start_payload

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 20}
# (method, path) → why a 503 is the honest answer on a test host.
ALLOWED_503 = {
    ("GET", "/frontend/logs"): "no journalctl in the test environment",
}
# Operations of other subsystems mounted in the same app (they have their own fuzzing).
OTHERS = ("/api/write", "/api/free", "/api/debug", "/api/healthcheck", "/api/nodestate")


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiSite]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    site = make_server(root / "site", dev=True, main={"machine-state-dir": str(root / "state")})
    site.services.db.users.add_sync("root", password="root-pw", roles=["admin"])
    api = site.api(["admin", "api"], "root")
    for i in range(3):
        r = api.post("/api/jobs/start_job/", json=start_payload(job_id=100 + i, start=1_700_000_000 + i))
        assert r.status_code == 201
    yield site
    site.stop()


def _snapshot(db: Path) -> str:
    """A digest of what a rejected request must not change (columns the archiver and the scheduled
    tasks update in the background — monitoring status, footprints, energy, the stored duration of
    running jobs — are left out)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        h = hashlib.sha256()
        for sql in (
            "SELECT id, job_id, cluster, start_time, job_state, CASE WHEN job_state = 'running' THEN NULL "
            "ELSE duration END, hpc_user, project, meta_data FROM job ORDER BY id",
            "SELECT job_id, tag_id FROM jobtag ORDER BY job_id, tag_id",
            "SELECT id, tag_type, tag_name, tag_scope FROM tag ORDER BY id",
        ):
            for row in conn.execute(sql):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        conn.close()


def test_openapi_documents_every_endpoint_with_bodies_and_security(fuzz_site: ApiSite) -> None:
    spec = fuzz_site.client().get("/swagger/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    for (method, path), op in ops.items():
        if path.startswith(OTHERS):
            continue
        assert op.get("security"), (method, path)
        assert "401" in op["responses"] and ("200" in op["responses"] or "201" in op["responses"]), (
            method,
            path,
        )
        assert op.get("description") or op.get("summary"), (method, path)
    for method, path in [
        ("POST", "/api/jobs/start_job"),
        ("PUT", "/api/jobs/stop_job"),
        ("POST", "/api/jobs/tag_job/{id}"),
        ("PATCH", "/api/jobs/edit_meta"),
        ("POST", "/config/users"),
        ("POST", "/frontend/configuration"),
    ]:
        assert "requestBody" in ops[(method, path)], (method, path)
    job = ops[("POST", "/api/jobs/start_job")]["requestBody"]["content"]["application/json"]["schema"]
    assert job["additionalProperties"] is False and {"jobId", "cluster", "resources"} <= set(
        job["properties"]
    )
    assert set(spec["components"]["securitySchemes"]) == {"ApiKeyAuth", "BearerAuth", "SessionCookie"}
    assert len([k for k in ops if not k[1].startswith(OTHERS)]) >= 40
    # The Swagger UI is served from our own files (dev mode only).
    page = fuzz_site.client().get("/swagger/")
    assert (
        page.status_code == 200
        and "/static/vendor/swagger-ui/" in page.text
        and "cdn" not in page.text.lower()
    )


def test_swagger_only_in_dev_mode(server: ApiSite) -> None:
    assert server.client().get("/swagger/openapi.json").status_code == 404


def test_fuzz_every_operation(fuzz_site: ApiSite) -> None:
    spec = fuzz_site.client().get("/swagger/openapi.json").json()
    spec["paths"] = {p: item for p, item in spec["paths"].items() if not p.startswith(OTHERS)}
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    headers = {"X-Auth-Token": fuzz_site.token(["admin", "api"], "root")}
    cookies = {"session": fuzz_site.session(["admin"], "root")}
    failures: list[str] = []
    calls = 0

    def fuzz(operation: Any, mode: GenerationMode, n: int) -> None:
        key = (operation.method.upper(), operation.path)

        @settings(
            max_examples=n,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            nonlocal calls
            before = _snapshot(fuzz_site.db_path)
            response = case.call(
                base_url=fuzz_site.base_url, session=session, headers=headers, cookies=cookies, timeout=30
            )
            calls += 1
            status = response.status_code
            text = response.text
            where = f"{key[0]} {key[1]} ({mode.value}) {case.path_parameters} {case.query} body={str(case.body)[:200]!r}"
            if status >= 500 and not (status == 503 and key in ALLOWED_503):
                failures.append(f"{status} {where}: {text[:300]}")
            if "Traceback" in text or 'File "/' in text:
                failures.append(f"traceback in {where}")
            if 400 <= status < 500 and _snapshot(fuzz_site.db_path) != before:
                failures.append(f"{status} but the job tables changed: {where}")

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, n in EXAMPLES.items():
            fuzz(operation, mode, n)

    assert calls > 500, calls
    assert not failures, "\n".join(failures[:30])


def test_oversized_bodies_are_413_and_change_nothing(tmp_path: Path) -> None:
    site = make_server(tmp_path / "small", main={"max-body-size": 4096})
    try:
        before = _snapshot(site.db_path)
        big = start_payload(metaData={"jobScript": "x" * 10_000})
        c = site.api()
        r = c.post("/api/jobs/start_job/", json=big)
        assert r.status_code == 413 and r.json()["status"] == "Request Entity Too Large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
            yield b'{"jobId": 1, "metaData": {"x": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}}'

        r = c.post("/api/jobs/start_job/", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.put("/api/machine_state/fritz/h", content=b"z" * 5000).status_code in (404, 413)
        assert _snapshot(site.db_path) == before
        assert c.post("/api/jobs/start_job/", json=start_payload()).status_code == 201
    finally:
        site.stop()

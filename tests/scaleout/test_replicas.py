"""Acceptance (issue 12): two ``clustercockpit serve`` replicas on one PostgreSQL database, one moto S3
archive, one nats-server and one standalone metric store for the cluster (``clustercockpit metric-store
serve``, reached by both replicas as ``metric-store-external``); start/stop traffic at both for 30 s,
one replica killed in the middle. Every job is present once, every stopped job archived once (one
meta.json per job in S3, one "archived job" log line) with statistics from the shared store's data, no
5xx, and a login session made at one replica is valid at the other."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import create_engine, text

from cc_core.archive.codec import decode_data, decode_meta
from cc_core.db import Database
from cc_core.schema.cluster import encode_cluster
from cc_core.testing import free_port, wait_for
from cc_core.testing.metric_contract import CLUSTER, METRIC_NAMES, MetricDataset, make_cluster
from cc_core.testing.site import Site, make_site

TRAFFIC_S = 30.0
KILL_AT_S = 15.0
PAUSE_S = 0.1  # per start/stop pair and client: a steady batch-system rate, not a flood


class Replica:
    """``clustercockpit serve`` (or, with ``command``, ``metric-store serve``) on a free port."""

    def __init__(
        self,
        site: Site,
        name: str,
        log: Path,
        *,
        command: tuple[str, ...] = ("serve",),
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = site.spawn(
            *command,
            "--addr",
            f"127.0.0.1:{self.port}",
            log=log,
            env={"CC_ARCHIVE_CLAIM_TTL": "3", "CC_ARCHIVE_SWEEP_INTERVAL": "1", **(env or {})},
        )

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what=f"replica {self.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.mark.slow  # ~75 s on a busy 2-core machine: 3 server start-ups + 30 s of traffic
@pytest.mark.service("s3")
@pytest.mark.service("nats")
def test_two_replicas_under_traffic_one_killed(
    tmp_path: Path, postgresql_url: str, s3_server: Any, s3_bucket: str, nats_server: Any
) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="version.txt", Body=b"3\n")
    s3.put_object(Bucket=s3_bucket, Key=f"{CLUSTER}/cluster.json", Body=encode_cluster(make_cluster()))
    archive = {
        "kind": "s3",
        "bucket": s3_bucket,
        "endpoint": s3_server.endpoint,
        "access-key": s3_server.access_key,
        "secret-key": s3_server.secret_key,
        "usePathStyle": True,
    }
    # One standalone metric store for the site's one cluster: its own site directory, key pair (so its
    # own tokens) and checkpoints; it reads cluster.json from its own file archive.
    store_site = make_site(tmp_path / "store", [make_cluster()])
    store_token = store_site.token(("api",), username="replicas")
    external = [
        {"kind": "cc-metric-store", "scope": CLUSTER, "url": "", "token": {"$env": "CC_TEST_STORE_TOKEN"}}
    ]
    store = Replica(store_site, "store", tmp_path / "store.log", command=("metric-store", "serve"))
    try:
        store.wait_ready()
        external[0]["url"] = store.url
        a = make_site(
            tmp_path / "a",
            [make_cluster()],
            config={
                "main": {"db": postgresql_url},
                "nats": {"address": nats_server.url},
                "metric-store": None,  # no embedded store: every replica asks the cluster's store
                "metric-store-external": external,
            },
        )
        doc = json.loads(a.config_path.read_text())
        doc["archive"] = archive  # replaces the file archive of make_site (its keys would not merge)
        a.config_path.write_text(json.dumps(doc))
        # Replica b: the same config file and secrets (.env) as a load balancer's replicas have.
        b = Site(a.root, a.public_key, a.private_key)
        with Database(postgresql_url) as db:  # the schema, and a local user for the session check
            db.users.add_sync("alice", password="pw-alice", roles=["user"])

        env = {"CC_TEST_STORE_TOKEN": store_token}
        ra = Replica(a, "a", tmp_path / "a.log", env=env)
        rb = Replica(b, "b", tmp_path / "b.log", env=env)
        try:
            ra.wait_ready()
            rb.wait_ready()
            _scenario(a, ra, rb, postgresql_url, s3, s3_bucket, store, store_token)
        finally:
            ra.stop()
            rb.stop()
    finally:
        store.stop()


def _scenario(
    site: Site, ra: Replica, rb: Replica, pg_url: str, s3: Any, bucket: str, store: Replica, store_token: str
) -> None:
    auth = {"Authorization": f"Bearer {site.token(('api',))}"}
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix="rep")
    # The samples go to the cluster's store once; whichever replica archives a job reads them there.
    resp = httpx.post(
        f"{store.url}/api/write",
        content=ds.line_protocol(),
        headers={"Authorization": f"Bearer {store_token}"},
        trust_env=False,
    )
    assert resp.status_code == 200, resp.text
    # The store is the replicas' only metric backend: a replica's own /api/write has no store behind it.
    assert httpx.post(f"{ra.url}/api/write", content=b"", headers=auth, trust_env=False).status_code != 200

    # Sessions: log in at a, use the cookie at b.
    login = httpx.post(f"{ra.url}/login", data={"username": "alice", "password": "pw-alice"}, trust_env=False)
    assert login.status_code == 302 and "session" in login.cookies
    anon = httpx.get(f"{rb.url}/", trust_env=False)
    assert anon.status_code != 200
    with_cookie = httpx.get(f"{rb.url}/", cookies={"session": login.cookies["session"]}, trust_env=False)
    assert with_cookie.status_code == 200

    statuses: list[tuple[str, str, int]] = []  # (replica, call, status)
    transport_errors: list[tuple[str, str, float]] = []
    started: list[int] = []
    stopped: list[int] = []
    lock = threading.Lock()
    counter = iter(range(10_000, 1_000_000))
    killed_at: list[float] = []
    stop_flag = threading.Event()

    def worker(first: Replica, second: Replica) -> None:
        with httpx.Client(headers=auth, trust_env=False, timeout=10) as c:
            while not stop_flag.is_set():
                with lock:
                    job_id = next(counter)
                # Start at one replica, stop at the other (a load balancer spreads calls).
                for call, target in (("start", first), ("stop", second)):
                    target = ra if killed_at and target is rb else target
                    if call == "start":
                        body = ds.job(id=None, job_id=job_id, job_state="running", duration=0)
                        payload = json.loads(msgspec.json.encode(body))
                        for k in ("id", "duration", "monitoringStatus", "jobState"):
                            payload.pop(k, None)
                        path = "/api/jobs/start_job/"
                    else:
                        payload = {
                            "jobId": job_id,
                            "cluster": CLUSTER,
                            "startTime": ds.t0,
                            "jobState": "completed",
                            "stopTime": ds.stop,
                        }
                        path = "/api/jobs/stop_job/"
                    try:
                        r = c.post(f"{target.url}{path}", json=payload)
                    except httpx.TransportError:
                        with lock:
                            transport_errors.append((target.name, call, time.monotonic()))
                        break
                    with lock:
                        statuses.append((target.name, call, r.status_code))
                        if call == "start" and r.status_code == 201:
                            started.append(job_id)
                        elif call == "stop" and r.status_code == 200:
                            stopped.append(job_id)
                    if r.status_code >= 300:
                        break
                stop_flag.wait(PAUSE_S)

    threads = [threading.Thread(target=worker, args=(ra, rb)), threading.Thread(target=worker, args=(rb, ra))]
    for t in threads:
        t.start()
    time.sleep(KILL_AT_S)
    rb.proc.send_signal(signal.SIGKILL)
    killed_at.append(time.monotonic())
    rb.proc.wait(10)
    time.sleep(TRAFFIC_S - KILL_AT_S)
    stop_flag.set()
    for t in threads:
        t.join(30)

    assert len(started) > 20 and len(stopped) > 20, (len(started), len(stopped))
    assert [s for s in statuses if s[2] >= 500] == []
    # Transport errors only from b, only around the kill (its in-flight requests).
    assert all(name == "b" for name, _, _ in transport_errors), transport_errors
    assert len(transport_errors) <= 2

    engine = create_engine(pg_url)
    try:

        def archived_counts() -> tuple[int, int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT job_id, monitoring_status FROM job WHERE job_state <> 'running'")
                ).all()
            return len(rows), sum(1 for r in rows if r.monitoring_status == 3)

        # Every stopped job gets archived, b's leftovers by a after their claims expired.
        wait_for(lambda: (lambda n, done: n == done)(*archived_counts()), timeout=120, what="archiving")
        with engine.connect() as conn:
            per_job = conn.execute(text("SELECT job_id, COUNT(*) FROM job GROUP BY job_id")).all()
            stopped_db = {
                r[0] for r in conn.execute(text("SELECT job_id FROM job WHERE job_state <> 'running'"))
            }
            claims = conn.execute(text("SELECT COUNT(*) FROM cc_archive_claim")).scalar_one()
    finally:
        engine.dispose()
    assert all(n == 1 for _, n in per_job)
    assert {j for j, _ in per_job} >= set(started)
    assert stopped_db >= set(stopped)
    assert claims == 0

    keys = [
        o["Key"]
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in p.get("Contents", [])
    ]
    metas = Counter(k.rsplit("/", 1)[0] for k in keys if k.endswith("/meta.json"))
    assert len(metas) == len(stopped_db) and set(metas.values()) == {1}
    _check_archived_statistics(s3, bucket, keys, sorted(metas)[:: max(1, len(metas) // 5)], ds)

    logged = Counter(
        m.group(1)
        for log in (ra.log, rb.log)
        for m in re.finditer(r"archived job (\d+) \(id", log.read_text())
    )
    assert set(logged) == {str(j) for j in stopped_db}
    assert set(logged.values()) == {1}, [j for j, n in logged.items() if n > 1]


def _check_archived_statistics(
    s3: Any, bucket: str, keys: list[str], dirs: list[str], ds: MetricDataset
) -> None:
    """The archived statistics (meta.json) and series (data.json) of jobs in ``dirs`` are the samples
    written to the standalone store: the archiving replica read them there."""
    want = {}
    for metric in METRIC_NAMES:
        nodes = [ds.node(metric, h) for h in range(2)]
        want[metric] = (
            sum(float(n.mean()) for n in nodes) / 2,
            min(float(n.min()) for n in nodes),
            max(float(n.max()) for n in nodes),
        )
    assert dirs
    for d in dirs:
        meta = decode_meta(s3.get_object(Bucket=bucket, Key=f"{d}/meta.json")["Body"].read(), d)
        assert meta.monitoring_status == 3
        assert set(meta.statistics or {}) == set(METRIC_NAMES), (d, meta.statistics)
        for metric, (avg, lo, hi) in want.items():
            st = meta.statistics[metric]
            got = (st.avg, st.min, st.max)
            assert all(
                math.isclose(g, w, rel_tol=0.02, abs_tol=0.02)
                for g, w in zip(got, (avg, lo, hi), strict=True)
            ), (
                d,
                metric,
                got,
                (avg, lo, hi),
            )
        data_key = next(k for k in keys if k.startswith(f"{d}/data.json"))
        data = decode_data(
            s3.get_object(Bucket=bucket, Key=data_key)["Body"].read(),
            data_key,
            compressed=data_key.endswith(".gz"),
        )
        node = data["cpu_load"]["node"]
        assert sorted(s.hostname for s in node.series) == ds.hosts
        for s in node.series:
            h = ds.hosts.index(s.hostname)
            assert len(s.data) >= ds.points - 1
            assert [float(v) for v in s.data[: ds.points - 1]] == ds.native("cpu_load", h)[
                : ds.points - 1
            ].tolist()

"""The site of the GraphQL end-to-end tests: a real server process's app on a real database and archive.

* archive: `cc_core.archive.generate` (three synthetic clusters, finished jobs with per-metric
  statistics and tags of every scope) plus upstream's reference cluster ``emmy`` with its two jobs (one
  with ``data.json.gz``), imported with init-db (footprints and energy computed from the statistics);
* running jobs: started through the job repository, with metric samples written to the embedded metric
  store through ``POST /api/write`` (node scope, one value per host and minute, known here);
* node states for some hosts, users with names, a manager with projects.

Expected values in the tests come from raw ``sqlite3`` queries on the same ``job.db`` file or from the
samples defined here, never from the code under test.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from litestar.testing import TestClient

from cc_core.auth.session import SessionCodec, decode_session_key
from cc_core.auth.user import AuthSource, User
from cc_core.testing.site import Site

ARCHIVE_JOBS = 240
REFERENCE_ARCHIVE = Path(__file__).resolve().parent.parent / "fixtures" / "job-archive"
STEP = 60
POINTS = 20
LIVE_METRICS = ("cpu_load", "mem_used", "flops_any", "mem_bw")


@dataclass
class Identity:
    """Who sends a request: a session (roles, projects) or an API token, or nobody."""

    name: str
    username: str
    roles: list[str]
    projects: list[str] = field(default_factory=list)
    token: bool = False


@dataclass
class E2E:
    client: TestClient[Any]
    site: Site
    db_path: Path
    now: int
    ids: dict[str, Identity]
    running: list[dict[str, Any]]  # job rows (id, hosts, user, project) of the running jobs
    samples: dict[tuple[str, str], np.ndarray]  # (host, metric) → the values written
    t0: int
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.client.app.state["services"]

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.client.blocking_portal.call(run)

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    def headers(self, who: str) -> dict[str, str]:
        if who not in self._headers:
            ident = self.ids[who]
            h = {"content-type": "application/json"}
            if ident.token:
                h["X-Auth-Token"] = self.site.token(ident.roles, ident.username)
            elif ident.roles:
                codec = SessionCodec(decode_session_key(self.site.environ["SESSION_KEY"]), 3600)
                user = User(
                    ident.username, roles=ident.roles, projects=ident.projects, auth_source=AuthSource.LOCAL
                )
                h["cookie"] = f"session={codec.encode(user)}"
            self._headers[who] = h
        return self._headers[who]

    def post(self, who: str, query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any]:
        body = msgspec.json.encode({"query": query, "variables": variables or {}})
        r = self.client.post("/query", content=body, headers=self.headers(who))
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def data(self, who: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The ``data`` of a query that must succeed."""
        status, body = self.post(who, query, variables)
        assert status == 200 and "errors" not in body, (who, status, body)
        return body["data"]

    def error(self, who: str, query: str, variables: dict[str, Any] | None = None) -> str:
        """The first error message of a query that must fail as a GraphQL error (not an HTTP 500)."""
        status, body = self.post(who, query, variables)
        assert status in (200, 400, 422), (who, status, body)
        assert isinstance(body, dict) and body.get("errors"), (who, status, body)
        assert "Traceback" not in str(body)
        return str(body["errors"][0]["message"])

    # ------------------------------------------------------------------ visibility, in SQL

    def visible(self, who: str) -> tuple[str, list[Any]]:
        """Contract §6.2 as a SQL condition on ``job``: (text, parameters)."""
        ident = self.ids[who]
        roles = set(ident.roles)
        if roles & {"admin", "support"} or ident.roles == ["api"]:
            return "1=1", []
        if "manager" in roles and ident.projects:
            marks = ",".join("?" * len(ident.projects))
            return f"(project IN ({marks}) OR hpc_user = ?)", [*ident.projects, ident.username]
        return "hpc_user = ?", [ident.username]


def _value(host_index: int, metric_index: int, k: np.ndarray) -> np.ndarray:
    return (10.0 * (host_index + 1) + 3.0 * metric_index + (k % 5)).astype(np.float64)


def build(root: Path) -> tuple[Site, Path]:
    """Write the site (archive, config) and import the archive into the database."""
    from cc_archive_fs.backend import FsArchive, FsArchiveConfig

    from cc_core.archive.generate import archive_jobs, cluster_config, write_archive_meta
    from cc_core.db import Database
    from cc_core.db.generate import CLUSTERS
    from cc_core.importer import init_db_sync
    from cc_core.testing.site import make_site

    clusters = [cluster_config(s) for s in CLUSTERS]
    # one restricted metric (hidden from plain users and managers in `globalMetrics`)
    clusters = [
        msgspec.structs.replace(
            c,
            metric_config=[
                msgspec.structs.replace(m, restrict=True) if (c.name, m.name) == ("woody", "cpu_user") else m
                for m in c.metric_config
            ],
        )
        for c in clusters
    ]
    site = make_site(root, clusters, config={"main": {"short-running-jobs-duration": 300}})
    archive = root / "var" / "job-archive"
    write_archive_meta(archive, archive_jobs(ARCHIVE_JOBS, seed=11), clusters)
    # upstream's reference cluster emmy with its two jobs (one with data.json.gz, one without)
    shutil.copytree(REFERENCE_ARCHIVE / "emmy", archive / "emmy")
    db_path = root / "var" / "job.db"
    db = Database(str(db_path))
    try:
        report = init_db_sync(db, FsArchive(FsArchiveConfig(path=str(archive))))
        assert report.imported == ARCHIVE_JOBS + 2, report
    finally:
        db.close_sync()
    return site, db_path


def open_e2e(root: Path) -> tuple[TestClient[Any], E2E]:
    from cc_core.app import create_app
    from cc_core.db.nodes import NodeStateUpdate
    from cc_core.plugins import make_plugin_manager
    from cc_core.schema.job import Job, Resource

    site, db_path = build(root)
    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "metric-ccms,archive-fs"})
    client = TestClient(create_app(site.config(), registry=registry), raise_server_exceptions=False)
    client.__enter__()
    now = int(time.time())
    t0 = (now - POINTS * STEP) // STEP * STEP
    e2e = E2E(client, site, db_path, now, {}, [], {}, t0)

    # Who asks: the most active archive user, a manager of two other projects, staff, machines.
    (top_user,) = e2e.sql(
        "SELECT hpc_user FROM job GROUP BY hpc_user ORDER BY COUNT(*) DESC, hpc_user LIMIT 1"
    )[0]
    projects = [
        p
        for (p,) in e2e.sql(
            "SELECT project FROM job WHERE hpc_user != ? GROUP BY project ORDER BY COUNT(*) DESC, project LIMIT 2",
            (top_user,),
        )
    ]
    e2e.ids = {
        "anonymous": Identity("anonymous", "", []),
        "user": Identity("user", top_user, ["user"]),
        "manager": Identity("manager", "boss", ["manager"], projects),
        "support": Identity("support", "helpdesk", ["support"]),
        "admin": Identity("admin", "root1", ["admin"]),
        "api": Identity("api", "machine", ["api"], token=True),
    }
    users = e2e.services.db.users
    for name in {j for (j,) in e2e.sql("SELECT DISTINCT hpc_user FROM job")} | {"boss", "helpdesk", "root1"}:
        users.add_sync(name, roles=["user"], name=f"Name of {name}", email=f"{name}@example.org")

    # Running jobs on fritz (hosts f0900…): two of the user, one in a managed project, two others.
    owners = [
        (top_user, "p-own"),
        (top_user, "p-own"),
        ("other1", projects[0]),
        ("other2", "p-x"),
        ("other3", "p-y"),
    ]
    jobs = e2e.services.db.jobs
    for i, (owner, project) in enumerate(owners):
        hosts = [f"f{900 + 2 * i:04d}", f"f{901 + 2 * i:04d}"] if i % 2 == 0 else [f"f{900 + 2 * i:04d}"]
        job = Job(
            job_id=5_000_000 + i,
            user=owner,
            project=project,
            cluster="fritz",
            sub_cluster="spr1tb",
            partition="spr1tb",
            start_time=t0,
            submit_time=t0 - 60,
            num_nodes=len(hosts),
            num_hwthreads=72 * len(hosts),
            num_acc=0,
            shared="none",
            walltime=86400,
            job_state="running",
            resources=[Resource(hostname=h) for h in hosts],
            meta_data={"jobName": "live" if i else "interactive"},
        )
        stored = e2e.call(jobs.start, job)
        e2e.running.append({"id": stored.id, "hosts": hosts, "user": owner, "project": project})

    k = np.arange(POINTS)
    lines = []
    for job in e2e.running:
        for host in job["hosts"]:
            hi = int(host[1:]) - 900
            for mi, metric in enumerate(LIVE_METRICS):
                values = _value(hi, mi, k)
                # Native scope of the synthetic clusters: flops_any per hwthread (72), mem_bw per socket
                # (2); the node value is their sum, exact for these integer values.
                children = {"flops_any": ("hwthread", 72), "mem_bw": ("socket", 2)}.get(metric)
                e2e.samples[(host, metric)] = values * (children[1] if children else 1)
                for j, v in enumerate(values.tolist()):
                    if children is None:
                        lines.append(f"{metric},cluster=fritz,hostname={host} value={v!r} {t0 + STEP * j}")
                    else:
                        kind, count = children
                        lines.extend(
                            f"{metric},cluster=fritz,hostname={host},type={kind},type-id={c} value={v!r} "
                            f"{t0 + STEP * j}"
                            for c in range(count)
                        )
    r = client.post(
        "/api/write", content="\n".join(lines), headers={"Authorization": f"Bearer {site.token(['api'])}"}
    )
    assert r.status_code == 200, r.text

    # Node states: hosts of the running jobs allocated, two idle ones, one down.
    updates = [
        NodeStateUpdate(hostname=h, state="allocated", subcluster="spr1tb")
        for j in e2e.running
        for h in j["hosts"]
    ]
    updates += [
        NodeStateUpdate(hostname="f0950", state="idle", subcluster="spr1tb"),
        NodeStateUpdate(hostname="f0951", state="idle", subcluster="spr1tb", health_state="partial"),
        NodeStateUpdate(hostname="f0952", state="down", subcluster="spr1tb", health_state="failed"),
    ]
    e2e.call(e2e.services.db.nodes.update_states, "fritz", updates, time_stamp=now - 120)
    return client, e2e

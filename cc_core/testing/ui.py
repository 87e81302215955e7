"""Web UI test support: a live server over a site with finished jobs that have metric data, and a
Playwright page logged in as a given role that records console errors and failed requests.

`make_ui_site(root)` writes a file job archive (synthetic ``fritz`` cluster of
`cc_core.archive.generate`, a few jobs with ``meta.json`` *and* ``data.json``), imports it with init-db
(the real import path: footprints and energy come from the archived statistics), and serves the app with
uvicorn on a free 127.0.0.1 port in a thread. One job carries stored-XSS probes in its job name, job
script, message and a tag. Resampling is configured (``resolutions: [240, 60]``, 720-point series), so
zooming a plot has a finer resolution to ask for.

``UISite.page(browser, role)`` gives a page whose ``problems`` list collects console errors, page errors
and failed or 5xx requests; `assert_clean(page)` fails the test with them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

XSS = "<script>window.__xss=1</script><img src=x onerror=window.__xss=1>"
SESSION_KEY = base64.b64encode(b"u" * 32).decode()
ROLE_USERS: dict[str, tuple[str, list[str]]] = {
    "user": ("ui-user", ["user"]),
    "manager": ("ui-manager", ["manager"]),
    "support": ("ui-support", ["support"]),
    "admin": ("ui-admin", ["admin"]),
}
N_JOBS = 6
POINTS = 720  # 12 h at 60 s


@dataclass
class UISite:
    root: Path
    base_url: str
    app: Any
    server: Any
    thread: Any
    jobs: list[Any] = field(default_factory=list)  # as imported: id, jobId, user, …
    xss_job: int = 0  # database id of the job with the XSS probes

    def session_cookie(self, role: str) -> dict[str, Any]:
        from cc_core.auth.session import SessionCodec, decode_session_key
        from cc_core.auth.user import AuthSource, User

        username, roles = ROLE_USERS[role]
        codec = SessionCodec(decode_session_key(SESSION_KEY), 3600)
        value = codec.encode(
            User(username, roles=roles, projects=["ui-project"], auth_source=AuthSource.LOCAL)
        )
        return {"name": "session", "value": value, "url": self.base_url}

    def page(self, browser: Any, role: str, *, width: int = 1400, height: int = 1000) -> Any:
        """A new context + page with ``role``'s session; ``page.problems`` collects errors."""
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies([self.session_cookie(role)])
        page = context.new_page()
        problems: list[str] = []
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # A request the browser itself cancelled (ERR_ABORTED: navigating away while the list's plot
        # data is still loading, a superseded fetch) says nothing about the server; anything else does.
        page.on(
            "requestfailed",
            lambda r: (
                problems.append(f"failed request: {r.url} {r.failure}")
                if r.failure != "net::ERR_ABORTED"
                else None
            ),
        )
        page.on(
            "response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 500 else None
        )
        page.problems = problems  # type: ignore[attr-defined]
        return page

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def assert_clean(page: Any) -> None:
    problems = getattr(page, "problems", [])
    assert not problems, "page problems:\n" + "\n".join(problems)


def _series(rng: np.random.Generator, level: float, *, gap: bool) -> list[float | None]:
    t = np.linspace(0, 6 * np.pi, POINTS)
    values = level * (0.6 + 0.3 * np.sin(t + rng.uniform(0, 3)) + 0.1 * rng.random(POINTS))
    out: list[float | None] = [round(float(v), 3) for v in values]
    if gap:
        for i in range(300, 330):
            out[i] = None
    return out


def _job_data(job: Any, cluster: Any, rng: np.random.Generator) -> dict[str, Any]:
    """data.json: every metric at node scope, mem_bw and cpu_power also per socket."""
    out: dict[str, Any] = {}
    for mc in cluster.metric_config:
        scoped: dict[str, Any] = {}
        # Around the archived average (the series' mean is 0.65 × level), so the footprint that init-db
        # computes from meta.json matches what the plots show.
        stat = (job.statistics or {}).get(mc.name)
        level = (stat.avg / 0.65) if stat and stat.avg else (mc.peak or 100) * 0.4
        scopes = ["node", "socket"] if mc.name in ("mem_bw", "cpu_power") else ["node"]
        for scope in scopes:
            series = []
            for r in job.resources:
                ids = [None] if scope == "node" else ["0", "1"]
                for sid in ids:
                    data = _series(
                        rng,
                        level / (1 if scope == "node" else 2),
                        gap=r.hostname == job.resources[0].hostname and mc.name == "cpu_load",
                    )
                    valid = [v for v in data if v is not None]
                    entry: dict[str, Any] = {
                        "hostname": r.hostname,
                        "statistics": {"min": min(valid), "avg": sum(valid) / len(valid), "max": max(valid)},
                        "data": data,
                    }
                    if sid is not None:
                        entry["id"] = sid
                    series.append(entry)
            scoped[scope] = {
                "unit": {"base": mc.unit.base, **({"prefix": mc.unit.prefix} if mc.unit.prefix else {})},
                "timestep": 60,
                "series": series,
            }
        out[mc.name] = scoped
    return out


#: Node-scope metrics `make_ui_site(extra_metrics=n)` adds to the cluster (the first n).
EXTRA_METRICS = ("ipc", "clock", "net_bw", "file_bw", "mem_power", "gpu_util", "nv_temp")


def make_ui_site(root: Path, *, extra_jobs: int = 0, extra_metrics: int = 0) -> UISite:
    """The site, served. ``extra_jobs``: that many more generated jobs (meta only, no metric data) are
    bulk-inserted into the database, for benchmarks of big lists. ``extra_metrics``: that many more
    node-scope metrics (of `EXTRA_METRICS`) in the cluster and the archived jobs' data, so the job view
    plots more (the issue's "job view with 10 plots")."""
    import uvicorn

    from cc_core.app import create_app
    from cc_core.archive.generate import archive_jobs, cluster_config, write_archive_meta
    from cc_core.archive.layout import job_dir
    from cc_core.config import load_config
    from cc_core.db import initialise_database
    from cc_core.db.generate import CLUSTERS
    from cc_core.plugins import make_plugin_manager
    from cc_core.schema.job import Resource, Tag
    from cc_core.testing import free_port

    root.mkdir(parents=True, exist_ok=True)
    archive = root / "archive"
    shape = next(c for c in CLUSTERS if c.name == "fritz")
    cluster = cluster_config(shape)
    if extra_metrics:
        template = next(m for m in cluster.metric_config if m.scope == "node")
        added = [
            msgspec.structs.replace(template, name=name, footprint="", energy="")
            for name in EXTRA_METRICS[:extra_metrics]
        ]
        cluster = msgspec.structs.replace(cluster, metric_config=[*cluster.metric_config, *added])
    now = int(time.time())
    candidates = [j for j in archive_jobs(200, seed=7, now=now) if j.cluster == "fritz"]
    jobs = []
    for i, job in enumerate(candidates[:N_JOBS]):
        # Jobs alternate between one and two nodes; the last has ten (plots show a min/mean/max band).
        n_nodes = 10 if i == N_JOBS - 1 else 1 + (i % 2)
        nodes = [Resource(hostname=f"f{k:04d}") for k in range(n_nodes)]
        meta = {"jobName": f"ui-job-{i}", "jobScript": "#!/bin/bash\nsrun ./app\n"}
        tags = [Tag(type="ui", name="demo")]
        if i == 0:
            meta = {
                "jobName": f"xss {XSS}",
                "jobScript": f"#!/bin/bash\necho '{XSS}'\n",
                "message": f"tagger says {XSS}",
                "slurmInfo": "JobId=1",
            }
            tags = [Tag(type="probe", name=XSS)]
        jobs.append(
            msgspec.structs.replace(
                job,
                user="ui-user" if i < 4 else "someone-else",
                project="ui-project",
                start_time=now - 86400 + i * 600,
                duration=POINTS * 60,
                num_nodes=len(nodes),
                num_hwthreads=72 * len(nodes),
                num_acc=0,
                resources=nodes,
                sub_cluster=cluster.sub_clusters[0].name,
                partition="main",
                meta_data=meta,
                tags=tags,
                # Two jobs share their nodes: the job view lists their concurrent jobs.
                shared="multi_user" if i in (1, 2) else "none",
            )
        )
    write_archive_meta(archive, jobs, [cluster])
    rng = np.random.default_rng(3)
    for job in jobs:
        doc = json.dumps(_job_data(job, cluster, rng), separators=(",", ":")).encode()
        (archive / job_dir(job.cluster, job.job_id, job.start_time) / "data.json").write_bytes(doc)

    db_path = root / "job.db"
    cfg = {
        "main": {
            "db": str(db_path),
            "emission-constant": 317,
            "resampling": {"minimum-points": 100, "trigger": 30, "resolutions": [240, 60]},
        },
        "auth": {"jwts": {"max-age": "1h"}},
        "archive": {"kind": "file", "path": str(archive)},
    }
    (root / "config.json").write_text(json.dumps(cfg))
    from cc_core.cli.keys import generate_keypair

    pub, priv = generate_keypair()
    environ = {"JWT_PUBLIC_KEY": pub, "JWT_PRIVATE_KEY": priv, "SESSION_KEY": SESSION_KEY}
    initialise_database(db_path)
    config = load_config(root / "config.json", environ=environ)
    _import(config)
    if extra_jobs:
        _bulk(config, extra_jobs, now - 86400 - 3600)
    app = create_app(config, registry=make_plugin_manager(environ={}))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("UI test server did not start")
        time.sleep(0.02)
    site = UISite(root, f"http://127.0.0.1:{port}", app, server, thread)
    _live(site, priv, cluster, now)
    from cc_core.db.jobs import SYSTEM_USER

    page = app.state["services"].db.jobs.list_sync(SYSTEM_USER)
    site.jobs = sorted(page.items, key=lambda j: j.start_time)
    site.xss_job = next(j.id for j in site.jobs if j.start_time == jobs[0].start_time)
    return site


#: Running jobs of the live part: (job id, hosts). Their nodes get two hours of samples in the
#: embedded metric store and the state "allocated"; a few idle/down nodes get states only.
RUNNING = ((2_000_001, ("f0100", "f0101")), (2_000_002, ("f0102",)))
IDLE_NODES = {"f0000": "idle", "f0001": "idle", "f0002": "mixed", "f0003": "down"}
LIVE_SECONDS = 2 * 3600


def _live(site: UISite, private_key: str, cluster: Any, now: int) -> None:
    """Running jobs, metric samples and node states, sent as a real site gets them: ``start_job``,
    ``POST /api/write`` (line protocol) and ``POST /api/nodestate/`` with an API token."""
    import httpx

    from cc_core.auth.jwt_tokens import load_private_key, mint

    token = mint(load_private_key(private_key), "ui-api", ["api"], max_age_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    start = now - LIVE_SECONDS
    sub = cluster.sub_clusters[0].name
    with httpx.Client(base_url=site.base_url, headers=headers, timeout=60) as client:
        for job_id, hosts in RUNNING:
            body = {
                "cluster": cluster.name,
                "subCluster": sub,
                "partition": "main",
                "jobId": job_id,
                "jobState": "running",
                "user": "runner",
                "project": "ui-running" if job_id % 2 else "ui-other",
                "numNodes": len(hosts),
                "numHwthreads": 72 * len(hosts),
                "numAcc": 0,
                "resources": [{"hostname": h} for h in hosts],
                "startTime": start,
                "submitTime": start,
                "walltime": 86400,
                "metaData": {"jobName": f"running-{job_id}"},
            }
            r = client.post("/api/jobs/start_job/", json=body)
            r.raise_for_status()
        rng = np.random.default_rng(5)
        lines: list[str] = []
        times = range(start - start % 60, now, 60)
        for _, hosts in RUNNING:
            for h in hosts:
                for mc in cluster.metric_config:
                    # At the metric's native scope (the store aggregates finer scopes up, not down).
                    ids = {"hwthread": range(72), "socket": range(2)}.get(mc.scope, [None])
                    level = (mc.peak or 100) * 0.4 / len(ids)
                    for i in ids:
                        tags = f"{mc.name},cluster={cluster.name},hostname={h},type="
                        tags += "node" if i is None else f"{mc.scope},type-id={i}"
                        for t in times:
                            v = level * (0.7 + 0.3 * float(np.sin(t / 900)) * float(rng.random()))
                            lines.append(f"{tags} value={v:.3f} {t}")
        r = client.post("/api/write", content="\n".join(lines) + "\n")
        r.raise_for_status()
        states = {h: "allocated" for _, hosts in RUNNING for h in hosts} | IDLE_NODES
        nodes = [
            {"hostname": h, "states": [st], "jobsRunning": int(st == "allocated")} for h, st in states.items()
        ]
        r = client.post("/api/nodestate/", json={"cluster": cluster.name, "nodes": nodes})
        r.raise_for_status()


def _import(config: Any) -> None:
    """init-db over the archive: the path real sites take."""
    from cc_core.archive import open_backend
    from cc_core.db import Database
    from cc_core.importer import init_db_sync

    with Database(config.main.db) as db:
        report = init_db_sync(db, open_backend(config.archive))
        if not report.ok:
            raise RuntimeError("init-db failed: " + "; ".join(report.errors()))
        # The role users exist in the database too (UI settings are stored per known user).
        for username, roles in ROLE_USERS.values():
            db.users.add_sync(username, roles=roles, projects=["ui-project"])


def _bulk(config: Any, n: int, before: int) -> None:
    from cc_core.db import Database
    from cc_core.db.generate import generate_jobs

    with Database(config.main.db) as db:
        db.jobs.bulk_insert_sync(generate_jobs(n, seed=11, now=before, first_job_id=10_000_000))

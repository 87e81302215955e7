"""The demo site end to end: `demo generate` (small), the real app on uvicorn, the simulator's rounds.

One module-scoped site of 200 jobs serves every check: login demo/demo and the demo user's jobs, a
finished job's metric data from the archive (consistent with its meta statistics), a running job's
data from the embedded metric store fed by the simulated collector, node states from the simulated
scheduler, app-tagger patterns in the job scripts and job-class patterns in the statistics.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cc_core.demo.generate import MARKER, generate_site
from cc_core.demo.simulate import Simulator
from cc_core.testing import free_port

JOBS = 200
# The taggers ship upstream's rule files unchanged (cc_core/taggers/rules, MIT notice there).
REFERENCE = Path(__file__).resolve().parents[2] / "cc_core" / "taggers" / "rules"


class DemoServer:
    def __init__(self, root: Path) -> None:
        from cc_core.app import create_app
        from cc_core.auth.jwt_tokens import load_private_key, mint
        from cc_core.config import load_config
        from cc_core.plugins import make_plugin_manager

        self.root = root
        self.config = load_config(root / "config.json")
        self.app = create_app(self.config, registry=make_plugin_manager())
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("demo server did not start")
            time.sleep(0.02)
        key = load_private_key(self.config.secret("JWT_PRIVATE_KEY") or "")
        self.scheduler_token = mint(key, "scheduler", ["api"], max_age_seconds=3600)
        self.demo_token = mint(key, "demo", ["admin", "api"], max_age_seconds=3600)

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"X-Auth-Token": token}, timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    root = tmp_path_factory.mktemp("demo")
    report = generate_site(root, jobs=JOBS, workers=1)
    assert report is not None and report.imported == JOBS and report.failed == 0
    server = DemoServer(root)

    async def rounds() -> Simulator:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"X-Auth-Token": server.scheduler_token}, timeout=60
        ) as client:
            sim = Simulator(client, seed=1)
            now = int(time.time())
            for t in (now - 20, now - 10, now):  # three collector rounds, 10 s apart
                await sim.tick(t)
            return sim

    server.sim = asyncio.run(rounds())  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_generate_is_idempotent_and_refuses_foreign_var(site: DemoServer, tmp_path: Path) -> None:
    from cc_core.demo.generate import DemoSiteError

    marker = json.loads((site.root / "var" / MARKER).read_text())
    assert marker["jobs"] == JOBS
    assert generate_site(site.root, jobs=JOBS) is None  # already there: nothing done
    (tmp_path / "var").mkdir()
    with pytest.raises(DemoSiteError, match="--force"):
        generate_site(tmp_path, jobs=5)
    # The CLI says so in one line each, no traceback.
    from click.testing import CliRunner

    from cc_core.cli import build_cli

    r = CliRunner().invoke(build_cli(), ["demo", "generate", "--dir", str(site.root)])
    assert r.exit_code == 0 and "already holds a demo site" in r.output
    r = CliRunner().invoke(build_cli(), ["demo", "generate", "--dir", str(tmp_path), "--jobs", "5"])
    assert r.exit_code == 1 and "--force" in r.output and "Traceback" not in r.output
    # The message says both ways out, and nothing was deleted.
    assert "another directory" in r.output and f"--dir {tmp_path.resolve()} --force" in r.output
    assert (tmp_path / "var").is_dir() and not (tmp_path / "var" / MARKER).exists()


def test_generated_config_enables_the_taggers(site: DemoServer) -> None:
    config = json.loads((site.root / "config.json").read_text())
    assert config["main"]["enable-job-taggers"] is True
    assert site.config.main.enable_job_taggers is True


def test_bulk_jobs_carry_fewer_metrics_but_whole_statistics() -> None:
    import numpy as np

    from cc_core.db.generate import generate_jobs
    from cc_core.demo.series import Detail, job_data
    from cc_core.demo.site import DEMO_CLUSTERS

    fritz = DEMO_CLUSTERS[0]
    job = next(
        j for j in generate_jobs(50, seed=3, clusters=(fritz.shape(),)) if j.duration and j.duration > 3600
    )
    sub = fritz.subcluster(job.sub_cluster)
    bulk = Detail(full_fraction=0.0)
    stats, raw = job_data(job, fritz, sub, "compute", np.random.default_rng(1), bulk)
    data = json.loads(raw)
    assert set(data) == set(bulk.bulk_metrics) & set(stats)
    assert len(stats) > len(data) and all(set(scopes) == {"node"} for scopes in data.values())
    assert all(len(s["data"]) <= bulk.bulk_samples for s in data["cpu_load"]["node"]["series"])
    full_stats, full_raw = job_data(job, fritz, sub, "compute", np.random.default_rng(1), Detail())
    assert set(json.loads(full_raw)) == set(full_stats) == set(stats)


def test_cluster_configs_are_coherent(site: DemoServer) -> None:
    with site.api(site.demo_token) as c:
        clusters = {cl["name"]: cl for cl in c.get("/api/clusters/").json()["clusters"]}
    assert set(clusters) == {"fritz", "alex"}
    fritz = {s["name"]: s for s in clusters["fritz"]["subClusters"]}
    assert len(fritz) == 2
    assert {s["coresPerSocket"] for s in fritz.values()} == {36, 52}
    peaks = {s: {m["name"]: m["peak"] for m in sub["metricConfig"]} for s, sub in fritz.items()}
    assert peaks["main"]["cpu_load"] == 72 and peaks["spr1tb"]["cpu_load"] == 104
    for sub in fritz.values():
        assert set(sub["footprint"]) >= {"cpu_load", "flops_any", "mem_bw", "mem_used"}
        assert sub["energyFootprint"] == ["cpu_power"]
    (a100,) = clusters["alex"]["subClusters"]
    assert len(a100["topology"]["accelerators"]) == 4
    assert set(a100["energyFootprint"]) == {"cpu_power", "acc_power"}
    assert "acc_utilization" in a100["footprint"]


def test_login_and_jobs_of_the_demo_user(site: DemoServer) -> None:
    with httpx.Client(base_url=site.base_url, timeout=60) as c:
        r = c.post("/login", data={"username": "demo", "password": "demo"})
        assert r.status_code in (200, 302, 303), r.text[:200]
        assert "session" in c.cookies
        query = '{ jobs(filter: [{user: {eq: "demo"}}], page: {itemsPerPage: 50, page: 1}) { items { id user state } count } }'
        r = c.post("/query", json={"query": query})
    assert r.status_code == 200, r.text[:300]
    jobs = r.json()["data"]["jobs"]
    assert jobs["count"] > 0
    assert {j["user"] for j in jobs["items"]} == {"demo"}


def _finished(site: DemoServer, **params: Any) -> list[dict[str, Any]]:
    with site.api(site.demo_token) as c:
        r = c.get("/api/jobs/", params={"state": "completed", "items-per-page": 200, **params})
    assert r.status_code == 200, r.text[:200]
    return r.json()["jobs"]


def test_finished_job_data_from_archive_matches_statistics(site: DemoServer) -> None:
    jobs = [j for j in _finished(site, cluster="alex") if j["numNodes"] == 1]
    assert jobs
    job = jobs[0]
    with site.api(site.demo_token) as c:
        r = c.get(f"/api/jobs/{job['id']}", params={"all-metrics": "true"})
    assert r.status_code == 200, r.text[:300]
    data = r.json()["Data"]
    assert {"cpu_load", "flops_any", "mem_bw", "acc_utilization", "acc_power"} <= set(data)
    node = data["acc_utilization"]["node"]["series"][0]
    assert len(node["data"]) >= 1 and node["hostname"] == job["resources"][0]["hostname"]
    stats = job["statistics"]["acc_utilization"]
    assert stats["avg"] == pytest.approx(node["statistics"]["avg"], abs=0.02)
    assert stats["max"] == pytest.approx(max(v for v in node["data"] if v is not None), abs=0.02)
    assert "accelerator" in data["acc_utilization"]  # per-GPU series in the archive


def test_core_and_accelerator_scopes_in_archive(site: DemoServer) -> None:
    from cc_core.archive.codec import decode_data

    archive = site.root / "var" / "job-archive"
    scopes: set[str] = set()
    for f in list(archive.glob("*/*/*/*/data.json*"))[:60]:
        data = decode_data(f.read_bytes(), str(f), compressed=f.suffix == ".gz")
        scopes |= {s for m in data.values() for s in m}
    assert {"node", "core", "accelerator"} <= scopes


def test_running_job_data_from_metric_store(site: DemoServer) -> None:
    sim: Simulator = site.sim  # type: ignore[attr-defined]
    assert sim.started > 0 and sim.running
    rj = next(j for j in sim.running.values() if j.db_id is not None)
    with site.api(site.demo_token) as c:
        r = c.get(f"/api/jobs/{rj.db_id}", params={"all-metrics": "true"})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["Meta"]["jobState"] == "running"
    series = body["Data"]["cpu_load"]["node"]["series"]
    values = [v for s in series for v in s["data"] if v is not None and not math.isnan(v)]
    assert values and max(values) > 0


def test_node_states_exist(site: DemoServer) -> None:
    import anyio

    from cc_core.db import Database

    with Database(site.root / "var" / "job.db") as db:
        states = anyio.run(db.nodes.states_of_cluster, "fritz")
    assert len(states) == 32
    scheduler = [s for s, _health in states.values()]
    assert scheduler.count("down") == 1 and "allocated" in scheduler and "idle" in scheduler


def _app_patterns() -> dict[str, list[re.Pattern[str]]]:
    out = {}
    for f in sorted((REFERENCE / "apps").glob("*.txt")):
        out[f.stem] = [re.compile(r"(?m)^[^#]*" + p) for p in f.read_text().split("\n") if p.strip()]
    return out


def test_job_scripts_and_statistics_carry_tagger_patterns(site: DemoServer) -> None:
    """The data the taggers work on: scripts that upstream's app patterns match, statistics that
    upstream's job-class rules classify (low load, memory bound, high memory)."""
    patterns = _app_patterns()
    with site.api(site.demo_token) as c:
        jobs = c.get("/api/jobs/", params={"items-per-page": 300, "with-metadata": "true"}).json()["jobs"]
    apps: set[str] = set()
    for j in jobs:
        script = ((j.get("metaData") or {}).get("jobScript") or "").lower()
        if j["monitoringStatus"] == 3:
            matched = {a for a, ps in patterns.items() if any(p.search(script) for p in ps)}
            assert matched, script
            apps |= matched
    assert len(apps) >= 6
    # Job-class rules (highload/lowload/memoryBound/highMemoryUsage) on meta statistics + subcluster limits.
    classes: set[str] = set()
    with site.api(site.demo_token) as c:
        limits = {
            (cl["name"], s["name"]): {m["name"]: m for m in s["metricConfig"]}
            for cl in c.get("/api/clusters/").json()["clusters"]
            for s in cl["subClusters"]
        }
    for j in jobs:
        if j["monitoringStatus"] != 3 or j["shared"] != "none" or j["duration"] <= 600:
            continue
        st, lim = j["statistics"], limits[(j["cluster"], j["subCluster"])]
        if st["cpu_load"]["avg"] < lim["cpu_load"]["peak"] * 0.85:
            classes.add("lowload")
        if st["mem_bw"]["avg"] > lim["mem_bw"]["peak"] * 0.8:
            classes.add("memorybound")
        if st["mem_used"]["max"] > lim["mem_used"]["alert"]:
            classes.add("highmemory")
        if (
            st["flops_any"]["avg"] < lim["flops_any"]["alert"]
            and st["mem_bw"]["avg"] < lim["mem_bw"]["alert"]
        ):
            classes.add("lowutilization")
    assert classes == {"lowload", "memorybound", "highmemory", "lowutilization"}


def test_taggers_tag_the_demo_jobs(site: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply-tags` on the demo site gives app and job-class tags (the rules shipped with the taggers,
    which are upstream's)."""
    from click.testing import CliRunner

    from cc_core.cli import build_cli

    monkeypatch.chdir(site.root)
    r = CliRunner().invoke(build_cli(), ["--config", str(site.root / "config.json"), "apply-tags"])
    assert r.exit_code == 0, r.output
    with site.api(site.demo_token) as c:
        jobs = c.get("/api/jobs/", params={"items-per-page": 300}).json()["jobs"]
    tags = {(t["type"], t["name"]) for j in jobs for t in j.get("tags") or ()}
    assert len({n for t, n in tags if t == "app"}) >= 3, tags
    assert {n for t, n in tags if t == "jobClass"} >= {"lowload", "memorybound"}, tags


@pytest.mark.service("nats")
def test_collector_publishes_over_nats_when_configured(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A site whose metric store ingests from NATS: the collector publishes there (no /api/write), and
    the running job's data loads from the store (fed by the store's NATS subscription only)."""
    import nats

    from cc_core.demo.simulate import connect_nats, nats_target

    nats_server = request.getfixturevalue("nats_server")
    root = tmp_path / "site"
    assert generate_site(root, jobs=20, workers=1) is not None
    cfg_path = root / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["nats"] = {"address": nats_server.url}
    cfg["metric-store"]["nats-subscriptions"] = [{"subscribe-to": "demo-metrics"}]
    cfg_path.write_text(json.dumps(cfg))
    server = DemoServer(root)
    try:
        target = nats_target(server.config)
        assert target is not None and target.subject == "demo-metrics"

        async def one_round() -> tuple[Simulator, int]:
            seen = 0

            async def count(_msg: Any) -> None:
                nonlocal seen
                seen += 1

            watcher = await nats.connect(nats_server.url)
            await watcher.subscribe("demo-metrics", cb=count)
            nc = await connect_nats(target)
            async with httpx.AsyncClient(
                base_url=server.base_url, headers={"X-Auth-Token": server.scheduler_token}, timeout=60
            ) as client:
                sim = Simulator(client, seed=2, nats=nc, nats_subject=target.subject)
                now = int(time.time())
                for t in (now - 20, now - 10, now):  # as in `site`: a job's data needs a few samples
                    await sim.tick(t)
            await nc.close()
            await watcher.flush()
            await asyncio.sleep(0.2)
            await watcher.close()
            return sim, seen

        sim, seen = asyncio.run(one_round())
        assert seen >= 6  # one message (or more) per cluster and round
        rj = next(j for j in sim.running.values() if j.db_id is not None)
        deadline = time.monotonic() + 10
        values: list[float] = []
        with server.api(server.demo_token) as c:
            while not values and time.monotonic() < deadline:
                r = c.get(f"/api/jobs/{rj.db_id}", params={"all-metrics": "true"})
                assert r.status_code == 200, r.text[:300]
                series = r.json()["Data"]["cpu_load"]["node"]["series"]
                values = [v for s in series for v in s["data"] if v is not None and not math.isnan(v)]
                if not values:
                    time.sleep(0.2)
        assert values and max(values) > 0
    finally:
        server.stop()

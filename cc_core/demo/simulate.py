"""``clustercockpit demo run``: the server plus a simulated site that keeps it live.

Two asyncio tasks run beside uvicorn in the server's process and talk to it over HTTP, exactly as the
real components would (so the demo exercises the same paths as a production site):

* the **scheduler** (cc-slurm-adapter's role) starts jobs through ``POST /api/jobs/start_job/`` until
  about 70 % of the nodes are busy, stops them through ``/api/jobs/stop_job/`` when their time is up
  (the server then archives them) and reports every node's state through ``/api/nodestate/``;
* the **collector** (cc-metric-collector's role) sends every metric of every node — node, socket,
  hardware thread and GPU level — as line protocol to the embedded store's ``/api/write`` every
  `TIMESTEP` seconds (published to the store's NATS subject instead when the site has a ``nats``
  section and ``metric-store.nats-subscriptions``, `nats_target`). A busy node's values follow the archetype of the job on it
  (`cc_core.demo.series.ARCHETYPES`), an idle node's are low.

Both authenticate with an API token signed by the site's own key (``JWT_PRIVATE_KEY`` in ``.env``).
Running jobs left over from an earlier run are stopped as ``cancelled`` at start-up, since their
simulation state is gone. Ctrl-C stops uvicorn, which ends the tasks and the process cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from cc_core.demo.series import APP_COMMANDS, ARCHETYPES, DEFAULT_LEVELS, job_script
from cc_core.demo.site import DEMO_CLUSTERS, TIMESTEP, DemoCluster, SubShape, limits, metric_specs
from cc_core.schema.job import Job, Resource

log = logging.getLogger(__name__)

#: Share of the nodes the scheduler keeps busy.
TARGET_LOAD = 0.7
#: Simulated jobs run this long (seconds), so starts and stops can be watched.
JOB_SECONDS = (120, 1800)
#: One node per cluster is reported down (and never scheduled), so the status page shows all states.
DOWN_NODES = {"fritz": "f0023"}


@dataclass
class RunningJob:
    job_id: int
    cluster: str
    start_time: int
    end_time: int
    archetype: str
    hosts: list[str]
    db_id: int | None = None


@dataclass
class _Node:
    cluster: DemoCluster
    sub: SubShape
    host: str
    job: RunningJob | None = None


@dataclass
class Simulator:
    """Scheduler and collector state; `tick` is one round of both (tests call it directly)."""

    client: httpx.AsyncClient
    seed: int = 0
    nodes: dict[str, _Node] = field(default_factory=dict)
    running: dict[int, RunningJob] = field(default_factory=dict)
    started: int = 0
    stopped: int = 0
    #: A connected nats-py client and the subject to publish line protocol to (else HTTP /api/write).
    nats: Any = None
    nats_subject: str = ""

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        # Job ids from the clock: unique across runs (the archive's generated ids are far below).
        self.next_id = int(time.time() * 10) % 10**10
        for c in DEMO_CLUSTERS:
            for sub in c.subclusters:
                for h in c.hosts(sub):
                    self.nodes[h] = _Node(c, sub, h)

    # ------------------------------------------------------------------ scheduler

    async def _post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        r = await self.client.post(path, json=body, **kw)
        if r.status_code >= 400:
            log.warning("demo: %s answered %s: %s", path, r.status_code, r.text[:200])
        return r

    async def cancel_leftovers(self) -> int:
        """Stop running jobs of an earlier run (``cancelled``); their simulation state is gone."""
        n = 0
        for c in DEMO_CLUSTERS:
            r = await self.client.get(
                "/api/jobs/", params={"state": "running", "cluster": c.name, "items-per-page": 1000}
            )
            if r.status_code != 200:
                continue
            for job in r.json().get("jobs") or []:
                body = {
                    "jobId": job["jobId"],
                    "cluster": job["cluster"],
                    "startTime": job["startTime"],
                    "jobState": "cancelled",
                    "stopTime": max(int(time.time()), job["startTime"]),
                }
                if (await self._post("/api/jobs/stop_job/", body)).status_code == 200:
                    n += 1
        return n

    def _new_job(self, node: _Node, now: int) -> tuple[Job, RunningJob]:
        rng = self.rng
        c, sub = node.cluster, node.sub
        free = [
            n
            for n in self.nodes.values()
            if n.sub is sub and n.job is None and n.host != DOWN_NODES.get(c.name)
        ]
        want = int(rng.choice([1, 1, 1, 2, 2, 4]))
        hosts = [n.host for n in free[:want]] or [node.host]
        if sub.gpus:
            kind = "gpu" if rng.random() < 0.8 else "idle"
        else:
            kind = str(rng.choice(["compute", "compute", "memory", "idle", "highmem", "longmulti"]))
        arch = ARCHETYPES[kind]
        app = arch.apps[int(rng.integers(0, len(arch.apps)))]
        accs = sub.accelerator_ids()
        self.next_id += 1
        user = "demo" if rng.random() < 0.3 else f"u{int(rng.integers(0, 40)):04d}"
        start = now - int(rng.integers(0, 60))
        job = Job(
            job_id=self.next_id,
            user=user,
            project=f"p{int(rng.integers(0, 5)):03d}",
            cluster=c.name,
            sub_cluster=sub.name,
            partition=sub.name,
            num_nodes=len(hosts),
            num_hwthreads=sub.hwthreads * len(hosts),
            num_acc=len(accs) * len(hosts),
            shared="none",
            walltime=4 * 3600,
            start_time=start,
            submit_time=start - int(rng.integers(0, 600)),
            job_state="running",
            resources=[
                Resource(hostname=h, hwthreads=list(range(sub.hwthreads)), accelerators=accs or None)
                for h in hosts
            ],
            meta_data={"jobName": f"{app}_{kind}"},
        )
        job = _with_script(job, app, len(accs))
        end = now + int(rng.integers(*JOB_SECONDS))
        return job, RunningJob(job.job_id, c.name, start, end, kind, hosts)

    async def schedule(self, now: int) -> None:
        """Stop jobs whose time is up, start new ones up to `TARGET_LOAD`, report node states."""
        import msgspec

        for rj in [j for j in self.running.values() if j.end_time <= now]:
            state = "failed" if self.rng.random() < 0.05 else "completed"
            body = {
                "jobId": rj.job_id,
                "cluster": rj.cluster,
                "startTime": rj.start_time,
                "jobState": state,
                "stopTime": now,
            }
            await self._post("/api/jobs/stop_job/", body)
            self.stopped += 1
            del self.running[rj.job_id]
            for h in rj.hosts:
                self.nodes[h].job = None
        usable = [n for n in self.nodes.values() if n.host != DOWN_NODES.get(n.cluster.name)]
        busy = sum(1 for n in usable if n.job is not None)
        free = [n for n in usable if n.job is None]
        self.rng.shuffle(free)  # type: ignore[arg-type]
        for node in free:
            if busy >= TARGET_LOAD * len(usable):
                break
            if node.job is not None:
                continue
            job, rj = self._new_job(node, now)
            r = await self._post("/api/jobs/start_job/", msgspec.to_builtins(job))
            if r.status_code != 201:
                continue
            rj.db_id = r.json().get("id")
            self.running[rj.job_id] = rj
            self.started += 1
            for h in rj.hosts:
                self.nodes[h].job = rj
                busy += 1
        for c in DEMO_CLUSTERS:
            payload = []
            for n in self.nodes.values():
                if n.cluster is not c:
                    continue
                down = n.host == DOWN_NODES.get(c.name)
                payload.append(
                    {
                        "hostname": n.host,
                        "states": ["down"] if down else ["allocated"] if n.job else ["idle"],
                        "cpusAllocated": n.sub.hwthreads if n.job else 0,
                        "memoryAllocated": int(n.sub.mem_gb * 1024 * 0.9) if n.job else 0,
                        "gpusAllocated": n.sub.gpus if n.job else 0,
                        "jobsRunning": 1 if n.job else 0,
                    }
                )
            await self._post("/api/nodestate/", {"cluster": c.name, "nodes": payload})

    # ------------------------------------------------------------------ collector

    def lines(self, now: int) -> dict[str, bytes]:
        """Line protocol of every metric of every (up) node at ``now``, per cluster."""
        rng = self.rng
        out: dict[str, list[str]] = {}
        for n in self.nodes.values():
            c, sub = n.cluster, n.sub
            if n.host == DOWN_NODES.get(c.name):
                continue
            kind = n.job.archetype if n.job else "idle"
            levels = ARCHETYPES[kind].levels
            lim = limits(c, sub)
            buf = out.setdefault(c.name, [])
            key = f"cluster={c.name},hostname={n.host}"
            for name, _unit, scope, agg, *_ in metric_specs(c):
                level = levels.get(name, DEFAULT_LEVELS[name]) * lim[name][0]
                if n.job is None:
                    level *= 0.3
                if scope == "node":
                    v = max(0.0, level * (1 + 0.05 * rng.standard_normal()))
                    buf.append(f"{name},{key},type=node value={v:.3f} {now}")
                    continue
                if scope == "socket":
                    ids = range(sub.sockets)
                    typ = "socket"
                elif scope == "accelerator":
                    ids = sub.accelerator_ids()  # type: ignore[assignment]
                    typ = "accelerator"
                else:
                    ids = range(sub.hwthreads)
                    typ = "hwthread"
                k = len(ids)
                per = level / k if agg == "sum" and scope != "accelerator" else level
                vals = np.maximum(per * (1 + 0.08 * rng.standard_normal(k)), 0.0)
                if name in ("cpu_user", "acc_utilization"):
                    vals = np.minimum(vals, 100.0)
                buf.extend(
                    f"{name},{key},type={typ},type-id={i} value={v:.3f} {now}"
                    for i, v in zip(ids, vals.tolist(), strict=True)
                )
        return {cl: ("\n".join(b) + "\n").encode() for cl, b in out.items()}

    async def collect(self, now: int) -> None:
        """Send this round's lines: published to the NATS subject when the site ingests from NATS
        (`nats_target`), else POSTed to ``/api/write``."""
        if self.nats is not None:
            for body in self.lines(now).values():
                for part in _split(body, NATS_MESSAGE_BYTES):
                    await self.nats.publish(self.nats_subject, part)
            await self.nats.flush()
            return
        for cluster, body in self.lines(now).items():
            r = await self.client.post("/api/write", params={"cluster": cluster}, content=body)
            if r.status_code >= 400:
                log.warning("demo: /api/write answered %s: %s", r.status_code, r.text[:200])

    async def tick(self, now: int | None = None) -> None:
        now = int(time.time()) if now is None else now
        await self.schedule(now)
        await self.collect(now)

    async def run(self) -> None:
        """Tick every `TIMESTEP` seconds until cancelled; a failing round is logged, not fatal."""
        with contextlib.suppress(Exception):
            n = await self.cancel_leftovers()
            if n:
                log.info("demo: cancelled %d running jobs of an earlier run", n)
        while True:
            t0 = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the server may be busy or restarting: try again next round
                log.warning("demo: simulation round failed: %s", e)
            await asyncio.sleep(max(0.5, TIMESTEP - (time.monotonic() - t0)))


#: Largest NATS message the collector sends (nats-server's default max_payload is 1 MiB).
NATS_MESSAGE_BYTES = 512 * 1024


def _split(body: bytes, limit: int) -> list[bytes]:
    """``body`` cut at line ends into parts of at most ``limit`` bytes (a longer line stays whole)."""
    parts: list[bytes] = []
    start = 0
    while len(body) - start > limit:
        cut = body.rfind(b"\n", start, start + limit)
        cut = body.find(b"\n", start + limit) if cut < 0 else cut
        if cut < 0:
            break
        parts.append(body[start : cut + 1])
        start = cut + 1
    if start < len(body):
        parts.append(body[start:])
    return parts


@dataclass(frozen=True)
class NatsTarget:
    """Where the collector publishes when the site's metric store ingests from NATS."""

    connect: dict[str, Any]
    subject: str


def nats_target(config: Any) -> NatsTarget | None:
    """The NATS server (``nats`` section) and first subject of ``metric-store.nats-subscriptions``, or
    None when the site has either missing (then the collector POSTs to ``/api/write``)."""
    nats_cfg = getattr(config, "nats", None)
    store = getattr(config, "metric_store", None) or {}
    subs = store.get("nats-subscriptions") or [] if isinstance(store, dict) else []
    subject = next(
        (s.get("subscribe-to") for s in subs if isinstance(s, dict) and s.get("subscribe-to")), None
    )
    if nats_cfg is None or not subject:
        return None
    opts: dict[str, Any] = {"servers": [nats_cfg.address], "name": "clustercockpit-demo-collector"}
    if nats_cfg.creds_file_path:
        opts["user_credentials"] = nats_cfg.creds_file_path
    elif nats_cfg.username:
        opts["user"], opts["password"] = nats_cfg.username, nats_cfg.password
    return NatsTarget(opts, str(subject))


async def connect_nats(target: NatsTarget | None) -> Any:
    """A nats-py connection for ``target`` (None without one)."""
    if target is None:
        return None
    import nats

    return await nats.connect(**target.connect)


def _with_script(job: Job, app: str, gpus: int) -> Job:
    import msgspec

    assert app in APP_COMMANDS
    return msgspec.structs.replace(
        job, meta_data={**(job.meta_data or {}), "jobScript": job_script(job, app, gpus)}
    )


async def serve_with_simulation(
    app: Any,
    host: str,
    port: int,
    token: str,
    *,
    log_level: str = "warning",
    nats: NatsTarget | None = None,
) -> None:
    """Run uvicorn for ``app`` and, once it listens, the simulator; returns when the server stops."""
    import uvicorn

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per simulated request otherwise

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # the simulator's own requests (every node, every 10 s) would drown the terminal
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # startup failed: raise its error
            return
        await asyncio.sleep(0.05)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', 'localhost') else host}:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"X-Auth-Token": token}, timeout=60) as client:
        nc = await connect_nats(nats)
        sim = asyncio.create_task(Simulator(client, nats=nc, nats_subject=nats.subject if nats else "").run())
        try:
            await serving
        finally:
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim
            if nc is not None:
                await nc.close()

"""Embedded metric store (plugins/metric_ccms): ingest rate, memory per sample, job query time.

Scenario of the issue: 100 nodes × (20 node-level metrics + 10 core-level metrics × 64 cores) = 66,000
series, 60 s interval; cc-metric-collector style lines (``type``/``type-id`` tags, ns timestamps).

* ingest: lines/s on one core through the line-protocol parser into the store (and with the WAL:
  records are encoded when the flush takes them, so the "+ WAL" rate includes that flush), bodies of
  one host (660 lines, what a collector sends) and of the whole cluster (66,000 lines). Limit:
  ``bytes.split()`` of the same bodies — the C tokeniser that any Python parser has to pay for to get
  the series keys out as ``bytes`` objects.
* memory: bytes per stored sample for 24 h of that scenario. Limit: 4 B (float32).
* query: a 64-node job × 10 node metrics × 24 h at node scope (`query.load_data`, statistics included).
  Limit: plain numpy slicing of the same blocks (concatenate each series' blocks, no statistics).
* servers (`bench_servers`, ``python -m benchmarks.bench_metricstore servers`` alone): the same lines
  through the real server — ``POST /api/write`` of ``clustercockpit serve`` and a NATS subscription of
  it — next to InfluxDB 1.x (``influxd``) ingesting the same bodies through its ``/write`` on the same
  machine. The issue's "one core": each server pinned to CPU 0 (influxd with ``GOMAXPROCS=1``), the
  load generator on CPU 1 — a raw-socket keep-alive HTTP client (`benchmarks._loadgen`, 8 requests in
  flight) or the NATS publisher; then the same unpinned. Both servers run side by side and are measured
  alternately (``CC_BENCH_INGEST_ROUNDS`` rounds, best of), with the load average and each server's
  lines per CPU-second (its user + system time). Target: ≥ 2× InfluxDB.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import msgspec
import numpy as np

from benchmarks._report import OUT_DIR, Result, best_of, report

T0 = 1_700_000_000
NODES = 100
NODE_METRICS = 20
CORE_METRICS = 10
CORES = 64
STEP = 60
DAY = 1440


def _cluster():
    from cc_core.schema.cluster import Cluster

    metrics = [
        {
            "name": f"node_m{i:02d}",
            "scope": "node",
            "aggregation": "avg",
            "timestep": STEP,
            "unit": {"base": ""},
        }
        for i in range(NODE_METRICS)
    ] + [
        {
            "name": f"core_m{i:02d}",
            "scope": "core",
            "aggregation": "sum",
            "timestep": STEP,
            "unit": {"base": ""},
        }
        for i in range(CORE_METRICS)
    ]
    topo = {
        "node": list(range(CORES)),
        "socket": [list(range(32)), list(range(32, 64))],
        "memoryDomain": [list(range(32)), list(range(32, 64))],
        "core": [[c] for c in range(CORES)],
    }
    doc = {
        "name": "bench",
        "metricConfig": metrics,
        "subClusters": [
            {
                "name": "main",
                "nodes": "n[001-100]",
                "topology": topo,
                **{
                    k: {"unit": {"base": "F/s"}, "value": 1.0}
                    for k in ("flopRateScalar", "flopRateSimd", "memoryBandwidth")
                },
            }
        ],
    }
    return msgspec.convert(doc, Cluster).derive()


def _host_body(h: int, step: int, rng: np.random.Generator) -> bytes:
    ts = (T0 + STEP * step) * 1_000_000_000
    vals = iter(rng.random(NODE_METRICS + CORE_METRICS * CORES) * 100)
    lines = [
        b"node_m%02d,cluster=bench,hostname=n%03d,type=node value=%.4f %d" % (m, h, next(vals), ts)
        for m in range(NODE_METRICS)
    ]
    lines += [
        b"core_m%02d,cluster=bench,hostname=n%03d,type=core,type-id=%d value=%.4f %d"
        % (m, h, c, next(vals), ts)
        for m in range(CORE_METRICS)
        for c in range(CORES)
    ]
    return b"\n".join(lines) + b"\n"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_ingest(results: list[Result]) -> None:
    from cc_metric_ccms.config import Checkpoints, InternalStoreConfig
    from cc_metric_ccms.engine import MetricStoreEngine
    from cc_metric_ccms.store import metrics_from_clusters

    metrics = metrics_from_clusters([_cluster()])
    rng = np.random.default_rng(0)
    steps = 4
    host_bodies = [[_host_body(h + 1, s, rng) for h in range(NODES)] for s in range(steps + 1)]
    big_bodies = [b"".join(hb) for hb in host_bodies]
    nlines = NODES * (NODE_METRICS + CORE_METRICS * CORES)

    def run(bodies: list[list[bytes]] | list[bytes], wal: bool) -> float:
        with TemporaryDirectory() as tmp:
            cfg = InternalStoreConfig(
                retention_in_memory="48h",
                memory_cap=0,
                checkpoints=Checkpoints(file_format="wal" if wal else "json", directory=tmp),
            )
            eng = MetricStoreEngine(cfg, metrics, fsync=False, clock=lambda: T0)
            flat = [b if isinstance(b, list) else [b] for b in bodies]
            for body in flat[0]:  # warm-up step: creates the 66,000 series
                eng.ingest(body)
            eng.flush()  # ... and their WAL record layouts (steady state is what is measured)
            gc.collect()
            t = time.perf_counter()
            for step in flat[1:]:
                for body in step:
                    eng.ingest(body)
            dt = time.perf_counter() - t
            if wal:  # WAL records are encoded when the flush takes them: part of the cost of ingest
                t = time.perf_counter()
                written = eng.flush()
                flush_dt = time.perf_counter() - t
                dt += flush_dt
                print(
                    f"  WAL flush of {steps * nlines:,} records ({written / 1e6:.1f} MB, no fsync): {flush_dt * 1e3:.0f} ms"
                )
            return steps * nlines / dt

    per_host = [b for hb in host_bodies[1:] for b in hb]
    lim_host = steps * nlines / best_of(lambda: [b.split() for b in per_host], repeat=3)
    lim_big = steps * nlines / best_of(lambda: [b.split() for b in big_bodies[1:]], repeat=3)
    naive = (
        steps
        * nlines
        / best_of(lambda: [ln.split(b" ") for b in big_bodies[1:] for ln in b.split(b"\n")], repeat=3)
    )
    for name, bodies, lim in (
        ("ingest, 660-line bodies (one host)", host_bodies, lim_host),
        ("ingest, 66,000-line bodies", big_bodies, lim_big),
    ):
        rate = max(run(bodies, wal=False) for _ in range(3))
        results.append(Result(name, rate, lim, "/s", "≥ 1,000,000/s", "bytes.split()", rate >= 1_000_000))
        rate = max(run(bodies, wal=True) for _ in range(2))
        results.append(
            Result(name + " + WAL (encode, write; no fsync)", rate, lim, "/s", "", "bytes.split()")
        )
    results.append(Result("(a bare per-line split loop, for scale)", naive, None, "/s"))


def build_memory_store():
    from cc_metric_ccms.store import MetricStore, metrics_from_clusters

    cluster = _cluster()
    gc.collect()
    rss0 = _rss()
    store = MetricStore(metrics_from_clusters([cluster]))
    sids = []
    for h in range(1, NODES + 1):
        host = f"n{h:03d}"
        for m in range(NODE_METRICS):
            sids.append(store.series_id(["bench", host], f"node_m{m:02d}", create=True))
        for m in range(CORE_METRICS):
            for c in range(CORES):
                sids.append(store.series_id(["bench", host, f"core{c}"], f"core_m{m:02d}", create=True))
    sid_arr = np.array(sids, dtype=np.int64)
    rng = np.random.default_rng(1)
    vals = (rng.random(len(sid_arr)) * 100).astype(np.float32)
    t = time.perf_counter()
    for i in range(DAY):
        store.write_batch(sid_arr, np.full(len(sid_arr), T0 + STEP * i, dtype=np.int64), vals + i)
    fill_dt = time.perf_counter() - t
    gc.collect()
    rss = _rss() - rss0
    return store, cluster, len(sid_arr) * DAY, rss, fill_dt


def bench_memory(store, samples: int, rss: int, fill_dt: float) -> list[Result]:
    """Bytes per sample (the shared table formats only times and rates, so these print separately)."""
    per = store.nbytes() / samples
    print(
        f"  filled {samples:,} samples in {fill_dt:.1f} s ({samples / fill_dt / 1e6:.1f} M samples/s via write_batch)"
    )
    print(f"  accounted {store.nbytes() / 1e6:.0f} MB, process RSS grew {rss / 1e6:.0f} MB")
    return [
        Result("memory: accounted bytes/sample (24 h)", per, 4.0, "B", "≤ 5 B", "float32", per <= 5.0),
        Result(
            "memory: RSS growth bytes/sample (24 h)",
            rss / samples,
            4.0,
            "B",
            "≤ 5 B",
            "float32",
            rss / samples <= 5.0,
        ),
    ]


def report_memory(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="metricstore memory")
    for col in ("benchmark", "ours", "limit", "limit is", "ratio", "target", "ok"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.name,
            f"{r.ours:.2f} B",
            f"{r.limit:.2f} B",
            r.limit_name,
            f"{r.ratio:.2f}×",
            r.target,
            "yes" if r.ok else "NO",
        )
    Console(width=180).print(table)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "metricstore_memory.json").write_text(
        json.dumps([asdict(r) | {"ratio": r.ratio} for r in results], indent=2)
    )


def bench_query(results: list[Result], store, cluster) -> None:
    from cc_metric_ccms import query

    from cc_core.schema import Job, Resource

    hosts = [f"n{h:03d}" for h in range(1, 65)]
    job = Job(
        job_id=1,
        user="u",
        project="p",
        cluster="bench",
        sub_cluster="main",
        start_time=T0,
        duration=DAY * STEP,
        num_nodes=64,
        resources=[Resource(hostname=h) for h in hosts],
    )
    node_metrics = [f"node_m{i:02d}" for i in range(10)]
    core_metrics = [f"core_m{i:02d}" for i in range(10)]

    def ours() -> object:
        return query.load_data(store, cluster, job, node_metrics, ["node"], 0)

    data = ours()
    assert len(data) == 10 and all(len(d["node"].series) == 64 for d in data.values())
    assert len(data["node_m00"]["node"].series[0].data) == DAY

    sids = [store.series_id(["bench", h], m) for m in node_metrics for h in hosts]

    def plain() -> object:
        out = []
        for sid in sids:
            meta = store._meta[sid]
            blocks = [store._slabs[r >> 11][r & 2047] for r in meta.rows]
            blocks.append(store._heads[sid, : store._head_len[sid]])
            out.append(np.concatenate(blocks)[:DAY])
        return out

    t_ours = best_of(ours, repeat=7)
    t_plain = best_of(plain, repeat=7)
    results.append(
        Result(
            "query: 64 nodes × 10 metrics × 24 h, node",
            t_ours,
            t_plain,
            "s",
            "≤ 20 ms",
            "numpy slicing",
            t_ours <= 0.020,
        )
    )
    t_core = best_of(lambda: query.load_data(store, cluster, job, core_metrics, ["node"], 0), repeat=3)
    results.append(Result("query: same, core metrics summed to node", t_core, None, "s"))
    t_lttb = best_of(lambda: query.load_data(store, cluster, job, node_metrics, ["node"], 600), repeat=3)
    results.append(Result("query: node metrics, LTTB to 600 s", t_lttb, None, "s"))


def bench_persistence(results: list[Result], store) -> None:
    from cc_metric_ccms.checkpoint import load_directory, write_snapshots
    from cc_metric_ccms.store import MetricStore
    from cc_metric_ccms.wal import WalWriter, read_wal, replay_wal

    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        hosts = store.hosts()[:10]
        t = time.perf_counter()
        write_snapshots(store, root, 0, T0 + 10 * 86400, "wal", hosts)
        dt = time.perf_counter() - t
        size = sum(p.stat().st_size for p in root.rglob("*.bin"))
        samples = 10 * (NODE_METRICS + CORE_METRICS * CORES) * DAY
        results.append(Result("snapshot write (10 hosts × 24 h)", samples / dt, None, "/s"))
        fresh = MetricStore(store.metrics.values())
        t = time.perf_counter()
        load_directory(fresh, root, 0)
        dt = time.perf_counter() - t
        results.append(Result("snapshot load", samples / dt, None, "/s"))
        print(f"  snapshot: {size / samples:.2f} bytes/sample on disk")
        # WAL: encode + write one host-hour, then read and replay it
        wal_root = root / "wal"
        w = WalWriter(fresh, wal_root, fsync=True)
        sids = np.array([sid for _, _, sid in fresh.iter_series(("bench", "n001"))], dtype=np.int64)
        n = 0
        t = time.perf_counter()
        for i in range(60):
            w.append(sids, np.full(len(sids), T0 + DAY * STEP + STEP * i), np.full(len(sids), 1.5))
            n += len(sids)
        w.flush()
        dt = time.perf_counter() - t
        results.append(Result("WAL encode + write + fsync", n / dt, None, "/s"))
        path = wal_root / "bench" / "n001" / "current.wal"
        t = time.perf_counter()
        contents = read_wal(path)
        replay_wal(fresh, "bench", "n001", contents)
        dt = time.perf_counter() - t
        results.append(Result("WAL read + CRC + replay", n / dt, None, "/s"))


# ------------------------------------------------------------------------------------ servers

SERVER_STEPS = 8  # steps of the whole cluster (8 × 66,000 lines) per measurement
SERVER_ROUNDS = int(os.environ.get("CC_BENCH_INGEST_ROUNDS", "3"))  # alternating rounds, best of


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None, cpus: set[int] | None = None
) -> Any:
    """Start a server process, its output to ``log``; pinned to ``cpus`` when given."""
    import subprocess

    out = log.open("ab")
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pin)


def _wait(what: str, ready: Any, proc: Any, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        if _quietly(ready):
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def _quietly(check: Any) -> bool:
    """``check()``, False while it raises (the server is not listening yet)."""
    try:
        return bool(check())
    except Exception:
        return False


def _stop(proc: Any) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except Exception:
            proc.kill()
            proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Bodies:
    """The scenario's bodies for step after step: three value sets, timestamps rewritten per step (so
    every measurement writes new samples, as a collector does, without formatting 66,000 lines each)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(2)
        self._sets = [[_host_body(h + 1, 0, rng) for h in range(NODES)] for _ in range(3)]
        self._ts0 = b" %d\n" % (T0 * 1_000_000_000)

    def step(self, s: int) -> list[bytes]:
        ts = b" %d\n" % ((T0 + STEP * s) * 1_000_000_000)
        return [b.replace(self._ts0, ts) for b in self._sets[s % 3]]


class _Target:
    """A running server under test: where to POST, how to authenticate, its process for CPU time."""

    def __init__(self, name: str, proc: Any, port: int, path: str, headers: dict[str, str], ok: int) -> None:
        self.name, self.proc, self.port, self.path, self.headers, self.ok = (
            name,
            proc,
            port,
            path,
            headers,
            ok,
        )
        self.next_step = 1  # step 0 is the warm-up that creates the series

    def post(self, bodies: list[bytes], concurrency: int) -> tuple[float, float]:
        """(wall seconds, server CPU seconds) to ingest ``bodies``."""
        from benchmarks._loadgen import blast, build_request

        reqs = [build_request("127.0.0.1", self.port, self.path, b, self.headers) for b in bodies]
        cpu = _cpu_seconds(self.proc.pid)
        dt = blast("127.0.0.1", self.port, reqs, self.ok, concurrency)
        return dt, _cpu_seconds(self.proc.pid) - cpu


def _start_ours(root: Path, extra: dict[str, Any], cpus: set[int] | None, tag: str) -> tuple[_Target, Any]:
    import sys

    import httpx

    from cc_core.testing.site import make_site

    site = make_site(root / f"site-{tag}", [_cluster()], config=extra)
    port = _free_port()
    env = {**os.environ, **site.environ, "CC_LOAD_PLUGINS": "metric-ccms,archive-fs"}
    log = root / f"server-{tag}.log"
    args = [sys.executable, "-m", "cc_core", "--config", str(site.config_path), "serve"]
    proc = _spawn([*args, "--addr", f"127.0.0.1:{port}"], log, env, cpus)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait("server", lambda: httpx.get(f"{base}/healthz", trust_env=False).status_code == 200, proc, log)
    except BaseException:
        _stop(proc)
        raise
    auth = {"Authorization": f"Bearer {site.token(('api',))}"}
    return _Target("ours", proc, port, "/api/write", auth, 200), site


def _start_influx(influxd: str, root: Path, cpus: set[int] | None, tag: str) -> _Target:
    import httpx

    from cc_core.testing.influx import influx_conf

    d = root / f"influx-{tag}"
    d.mkdir()
    http_port, rpc_port = _free_port(), _free_port()
    conf = d / "influxdb.conf"
    conf.write_text(influx_conf(d, http_port, rpc_port))
    env = dict(os.environ)
    if cpus is not None:
        env["GOMAXPROCS"] = str(len(cpus))  # Go would otherwise run a scheduler thread per machine core
    proc = _spawn([influxd, "run", "-config", str(conf)], d / "influxd.log", env, cpus)
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait(
            "influxd",
            lambda: httpx.get(f"{base}/ping", trust_env=False).status_code == 204,
            proc,
            d / "influxd.log",
        )
        httpx.post(f"{base}/query", data={"q": "CREATE DATABASE bench"}, trust_env=False)
    except BaseException:
        _stop(proc)
        raise
    return _Target("InfluxDB", proc, http_port, "/write?db=bench&precision=ns", {}, 204)


def _keep_best(
    best: dict[tuple[str, str], tuple[float, float]], key: tuple[str, str], rate: float, cpu_rate: float
) -> None:
    old = best.get(key, (0.0, 0.0))
    best[key] = (max(old[0], rate), max(old[1], cpu_rate))


def bench_servers(results: list[Result]) -> None:
    """HTTP and NATS ingest of our server vs. InfluxDB's /write, same lines, same machine.

    Two phases. *Pinned* (the headline, the issue's "one core"): each server under test is pinned to
    CPU 0 (influxd also with ``GOMAXPROCS=1``), the load generator (this process: a raw-socket HTTP
    client, the NATS publisher) and nats-server to CPU 1. *Unpinned*: the same without affinity — the
    servers may use both cores and share them with the client. Within a phase both servers run side by
    side and are measured alternately, ``SERVER_ROUNDS`` rounds, best of each.
    """
    import shutil

    bodies = _Bodies()
    nlines = SERVER_STEPS * NODES * (NODE_METRICS + CORE_METRICS * CORES)
    nats_bin, influxd = shutil.which("nats-server"), shutil.which("influxd")
    if not influxd:
        print("  influxd not installed: InfluxDB comparison skipped (apt-get install influxdb)")
    ncpu = len(os.sched_getaffinity(0))
    phases: list[tuple[str, set[int] | None, set[int] | None]] = [("unpinned", None, None)]
    if ncpu >= 2:
        cpus = sorted(os.sched_getaffinity(0))
        phases.insert(0, ("pinned", {cpus[0]}, {cpus[1]}))
    else:
        print("  one CPU only: no pinned phase")
    own = os.sched_getaffinity(0)
    table: list[tuple[str, ...]] = []
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        for phase, server_cpus, client_cpus in phases:
            if client_cpus is not None:
                os.sched_setaffinity(0, client_cpus)
            procs: list[Any] = []
            try:
                nats_url = ""
                extra: dict[str, Any] = {}
                if nats_bin:
                    nats_port = _free_port()
                    nats_url = f"nats://127.0.0.1:{nats_port}"
                    procs.append(
                        _spawn(
                            [nats_bin, "-a", "127.0.0.1", "-p", str(nats_port)],
                            root / f"nats-{phase}.log",
                            cpus=client_cpus,
                        )
                    )
                    time.sleep(0.5)
                    extra = {
                        "nats": {"address": nats_url},
                        "metric-store": {
                            "nats-subscriptions": [{"subscribe-to": "bench", "cluster-tag": "bench"}]
                        },
                    }
                ours, _site = _start_ours(root, extra, server_cpus, phase)
                procs.append(ours.proc)
                targets = [ours]
                if influxd:
                    targets.append(_start_influx(influxd, root, server_cpus, phase))
                    procs.append(targets[-1].proc)
                for t in targets:  # warm-up: creates the series (and InfluxDB's shard)
                    t.post(bodies.step(0), 8)
                best: dict[tuple[str, str], tuple[float, float]] = {}
                keep = functools.partial(_keep_best, best)

                for rnd in range(SERVER_ROUNDS):
                    load = os.getloadavg()[0]
                    line = [f"  {phase} round {rnd + 1} (load {load:.1f}):"]
                    for t in targets:
                        for kind, conc, whole in (
                            ("660-line bodies", 8, False),
                            ("66,000-line bodies", 2, True),
                        ):
                            steps = [bodies.step(t.next_step + i) for i in range(SERVER_STEPS)]
                            t.next_step += SERVER_STEPS
                            send = (
                                [b"".join(st) for st in steps] if whole else [b for st in steps for b in st]
                            )
                            dt, cpu = t.post(send, conc)
                            keep((t.name, kind), nlines / dt, nlines / cpu if cpu > 0 else 0.0)
                            line.append(f"{t.name} {kind[:-7]} {nlines / dt / 1e3:,.0f}k/s")
                    if nats_url:
                        steps = [bodies.step(ours.next_step + i) for i in range(SERVER_STEPS)]
                        ours.next_step += SERVER_STEPS
                        cpu = _cpu_seconds(ours.proc.pid)
                        dt = _nats_ingest(
                            nats_url,
                            f"http://127.0.0.1:{ours.port}/api/debug",
                            ours.headers,
                            [b for st in steps for b in st],
                            f"sentinel{rnd}",
                        )
                        cpu = _cpu_seconds(ours.proc.pid) - cpu
                        keep(
                            ("ours", "NATS, 660 lines/message"), nlines / dt, nlines / cpu if cpu > 0 else 0.0
                        )
                        line.append(f"ours NATS {nlines / dt / 1e3:,.0f}k/s")
                    print(" ".join(line), flush=True)
            finally:
                for p in reversed(procs):
                    _stop(p)
                os.sched_setaffinity(0, own)
            load = os.getloadavg()[0]
            for kind in ("660-line bodies", "66,000-line bodies", "NATS, 660 lines/message"):
                if ("ours", kind) not in best:
                    continue
                rate, cpu_rate = best[("ours", kind)]
                ref_kind = kind if "NATS" not in kind else "660-line bodies"
                ref = best.get(("InfluxDB", ref_kind))
                how = "HTTP /api/write, " + kind if "NATS" not in kind else kind
                ok = None if ref is None or phase != "pinned" else rate >= 2 * ref[0]
                results.append(
                    Result(
                        f"{phase}: {how}",
                        rate,
                        ref[0] if ref else None,
                        "/s",
                        "≥ 2× InfluxDB" if phase == "pinned" else "",
                        f"InfluxDB 1.x, {ref_kind}" if ref else "",
                        ok,
                    )
                )
                table.append(
                    (
                        phase,
                        how,
                        f"{rate / 1e3:,.0f}k/s",
                        f"{ref[0] / 1e3:,.0f}k/s" if ref else "-",
                        f"{rate / ref[0]:.2f}×" if ref else "-",
                        f"{cpu_rate / 1e3:,.0f}k / {ref[1] / 1e3:,.0f}k"
                        if ref
                        else f"{cpu_rate / 1e3:,.0f}k",
                        f"{load:.1f}",
                    )
                )
    print(
        "\n| phase | path | ours | InfluxDB 1.x | ours ÷ InfluxDB | lines per server-CPU-second (ours / InfluxDB) | load |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print()


def _nats_ingest(
    nats_url: str, debug_url: str, auth: dict[str, str], bodies: list[bytes], tag: str = "sentinel"
) -> float:
    """Publish every body as one message, then a sentinel (host ``tag``, new per call); seconds until
    the sentinel is stored — the subscriber handles messages in order, so every body is in by then."""
    import asyncio

    import httpx
    import nats

    sentinel = f"node_m00,hostname={tag} value=1 {T0 * 1_000_000_000}".encode()
    for b in bodies:  # strip the cluster tag: the subscription's cluster-tag supplies it
        assert b.startswith(b"node_m00,cluster=bench,")
    stripped = [b.replace(b",cluster=bench,", b",") for b in bodies]

    async def run() -> float:
        nc = await nats.connect(nats_url)
        t = time.perf_counter()
        for b in stripped:
            await nc.publish("bench", b)
        await nc.publish("bench", sentinel)
        await nc.flush()
        async with httpx.AsyncClient(trust_env=False) as c:
            while (
                await c.get(debug_url, params={"selector": f"bench:{tag}"}, headers=auth)
            ).status_code != 200:
                await asyncio.sleep(0.01)
        dt = time.perf_counter() - t
        await nc.close()
        return dt

    return asyncio.run(run())


def main() -> bool:
    results: list[Result] = []
    # Memory first, in a process that has freed nothing yet, so that RSS growth means something.
    store, cluster, samples, rss, fill_dt = build_memory_store()
    memory = bench_memory(store, samples, rss, fill_dt)
    bench_query(results, store, cluster)
    bench_persistence(results, store)
    del store
    gc.collect()
    bench_ingest(results)
    servers: list[Result] = []
    if os.environ.get("CC_BENCH_SERVERS", "1") != "0":
        bench_servers(servers)
        report("metricstore servers", servers)
    results += [r for r in servers if r.ok is not None]
    report("metricstore", results)
    report_memory(memory)
    return all(r.ok is not False for r in results + memory)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["servers"]:  # only the server comparison (HTTP, NATS, InfluxDB)
        only: list[Result] = []
        bench_servers(only)
        report("metricstore servers", only)
        raise SystemExit(0 if all(r.ok is not False for r in only) else 1)
    raise SystemExit(0 if main() else 1)

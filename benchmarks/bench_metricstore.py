"""Embedded metric store (plugins/metric_ccms): ingest rate, memory per sample, job query time.

Scenario of the issue: 100 nodes × (20 node-level metrics + 10 core-level metrics × 64 cores) = 66,000
series, 60 s interval; cc-metric-collector style lines (``type``/``type-id`` tags, ns timestamps).

* ingest: lines/s on one core through the line-protocol parser into the store (and with the WAL
  encoding that runs on the same thread), bodies of one host (660 lines, what a collector sends) and of
  the whole cluster (66,000 lines). Limit: ``bytes.split()`` of the same bodies — the C tokeniser that
  any Python parser has to pay for to get the series keys out as ``bytes`` objects.
* memory: bytes per stored sample for 24 h of that scenario. Limit: 4 B (float32).
* query: a 64-node job × 10 node metrics × 24 h at node scope (`query.load_data`, statistics included).
  Limit: plain numpy slicing of the same blocks (concatenate each series' blocks, no statistics).
* servers (`bench_servers`): the same lines through the real server — ``POST /api/write`` of
  ``clustercockpit serve`` and a NATS subscription of it — next to InfluxDB 1.x (``influxd``) ingesting
  the same bodies through its ``/write`` on the same machine; the client (httpx, 8 requests in flight)
  or the NATS publisher runs in this process, the servers in their own. Target: ≥ 2× InfluxDB.
"""

from __future__ import annotations

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
            gc.collect()
            t = time.perf_counter()
            for step in flat[1:]:
                for body in step:
                    eng.ingest(body)
            dt = time.perf_counter() - t
            if wal:
                t = time.perf_counter()
                written = eng.flush()
                flush_dt = time.perf_counter() - t
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
        results.append(Result(name + " + WAL encode", rate, lim, "/s", "", "bytes.split()"))
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

SERVER_STEPS = 8  # measured steps of the whole cluster (8 × 66,000 lines), after one warm-up step


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
    import subprocess

    out = log.open("ab")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


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


def _post_all(url: str, bodies: list[bytes], headers: dict[str, str], ok: int, concurrency: int = 8) -> float:
    """POST every body (``concurrency`` in flight); seconds from the first request to the last answer."""
    import asyncio

    import httpx

    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=120, trust_env=False) as c:
            queue = list(reversed(bodies))

            async def worker() -> None:
                while queue:
                    body = queue.pop()
                    r = await c.post(url, content=body, headers=headers)
                    if r.status_code != ok:
                        raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t

    return asyncio.run(run())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_servers(results: list[Result]) -> None:
    """HTTP and NATS ingest of our server vs. InfluxDB's /write, same lines, same machine."""
    import shutil
    import sys

    import httpx

    from cc_core.testing.site import make_site

    rng = np.random.default_rng(2)
    steps = [[_host_body(h + 1, s, rng) for h in range(NODES)] for s in range(SERVER_STEPS + 1)]
    warm, measured = steps[0], [b for st in steps[1:] for b in st]
    nlines = SERVER_STEPS * NODES * (NODE_METRICS + CORE_METRICS * CORES)
    big = [b"".join(st) for st in steps]  # whole-cluster bodies (66,000 lines)
    nats_bin, influxd = shutil.which("nats-server"), shutil.which("influxd")

    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        nats_proc = None
        nats_url = ""
        if nats_bin:
            nats_port = _free_port()
            nats_url = f"nats://127.0.0.1:{nats_port}"
            nats_proc = _spawn([nats_bin, "-a", "127.0.0.1", "-p", str(nats_port)], root / "nats.log")
            time.sleep(0.5)
        extra: dict[str, Any] = {}
        if nats_proc is not None:
            extra = {
                "nats": {"address": nats_url},
                "metric-store": {"nats-subscriptions": [{"subscribe-to": "bench", "cluster-tag": "bench"}]},
            }
        for run in range(2):  # a fresh server per run: every run creates its series in the warm-up step
            site = make_site(root / f"site{run}", [_cluster()], config=extra)
            port = _free_port()
            env = {**os.environ, **site.environ, "CC_LOAD_PLUGINS": "metric-ccms,archive-fs"}
            server = _spawn(
                [
                    sys.executable,
                    "-m",
                    "cc_core",
                    "--config",
                    str(site.config_path),
                    "serve",
                    "--addr",
                    f"127.0.0.1:{port}",
                ],
                root / f"server{run}.log",
                env,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                _wait(
                    "server",
                    lambda base=base: httpx.get(f"{base}/healthz", trust_env=False).status_code == 200,
                    server,
                    root / f"server{run}.log",
                )
                auth = {"Authorization": f"Bearer {site.token(('api',))}"}
                _post_all(f"{base}/api/write", warm, auth, 200)
                dt = _post_all(f"{base}/api/write", measured, auth, 200)
                results.append(
                    Result(f"HTTP /api/write, 660-line bodies (run {run + 1})", nlines / dt, None, "/s")
                )
                dt = _post_all(f"{base}/api/write", big[1:], auth, 200, concurrency=2)
                results.append(
                    Result(f"HTTP /api/write, 66,000-line bodies (run {run + 1})", nlines / dt, None, "/s")
                )
                if nats_proc is not None:
                    dt = _nats_ingest(nats_url, f"{base}/api/debug", auth, measured)
                    results.append(
                        Result(f"NATS, 660 lines/message (run {run + 1})", nlines / dt, None, "/s")
                    )
            finally:
                _stop(server)
        if nats_proc is not None:
            _stop(nats_proc)
        if influxd:
            influx_rates = _influx_ingest(influxd, root, warm, measured, big, nlines)
            for name, rate in influx_rates:
                results.append(Result(name, rate, None, "/s"))
        else:
            print("  influxd not installed: InfluxDB comparison skipped (apt-get install influxdb)")
    best: dict[str, float] = {}
    for r in results:
        if "(run " in r.name:
            key = r.name.split(" (run")[0]
            best[key] = max(best.get(key, 0.0), r.ours)
    influx = {r.name: r.ours for r in results if r.name.startswith("InfluxDB")}
    for key, rate in best.items():
        ref = influx.get(
            "InfluxDB /write, 660-line bodies" if "660" in key else "InfluxDB /write, 66,000-line bodies"
        )
        if ref:
            results.append(
                Result(
                    f"{key}: best, vs InfluxDB",
                    rate,
                    ref,
                    "/s",
                    "≥ 2× InfluxDB",
                    "InfluxDB 1.x",
                    rate >= 2 * ref,
                )
            )


def _nats_ingest(nats_url: str, debug_url: str, auth: dict[str, str], bodies: list[bytes]) -> float:
    """Publish every body as one message, then a sentinel; seconds until the sentinel is stored."""
    import asyncio

    import httpx
    import nats

    sentinel = f"node_m00,hostname=sentinel value=1 {T0 * 1_000_000_000}".encode()
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
                await c.get(debug_url, params={"selector": "bench:sentinel"}, headers=auth)
            ).status_code != 200:
                await asyncio.sleep(0.01)
        dt = time.perf_counter() - t
        await nc.close()
        return dt

    return asyncio.run(run())


def _influx_ingest(
    influxd: str, root: Path, warm: list[bytes], measured: list[bytes], big: list[bytes], nlines: int
) -> list[tuple[str, float]]:
    """InfluxDB's rates for the same bodies (a fresh database per run, best of two)."""
    import httpx

    out: dict[str, float] = {}
    for run in range(2):
        d = root / f"influx{run}"
        d.mkdir()
        http_port, rpc_port = _free_port(), _free_port()
        conf = d / "influxdb.conf"
        conf.write_text(
            f'''reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
'''
        )
        proc = _spawn([influxd, "run", "-config", str(conf)], d / "influxd.log")
        base = f"http://127.0.0.1:{http_port}"
        try:
            _wait(
                "influxd",
                lambda base=base: httpx.get(f"{base}/ping", trust_env=False).status_code == 204,
                proc,
                d / "influxd.log",
            )
            httpx.post(f"{base}/query", data={"q": "CREATE DATABASE bench"}, trust_env=False)
            url = f"{base}/write?db=bench&precision=ns"
            _post_all(url, warm, {}, 204)
            rate = nlines / _post_all(url, measured, {}, 204)
            out["InfluxDB /write, 660-line bodies"] = max(
                out.get("InfluxDB /write, 660-line bodies", 0), rate
            )
            rate = nlines / _post_all(url, big[1:], {}, 204, concurrency=2)
            out["InfluxDB /write, 66,000-line bodies"] = max(
                out.get("InfluxDB /write, 66,000-line bodies", 0), rate
            )
        finally:
            _stop(proc)
    return list(out.items())


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

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
"""

from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory

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
    report("metricstore", results)
    report_memory(memory)
    return all(r.ok is not False for r in results + memory)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

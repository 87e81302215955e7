"""The contract every metric backend passes (`cc_core.interfaces.MetricBackend`, contract §8.4-§8.6).

A plugin's tests subclass `MetricBackendContract` and say how to get the shared dataset into their real
server (or engine) and how to build the backend::

    from cc_core.testing.metric_contract import MetricBackendContract, MetricDataset

    class TestMyTSDB(MetricBackendContract):
        async def make_backend(self, dataset, context, tmp_path):
            await write_lines(my_server, dataset.line_protocol(fresh=True))
            backend = MyTSDB(MyTSDB.Config(url=my_server.url), context)
            await backend.start()
            return backend

The dataset is one small cluster (2 sockets × 2 cores × 2 hardware threads per node, metrics at node,
socket and hardware-thread scope, with sum/avg/no aggregation, footprint and energy settings), a
two-node job of `POINTS` samples at 60 s starting at `t0` (a multiple of 60, so that grid-aligned
backends return exactly the samples written), and *fresh* samples at "now" for the health check. Every
test runs against one backend per test class, on one event loop in a helper thread (so async clients
keep their loop), and compares with values computed here from the dataset's definition.

Override `t0` for backends that only accept recent data (Prometheus remote write), and `POINTS` /
`MINIMUM_POINTS` only if the backend's resolution handling needs it.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec
import numpy as np
import pytest

from cc_core.interfaces import MetricBackend
from cc_core.schema import Job, Resource
from cc_core.schema.cluster import Cluster

T = TypeVar("T")

CLUSTER = "ctest"
STEP = 60
TOPOLOGY: dict[str, Any] = {
    "node": list(range(8)),
    "socket": [[0, 1, 4, 5], [2, 3, 6, 7]],
    "memoryDomain": [[0, 1, 4, 5], [2, 3, 6, 7]],
    "core": [[0, 4], [1, 5], [2, 6], [3, 7]],
}
CORES_OF_SOCKET = {0: [0, 1], 1: [2, 3]}

METRICS: list[dict[str, Any]] = [
    {
        "name": "cpu_load",
        "scope": "node",
        "aggregation": "avg",
        "timestep": STEP,
        "unit": {"base": ""},
        "footprint": "avg",
    },
    {
        "name": "flops_any",
        "scope": "hwthread",
        "aggregation": "sum",
        "timestep": STEP,
        "unit": {"base": "F/s", "prefix": "G"},
        "footprint": "avg",
    },
    {
        "name": "mem_bw",
        "scope": "socket",
        "aggregation": "sum",
        "timestep": STEP,
        "unit": {"base": "B/s", "prefix": "G"},
    },
    {
        "name": "mem_used",
        "scope": "node",
        "aggregation": "",
        "timestep": STEP,
        "unit": {"base": "B", "prefix": "G"},
        "footprint": "max",
    },
    {
        "name": "cpu_power",
        "scope": "socket",
        "aggregation": "sum",
        "timestep": STEP,
        "unit": {"base": "W"},
        "energy": "power",
    },
]
METRIC_NAMES = [m["name"] for m in METRICS]


def make_cluster(name: str = CLUSTER) -> Cluster:
    """The contract's cluster (derived), one subcluster ``main`` taking every host."""
    doc = {
        "name": name,
        "metricConfig": METRICS,
        "subClusters": [
            {
                "name": "main",
                "nodes": "*",
                "processorType": "test",
                "socketsPerNode": 2,
                "coresPerSocket": 2,
                "threadsPerCore": 2,
                "flopRateScalar": {"unit": {"base": "F/s", "prefix": "G"}, "value": 10},
                "flopRateSimd": {"unit": {"base": "F/s", "prefix": "G"}, "value": 40},
                "memoryBandwidth": {"unit": {"base": "B/s", "prefix": "G"}, "value": 100},
                "topology": TOPOLOGY,
            }
        ],
    }
    return msgspec.convert(doc, Cluster).derive()


# ------------------------------------------------------------------------------------------- dataset


@dataclass(frozen=True, slots=True)
class SampleSeries:
    """One written series: ``type``/``type_id`` are None at node level."""

    metric: str
    hostname: str
    type: str | None
    type_id: str | None
    ts: np.ndarray
    values: np.ndarray


def _value(metric: str, host: int, unit: int, k: np.ndarray) -> np.ndarray:
    """Sample values, all exact in float32 and in three-decimal JSON."""
    if metric == "cpu_load":
        return host + 0.5 * (k % 8)
    if metric == "flops_any":
        return 10.0 * host + unit + (k % 4)
    if metric == "mem_bw":
        return 100.0 + 10 * host + unit + (k % 2)
    if metric == "mem_used":
        return 4.0 + host + 0.25 * (k % 4)
    if metric == "cpu_power":
        return 50.0 + 10 * unit + host + 0.0 * k
    raise KeyError(metric)


_NATIVE = {"cpu_load": (None, [None]), "mem_used": (None, [None]), "flops_any": ("hwthread", list(range(8)))}
for _m in ("mem_bw", "cpu_power"):
    _NATIVE[_m] = ("socket", [0, 1])


@dataclass
class MetricDataset:
    """The contract's data: see the module docstring."""

    t0: int
    points: int
    prefix: str
    now: int = field(default_factory=lambda: int(time.time()) // STEP * STEP)
    cluster: Cluster = field(default_factory=make_cluster)

    @property
    def hosts(self) -> list[str]:
        return [f"{self.prefix}a", f"{self.prefix}b"]

    @property
    def stop(self) -> int:
        return self.t0 + self.points * STEP

    def job(self, **kw: Any) -> Job:
        """The two-node job over the whole dataset (all hardware threads)."""
        fields: dict[str, Any] = {
            "job_id": 4711,
            "user": "alice",
            "project": "p",
            "cluster": CLUSTER,
            "sub_cluster": "main",
            "start_time": self.t0,
            "duration": self.points * STEP,
            "num_nodes": 2,
            "num_hwthreads": 16,
            "job_state": "completed",
            "monitoring_status": 1,
            "resources": [Resource(h, hwthreads=list(range(8))) for h in self.hosts],
            "id": 1,
        }
        fields.update(kw)
        return Job(**fields)

    def series(self, *, fresh: bool = False) -> list[SampleSeries]:
        """The job's samples, or (``fresh``) the health-check samples at now-60 and now: every metric of
        host a, only ``cpu_load`` of host b."""
        out: list[SampleSeries] = []
        k = np.arange(self.points)
        for hi, host in enumerate(self.hosts):
            for metric in METRIC_NAMES:
                if fresh and hi == 1 and metric != "cpu_load":
                    continue
                typ, units = _NATIVE[metric]
                for u in units:
                    if fresh:
                        ts = np.array([self.now - STEP, self.now], dtype=np.int64)
                        vals = np.array([1.0, 2.0])
                    else:
                        ts = self.t0 + k * STEP
                        vals = _value(metric, hi, u or 0, k).astype(np.float64)
                    out.append(SampleSeries(metric, host, typ, None if u is None else str(u), ts, vals))
        return out

    def line_protocol(
        self, *, fresh: bool = False, with_fresh: bool = False, cluster_tag: bool = True
    ) -> bytes:
        """cc-metric-collector's line protocol of `series` (timestamps in seconds); ``with_fresh`` adds
        the fresh samples after the job's."""
        lines: list[str] = []
        groups = [self.series(fresh=fresh)] + ([self.series(fresh=True)] if with_fresh and not fresh else [])
        for group in groups:
            for s in group:
                tags = f",cluster={CLUSTER}" if cluster_tag else ""
                tags += f",hostname={s.hostname}"
                if s.type is not None:
                    tags += f",type={s.type},type-id={s.type_id}"
                for t, v in zip(s.ts.tolist(), s.values.tolist(), strict=True):
                    lines.append(f"{s.metric}{tags} value={v!r} {t}")
        return ("\n".join(lines) + "\n").encode()

    # -------------------------------------------------------------- expected values

    def native(self, metric: str, host: int, unit: int = 0) -> np.ndarray:
        return _value(metric, host, unit, np.arange(self.points)).astype(np.float64)

    def node(self, metric: str, host: int) -> np.ndarray:
        """Expected node-scope series."""
        typ, units = _NATIVE[metric]
        if typ is None:
            return self.native(metric, host)
        return np.sum([self.native(metric, host, u) for u in units], axis=0)

    def core(self, host: int, core: int) -> np.ndarray:
        """Expected core-scope ``flops_any`` (sum of the core's two hardware threads)."""
        return np.sum([self.native("flops_any", host, hw) for hw in TOPOLOGY["core"][core]], axis=0)


# ------------------------------------------------------------------------------------------ running


class LoopThread:
    """One event loop in a daemon thread for a whole test class (async clients stay on their loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="metric-contract", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def plugin_context(clusters: Sequence[Cluster], *, minimum_points: int = 1000, **services: Any) -> Any:
    """A `PluginContext` for a backend under test: the clusters' catalogue and the resampling setting,
    as `CoreServices` provides them."""
    from cc_core.config import load_config
    from cc_core.context import PluginContext
    from cc_core.services import ClusterCatalog

    catalog = ClusterCatalog({c.name: c for c in clusters})
    return PluginContext(
        load_config(None, environ={}),
        None,  # type: ignore[arg-type]
        services={"clusters": catalog, "resampling_minimum_points": minimum_points, **services},
    )


@dataclass
class ContractEnv:
    loop: LoopThread
    dataset: MetricDataset
    backend: MetricBackend
    context: Any

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro)


def _close_stats(got: Any, expected: np.ndarray) -> None:
    e = expected[~np.isnan(expected)]
    for name, want in (("avg", float(e.mean())), ("min", float(e.min())), ("max", float(e.max()))):
        have = float(getattr(got, name))
        assert math.isclose(have, want, abs_tol=0.006), f"{name}: {have} != {want}"


def _by_host(series: Sequence[Any]) -> dict[tuple[str, str | None], Any]:
    return {(s.hostname, s.id): s for s in series}


class MetricBackendContract:
    """Subclass (as ``Test…``) and implement `make_backend`; see the module docstring."""

    POINTS: ClassVar[int] = 40
    MINIMUM_POINTS: ClassVar[int] = 20
    #: Fixtures (e.g. ``"prometheus_server"``) made available to `make_backend` as ``self.fixtures[name]``.
    FIXTURES: ClassVar[tuple[str, ...]] = ()
    fixtures: dict[str, Any]  # set on the instance that builds the backend (no __init__: pytest)

    def t0(self) -> int:
        """Start of the job's data: a fixed time in 2023 (a multiple of 60)."""
        return 1_700_000_040

    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> MetricBackend:
        """Put ``dataset.series()`` and ``dataset.series(fresh=True)`` into the real server (or engine)
        and return a started backend built with ``context``."""
        raise NotImplementedError("subclasses of MetricBackendContract implement make_backend")

    async def close_backend(self, backend: MetricBackend) -> None:
        await backend.close()

    @pytest.fixture(scope="class")
    @classmethod
    def env(
        cls, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[ContractEnv]:
        """One backend with the dataset for the whole class (built by an instance of the class)."""
        suite = cls()
        suite.fixtures = {name: request.getfixturevalue(name) for name in cls.FIXTURES}
        loop = LoopThread()
        dataset = MetricDataset(t0=suite.t0(), points=cls.POINTS, prefix=f"c{secrets.token_hex(3)}")
        context = plugin_context([dataset.cluster], minimum_points=cls.MINIMUM_POINTS)
        tmp = tmp_path_factory.mktemp("metric-contract")
        try:
            backend = loop.run(suite.make_backend(dataset, context, tmp))
        except BaseException:
            loop.close()
            raise
        try:
            yield ContractEnv(loop, dataset, backend, context)
        finally:
            try:
                loop.run(suite.close_backend(backend))
            finally:
                loop.close()

    # ------------------------------------------------------------------------------- tests

    def test_implements_the_protocol(self, env: ContractEnv) -> None:
        assert isinstance(env.backend, MetricBackend)
        assert isinstance(type(env.backend).kind, str) and type(env.backend).kind

    def test_load_data_node_scope(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(
            env.backend.load_data(ds.job(), ["cpu_load", "flops_any", "mem_bw", "mem_used"], ["node"], 0)
        )
        assert set(data) == {"cpu_load", "flops_any", "mem_bw", "mem_used"}
        for metric in data:
            assert set(data[metric]) == {"node"}, metric
            jm = data[metric]["node"]
            assert jm.timestep == STEP
            assert jm.unit == ds.cluster.metric(metric).unit  # type: ignore[union-attr]
            got = _by_host(jm.series)
            assert set(got) == {(h, None) for h in ds.hosts}, metric
            for hi, host in enumerate(ds.hosts):
                s = got[(host, None)]
                np.testing.assert_array_equal(np.asarray(s.data, dtype=np.float64), ds.node(metric, hi))
                _close_stats(s.statistics, ds.node(metric, hi))

    def test_load_data_core_scope_and_coarser_native_scopes(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(env.backend.load_data(ds.job(), ["flops_any", "cpu_load", "mem_bw"], ["core"], 0))
        core = data["flops_any"]["core"]
        got = _by_host(core.series)
        assert set(got) == {(h, str(c)) for h in ds.hosts for c in range(4)}
        for hi, host in enumerate(ds.hosts):
            for c in range(4):
                np.testing.assert_array_equal(np.asarray(got[(host, str(c))].data), ds.core(hi, c))
        # A native scope coarser than the requested one is delivered at the native scope.
        assert set(data["cpu_load"]) == {"node"}
        sockets = _by_host(data["mem_bw"]["socket"].series)
        assert set(sockets) == {(h, str(s)) for h in ds.hosts for s in range(2)}
        np.testing.assert_array_equal(np.asarray(sockets[(ds.hosts[1], "1")].data), ds.native("mem_bw", 1, 1))

    def test_several_scopes_at_once(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(env.backend.load_data(ds.job(), ["flops_any"], ["node", "socket", "core"], 0))
        assert set(data["flops_any"]) == {"node", "socket", "core"}
        sockets = _by_host(data["flops_any"]["socket"].series)
        want = np.sum([ds.core(0, c) for c in CORES_OF_SOCKET[1]], axis=0)
        np.testing.assert_array_equal(np.asarray(sockets[(ds.hosts[0], "1")].data), want)

    def test_resolution_downsamples(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(env.backend.load_data(ds.job(), ["cpu_load"], ["node"], 2 * STEP))
        jm = data["cpu_load"]["node"]
        assert jm.timestep == 2 * STEP
        for s in jm.series:
            hi = ds.hosts.index(s.hostname)
            want = ds.node("cpu_load", hi)
            assert len(s.data) == ds.points // 2
            assert s.data[0] == want[0] and s.data[-1] == want[-1]
            assert set(np.asarray(s.data).tolist()) <= set(want.tolist())  # LTTB picks, never invents
            _close_stats(s.statistics, want)  # statistics of the native data

    def test_load_stats(self, env: ContractEnv) -> None:
        ds = env.dataset
        stats = env.run(env.backend.load_stats(ds.job(), ["cpu_load", "flops_any", "mem_used"]))
        assert set(stats) == {"cpu_load", "flops_any", "mem_used"}
        for metric, per_host in stats.items():
            assert set(per_host) == set(ds.hosts)
            for hi, host in enumerate(ds.hosts):
                _close_stats(per_host[host], ds.node(metric, hi))

    def test_load_scoped_stats(self, env: ContractEnv) -> None:
        ds = env.dataset
        stats = env.run(env.backend.load_scoped_stats(ds.job(), ["flops_any", "mem_used"], ["core"]))
        items = {(s.hostname, s.id): s for s in stats["flops_any"]["core"]}
        assert set(items) == {(h, str(c)) for h in ds.hosts for c in range(4)}
        for hi, host in enumerate(ds.hosts):
            for c in range(4):
                _close_stats(items[(host, str(c))].data, ds.core(hi, c))
        assert set(stats["mem_used"]) == {"node"}
        nodes = {s.hostname: s for s in stats["mem_used"]["node"]}
        _close_stats(nodes[ds.hosts[1]].data, ds.node("mem_used", 1))

    def test_load_node_data(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(
            env.backend.load_node_data(CLUSTER, ["cpu_load", "mem_used"], ds.hosts, ["node"], ds.t0, ds.stop)
        )
        assert set(data) == set(ds.hosts)
        for hi, host in enumerate(ds.hosts):
            assert set(data[host]) == {"cpu_load", "mem_used"}
            for metric, items in data[host].items():
                assert len(items) == 1 and len(items[0].series) == 1
                np.testing.assert_array_equal(np.asarray(items[0].series[0].data), ds.node(metric, hi))
        everything = env.run(
            env.backend.load_node_data(CLUSTER, ["cpu_load"], None, ["node"], ds.t0, ds.stop)
        )
        assert set(ds.hosts) <= set(everything)

    def test_load_node_list_data(self, env: ContractEnv) -> None:
        ds = env.dataset
        data = env.run(
            env.backend.load_node_list_data(
                CLUSTER, "main", [ds.hosts[0]], ["flops_any", "cpu_load"], ["core"], 0, ds.t0, ds.stop
            )
        )
        assert set(data) == {ds.hosts[0]}
        host = data[ds.hosts[0]]
        cores = _by_host(host["flops_any"]["core"].series)
        assert set(cores) == {(ds.hosts[0], str(c)) for c in range(4)}
        np.testing.assert_array_equal(np.asarray(cores[(ds.hosts[0], "2")].data), ds.core(0, 2))
        np.testing.assert_array_equal(
            np.asarray(host["cpu_load"]["node"].series[0].data), ds.node("cpu_load", 0)
        )

    def test_health_check(self, env: ContractEnv) -> None:
        ds = env.dataset
        health = env.run(env.backend.health_check(CLUSTER, [*ds.hosts, f"{ds.prefix}ghost"], METRIC_NAMES))
        a, b, ghost = health[ds.hosts[0]], health[ds.hosts[1]], health[f"{ds.prefix}ghost"]
        assert a.state == "full" and not a.missing and not a.degraded
        assert b.state == "partial"
        assert "cpu_load" not in b.missing + b.degraded
        assert set(b.missing + b.degraded) == set(METRIC_NAMES) - {"cpu_load"}
        assert ghost.state == "failed"

    def test_unknown_metrics_and_hosts_are_left_out(self, env: ContractEnv) -> None:
        ds = env.dataset
        job = ds.job(
            resources=[
                Resource(ds.hosts[0], hwthreads=list(range(8))),
                Resource(f"{ds.prefix}ghost", hwthreads=[0]),
            ],
        )
        data = env.run(env.backend.load_data(job, ["cpu_load", "no_such_metric"], ["node"], 0))
        assert set(data) == {"cpu_load"}
        assert [s.hostname for s in data["cpu_load"]["node"].series] == [ds.hosts[0]]
        stats = env.run(env.backend.load_stats(job, ["cpu_load", "no_such_metric"]))
        assert set(stats) == {"cpu_load"} and set(stats["cpu_load"]) == {ds.hosts[0]}
        nodes = env.run(
            env.backend.load_node_data(CLUSTER, ["cpu_load"], [f"{ds.prefix}ghost"], ["node"], ds.t0, ds.stop)
        )
        assert not nodes.get(f"{ds.prefix}ghost")

    def test_time_range_outside_the_data_is_empty(self, env: ContractEnv) -> None:
        ds = env.dataset
        job = ds.job(start_time=ds.t0 - 100 * STEP, duration=50 * STEP)
        data = env.run(env.backend.load_data(job, ["cpu_load"], ["node"], 0))
        for jm in data.get("cpu_load", {}).values():
            for s in jm.series:
                assert np.isnan(np.asarray(s.data, dtype=np.float64)).all() or len(s.data) == 0

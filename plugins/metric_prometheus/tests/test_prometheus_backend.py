"""The Prometheus backend passes the metric-backend contract against a real Prometheus, twice: with
recent data pushed through remote write, and with historical (2023) job data backfilled into TSDB
blocks — the two ways job data gets into Prometheus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cc_metric_prometheus.backend import PrometheusBackend
from cc_metric_prometheus.config import PrometheusConfig

from cc_core.testing import PrometheusServer
from cc_core.testing.metric_contract import CLUSTER, MetricBackendContract, MetricDataset, SampleSeries

pytestmark = pytest.mark.service("prometheus")


def _labels(s: SampleSeries) -> dict[str, str]:
    labels = {"__name__": s.metric, "cluster": CLUSTER, "hostname": s.hostname}
    if s.type is not None:
        labels.update(type=s.type, type_id=str(s.type_id))
    return labels


def remote_write(server: PrometheusServer, series: list[SampleSeries]) -> None:
    server.remote_write(
        [
            (_labels(s), [(int(t) * 1000, float(v)) for t, v in zip(s.ts, s.values, strict=True)])
            for s in series
        ]
    )


def openmetrics(series: list[SampleSeries]) -> str:
    lines = []
    for s in series:
        labels = ",".join(f'{k}="{v}"' for k, v in _labels(s).items() if k != "__name__")
        lines.extend(
            f"{s.metric}{{{labels}}} {float(v)!r} {int(t)}" for t, v in zip(s.ts, s.values, strict=True)
        )
    # OpenMetrics wants the samples of one metric family together.
    return "\n".join(sorted(lines, key=lambda line: line.split("{", 1)[0])) + "\n# EOF\n"


class _Prometheus(MetricBackendContract):
    FIXTURES = ("prometheus_server",)

    @property
    def server(self) -> PrometheusServer:
        return self.fixtures["prometheus_server"]  # type: ignore[no-any-return]

    def backend(self, context: Any) -> PrometheusBackend:
        cfg = PrometheusConfig(scope="*", url=self.server.url, query_defaults="none")
        return PrometheusBackend(cfg, context)


class TestPrometheusRemoteWrite(_Prometheus):
    def t0(self) -> int:
        # Recent enough for remote write (within the head block's hour), old enough that the job's
        # data is out of the health check's window even with Prometheus' 5 m lookback.
        return (int(time.time()) // 60 - self.POINTS - 16) * 60

    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> PrometheusBackend:
        remote_write(self.server, dataset.series() + dataset.series(fresh=True))
        backend = self.backend(context)
        await backend.start()
        return backend


class TestPrometheusBackfill(_Prometheus):
    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> PrometheusBackend:
        self.server.backfill(openmetrics(dataset.series()))
        remote_write(self.server, dataset.series(fresh=True))
        backend = self.backend(context)
        await backend.start()
        return backend


def test_templates_render_with_filters() -> None:
    from cc_core.testing.metric_contract import make_cluster

    cfg = PrometheusConfig(
        scope="*",
        url="http://x",
        queries={"mem_used": "node_memory_Active_bytes{{filter}} / 1e9"},
        cluster_label="",
    )
    b = PrometheusBackend(cfg)
    c = make_cluster()
    assert (
        b.render(c.metric("mem_used"), "ctest", ["n-1", "n.2"])
        == r'node_memory_Active_bytes{hostname=~"n\\-1|n\\.2"} / 1e9'
    )
    assert b.render(c.metric("flops_any"), "ctest", None) == 'flops_any{hostname=~".+"}'
    assert "[240s]" in b.render(c.metric("cpu_load").__class__(name="cpu_user", timestep=60), "ctest", ["a"])


def test_node_exporter_defaults(prometheus_server: PrometheusServer) -> None:
    """node_load1, MemTotal - MemAvailable and per-CPU user time rates, as node-exporter exports them."""
    import msgspec
    import numpy as np

    from cc_core.schema import Job, Resource
    from cc_core.schema.cluster import Cluster
    from cc_core.testing.metric_contract import TOPOLOGY, LoopThread, plugin_context

    cluster = msgspec.convert(
        {
            "name": "nodeexp",
            "metricConfig": [
                {
                    "name": "cpu_load",
                    "scope": "node",
                    "aggregation": "avg",
                    "timestep": 60,
                    "unit": {"base": ""},
                },
                {"name": "mem_used", "scope": "node", "timestep": 60, "unit": {"base": "B", "prefix": "G"}},
                {
                    "name": "cpu_user",
                    "scope": "hwthread",
                    "aggregation": "avg",
                    "timestep": 60,
                    "unit": {"base": "%"},
                },
            ],
            "subClusters": [{"name": "main", "nodes": "*", "topology": TOPOLOGY}],
        },
        Cluster,
    ).derive()
    host = f"ne{int(time.time() * 1000) % 10**8}"
    t0 = (int(time.time()) // 60 - 30) * 60
    ts = [t0 + 60 * k for k in range(20)]
    base = {"cluster": "nodeexp", "hostname": host}
    series: list[Any] = [
        ({"__name__": "node_load1", **base}, [(t * 1000, 2.5) for t in ts]),
        ({"__name__": "node_memory_MemTotal_bytes", **base}, [(t * 1000, 64e9) for t in ts]),
        ({"__name__": "node_memory_MemAvailable_bytes", **base}, [(t * 1000, 48e9) for t in ts]),
    ]
    for cpu in range(8):
        labels = {"__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": "user", **base}
        series.append((labels, [(t * 1000, 1000.0 + 30.0 * k) for k, t in enumerate(ts)]))  # 50 % busy
    prometheus_server.remote_write(series)

    loop = LoopThread()
    try:
        backend = PrometheusBackend(
            PrometheusConfig(scope="*", url=prometheus_server.url), plugin_context([cluster])
        )
        job = Job(
            job_id=1,
            user="u",
            project="p",
            cluster="nodeexp",
            sub_cluster="main",
            start_time=t0 + 600,
            duration=600,
            num_nodes=1,
            resources=[Resource(host, hwthreads=list(range(8)))],
        )
        data = loop.run(backend.load_data(job, ["cpu_load", "mem_used", "cpu_user"], ["node", "core"], 0))
        np.testing.assert_allclose(data["cpu_load"]["node"].series[0].data, 2.5)
        np.testing.assert_allclose(data["mem_used"]["node"].series[0].data, 16.0)
        np.testing.assert_allclose(data["cpu_user"]["node"].series[0].data, 50.0)  # avg over 8 threads
        assert len(data["cpu_user"]["core"].series) == 4
        loop.run(backend.close())
    finally:
        loop.close()

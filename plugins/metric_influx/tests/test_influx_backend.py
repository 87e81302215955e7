"""The InfluxDB backend passes the metric-backend contract against a real influxd 1.x, with the data
written as cc-metric-collector's InfluxDB sink writes it (one measurement per metric, ``type``/``type-id``
tags); plus configurable measurement/tag names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cc_metric_influx.backend import InfluxBackend
from cc_metric_influx.config import InfluxConfig

from cc_core.testing import InfluxServer
from cc_core.testing.metric_contract import (
    LoopThread,
    MetricBackendContract,
    MetricDataset,
    make_cluster,
    plugin_context,
)

pytestmark = pytest.mark.service("influxdb")


class TestInflux(MetricBackendContract):
    FIXTURES = ("influxdb_server",)

    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> InfluxBackend:
        server: InfluxServer = self.fixtures["influxdb_server"]
        server.write(dataset.line_protocol(with_fresh=True).decode())
        backend = InfluxBackend(InfluxConfig(scope="*", url=server.url, database=server.database), context)
        await backend.start()
        return backend


def test_configurable_measurement_and_tag_names(influxdb_server: InfluxServer) -> None:
    t0 = 1_700_000_040
    lines = "\n".join(
        f"memory,site=ctest,node=cfg{h},core={c},kind=core used={h * 10 + c + k} {t0 + 60 * k}"
        for h in range(2)
        for c in range(2)
        for k in range(5)
    )
    influxdb_server.write(lines)
    cfg = InfluxConfig(
        scope="*",
        url=influxdb_server.url,
        database=influxdb_server.database,
        host_tag="node",
        cluster_tag="site",
        type_tag="kind",
        type_id_tag="core",
        field="used",
        measurements={"flops_any": "memory"},
    )
    loop = LoopThread()
    try:
        backend = InfluxBackend(cfg, plugin_context([make_cluster()]))
        data = loop.run(backend.load_node_data("ctest", ["flops_any"], ["cfg1"], ["node"], t0, t0 + 300))
        series = data["cfg1"]["flops_any"][0].series[0]
        # flops_any is a hardware-thread metric; core-level rows have no hwthread children, so the
        # node value is the sum over the cores found: (10+k) + (11+k).
        np.testing.assert_array_equal(series.data, [21.0 + 2 * k for k in range(5)])
        assert 'FROM "memory"' in backend.statement(
            make_cluster().metric("flops_any"), "ctest", ["a/b"], 0, 60
        )  # type: ignore[arg-type]
        loop.run(backend.close())
    finally:
        loop.close()


def test_server_errors_are_reported(influxdb_server: InfluxServer) -> None:
    cfg = InfluxConfig(scope="*", url=influxdb_server.url, database="no_such_db")
    loop = LoopThread()
    try:
        backend = InfluxBackend(cfg, plugin_context([make_cluster()]))
        with pytest.raises(Exception, match="database not found"):
            loop.run(backend.load_node_data("ctest", ["cpu_load"], ["x"], ["node"], 0, 600))
        loop.run(backend.close())
    finally:
        loop.close()

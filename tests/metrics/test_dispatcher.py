"""The metric dispatcher: routing, live vs archive, cache, statistics series, synthesised node scope,
resampling of archived data, averages; and the JobData helpers it uses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cc_core.metrics import jobdata
from cc_core.metrics.errors import MetricDataError, NoMetricBackend
from cc_core.schema import Job, Resource
from cc_core.schema.job import JobStatistics
from cc_core.schema.metrics import JobMetric, MetricStatistics, Series
from cc_core.schema.units import Unit
from cc_core.testing.metric_contract import CLUSTER, MetricDataset, make_cluster
from cc_core.testing.site import make_site

from .conftest import App, open_app

T0 = 1_700_000_040


def test_routing_follows_upstream_order(tmp_path: Path) -> None:
    from cc_metric_ccms.backend import InternalStore
    from cc_metric_ccms.client import ExternalStore

    externals = [
        {"scope": "ctest-main", "url": "http://a:1"},
        {"scope": "ctest", "url": "http://b:1"},
        {"kind": "cc-metric-store", "scope": "*", "url": "http://c:1"},
    ]
    site = make_site(tmp_path / "s", [make_cluster()], config={"metric-store-external": externals})
    with open_app(site) as client:
        d = client.app.state["services"].metrics
        assert isinstance(d.internal, InternalStore)
        assert [b.config.url for b in (d.backend_for("ctest", "main"), d.backend_for("ctest", "other"))] == [
            "http://a:1",
            "http://b:1",
        ]
        assert d.backend_for("fritz", "x").config.url == "http://c:1"
        assert all(isinstance(b, ExternalStore) for b in d.external.values())
    site = make_site(
        tmp_path / "t",
        [make_cluster()],
        config={"metric-store": None, "metric-store-external": externals[:1]},
    )
    with open_app(site) as client:
        d = client.app.state["services"].metrics
        assert d.internal is None
        with pytest.raises(NoMetricBackend, match="no metric store is configured for cluster 'fritz'"):
            d.backend_for("fritz")


def _write(app: App, ds: MetricDataset) -> None:
    assert app.client.post("/api/write", content=ds.line_protocol(), headers=app.auth()).status_code == 200


def test_live_data_cache_and_statistics_series(app: App) -> None:
    ds = MetricDataset(t0=T0, points=30, prefix="big")
    d = app.services.metrics
    hosts = [f"big{i}" for i in range(8)]
    body = "\n".join(
        f"cpu_load,cluster={CLUSTER},hostname={h} value={i + (k % 3)} {T0 + 60 * k}"
        for i, h in enumerate(hosts)
        for k in range(30)
    )
    assert app.client.post("/api/write", content=body, headers=app.auth()).status_code == 200
    job = ds.job(resources=[Resource(h) for h in hosts], num_nodes=8, job_state="running", id=5)
    data = app.call(d.load_data, job, ["cpu_load"], ["node"], 0)
    jm = data["cpu_load"]["node"]
    assert len(jm.series) == 8 and jm.statistics_series is not None
    np.testing.assert_array_equal(jm.statistics_series.min, [k % 3 for k in range(30)])
    np.testing.assert_array_equal(jm.statistics_series.max, [7 + k % 3 for k in range(30)])
    np.testing.assert_array_equal(jm.statistics_series.median, [3.5 + k % 3 for k in range(30)])
    assert app.call(d.load_data, job, ["cpu_load"], ["node"], 0) is data  # cached
    small = job.__class__(
        **{
            **{f: getattr(job, f) for f in job.__struct_fields__},
            "id": 6,
            "num_nodes": 2,
            "resources": [Resource(h) for h in hosts[:2]],
        }
    )
    assert (
        app.call(d.load_data, small, ["cpu_load"], ["node"], 0)["cpu_load"]["node"].statistics_series is None
    )
    d.invalidate(job)
    assert app.call(d.load_data, job, ["cpu_load"], ["node"], 0) is not data
    stats = app.call(d.load_job_stats, job, ["cpu_load", "mem_used"])
    assert stats["cpu_load"] == MetricStatistics(avg=4.5, min=0.0, max=9.0)  # Σ node avgs / 8 nodes
    assert stats["mem_used"] == MetricStatistics(0.0, 0.0, 0.0)  # no data: zeros, as upstream
    averages = app.call(d.load_averages, [job, small], ["cpu_load", "mem_used"])
    assert averages[0].tolist() == [4.5, 1.5] and all(math.isnan(x) for x in averages[1])


def _archive_job(app: App, job: Job, data: dict) -> None:
    app.call(app.services.archive.import_job, job, data)


def test_archived_data_is_resampled_filtered_and_gets_a_node_scope(app: App) -> None:
    d = app.services.metrics
    n = 1200
    core = [
        Series(f"arc{h}", np.arange(n, dtype=np.float64) % 50 + c, MetricStatistics(1, 0, 2), id=str(c))
        for h in range(2)
        for c in range(4)
    ]
    data = {
        "flops_any": {"core": JobMetric(Unit("F/s", "G"), 60, core)},
        "mem_bw": {
            "socket": JobMetric(Unit("B/s", "G"), 60, [Series("arc0", np.ones(n), id="0")]),
            "node": JobMetric(Unit("B/s", "G"), 60, [Series("arc0", np.ones(n) * 2)]),
        },
    }
    job = Job(
        job_id=9,
        user="u",
        project="p",
        cluster=CLUSTER,
        sub_cluster="main",
        start_time=T0,
        duration=60 * n,
        num_nodes=2,
        resources=[Resource("arc0"), Resource("arc1")],
        job_state="completed",
        monitoring_status=3,
        id=77,
        statistics={"flops_any": JobStatistics(Unit("F/s", "G"), avg=1.5, min=0.25, max=9.0)},
    )
    _archive_job(app, job, data)
    got = app.call(d.load_data, job, ["flops_any", "mem_bw"], ["node"], 600)
    node = got["flops_any"]["node"]  # synthesised from the cores: sum per host
    assert [s.hostname for s in node.series] == ["arc0", "arc1"]
    assert node.timestep == 600 and len(node.series[0].data) == n // 10
    assert got["flops_any"]["core"].timestep == 600
    assert set(got["mem_bw"]) == {"node"}  # the requested scope of a metric stored at several
    native = app.call(d.load_data, job, ["flops_any"], ["node"], 0)["flops_any"]["node"]
    np.testing.assert_array_equal(native.series[1].data, (np.arange(n) % 50) * 4 + 6)
    assert native.series[1].statistics.max == 49 * 4 + 6
    assert app.call(d.load_job_stats, job, ["flops_any", "cpu_load"]) == {
        "flops_any": MetricStatistics(1.5, 0.25, 9.0),
        "cpu_load": MetricStatistics(0.0, 0.0, 0.0),
    }
    scoped = app.call(d.load_scoped_job_stats, job, ["flops_any"], ["core"])
    assert len(scoped["flops_any"]["core"]) == 8
    assert app.call(d.load_averages, [job], ["flops_any"])[0].tolist() == [1.5]
    missing = Job(**{**{f: getattr(job, f) for f in job.__struct_fields__}, "job_id": 10, "id": 78})
    with pytest.raises(MetricDataError, match="job 10"):
        app.call(d.load_data, missing, ["flops_any"], ["node"], 0)


# ------------------------------------------------------------------------------------- helpers


def test_statistics_series_is_nan_aware() -> None:
    rows = [
        np.array([1.0, np.nan, 5.0]),
        np.array([2.0, np.nan, np.nan]),
        np.array([3.0, 4.0, np.nan]),
        np.array([10.0, 1.0]),
    ]
    ss = jobdata.statistics_series([Series("h", r) for r in rows])
    np.testing.assert_array_equal(ss.min, [1.0, np.nan, np.nan])  # fewer than three values: NaN
    np.testing.assert_array_equal(ss.median, [2.5, np.nan, np.nan])
    np.testing.assert_array_equal(ss.max, [10.0, np.nan, np.nan])
    np.testing.assert_array_equal(ss.mean, [4.0, np.nan, np.nan])


def test_round2_is_half_away_from_zero() -> None:
    assert [jobdata.round2(x) for x in (0.125, -0.125, 2.675000001, 1.005)] == [0.13, -0.13, 2.68, 1.0]
    assert math.isnan(jobdata.round2(math.nan))


def test_add_node_scope_keeps_gaps() -> None:
    data = {
        "mem_bw": {
            "socket": JobMetric(
                Unit("B/s"),
                60,
                [
                    Series("h", np.array([1.0, np.nan, np.nan]), id="0"),
                    Series("h", np.array([2.0, 3.0, np.nan]), id="1"),
                ],
            )
        }
    }
    assert jobdata.add_node_scope(data, "mem_bw")
    (s,) = data["mem_bw"]["node"].series
    np.testing.assert_array_equal(s.data, [3.0, 3.0, np.nan])
    assert s.statistics == MetricStatistics(3.0, 3.0, 3.0)
    assert not jobdata.add_node_scope(data, "mem_bw")


def test_cache_budget_and_ttl() -> None:
    from cc_core.metrics.cache import TTLCache

    now = [0.0]
    cache: TTLCache[str] = TTLCache(max_bytes=100, clock=lambda: now[0])
    cache.put("a", "A", 60, ttl=10)
    cache.put("b", "B", 60, ttl=10)  # over budget: "a" (least recently used) goes
    assert cache.get("a") is None and cache.get("b") == "B"
    now[0] = 11
    assert cache.get("b") is None and cache.bytes == 0

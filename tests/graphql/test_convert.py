"""The pure conversion logic behind the resolvers (`cc_core.graphql.convert`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import SimpleNamespace as NS

import numpy as np
import pytest
from strawberry import UNSET

from cc_core.db.filters import JobFilter, OrderByInput, PageRequest
from cc_core.db.nodes import NodeFilter
from cc_core.graphql import convert
from cc_core.graphql import types as t
from cc_core.graphql.errors import InvalidInput

from .conftest import make_job


def test_footprint_split_at_the_last_underscore() -> None:
    assert convert.footprint_values(
        {"flops_any_avg": 1.0, "mem_bw_max": 2.0, "cpu_load_avg": 3.0, "x": 4.0}
    ) == [
        ("flops_any", "avg", 1.0),
        ("mem_bw", "max", 2.0),
        ("cpu_load", "avg", 3.0),
        ("", "x", 4.0),  # upstream: no "_" → empty name, whole key as stat
    ]
    assert convert.footprint_values(None) == []


@pytest.mark.parametrize(
    ("metric", "hardware"),
    [
        ("cpu_power", "CPU"),
        ("CPU_energy", "CPU"),
        ("acc_power", "Accelerator"),
        ("acc_mem_power", "Accelerator"),  # first match wins: acc before mem
        ("mem_power", "Memory"),
        ("core_energy", "Core"),
        ("cPu_power", "Other"),  # upstream's patterns are cpu|Cpu|CPU only
        ("ib_power", "Other"),
    ],
)
def test_energy_footprint_hardware_classes(metric: str, hardware: str) -> None:
    assert convert.energy_hardware(metric) == hardware


def test_concurrent_jobs_only_for_shared_jobs_longer_than_ten_minutes() -> None:
    assert not convert.wants_concurrent_jobs(make_job(shared="none", duration=3600))
    assert not convert.wants_concurrent_jobs(make_job(shared="multi_user", duration=600))
    assert convert.wants_concurrent_jobs(make_job(shared="multi_user", duration=601))
    assert convert.wants_concurrent_jobs(make_job(shared="single_user", duration=9000))


def test_ids_pages_and_orders() -> None:
    assert convert.parse_id("42") == 42
    assert convert.parse_id(42) == 42
    for bad in ("abc", "4.2", "", True, None):
        with pytest.raises(InvalidInput, match="invalid job id"):
            convert.parse_id(bad)
    assert convert.page_request(UNSET) == PageRequest(items_per_page=50, page=1)  # upstream's default
    assert convert.page_request(None, default=None) is None
    assert convert.page_request(t.PageRequest(items_per_page=20, page=3)) == PageRequest(20, 3)
    assert convert.page_request(t.PageRequest(items_per_page=-1, page=7)) == PageRequest(-1, 7)
    with pytest.raises(InvalidInput, match="itemsPerPage must be positive or -1"):
        convert.page_request(t.PageRequest(items_per_page=0, page=1))
    with pytest.raises(InvalidInput, match=r"page\.page must be 1 or more"):
        convert.page_request(t.PageRequest(items_per_page=10, page=0))
    assert convert.order_by(t.OrderByInput(field="startTime", type="col")) == OrderByInput(
        "startTime", "col", "ASC"
    )
    desc = t.OrderByInput(field="flops_any_avg", type="foot", order=t.SortDirectionEnum.DESC)
    assert convert.order_by(desc) == OrderByInput("flops_any_avg", "foot", "DESC")
    assert convert.order_by(UNSET) is None


def test_job_filter_conversion() -> None:
    f = t.JobFilter(
        tags=["1", "2"],
        db_id=["7"],
        job_id=t.StringInput(starts_with="12", contains="ignored"),
        user=t.StringInput(eq="alice", neq="bob"),
        project=t.StringInput(in_=["a", "b"]),
        cluster=t.StringInput(contains="fr"),
        num_nodes=t.IntRange(from_=2, to=0),
        energy=t.FloatRange(from_=0.5, to=10),
        start_time=t.TimeRange(from_=datetime(2024, 1, 1, tzinfo=UTC), range=""),
        state=["running", "completed"],
        metric_stats=[t.MetricStatItem(metric_name="flops_any_avg", range=t.FloatRange(from_=1, to=2))],
        schedule="batch",
        array_job_id=99,
    )
    assert convert.job_filter(f) == {
        "tags": [1, 2],
        "dbId": [7],
        "jobId": {"startsWith": "12"},  # upstream applies only the first set operator
        "user": {"eq": "alice"},
        "project": {"in": ["a", "b"]},
        "cluster": {"contains": "fr"},
        "numNodes": {"from": 2, "to": 0},
        "energy": {"from": 0.5, "to": 10.0},
        "startTime": {"from": 1704067200},
        "state": ["running", "completed"],
        "metricStats": [{"metricName": "flops_any_avg", "range": {"from": 1.0, "to": 2.0}}],
        "schedule": "batch",
        "arrayJobId": 99,
    }
    assert convert.job_filter(t.JobFilter()) == {}
    assert convert.job_filters(UNSET) == []
    # ... and the database's filter struct accepts exactly that form
    (db_filter,) = convert.job_filters([f])
    assert isinstance(db_filter, JobFilter)
    assert db_filter.job_id is not None and db_filter.job_id.starts_with == "12"
    assert db_filter.start_time is not None and db_filter.start_time.from_ == 1704067200
    assert db_filter.metric_stats is not None and db_filter.metric_stats[0].range.to == 2.0
    assert convert.job_filter(t.JobFilter(start_time=t.TimeRange(range="last24h"))) == {
        "startTime": {"range": "last24h"}
    }


def test_filter_refuses_bad_ids_and_metric_names() -> None:
    with pytest.raises(InvalidInput, match="invalid tag id 'x'"):
        convert.job_filter(t.JobFilter(tags=["x"]))
    bad = t.MetricStatItem(metric_name="flops'); DROP", range=t.FloatRange(from_=0, to=1))
    with pytest.raises(InvalidInput, match="only letters, digits and _"):
        convert.job_filter(t.JobFilter(metric_stats=[bad]))


def test_node_filter_conversion() -> None:
    f = t.NodeFilter(hostname=t.StringInput(ends_with="01"), scheduler_state="idle", time_start=100)
    assert convert.node_filter(f) == {
        "hostname": {"endsWith": "01"},
        "schedulerState": "idle",
        "timeStart": 100,
    }
    (db_filter,) = convert.node_filters([f])
    assert isinstance(db_filter, NodeFilter)
    assert (db_filter.scheduler_state, db_filter.time_start) == ("idle", 100)


def test_concurrent_jobs_list_query() -> None:
    items = [NS(id=1, job_id=11), NS(id=2, job_id=12)]
    assert convert.concurrent_list_query("fritz", items) == "cluster=fritz&jobId=11&jobId=12"
    assert convert.concurrent_list_query("fritz", []) == "cluster=fritz"


def test_metric_histogram_specs_pick_peak_like_upstream() -> None:
    from cc_core.schema.cluster import Cluster, MetricConfig
    from cc_core.schema.units import Unit

    def cluster(name: str, peak: float, footprint: str = "avg") -> Cluster:
        mc = MetricConfig(name="flops_any", unit=Unit("F/s", "G"), peak=peak, footprint=footprint)
        return Cluster(name=name, metric_config=[mc])

    clusters = [cluster("a", 100.0), cluster("b", 500.0, "max")]
    assert convert.metric_histogram_specs(["flops_any"], clusters, "a") == [
        ("flops_any", 100.0, "avg", "GF/s")
    ]
    assert convert.metric_histogram_specs(["flops_any"], clusters, None) == [
        ("flops_any", 500.0, "avg", "GF/s")
    ]
    # no peak in the filtered cluster: the largest of all clusters
    assert convert.metric_histogram_specs(["flops_any"], [cluster("a", 0.0), cluster("b", 50.0)], "a") == [
        ("flops_any", 50.0, "avg", "GF/s")
    ]
    assert convert.metric_histogram_specs(["nope"], clusters, None) == []


def test_roofline_tiles_follow_upstreams_binning() -> None:
    flops = np.array([10.0, 100.0, 1000.0, math.nan, 0.0, 1e9])
    membw = np.array([1.0, 10.0, 1.0, 1.0, 1.0, 1.0])
    tiles = convert.roofline_tiles(
        [(flops, membw)], rows=2, cols=4, min_x=1, min_y=1, max_x=10000, max_y=10000
    )
    # x = log10(flops/membw) in [0, 4): cols of width 1; y = log10(flops) in [0, 4]: rows of width 2
    expected = np.zeros((2, 4))
    expected[0, 1] = 1  # flops 10: x 1, y 1 → row 0
    expected[1, 1] = 1  # flops 100, membw 10: x 1, y 2 → row 1
    expected[1, 3] = 1  # flops 1000: x 3, y 3 → row 1
    assert np.array_equal(tiles, expected)  # NaN, log10(0) and the out-of-box sample are skipped
    assert convert.roofline_tiles([], 0, 3, 1, 1, 2, 2).shape == (0, 3)


def test_time_weights_are_minutes_times_count_or_one() -> None:
    jobs = [
        NS(duration=600, num_nodes=2, num_acc=0, num_hwthreads=4),
        NS(duration=60, num_nodes=1, num_acc=4, num_hwthreads=0),
    ]
    nodes, accs, cores = convert.time_weights(jobs)
    assert nodes.tolist() == [20.0, 1.0]
    assert accs.tolist() == [1.0, 4.0]
    assert cores.tolist() == [40.0, 1.0]


def test_cluster_metric_sum_converts_to_tera_and_rounds_like_go() -> None:
    series = [np.array([1000.0, math.nan, 2.0]), np.array([5.0, 7.0, 3.0]), np.array([1.0])]
    summed = convert.cluster_metric_sum(series, "G")
    assert summed is not None
    # G → T is ×(1e9/1e12) as in Go (1005 × 0.001 = 1.0050000000000001, so 1.01); NaN counts 0; the
    # short series is skipped; halves round away from zero like Go's math.Round (0.005 → 0.01).
    assert summed.tolist() == [1.01, 0.01, 0.01]
    assert convert.cluster_metric_sum([], "G") is None
    assert convert.prefix_factor("", "T") == 1e-12
    with pytest.raises(InvalidInput, match="unknown unit prefix"):
        convert.prefix_factor("Q", "T")

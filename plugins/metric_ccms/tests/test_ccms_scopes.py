"""Scope mapping (contract §8.4) and job data in the archive's shape."""

from __future__ import annotations

import numpy as np
import pytest
from cc_metric_ccms import query
from cc_metric_ccms.scopes import TopologyIndex, build_scope_queries, coarser
from cc_metric_ccms.store import MetricStore
from ccms_testlib import TOPOLOGY, make_cluster, make_job, make_store

from cc_core.schema.metrics import JobMetric

T0 = 1_700_000_000
N = 30  # samples per series


@pytest.fixture(scope="module")
def topo() -> TopologyIndex:
    return TopologyIndex.of(make_cluster().subcluster("main").topology)


def test_effective_scope_is_the_coarser() -> None:
    assert coarser("hwthread", "node") == "node"
    assert coarser("socket", "core") == "socket"
    assert coarser("accelerator", "hwthread") == "hwthread"


def ids(qs):  # (type, type_ids, aggregate, series id, scope)
    return [(q.type, q.type_ids, q.aggregate, q.series_id, q.scope) for q in qs]


def test_hwthread_native(topo: TopologyIndex) -> None:
    hw = [0, 8, 1]  # core 0 (both threads) and half of core 1, all on socket 0
    assert ids(build_scope_queries("hwthread", "hwthread", "m", "h", topo, hw, None)) == [
        ("hwthread", ["0", "8", "1"], False, None, "hwthread")
    ]
    assert ids(build_scope_queries("hwthread", "core", "m", "h", topo, hw, None)) == [
        ("hwthread", ["0", "8"], True, "0", "core"),
        ("hwthread", ["1", "9"], True, "1", "core"),
    ]
    assert ids(build_scope_queries("hwthread", "socket", "m", "h", topo, hw, None)) == [
        ("hwthread", [str(x) for x in TOPOLOGY["socket"][0]], True, "0", "socket")
    ]
    assert ids(build_scope_queries("hwthread", "memoryDomain", "m", "h", topo, hw, None))[0][3] == "0"
    assert ids(build_scope_queries("hwthread", "node", "m", "h", topo, hw, None)) == [
        ("hwthread", ["0", "8", "1"], True, None, "node")
    ]
    # whole node when the job lists no hwthreads
    assert build_scope_queries("hwthread", "hwthread", "m", "h", topo, None, None)[0].type_ids == [
        str(i) for i in range(16)
    ]


def test_core_memory_domain_socket_accelerator_node(topo: TopologyIndex) -> None:
    hw = [4, 12, 0]  # core 4 (socket 1) and core 0 (socket 0)
    assert ids(build_scope_queries("core", "core", "m", "h", topo, hw, None)) == [
        ("core", ["0", "4"], False, None, "core")
    ]
    assert ids(build_scope_queries("core", "socket", "m", "h", topo, hw, None)) == [
        ("core", ["0", "1", "2", "3"], True, "0", "socket"),
        ("core", ["4", "5", "6", "7"], True, "1", "socket"),
    ]
    assert ids(build_scope_queries("core", "hwthread", "m", "h", topo, hw, None))[0][4] == "core"  # not finer
    assert ids(build_scope_queries("memoryDomain", "socket", "m", "h", topo, hw, None)) == [
        ("memoryDomain", ["0"], True, "0", "socket"),
        ("memoryDomain", ["1"], True, "1", "socket"),
    ]
    assert ids(build_scope_queries("socket", "node", "m", "h", topo, hw, None)) == [
        ("socket", ["0", "1"], True, None, "node")
    ]
    assert ids(build_scope_queries("accelerator", "accelerator", "m", "h", topo, hw, ["1"])) == [
        ("accelerator", ["1"], False, None, "accelerator")
    ]
    assert ids(build_scope_queries("accelerator", "node", "m", "h", topo, hw, ["0", "1"]))[0][2] is True
    assert build_scope_queries("accelerator", "node", "m", "h", topo, hw, []) == []
    assert build_scope_queries("accelerator", "socket", "m", "h", topo, hw, ["0"]) == []
    assert ids(build_scope_queries("node", "core", "m", "h", topo, hw, None)) == [
        (None, [], False, None, "node")
    ]


def fill(store: MetricStore, hosts: list[str]) -> None:
    """hwthread flops = host*1000 + hw; core ipc = core; socket power = 100+socket; acc util = 10·id;
    node cpu_load = host; memoryDomain mem_bw = domain + 1."""
    for hi, h in enumerate(hosts):

        def series(path: list[str], metric: str, value: float, h: str = h) -> None:
            sid = store.series_id(["testcl", h, *path], metric, create=True)
            store.write_series(sid, T0, np.full(N, value), 60)

        for hw in range(16):
            series([f"hwthread{hw}"], "flops_any", hi * 1000 + hw)
        for c in range(8):
            series([f"core{c}"], "ipc", c)
        for s in range(2):
            series([f"socket{s}"], "pkg_pwr", 100 + s)
            series([f"memoryDomain{s}"], "mem_bw", s + 1)
        for a in ("0", "1"):
            series([f"accelerator{a}"], "acc_util", 10 * int(a))
        series([], "cpu_load", hi)


def test_load_data_for_a_job_with_hwthreads() -> None:
    store = make_store()
    fill(store, ["n01", "n02"])
    cluster = make_cluster()
    job = make_job({"n01": [0, 8, 1, 9], "n02": None}, T0, N * 60, accelerators={"n01": ["1"]})
    data = query.load_data(store, cluster, job, None, ["node", "core", "socket", "accelerator"], 0)

    fl = data["flops_any"]
    assert set(fl) == {"node", "core", "socket", "hwthread"}  # "accelerator" requested → native hwthread
    node = {s.hostname: s for s in fl["node"].series}
    assert node["n01"].data[0] == 0 + 8 + 1 + 9 and node["n01"].id is None
    assert node["n02"].data[0] == 16 * 1000 + sum(range(16))
    assert isinstance(fl["node"], JobMetric) and fl["node"].timestep == 60 and fl["node"].unit.prefix == "G"
    cores = [(s.hostname, s.id, s.data[0]) for s in fl["core"].series if s.hostname == "n01"]
    assert cores == [("n01", "0", 8.0), ("n01", "1", 10.0)]
    sockets = [(s.id, s.data[0]) for s in fl["socket"].series if s.hostname == "n01"]
    assert sockets == [("0", float(sum(TOPOLOGY["socket"][0])))]
    assert node["n01"].statistics.avg == pytest.approx(18.0) and len(node["n01"].data) == N
    assert node["n01"].data.dtype == np.float64

    assert [s.id for s in data["ipc"]["core"].series if s.hostname == "n01"] == ["0", "1"]
    assert data["ipc"]["node"].series[0].data[0] == pytest.approx(0.5)  # avg of cores 0 and 1
    assert data["pkg_pwr"]["socket"].series[0].data[0] == 100  # socket native at socket
    assert data["pkg_pwr"]["node"].series[0].data[0] == 100  # only socket 0 is the job's
    assert [s.data[0] for s in data["mem_bw"]["socket"].series if s.hostname == "n02"] == [1.0, 2.0]
    acc = data["acc_util"]["accelerator"].series
    assert [(s.hostname, s.id, s.data[0]) for s in acc] == [("n01", "1", 10.0)]
    assert data["cpu_load"]["node"].series[1].data[0] == 1


def test_statistics_resolution_and_missing_hosts() -> None:
    store = MetricStore(make_store().metrics.values(), minimum_points=10)
    fill(store, ["n01"])
    cluster = make_cluster()
    job = make_job({"n01": None, "n99": None}, T0, N * 60)  # n99 has no data: left out
    data = query.load_data(store, cluster, job, ["cpu_load", "flops_any"], ["node"], resolution=300)
    assert [s.hostname for s in data["flops_any"]["node"].series] == ["n01"]
    jm = data["flops_any"]["node"]
    assert jm.timestep == 300 and len(jm.series[0].data) == N // 5
    stats = query.load_stats(store, cluster, job, ["flops_any"])
    assert stats["flops_any"]["n01"].avg == pytest.approx(sum(range(16)))
    scoped = query.load_scoped_stats(store, cluster, job, ["ipc"], ["core"])
    assert [(s.id, s.data.max) for s in scoped["ipc"]["core"]] == [(str(c), float(c)) for c in range(8)]


def test_node_data_and_node_list_data() -> None:
    store = make_store()
    fill(store, ["n01", "n02"])
    cluster = make_cluster()
    nd = query.load_node_data(store, cluster, ["cpu_load", "flops_any"], None, T0, T0 + N * 60)
    assert sorted(nd) == ["n01", "n02"] and nd["n02"]["cpu_load"][0].series[0].data[0] == 1
    metrics = ["flops_any", "acc_util"]
    nl = query.load_node_list_data(
        store, cluster, "main", ["n02"], metrics, ["core", "node"], 0, T0, T0 + N * 60
    )
    assert len(nl["n02"]["flops_any"]["core"].series) == 8
    assert set(nl["n02"]["acc_util"]) == {"node"}  # accelerators: nothing at core, aggregated at node
    assert nl["n02"]["acc_util"]["node"].series[0].data[0] == 5.0

"""cluster.json: the §3.5 derivation on upstream's three clusters, node lists, subcluster assignment."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from cc_core.schema import (
    Cluster,
    ClusterConfigError,
    Job,
    MetricConfig,
    NodeList,
    NodeListError,
    Resource,
    SubCluster,
    SubClusterConfig,
    decode_cluster,
    encode_cluster,
    global_metric_list,
)

from .conftest import FIXTURE_ARCHIVE


def load(name: str, root: Path = FIXTURE_ARCHIVE) -> Cluster:
    return decode_cluster((root / name / "cluster.json").read_bytes())


def names(cluster: Cluster, sc: str) -> list[str]:
    return [m.name for m in cluster.subcluster(sc).metric_config or []]  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ emmy


def test_emmy_removes_and_overrides() -> None:
    emmy = load("emmy").derive()
    assert [sc.name for sc in emmy.sub_clusters] == ["haswell", "skylake", "kabylake", "icelake"]
    all13 = [m.name for m in emmy.metric_config]
    assert len(all13) == 13
    # remove: cpu_user on haswell and skylake, the three nfs4 metrics on haswell only
    assert names(emmy, "haswell") == [
        n for n in all13 if n not in ("cpu_user", "nfs4_read", "nfs4_write", "nfs4_total")
    ]
    assert names(emmy, "skylake") == [n for n in all13 if n != "cpu_user"]
    assert names(emmy, "kabylake") == all13 and names(emmy, "icelake") == all13
    # overrides replace the thresholds; subclusters without an override keep the cluster's
    cpu_load = emmy.subcluster_metrics("icelake")["cpu_load"]
    assert (cpu_load.peak, cpu_load.normal, cpu_load.caution, cpu_load.alert) == (32, 32, 16, 1)
    assert emmy.subcluster_metrics("haswell")["cpu_load"].peak == 4
    assert emmy.subcluster_metrics("kabylake")["clock"].peak == 3700
    assert emmy.subcluster_metrics("icelake")["clock"].peak == 2900
    mem_bw = emmy.subcluster_metrics("icelake")["mem_bw"]
    assert (mem_bw.peak, mem_bw.scope, mem_bw.unit.prefix, mem_bw.timestep) == (350, "socket", "G", 60)
    # no footprint or energy metric in emmy's config
    assert all(sc.footprint is None and sc.energy_footprint is None for sc in emmy.sub_clusters)


# ------------------------------------------------------------------------------------------ fritz


def test_fritz_overrides_replace_every_field() -> None:
    fritz = load("fritz").derive()
    main, spr1, spr2 = (fritz.subcluster(n) for n in ("main", "spr1tb", "spr2tb"))
    assert main and spr1 and spr2
    assert len(main.metric_config or []) == 19
    assert main.footprint == ["cpu_load", "mem_used", "flops_any", "mem_bw"]
    assert spr1.footprint == ["cpu_load", "mem_used", "flops_any"]  # mem_bw removed there
    assert spr2.footprint == ["cpu_load", "mem_used"]  # flops_any removed too
    assert (
        main.energy_footprint == spr1.energy_footprint == spr2.energy_footprint == ["cpu_power", "mem_power"]
    )
    assert "clock" not in names(fritz, "spr1tb") and "flops_sp" not in names(fritz, "spr2tb")
    mem = fritz.subcluster_metrics("spr2tb")["mem_used"]
    assert (mem.peak, mem.normal, mem.caution, mem.alert, mem.footprint, mem.lower_is_better) == (
        2048,
        1024,
        1800,
        2000,
        "max",
        True,
    )
    assert fritz.subcluster_metrics("main")["mem_used"].peak == 256
    flops = fritz.subcluster_metrics("spr1tb")["flops_any"]
    assert (flops.peak, flops.footprint, flops.aggregation, flops.scope) == (6656, "avg", "sum", "hwthread")


def test_override_without_footprint_drops_it() -> None:
    # Upstream quirk (contract §16): unset override fields become zero/empty.
    c = Cluster(
        name="c",
        metric_config=[
            MetricConfig(
                name="m",
                timestep=60,
                peak=10,
                normal=5,
                footprint="avg",
                energy="power",
                sub_clusters=[SubClusterConfig(name="b", peak=20)],
            )
        ],
        sub_clusters=[SubCluster(name="a", nodes="a[1-2]"), SubCluster(name="b", nodes="b[1-2]")],
    ).derive()
    a, b = c.subcluster_metrics("a")["m"], c.subcluster_metrics("b")["m"]
    assert (a.peak, a.normal, a.footprint, a.energy) == (10, 5, "avg", "power")
    assert (b.peak, b.normal, b.footprint, b.energy) == (20, 0, "", "")
    assert c.subcluster("a").footprint == ["m"] and c.subcluster("b").footprint is None  # type: ignore[union-attr]


def test_fritz_subcluster_assignment() -> None:
    fritz = load("fritz").derive()
    assert fritz.subcluster_for_node("f0101") == "main"
    assert fritz.subcluster_for_node("f1256") == "main"
    assert fritz.subcluster_for_node("f1257") is None
    # spr1tb (f[2157-2188,…]) and spr2tb (f[2181-2188,…]) overlap; the more specific list wins.
    assert fritz.subcluster_for_node("f2160") == "spr1tb"
    assert fritz.subcluster_for_node("f2185") == "spr2tb"
    assert len(fritz.subcluster("main").node_list) == 10 * 88 + 2 * 56  # type: ignore[union-attr]
    job = Job(
        job_id=1,
        user="u",
        project="p",
        cluster="fritz",
        start_time=1,
        num_nodes=1,
        resources=[Resource("f2283")],
    )
    assert fritz.assign_subcluster(job) == "spr2tb"
    with pytest.raises(ValueError, match="no subcluster found for cluster fritz and host x1"):
        fritz.assign_subcluster(msgspec.structs.replace(job, resources=[Resource("x1")]))
    with pytest.raises(ValueError, match="unknown"):
        fritz.assign_subcluster(msgspec.structs.replace(job, sub_cluster="nope"))
    with pytest.raises(ValueError, match="without any resources"):
        fritz.assign_subcluster(msgspec.structs.replace(job, resources=[]))


# ------------------------------------------------------------------------------------------ alex


def test_alex_footprints_energy_and_nodes() -> None:
    alex = load("alex").derive()
    a40 = alex.subcluster("a40")
    assert a40 is not None
    assert a40.footprint == ["cpu_load", "mem_used", "flops_any", "mem_bw", "acc_utilization"]
    assert a40.energy_footprint == ["core_power", "acc_power", "cpu_power"]
    assert [len(sc.node_list) for sc in alex.sub_clusters] == [44, 20, 15]
    assert alex.subcluster_for_node("a0831") == "a100m80"
    assert alex.subcluster_for_node("a0603") == "a100"
    assert len(a40.topology.accelerators or []) == 8
    assert a40.topology.accelerators[0].type == "Nvidia GPU"  # type: ignore[index]


def test_derive_is_idempotent_and_encoding_round_trips() -> None:
    for name in ("alex", "emmy", "fritz"):
        raw = load(name)
        derived = raw.derive()
        assert derived.derive() == derived
        assert decode_cluster(encode_cluster(raw)) == raw
        assert decode_cluster(encode_cluster(derived)) == derived
        assert raw.subcluster(raw.sub_clusters[0].name).metric_config is None  # the input is unchanged


def test_global_metric_list() -> None:
    clusters = [load(n) for n in ("alex", "emmy", "fritz")]
    items = {i.name: i for i in global_metric_list(clusters)}
    assert [(a.cluster, a.subclusters) for a in items["cpu_user"].availability] == [
        ("alex", ["a40", "a100", "a100m80"]),
        ("emmy", ["kabylake", "icelake"]),
        ("fritz", ["main", "spr1tb", "spr2tb"]),
    ]
    assert items["flops_any"].footprint == "avg"
    restricted = Cluster(
        name="r",
        metric_config=[
            MetricConfig(name="secret", timestep=60, restrict=True),
            MetricConfig(name="open", timestep=60),
        ],
        sub_clusters=[SubCluster(name="s", nodes="*")],
    )
    user = {i.name for i in global_metric_list([restricted], user=True)}
    assert user == {"open"}


def test_validation_errors() -> None:
    good = load("emmy")
    with pytest.raises(ClusterConfigError, match="timestep"):
        msgspec.structs.replace(good, metric_config=[MetricConfig(name="x", timestep=0)]).derive()
    with pytest.raises(ClusterConfigError, match="invalid scope"):
        msgspec.structs.replace(
            good, metric_config=[MetricConfig(name="x", timestep=1, scope="rack")]
        ).derive()
    with pytest.raises(ClusterConfigError, match="no subclusters"):
        msgspec.structs.replace(good, sub_clusters=[]).derive()
    with pytest.raises(ClusterConfigError, match="no metric"):
        msgspec.structs.replace(good, metric_config=[]).derive()
    with pytest.raises(ClusterConfigError, match=r"subcluster 'x'.*unclosed"):
        msgspec.structs.replace(good, sub_clusters=[SubCluster(name="x", nodes="a[01-02")]).derive()
    # missing scope defaults to node
    c = msgspec.structs.replace(good, metric_config=[MetricConfig(name="x", timestep=1, scope="")]).derive()
    assert c.metric_config[0].scope == "node"


# ------------------------------------------------------------------------------------------ node lists


def test_nodelist_parse_expand_match() -> None:
    nl = NodeList.parse("f[0101-0103,0201-0202],login,w11[27-29]x")
    assert nl.expand() == ["f0101", "f0102", "f0103", "f0201", "f0202", "login", "w1127x", "w1128x", "w1129x"]
    assert len(nl) == 9
    for host in nl.expand():
        assert host in nl
    for host in ("f0104", "f101", "f01010", "logi", "login2", "w1127", "F0101", ""):
        assert host not in nl
    assert "anything" in NodeList.parse("*") and NodeList.parse("*").is_wildcard
    assert NodeList.parse("").expand() == [] and "a" not in NodeList.parse("")
    assert NodeList.parse("a[1-3][01-02]").expand() == ["a101", "a102", "a201", "a202", "a301", "a302"]
    with pytest.raises(ValueError):
        NodeList.parse("*").expand()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("a[01-02", "unclosed"),
        ("a[1-10]", "equal"),
        ("a[x-y]", "numbers"),
        ("a b", "invalid character"),
        ("a]", "without"),
    ],
)
def test_nodelist_errors(raw: str, problem: str) -> None:
    with pytest.raises(NodeListError, match=problem):
        NodeList.parse(raw)


def test_reference_clusters_equal_the_fixture_copies(shared_reference: Path) -> None:
    for name in ("alex", "emmy", "fritz"):
        assert load(name, shared_reference / "job-archive") == load(name)

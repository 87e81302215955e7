"""The demo site's clusters and users.

Two clusters: ``fritz``, a CPU cluster with two subclusters of different topology (Icelake nodes with
2×36 cores, Sapphire Rapids nodes with 2×52 cores and 1 TB), and ``alex``, a GPU cluster with four A100
per node. Metric configurations (units, scopes, aggregation, peak/normal/caution/alert, footprint and
energy metrics) follow the values of upstream's sample archive (cc-backend ``job-archive``, MIT licence,
see ``/work/shared/reference/LICENSE.upstream``), with per-subcluster peaks where the hardware differs.
Metrics are sampled every 10 s, the collector's interval in ``demo run``.

The node counts are small on purpose: ``demo run`` sends every metric of every node (down to each
hardware thread) every 10 s; the job archive, not the machine, is what scales with ``--jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cc_core.db.generate import ClusterShape
from cc_core.schema.cluster import (
    Accelerator,
    Cluster,
    MetricConfig,
    MetricValue,
    SubCluster,
    SubClusterConfig,
    Topology,
)
from cc_core.schema.units import Unit

#: Sampling interval of every demo metric (s): the collector's period in ``demo run``.
TIMESTEP = 10
DEMO_LOGIN = ("demo", "demo")


@dataclass(frozen=True, slots=True)
class SubShape:
    """One subcluster's hardware: what topology, peaks and the collector's lines are built from."""

    name: str
    nodes: int
    sockets: int
    cores_per_socket: int
    processor: str
    flops_peak: float  # GF/s per node (flops_any peak)
    flops_scalar: float
    mem_bw: float  # GB/s per node
    mem_gb: float
    power: float  # W per node (cpu_power peak)
    gpus: int = 0
    gpu_model: str = ""
    gpu_mem_gb: float = 0.0

    @property
    def hwthreads(self) -> int:
        return self.sockets * self.cores_per_socket

    def peaks(self) -> dict[str, float]:
        """Node-level peak of each metric whose peak depends on the hardware."""
        out = {
            "cpu_load": float(self.hwthreads),
            "mem_used": self.mem_gb,
            "flops_any": self.flops_peak,
            "mem_bw": self.mem_bw,
            "cpu_power": self.power,
        }
        if self.gpus:
            out["acc_mem_used"] = self.gpu_mem_gb
        return out

    def accelerator_ids(self) -> list[str]:
        return [f"00000000:{0x0E + 0x10 * g:02X}:00.0" for g in range(self.gpus)]


@dataclass(frozen=True, slots=True)
class DemoCluster:
    name: str
    prefix: str
    weight: float
    subclusters: tuple[SubShape, ...]

    def shape(self) -> ClusterShape:
        """The job generator's view (hosts numbered consecutively subcluster after subcluster)."""
        subs = self.subclusters
        return ClusterShape(
            name=self.name,
            subclusters=tuple(s.name for s in subs),
            hwthreads=subs[0].hwthreads,
            gpus=max(s.gpus for s in subs),
            nodes=sum(s.nodes for s in subs),
            weight=self.weight,
            prefix=self.prefix,
            sub_nodes=tuple(s.nodes for s in subs),
            sub_hwthreads=tuple(s.hwthreads for s in subs),
        )

    def hosts(self, sub: SubShape) -> list[str]:
        first = 0
        for s in self.subclusters:
            if s is sub:
                return [f"{self.prefix}{first + i:04d}" for i in range(s.nodes)]
            first += s.nodes
        raise KeyError(sub.name)

    def subcluster(self, name: str) -> SubShape:
        for s in self.subclusters:
            if s.name == name:
                return s
        raise KeyError(name)


DEMO_CLUSTERS: tuple[DemoCluster, ...] = (
    DemoCluster(
        "fritz",
        "f",
        0.7,
        (
            SubShape("main", 24, 2, 36, "Intel Icelake", 5600, 432, 350, 256, 500),
            SubShape("spr1tb", 8, 2, 52, "Intel Xeon Platinum 8470", 6656, 695, 549, 1024, 700),
        ),
    ),
    DemoCluster(
        "alex",
        "a",
        0.3,
        (
            SubShape(
                "a100",
                8,
                2,
                32,
                "AMD Milan",
                4000,
                432,
                400,
                512,
                450,
                gpus=4,
                gpu_model="A100",
                gpu_mem_gb=80,
            ),
        ),
    ),
)

# name, (base, prefix), scope, aggregation, peak, normal, caution, alert, footprint, energy, lowerIsBetter
_M = tuple[str, tuple[str, str], str, str, float, float, float, float, str, str, bool]
CPU_METRICS: tuple[_M, ...] = (
    ("cpu_load", ("", ""), "node", "avg", 72, 72, 36, 20, "avg", "", False),
    ("cpu_user", ("", ""), "hwthread", "avg", 100, 50, 20, 10, "", "", False),
    ("mem_used", ("B", "G"), "node", "sum", 256, 128, 200, 240, "max", "", True),
    ("flops_any", ("F/s", "G"), "hwthread", "sum", 5600, 1000, 200, 50, "avg", "", False),
    ("mem_bw", ("B/s", "G"), "socket", "sum", 350, 100, 50, 10, "avg", "", False),
    ("ipc", ("IPC", ""), "hwthread", "avg", 4, 2, 1, 0.5, "", "", False),
    ("clock", ("Hz", "M"), "hwthread", "avg", 3000, 2400, 1800, 1200, "", "", False),
    ("cpu_power", ("W", ""), "socket", "sum", 500, 250, 100, 50, "", "power", False),
    ("ib_recv", ("B/s", "M"), "node", "sum", 12500, 1000, 10, 1, "", "", False),
    ("ib_xmit", ("B/s", "M"), "node", "sum", 12500, 1000, 10, 1, "", "", False),
    ("nfs4_read", ("B/s", "M"), "node", "sum", 1000, 100, 10, 1, "", "", False),
    ("nfs4_write", ("B/s", "M"), "node", "sum", 1000, 100, 10, 1, "", "", False),
)
GPU_METRICS: tuple[_M, ...] = (
    ("acc_utilization", ("", ""), "accelerator", "avg", 100, 80, 50, 20, "avg", "", False),
    ("acc_mem_used", ("B", "G"), "accelerator", "sum", 80, 40, 10, 5, "", "", False),
    ("acc_power", ("W", ""), "accelerator", "sum", 400, 200, 50, 20, "", "power", False),
)


def metric_specs(cluster: DemoCluster) -> tuple[_M, ...]:
    gpus = any(s.gpus for s in cluster.subclusters)
    return CPU_METRICS + (GPU_METRICS if gpus else ())


def _scaled(spec: _M, peak: float) -> tuple[float, float, float, float]:
    _, _, _, _, p, n, c, a, *_ = spec
    f = peak / p
    return peak, n * f, c * f, a * f


def limits(cluster: DemoCluster, sub: SubShape) -> dict[str, tuple[float, float, float, float]]:
    """``metric → (peak, normal, caution, alert)`` as they hold on ``sub`` (what the job-class rules see)."""
    peaks = sub.peaks()
    base = cluster.subclusters[0].peaks()
    out = {}
    for spec in metric_specs(cluster):
        name = spec[0]
        # Thresholds scale with the subcluster's peak, relative to the first subcluster's hardware.
        if name in peaks:
            out[name] = _scaled(spec, spec[4] * peaks[name] / base[name])
        else:
            out[name] = (spec[4], spec[5], spec[6], spec[7])
    return out


def _topology(sub: SubShape) -> Topology:
    hw = sub.hwthreads
    per = sub.cores_per_socket
    sockets = [list(range(s * per, (s + 1) * per)) for s in range(sub.sockets)]
    # Two NUMA domains per socket, as on the real machines.
    half = per // 2
    domains = [d for s in sockets for d in (s[:half], s[half:])]
    accs = [Accelerator(id=a, type="Nvidia GPU", model=sub.gpu_model) for a in sub.accelerator_ids()]
    return Topology(
        node=list(range(hw)),
        socket=sockets,
        memory_domain=domains,
        core=[[i] for i in range(hw)],
        accelerators=accs or None,
    )


def cluster_config(cluster: DemoCluster) -> Cluster:
    """The raw ``cluster.json`` of a demo cluster (per-subcluster overrides where peaks differ)."""
    specs = metric_specs(cluster)
    base_sub = cluster.subclusters[0]
    base_limits = limits(cluster, base_sub)
    metrics: list[MetricConfig] = []
    for spec in specs:
        name, (ub, up), scope, agg, _p, _n, _c, _a, fp, energy, lib = spec
        peak, normal, caution, alert = base_limits[name]
        overrides = []
        for sub in cluster.subclusters[1:]:
            lim = limits(cluster, sub)[name]
            if lim != base_limits[name]:
                overrides.append(
                    SubClusterConfig(
                        name=sub.name,
                        peak=lim[0],
                        normal=lim[1],
                        caution=lim[2],
                        alert=lim[3],
                        footprint=fp,
                        energy=energy,
                        lower_is_better=lib,
                    )
                )
        metrics.append(
            MetricConfig(
                name=name,
                unit=Unit(ub, up),
                scope=scope,
                aggregation=agg,
                timestep=TIMESTEP,
                peak=peak,
                normal=normal,
                caution=caution,
                alert=alert,
                footprint=fp,
                energy=energy,
                lower_is_better=lib,
                sub_clusters=overrides or None,
            )
        )
    subclusters = []
    for sub in cluster.subclusters:
        hosts = cluster.hosts(sub)
        subclusters.append(
            SubCluster(
                name=sub.name,
                nodes=f"{cluster.prefix}[{hosts[0][1:]}-{hosts[-1][1:]}]",
                processor_type=sub.processor,
                sockets_per_node=sub.sockets,
                cores_per_socket=sub.cores_per_socket,
                threads_per_core=1,
                flop_rate_scalar=MetricValue(Unit("F/s", "G"), sub.flops_scalar),
                flop_rate_simd=MetricValue(Unit("F/s", "G"), sub.flops_peak),
                memory_bandwidth=MetricValue(Unit("B/s", "G"), sub.mem_bw),
                topology=_topology(sub),
            )
        )
    return Cluster(name=cluster.name, metric_config=metrics, sub_clusters=subclusters)


# Users with each role (password "demo" for all, so every view can be tried). username → (roles, projects)
ROLE_USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "demo": (("admin", "api"), ()),
    "support": (("support",), ()),
    "manager": (("manager",), ("p000", "p001", "p002")),
    "alice": (("user",), ()),
    "bob": (("user",), ()),
    "scheduler": (("api",), ()),
}

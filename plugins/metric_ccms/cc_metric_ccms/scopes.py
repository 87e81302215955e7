"""Scope mapping: which store selectors answer "metric M of host H at scope S" (contract §8.4).

Upstream ``scopequery.go``: the effective scope is the coarser of the metric's native scope and the
requested one (node 10 > socket 5 > memoryDomain 4 > core 3 > hwthread 2 > accelerator 1); a query
reads the native-scope series of the job's hardware threads (or accelerators) and aggregates them per
core / memory domain / socket / node as needed.

Differences from upstream, all fixes: results come in id order (upstream iterates Go maps); an
aggregated series carries the id of the unit it stands for (core 5, socket 1 — upstream labels it with
the first hardware thread id, so socket 1 of a 2×64-thread node is called "64"); core → socket groups
the cores of each socket (upstream passes hardware thread ids as core ids); hwthread/core →
memoryDomain are supported (upstream reports "unsupported scope transformation").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SCOPE_GRANULARITY: dict[str, int] = {
    "node": 10,
    "socket": 5,
    "memoryDomain": 4,
    "core": 3,
    "hwthread": 2,
    "accelerator": 1,
}


def coarser(a: str, b: str) -> str:
    """The coarser of two scopes (upstream ``MetricScope.Max``)."""
    return a if SCOPE_GRANULARITY.get(a, -1) > SCOPE_GRANULARITY.get(b, -1) else b


@dataclass(slots=True)
class TopologyIndex:
    """Lookups derived from a subcluster topology (upstream ``InitTopologyMaps``)."""

    node: list[int]
    socket: list[list[int]]
    memory_domain: list[list[int]]
    core: list[list[int]]
    accelerators: list[str]
    hw_core: dict[int, list[int]] = field(default_factory=dict)
    hw_socket: dict[int, list[int]] = field(default_factory=dict)
    hw_memdom: dict[int, list[int]] = field(default_factory=dict)
    core_socket: dict[int, list[int]] = field(default_factory=dict)
    memdom_socket: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, topology: object) -> TopologyIndex:
        """From a `cc_core.schema.cluster.Topology` (or anything with the same attributes)."""
        accs = getattr(topology, "accelerators", None) or []
        t = cls(
            node=list(getattr(topology, "node", []) or []),
            socket=[list(x) for x in getattr(topology, "socket", []) or []],
            memory_domain=[list(x) for x in getattr(topology, "memory_domain", []) or []],
            core=[list(x) for x in getattr(topology, "core", []) or []],
            accelerators=[a.id if hasattr(a, "id") else str(a) for a in accs],
        )
        for name, groups, index in (
            ("socket", t.socket, t.hw_socket),
            ("core", t.core, t.hw_core),
            ("memdom", t.memory_domain, t.hw_memdom),
        ):
            del name
            for gid, hws in enumerate(groups):
                for hw in hws:
                    index.setdefault(hw, []).append(gid)
        for cid, hws in enumerate(t.core):
            t.core_socket[cid] = sorted({s for hw in hws for s in t.hw_socket.get(hw, ())})
        for mid, hws in enumerate(t.memory_domain):
            if hws and t.hw_socket.get(hws[0]):
                t.memdom_socket[mid] = t.hw_socket[hws[0]][0]
        return t

    def _of(self, index: dict[int, list[int]], hwthreads: Sequence[int]) -> list[int]:
        return sorted({g for hw in hwthreads for g in index.get(hw, ())})

    def cores(self, hwthreads: Sequence[int]) -> list[int]:
        return self._of(self.hw_core, hwthreads)

    def sockets(self, hwthreads: Sequence[int]) -> list[int]:
        return self._of(self.hw_socket, hwthreads)

    def memory_domains(self, hwthreads: Sequence[int]) -> list[int]:
        return self._of(self.hw_memdom, hwthreads)


@dataclass(slots=True)
class ScopeQuery:
    """Read ``metric`` of ``hostname``: one series per type id, or (``aggregate``) one series of all of
    them, labelled ``series_id``. No ``type`` means the host level itself."""

    metric: str
    hostname: str
    scope: str
    type: str | None = None
    type_ids: list[str] = field(default_factory=list)
    aggregate: bool = False
    series_id: str | None = None

    def selectors(self, cluster: str) -> list[tuple[list[object], str | None]]:
        """``[(store selector, series id)]`` this query reads."""
        base: list[object] = [cluster, self.hostname]
        if self.type is None:
            return [(base, None)]
        names = [self.type + i for i in self.type_ids]
        if self.aggregate:
            return [([*base, names[0] if len(names) == 1 else names], self.series_id)]
        return [([*base, n], i) for n, i in zip(names, self.type_ids, strict=True)]


def _s(ids: Sequence[int]) -> list[str]:
    return [str(i) for i in ids]


def build_scope_queries(
    native: str,
    requested: str,
    metric: str,
    hostname: str,
    topo: TopologyIndex,
    hwthreads: Sequence[int] | None,
    accelerators: Sequence[str] | None,
) -> list[ScopeQuery] | None:
    """The queries for one metric of one host of a job; None for an unsupported transformation."""
    scope = coarser(native, requested)
    hw = list(hwthreads) if hwthreads is not None else topo.node
    accs = list(accelerators or [])

    def q(
        type_: str | None, ids: list[str], aggregate: bool, sid: str | None = None, sc: str = scope
    ) -> ScopeQuery:
        return ScopeQuery(metric, hostname, sc, type_, ids, aggregate, sid)

    if native == "accelerator":
        if scope == "accelerator":
            return [q("accelerator", accs, False)] if accs else []
        if scope == "node":
            return [q("accelerator", accs, True)] if accs else []
        return []
    if native == "node":
        return [q(None, [], False)] if scope == "node" else None
    if native == "hwthread":
        if scope == "hwthread":
            return [q("hwthread", _s(hw), False)]
        if scope == "core":
            return [q("hwthread", _s(topo.core[c]), True, str(c)) for c in topo.cores(hw)]
        if scope == "memoryDomain":
            return [q("hwthread", _s(topo.memory_domain[m]), True, str(m)) for m in topo.memory_domains(hw)]
        if scope == "socket":
            return [q("hwthread", _s(topo.socket[s]), True, str(s)) for s in topo.sockets(hw)]
        if scope == "node":
            return [q("hwthread", _s(hw), True)]
        return None
    if native == "core":
        cores = topo.cores(hw)
        if scope == "core":
            return [q("core", _s(cores), False)]
        if scope == "memoryDomain":
            out = []
            for m in topo.memory_domains(hw):
                cs = topo.cores(topo.memory_domain[m])
                out.append(q("core", _s(cs), True, str(m)))
            return out
        if scope == "socket":
            out = []
            for s in topo.sockets(hw):
                cs = [c for c in range(len(topo.core)) if s in topo.core_socket.get(c, ())]
                out.append(q("core", _s(cs), True, str(s)))
            return out
        if scope == "node":
            return [q("core", _s(cores), True)]
        return None
    if native == "memoryDomain":
        doms = topo.memory_domains(hw)
        if scope == "memoryDomain":
            return [q("memoryDomain", _s(doms), False)]
        if scope == "socket":
            by_socket: dict[int, list[int]] = {}
            for m in doms:
                if m not in topo.memdom_socket:
                    return None
                by_socket.setdefault(topo.memdom_socket[m], []).append(m)
            return [q("memoryDomain", _s(ms), True, str(s)) for s, ms in sorted(by_socket.items())]
        if scope == "node":
            return [q("memoryDomain", _s(doms), True)]
        return None
    if native == "socket":
        sockets = topo.sockets(hw)
        if scope == "socket":
            return [q("socket", _s(sockets), False)]
        if scope == "node":
            return [q("socket", _s(sockets), True)]
        return None
    return None

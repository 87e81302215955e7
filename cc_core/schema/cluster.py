"""Cluster configuration: upstream's `schema.Cluster` (``cluster.json``) and what the core derives from it.

`Cluster.derive` does what upstream's `initClusterConfig` does at load (contract §3.5): every cluster
metric gets a per-subcluster `MetricConfig` appended to ``subCluster.metricConfig``; a ``subClusters``
override with ``remove`` drops the metric there; any other override replaces *all* of peak, normal,
caution, alert, footprint, energy, lowerIsBetter and restrict (an unset field becomes zero/empty, so an
override without ``footprint`` takes the metric out of that subcluster's footprint). ``footprint`` and
``energyFootprint`` of each subcluster list the metrics with a footprint / energy setting.

`NodeList` parses upstream's node-list syntax (``f[0101-0188,0201-0288],login``; ``*`` = every node) and
`Cluster.subcluster_for_node` assigns a hostname to a subcluster with it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from cc_core.schema.metrics import METRIC_SCOPES
from cc_core.schema.units import Unit, no_unit

if TYPE_CHECKING:
    from cc_core.schema.job import Job


class ClusterConfigError(ValueError):
    """A cluster configuration that cannot be used (upstream refuses to start on these too)."""


class NodeListError(ValueError):
    """A node list expression that does not parse."""


# ----------------------------------------------------------------------------------------- structs


class Accelerator(msgspec.Struct):
    id: str
    type: str = ""
    model: str = ""


class Topology(msgspec.Struct, rename="camel", omit_defaults=True):
    """Hardware threads of one node, grouped by socket, memory domain, die and core; accelerators."""

    node: list[int] = msgspec.field(default_factory=list)
    socket: list[list[int]] = msgspec.field(default_factory=list)
    memory_domain: list[list[int]] = msgspec.field(default_factory=list)
    core: list[list[int]] = msgspec.field(default_factory=list)
    die: list[list[int | None]] | None = None
    accelerators: list[Accelerator] | None = None


class MetricValue(msgspec.Struct):
    unit: Unit = msgspec.field(default_factory=no_unit)
    value: float = 0.0


class SubClusterConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    """A metric's override for one subcluster (``metricConfig[].subClusters[]``)."""

    name: str
    peak: float = 0.0
    normal: float = 0.0
    caution: float = 0.0
    alert: float = 0.0
    footprint: str = ""
    energy: str = ""
    lower_is_better: bool = False
    restrict: bool = False
    remove: bool = False
    unit: Unit | None = None  # embedded `Metric` in Go; present in JSON only if a site writes it


class MetricConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    """A metric of a cluster (``metricConfig[]``), or its derived per-subcluster copy."""

    name: str
    unit: Unit = msgspec.field(default_factory=no_unit)
    scope: str = "node"
    aggregation: str = ""
    timestep: int = 0
    peak: float = 0.0
    normal: float = 0.0
    caution: float = 0.0
    alert: float = 0.0
    footprint: str = ""
    energy: str = ""
    lower_is_better: bool = False
    restrict: bool = False
    sub_clusters: list[SubClusterConfig] | None = None


class SubCluster(msgspec.Struct, rename="camel", omit_defaults=True):
    """A homogeneous partition of a cluster; ``nodes`` is a node list (``*`` or empty = the rest)."""

    name: str
    nodes: str = ""
    processor_type: str = ""
    sockets_per_node: int = 0
    cores_per_socket: int = 0
    threads_per_core: int = 0
    flop_rate_scalar: MetricValue = msgspec.field(default_factory=MetricValue)
    flop_rate_simd: MetricValue = msgspec.field(default_factory=MetricValue)
    memory_bandwidth: MetricValue = msgspec.field(default_factory=MetricValue)
    topology: Topology = msgspec.field(default_factory=Topology)
    metric_config: list[MetricConfig] | None = None
    footprint: list[str] | None = None
    energy_footprint: list[str] | None = None

    @property
    def node_list(self) -> NodeList:
        return NodeList.parse(self.nodes)


class ClusterSupport(msgspec.Struct):
    cluster: str
    subclusters: list[str] = msgspec.field(default_factory=list)


class GlobalMetricListItem(msgspec.Struct, omit_defaults=True):
    """A metric name across all clusters, with where it is available (upstream `GlobalMetricListItem`)."""

    name: str
    unit: Unit
    scope: str
    footprint: str = ""
    availability: list[ClusterSupport] = msgspec.field(default_factory=list)


class Cluster(msgspec.Struct, rename="camel"):
    """``cluster.json``. Load it, then call `derive` before use (as upstream does at start)."""

    name: str
    metric_config: list[MetricConfig] = msgspec.field(default_factory=list)
    sub_clusters: list[SubCluster] = msgspec.field(default_factory=list)

    # ---------------------------------------------------------------- lookups

    def subcluster(self, name: str) -> SubCluster | None:
        return next((sc for sc in self.sub_clusters if sc.name == name), None)

    def metric(self, name: str) -> MetricConfig | None:
        """The cluster-level config of a metric."""
        return next((m for m in self.metric_config if m.name == name), None)

    def subcluster_metrics(self, subcluster: str) -> dict[str, MetricConfig]:
        """The derived per-subcluster metric configs by name (empty before `derive`)."""
        sc = self.subcluster(subcluster)
        return {m.name: m for m in (sc.metric_config or [])} if sc else {}

    # ---------------------------------------------------------------- derivation (§3.5)

    def validate(self, source: str = "") -> None:
        """Upstream's start-up checks; raises `ClusterConfigError` naming the cluster and metric."""
        where = f"{source}: " if source else ""
        if not self.name:
            raise ClusterConfigError(f"{where}cluster name is empty")
        if not self.metric_config:
            raise ClusterConfigError(f"{where}cluster {self.name!r} has no metric configurations")
        if not self.sub_clusters:
            raise ClusterConfigError(f"{where}cluster {self.name!r} has no subclusters defined")
        for mc in self.metric_config:
            if not mc.name:
                raise ClusterConfigError(f"{where}cluster {self.name!r} has a metric config with empty name")
            if mc.timestep < 1:
                raise ClusterConfigError(
                    f"{where}metric {mc.name!r} in cluster {self.name!r} has invalid timestep "
                    f"{mc.timestep} (must be >= 1)"
                )
            if mc.scope and mc.scope not in METRIC_SCOPES:
                raise ClusterConfigError(
                    f"{where}metric {mc.name!r} in cluster {self.name!r} has invalid scope {mc.scope!r} "
                    f"(one of {', '.join(METRIC_SCOPES)})"
                )
        for sc in self.sub_clusters:
            try:
                NodeList.parse(sc.nodes)
            except NodeListError as e:
                raise ClusterConfigError(
                    f"{where}subcluster {sc.name!r} of cluster {self.name!r}: nodes {sc.nodes!r}: {e}"
                ) from None

    def derive(self, source: str = "") -> Cluster:
        """A validated copy with per-subcluster metric configs, footprints and energy footprints.

        Idempotent: deriving a derived cluster changes nothing (entries already present in a
        subcluster's ``metricConfig``/``footprint``/``energyFootprint`` are replaced, not duplicated).
        """
        self.validate(source)
        metrics = [
            msgspec.structs.replace(mc, scope=mc.scope or "node") if not mc.scope else mc
            for mc in self.metric_config
        ]
        names = {mc.name for mc in metrics}
        subclusters: list[SubCluster] = []
        for sc in self.sub_clusters:
            derived: list[MetricConfig] = [m for m in (sc.metric_config or []) if m.name not in names]
            footprint = [n for n in (sc.footprint or []) if n not in names]
            energy = [n for n in (sc.energy_footprint or []) if n not in names]
            for mc in metrics:
                new = _per_subcluster(mc, sc.name)
                if new is None:
                    continue
                derived.append(new)
                if new.footprint:
                    footprint.append(new.name)
                if new.energy:
                    energy.append(new.name)
            subclusters.append(
                msgspec.structs.replace(
                    sc,
                    metric_config=derived,
                    footprint=footprint or None,
                    energy_footprint=energy or None,
                )
            )
        return Cluster(name=self.name, metric_config=metrics, sub_clusters=subclusters)

    # ---------------------------------------------------------------- subcluster assignment

    def subcluster_for_node(self, hostname: str) -> str | None:
        """The subcluster whose node list contains ``hostname``, or None.

        Upstream iterates a Go map (random order) when node lists overlap, as fritz's spr1tb and spr2tb
        do; here the most specific list (fewest nodes) wins, then the first in the file. A subcluster
        with nodes ``*`` or empty catches hosts no list names (upstream: only the first subcluster).
        """
        best: tuple[int, SubCluster] | None = None
        for sc in self.sub_clusters:
            nl = NodeList.parse(sc.nodes)
            if nl.is_wildcard or not nl.terms:
                continue
            if hostname in nl:
                n = len(nl)
                if best is None or n < best[0]:
                    best = (n, sc)
        if best is not None:
            return best[1].name
        for sc in self.sub_clusters:
            if sc.nodes.strip() in ("*", ""):
                return sc.name
        return None

    def assign_subcluster(self, job: Job) -> str:
        """The subcluster of a job (upstream `AssignSubCluster`): the one it names, or its first host's.

        Raises `ValueError` with upstream's reasons; does not modify ``job``.
        """
        if job.sub_cluster:
            if self.subcluster(job.sub_cluster) is None:
                raise ValueError(
                    f"already assigned subcluster {job.sub_cluster!r} unknown (cluster: {self.name})"
                )
            return job.sub_cluster
        if not job.resources:
            raise ValueError("job without any resources/hosts")
        host0 = job.resources[0].hostname
        name = self.subcluster_for_node(host0)
        if name is None:
            raise ValueError(f"no subcluster found for cluster {self.name} and host {host0}")
        return name


def _per_subcluster(mc: MetricConfig, subcluster: str) -> MetricConfig | None:
    override = next((o for o in (mc.sub_clusters or []) if o.name == subcluster), None)
    if override is None:
        return MetricConfig(
            name=mc.name,
            unit=mc.unit,
            scope=mc.scope or "node",
            aggregation=mc.aggregation,
            timestep=mc.timestep,
            peak=mc.peak,
            normal=mc.normal,
            caution=mc.caution,
            alert=mc.alert,
            footprint=mc.footprint,
            energy=mc.energy,
            lower_is_better=mc.lower_is_better,
            restrict=mc.restrict,
        )
    if override.remove:
        return None
    # Upstream quirk kept on purpose (contract §16): the override replaces every field, set or not.
    return MetricConfig(
        name=mc.name,
        unit=mc.unit,
        scope=mc.scope or "node",
        aggregation=mc.aggregation,
        timestep=mc.timestep,
        peak=override.peak,
        normal=override.normal,
        caution=override.caution,
        alert=override.alert,
        footprint=override.footprint,
        energy=override.energy,
        lower_is_better=override.lower_is_better,
        restrict=override.restrict,
    )


def global_metric_list(clusters: Iterable[Cluster], *, user: bool = False) -> list[GlobalMetricListItem]:
    """Every metric with the clusters/subclusters that have it (upstream `GlobalMetricList`).

    ``user=True`` gives the list for non-privileged users: subclusters where the metric is restricted
    are left out, and metrics restricted everywhere disappear. Takes raw or derived clusters.
    """
    items: dict[str, GlobalMetricListItem] = {}
    for cluster in clusters:
        for mc in cluster.metric_config:
            support: list[str] = []
            footprint = ""
            for sc in cluster.sub_clusters:
                new = _per_subcluster(mc, sc.name)
                if new is None or (user and new.restrict):
                    continue
                support.append(sc.name)
                footprint = new.footprint or footprint
            if user and not support:
                continue
            item = items.get(mc.name)
            if item is None:
                item = items[mc.name] = GlobalMetricListItem(
                    name=mc.name, unit=mc.unit, scope=mc.scope or "node", footprint=mc.footprint
                )
            if not user and footprint:
                item.footprint = footprint  # upstream: the last subcluster footprint seen wins
            item.availability.append(ClusterSupport(cluster=cluster.name, subclusters=support))
    return list(items.values())


# --------------------------------------------------------------------------------------- node lists

_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

# A term is a sequence of parts: a literal string, or a tuple of alternative ranges (start, end, digits).
_Range = tuple[int, int, int]
_Part = str | tuple[_Range, ...]


class NodeList:
    """A parsed node list: comma-separated terms of literals and zero-padded ranges in brackets.

    ``f[0101-0188,0201-0288],login`` names f0101…f0188, f0201…f0288 and login; ``*`` names every node.
    Range bounds must have equal widths (upstream's rule); a term may hold several bracket groups.
    Use ``hostname in nodelist``, `expand()` and ``len()``.
    """

    __slots__ = ("is_wildcard", "raw", "terms")

    def __init__(self, raw: str, terms: list[list[_Part]], is_wildcard: bool = False) -> None:
        self.raw = raw
        self.terms = terms
        self.is_wildcard = is_wildcard

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def parse(raw: str) -> NodeList:
        """Parse (cached: node lists come from cluster configs and are parsed again on every lookup)."""
        text = raw.strip()
        if text == "*":
            return NodeList(raw, [], is_wildcard=True)
        terms: list[list[_Part]] = []
        for rawterm in _split_terms(text):
            term = rawterm.strip()
            if not term:
                continue
            terms.append(_parse_term(term))
        return NodeList(raw, terms)

    def __contains__(self, hostname: object) -> bool:
        if not isinstance(hostname, str):
            return False
        if self.is_wildcard:
            return True
        return any(_match(term, 0, hostname, 0) for term in self.terms)

    def contains(self, hostname: str) -> bool:
        return hostname in self

    def __len__(self) -> int:
        """Number of nodes named (without expanding); a wildcard list raises `TypeError`."""
        if self.is_wildcard:
            raise TypeError("the node list '*' has no length")
        total = 0
        for term in self.terms:
            n = 1
            for part in term:
                if isinstance(part, tuple):
                    n *= sum(max(0, end - start + 1) for start, end, _ in part)
            total += n
        return total

    def expand(self) -> list[str]:
        """Every hostname, in order of appearance and ascending within ranges."""
        if self.is_wildcard:
            raise ValueError("the node list '*' cannot be expanded")
        out: list[str] = []
        for term in self.terms:
            choices: list[list[str]] = []
            for part in term:
                if isinstance(part, str):
                    choices.append([part])
                else:
                    choices.append(
                        [f"{i:0{digits}d}" for start, end, digits in part for i in range(start, end + 1)]
                    )
            out.extend("".join(p) for p in itertools.product(*choices))
        return out

    def __repr__(self) -> str:
        return f"NodeList({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeList) and (self.terms, self.is_wildcard) == (
            other.terms,
            other.is_wildcard,
        )

    def __hash__(self) -> int:
        return hash(self.raw)


def parse_nodelist(raw: str) -> NodeList:
    """`NodeList.parse`; raises `NodeListError`."""
    return NodeList.parse(raw)


def expand_nodelist(raw: str) -> list[str]:
    """All hostnames of a node list expression."""
    return NodeList.parse(raw).expand()


def _split_terms(text: str) -> list[str]:
    terms, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "[":
            if depth:
                raise NodeListError("nested '['")
            depth = 1
        elif c == "]":
            if not depth:
                raise NodeListError("']' without '['")
            depth = 0
        elif c == "," and not depth:
            terms.append(text[start:i])
            start = i + 1
    if depth:
        raise NodeListError("unclosed '['")
    terms.append(text[start:])
    return terms


def _parse_term(term: str) -> list[_Part]:
    parts: list[_Part] = []
    i = 0
    while i < len(term):
        c = term[i]
        if c in _LITERAL_CHARS:
            j = i
            while j < len(term) and term[j] in _LITERAL_CHARS:
                j += 1
            parts.append(term[i:j])
            i = j
        elif c == "[":
            end = term.index("]", i)
            ranges: list[_Range] = []
            for raw_range in term[i + 1 : end].split(","):
                ranges.append(_parse_range(raw_range.strip()))
            parts.append(tuple(ranges))
            i = end + 1
        else:
            raise NodeListError(f"invalid character {c!r} in {term!r}")
    return parts


def _parse_range(text: str) -> _Range:
    lo, sep, hi = text.partition("-")
    if not sep:
        lo = hi = text  # a single number, e.g. "[07]" (upstream requires a-b)
    if not lo or len(lo) != len(hi):
        raise NodeListError(f"range {text!r}: bounds must have equal, non-zero width (zero-padded)")
    if not (lo.isascii() and lo.isdigit() and hi.isascii() and hi.isdigit()):
        raise NodeListError(f"range {text!r}: bounds must be numbers")
    return (int(lo), int(hi), len(lo))


def _match(term: list[_Part], i: int, name: str, pos: int) -> bool:
    if i == len(term):
        return pos == len(name)
    part = term[i]
    if isinstance(part, str):
        return name.startswith(part, pos) and _match(term, i + 1, name, pos + len(part))
    for start, end, digits in part:
        seg = name[pos : pos + digits]
        if (
            len(seg) == digits
            and seg.isascii()
            and seg.isdigit()
            and start <= int(seg) <= end
            and _match(term, i + 1, name, pos + digits)
        ):
            return True
    return False


_CLUSTER_DECODER = msgspec.json.Decoder(Cluster)


def decode_cluster(buf: bytes | str) -> Cluster:
    """Decode ``cluster.json`` (lenient about unknown keys, as upstream). Raises msgspec errors."""
    return _CLUSTER_DECODER.decode(buf)


def encode_cluster(cluster: Cluster) -> bytes:
    """``cluster.json`` as upstream writes it: the keys its JSON schema requires are always present."""
    doc = msgspec.to_builtins(cluster)
    for mc in doc.get("metricConfig", []):
        _fill_metric(mc)
    for sc in doc.get("subClusters", []):
        for key in ("nodes", "processorType"):
            sc.setdefault(key, "")
        for key in ("socketsPerNode", "coresPerSocket", "threadsPerCore"):
            sc.setdefault(key, 0)
        for key in ("flopRateScalar", "flopRateSimd", "memoryBandwidth"):
            mv = sc.setdefault(key, {})
            mv.setdefault("unit", {}).setdefault("base", "")
            mv.setdefault("value", 0.0)
        topo = sc.setdefault("topology", {})
        for key in ("node", "socket", "memoryDomain", "core"):
            topo.setdefault(key, [])
        for mc in sc.get("metricConfig", []) or []:
            _fill_metric(mc)
    return msgspec.json.encode(doc) + b"\n"


def _fill_metric(mc: dict) -> None:
    mc.setdefault("unit", {}).setdefault("base", "")
    mc.setdefault("scope", "node")
    mc.setdefault("aggregation", "")
    mc.setdefault("timestep", 0)
    for key in ("peak", "normal", "caution", "alert"):
        mc.setdefault(key, 0.0)
    for sub in mc.get("subClusters", []) or []:
        if "unit" in sub:
            sub["unit"].setdefault("base", "")

"""Job- and node-level reads in the archive's shapes (upstream ``pkg/metricstore/query.go``, §8.5).

These are the synchronous bodies of the `MetricBackend` methods: they turn a job (its hosts, hardware
threads, accelerators, time range) and the cluster configuration into store reads via `scopes`, and
return `cc_core.schema.metrics` structs, so that a job's data reads the same from the store as from the
archive.

Work is batched per (metric, scope): series of equal length get their statistics from one 2-D reduction
and are LTTB-downsampled together, which keeps a 64-node × 10-metric job at a few milliseconds.
Statistics are computed on the native-resolution data (upstream computes them after downsampling) and
zeroed when NaN (upstream ``SanitizeStats``). A host or metric without data is left out, not an error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cc_core.schema.metrics import JobData, JobMetric, JobStats, MetricStatistics, ScopedStats, Series

from .lttb import lttb_rows, target_length
from .scopes import ScopeQuery, TopologyIndex, build_scope_queries, coarser
from .store import MetricStore, MetricStoreError, NoDataError, nan_stats_rows

log = logging.getLogger(__name__)


class ScopeError(MetricStoreError):
    """A native/requested scope combination that cannot be served."""


def metric_configs(cluster: Any, subcluster: str | None) -> dict[str, Any]:
    """Metric configs for a subcluster: the derived per-subcluster list when the cluster was derived
    (``Cluster.derive``), else the cluster's list minus metrics ``remove``d for the subcluster."""
    if subcluster:
        derived = cluster.subcluster_metrics(subcluster)
        if derived:
            return derived
    out = {}
    for mc in cluster.metric_config:
        if subcluster and any(o.name == subcluster and o.remove for o in mc.sub_clusters or ()):
            continue
        out[mc.name] = mc
    return out


def _topology(cluster: Any, subcluster: str) -> TopologyIndex:
    sc = cluster.subcluster(subcluster)
    if sc is None:
        raise ScopeError(f"unknown subcluster {subcluster!r} of cluster {cluster.name!r}")
    return TopologyIndex.of(sc.topology)


@dataclass(slots=True)
class _Got:
    metric: str
    scope: str
    hostname: str
    id: str | None
    data: np.ndarray
    frm: int
    freq: int


def _job_range(job: Any, now: float | None) -> tuple[int, int]:
    start = int(job.start_time)
    if job.duration and job.duration > 0:
        return start, start + int(job.duration)
    return start, int(time.time() if now is None else now)


def _sanitize(avg: float, mn: float, mx: float) -> MetricStatistics:
    if math.isnan(avg) or math.isnan(mn) or math.isnan(mx):
        return MetricStatistics(0.0, 0.0, 0.0)
    return MetricStatistics(avg, mn, mx)


def build_job_queries(
    cluster: Any, job: Any, metrics: Sequence[str] | None, scopes: Sequence[str]
) -> list[ScopeQuery]:
    """All scope queries of a job (upstream ``buildQueries``)."""
    if not job.resources:
        raise ScopeError(f"no resources allocated for job {job.job_id}")
    sub = job.sub_cluster or cluster.subcluster_for_node(job.resources[0].hostname) or ""
    topo = _topology(cluster, sub)
    configs = metric_configs(cluster, sub)
    names = list(configs) if metrics is None else list(metrics)
    out: list[ScopeQuery] = []
    for metric in names:
        mc = configs.get(metric)
        if mc is None:
            log.debug("metric %r is not specified for cluster %r/%r", metric, cluster.name, sub)
            continue
        native = mc.scope or "node"
        if native == "accelerator" and not job.num_acc and not any(r.accelerators for r in job.resources):
            continue
        handled: set[str] = set()
        for requested in scopes or ("node",):
            eff = coarser(native, requested)
            if eff in handled:
                continue
            handled.add(eff)
            for res in job.resources:
                qs = build_scope_queries(
                    native, requested, metric, res.hostname, topo, res.hwthreads, res.accelerators
                )
                if qs is None:
                    raise ScopeError(
                        f"unsupported scope transformation: native-scope={native}, requested-scope={requested}"
                    )
                out.extend(qs)
    return out


def _execute(
    store: MetricStore,
    cluster_name: str,
    queries: Sequence[ScopeQuery],
    frm: int,
    to: int,
    errors: list[str] | None,
) -> list[_Got]:
    got: list[_Got] = []
    for q in queries:
        for sel, sid in q.selectors(cluster_name):
            try:
                r = store.read(sel, q.metric, frm, to, 0, with_stats=False)
            except NoDataError:
                continue
            except MetricStoreError as e:
                msg = f"failed to fetch '{q.metric}' from host '{q.hostname}': {e}"
                log.warning(msg)
                if errors is not None:
                    errors.append(msg)
                continue
            got.append(_Got(q.metric, q.scope, q.hostname, sid, r.data, r.from_, r.resolution))
    return got


def _stats_for(items: list[_Got], sanitize: bool = True) -> list[MetricStatistics]:
    """Statistics of every item, one 2-D reduction per distinct length (NaN → zeros when
    ``sanitize``, else left NaN)."""
    out: list[MetricStatistics | None] = [None] * len(items)
    by_len: dict[int, list[int]] = {}
    for i, g in enumerate(items):
        by_len.setdefault(len(g.data), []).append(i)
    for _n, idx in by_len.items():
        rows = np.stack([items[i].data for i in idx])
        avg, mn, mx = nan_stats_rows(rows)
        for j, i in enumerate(idx):
            st = (float(avg[j]), float(mn[j]), float(mx[j]))
            out[i] = _sanitize(*st) if sanitize else MetricStatistics(*st)
    return out  # type: ignore[return-value]


def _resample(items: list[_Got], resolution: int, minimum_points: int) -> int:
    """LTTB-downsample the items in place, grouped by (length, interval); returns the timestep of
    the result (``resolution`` if anything was downsampled, else the native interval)."""
    res = items[0].freq
    if not resolution:
        return res
    groups: dict[tuple[int, int], list[int]] = {}
    for i, g in enumerate(items):
        groups.setdefault((len(g.data), g.freq), []).append(i)
    for (n, freq), idx in groups.items():
        if resolution <= freq:
            continue
        m = target_length(n, freq, resolution, minimum_points)
        if m < 0:
            continue
        rows = lttb_rows(np.stack([items[i].data for i in idx]), m)
        for j, i in enumerate(idx):
            items[i].data = rows[j]
        res = resolution
    return res


def load_data(
    store: MetricStore,
    cluster: Any,
    job: Any,
    metrics: Sequence[str] | None,
    scopes: Sequence[str],
    resolution: int = 0,
    *,
    now: float | None = None,
    errors: list[str] | None = None,
) -> JobData:
    """`JobData` of a job: ``{metric: {scope: JobMetric}}`` (upstream ``LoadData``)."""
    frm, to = _job_range(job, now)
    queries = build_job_queries(cluster, job, metrics, scopes)
    sub = job.sub_cluster or cluster.subcluster_for_node(job.resources[0].hostname) or ""
    return _assemble(store, cluster.name, metric_configs(cluster, sub), queries, frm, to, resolution, errors)


def _assemble(
    store: MetricStore,
    cluster_name: str,
    configs: Mapping[str, Any],
    queries: Sequence[ScopeQuery],
    frm: int,
    to: int,
    resolution: int,
    errors: list[str] | None,
) -> JobData:
    got = _execute(store, cluster_name, queries, frm, to, errors)
    groups: dict[tuple[str, str], list[_Got]] = {}
    for g in got:
        groups.setdefault((g.metric, g.scope), []).append(g)
    out: JobData = {}
    for (metric, scope), items in groups.items():
        mc = configs[metric]
        stats = _stats_for(items)
        timestep = _resample(items, resolution, store.minimum_points)
        series = [
            Series(hostname=g.hostname, data=np.asarray(g.data, dtype=np.float64), statistics=st, id=g.id)
            for g, st in zip(items, stats, strict=True)
        ]
        out.setdefault(metric, {})[scope] = JobMetric(unit=mc.unit, timestep=timestep, series=series)
    return out


def load_stats(
    store: MetricStore, cluster: Any, job: Any, metrics: Sequence[str] | None, *, now: float | None = None
) -> dict[str, dict[str, MetricStatistics]]:
    """Node-scope statistics ``{metric: {hostname: MetricStatistics}}`` (upstream ``LoadStats``;
    hosts whose statistics are NaN are left out)."""
    frm, to = _job_range(job, now)
    queries = build_job_queries(cluster, job, metrics, ["node"])
    got = _execute(store, cluster.name, queries, frm, to, None)
    out: dict[str, dict[str, MetricStatistics]] = {}
    for g, st in zip(got, _stats_for(got, sanitize=False), strict=True):
        if math.isnan(st.avg) or math.isnan(st.min) or math.isnan(st.max):  # type: ignore[arg-type]
            log.debug("statistics of %s on %s are NaN; skipped", g.metric, g.hostname)
            continue
        out.setdefault(g.metric, {})[g.hostname] = st
    return out


def load_scoped_stats(
    store: MetricStore,
    cluster: Any,
    job: Any,
    metrics: Sequence[str] | None,
    scopes: Sequence[str],
    *,
    now: float | None = None,
) -> JobStats:
    """``{metric: {scope: [ScopedStats]}}`` (upstream ``LoadScopedStats``)."""
    frm, to = _job_range(job, now)
    queries = build_job_queries(cluster, job, metrics, scopes)
    got = _execute(store, cluster.name, queries, frm, to, None)
    out: JobStats = {}
    for g, st in zip(got, _stats_for(got), strict=True):
        out.setdefault(g.metric, {}).setdefault(g.scope, []).append(ScopedStats(g.hostname, st, g.id))
    return out


def load_node_data(
    store: MetricStore,
    cluster: Any,
    metrics: Sequence[str] | None,
    nodes: Sequence[str] | None,
    start: int,
    stop: int,
) -> dict[str, dict[str, list[JobMetric]]]:
    """Node-scope series of nodes (all nodes in the store when ``nodes`` is None) for the systems view:
    ``{hostname: {metric: [JobMetric]}}`` (upstream ``LoadNodeData``)."""
    configs = {mc.name: mc for mc in cluster.metric_config}
    names = list(configs) if metrics is None else [m for m in metrics if m in configs]
    hosts = store.list_children([cluster.name]) if nodes is None else list(nodes)
    queries = [ScopeQuery(m, h, "node") for h in hosts for m in names]
    got = _execute(store, cluster.name, queries, start, stop, None)
    out: dict[str, dict[str, list[JobMetric]]] = {}
    for g, st in zip(got, _stats_for(got), strict=True):
        mc = configs[g.metric]
        jm = JobMetric(
            unit=mc.unit,
            timestep=int(mc.timestep),
            series=[Series(hostname=g.hostname, data=np.asarray(g.data, dtype=np.float64), statistics=st)],
        )
        out.setdefault(g.hostname, {}).setdefault(g.metric, []).append(jm)
    return out


def build_node_queries(
    cluster: Any, subcluster: str, host: str, metrics: Sequence[str] | None, scopes: Sequence[str]
) -> tuple[list[ScopeQuery], dict[str, Any]]:
    """Scope queries for every hardware thread / accelerator of one node's topology (the node list's
    view of a host), and the metric configs of its subcluster."""
    sub = subcluster or cluster.subcluster_for_node(host) or ""
    topo = _topology(cluster, sub)
    configs = metric_configs(cluster, sub)
    names = list(configs) if metrics is None else [m for m in metrics if m in configs]
    queries: list[ScopeQuery] = []
    for metric in names:
        native = configs[metric].scope or "node"
        if native == "accelerator" and not topo.accelerators:
            continue
        handled: set[str] = set()
        for requested in scopes or ("node",):
            eff = coarser(native, requested)
            if eff in handled:
                continue
            handled.add(eff)
            qs = build_scope_queries(native, requested, metric, host, topo, topo.node, topo.accelerators)
            if qs is None:
                raise ScopeError(
                    f"unsupported scope transformation: native-scope={native}, requested-scope={requested}"
                )
            queries.extend(qs)
    return queries, configs


def load_node_list_data(
    store: MetricStore,
    cluster: Any,
    subcluster: str,
    nodes: Sequence[str],
    metrics: Sequence[str] | None,
    scopes: Sequence[str],
    resolution: int,
    start: int,
    stop: int,
) -> dict[str, JobData]:
    """``{hostname: JobData}`` for a page of the node list (upstream ``LoadNodeListData``): every
    hardware thread / accelerator of the node's topology."""
    out: dict[str, JobData] = {}
    for host in nodes:
        queries, configs = build_node_queries(cluster, subcluster, host, metrics, scopes)
        data = _assemble(store, cluster.name, configs, queries, start, stop, resolution, None)
        if data:
            out[host] = data
    return out

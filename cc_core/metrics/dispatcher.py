"""The metric dispatcher: where a job's or a node's metric data comes from (upstream
``internal/metricdispatch``, contract §8.5). It implements the GraphQL `MetricDispatcher` protocol.

Routing
    A ``metric-store-external`` entry whose ``scope`` is ``"<cluster>-<subcluster>"``, else
    ``"<cluster>"``, else ``"*"``, else the embedded store (the ``metric-store`` section). Backends are
    instances of the class their ``kind`` selects (`register_metric_backends`), built when the app is;
    those with an ``async start()`` are started after the clusters are loaded, and closed at shutdown.

Jobs
    A running job, or one whose ``monitoringStatus`` is 1 (stopped, not yet archived), reads from its
    backend; any other from the archive, LTTB-resampled to the requested resolution. A job the archive
    does not have (archiving failed or disabled) is tried on its backend before giving up. Results are
    cached (LRU, 128 MB, 2 minutes for running jobs and 5 hours for others; the key has the job's id,
    state and monitoring status, metrics, scopes and resolution), get a statistics series when a metric
    has 8 series or more, a node scope for ``flops_any``/``mem_bw`` synthesised from finer scopes when
    the node scope was asked for but not delivered, and statistics rounded to two decimals.

Cached `JobData` is shared between callers: treat it as read-only (`jobdata.copy_job_data` if not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cc_core.metrics import jobdata
from cc_core.metrics.cache import TTLCache
from cc_core.metrics.errors import MetricDataError, NoMetricBackend
from cc_core.schema.metrics import JobData, JobMetric, JobStats, MetricStatistics

if TYPE_CHECKING:
    from cc_core.config import Config
    from cc_core.context import PluginContext
    from cc_core.interfaces import ArchiveBackend, MetricBackend, NodeHealth
    from cc_core.plugins import PluginRegistry
    from cc_core.schema import Job
    from cc_core.schema.cluster import Cluster

log = logging.getLogger(__name__)

TTL_RUNNING = 120.0
TTL_FINISHED = 5 * 3600.0
CACHE_BYTES = 128 * 1024 * 1024
# At most this many jobs' statistics are loaded at once by `load_averages`.
AVERAGES_CONCURRENCY = 8


def from_backend(job: Job) -> bool:
    """Upstream's rule: a running job, or one stopped but not archived yet, reads live data."""
    return job.job_state == "running" or job.monitoring_status == 1


def _job_key(job: Job) -> Any:
    return job.id if job.id is not None else (job.cluster, job.job_id, job.start_time)


class MetricDispatcher:
    """See the module docstring."""

    def __init__(
        self,
        *,
        archive: ArchiveBackend | None,
        clusters: Any,
        internal: MetricBackend | None = None,
        external: Mapping[str, MetricBackend] | None = None,
        minimum_points: int = 1000,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.archive = archive
        self.clusters = clusters
        self.internal = internal
        self.external: dict[str, MetricBackend] = dict(external or {})
        self.minimum_points = minimum_points
        self.cache: TTLCache[JobData] = TTLCache(cache_bytes)
        self._started: list[Any] = []

    @classmethod
    def from_config(
        cls,
        config: Config,
        registry: PluginRegistry,
        context: PluginContext,
        *,
        archive: ArchiveBackend | None,
        clusters: Any,
    ) -> MetricDispatcher:
        """Instantiate the configured backends (``metric-store`` and ``metric-store-external``)."""
        from cc_core.config import DEFAULT_METRIC_BACKEND_KIND, INTERNAL_METRIC_STORE_KIND, ConfigError

        minimum = config.main.resampling.minimum_points if config.main.resampling else 1000
        context.services.setdefault("resampling_minimum_points", minimum)
        internal = None
        if config.metric_store is not None:
            kls = registry.resolve("metric", INTERNAL_METRIC_STORE_KIND, path="$.metric-store")
            internal = kls(context.section("$.metric-store"), context)
        external: dict[str, Any] = {}
        for i, entry in enumerate(config.metric_store_external or []):
            path = f"$.metric-store-external[{i}]"
            kind = entry.get("kind", DEFAULT_METRIC_BACKEND_KIND)
            kls = registry.resolve("metric", kind, path=f"{path}.kind", file=config.source)
            section = context.section(path)
            scope = str(getattr(section, "scope", "") or entry.get("scope") or "*")
            if scope in external:
                raise ConfigError(
                    f"scope {scope!r} is configured twice", file=config.source, path=f"{path}.scope"
                )
            external[scope] = kls(section, context)
        return cls(
            archive=archive, clusters=clusters, internal=internal, external=external, minimum_points=minimum
        )

    # ------------------------------------------------------------------------------ life cycle

    def backends(self) -> list[MetricBackend]:
        out: list[Any] = [] if self.internal is None else [self.internal]
        out.extend(b for b in self.external.values() if b not in out)
        return out

    async def start(self) -> None:
        """Start the backends that have an ``async start()`` (the embedded store loads its files)."""
        for b in self.backends():
            starter = getattr(b, "start", None)
            if starter is not None:
                await starter()
            self._started.append(b)

    async def close(self) -> None:
        """Close every backend (the embedded store writes its final checkpoint); errors are logged."""
        for b in reversed(self.backends()):
            closer = getattr(b, "close", None)
            if closer is None:
                continue
            try:
                await closer()
            except Exception:
                log.exception("closing metric backend %s failed", getattr(b, "kind", b))
        self._started.clear()

    # --------------------------------------------------------------------------------- routing

    def backend_for(self, cluster: str, subcluster: str = "") -> MetricBackend:
        """The backend of a cluster / subcluster (see the module docstring)."""
        for key in (f"{cluster}-{subcluster}" if subcluster else None, cluster, "*"):
            if key is not None and key in self.external:
                return self.external[key]
        if self.internal is not None:
            return self.internal
        raise NoMetricBackend(f"no metric store is configured for cluster {cluster!r}")

    def _cluster(self, name: str) -> Cluster:
        c = self.clusters.cluster(name) if self.clusters is not None else None
        if c is None:
            raise MetricDataError(f"unknown cluster {name!r}")
        return c  # type: ignore[no-any-return]

    def _job_backend(self, job: Job) -> MetricBackend:
        sub = job.sub_cluster
        if not sub and job.resources:
            sub = self._cluster(job.cluster).subcluster_for_node(job.resources[0].hostname) or ""
        return self.backend_for(job.cluster, sub)

    def _all_metrics(self, cluster: str) -> list[str]:
        return [mc.name for mc in self._cluster(cluster).metric_config]

    # ------------------------------------------------------------------------------- job data

    async def load_data(
        self,
        job: Job,
        metrics: Sequence[str] | None,
        scopes: Sequence[str] | None,
        resolution: int,
        *,
        use_cache: bool = True,
    ) -> JobData:
        """``{metric: {scope: JobMetric}}`` of a job (see the module docstring)."""
        key = (
            _job_key(job),
            job.job_state,
            job.monitoring_status,
            tuple(metrics) if metrics is not None else None,
            tuple(scopes) if scopes is not None else None,
            int(resolution or 0),
        )

        async def compute() -> tuple[JobData, int, float]:
            data = await self._load_data(job, metrics, scopes, int(resolution or 0))
            ttl = TTL_RUNNING if job.job_state == "running" else TTL_FINISHED
            return data, jobdata.data_size(data), ttl

        if not use_cache:
            return (await compute())[0]
        return await self.cache.get_or_compute(key, compute)

    async def _load_data(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None, resolution: int
    ) -> JobData:
        live = from_backend(job)
        # Upstream: the backend path defaults to node scope, the archive path to "everything stored".
        node_requested = "node" in scopes if scopes is not None else live
        if live:
            data = await self._backend_data(job, metrics, scopes, resolution)
        else:
            try:
                data = await self._archive_data(job, metrics, scopes, resolution)
            except MetricDataError as archive_error:
                if job.monitoring_status == 3:
                    raise
                try:  # not archived (failed or disabled): the data may still be in the store
                    data = await self._backend_data(job, metrics, scopes, resolution)
                except Exception:
                    raise archive_error from None
        jobdata.add_statistics_series(data)
        if node_requested:
            for m in jobdata.NODE_SCOPE_METRICS:
                jobdata.add_node_scope(data, m)
        jobdata.round_metric_stats(data)
        return data

    async def _backend_data(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None, resolution: int
    ) -> JobData:
        backend = self._job_backend(job)
        names = list(metrics) if metrics is not None else self._all_metrics(job.cluster)
        try:
            return dict(await backend.load_data(job, names, list(scopes or ["node"]), resolution))  # type: ignore[arg-type]
        except MetricDataError:
            raise
        except Exception as e:
            raise MetricDataError(
                f"cannot load metric data of job {job.job_id} ({job.cluster}) from "
                f"{getattr(backend, 'kind', 'metric store')}: {e}"
            ) from e

    async def _archive_data(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None, resolution: int
    ) -> JobData:
        if self.archive is None:
            raise MetricDataError("no job archive is configured")
        try:
            data = await self.archive.load_job_data(job)
        except Exception as e:
            raise MetricDataError(
                f"cannot load job {job.job_id} ({job.cluster}) from the archive: {e}"
            ) from e
        cluster = self.clusters.cluster(job.cluster) if self.clusters is not None else None
        native = (
            {mc.name: mc.scope or "node" for mc in cluster.metric_config} if cluster is not None else None
        )
        data = jobdata.filter_data(data, metrics, scopes, native)
        jobdata.resample(data, resolution, self.minimum_points)
        return data

    # ------------------------------------------------------------------------------ statistics

    async def load_job_stats(self, job: Job, metrics: Sequence[str] | None) -> dict[str, MetricStatistics]:
        """Node-level min/avg/max per metric over the job's run."""
        names = list(metrics) if metrics is not None else self._all_metrics(job.cluster)
        if from_backend(job):
            backend = self._job_backend(job)
            try:
                stats = await backend.load_stats(job, names)
            except Exception as e:
                raise MetricDataError(f"cannot load statistics of job {job.job_id}: {e}") from e
            return {m: jobdata.combine_node_stats(stats.get(m), job.num_nodes) for m in names}
        meta = await self._archived_meta(job)
        out: dict[str, MetricStatistics] = {}
        for m in names:
            st = (meta.statistics or {}).get(m)
            out[m] = (
                MetricStatistics(0.0, 0.0, 0.0) if st is None else MetricStatistics(st.avg, st.min, st.max)
            )
        return out

    async def _archived_meta(self, job: Job) -> Job:
        if self.archive is None:
            raise MetricDataError("no job archive is configured")
        try:
            return await self.archive.load_job_meta(job)
        except Exception as e:
            raise MetricDataError(
                f"cannot load job {job.job_id} ({job.cluster}) from the archive: {e}"
            ) from e

    async def load_scoped_job_stats(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None
    ) -> JobStats:
        """``{metric: {scope: [ScopedStats]}}``: from the backend (rounded) or the archive's data."""
        if from_backend(job):
            backend = self._job_backend(job)
            names = list(metrics) if metrics is not None else self._all_metrics(job.cluster)
            try:
                stats = dict(await backend.load_scoped_stats(job, names, list(scopes or ["node"])))
            except Exception as e:
                raise MetricDataError(f"cannot load statistics of job {job.job_id}: {e}") from e
            for scoped in stats.values():
                for items in scoped.values():
                    for it in items:
                        st = it.data
                        it.data = MetricStatistics(
                            jobdata.round2(st.avg),  # type: ignore[arg-type]
                            jobdata.round2(st.min),  # type: ignore[arg-type]
                            jobdata.round2(st.max),  # type: ignore[arg-type]
                        )
            return stats
        if self.archive is None:
            raise MetricDataError("no job archive is configured")
        try:
            stats = dict(await self.archive.load_job_stats(job))
        except Exception as e:
            raise MetricDataError(
                f"cannot load job {job.job_id} ({job.cluster}) from the archive: {e}"
            ) from e
        if metrics is not None:
            stats = {m: stats[m] for m in metrics if m in stats}
        if scopes is not None:
            stats = {m: {s: v for s, v in scoped.items() if s in scopes} for m, scoped in stats.items()}
        return stats

    async def load_averages(self, jobs: Sequence[Job], metrics: Sequence[str]) -> list[np.ndarray]:
        """Per metric, each job's average (NaN where unknown), in the order of ``jobs``."""
        out = [np.full(len(jobs), np.nan) for _ in metrics]
        sem = asyncio.Semaphore(AVERAGES_CONCURRENCY)

        async def one(i: int, job: Job) -> None:
            async with sem:
                try:
                    if from_backend(job):
                        stats = await self._job_backend(job).load_stats(job, list(metrics))
                        for k, m in enumerate(metrics):
                            per_host = stats.get(m)
                            if per_host:
                                total = sum(float(v.avg) for v in per_host.values())  # type: ignore[arg-type]
                                out[k][i] = total / max(job.num_nodes, 1)
                    else:
                        meta = await self._archived_meta(job)
                        for k, m in enumerate(metrics):
                            st = (meta.statistics or {}).get(m)
                            if st is not None:
                                out[k][i] = st.avg
                except Exception as e:  # one job without data must not fail the whole analysis
                    log.warning("averages of job %s unavailable: %s", job.id, e)

        await asyncio.gather(*(one(i, j) for i, j in enumerate(jobs)))
        return out

    # ------------------------------------------------------------------------------- node data

    def _group_nodes(self, cluster: str, nodes: Sequence[str]) -> dict[int, tuple[MetricBackend, list[str]]]:
        c = self._cluster(cluster)
        groups: dict[int, tuple[Any, list[str]]] = {}
        for host in nodes:
            backend = self.backend_for(cluster, c.subcluster_for_node(host) or "")
            groups.setdefault(id(backend), (backend, []))[1].append(host)
        return groups

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str] | None,
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> dict[str, dict[str, list[JobMetric]]]:
        """``{hostname: {metric: [JobMetric]}}`` for the systems views, from every backend that serves
        a part of the cluster."""
        names = list(metrics) if metrics is not None else self._all_metrics(cluster)
        if nodes is not None:
            calls = [(b, hosts) for b, hosts in self._group_nodes(cluster, nodes).values()]
        else:
            c = self._cluster(cluster)
            distinct: dict[int, Any] = {}
            for sc in c.sub_clusters or [None]:
                b = self.backend_for(cluster, sc.name if sc is not None else "")
                distinct.setdefault(id(b), b)
            calls = [(b, None) for b in distinct.values()]
        out: dict[str, dict[str, list[JobMetric]]] = {}
        for backend, hosts in calls:
            try:
                part = await backend.load_node_data(cluster, names, hosts, list(scopes), start, stop)
            except Exception as e:
                raise MetricDataError(f"cannot load node data of cluster {cluster!r}: {e}") from e
            for host, per_metric in part.items():
                out.setdefault(host, {}).update(per_metric)  # type: ignore[arg-type]
        return out

    async def load_node_list_data(
        self,
        cluster: str,
        sub_cluster: str,
        nodes: Sequence[str],
        metrics: Sequence[str] | None,
        scopes: Sequence[str],
        resolution: int,
        start: int,
        stop: int,
    ) -> dict[str, JobData]:
        """``{hostname: JobData}`` for a page of the node list, with statistics series as for jobs."""
        names = list(metrics) if metrics is not None else self._all_metrics(cluster)
        if sub_cluster:
            groups = [(self.backend_for(cluster, sub_cluster), list(nodes))]
        else:
            groups = list(self._group_nodes(cluster, nodes).values())
        out: dict[str, JobData] = {}
        for backend, hosts in groups:
            try:
                part = await backend.load_node_list_data(
                    cluster, sub_cluster, hosts, names, list(scopes), resolution, start, stop
                )
            except Exception as e:
                raise MetricDataError(f"cannot load node data of cluster {cluster!r}: {e}") from e
            for host, data in part.items():
                data = dict(data)
                jobdata.add_statistics_series(data)  # type: ignore[arg-type]
                out[host] = data  # type: ignore[assignment]
        return out

    async def health_check(
        self, cluster: str, subcluster: str, nodes: Sequence[str], metrics: Sequence[str]
    ) -> Mapping[str, NodeHealth]:
        """Health of nodes from their metric backend (contract §8.6)."""
        return await self.backend_for(cluster, subcluster).health_check(cluster, list(nodes), list(metrics))

    # --------------------------------------------------------------------------------- helpers

    def invalidate(self, job: Job) -> None:
        """Forget cached data of ``job`` (after archiving or a metadata change)."""
        key = _job_key(job)
        self.cache.invalidate(lambda k: isinstance(k, tuple) and k[0] == key)

"""A base for metric backends over a general-purpose time-series database (Prometheus, InfluxDB, …).

Such a database knows series and samples but not ClusterCockpit's topology: which hardware threads make
a core, how a metric aggregates, what "socket 1 of node n17" means. Rather than re-implementing scope
mapping, aggregation, resampling and statistics per database, a subclass only *fetches* the native
series (`RemoteSeries`: metric, host, optional ``type``/``type-id`` such as ``hwthread``/``3``, and
timestamped samples) for some hosts, metrics and a time range; the base loads them into a scratch
`MetricStore` and answers every `MetricBackend` method with the embedded store's query code. So a job
read from Prometheus has exactly the shapes, ids and statistics it would have from the embedded store,
and the shared contract suite holds for all of them.

Cost: the samples of one request are copied once into numpy blocks (a 64-node job with 10 metrics at
node level and 24 h at 60 s is ~1 M samples, tens of milliseconds); the database work dominates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cc_core.interfaces import NodeHealth

from . import query
from .backend import cluster_of, minimum_points
from .store import MetricInfo, MetricStore, metrics_from_clusters

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema import Job
    from cc_core.schema.cluster import Cluster, MetricConfig
    from cc_core.schema.metrics import JobData, JobMetric, JobStats, MetricStatistics

log = logging.getLogger(__name__)

# The freshness window a health check looks at, in metric intervals (degraded after 5, as §8.6).
HEALTH_WINDOW = 10


@dataclass(slots=True)
class RemoteSeries:
    """One native series fetched from the database; ``type`` None (or ``"node"``) is the host level."""

    metric: str
    hostname: str
    type: str | None
    type_id: str | None
    ts: np.ndarray
    values: np.ndarray

    def path(self, cluster: str) -> tuple[str, ...]:
        if self.type is None or self.type == "node" or self.type_id is None:
            return (cluster, self.hostname)
        return (cluster, self.hostname, f"{self.type}{self.type_id}")


def _bad_name(s: str) -> bool:
    return not s or ".." in s or "/" in s or "\\" in s


class ScratchStoreBackend:
    """Subclasses implement `fetch` (and usually `start`/`close` for their HTTP client)."""

    kind: str = ""

    def __init__(self, context: PluginContext | None = None) -> None:
        self.context = context

    # ------------------------------------------------------------------------------ to implement

    async def fetch(
        self,
        cluster: Cluster,
        metrics: Sequence[MetricConfig],
        hosts: Sequence[str] | None,
        start: int,
        stop: int,
    ) -> list[RemoteSeries]:
        """Native series of ``metrics`` for ``hosts`` (None: every host of the cluster) with samples in
        ``[start, stop)`` at (about) each metric's timestep."""
        raise NotImplementedError

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------------------------- machinery

    def _cluster(self, name: str) -> Cluster:
        return cluster_of(self.context, name)

    @staticmethod
    def _configs(cluster: Cluster, names: Iterable[str] | None) -> list[MetricConfig]:
        by_name = {mc.name: mc for mc in cluster.metric_config}
        if names is None:
            return list(by_name.values())
        return [by_name[n] for n in dict.fromkeys(names) if n in by_name]

    async def _scratch(
        self,
        cluster: Cluster,
        names: Iterable[str] | None,
        hosts: Sequence[str] | None,
        start: int,
        stop: int,
    ) -> MetricStore:
        configs = self._configs(cluster, names)
        fetched = await self.fetch(cluster, configs, hosts, start, stop) if configs else []
        return await asyncio.to_thread(self._load, cluster, fetched)

    def _load(self, cluster: Cluster, fetched: Sequence[RemoteSeries]) -> MetricStore:
        infos: dict[str, MetricInfo] = metrics_from_clusters([cluster])
        store = MetricStore(
            infos, minimum_points=minimum_points(self.context), initial_capacity=max(16, len(fetched))
        )
        sids, ts, vals = [], [], []
        for s in fetched:
            if _bad_name(s.hostname) or (s.type_id is not None and _bad_name(s.type_id)) or not len(s.ts):
                continue
            sid = store.series_id(s.path(cluster.name), s.metric, create=True)
            if sid is None:
                continue
            order = np.argsort(s.ts, kind="stable")
            sids.append(np.full(len(s.ts), sid, dtype=np.int64))
            ts.append(np.asarray(s.ts, dtype=np.int64)[order])
            vals.append(np.asarray(s.values, dtype=np.float64)[order])
        if sids:
            store.write_batch(np.concatenate(sids), np.concatenate(ts), np.concatenate(vals))
        return store

    @staticmethod
    def _job_hosts(job: Job) -> list[str]:
        return list(dict.fromkeys(r.hostname for r in job.resources))

    # -------------------------------------------------------------------------- MetricBackend

    async def load_data(
        self, job: Job, metrics: Sequence[str], scopes: Sequence[str], resolution: int
    ) -> JobData:
        cluster = self._cluster(job.cluster)
        frm, to = query._job_range(job, None)
        store = await self._scratch(cluster, metrics, self._job_hosts(job), frm, to)
        return await asyncio.to_thread(
            query.load_data, store, cluster, job, metrics, scopes, resolution, now=float(to)
        )

    async def load_stats(self, job: Job, metrics: Sequence[str]) -> dict[str, dict[str, MetricStatistics]]:
        cluster = self._cluster(job.cluster)
        frm, to = query._job_range(job, None)
        store = await self._scratch(cluster, metrics, self._job_hosts(job), frm, to)
        return await asyncio.to_thread(query.load_stats, store, cluster, job, metrics, now=float(to))

    async def load_scoped_stats(self, job: Job, metrics: Sequence[str], scopes: Sequence[str]) -> JobStats:
        cluster = self._cluster(job.cluster)
        frm, to = query._job_range(job, None)
        store = await self._scratch(cluster, metrics, self._job_hosts(job), frm, to)
        return await asyncio.to_thread(
            query.load_scoped_stats, store, cluster, job, metrics, scopes, now=float(to)
        )

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str],
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> dict[str, dict[str, list[JobMetric]]]:
        c = self._cluster(cluster)
        store = await self._scratch(c, metrics, nodes, start, stop)
        return await asyncio.to_thread(query.load_node_data, store, c, metrics, nodes, start, stop)

    async def load_node_list_data(
        self,
        cluster: str,
        sub_cluster: str,
        nodes: Sequence[str],
        metrics: Sequence[str],
        scopes: Sequence[str],
        resolution: int,
        start: int,
        stop: int,
    ) -> dict[str, JobData]:
        c = self._cluster(cluster)
        store = await self._scratch(c, metrics, nodes, start, stop)
        return await asyncio.to_thread(
            query.load_node_list_data, store, c, sub_cluster, nodes, metrics, scopes, resolution, start, stop
        )

    async def health_check(
        self, cluster: str, nodes: Sequence[str], metrics: Sequence[str]
    ) -> dict[str, NodeHealth]:
        """Freshness of each metric over the last `HEALTH_WINDOW` intervals (contract §8.6)."""
        c = self._cluster(cluster)
        configs = self._configs(c, metrics)
        now = int(time.time())
        window = HEALTH_WINDOW * max((int(mc.timestep) for mc in configs), default=60)
        store = await self._scratch(c, [mc.name for mc in configs], list(nodes), now - window, now + 1)
        return await asyncio.to_thread(store.health_check, cluster, list(nodes), list(metrics), now)


def host_regex(hosts: Sequence[str]) -> str:
    """An anchored-by-caller alternation of the escaped hostnames."""
    import re

    return "|".join(re.escape(h) for h in hosts)


def any_value(values: Any) -> np.ndarray:
    """Sample values as float64; strings such as ``"NaN"``/``"+Inf"`` (Prometheus) included."""
    return np.asarray([float(v) if v is not None else np.nan for v in values], dtype=np.float64)


class HTTPScratchStoreBackend(ScratchStoreBackend):
    """A `ScratchStoreBackend` whose database speaks HTTP: one pooled client per backend instance.

    Subclasses set ``Config`` (with ``url`` and ``timeout``) and may add client options (e.g. auth)
    through `client_options`.
    """

    def __init__(self, config: Any, context: PluginContext | None = None) -> None:
        super().__init__(context)
        self.config = config
        self.base_url = config.url.rstrip("/")
        self._client: Any = None

    def client_options(self) -> dict[str, Any]:
        return {}

    async def start(self) -> None:
        self._http()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=self.config.timeout, trust_env=False, **self.client_options()
            )
        return self._client

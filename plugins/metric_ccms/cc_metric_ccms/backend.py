"""The embedded metric store as a `MetricBackend` (kind ``cc-metric-store-internal``, the ``metric-store``
section): the server's default source of metric data.

The instance is created with the app (config validated, nothing started) and registers itself as the
``"metric_store"`` service, so that the plugin's HTTP routes and NATS subscriptions find it. `start` runs
in the app's lifespan once the cluster configurations are loaded: it builds the `MetricStoreEngine` for
the union of the clusters' metrics, loads checkpoints and replays the WAL (in a worker thread, it can
take seconds), then starts the engine's background loop (WAL flush every second, checkpoints,
retention, memory cap) and the NATS subscriptions. `close` stops them and writes the final checkpoint.

Retention never frees the data of hosts that run jobs: the engine asks `_used_nodes` (from its worker
thread) and that hops back onto the event loop for the database query.

Queries run in a worker thread: a 64-node job is a few milliseconds of numpy work holding the store
lock, and ingest (on the event loop) merely waits for the lock meanwhile instead of the whole loop
stalling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cc_core.interfaces import NodeHealth

from . import query
from .config import InternalStoreConfig
from .engine import MetricStoreEngine
from .store import MetricStoreError

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema import Job
    from cc_core.schema.cluster import Cluster
    from cc_core.schema.metrics import JobData, JobMetric, JobStats, MetricStatistics

    from .nats_ingest import NatsIngest

log = logging.getLogger(__name__)

SERVICE_NAME = "metric_store"
"""Key of the running `InternalStore` in ``PluginContext.services`` (routes and NATS look it up)."""


class MetricStoreUnavailable(MetricStoreError):
    """The store was asked before `start` (or after `close`)."""


def minimum_points(context: PluginContext | None) -> int:
    """``main.resampling.minimum-points`` as the core hands it to plugins (default 1000)."""
    if context is None:
        return 1000
    return int(context.services.get("resampling_minimum_points") or 1000)


def cluster_of(context: PluginContext | None, name: str) -> Cluster:
    """The derived cluster configuration ``name`` from the core's catalogue, or a clear error."""
    catalog = context.services.get("clusters") if context is not None else None
    cluster = catalog.cluster(name) if catalog is not None else None
    if cluster is None:
        raise MetricStoreError(f"unknown cluster {name!r} (no cluster.json in the job archive)")
    return cluster  # type: ignore[no-any-return]


class InternalStore:
    """See the module docstring."""

    kind: ClassVar[str] = "cc-metric-store-internal"
    Config: ClassVar[type] = InternalStoreConfig

    def __init__(
        self,
        config: InternalStoreConfig,
        context: PluginContext | None = None,
        *,
        engine: MetricStoreEngine | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.engine = engine
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.nats: NatsIngest | None = None
        if context is not None:
            context.services[SERVICE_NAME] = self

    # ------------------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Build the engine (unless one was given), load its files, start background work and NATS."""
        self._loop = asyncio.get_running_loop()
        if self.engine is None:
            catalog = self.context.services.get("clusters") if self.context is not None else None
            clusters = list(catalog.clusters()) if catalog is not None else []
            if not clusters:
                log.warning("metric store: no cluster configurations, so no metric is known yet")
            self.engine = MetricStoreEngine.from_clusters(
                self.config,
                clusters,
                base_dir=self.context.base_dir if self.context is not None else None,
                minimum_points=minimum_points(self.context),
                node_provider=self._used_nodes,
            )
            await asyncio.to_thread(self.engine.start)
        self._task = asyncio.create_task(self.engine.run(), name="metric-store")
        nats_config = self.context.services.get("nats_config") if self.context is not None else None
        if nats_config is not None and self.config.nats_subscriptions:
            from .nats_ingest import NatsIngest

            self.nats = NatsIngest(self.engine, nats_config, self.config.nats_subscriptions)
            await self.nats.start()

    async def close(self) -> None:
        """Stop NATS and the background loop (its last WAL flush), then the final checkpoint."""
        if self.nats is not None:
            await self.nats.close()
            self.nats = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.engine is not None and self.engine._started:
            await asyncio.to_thread(self.engine.close)
            log.info("metric store: final checkpoint written")
        if self.context is not None and self.context.services.get(SERVICE_NAME) is self:
            del self.context.services[SERVICE_NAME]

    def _used_nodes(self, before: int) -> Mapping[str, Collection[str]]:
        """Hosts of running jobs started before ``before`` (called from the engine's worker thread)."""
        db = self.context.services.get("db") if self.context is not None else None
        if db is None or self._loop is None:
            return {}
        from cc_core.db import SYSTEM_USER

        fut = asyncio.run_coroutine_threadsafe(db.jobs.used_nodes(SYSTEM_USER, before), self._loop)
        return fut.result(timeout=120)  # type: ignore[no-any-return]

    def _engine(self) -> MetricStoreEngine:
        if self.engine is None:
            raise MetricStoreUnavailable("the metric store is not running")
        return self.engine

    def _cluster(self, name: str) -> Cluster:
        return cluster_of(self.context, name)

    # -------------------------------------------------------------------------- MetricBackend

    async def load_data(
        self, job: Job, metrics: Sequence[str], scopes: Sequence[str], resolution: int
    ) -> JobData:
        store, cluster = self._engine().store, self._cluster(job.cluster)
        errors: list[str] = []
        data = await asyncio.to_thread(
            query.load_data, store, cluster, job, metrics, scopes, resolution, errors=errors
        )
        if errors:
            log.warning("job %s: partial metric data: %s", job.job_id, "; ".join(errors))
        return data

    async def load_stats(self, job: Job, metrics: Sequence[str]) -> dict[str, dict[str, MetricStatistics]]:
        store, cluster = self._engine().store, self._cluster(job.cluster)
        return await asyncio.to_thread(query.load_stats, store, cluster, job, metrics)

    async def load_scoped_stats(self, job: Job, metrics: Sequence[str], scopes: Sequence[str]) -> JobStats:
        store, cluster = self._engine().store, self._cluster(job.cluster)
        return await asyncio.to_thread(query.load_scoped_stats, store, cluster, job, metrics, scopes)

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str],
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> dict[str, dict[str, list[JobMetric]]]:
        store, c = self._engine().store, self._cluster(cluster)
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
        store, c = self._engine().store, self._cluster(cluster)
        return await asyncio.to_thread(
            query.load_node_list_data, store, c, sub_cluster, nodes, metrics, scopes, resolution, start, stop
        )

    async def health_check(
        self, cluster: str, nodes: Sequence[str], metrics: Sequence[str]
    ) -> dict[str, NodeHealth]:
        store = self._engine().store
        return await asyncio.to_thread(store.health_check, cluster, list(nodes), list(metrics))

    # ------------------------------------------------------------------------------- ingest API

    def ingest(self, payload: bytes, cluster: str | None = None) -> Any:
        """Validate and store a line-protocol body (see `MetricStoreEngine.ingest`)."""
        return self._engine().ingest(payload, cluster)

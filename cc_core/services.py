"""The server's long-lived objects: database, job archive, cluster catalogue, metric dispatcher, archiver.

`CoreServices.open` does the synchronous part at app construction, so a bad database (outdated schema,
wrong path) or metric-backend configuration stops `clustercockpit serve` with a clear message before
anything listens; `start` does the asynchronous part in the app's lifespan: archive version check,
cluster configs, then the metric backends (the embedded store loads its checkpoints) and the archiver
(which re-queues stopped jobs not archived yet). `close` stops them in reverse: the archiver drains its
queue while the metric store can still answer, then the store writes its final checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cc_core.schema.cluster import global_metric_list

if TYPE_CHECKING:
    from cc_core.config import Config
    from cc_core.context import PluginContext
    from cc_core.db import Database
    from cc_core.interfaces import ArchiveBackend
    from cc_core.metrics.archiver import Archiver
    from cc_core.metrics.dispatcher import MetricDispatcher
    from cc_core.plugins import PluginRegistry
    from cc_core.schema.cluster import Cluster, GlobalMetricListItem
    from cc_core.taggers.service import TaggerService

log = logging.getLogger(__name__)


@dataclass
class ClusterCatalog:
    """The archive's clusters, derived (contract §3.5) and held in memory; reloaded on demand."""

    by_name: dict[str, Cluster] = field(default_factory=dict)

    def clusters(self) -> Sequence[Cluster]:
        return [self.by_name[n] for n in sorted(self.by_name)]

    def cluster(self, name: str) -> Cluster | None:
        return self.by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def global_metrics(self, *, restricted: bool) -> Sequence[GlobalMetricListItem]:
        return global_metric_list(self.clusters(), user=restricted)


@dataclass
class CoreServices:
    config: Config
    registry: PluginRegistry
    context: PluginContext
    db: Database
    archive: ArchiveBackend
    clusters: ClusterCatalog = field(default_factory=ClusterCatalog)
    metrics: MetricDispatcher | None = None
    archiver: Archiver | None = None
    taggers: TaggerService | None = None

    @classmethod
    def open(cls, config: Config, registry: PluginRegistry, context: PluginContext) -> CoreServices:
        from cc_core.archive import open_backend
        from cc_core.db import Database

        db = Database.from_config(config)
        try:
            archive = open_backend(
                dict(config.archive),
                registry=registry,
                context=context,
                source=config.source,
                validate=config.main.validate,
            )
        except BaseException:
            db.close_sync()
            raise
        services = cls(config=config, registry=registry, context=context, db=db, archive=archive)
        context.services.update(db=db, archive=archive, clusters=services.clusters)
        try:
            services._open_metrics()
        except BaseException:
            db.close_sync()
            raise
        return services

    def _open_metrics(self) -> None:
        """The metric dispatcher with its backends (constructed, not started) and the archiver."""
        from cc_core.metrics.archiver import Archiver
        from cc_core.metrics.dispatcher import MetricDispatcher

        resampling = self.config.main.resampling
        self.context.services.update(
            nats_config=self.config.nats,
            resampling_minimum_points=resampling.minimum_points if resampling else 1000,
        )
        self.metrics = MetricDispatcher.from_config(
            self.config, self.registry, self.context, archive=self.archive, clusters=self.clusters
        )
        self.archiver = Archiver(self.db, self.archive, self.metrics, self.clusters, **_archiver_tuning())
        self.context.services.update(metrics=self.metrics, archiver=self.archiver)
        self._open_taggers()

    def _open_taggers(self) -> None:
        """The tagger service: always there for apply-tags and the admin UI; hooked into job start
        (`cc_core.lifecycle`) and archiving only with ``main.enable-job-taggers``."""
        from cc_core.taggers.service import TaggerService

        self.taggers = TaggerService(
            db=self.db,
            archive=self.archive,
            registry=self.registry,
            context=self.context,
            enabled=self.config.main.enable_job_taggers,
        )
        if self.taggers.enabled:
            self.taggers.problems()  # load the rules now: broken rule files are logged at start-up
            if self.archiver is not None:
                self.archiver.on_archived.append(self.taggers.on_job_archived)
        self.context.services["taggers"] = self.taggers

    async def start(self) -> None:
        from cc_core.archive import load_clusters

        version = await self.archive.init()
        self.clusters.by_name = await load_clusters(self.archive)
        log.info(
            "job archive (version %d) with %d cluster(s): %s",
            version,
            len(self.clusters.by_name),
            ", ".join(self.clusters.names()) or "none",
        )
        if self.metrics is not None:
            await self.metrics.start()
        if self.archiver is not None:
            await self.archiver.start()

    async def close(self) -> None:
        if self.archiver is not None:
            await self.archiver.close()
        if self.taggers is not None:
            await self.taggers.close()
        if self.metrics is not None:
            await self.metrics.close()
        closer: Any = getattr(self.archive, "close", None)
        if closer is not None:
            await closer()
        await self.db.close()


def _archiver_tuning() -> dict[str, float]:
    """Replica settings of the archiver from the environment (seconds; docs/deployment.md)."""
    import os

    out: dict[str, float] = {}
    for env, key in (("CC_ARCHIVE_CLAIM_TTL", "claim_ttl"), ("CC_ARCHIVE_SWEEP_INTERVAL", "sweep_interval")):
        text = os.environ.get(env, "").strip()
        if text:
            try:
                out[key] = float(text)
            except ValueError:
                raise ValueError(f"{env}={text!r}: expected a number of seconds") from None
    return out

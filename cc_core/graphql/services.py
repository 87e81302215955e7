"""What the GraphQL resolvers need from the rest of the server, as narrow async Protocols.

Resolvers never import the database, the archive or a metric backend: they take the services from the
request context (``info.context.services``) and call these methods. That keeps the resolvers pure
orchestration (arguments → service calls → conversions in `cc_core.graphql.convert`) and makes every
resolver testable with a fake of exactly the methods it uses.

The repository Protocols are the subset of `cc_core.db`'s repositories that GraphQL uses, with the
same names and signatures, so ``Database.jobs``, ``.tags``, ``.stats``, ``.users``, ``.user_config`` and
``.nodes`` satisfy them as they are. Arguments are `cc_core.db.filters` structs (``JobFilter``,
``PageRequest``, ``OrderByInput``, ``NodeFilter``), built from the GraphQL inputs by `convert`.
`MetricDispatcher` and `ClusterCatalog` are defined here for the metric-data and archive sides.

Conventions:

* ``user`` is the authenticated `cc_core.auth.user.User`; the repositories apply the visibility rules of
  contract §6.2/§6.4 themselves (a job the user may not see is *not found*).
* Errors are `cc_core.db.errors.DBError` or `cc_core.graphql.errors.GraphQLRequestError` subclasses,
  whose messages reach the client.
* Numeric series are numpy arrays (`cc_core.schema.metrics`), never lists of floats.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from cc_core.graphql.errors import ServiceUnavailable

if TYPE_CHECKING:
    from cc_core.auth.user import User
    from cc_core.schema.cluster import Cluster, GlobalMetricListItem
    from cc_core.schema.job import ConcurrentJobs, Job, Tag
    from cc_core.schema.metrics import JobData, JobStats, MetricStatistics

__all__ = [
    "ClusterCatalog",
    "GraphQLContext",
    "GraphQLServices",
    "GraphQLSettings",
    "JobPageLike",
    "JobRepository",
    "MetricDispatcher",
    "NodeListPage",
    "NodeLister",
    "NodeRepository",
    "StatsRepository",
    "TagRepository",
    "UserConfigRepository",
    "UserRepository",
]


class JobPageLike(Protocol):
    """`cc_core.db.JobPage`: a page of jobs, the total (when asked) and whether more follow."""

    items: list[Job]
    count: int | None
    has_next_page: bool


@dataclass(slots=True)
class NodeListPage:
    """One page of the node list: hostnames in display order, their scheduler and health states."""

    hostnames: Sequence[str]
    node_states: Mapping[str, str]
    health_states: Mapping[str, str]
    total: int
    has_next_page: bool


# ------------------------------------------------------------------------------- repositories (db)


@runtime_checkable
class JobRepository(Protocol):
    """`cc_core.db.JobRepository` (``Database.jobs``)."""

    async def find_by_id(
        self, user: User, id_: int, *, with_metadata: bool = True, with_tags: bool = False
    ) -> Job: ...

    async def list(
        self,
        user: User,
        filters: Sequence[Any] | None = None,
        page: Any = None,
        order: Any = None,
        *,
        count: bool = True,
        with_tags: bool = False,
        with_metadata: bool = False,
    ) -> JobPageLike:
        """A page of visible jobs matching all ``filters`` (`JobFilter`), with ``has_next_page``."""
        ...

    async def allocated_nodes(self, user: User, cluster: str) -> Mapping[str, Mapping[str, int]]:
        """Per subcluster, the hosts running jobs and how many jobs each runs."""
        ...

    async def partitions(self, cluster: str) -> list[str]: ...

    async def concurrent_jobs(self, user: User, job: Job) -> ConcurrentJobs:
        """Jobs that shared a node with ``job`` while it ran (upstream `FindConcurrentJobs`)."""
        ...


@runtime_checkable
class StatsRepository(Protocol):
    """`cc_core.db.StatsRepository` (``Database.stats``)."""

    async def jobs_statistics(
        self,
        user: User,
        filters: Sequence[Any] | None = None,
        *,
        fields: Any = None,
        group_by: str | None = None,
        sort_by: str | None = None,
        page: Any = None,
        num_duration_bins: str | None = None,
        metrics: Sequence[Any] = (),
        num_metric_bins: int | None = None,
    ) -> Sequence[Any]:
        """`JobsStatistics` rows; only ``fields`` (GraphQL names such as ``totalJobs``) are computed."""
        ...


@runtime_checkable
class TagRepository(Protocol):
    """`cc_core.db.TagRepository` (``Database.tags``); scope rules are checked inside."""

    async def visible(self, user: User) -> list[Tag]: ...

    async def of_jobs(self, user: User, job_ids: Sequence[int]) -> Mapping[int, list[Tag]]: ...

    async def get(self, user: User, tag_id: int) -> Tag:
        """The tag if ``user`` may read it; a not-found error otherwise."""
        ...

    async def create(self, user: User, type_: str, name: str, scope: str = "global") -> Tag: ...

    async def add_to_job(self, user: User, job_id: int, tag_ids: Sequence[int]) -> list[Tag]: ...

    async def remove_from_job(self, user: User, job_id: int, tag_ids: Sequence[int]) -> list[Tag]: ...

    async def delete(self, user: User, tag_ids: Sequence[int]) -> list[int]: ...


@runtime_checkable
class UserRepository(Protocol):
    """`cc_core.db.UserRepository` (``Database.users``): ``get`` returns ``username``/``name``/``email``."""

    async def get(self, username: str) -> Any: ...

    async def get_many(self, usernames: Sequence[str]) -> Mapping[str, Any]:
        """The existing users among ``usernames``, by name, in one query."""
        ...


@runtime_checkable
class UserConfigRepository(Protocol):
    """`cc_core.db.UserConfigRepository` (``Database.user_config``)."""

    async def update(self, username: str, key: str, value: str) -> None: ...


@runtime_checkable
class NodeRepository(Protocol):
    """`cc_core.db.NodeRepository` (``Database.nodes``): admin/support only, checked inside."""

    async def get_by_id(self, node_id: int, *, with_meta: bool = False) -> Any: ...

    async def list(
        self, user: User, filters: Sequence[Any] | None = None, page: Any = None, *, with_meta: bool = False
    ) -> list[Any]: ...

    async def count_states(
        self, user: User, filters: Sequence[Any] | None = None, *, column: str = "node_state"
    ) -> list[tuple[str, int]]: ...

    async def count_states_timed(
        self, user: User, filters: Sequence[Any] | None = None, *, column: str = "node_state"
    ) -> list[Any]: ...

    async def states_of_cluster(self, cluster: str) -> Mapping[str, tuple[str, str]]:
        """hostname → (scheduler state, health state)."""
        ...


# ------------------------------------------------------------------------------- metric data, archive


@runtime_checkable
class MetricDispatcher(Protocol):
    """Metric data of jobs and nodes: a running job from its metric backend, a finished one from the
    archive (upstream `metricdispatch`)."""

    async def load_data(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None, resolution: int
    ) -> JobData: ...

    async def load_job_stats(self, job: Job, metrics: Sequence[str] | None) -> Mapping[str, MetricStatistics]:
        """Node-level min/avg/max per metric over the job's run."""
        ...

    async def load_scoped_job_stats(
        self, job: Job, metrics: Sequence[str] | None, scopes: Sequence[str] | None
    ) -> JobStats: ...

    async def load_averages(self, jobs: Sequence[Job], metrics: Sequence[str]) -> Sequence[np.ndarray]:
        """Per metric, the average of each job (NaN where unknown), in the order of ``jobs``."""
        ...

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str],
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> Mapping[str, Mapping[str, Sequence[Any]]]:
        """``{hostname: {metric: [JobMetric]}}``."""
        ...

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
    ) -> Mapping[str, JobData]: ...


@runtime_checkable
class NodeLister(Protocol):
    """The node list of the systems view (upstream `GetNodesForList`): node table and cluster topology."""

    async def node_list_page(
        self,
        user: User,
        cluster: str,
        sub_cluster: str,
        state_filter: str,
        node_filter: str,
        page: Any,
    ) -> NodeListPage:
        """One page of hostnames (``state_filter``: a scheduler state, ``all``, or ``notindb`` for
        topology nodes without a database row; ``node_filter``: hostname substring)."""
        ...


@runtime_checkable
class ClusterCatalog(Protocol):
    """The clusters of the job archive, derived (contract §3.5) and held in memory."""

    def clusters(self) -> Sequence[Cluster]: ...

    def cluster(self, name: str) -> Cluster | None: ...

    def global_metrics(self, *, restricted: bool) -> Sequence[GlobalMetricListItem]:
        """Every metric across clusters; ``restricted=True`` hides metrics restricted for plain users."""
        ...


# ------------------------------------------------------------------------------------------ containers


@dataclass(frozen=True, slots=True)
class GraphQLSettings:
    """Configuration the resolvers read (from config.json, set by the wiring)."""

    # `resampling.resolutions`: the default `resolution` of jobMetrics/nodeMetricsList is their maximum.
    resampling_resolutions: tuple[int, ...] = ()
    # Upstream's MAX_JOBS_FOR_ANALYSIS (jobsFootprints, rooflineHeatmap).
    max_jobs_for_analysis: int = 500
    # Upstream's hardcoded "concurrentJobs only for jobs longer than" (seconds).
    concurrent_jobs_min_duration: int = 600

    @property
    def default_resolution(self) -> int:
        return max(self.resampling_resolutions, default=0)


_SERVICE_NAMES = {
    "jobs": "the job database",
    "stats": "the job database (statistics)",
    "tags": "the job database (tags)",
    "users": "the user database",
    "user_config": "the user database (configuration)",
    "nodes": "the node database",
    "node_list": "the node list",
    "metrics": "the metric data dispatcher",
    "clusters": "the cluster configuration (job archive)",
}


@dataclass(slots=True)
class GraphQLServices:
    """The service objects of one server; any may be None while that part is not configured."""

    jobs: JobRepository | None = None
    stats: StatsRepository | None = None
    tags: TagRepository | None = None
    users: UserRepository | None = None
    user_config: UserConfigRepository | None = None
    nodes: NodeRepository | None = None
    node_list: NodeLister | None = None
    metrics: MetricDispatcher | None = None
    clusters: ClusterCatalog | None = None
    # Rewrites an archived job's meta.json after its tags changed (`cc_core.lifecycle.sync_archive_meta`);
    # upstream updates the archive in addTagsToJob/removeTagsFromJob. None: no archive to keep in sync.
    archive_meta: Callable[[Job], Awaitable[None]] | None = None
    settings: GraphQLSettings = field(default_factory=GraphQLSettings)

    @classmethod
    def from_database(cls, db: Any, **others: Any) -> GraphQLServices:
        """The services of a `cc_core.db.Database` (its repositories), plus ``others``."""
        return cls(
            jobs=db.jobs,
            stats=db.stats,
            tags=db.tags,
            users=db.users,
            user_config=db.user_config,
            nodes=db.nodes,
            **others,
        )

    def require(self, name: str) -> Any:
        """The service ``name``, or a clear GraphQL error when this server has none."""
        service = getattr(self, name)
        if service is None:
            raise ServiceUnavailable(f"{_SERVICE_NAMES.get(name, name)} is not available on this server")
        return service


@dataclass(slots=True)
class GraphQLContext:
    """``info.context`` of every resolver: who asks, the services, and per-request caches."""

    user: User
    services: GraphQLServices
    dev: bool = False
    request: Any = None
    # Per-request DataLoaders and memoised results, created on first use (`resolvers.loader`).
    cache: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """Dict-style access (``info.context["services"]``), as strawberry's integrations offer."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

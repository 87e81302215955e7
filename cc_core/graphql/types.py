"""The object types, inputs and enums of upstream's schema (``api/schema.graphqls``), in strawberry.

Names, nullability and argument defaults are upstream's; `tests/graphql/test_schema_compat.py` compares
them with the SDL. Python names are snake_case and strawberry camel-cases them; where upstream's name is
not the camel case of anything (``SMT``, ``numHWThreads``, ``from``, ``in``) it is given explicitly.

Most types are *views*: their fields are read with ``getattr`` from whatever the services return, so a
`cc_core.schema.job.Job` msgspec struct *is* a GraphQL ``Job`` without copying (``jobId`` ← ``job_id``,
``state`` ← ``job_state``, …), and likewise the cluster, metric and tag structs of `cc_core.schema`.
Only fields that upstream computes in a resolver have one here (``Job.tags``, ``Job.footprint``, …).

Numeric series fields (``Series.data``, ``StatsSeries.*``, ``MetricFootprints.data``,
``ClusterMetricWithName.data``, ``TimeWeights.*``) hold numpy arrays; `cc_core.graphql.execution`
writes them without per-element completion.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry import ID, UNSET

from cc_core.graphql import convert, loaders
from cc_core.graphql.errors import InvalidInput
from cc_core.graphql.scalars import (
    AnyValue,
    JobState,
    MetricScope,
    MonitoringState,
    NullableFloat,
    SchedulerState,
    Time,
)
from cc_core.schema.cluster import NodeList, NodeListError

if TYPE_CHECKING:
    from cc_core.graphql.services import GraphQLContext

Info = strawberry.Info

# ============================================================================================ enums


@strawberry.enum
class Aggregate(enum.Enum):
    USER = "USER"
    PROJECT = "PROJECT"
    CLUSTER = "CLUSTER"
    SUBCLUSTER = "SUBCLUSTER"


@strawberry.enum
class SortByAggregate(enum.Enum):
    TOTALWALLTIME = "TOTALWALLTIME"
    TOTALJOBS = "TOTALJOBS"
    TOTALUSERS = "TOTALUSERS"
    TOTALNODES = "TOTALNODES"
    TOTALNODEHOURS = "TOTALNODEHOURS"
    TOTALCORES = "TOTALCORES"
    TOTALCOREHOURS = "TOTALCOREHOURS"
    TOTALACCS = "TOTALACCS"
    TOTALACCHOURS = "TOTALACCHOURS"


@strawberry.enum
class SortDirectionEnum(enum.Enum):
    DESC = "DESC"
    ASC = "ASC"


# ============================================================================================ inputs


@strawberry.input
class StringInput:
    eq: str | None = UNSET
    neq: str | None = UNSET
    contains: str | None = UNSET
    starts_with: str | None = UNSET
    ends_with: str | None = UNSET
    in_: list[str] | None = strawberry.field(name="in", default=UNSET)


@strawberry.input
class IntRange:
    from_: int = strawberry.field(name="from")
    to: int


@strawberry.input
class FloatRange:
    from_: float = strawberry.field(name="from")
    to: float


@strawberry.input
class TimeRange:
    range: str | None = UNSET
    from_: Time | None = strawberry.field(name="from", default=UNSET)
    to: Time | None = UNSET


@strawberry.input
class MetricStatItem:
    metric_name: str
    range: FloatRange


@strawberry.input
class JobFilter:
    tags: list[ID] | None = UNSET
    db_id: list[ID] | None = UNSET
    job_id: StringInput | None = UNSET
    array_job_id: int | None = UNSET
    user: StringInput | None = UNSET
    project: StringInput | None = UNSET
    job_name: StringInput | None = UNSET
    cluster: StringInput | None = UNSET
    sub_cluster: StringInput | None = UNSET
    partition: StringInput | None = UNSET
    duration: IntRange | None = UNSET
    energy: FloatRange | None = UNSET
    num_nodes: IntRange | None = UNSET
    num_accelerators: IntRange | None = UNSET
    num_hw_threads: IntRange | None = strawberry.field(name="numHWThreads", default=UNSET)
    start_time: TimeRange | None = UNSET
    state: list[JobState] | None = UNSET
    metric_stats: list[MetricStatItem] | None = UNSET
    shared: str | None = UNSET
    schedule: str | None = UNSET
    node: StringInput | None = UNSET


@strawberry.input
class NodeFilter:
    hostname: StringInput | None = UNSET
    cluster: StringInput | None = UNSET
    sub_cluster: StringInput | None = UNSET
    scheduler_state: SchedulerState | None = UNSET
    health_state: MonitoringState | None = UNSET
    time_start: int | None = UNSET


@strawberry.input
class OrderByInput:
    field: str
    type: str
    order: SortDirectionEnum = SortDirectionEnum.ASC


@strawberry.input
class PageRequest:
    items_per_page: int
    page: int


# ============================================================================================ helpers


def _ctx(info: Info) -> GraphQLContext:
    return info.context  # type: ignore[no-any-return]


def _finite(value: float) -> float:
    """Upstream decodes a ``null`` statistic as 0; ours are NaN in memory. Float! cannot carry NaN."""
    return value if value == value and value not in (math.inf, -math.inf) else 0.0


# ============================================================================================ types


@strawberry.type
class Unit:
    base: str
    prefix: str | None


@strawberry.type
class MetricValue:
    name: str | None
    unit: Unit
    value: float


@strawberry.type
class Accelerator:
    id: str
    type: str
    model: str


@strawberry.type
class Topology:
    node: list[int] | None
    socket: list[list[int]] | None
    memory_domain: list[list[int]] | None
    die: list[list[int]] | None
    core: list[list[int]] | None
    accelerators: list[Accelerator] | None


@strawberry.type
class SubClusterConfig:
    name: str
    peak: float | None
    normal: float | None
    caution: float | None
    alert: float | None
    remove: bool | None


def _metric_config_sub_clusters(root: strawberry.Parent[Any]) -> list[SubClusterConfig]:
    return root.sub_clusters or []


@strawberry.type
class MetricConfig:
    name: str
    unit: Unit
    scope: MetricScope
    aggregation: str
    timestep: int
    peak: float
    normal: float | None
    caution: float
    alert: float
    lower_is_better: bool | None
    sub_clusters: list[SubClusterConfig] = strawberry.field(resolver=_metric_config_sub_clusters)


def _sub_cluster_number_of_nodes(root: strawberry.Parent[Any]) -> int:
    try:
        nodes = NodeList.parse(root.nodes)
        return 0 if nodes.is_wildcard else len(nodes)
    except NodeListError as e:
        raise InvalidInput(f"subcluster {root.name!r}: invalid node list {root.nodes!r}: {e}") from None


def _metric_value(root: Any, attr: str, name: str) -> MetricValue:
    value = getattr(root, attr)
    return MetricValue(name=name, unit=value.unit, value=value.value)


def _sub_cluster_flop_rate_scalar(root: strawberry.Parent[Any]) -> MetricValue:
    return _metric_value(root, "flop_rate_scalar", "flopRateScalar")


def _sub_cluster_flop_rate_simd(root: strawberry.Parent[Any]) -> MetricValue:
    return _metric_value(root, "flop_rate_simd", "flopRateSimd")


def _sub_cluster_memory_bandwidth(root: strawberry.Parent[Any]) -> MetricValue:
    return _metric_value(root, "memory_bandwidth", "memoryBandwidth")


def _sub_cluster_metric_config(root: strawberry.Parent[Any]) -> list[MetricConfig]:
    return root.metric_config or []


def _sub_cluster_footprint(root: strawberry.Parent[Any]) -> list[str]:
    return root.footprint or []


@strawberry.type
class SubCluster:
    name: str
    nodes: str
    number_of_nodes: int = strawberry.field(resolver=_sub_cluster_number_of_nodes)
    processor_type: str
    sockets_per_node: int
    cores_per_socket: int
    threads_per_core: int
    flop_rate_scalar: MetricValue = strawberry.field(resolver=_sub_cluster_flop_rate_scalar)
    flop_rate_simd: MetricValue = strawberry.field(resolver=_sub_cluster_flop_rate_simd)
    memory_bandwidth: MetricValue = strawberry.field(resolver=_sub_cluster_memory_bandwidth)
    topology: Topology
    metric_config: list[MetricConfig] = strawberry.field(resolver=_sub_cluster_metric_config)
    footprint: list[str] = strawberry.field(resolver=_sub_cluster_footprint)


async def _cluster_partitions(root: strawberry.Parent[Any], info: Info) -> list[str]:
    return await _ctx(info).services.require("jobs").partitions(root.name)


@strawberry.type
class Cluster:
    name: str
    partitions: list[str] = strawberry.field(resolver=_cluster_partitions)
    sub_clusters: list[SubCluster]


@strawberry.type
class Tag:
    id: ID
    type: str
    name: str
    scope: str


@strawberry.type
class Resource:
    hostname: str
    hwthreads: list[int] | None
    accelerators: list[str] | None
    configuration: str | None


@strawberry.type
class User:
    username: str
    name: str
    email: str


@strawberry.type
class FootprintValue:
    name: str
    stat: str
    value: float


@strawberry.type
class EnergyFootprintValue:
    hardware: str
    metric: str
    value: float


@strawberry.type
class JobLink:
    id: ID
    job_id: int


@strawberry.type
class JobLinkResultList:
    list_query: str | None
    items: list[JobLink]
    count: int | None


# ----------------------------------------------------------------------------------------------- Job


def _job_tags(root: strawberry.Parent[Any], info: Info) -> list[Tag]:
    # Sync on purpose: tags loaded with the page are returned as they are, else an awaitable (loader).
    return loaders.job_tags(_ctx(info), root)  # type: ignore[no-any-return]


async def _job_concurrent_jobs(root: strawberry.Parent[Any], info: Info) -> JobLinkResultList | None:
    ctx = _ctx(info)
    if not convert.wants_concurrent_jobs(root, ctx.services.settings.concurrent_jobs_min_duration):
        return None
    found = await ctx.services.require("jobs").concurrent_jobs(ctx.user, root)
    return JobLinkResultList(
        list_query=convert.concurrent_list_query(root.cluster, found.items),
        items=found.items,
        count=found.count,
    )


def _job_footprint(root: strawberry.Parent[Any]) -> list[FootprintValue | None] | None:
    return [FootprintValue(name=n, stat=s, value=v) for n, s, v in convert.footprint_values(root.footprint)]


def _job_energy_footprint(root: strawberry.Parent[Any]) -> list[EnergyFootprintValue | None] | None:
    return [
        EnergyFootprintValue(hardware=h, metric=m, value=v)
        for h, m, v in convert.energy_footprint_values(root.energy_footprint)
    ]


def _job_meta_data(root: strawberry.Parent[Any]) -> AnyValue | None:
    # Loaded with the job (`find_by_id`, or `list(with_metadata=True)` when the page selects it).
    return root.meta_data  # type: ignore[no-any-return]


def _job_user_data(root: strawberry.Parent[Any], info: Info) -> User | None:
    return loaders.job_user_data(_ctx(info), root)  # type: ignore[no-any-return]


@strawberry.type
class Job:
    id: ID
    job_id: int
    user: str
    project: str
    cluster: str
    sub_cluster: str
    start_time: Time
    duration: int
    walltime: int
    num_nodes: int
    num_hwthreads: int = strawberry.field(name="numHWThreads")
    num_acc: int
    energy: float
    smt: int = strawberry.field(name="SMT")
    shared: str
    partition: str
    array_job_id: int
    monitoring_status: int
    job_state: JobState = strawberry.field(name="state")
    tags: list[Tag] = strawberry.field(resolver=_job_tags)
    resources: list[Resource]
    concurrent_jobs: JobLinkResultList | None = strawberry.field(resolver=_job_concurrent_jobs)
    footprint: list[FootprintValue | None] | None = strawberry.field(resolver=_job_footprint)
    energy_footprint: list[EnergyFootprintValue | None] | None = strawberry.field(
        resolver=_job_energy_footprint
    )
    meta_data: AnyValue | None = strawberry.field(resolver=_job_meta_data)
    user_data: User | None = strawberry.field(resolver=_job_user_data)


@strawberry.type
class JobResultList:
    items: list[Job]
    offset: int | None = None
    limit: int | None = None
    count: int | None = None
    has_next_page: bool | None = None


# ------------------------------------------------------------------------------------- metric data


def _stat_avg(root: strawberry.Parent[Any]) -> float:
    return _finite(root.avg)


def _stat_min(root: strawberry.Parent[Any]) -> float:
    return _finite(root.min)


def _stat_max(root: strawberry.Parent[Any]) -> float:
    return _finite(root.max)


@strawberry.type
class MetricStatistics:
    avg: float = strawberry.field(resolver=_stat_avg)
    min: float = strawberry.field(resolver=_stat_min)
    max: float = strawberry.field(resolver=_stat_max)


@strawberry.type
class Series:
    hostname: str
    id: str | None
    statistics: MetricStatistics | None
    data: list[NullableFloat]


@strawberry.type
class StatsSeries:
    mean: list[NullableFloat]
    median: list[NullableFloat]
    min: list[NullableFloat]
    max: list[NullableFloat]


@strawberry.type
class JobMetric:
    unit: Unit | None
    timestep: int
    series: list[Series] | None
    statistics_series: StatsSeries | None


@strawberry.type
class JobMetricWithName:
    name: str
    scope: MetricScope
    metric: JobMetric


@strawberry.type
class ClusterMetricWithName:
    name: str
    unit: Unit | None
    timestep: int
    data: list[NullableFloat]


@strawberry.type
class ScopedStats:
    hostname: str
    id: str | None
    data: MetricStatistics


@strawberry.type
class NamedStatsWithScope:
    name: str
    scope: MetricScope
    stats: list[ScopedStats]


@strawberry.type
class NamedStats:
    name: str
    data: MetricStatistics


@strawberry.type
class JobStats:
    id: int
    job_id: str
    start_time: int
    duration: int
    cluster: str
    sub_cluster: str
    num_nodes: int
    num_hw_threads: int | None = strawberry.field(name="numHWThreads")
    num_accelerators: int | None
    stats: list[NamedStats]


@strawberry.type
class MetricFootprints:
    metric: str
    data: list[NullableFloat]


@strawberry.type
class TimeWeights:
    node_hours: list[NullableFloat]
    acc_hours: list[NullableFloat]
    core_hours: list[NullableFloat]


@strawberry.type
class Footprints:
    time_weights: TimeWeights
    metrics: list[MetricFootprints]


# ------------------------------------------------------------------------------------- statistics


@strawberry.type
class HistoPoint:
    count: int
    value: int


@strawberry.type
class MetricHistoPoint:
    bin: int | None = None
    count: int = 0
    min: int | None = None
    max: int | None = None


@strawberry.type
class MetricHistoPoints:
    metric: str
    unit: str
    stat: str | None = None
    data: list[MetricHistoPoint] | None = None


@strawberry.type
class JobsStatistics:
    id: ID
    name: str
    total_users: int
    total_jobs: int
    running_jobs: int
    short_jobs: int
    total_walltime: int
    total_nodes: int
    total_node_hours: int
    total_cores: int
    total_core_hours: int
    total_accs: int
    total_acc_hours: int
    hist_duration: list[HistoPoint]
    hist_num_nodes: list[HistoPoint]
    hist_num_cores: list[HistoPoint]
    hist_num_accs: list[HistoPoint]
    hist_metrics: list[MetricHistoPoints]


@strawberry.type
class Count:
    name: str
    count: int


@strawberry.type
class ClusterSupport:
    cluster: str
    subclusters: list[str] = strawberry.field(name="subClusters")


@strawberry.type
class GlobalMetricListItem:
    name: str
    unit: Unit
    scope: MetricScope
    footprint: str | None
    availability: list[ClusterSupport]


# ------------------------------------------------------------------------------------------- nodes


def _node_id(root: strawberry.Parent[Any]) -> ID:
    return ID(str(root.id))


def _node_meta_data(root: strawberry.Parent[Any]) -> AnyValue | None:
    return root.meta_data if root.meta_data is not None else {}  # type: ignore[return-value]


def _node_health_data(root: strawberry.Parent[Any]) -> AnyValue | None:
    return root.health_data if root.health_data is not None else {}  # type: ignore[return-value]


@strawberry.type
class Node:
    id: ID = strawberry.field(resolver=_node_id)
    hostname: str
    cluster: str
    sub_cluster: str
    jobs_running: int
    cpus_allocated: int | None
    memory_allocated: int | None
    gpus_allocated: int | None
    scheduler_state: SchedulerState
    health_state: MonitoringState
    meta_data: AnyValue | None = strawberry.field(resolver=_node_meta_data)
    health_data: AnyValue | None = strawberry.field(resolver=_node_health_data)


@strawberry.type
class NodeStates:
    state: str
    count: int


@strawberry.type
class NodeStatesTimed:
    state: str
    counts: list[int]
    times: list[int]


@strawberry.type
class NodeStateResultList:
    items: list[Node]
    count: int | None = None


@strawberry.type
class NodeMetrics:
    host: str
    node_state: str
    metric_health: str
    sub_cluster: str
    metrics: list[JobMetricWithName]


@strawberry.type
class NodesResultList:
    items: list[NodeMetrics]
    offset: int | None = None
    limit: int | None = None
    count: int | None = None
    total_nodes: int | None = None
    has_next_page: bool | None = None


@strawberry.type
class ClusterMetrics:
    node_count: int
    metrics: list[ClusterMetricWithName]


# Upstream declares these two output types without using them; kept so the schema has every type.
@strawberry.type
class IntRangeOutput:
    from_: int = strawberry.field(name="from")
    to: int


@strawberry.type
class TimeRangeOutput:
    range: str | None
    from_: Time = strawberry.field(name="from")
    to: Time

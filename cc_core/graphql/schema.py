"""The root types `Query` and `Mutation`, and the strawberry `schema` of upstream's GraphQL API.

Every root field of upstream's ``api/schema.graphqls`` with its arguments; the resolvers live in
`cc_core.graphql.resolvers`, the types in `cc_core.graphql.types`.
"""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from cc_core.graphql import resolvers as r
from cc_core.graphql import types as t
from cc_core.graphql.execution import SeriesExecutor
from cc_core.graphql.scalars import SCALAR_MAP

__all__ = ["Mutation", "Query", "build_schema", "schema"]


@strawberry.type
class Query:
    clusters: list[t.Cluster] = strawberry.field(resolver=r.clusters)
    tags: list[t.Tag] = strawberry.field(resolver=r.tags)
    global_metrics: list[t.GlobalMetricListItem] = strawberry.field(resolver=r.global_metrics)
    user: t.User | None = strawberry.field(resolver=r.user)
    allocated_nodes: list[t.Count] = strawberry.field(resolver=r.allocated_nodes)

    node: t.Node | None = strawberry.field(resolver=r.node)
    nodes: t.NodeStateResultList = strawberry.field(resolver=r.nodes)
    nodes_with_meta: t.NodeStateResultList = strawberry.field(resolver=r.nodes_with_meta)
    node_states: list[t.NodeStates] = strawberry.field(resolver=r.node_states)
    node_states_timed: list[t.NodeStatesTimed] = strawberry.field(resolver=r.node_states_timed)

    job: t.Job | None = strawberry.field(resolver=r.job)
    job_metrics: list[t.JobMetricWithName] = strawberry.field(resolver=r.job_metrics)
    job_stats: list[t.NamedStats] = strawberry.field(resolver=r.job_stats)
    scoped_job_stats: list[t.NamedStatsWithScope] = strawberry.field(resolver=r.scoped_job_stats)
    jobs: t.JobResultList = strawberry.field(resolver=r.jobs)
    jobs_statistics: list[t.JobsStatistics] = strawberry.field(resolver=r.jobs_statistics)
    jobs_metric_stats: list[t.JobStats] = strawberry.field(resolver=r.jobs_metric_stats)
    jobs_footprints: t.Footprints | None = strawberry.field(resolver=r.jobs_footprints)
    roofline_heatmap: list[list[float]] = strawberry.field(resolver=r.roofline_heatmap)

    node_metrics: list[t.NodeMetrics] = strawberry.field(resolver=r.node_metrics)
    node_metrics_list: t.NodesResultList = strawberry.field(resolver=r.node_metrics_list)
    cluster_metrics: t.ClusterMetrics = strawberry.field(resolver=r.cluster_metrics)


@strawberry.type
class Mutation:
    create_tag: t.Tag = strawberry.field(resolver=r.create_tag)
    delete_tag: strawberry.ID = strawberry.field(resolver=r.delete_tag)
    add_tags_to_job: list[t.Tag] = strawberry.field(resolver=r.add_tags_to_job)
    remove_tags_from_job: list[t.Tag] = strawberry.field(resolver=r.remove_tags_from_job)
    remove_tag_from_list: list[int] = strawberry.field(resolver=r.remove_tag_from_list)
    update_configuration: str | None = strawberry.field(resolver=r.update_configuration)


def build_schema() -> strawberry.Schema:
    """A new schema object (the module-level `schema` is the one the server uses)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[t.IntRangeOutput, t.TimeRangeOutput],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=SeriesExecutor,
    )


schema = build_schema()

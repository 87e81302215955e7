"""The resolvers of `Query` and `Mutation`: argument checks, role rules, service calls, result shaping.

Each resolver follows upstream's (``internal/graph/schema.resolvers.go``, ``util.go``) unless a comment
says why not; where upstream panics or is unimplemented (``deleteTag``, ``Node.id``, ``MetricValue.name``)
the behaviour is implemented. Role rules are contract §6; visibility of jobs and tags is applied inside
the repositories (contract §6.2, §6.4), so a job the user may not see is simply not found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry import ID, UNSET

from cc_core.graphql import convert
from cc_core.graphql import types as t
from cc_core.graphql.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable, TooManyJobs
from cc_core.graphql.loaders import prefetch_job_fields
from cc_core.graphql.scalars import MetricScope, Time
from cc_core.graphql.services import GraphQLContext

if TYPE_CHECKING:
    from cc_core.auth.user import User
    from cc_core.schema.job import Job

From = Annotated[Time, strawberry.argument(name="from")]

log = logging.getLogger("cc_core.graphql")

# Monitoring states whose jobs have no usable metric data (disabled, archiving failed).
_NO_METRICS = (0, 2)
# Upstream's cap on the running jobs whose live averages make `histMetrics` (filter state = running).
RUNNING_HISTOGRAM_MAX_JOBS = 5000
_HISTOGRAM_FIELDS = frozenset({"histDuration", "histNumNodes", "histNumCores", "histNumAccs"})


# ============================================================================================ helpers


def context(info: strawberry.Info) -> GraphQLContext:
    return info.context  # type: ignore[no-any-return]


def selected_fields(info: strawberry.Info, *path: str) -> frozenset[str]:
    """Names of the fields selected directly below the current field, or below ``path`` from it
    (``selected_fields(info, "items")``), with fragments expanded; ``__typename`` is left out.

    Upstream's ``graphql.CollectAllFields``: used to compute only what the query asks for.
    """
    raw = info._raw_info

    def fields(selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()) -> list[FieldNode]:
        out: list[FieldNode] = []
        if selection_set is None:
            return out
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                out.extend(fields(sel.selection_set, seen))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                fragment = raw.fragments.get(sel.name.value)
                if fragment is not None:
                    out.extend(fields(fragment.selection_set, seen | {sel.name.value}))
        return out

    level: list[FieldNode] = list(raw.field_nodes)
    for name in path:
        level = [child for node in level for child in fields(node.selection_set) if child.name.value == name]
    return frozenset(
        child.name.value
        for node in level
        for child in fields(node.selection_set)
        if not child.name.value.startswith("__")
    )


def _optional(value: Any) -> Any:
    return value if convert.is_given(value) else None


def _strings(values: Any) -> list[str] | None:
    return [str(v) for v in values] if convert.is_given(values) else None


def _admin_or_support(user: User, what: str) -> None:
    if not user.has_any_role("admin", "support"):
        raise Forbidden(f"you need to be administrator or support staff for {what}")


def may_write_tag_scope(user: User, scope: str) -> bool:
    """Contract §6.4: ``admin`` scope → admin or a pure API user; ``global`` → admin, support or a pure
    API user; a private scope → only the user of that name."""
    if scope == "admin":
        return user.has_role("admin") or user.is_pure_api
    if scope == "global":
        return user.has_any_role("admin", "support") or user.is_pure_api
    return scope == user.username


def may_delete_tag(user: User, scope: str) -> bool:
    """``removeTagFromList``: admins delete global and admin tags, everyone their own private tags."""
    if scope in ("global", "admin"):
        return user.has_role("admin")
    return scope == user.username


async def _job(info: strawberry.Info, job_id: Any) -> Job:
    """The job of `Query.job`: visible to the user, and owned unless admin, support or manager."""
    ctx = context(info)
    job = await ctx.services.require("jobs").find_by_id(ctx.user, convert.parse_id(job_id))
    if job.user != ctx.user.username and not ctx.user.has_any_role("admin", "support", "manager"):
        raise Forbidden("you are not allowed to see this job")
    return job


def _resolution(ctx: GraphQLContext, resolution: Any) -> int:
    if convert.is_given(resolution):
        return int(resolution)
    return ctx.services.settings.default_resolution


async def _analysis_jobs(ctx: GraphQLContext, filter: Any) -> list[Job]:
    """At most `max_jobs_for_analysis` jobs of the filter (a clear error beyond), without those whose
    monitoring is disabled or whose archiving failed (upstream skips them)."""
    limit = ctx.services.settings.max_jobs_for_analysis
    page = await ctx.services.require("jobs").list(
        ctx.user,
        convert.job_filters(filter),
        convert.page_request(None, default=(limit + 1, 1)),
        None,
        count=False,
    )
    if len(page.items) > limit:
        raise TooManyJobs(f"too many jobs matched (max: {limit}); narrow the filter")
    return [j for j in page.items if j.monitoring_status not in _NO_METRICS]


def _cluster(ctx: GraphQLContext, name: str) -> Any:
    cluster = ctx.services.require("clusters").cluster(name)
    if cluster is None:
        raise NotFound(f"unknown cluster {name!r}")
    return cluster


def _metric_items(data: Any) -> list[t.JobMetricWithName]:
    return [
        t.JobMetricWithName(name=name, scope=scope, metric=metric)  # type: ignore[arg-type]
        for name, scopes in data.items()
        for scope, metric in scopes.items()
    ]


# ============================================================================================ queries


def clusters(info: strawberry.Info) -> list[t.Cluster]:
    return list(context(info).services.require("clusters").clusters())


async def tags(info: strawberry.Info) -> list[t.Tag]:
    ctx = context(info)
    return await ctx.services.require("tags").visible(ctx.user)  # type: ignore[no-any-return]


def global_metrics(info: strawberry.Info) -> list[t.GlobalMetricListItem]:
    # Upstream restricts whoever has role user or manager — also an admin who holds `user` too; the
    # intent (contract §6.2) is "not for admin/support", so those always get the full list.
    user = context(info).user
    restricted = user.has_any_role("user", "manager") and not user.has_any_role("admin", "support")
    return list(context(info).services.require("clusters").global_metrics(restricted=restricted))


async def user(info: strawberry.Info, username: str) -> t.User | None:
    ctx = context(info)
    if username != ctx.user.username and not ctx.user.has_any_role("admin", "support", "manager"):
        raise Forbidden("forbidden: you may only look up your own user")
    return await ctx.services.require("users").get(username)  # type: ignore[no-any-return]


async def allocated_nodes(info: strawberry.Info, cluster: str) -> list[t.Count]:
    ctx = context(info)
    per_subcluster = await ctx.services.require("jobs").allocated_nodes(ctx.user, cluster)
    return [t.Count(name=name, count=len(hosts)) for name, hosts in per_subcluster.items()]


async def node(info: strawberry.Info, id: ID) -> t.Node | None:
    # Upstream has no role check here although every other node query is admin/support only.
    ctx = context(info)
    _admin_or_support(ctx.user, "node queries")
    with_meta = bool(selected_fields(info) & {"metaData", "healthData"})
    return await ctx.services.require("nodes").get_by_id(convert.parse_id(id, "node"), with_meta=with_meta)  # type: ignore[no-any-return]


async def _nodes(info: strawberry.Info, filter: Any, with_meta: bool) -> t.NodeStateResultList:
    ctx = context(info)
    _admin_or_support(ctx.user, "node queries")
    # `order` is accepted and, as upstream, not used: nodes come by hostname.
    items = await ctx.services.require("nodes").list(
        ctx.user, convert.node_filters(filter), None, with_meta=with_meta
    )
    return t.NodeStateResultList(items=items, count=len(items))


async def nodes(
    info: strawberry.Info,
    filter: list[t.NodeFilter] | None = UNSET,
    order: t.OrderByInput | None = UNSET,
) -> t.NodeStateResultList:
    return await _nodes(info, filter, with_meta=False)


async def nodes_with_meta(
    info: strawberry.Info,
    filter: list[t.NodeFilter] | None = UNSET,
    order: t.OrderByInput | None = UNSET,
) -> t.NodeStateResultList:
    return await _nodes(info, filter, with_meta=True)


async def node_states(info: strawberry.Info, filter: list[t.NodeFilter] | None = UNSET) -> list[t.NodeStates]:
    ctx = context(info)
    _admin_or_support(ctx.user, "node queries")
    repo = ctx.services.require("nodes")
    filters = convert.node_filters(filter)
    scheduler, health = await asyncio.gather(
        repo.count_states(ctx.user, filters, column="node_state"),
        repo.count_states(ctx.user, filters, column="health_state"),
    )
    return [t.NodeStates(state=s, count=c) for s, c in (*scheduler, *health)]


async def node_states_timed(
    info: strawberry.Info, type: str, filter: list[t.NodeFilter] | None = UNSET
) -> list[t.NodeStatesTimed]:
    ctx = context(info)
    _admin_or_support(ctx.user, "node queries")
    column = {"node": "node_state", "health": "health_state"}.get(type)
    if column is None:
        raise InvalidInput(f"unknown node state query type {type!r}: expected 'node' or 'health'")
    return await ctx.services.require("nodes").count_states_timed(  # type: ignore[no-any-return]
        ctx.user, convert.node_filters(filter), column=column
    )


async def job(info: strawberry.Info, id: ID) -> t.Job | None:
    return await _job(info, id)  # type: ignore[return-value]


async def job_metrics(
    info: strawberry.Info,
    id: ID,
    metrics: list[str] | None = UNSET,
    scopes: list[MetricScope] | None = UNSET,
    resolution: int | None = UNSET,
) -> list[t.JobMetricWithName]:
    ctx = context(info)
    found = await _job(info, id)
    data = await ctx.services.require("metrics").load_data(
        found, _strings(metrics), _strings(scopes), _resolution(ctx, resolution)
    )
    return _metric_items(data)


async def job_stats(info: strawberry.Info, id: ID, metrics: list[str] | None = UNSET) -> list[t.NamedStats]:
    ctx = context(info)
    found = await _job(info, id)
    stats = await ctx.services.require("metrics").load_job_stats(found, _strings(metrics))
    return [t.NamedStats(name=name, data=data) for name, data in stats.items()]


async def scoped_job_stats(
    info: strawberry.Info,
    id: ID,
    metrics: list[str] | None = UNSET,
    scopes: list[MetricScope] | None = UNSET,
) -> list[t.NamedStatsWithScope]:
    ctx = context(info)
    found = await _job(info, id)
    stats = await ctx.services.require("metrics").load_scoped_job_stats(
        found, _strings(metrics), _strings(scopes)
    )
    return [
        t.NamedStatsWithScope(name=name, scope=scope, stats=list(items))  # type: ignore[arg-type]
        for name, scoped in stats.items()
        for scope, items in scoped.items()
    ]


async def jobs(
    info: strawberry.Info,
    filter: list[t.JobFilter] | None = UNSET,
    page: t.PageRequest | None = UNSET,
    order: t.OrderByInput | None = UNSET,
) -> t.JobResultList:
    """A page of jobs. ``count`` is computed only when selected; the tags and metadata of the items only
    when selected, in the same database round trip; user names in one batch."""
    ctx = context(info)
    wanted = selected_fields(info)
    item_fields = selected_fields(info, "items") if "items" in wanted else frozenset()
    result = await ctx.services.require("jobs").list(
        ctx.user,
        convert.job_filters(filter),
        convert.page_request(page),
        convert.order_by(order),
        count="count" in wanted,
        with_tags="tags" in item_fields,
        with_metadata="metaData" in item_fields,
    )
    await prefetch_job_fields(ctx, result.items, item_fields)
    return t.JobResultList(
        items=result.items,  # type: ignore[arg-type]
        count=result.count if "count" in wanted else None,
        has_next_page=result.has_next_page,
    )


async def jobs_statistics(
    info: strawberry.Info,
    filter: list[t.JobFilter] | None = UNSET,
    metrics: list[str] | None = UNSET,
    page: t.PageRequest | None = UNSET,
    sort_by: t.SortByAggregate | None = UNSET,
    group_by: t.Aggregate | None = UNSET,
    num_duration_bins: str | None = UNSET,
    num_metric_bins: int | None = UNSET,
) -> list[t.JobsStatistics]:
    """Statistics of the filtered jobs; only the selected fields are computed (upstream's rule)."""
    ctx = context(info)
    fields = selected_fields(info)
    grouped = convert.is_given(group_by)
    if grouped and fields & _HISTOGRAM_FIELDS:
        raise InvalidInput("histograms only implemented without groupBy argument")
    if grouped and "histMetrics" in fields:
        raise InvalidInput("metric histograms only implemented without groupBy argument")
    filters = convert.job_filters(filter)
    specs: list[Any] = []
    if "histMetrics" in fields and convert.is_given(metrics):
        from cc_core.db.stats import MetricHistogramSpec

        cluster = next((f.cluster.eq for f in filters if f.cluster is not None and f.cluster.eq), None)
        catalog = ctx.services.require("clusters")
        specs = [
            MetricHistogramSpec(metric=m, peak=peak, stat=stat, unit=unit)
            for m, peak, stat, unit in convert.metric_histogram_specs(metrics, catalog.clusters(), cluster)  # type: ignore[arg-type]
        ]
    live = bool(specs) and _running_only(filters)
    rows = await ctx.services.require("stats").jobs_statistics(
        ctx.user,
        filters,
        fields=fields - {"id", "name"},
        group_by=group_by.value if grouped else None,  # type: ignore[union-attr]
        sort_by=sort_by.value if convert.is_given(sort_by) else None,  # type: ignore[union-attr]
        page=convert.page_request(page, default=None),
        num_duration_bins=_optional(num_duration_bins) or "1h",
        metrics=[] if live else specs,
        num_metric_bins=_optional(num_metric_bins),
    )
    rows = list(rows)
    if live and rows:
        rows[0].hist_metrics = await _running_metric_histograms(
            ctx, filters, specs, _optional(num_metric_bins)
        )
    return rows


def _running_only(filters: Sequence[Any]) -> bool:
    """Upstream's switch to live data: some filter asks for exactly the state ``running``."""
    return any(f.state is not None and [str(s) for s in f.state] == ["running"] for f in filters)


async def _running_metric_histograms(
    ctx: GraphQLContext, filters: Sequence[Any], specs: Sequence[Any], num_bins: int | None
) -> list[Any]:
    """``histMetrics`` of running jobs: running jobs have no footprint yet, so (as upstream) each job's
    average comes from its metric backend, for at most `RUNNING_HISTOGRAM_MAX_JOBS` jobs, and is
    counted into ``bins`` integer-width bins from 0 to the metric's peak. ``stat`` stays null, as
    upstream leaves it (the values are averages, not a footprint statistic)."""
    from cc_core.db.stats import DEFAULT_METRIC_BINS, MetricHistoPoint, MetricHistoPoints

    bins = DEFAULT_METRIC_BINS if num_bins is None else int(num_bins)
    if bins < 1:
        raise InvalidInput("numMetricBins must be ≥ 1")
    limit = RUNNING_HISTOGRAM_MAX_JOBS
    page = await ctx.services.require("jobs").list(
        ctx.user, filters, convert.page_request(None, default=(limit + 1, 1)), None, count=False
    )
    if len(page.items) > limit:
        raise TooManyJobs(
            f"too many running jobs matched for metric histograms (max: {limit}); narrow the filter"
        )
    found = [j for j in page.items if j.monitoring_status not in _NO_METRICS]
    averages = await ctx.services.require("metrics").load_averages(found, [s.metric for s in specs])
    return [
        MetricHistoPoints(
            metric=spec.metric,
            unit=spec.unit,
            stat=None,
            data=[
                MetricHistoPoint(bin=b, count=n, min=lo, max=hi)
                for b, n, lo, hi in convert.live_metric_bins(values, spec.peak, bins)
            ],
        )
        for spec, values in zip(specs, averages, strict=True)
    ]


async def jobs_metric_stats(
    info: strawberry.Info,
    filter: list[t.JobFilter] | None = UNSET,
    metrics: list[str] | None = UNSET,
) -> list[t.JobStats]:
    """Node-level statistics of every filtered job (no paging, by start time; upstream's compare view)."""
    from cc_core.db.filters import OrderByInput

    ctx = context(info)
    found = (
        await ctx.services.require("jobs").list(
            ctx.user,
            convert.job_filters(filter),
            convert.page_request(None, default=(-1, 1)),
            OrderByInput(field="startTime", type="col", order="ASC"),
            count=False,
        )
    ).items
    dispatcher = ctx.services.require("metrics")
    wanted = _strings(metrics)

    async def stats_of(job: Job) -> Any:
        try:
            return await dispatcher.load_job_stats(job, wanted)
        except Exception as e:  # upstream skips jobs whose statistics cannot be loaded
            log.warning("jobsMetricStats: no statistics for job %s: %s", job.id, e)
            return None

    loaded = await asyncio.gather(*(stats_of(j) for j in found))
    out = []
    for job_row, stats in zip(found, loaded, strict=True):
        if stats is None:
            continue
        out.append(
            t.JobStats(
                id=job_row.id,  # type: ignore[arg-type]
                job_id=str(job_row.job_id),
                start_time=job_row.start_time,
                duration=job_row.duration,
                cluster=job_row.cluster,
                sub_cluster=job_row.sub_cluster,
                num_nodes=job_row.num_nodes,
                num_hw_threads=job_row.num_hwthreads,
                num_accelerators=job_row.num_acc,
                stats=[t.NamedStats(name=n, data=d) for n, d in stats.items()],  # type: ignore[arg-type]
            )
        )
    return out


async def jobs_footprints(
    info: strawberry.Info, metrics: list[str], filter: list[t.JobFilter] | None = UNSET
) -> t.Footprints | None:
    ctx = context(info)
    found = await _analysis_jobs(ctx, filter)
    averages = await ctx.services.require("metrics").load_averages(found, list(metrics))
    node_hours, acc_hours, core_hours = convert.time_weights(found)
    return t.Footprints(
        time_weights=t.TimeWeights(node_hours=node_hours, acc_hours=acc_hours, core_hours=core_hours),  # type: ignore[arg-type]
        metrics=[
            t.MetricFootprints(metric=m, data=data)  # type: ignore[arg-type]
            for m, data in zip(metrics, averages, strict=True)
        ],
    )


async def roofline_heatmap(
    info: strawberry.Info,
    filter: list[t.JobFilter],
    rows: int,
    cols: int,
    min_x: float,
    min_y: float,
    max_x: float,
    max_y: float,
) -> list[list[float]]:
    ctx = context(info)
    found = await _analysis_jobs(ctx, filter)
    dispatcher = ctx.services.require("metrics")
    pairs = []
    for job_row in found:
        data = await dispatcher.load_data(job_row, ["flops_any", "mem_bw"], ["node"], 0)
        flops = (data.get("flops_any") or {}).get("node")
        membw = (data.get("mem_bw") or {}).get("node")
        if flops is None or membw is None:
            continue  # upstream: not implemented below node scope; such jobs are skipped
        pairs.extend((f.data, m.data) for f, m in zip(flops.series, membw.series, strict=False))
    return convert.roofline_tiles(pairs, rows, cols, min_x, min_y, max_x, max_y)  # type: ignore[return-value]


def _epoch(value: Any) -> int:
    return convert.epoch(value)


async def node_metrics(
    info: strawberry.Info,
    cluster: str,
    from_: From,
    to: Time,
    nodes: list[str] | None = UNSET,
    scopes: list[MetricScope] | None = UNSET,
    metrics: list[str] | None = UNSET,
) -> list[t.NodeMetrics]:
    ctx = context(info)
    _admin_or_support(ctx.user, "this query")
    config = _cluster(ctx, cluster)
    known = [mc.name for mc in config.metric_config]
    wanted = known if not convert.is_given(metrics) else [m for m in metrics if m in known]  # type: ignore[union-attr]
    data = await ctx.services.require("metrics").load_node_data(
        cluster, wanted, _strings(nodes), _strings(scopes) or [], _epoch(from_), _epoch(to)
    )
    states = await ctx.services.require("nodes").states_of_cluster(cluster)
    out = []
    for host, per_metric in data.items():
        scheduler_state, health_state = states.get(host, ("", ""))
        out.append(
            t.NodeMetrics(
                host=host,
                node_state=scheduler_state,
                metric_health=health_state,
                sub_cluster=config.subcluster_for_node(host) or "",
                metrics=[
                    t.JobMetricWithName(name=name, scope="node", metric=m)  # type: ignore[arg-type]
                    for name, scoped in per_metric.items()
                    for m in scoped
                ],
            )
        )
    return out


async def node_metrics_list(
    info: strawberry.Info,
    cluster: str,
    sub_cluster: str,
    state_filter: str,
    node_filter: str,
    from_: From,
    to: Time,
    scopes: list[MetricScope] | None = UNSET,
    metrics: list[str] | None = UNSET,
    page: t.PageRequest | None = UNSET,
    resolution: int | None = UNSET,
) -> t.NodesResultList:
    ctx = context(info)
    _admin_or_support(ctx.user, "this query")
    config = _cluster(ctx, cluster)
    listing = await ctx.services.require("node_list").node_list_page(
        ctx.user, cluster, sub_cluster, state_filter, node_filter, convert.page_request(page, default=None)
    )
    wanted = _strings(metrics) or [mc.name for mc in config.metric_config]
    data = await ctx.services.require("metrics").load_node_list_data(
        cluster,
        sub_cluster,
        list(listing.hostnames),
        wanted,
        _strings(scopes) or [],
        _resolution(ctx, resolution),
        _epoch(from_),
        _epoch(to),
    )
    items = [
        t.NodeMetrics(
            host=host,
            node_state=listing.node_states.get(host, ""),
            metric_health=listing.health_states.get(host, ""),
            sub_cluster=config.subcluster_for_node(host) or "",
            metrics=_metric_items(data.get(host) or {}),
        )
        for host in listing.hostnames
    ]
    return t.NodesResultList(items=items, total_nodes=listing.total, has_next_page=listing.has_next_page)


async def cluster_metrics(
    info: strawberry.Info,
    cluster: str,
    from_: From,
    to: Time,
    metrics: list[str] | None = UNSET,
) -> t.ClusterMetrics:
    ctx = context(info)
    _admin_or_support(ctx.user, "this query")
    config = _cluster(ctx, cluster)
    wanted = _strings(metrics) or [mc.name for mc in config.metric_config]
    data = await ctx.services.require("metrics").load_node_data(
        cluster, wanted, None, ["node"], _epoch(from_), _epoch(to)
    )
    series: dict[str, list[Any]] = {}
    meta: dict[str, Any] = {}
    for per_metric in data.values():
        for name, scoped in per_metric.items():
            for jm in scoped:
                meta.setdefault(name, jm)
                series.setdefault(name, []).extend(s.data for s in jm.series)
    out = []
    for name, arrays in series.items():
        summed = convert.cluster_metric_sum(arrays, meta[name].unit.prefix)
        if summed is None:
            continue
        out.append(
            t.ClusterMetricWithName(
                name=name,
                unit=t.Unit(base=meta[name].unit.base, prefix="T"),
                timestep=meta[name].timestep,
                data=summed,  # type: ignore[arg-type]
            )
        )
    return t.ClusterMetrics(node_count=len(data), metrics=out)


# ============================================================================================ mutations


async def create_tag(info: strawberry.Info, type: str, name: str, scope: str) -> t.Tag:
    ctx = context(info)
    if not may_write_tag_scope(ctx.user, scope):
        raise Forbidden(f"not authorized to create tag with scope: {scope}")
    return await ctx.services.require("tags").create(ctx.user, type, name, scope)  # type: ignore[no-any-return]


async def _checked_tags(ctx: GraphQLContext, raw_ids: Sequence[Any], allowed: Any, verb: str) -> list[int]:
    """Tag ids that exist, are readable, and whose scope ``allowed(user, scope)`` permits."""
    repo = ctx.services.require("tags")
    ids = convert.parse_ids(raw_ids, "tag")
    for tag_id in ids:
        tag = await repo.get(ctx.user, tag_id)
        if not allowed(ctx.user, tag.scope):
            raise Forbidden(f"not authorized to {verb} tag: {tag_id}")
    return ids


async def _sync_archive(ctx: GraphQLContext, job_id: int) -> None:
    """After a tag change: the archived job's meta.json carries the new tags (upstream does the same)."""
    sync = ctx.services.archive_meta
    if sync is None:
        return
    job = await ctx.services.require("jobs").find_by_id(ctx.user, job_id, with_metadata=False)
    try:
        await sync(job)
    except Exception as e:
        log.error("job %s: tags changed in the database, but the archive's meta.json was not: %s", job_id, e)
        raise ServiceUnavailable(
            f"tags stored in the database, but updating the job archive failed: {e}"
        ) from None


async def add_tags_to_job(info: strawberry.Info, job: ID, tag_ids: list[ID]) -> list[t.Tag]:
    ctx = context(info)
    ids = await _checked_tags(ctx, tag_ids, may_write_tag_scope, "add")
    job_id = convert.parse_id(job)
    tags = await ctx.services.require("tags").add_to_job(ctx.user, job_id, ids)
    await _sync_archive(ctx, job_id)
    return tags  # type: ignore[no-any-return]


async def remove_tags_from_job(info: strawberry.Info, job: ID, tag_ids: list[ID]) -> list[t.Tag]:
    ctx = context(info)
    ids = await _checked_tags(ctx, tag_ids, may_write_tag_scope, "remove")
    job_id = convert.parse_id(job)
    tags = await ctx.services.require("tags").remove_from_job(ctx.user, job_id, ids)
    await _sync_archive(ctx, job_id)
    return tags  # type: ignore[no-any-return]


async def remove_tag_from_list(info: strawberry.Info, tag_ids: list[ID]) -> list[int]:
    ctx = context(info)
    ids = await _checked_tags(ctx, tag_ids, may_delete_tag, "remove")
    return await ctx.services.require("tags").delete(ctx.user, ids)  # type: ignore[no-any-return]


async def delete_tag(info: strawberry.Info, id: ID) -> ID:
    # Upstream panics ("not implemented"); same rule as removeTagFromList, for one tag.
    ctx = context(info)
    ids = await _checked_tags(ctx, [id], may_delete_tag, "remove")
    deleted = await ctx.services.require("tags").delete(ctx.user, ids)
    if not deleted:
        raise NotFound(f"tag does not exist (ID): {ids[0]}")
    return ID(str(deleted[0]))


async def update_configuration(info: strawberry.Info, name: str, value: str) -> str | None:
    ctx = context(info)
    await ctx.services.require("user_config").update(ctx.user.username, name, value)
    return None

"""Node views (contract §14), for admin and support (§6.2: node tables are theirs only):

* ``/monitoring/systems/{cluster}`` — one metric (``?metric=``) for every node of the cluster, small
  plots from one GraphQL ``nodeMetrics`` request;
* ``/monitoring/systems/list/{cluster}[/{subcluster}]`` — the node list: state and host filters, paging,
  a row of metric plots per node and the number of running jobs (``nodeMetricsList`` + one ``jobs``);
* ``/monitoring/node/{cluster}/{host}`` — every metric of one node, its state and its running jobs.

The controllers check the role, the cluster and the URL parameters and render the frame; ``systems.js``
makes the requests (time range ``?range=`` in hours, default 2) and draws the plots.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.db.filters import JobFilter, PageRequest, StringInput
from cc_core.ui.base import json_script, render, ui_config
from cc_core.ui.errors import error_page, role_denied

RANGES = (1, 2, 6, 12, 24)
STATES = ("all", "allocated", "reserved", "idle", "mixed", "down", "unknown", "notindb")


def _range(params: dict[str, list[str]]) -> int:
    raw = (params.get("range") or ["2"])[0]
    return int(raw) if raw.isdigit() and int(raw) in RANGES else 2


def _cluster_or_error(request: Request[Any, Any, Any], name: str) -> tuple[Any, Template | None]:
    user = current_user(request)
    denied = role_denied(request, user, "admin", "support")
    if denied is not None:
        return None, denied
    cluster = request.app.state["services"].clusters.cluster(name)
    if cluster is None:
        return None, error_page(request, 404, f"there is no cluster {name!r}")
    return cluster, None


def _metric_configs(cluster: Any) -> dict[str, Any]:
    return {
        m.name: {
            "unit": {"base": m.unit.base, "prefix": m.unit.prefix},
            "peak": m.peak,
            "normal": m.normal,
            "caution": m.caution,
            "alert": m.alert,
            "lowerIsBetter": bool(getattr(m, "lower_is_better", False)),
            "aggregation": m.aggregation,
        }
        for m in cluster.metric_config
    }


async def _page_data(request: Request[Any, Any, Any], cluster: Any, **extra: Any) -> dict[str, Any]:
    config = await ui_config(request, current_user(request))
    return {
        "cluster": cluster.name,
        "rangeHours": _range(request.query_params.dict()),
        "metricConfig": _metric_configs(cluster),
        "plot": {k: v for k, v in config.items() if k.startswith("plotConfiguration_")},
        **extra,
    }


@get("/monitoring/systems/{cluster:str}", name="ui-systems")
async def systems_overview(request: Request[Any, Any, Any], cluster: str) -> Template:
    c, error = _cluster_or_error(request, cluster)
    if error is not None:
        return error
    names = [m.name for m in c.metric_config]
    wanted = (request.query_params.dict().get("metric") or [""])[0]
    metric = (
        wanted
        if wanted in names
        else next((m.name for m in c.metric_config if m.footprint), names[0] if names else "")
    )
    data = await _page_data(request, c, view="overview", metric=metric)
    return render(
        request,
        "ui/systems.html",
        title=f"Nodes · {c.name}",
        cluster=c,
        view="overview",
        metrics=names,
        metric=metric,
        range_hours=data["rangeHours"],
        ranges=RANGES,
        page_json=json_script(data),
    )


async def _node_list(request: Request[Any, Any, Any], cluster: str, subcluster: str) -> Template:
    c, error = _cluster_or_error(request, cluster)
    if error is not None:
        return error
    subs = [s.name for s in c.sub_clusters]
    if subcluster and subcluster not in subs:
        return error_page(request, 404, f"cluster {cluster!r} has no subcluster {subcluster!r}")
    params = request.query_params.dict()
    config = await ui_config(request, current_user(request))
    state = (params.get("state") or ["all"])[0]
    state = state if state in STATES else "all"
    host = (params.get("host") or [""])[0].strip()[:100]
    raw_page = (params.get("page") or ["1"])[0]
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
    per_page = int(config.get("nodeList_nodesPerPage") or 10)
    hosts, states, total = await _node_page(request, c, subcluster, state, host, page, per_page)
    chosen = (
        config.get(f"metricConfig_nodeListMetrics:{cluster}")
        or [m.name for m in c.metric_config if m.footprint]
        or [m.name for m in c.metric_config[:4]]
    )
    data = await _page_data(
        request,
        c,
        view="list",
        subCluster=subcluster,
        state=state,
        host=host,
        page=page,
        perPage=per_page,
        hosts=hosts,
        states=states,
        totalNodes=total,
        hasNextPage=page * per_page < total,
        metrics=[m for m in chosen if c.metric(m) is not None],
    )
    return render(
        request,
        "ui/systems.html",
        title=f"Node list · {c.name}",
        cluster=c,
        view="list",
        subcluster=subcluster,
        subclusters=subs,
        states=STATES,
        state=state,
        host=host,
        range_hours=data["rangeHours"],
        ranges=RANGES,
        page_json=json_script(data),
    )


async def _node_page(
    request: Request[Any, Any, Any],
    cluster: Any,
    subcluster: str,
    state: str,
    host: str,
    page: int,
    per_page: int,
) -> tuple[list[str], dict[str, str], int]:
    """One page of hostnames (topology order) with their latest scheduler state: the subclusters'
    node lists, the node table's states; ``state`` ``notindb`` = topology nodes without a state row."""
    from cc_core.db.nodes import NodeFilter
    from cc_core.schema.cluster import NodeListError, expand_nodelist

    topology: list[str] = []
    for sc in cluster.sub_clusters:
        if subcluster and sc.name != subcluster:
            continue
        try:
            topology.extend(h for h in expand_nodelist(sc.nodes) if h not in topology)
        except NodeListError:
            continue
    user = current_user(request)
    rows = await request.app.state["services"].db.nodes.list(
        user, [NodeFilter(cluster=StringInput(eq=cluster.name))]
    )
    states = {n.hostname: n.scheduler_state for n in rows if not subcluster or n.sub_cluster == subcluster}
    hosts = topology + sorted(h for h in states if h not in topology)
    if host:
        hosts = [h for h in hosts if host in h]
    if state == "notindb":
        hosts = [h for h in hosts if h not in states]
    elif state != "all":
        hosts = [h for h in hosts if states.get(h) == state]
    start = (page - 1) * per_page
    chosen = hosts[start : start + per_page]
    return chosen, {h: states.get(h, "") for h in chosen}, len(hosts)


@get("/monitoring/systems/list/{cluster:str}", name="ui-node-list")
async def node_list(request: Request[Any, Any, Any], cluster: str) -> Template:
    return await _node_list(request, cluster, "")


@get("/monitoring/systems/list/{cluster:str}/{subcluster:str}", name="ui-node-list-sub")
async def node_list_sub(request: Request[Any, Any, Any], cluster: str, subcluster: str) -> Template:
    return await _node_list(request, cluster, subcluster)


@get("/monitoring/node/{cluster:str}/{host:str}", name="ui-node")
async def node_view(request: Request[Any, Any, Any], cluster: str, host: str) -> Template:
    c, error = _cluster_or_error(request, cluster)
    if error is not None:
        return error
    user = current_user(request)
    services = request.app.state["services"]
    running = await services.db.jobs.list(
        user,
        [
            JobFilter(cluster=StringInput(eq=c.name)),
            JobFilter(node=StringInput(eq=host)),
            JobFilter(state=["running"]),
        ],
        PageRequest(100, 1),
        with_metadata=False,
    )
    node = await services.db.nodes.get(host, c.name)
    data = await _page_data(request, c, view="node", host=host, metrics=[m.name for m in c.metric_config])
    return render(
        request,
        "ui/systems.html",
        title=f"{host} · {c.name}",
        cluster=c,
        view="node",
        host=host,
        node=node,
        running=running.items,
        range_hours=data["rangeHours"],
        ranges=RANGES,
        page_json=json_script(data),
    )

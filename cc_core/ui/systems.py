"""Node views (contract §14), for admin and support (§6.2: node tables are theirs only):

* ``/monitoring/systems/{cluster}`` — one metric (``?metric=``) for every node of the cluster, small
  plots from one GraphQL ``nodeMetrics`` request;
* ``/monitoring/systems/list/{cluster}[/{subcluster}]`` — the node list: state and host filters, paging
  and the page's hosts with their metrics from one GraphQL ``nodeMetricsList`` (plus one ``jobs`` for
  the running-job counts); the metric selection is the user's ``nodeList_selectedMetrics:<cluster>``;
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
    # Upstream's key for the node list's metric selection (MetricSelection with the cluster appended);
    # our earlier key is still read.
    key = f"nodeList_selectedMetrics:{cluster}"
    chosen = (
        config.get(key)
        or config.get(f"metricConfig_nodeListMetrics:{cluster}")
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
        metrics=[m for m in chosen if c.metric(m) is not None],
        allMetrics=[m.name for m in c.metric_config],
        metricKey=key,
    )
    return render(
        request,
        "ui/systems.html",
        title=f"Node list · {c.name}",
        all_metrics=data["allMetrics"],
        selected_metrics=data["metrics"],
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

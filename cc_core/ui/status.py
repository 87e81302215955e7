"""``/monitoring/status/{cluster}`` (admins), its detail view ``/monitoring/status/detail/{cluster}``
and the kiosk dashboard ``/monitoring/dashboard/{cluster}`` (admin or support: its data needs them),
contract §14.

One page with tabs: Status (info cards: nodes, allocated nodes, running jobs, users, cores,
accelerators; the roofline of the running jobs (one point per job: node averages of flops_any and
mem_bw from GraphQL ``jobsMetricStats``); top projects; node-state pie and the node states over the
last day; cluster metric totals), Health
(health-state pie, nodes not in the full state), Usage (top users/projects of the running jobs as pies,
duration/nodes/cores histograms), Statistics (footprint-metric histograms of the running jobs).
Counts come from the repositories on the server; ``status.js`` draws them and asks GraphQL
``clusterMetrics`` for the metric totals. The dashboard is the Status tab without the header.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.db.filters import JobFilter, PageRequest, StringInput
from cc_core.ui.base import json_script, render
from cc_core.ui.errors import error_page, role_denied

log = logging.getLogger(__name__)

TOP = 10
RUNNING_TOTALS = ("totalJobs", "totalUsers", "totalNodes", "totalCores", "totalAccs")
TOTAL_METRICS = ("flops_any", "mem_bw")
ROOFLINE_METRICS = ("flops_any", "mem_bw")


async def _status_data(request: Request[Any, Any, Any], cluster: Any) -> dict[str, Any]:
    from cc_core.db.nodes import NodeFilter
    from cc_core.schema.cluster import NodeListError, expand_nodelist

    user = current_user(request)
    db = request.app.state["services"].db
    running = [JobFilter(cluster=StringInput(eq=cluster.name)), JobFilter(state=["running"])]
    [totals] = await db.stats.jobs_statistics(user, running, fields=RUNNING_TOTALS)
    [hists] = await db.stats.jobs_statistics(
        user, running, fields=("histDuration", "histNumNodes", "histNumCores")
    )
    tops = {}
    for group in ("USER", "PROJECT"):
        rows = await db.stats.jobs_statistics(
            user,
            running,
            fields=("totalNodes", "totalJobs"),
            group_by=group,
            sort_by="TOTALNODES",
            page=PageRequest(items_per_page=TOP, page=1),
        )
        tops[group.lower()] = [{"id": r.id, "nodes": r.total_nodes, "jobs": r.total_jobs} for r in rows]
    allocated = await db.jobs.allocated_nodes(user, cluster.name)
    node_filter = [NodeFilter(cluster=StringInput(eq=cluster.name))]
    states = await db.nodes.count_states(user, node_filter)
    health = await db.nodes.count_states(user, node_filter, column="health_state")
    since = int(time.time()) - 86400
    timed = await db.nodes.count_states_timed(
        user, [NodeFilter(cluster=StringInput(eq=cluster.name), time_start=since)]
    )
    unhealthy = [
        {"host": n.hostname, "health": n.health_state, "state": n.scheduler_state}
        for n in await db.nodes.list(user, node_filter)
        if n.health_state and n.health_state != "full"
    ]
    subclusters = []
    for sc in cluster.sub_clusters:
        try:
            count = len(expand_nodelist(sc.nodes))
        except NodeListError:
            count = 0
        subclusters.append({"name": sc.name, "nodes": count, "allocated": len(allocated.get(sc.name, {}))})
    return {
        "cluster": cluster.name,
        "subClusters": subclusters,
        "running": {
            "jobs": totals.total_jobs,
            "users": totals.total_users,
            "nodes": totals.total_nodes,
            "cores": totals.total_cores,
            "accs": totals.total_accs,
        },
        "hist": {
            "duration": [{"value": p.value, "count": p.count} for p in hists.hist_duration],
            "numNodes": [{"value": p.value, "count": p.count} for p in hists.hist_num_nodes],
            "numCores": [{"value": p.value, "count": p.count} for p in hists.hist_num_cores],
        },
        "top": tops,
        "states": [{"state": s, "count": n} for s, n in states],
        "health": [{"state": s, "count": n} for s, n in health],
        "timed": [{"state": t.state, "times": t.times, "counts": t.counts} for t in timed],
        # the chart's time axis is the window asked for, never stretched or squeezed by the data in it
        "timedRange": [since, since + 86400],
        "unhealthy": unhealthy[:200],
        "totalMetrics": [m for m in TOTAL_METRICS if cluster.metric(m) is not None],
        # The roofline of the running jobs (status.js asks jobsMetricStats): the highest roofs of
        # the cluster's subclusters.
        "roofline": all(cluster.metric(m) is not None for m in ROOFLINE_METRICS),
        "peaks": {
            "flopRateSimd": max((sc.flop_rate_simd.value for sc in cluster.sub_clusters), default=0),
            "flopRateScalar": max((sc.flop_rate_scalar.value for sc in cluster.sub_clusters), default=0),
            "memoryBandwidth": max((sc.memory_bandwidth.value for sc in cluster.sub_clusters), default=0),
        },
    }


async def _page(
    request: Request[Any, Any, Any], cluster: str, *, tab: str, kiosk: bool, roles: tuple[str, ...]
) -> Template:
    user = current_user(request)
    denied = role_denied(request, user, *roles)
    if denied is not None:
        return denied
    c = request.app.state["services"].clusters.cluster(cluster)
    if c is None:
        return error_page(request, 404, f"there is no cluster {cluster!r}")
    data = await _status_data(request, c)
    return render(
        request,
        "ui/status.html",
        title=f"Status · {c.name}",
        cluster=c,
        tab=tab,
        kiosk=kiosk,
        data=data,
        page_json=json_script(data),
    )


@get("/monitoring/status/{cluster:str}", name="ui-status")
async def status_page(request: Request[Any, Any, Any], cluster: str) -> Template:
    return await _page(request, cluster, tab="status", kiosk=False, roles=("admin",))


@get("/monitoring/status/detail/{cluster:str}", name="ui-status-detail")
async def status_detail(request: Request[Any, Any, Any], cluster: str) -> Template:
    return await _page(request, cluster, tab="health", kiosk=False, roles=("admin",))


@get("/monitoring/dashboard/{cluster:str}", name="ui-dashboard")
async def dashboard(request: Request[Any, Any, Any], cluster: str) -> Template:
    return await _page(request, cluster, tab="status", kiosk=True, roles=("admin", "support"))

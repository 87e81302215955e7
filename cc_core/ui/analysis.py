"""``/monitoring/analysis/{cluster}`` (admin, support; contract §14): the jobs of a cluster, filtered by
the job list's URL parameters (`cc_core.ui.filters`; default the last 30 days), analysed.

On the server (one repository call each): the totals card, the top users/projects pies (``?top=`` picks
the quantity: jobs, walltime or core hours), the duration and core-count histograms and the footprint
metric histograms (``analysisView_histogramMetrics``, else the cluster's footprint metrics). In the
browser (``analysis.js``, one GraphQL request): the roofline heatmap (``rooflineHeatmap``, flop rate vs
arithmetic intensity) and the time-weighted footprint scatter plots (``jobsFootprints``, metric pairs
from ``analysisView_scatterPlotMetrics``). Both GraphQL fields refuse more than 500 jobs: the page says
so and asks for a narrower filter.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.db.filters import JobFilter, PageRequest, StringInput
from cc_core.db.stats import MetricHistogramSpec
from cc_core.graphql.convert import metric_histogram_specs
from cc_core.ui.base import json_script, render, ui_config
from cc_core.ui.errors import error_page, role_denied
from cc_core.ui.filters import parse_list_query

TOP = 10
TOP_CATEGORIES = {
    "totalJobs": "TOTALJOBS",
    "totalWalltime": "TOTALWALLTIME",
    "totalCoreHours": "TOTALCOREHOURS",
}
TOTALS = ("totalJobs", "totalUsers", "totalWalltime", "totalNodeHours", "totalCoreHours", "totalAccHours")
_ATTR = {"totalJobs": "total_jobs", "totalWalltime": "total_walltime", "totalCoreHours": "total_core_hours"}


def _pairs(config: dict[str, Any], cluster: Any) -> list[list[str]]:
    chosen = config.get("analysisView_scatterPlotMetrics")
    if isinstance(chosen, list) and all(isinstance(p, list) and len(p) == 2 for p in chosen):
        pairs = [[str(a), str(b)] for a, b in chosen]
    else:
        pairs = [["flops_any", "mem_bw"], ["flops_any", "cpu_load"], ["cpu_load", "mem_bw"]]
    return [p for p in pairs if cluster.metric(p[0]) is not None and cluster.metric(p[1]) is not None]


@get("/monitoring/analysis/{cluster:str}", name="ui-analysis")
async def analysis_page(request: Request[Any, Any, Any], cluster: str) -> Template:
    user = current_user(request)
    denied = role_denied(request, user, "admin", "support")
    if denied is not None:
        return denied
    services = request.app.state["services"]
    c = services.clusters.cluster(cluster)
    if c is None:
        return error_page(request, 404, f"there is no cluster {cluster!r}")
    params = {k: v for k, v in request.query_params.dict().items() if k != "cluster"}
    params.setdefault("startTime", ["last30d"])
    q = parse_list_query(params)
    filters = [JobFilter(cluster=StringInput(eq=c.name)), *q.filters]
    config = await ui_config(request, user)
    stats = services.db.stats
    [totals] = await stats.jobs_statistics(user, filters, fields=TOTALS)
    top_key = (params.get("top") or ["totalJobs"])[0]
    top_key = top_key if top_key in TOP_CATEGORIES else "totalJobs"
    tops: dict[str, list[dict[str, Any]]] = {}
    for group in ("USER", "PROJECT"):
        rows = await stats.jobs_statistics(
            user,
            filters,
            fields=(top_key,),
            group_by=group,
            sort_by=TOP_CATEGORIES[top_key],
            page=PageRequest(items_per_page=TOP, page=1),
        )
        tops[group.lower()] = [{"id": r.id, "value": getattr(r, _ATTR[top_key])} for r in rows]
    chosen = config.get("analysisView_histogramMetrics")
    metrics = (
        [str(m) for m in chosen]
        if isinstance(chosen, list) and chosen
        else [m.name for m in c.metric_config if m.footprint]
    )
    specs = [
        MetricHistogramSpec(metric=m, peak=peak, stat=stat, unit=unit)
        for m, peak, stat, unit in metric_histogram_specs(metrics, [c], c.name)
    ]
    [hists] = await stats.jobs_statistics(
        user, filters, fields=("histDuration", "histNumCores", "histMetrics"), metrics=specs
    )
    peaks = {"flops": 0.0, "membw": 0.0}
    for sc in c.sub_clusters:
        peaks["flops"] = max(peaks["flops"], sc.flop_rate_simd.value)
        peaks["membw"] = max(peaks["membw"], sc.memory_bandwidth.value)
    data = {
        "cluster": c.name,
        "filter": msgspec.to_builtins(filters),
        "top": tops,
        "topKey": top_key,
        "hist": {
            "duration": [{"value": p.value, "count": p.count} for p in hists.hist_duration],
            "numCores": [{"value": p.value, "count": p.count} for p in hists.hist_num_cores],
            "metrics": [
                {
                    "metric": h.metric,
                    "unit": h.unit,
                    "stat": h.stat,
                    "data": [
                        {"value": p.max if p.max is not None else p.bin, "count": p.count} for p in h.data
                    ],
                }
                for h in hists.hist_metrics
            ],
        },
        "pairs": _pairs(config, c),
        "units": {m.name: {"base": m.unit.base, "prefix": m.unit.prefix} for m in c.metric_config},
        "peaks": peaks,
        "totalJobs": totals.total_jobs,
        "plot": {k: v for k, v in config.items() if k.startswith("plotConfiguration_")},
    }
    return render(
        request,
        "ui/analysis.html",
        title=f"Analysis · {c.name}",
        cluster=c,
        totals=totals,
        form=q.form,
        top_key=top_key,
        top_categories=TOP_CATEGORIES,
        data=data,
        page_json=json_script(data),
    )

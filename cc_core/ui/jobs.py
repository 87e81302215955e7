"""``/monitoring/jobs/``: the job list (contract §14).

The table is rendered here, on the server, from one `JobRepository.list` call (tags and metadata in the
same round trip); the filter form swaps it with htmx and pushes the URL, so every list state is a
bookmarkable upstream-style URL. The small metric plots are drawn afterwards by ``jobs.js`` from one
GraphQL request (aliased ``jobMetrics`` per visible job) — no request per row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.schema.job import JOB_STATES
from cc_core.ui.base import json_script, metric_selection, render, ui_config
from cc_core.ui.filters import SORT_COLUMNS, parse_list_query
from cc_core.ui.footprint import footprint_bars, metric_configs

DEFAULT_LIST_METRICS = 4


def default_list_metrics(clusters: list[Any]) -> list[str]:
    """Without a ``metricConfig_jobListMetrics`` setting: the footprint metrics (else the first few)."""
    names: list[str] = []
    for c in clusters:
        for m in c.metric_config:
            if m.footprint and m.name not in names:
                names.append(m.name)
    if not names and clusters:
        names = [m.name for m in clusters[0].metric_config[:DEFAULT_LIST_METRICS]]
    return names


def page_url(request: Request[Any, Any, Any], **changes: Any) -> str:
    """This URL with some parameters replaced (None drops one)."""
    params = [(k, v) for k, vs in request.query_params.dict().items() for v in vs if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def start_range_inputs(raw: str) -> tuple[str, str]:
    """``startTime=<from>-<to>`` (epoch seconds, upstream's format) as the picker's two
    ``datetime-local`` values (UTC); named ranges (``last24h`` …) and bad values give empty inputs."""
    parts = raw.split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return "", ""
    return tuple(  # type: ignore[return-value]
        datetime.fromtimestamp(int(p), UTC).strftime("%Y-%m-%dT%H:%M") for p in parts
    )


@get("/monitoring/jobs/", name="ui-jobs")
async def job_list(request: Request[Any, Any, Any]) -> Template:
    user = current_user(request)
    services = request.app.state["services"]
    config = await ui_config(request, user)
    q = parse_list_query(request.query_params.dict(), per_page=int(config.get("jobList_jobsPerPage") or 50))
    # No count here: over a million jobs it would cost more than the page; the pager asks for it
    # separately (`job_count`) once the table is painted.
    result = await services.db.jobs.list(
        user, q.filters, q.page_request, q.order_by, count=False, with_tags=True, with_metadata=True
    )
    catalog = services.clusters
    cluster_filter = q.form.get("cluster", "")
    clusters = [catalog.cluster(cluster_filter)] if catalog.cluster(cluster_filter) else catalog.clusters()
    metrics = metric_selection(config, "jobListMetrics", cluster_filter) if cluster_filter else None
    if metrics is None:
        metrics = metric_selection(config, "jobListMetrics", "") or default_list_metrics(clusters)
    available = sorted({m.name for c in clusters for m in c.metric_config})

    rows = []
    configs: dict[str, dict[str, Any]] = {}
    for job in result.items:
        cluster = catalog.cluster(job.cluster)
        key = f"{job.cluster}/{job.sub_cluster}"
        if key not in configs:
            configs[key] = metric_configs(cluster, job.sub_cluster)
        rows.append(
            {
                "job": job,
                "name": (job.meta_data or {}).get("jobName", ""),
                "bars": footprint_bars(job.footprint, cluster, job.sub_cluster),
                "metrics": [m for m in metrics if m in configs[key]],
            }
        )
    resolutions = request.app.state["config"].main.resampling
    plot_data = {
        "jobs": [
            {
                "id": r["job"].id,
                "key": f"{r['job'].cluster}/{r['job'].sub_cluster}",
                "metrics": r["metrics"],
                "numNodes": r["job"].num_nodes,
            }
            for r in rows
        ],
        "metricConfig": configs,
        "resolution": max(resolutions.resolutions) if resolutions and resolutions.resolutions else None,
        "plot": {k: v for k, v in config.items() if k.startswith("plotConfiguration_")},
    }
    target = request.headers.get("hx-target")
    # htmx names the element it swaps: the whole table (filters, pages, refresher) or the sentinel row
    # of continuous scrolling (just the next page's rows).
    template = {"job-table": "ui/_jobs_table.html", "job-more": "ui/_jobs_rows.html"}.get(
        target or "", "ui/jobs.html"
    )
    tags = await services.db.tags.visible(user) if template == "ui/jobs.html" else []
    return render(
        request,
        template,
        title="Job list",
        q=q,
        rows=rows,
        metrics=metrics,
        available_metrics=available,
        count_url="/monitoring/jobs/count" + (f"?{request.url.query}" if request.url.query else ""),
        has_next=result.has_next_page,
        page_url=lambda **kw: page_url(request, **kw),
        plot_json=json_script(plot_data),
        sort_columns=SORT_COLUMNS,
        footprint_keys=sorted(
            {f"{m.name}_{m.footprint}" for c in clusters for m in c.metric_config if m.footprint}
        ),
        states=JOB_STATES,
        tags=tags,
        clusters=catalog.names(),
        show_footprint=bool(config.get("jobList_showFootprint", True)),
        paging=bool(config.get("jobList_usePaging", False)),
        start_range=start_range_inputs(q.form.get("startTime", "")),
        metric_key=f"metricConfig_jobListMetrics:{cluster_filter}"
        if cluster_filter
        else "metricConfig_jobListMetrics",
    )


@get("/monitoring/jobs/count", name="ui-jobs-count", media_type=MediaType.HTML)
async def job_count(request: Request[Any, Any, Any]) -> str:
    """The number of jobs matching the job list's URL (filled into the page by htmx after paint)."""
    user = current_user(request)
    q = parse_list_query(request.query_params.dict())
    total = await request.app.state["services"].db.jobs.count(user, q.filters)
    pages = max(1, -(-total // q.per_page))
    return f"{total} job{'' if total == 1 else 's'} · {pages} page{'' if pages == 1 else 's'}"

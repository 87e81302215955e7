"""``/monitoring/users/``, ``/monitoring/projects/`` and ``/monitoring/user/{id}`` (contract §14).

The two lists are one `StatsRepository.jobs_statistics` call grouped by user or project (the visitor's
job visibility applies, §6.2), sorted on the server by the URL's ``sort``/``order`` so a sorted table is
a bookmarkable URL, and exported as CSV with ``?format=csv``. The filters are the job list's URL
parameters (`cc_core.ui.filters`), so ``?cluster=…&startTime=last7d`` works as upstream.

The user page shows the user, their totals and histograms (duration, nodes, footprint metrics — data
rendered into the page, drawn by ``user.js``) and their jobs: the job list's table partial, loaded with
htmx from ``/monitoring/jobs/?user=<id>&userMatch=eq``.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Request, Response, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.db.filters import JobFilter, StringInput
from cc_core.graphql.convert import metric_histogram_specs
from cc_core.ui.base import json_script, render, ui_config
from cc_core.ui.errors import error_page, role_denied
from cc_core.ui.filters import parse_list_query

#: column key → (title, JobsStatistics attribute)
COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("", "id"),
    "totalJobs": ("Total jobs", "total_jobs"),
    "totalWalltime": ("Total walltime [h]", "total_walltime"),
    "totalCoreHours": ("Total core hours", "total_core_hours"),
    "totalAccHours": ("Total accelerator hours", "total_acc_hours"),
}
STAT_FIELDS = ("totalJobs", "totalWalltime", "totalCoreHours", "totalAccHours")
USER_TOTALS = (*STAT_FIELDS, "runningJobs", "shortJobs", "totalNodeHours")


def _sorted(rows: list[Any], key: str, order: str) -> list[Any]:
    attr = COLUMNS.get(key, COLUMNS["totalJobs"])[1]
    return sorted(rows, key=lambda r: (getattr(r, attr), r.id), reverse=order != "asc")


async def _list_page(request: Request[Any, Any, Any], kind: str) -> Template | Response[str]:
    user = current_user(request)
    denied = role_denied(request, user, "admin", "support", "manager")
    if denied is not None:
        return denied
    services = request.app.state["services"]
    params = request.query_params.dict()
    q = parse_list_query(params)
    group = "USER" if kind == "user" else "PROJECT"
    rows = await services.db.stats.jobs_statistics(user, q.filters, fields=STAT_FIELDS, group_by=group)
    if kind == "user":  # names: the stored users' display names (upstream's `name` of a USER group)
        names = {u.username: u.name for u in await services.db.users.list()}
        for r in rows:
            r.name = names.get(r.id, "") or r.name
    sort = (params.get("sort") or ["totalJobs"])[0]
    sort = sort if sort in COLUMNS else "totalJobs"
    order = "asc" if (params.get("order") or ["desc"])[0] == "asc" else "desc"
    text = (params.get("filter") or [""])[0].strip().lower()
    if text:
        rows = [r for r in rows if text in r.id.lower() or text in (r.name or "").lower()]
    rows = _sorted(rows, sort, order)
    if (params.get("format") or [""])[0] == "csv":
        return _csv(kind, rows)
    kept = [(k, v) for k, vs in params.items() for v in vs if k not in ("sort", "order", "format")]

    def sort_url(column: str) -> str:
        new = "asc" if column == sort and order == "desc" else "desc"
        return "?" + urlencode([*kept, ("sort", column), ("order", new)])

    title = "Users" if kind == "user" else "Projects"
    return render(
        request,
        "ui/statistics_list.html",
        title=title,
        kind=kind,
        rows=rows,
        columns=COLUMNS,
        sort=sort,
        order=order,
        sort_url=sort_url,
        csv_url="?"
        + urlencode([*[(k, v) for k, v in kept], ("sort", sort), ("order", order), ("format", "csv")]),
        form=q.form,
        text=text,
        clusters=services.clusters.names(),
    )


def _csv(kind: str, rows: list[Any]) -> Response[str]:
    out = io.StringIO()
    w = csv.writer(out)
    head = [kind, *(["name"] if kind == "user" else []), *STAT_FIELDS]
    w.writerow(head)
    for r in rows:
        w.writerow(
            [r.id, *([r.name] if kind == "user" else []), *(getattr(r, COLUMNS[f][1]) for f in STAT_FIELDS)]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}s.csv"'},
    )


@get("/monitoring/users/", name="ui-users", media_type=MediaType.HTML)
async def users_list(request: Request[Any, Any, Any]) -> Template | Response[str]:
    return await _list_page(request, "user")


@get("/monitoring/projects/", name="ui-projects", media_type=MediaType.HTML)
async def projects_list(request: Request[Any, Any, Any]) -> Template | Response[str]:
    return await _list_page(request, "project")


def histogram_metrics(config: dict[str, Any], clusters: list[Any]) -> list[str]:
    """``userView_histogramMetrics`` when set, else the clusters' footprint metrics."""
    chosen = config.get("userView_histogramMetrics")
    if isinstance(chosen, list) and chosen:
        return [str(m) for m in chosen]
    out: list[str] = []
    for c in clusters:
        for m in c.metric_config:
            if m.footprint and m.name not in out:
                out.append(m.name)
    return out


@get("/monitoring/user/{username:str}", name="ui-user")
async def user_view(request: Request[Any, Any, Any], username: str) -> Template:
    user = current_user(request)
    if username != user.username and not user.has_any_role("admin", "support", "manager"):
        return error_page(request, 403, "you may only see your own jobs")
    services = request.app.state["services"]
    stored = await services.db.users.get(username)
    config = await ui_config(request, user)
    catalog = services.clusters
    params = request.query_params.dict()
    q = parse_list_query(params)
    cluster = q.form.get("cluster")
    clusters = [catalog.cluster(cluster)] if cluster and catalog.cluster(cluster) else catalog.clusters()
    from cc_core.db.stats import MetricHistogramSpec

    metrics = histogram_metrics(config, clusters)
    specs = [
        MetricHistogramSpec(metric=m, peak=peak, stat=stat, unit=unit)
        for m, peak, stat, unit in metric_histogram_specs(metrics, catalog.clusters(), cluster)
    ]
    filters = [JobFilter(user=StringInput(eq=username)), *q.filters]
    [stats] = await services.db.stats.jobs_statistics(
        user,
        filters,
        fields=(*USER_TOTALS, "histDuration", "histNumNodes", "histMetrics"),
        metrics=specs,
    )
    hist = {
        "duration": [{"value": p.value, "count": p.count} for p in stats.hist_duration],
        "numNodes": [{"value": p.value, "count": p.count} for p in stats.hist_num_nodes],
        "metrics": [
            {
                "metric": h.metric,
                "unit": h.unit,
                "stat": h.stat,
                "data": [{"value": p.max if p.max is not None else p.bin, "count": p.count} for p in h.data],
            }
            for h in stats.hist_metrics
        ],
    }
    job_query = urlencode(
        [("user", username), ("userMatch", "eq")]
        + [(k, v) for k, vs in params.items() for v in vs if k not in ("user", "userMatch")]
    )
    return render(
        request,
        "ui/user.html",
        title=f"User {username}",
        username=username,
        stored=stored,
        stats=stats,
        hist_json=json_script(hist),
        job_query=job_query,
        form=q.form,
        clusters=catalog.names(),
    )

"""``/monitoring/job/{id}``: one job (contract §14).

The server renders what is text (header, metadata tabs, tags, footprint bars, energy and CO₂); every plot
and the statistics table come from one GraphQL ``jobMetrics`` request made by ``job.js`` for all of the
page's metrics at once. A zoom asks again for just that metric at a finer resolution.

A job the visitor may not see answers 403 when it exists, 404 when it does not (or the id is no number).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.db.errors import NotFoundError
from cc_core.db.jobs import SYSTEM_USER
from cc_core.ui.base import json_script, metric_selection, render, ui_config
from cc_core.ui.footprint import footprint_bars, metric_configs

# hwthread is left out: 2-8 series per core on big nodes, for the statistics table only.
FINE_SCOPES = ("socket", "memoryDomain", "core", "accelerator")


def _error(request: Request[Any, Any, Any], status: int, message: str) -> Template:
    return render(
        request,
        "error.html",
        title=f"{status}",
        status_code=status,
        status=("Forbidden" if status == 403 else "Not Found"),
        message=message,
    )


def _roofline(cluster: Any, subcluster: str) -> dict[str, Any] | None:
    for sc in cluster.sub_clusters if cluster else ():
        if sc.name == subcluster:
            return {
                "flopRateScalar": sc.flop_rate_scalar.value,
                "flopRateSimd": sc.flop_rate_simd.value,
                "memoryBandwidth": sc.memory_bandwidth.value,
            }
    return None


@get("/monitoring/job/{job_id:str}", name="ui-job")
async def job_view(request: Request[Any, Any, Any], job_id: str) -> Template:
    user = current_user(request)
    services = request.app.state["services"]
    if not job_id.isdigit():
        return _error(request, 404, f"there is no job with the id {job_id!r}")
    try:
        job = await services.db.jobs.find_by_id(user, int(job_id), with_metadata=True, with_tags=True)
    except NotFoundError:
        try:
            await services.db.jobs.find_by_id(SYSTEM_USER, int(job_id), with_metadata=False)
        except NotFoundError:
            return _error(request, 404, f"there is no job with the id {job_id}")
        return _error(request, 403, "you may not see this job")
    # GraphQL `job()` also needs owner or admin/support/manager (contract §6.2): keep the page consistent.
    if job.user != user.username and not user.has_any_role("admin", "support", "manager", "api"):
        return _error(request, 403, "you may not see this job")

    config = await ui_config(request, user)
    cluster = services.clusters.cluster(job.cluster)
    configs = metric_configs(cluster, job.sub_cluster)
    plot_metrics = metric_selection(config, "jobViewPlotMetrics", job.cluster, job.sub_cluster) or list(
        configs
    )
    plot_metrics = [m for m in plot_metrics if m in configs]
    table_metrics = (
        metric_selection(config, "jobViewTableMetrics", job.cluster, job.sub_cluster) or plot_metrics
    )
    table_metrics = [m for m in table_metrics if m in configs]
    scopes = ["node"] if job.num_nodes > 1 else ["node", *FINE_SCOPES]
    emission = float(config.get("emission-constant") or 0.0)
    energy_rows = sorted((job.energy_footprint or {}).items())
    resampling = request.app.state["config"].main.resampling
    resolutions = (
        sorted(resampling.resolutions, reverse=True) if resampling and resampling.resolutions else []
    )
    page_data = {
        "id": job.id,
        "jobId": job.job_id,
        "cluster": job.cluster,
        "subCluster": job.sub_cluster,
        "numNodes": job.num_nodes,
        "startTime": job.start_time,
        "state": job.job_state,
        "plotMetrics": plot_metrics,
        "tableMetrics": table_metrics,
        "scopes": scopes,
        "metricConfig": configs,
        "footprint": job.footprint or {},
        "roofline": _roofline(cluster, job.sub_cluster),
        "resolutions": resolutions,
        "plot": {k: v for k, v in config.items() if k.startswith("plotConfiguration_")},
        "tags": [{"id": t.id, "type": t.type, "name": t.name, "scope": t.scope} for t in job.tags or []],
        "username": user.username,
        "canGlobalTags": user.has_any_role("admin", "support"),
        "canAdminTags": user.has_role("admin"),
    }
    meta = job.meta_data or {}
    return render(
        request,
        "ui/job.html",
        title=f"Job {job.job_id} - {job.cluster}",
        job=job,
        meta=meta,
        bars=footprint_bars(job.footprint, cluster, job.sub_cluster),
        energy_rows=energy_rows,
        co2=(job.energy * emission) if emission and job.energy else None,
        emission=emission,
        page_json=json_script(page_data),
        config=config,
    )

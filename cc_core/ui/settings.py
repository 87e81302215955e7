"""``/config`` (the settings page) and ``/search`` (the header's search box), contract §14.

Settings: every user edits their own UI settings (plot options, paging, job-list metrics per cluster),
stored one key at a time with ``POST /frontend/configuration/`` (value = JSON, as upstream), and can
generate an API token (``GET /frontend/jwt/``). Admins additionally get the admin panel: the users
(``/config/users/``, ``/config/user/{id}``), the start page's notice (``/config/notice/``) and the
taggers (``/config/taggers/run/``). The page only renders the current state; ``settings.js`` talks to
those existing REST routes, which check the admin role themselves.

Search: ``type:query`` with upstream's types (``jobId``, ``jobName``, ``projectId``, ``arrayJobId``,
``username``, ``name``), or a bare term searched in upstream's order jobId → username → name →
project → job name (last 30 days). Redirects to the job list, the user list or a user's page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from litestar import Request, get
from litestar.response import Redirect, Template

from cc_core.api.auth import current_user
from cc_core.auth.user import VALID_ROLES
from cc_core.db.filters import JobFilter, StringInput
from cc_core.ui.base import render, ui_config
from cc_core.ui.errors import error_page
from cc_core.ui.home import read_notice
from cc_core.ui.jobs import default_list_metrics

#: Settings with a fixed set of choices: key → (label, choices).
CHOICES: dict[str, tuple[str, list[Any]]] = {
    "plotConfiguration_lineWidth": ("Line width", [1, 2, 3]),
    "plotConfiguration_plotsPerRow": ("Plots per row", [1, 2, 3, 4, 5]),
    "jobList_jobsPerPage": ("Jobs per page", [10, 25, 50, 100]),
    "nodeList_nodesPerPage": ("Nodes per page", [10, 25, 50, 100]),
}
#: On/off settings: key → label.
SWITCHES: dict[str, str] = {
    "plotConfiguration_colorBackground": "Colour the plot background by the threshold level",
    "plotConfiguration_colorblindMode": "Colour-blind friendly colours",
    "jobList_usePaging": "Job list: pages instead of continuous scrolling",
    "jobList_showFootprint": "Job list: show the footprint column",
    "jobView_showPolarPlot": "Job view: polar plot",
    "jobView_showFootprint": "Job view: footprint",
    "jobView_showRoofline": "Job view: roofline",
    "jobView_showStatTable": "Job view: statistics table",
}


def _taggers(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    registry = request.app.state["registry"]
    service = request.app.state["context"].services.get("taggers")
    return [
        {
            "name": kind,
            "event": str(getattr(cls, "event", "")),
            "running": bool(service.is_running(kind)) if service is not None else False,
        }
        for kind, cls in sorted(registry.classes("tagger").items())
    ]


@get("/config", name="ui-config")
async def settings_page(request: Request[Any, Any, Any]) -> Template:
    user = current_user(request)
    services = request.app.state["services"]
    config = await ui_config(request, user)
    metrics = []
    for cluster in services.clusters.clusters():
        key = f"metricConfig_jobListMetrics:{cluster.name}"
        chosen = (
            config.get(key) or config.get("metricConfig_jobListMetrics") or default_list_metrics([cluster])
        )
        metrics.append(
            {
                "cluster": cluster.name,
                "key": key,
                "available": [m.name for m in cluster.metric_config],
                "chosen": list(chosen),
            }
        )
    admin = user.has_role("admin")
    context: dict[str, Any] = {}
    if admin:
        context = {
            "users": await services.db.users.list(),
            "roles": VALID_ROLES,
            "notice": await anyio.to_thread.run_sync(read_notice, request.app.state["config"]),
            "taggers": _taggers(request),
        }
    return render(
        request,
        "ui/settings.html",
        title="Settings",
        config=config,
        choices=CHOICES,
        switches=SWITCHES,
        metrics=metrics,
        is_admin=admin,
        username=user.username,
        **context,
    )


# ------------------------------------------------------------------------------------------ search

SEARCH_TYPES = ("jobid", "jobname", "projectid", "arrayjobid", "username", "name")


def _jobs(**params: str) -> Redirect:
    return Redirect("/monitoring/jobs/?" + urlencode(params), status_code=302)


@get("/search", name="ui-search")
async def search(request: Request[Any, Any, Any], searchId: str = "") -> Template | Redirect:
    user = current_user(request)
    services = request.app.state["services"]
    text = searchId.strip()
    if not text:
        return error_page(
            request, 400, "nothing to search for: type a job id, a user, a project or a job name"
        )
    parts = [p.strip() for p in text.split(":")]
    if len(parts) > 2:
        return error_page(request, 400, f"malformed search {text!r}: use 'type:query'")
    manager = user.has_any_role("admin", "support", "manager")
    if len(parts) == 2:
        kind, query = parts[0].lower(), parts[1]
        if kind not in SEARCH_TYPES:
            return error_page(
                request,
                400,
                f"unknown search type {parts[0]!r} (jobId, jobName, projectId, arrayJobId, username, name)",
            )
        if not query:
            return error_page(request, 400, f"empty search for {parts[0]!r}")
        if kind == "jobid":
            return _jobs(jobId=query)
        if kind == "jobname":
            return _jobs(jobName=query)
        if kind == "projectid":
            return _jobs(project=query, projectMatch="eq")
        if kind == "arrayjobid":
            if not query.isdigit():
                return error_page(request, 400, f"an array job id is a number, not {query!r}")
            return _jobs(arrayJobId=query)
        if not manager:
            return error_page(request, 403, "searching users needs the role manager, support or admin")
        if kind == "username":
            return Redirect("/monitoring/users/?" + urlencode({"user": query}), status_code=302)
        names = await _users_named(services, query)
        if not names:
            return error_page(request, 404, f"no user is named {query!r}")
        return Redirect("/monitoring/users/?" + urlencode([("user", n) for n in names]), status_code=302)
    # A bare term: jobId → username → name → project → job name.
    if text.isdigit():
        return _jobs(jobId=text)
    if manager:
        if await services.db.users.get(text) is not None:
            return Redirect(f"/monitoring/user/{quote(text, safe='')}", status_code=302)
        names = await _users_named(services, text)
        if names:
            return Redirect(f"/monitoring/user/{quote(names[0], safe='')}", status_code=302)
    if await services.db.jobs.count(user, [JobFilter(project=StringInput(eq=text))]):
        return _jobs(project=text, projectMatch="eq")
    return _jobs(jobName=text, startTime="last30d")


async def _users_named(services: Any, part: str) -> list[str]:
    needle = part.lower()
    return [u.username for u in await services.db.users.list() if needle in (u.name or "").lower()]

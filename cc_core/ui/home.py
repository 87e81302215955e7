"""``/``: the start page (contract §14) — every cluster with its running and total jobs (as far as the
visitor may see them, §6.2) and links into the job list, the node views and the status page; above it the
notice an admin set in the settings (``var/notice.txt``, written by ``POST /config/notice/``).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, get
from litestar.response import Template

from cc_core import __version__
from cc_core.api.auth import current_user
from cc_core.api.config_api import notice_path
from cc_core.ui.base import render


def read_notice(config: Any) -> str:
    """The notice text, '' when none is set (or it cannot be read: the start page must still open)."""
    try:
        return notice_path(config).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError):
        return ""


@get("/", name="ui-home")
async def home(request: Request[Any, Any, Any]) -> Template:
    user = current_user(request)
    services = request.app.state["services"]
    rows = await services.db.stats.jobs_statistics(
        user, [], fields=("totalJobs", "runningJobs"), group_by="CLUSTER"
    )
    counts = {r.id: r for r in rows}
    rows = [
        {
            "name": name,
            "running": counts[name].running_jobs if name in counts else 0,
            "total": counts[name].total_jobs if name in counts else 0,
        }
        for name in services.clusters.names()
    ]
    notice = await anyio.to_thread.run_sync(read_notice, request.app.state["config"])
    return render(
        request,
        "index.html",  # the name plugins override (docs/plugins.md): the start page
        title="Home",
        clusters=services.clusters.names(),
        cluster_rows=rows,
        notice=notice,
        version=__version__,
        can_systems=user.has_any_role("admin", "support"),
        can_status=user.has_role("admin"),
    )

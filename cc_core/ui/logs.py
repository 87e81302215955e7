"""``/monitoring/logs``: the server's journal for admins (contract §14). The page is a frame; ``logs.js``
asks ``GET /frontend/logs/`` (since, lines, level, search) and shows the entries as text, or the
endpoint's own message when it cannot answer (503 on hosts without ``journalctl``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.ui.base import render
from cc_core.ui.errors import role_denied


@get("/monitoring/logs", name="ui-logs")
async def logs_page(request: Request[Any, Any, Any]) -> Template:
    denied = role_denied(request, current_user(request), "admin")
    if denied is not None:
        return denied
    return render(request, "ui/logs.html", title="Logs")

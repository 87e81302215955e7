"""``/monitoring/tags/``: the tags the visitor may see (contract §6.4), grouped by type, with the number
of visible jobs each, linking to ``/monitoring/jobs/?tag=<id>``. Admins get a delete button per tag
(GraphQL ``removeTagFromList``, called by ``tags.js``; the server checks the scope rule again)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from litestar import Request, get
from litestar.response import Template

from cc_core.api.auth import current_user
from cc_core.ui.base import render


@get("/monitoring/tags/", name="ui-tags")
async def tag_list(request: Request[Any, Any, Any]) -> Template:
    user = current_user(request)
    counted = await request.app.state["services"].db.tags.counts(user)
    ordered = sorted(counted, key=lambda tc: (tc[0].type, tc[0].name, tc[0].scope))
    groups = [(t, list(items)) for t, items in groupby(ordered, key=lambda tc: tc[0].type)]
    return render(
        request,
        "ui/tags.html",
        title="Tags",
        groups=groups,
        can_delete=user.has_role("admin"),
        username=user.username,
    )

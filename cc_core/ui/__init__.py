"""The web UI's pages: Litestar controllers rendering the Jinja templates in ``web/templates``.

One module per page family (``jobs`` — the job list, ``job`` — one job, …); `ui_routers` collects
their handlers for `cc_core.app.create_app`. Pages live in upstream's "secured" route group (session or
API token; a visitor without either gets the login form). See docs/web-ui.md for the conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router

from cc_core.ui import format as fmt
from cc_core.ui.base import chrome, json_script
from cc_core.web import NavItem


def ui_routers() -> list[Router]:
    from cc_core.ui.job import job_view
    from cc_core.ui.jobs import job_count, job_list

    routers = [Router(path="/", route_handlers=[job_list, job_count, job_view], include_in_schema=False)]
    routers.extend(_more_routers())
    return routers


def _more_routers() -> list[Router]:
    """The remaining page families (home, statistics lists, user, tags, settings, search, nodes, …)."""
    from cc_core.ui.analysis import analysis_page
    from cc_core.ui.home import home
    from cc_core.ui.logs import logs_page
    from cc_core.ui.monitoring import projects_list, user_view, users_list
    from cc_core.ui.settings import search, settings_page
    from cc_core.ui.status import dashboard, status_detail, status_page
    from cc_core.ui.systems import node_list, node_list_sub, node_view, systems_overview
    from cc_core.ui.tags import tag_list

    handlers = [home, users_list, projects_list, user_view, tag_list, settings_page, search]
    handlers += [systems_overview, node_list, node_list_sub, node_view, logs_page]
    handlers += [status_page, status_detail, dashboard, analysis_page]
    return [Router(path="/", route_handlers=handlers, include_in_schema=False)]


def template_globals(engine: Any, nav_items: Sequence[NavItem]) -> None:
    """Install the layout's globals and the UI's filters on the Jinja environment."""
    env = engine.engine
    env.globals.update(chrome=lambda request: chrome(request, nav_items), json_script=json_script)
    env.filters.update(fmt.FILTERS)

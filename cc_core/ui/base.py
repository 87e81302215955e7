"""What every page shares: the navigation for the visitor's roles, the visitor, the merged UI config,
and `render` for page controllers.

The layout (``base.html``) calls the Jinja global ``chrome(request, nav_items)`` itself, so every page —
also the login and error pages rendered outside `cc_core.ui` — gets the same header without the
handlers passing anything. Page controllers add their own context with `render`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from litestar import MediaType, Request
from litestar.response import Template

from cc_core.auth.user import Role, User
from cc_core.web import NavItem

_USER_KEY = "cc_user"


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One header entry: a link, or a dropdown of links (``children``; one per cluster)."""

    title: str
    icon: str
    href: str = ""
    children: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Chrome:
    """What the layout needs: the visitor (None on public pages), their nav entries and clusters."""

    user: User | None = None
    nav: list[NavEntry] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)

    @property
    def auth_level(self) -> int:
        return int(self.user.auth_level) if self.user else 0

    def has_role(self, *roles: str) -> bool:
        return bool(self.user and self.user.has_any_role(*roles))


def request_user(request: Request[Any, Any, Any]) -> User | None:
    """The user the route guard resolved, else the session's (public pages), else None."""
    user = request.scope.get(_USER_KEY)  # type: ignore[call-overload]
    if isinstance(user, User):
        return user
    try:
        from cc_core.api.auth import session_user

        return session_user(request)
    except Exception:  # no auth state (bare test apps): a public page without a visitor
        return None


def cluster_names(request: Request[Any, Any, Any]) -> list[str]:
    services = request.app.state.get("services")
    return services.clusters.names() if services is not None else []


def _role_level(name: str) -> int:
    try:
        return int(Role[name.upper()])
    except KeyError:
        return int(Role.ADMIN)  # an unknown min_role shows the entry to nobody but admins


def navigation(
    user: User | None, clusters: Sequence[str], plugin_items: Sequence[NavItem] = ()
) -> list[NavEntry]:
    """Upstream's header (``Header.svelte``, contract §6.2) for ``user``'s auth level, then the plugins'
    entries whose ``min_role`` the user reaches."""
    if user is None:
        return []
    level = int(user.auth_level)
    per_cluster = lambda prefix: tuple((c, f"{prefix}{c}") for c in clusters)  # noqa: E731
    out: list[NavEntry] = []
    if level >= Role.USER:
        out.append(NavEntry("My Jobs", "bar-chart-line", href=f"/monitoring/user/{user.username}"))
        out.append(NavEntry("Jobs", "card-list", href="/monitoring/jobs/"))
        out.append(NavEntry("Tags", "tags", href="/monitoring/tags/"))
    if level >= Role.MANAGER:
        out.append(NavEntry("Users", "people", href="/monitoring/users/"))
        out.append(NavEntry("Projects", "folder", href="/monitoring/projects/"))
    if level >= Role.SUPPORT:
        out.append(NavEntry("Nodes", "hdd-rack", children=per_cluster("/monitoring/systems/")))
        out.append(NavEntry("Analysis", "graph-up", children=per_cluster("/monitoring/analysis/")))
    if level >= Role.ADMIN:
        out.append(NavEntry("Status", "cpu", children=per_cluster("/monitoring/status/")))
        out.append(NavEntry("Logs", "journal-text", href="/monitoring/logs"))
    for item in plugin_items:
        if level >= _role_level(item.min_role):
            out.append(NavEntry(item.title, item.icon, href=item.href))
    return out


def chrome(request: Request[Any, Any, Any], plugin_items: Sequence[NavItem] = ()) -> Chrome:
    """The layout's data for this request (cached on the request: the layout may ask twice)."""
    cached = request.scope.get("cc_chrome")  # type: ignore[call-overload]
    if isinstance(cached, Chrome):
        return cached
    user = request_user(request)
    clusters = cluster_names(request)
    result = Chrome(user=user, nav=navigation(user, clusters, plugin_items), clusters=clusters)
    request.scope["cc_chrome"] = result  # type: ignore[literal-required]
    return result


# ------------------------------------------------------------------------------------------ UI config

#: Upstream's UI defaults for keys our config section does not carry.
EXTRA_DEFAULTS: dict[str, Any] = {
    "jobList_jobsPerPage": 50,
    "jobList_hideShortRunningJobs": False,
    "nodeList_nodesPerPage": 10,
    "plotConfiguration_colorblindMode": False,
}

_SNAKE = re.compile(r"_([a-z])")


def _camel(snake: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), snake)


def flatten_ui_config(ui: Any) -> dict[str, Any]:
    """The config's ``ui`` section (`cc_core.config.UIConfig`) as upstream's flat keys
    (``jobList_usePaging``, ``metricConfig_jobListMetrics:<cluster>[:<subcluster>]`` …), the names the
    per-user settings use."""
    import msgspec

    out: dict[str, Any] = dict(EXTRA_DEFAULTS)
    for attr in ("job_list", "node_list", "job_view", "plot_configuration"):
        section = getattr(ui, attr)
        for f in msgspec.structs.fields(section):
            out[f"{_camel(attr)}_{_camel(f.name)}"] = getattr(section, f.name)
    keys = ("job_list_metrics", "job_view_plot_metrics", "job_view_table_metrics")
    mc = ui.metric_config
    for key in keys:
        if getattr(mc, key) is not None:
            out[f"metricConfig_{_camel(key)}"] = getattr(mc, key)
    for cluster in mc.clusters:
        for key in keys:
            if getattr(cluster, key) is not None:
                out[f"metricConfig_{_camel(key)}:{cluster.name}"] = getattr(cluster, key)
        for sub in cluster.sub_clusters:
            for key in keys:
                if getattr(sub, key) is not None:
                    out[f"metricConfig_{_camel(key)}:{cluster.name}:{sub.name}"] = getattr(sub, key)
    return out


async def ui_config(request: Request[Any, Any, Any], user: User | None) -> dict[str, Any]:
    """The site's UI config with the user's own settings over it (upstream ``GetUIConfig``)."""
    config = request.app.state["config"]
    defaults = flatten_ui_config(config.ui)
    defaults["emission-constant"] = config.main.emission_constant
    services = request.app.state.get("services")
    if services is None or user is None:
        return defaults
    return await services.db.user_config.get(user.username, defaults=defaults)


def metric_selection(
    config: Mapping[str, Any], key: str, cluster: str, subcluster: str = ""
) -> list[str] | None:
    """The most specific ``metricConfig_<key>[:cluster[:subcluster]]`` setting, None when unset."""
    for name in (
        f"metricConfig_{key}:{cluster}:{subcluster}",
        f"metricConfig_{key}:{cluster}",
        f"metricConfig_{key}",
    ):
        value = config.get(name)
        if isinstance(value, list):
            return [str(v) for v in value]
    return None


# ------------------------------------------------------------------------------------------ rendering


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A full page (``template`` extends ``base.html``) or, for an htmx request, whatever the template
    renders for ``partial`` (templates check ``is_htmx``)."""
    return Template(
        template,
        context={"title": title, "status_code": status_code, "is_htmx": is_htmx(request), **context},
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def json_script(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&`` escaped so no text
    from a job can close the element."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

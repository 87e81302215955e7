"""Every REST router of the core (contract §1.2, §1.3, §1.5), for `cc_core.app.create_app` to mount.

The node-state and metric-store routes come from their own modules; all of them share the route-group
authentication of `cc_core.api.auth`.
"""

from __future__ import annotations

from litestar import Router

from cc_core.api.clusters import cluster_router
from cc_core.api.config_api import config_router
from cc_core.api.frontend import frontend_router
from cc_core.api.jobs import job_routers
from cc_core.api.login import login_router
from cc_core.api.users import user_routers


def rest_routers() -> list[Router]:
    return [
        *job_routers(),
        cluster_router(),
        *user_routers(),
        config_router(),
        frontend_router(),
        login_router(),
    ]

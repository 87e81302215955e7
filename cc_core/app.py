"""`create_app(config)`: the Litestar application. The only place plugins are loaded for the server."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Router, get
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from cc_core import __version__
from cc_core.api.auth import AuthGroup, GroupAuthMiddleware, TokenAuth, admin_api_guard, group_opt
from cc_core.api.errors import db_error_handler, http_exception_handler, internal_error_handler
from cc_core.api.fastpath import FastPathPlugin
from cc_core.api.jobs import FastStartJob, FastStopJob
from cc_core.api.nodestate import nodestate_router
from cc_core.api.openapi import API_SECURITY, SKIP_COMPRESSION
from cc_core.api.openapi import components as openapi_components
from cc_core.api.openapi import errors as api_errors
from cc_core.api.routes import rest_routers
from cc_core.api.security import CSRFMiddleware, security_headers_hook
from cc_core.auth.service import LoginService
from cc_core.background import BackgroundWork
from cc_core.config import Config, load_config
from cc_core.context import PluginContext
from cc_core.db.errors import DBError
from cc_core.graphql import GraphQLServices, GraphQLSettings, graphql_router
from cc_core.graphql.engine import GraphQLEngine
from cc_core.graphql.nodelist import DatabaseNodeLister
from cc_core.lifecycle import sync_archive_meta
from cc_core.metrics.errors import MetricDataError
from cc_core.natsapi import NatsAPI
from cc_core.plugins import PluginRegistry, describe, make_plugin_manager
from cc_core.scheduler import LifecycleSink, SchedulerService, build_schedulers
from cc_core.services import CoreServices
from cc_core.tasks import create_task_manager
from cc_core.ui import template_globals, ui_routers
from cc_core.web import STATIC_DIR, TEMPLATE_DIR, VENDOR_DIR, Contribution, NavItem

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 60.0


@get(
    "/healthz",
    media_type=MediaType.JSON,
    include_in_schema=False,
    sync_to_thread=False,
    opt={**group_opt(AuthGroup.PUBLIC), SKIP_COMPRESSION: True},
)
def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP. Needs no authentication (for load balancers)."""
    return {"status": "ok", "version": __version__}


@get(
    "/api/plugins",
    guards=[admin_api_guard],
    sync_to_thread=False,
    tags=["admin"],
    security=API_SECURITY,
    responses=api_errors(401, 403),
)
def list_plugins(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Installed plugins with their distribution, version, registered kinds and implemented hooks, and
    which kinds the running configuration uses. Needs a token with roles admin and api."""
    registry: PluginRegistry = request.app.state["registry"]
    enabled: dict[str, str] = request.app.state["enabled_kinds"]
    listing = describe(registry)
    for entry in listing:
        entry["enabled"] = sorted(
            path for path, kind in enabled.items() if any(kind in ks for ks in entry["kinds"].values())
        )
    return listing


def _enabled_kinds(config: Config) -> dict[str, str]:
    kinds = {"$.archive": str(config.archive.get("kind", "file"))}
    if config.metric_store is not None:
        from cc_core.config import INTERNAL_METRIC_STORE_KIND

        kinds["$.metric-store"] = INTERNAL_METRIC_STORE_KIND
    for i, entry in enumerate(config.metric_store_external or []):
        kinds[f"$.metric-store-external[{i}]"] = str(entry.get("kind", "cc-metric-store"))
    for key in config.auth:
        if key != "jwts":
            kinds[f"$.auth.{key}"] = key
    for i, entry in enumerate(config.schedulers):
        kinds[f"$.schedulers[{i}]"] = str(entry.get("kind"))
    return kinds


def _resync_archive_after_tag_deletes(services: CoreServices, background: BackgroundWork) -> None:
    """A deleted tag must also leave the ``meta.json`` of archived jobs; rewritten in the background."""
    from cc_core.lifecycle import resync_archive_meta

    def on_deleted(job_ids: list[int]) -> None:
        background.spawn(
            resync_archive_meta(services, job_ids), name=f"archive tag resync ({len(job_ids)} jobs)"
        )

    services.db.tags.on_deleted.append(on_deleted)


def create_app(
    config: Config | None = None,
    *,
    registry: PluginRegistry | None = None,
    dev: bool = False,
) -> Litestar:
    """Build the application for ``config`` (defaults when None) with the installed plugins."""
    config = config if config is not None else load_config(None)
    registry = registry if registry is not None else make_plugin_manager()
    config.validate_plugins(registry)
    context = PluginContext(config, registry, services={"dev": dev})
    background = BackgroundWork()
    # A missing or unusable SESSION_KEY stops here, before anything opens.
    LoginService.session_codec(config)
    services = CoreServices.open(config, registry, context)
    try:
        login = LoginService.from_config(config, registry, context, users=services.db.users)
    except BaseException:
        services.db.close_sync()
        raise
    context.services["background"] = background
    try:
        tasks = create_task_manager(services)
    except BaseException:
        services.db.close_sync()
        raise
    nats_api = NatsAPI.from_services(services)
    context.services.update(tasks=tasks, nats_api=nats_api)
    _resync_archive_after_tag_deletes(services, background)
    # Batch-system integrations (`schedulers[]`): built now so a bad entry stops startup, run in the lifespan.
    try:
        schedulers = SchedulerService(build_schedulers(config, registry, context), LifecycleSink(services))
    except BaseException:
        services.db.close_sync()
        raise

    contributions: list[Any] = []
    for result in registry.hook.litestar_plugins(context=context):
        contributions.extend(result or ())
    template_dirs = [d for c in contributions if isinstance(c, Contribution) for d in c.template_dirs]
    nav_items: list[NavItem] = [n for c in contributions if isinstance(c, Contribution) for n in c.nav_items]
    login_buttons = [b for c in contributions if isinstance(c, Contribution) for b in c.login_buttons]

    public = group_opt(AuthGroup.PUBLIC)
    static_routers = [
        create_static_files_router(
            path="/static/vendor",
            directories=[VENDOR_DIR],
            include_in_schema=False,
            opt=public,
            # Third-party assets change only with a new release: a day in the browser cache (web UI FCP).
            cache_control=CacheControlHeader(max_age=86400),
        ),
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False, opt=public
        ),
    ]
    for c in contributions:
        if isinstance(c, Contribution):
            for prefix, directory in c.static_dirs.items():
                static_routers.append(
                    create_static_files_router(
                        path=f"/static/{prefix.strip('/')}",
                        directories=[directory],
                        include_in_schema=False,
                        opt=public,
                    )
                )

    template_config = TemplateConfig(
        directory=[*template_dirs, TEMPLATE_DIR],
        engine=JinjaTemplateEngine,
        engine_callback=lambda engine: (
            engine.engine.globals.update(nav_items=nav_items, version=__version__),
            template_globals(engine, nav_items),
        ),
    )

    openapi_config = None
    if dev:
        openapi_config = OpenAPIConfig(
            title="ClusterCockpit REST API",
            version=__version__,
            description="Upstream cc-backend's REST API (contract §1); errors are `{status, error}`.",
            components=openapi_components(),
            use_handler_docstrings=True,
            openapi_router=Router(path="/swagger", route_handlers=[], opt=public, include_in_schema=False),
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                    css_url="/static/vendor/swagger-ui/swagger-ui.css",
                    standalone_preset_js_url="/static/vendor/swagger-ui/swagger-ui-standalone-preset.js",
                    favicon="",  # Litestar's default loads its badge from a CDN
                )
            ],
        )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        log.info("ClusterCockpit %s starting", __version__)
        try:
            await services.start()
        except Exception as e:
            log.error("cannot start: %s", e)
            await services.close()
            raise
        await tasks.start()
        if nats_api is not None:
            await nats_api.start()
        schedulers.start()
        try:
            yield
        finally:
            await schedulers.stop()
            if nats_api is not None:
                await nats_api.close()
            await tasks.stop()
            cancelled = await background.drain(SHUTDOWN_TIMEOUT)
            await services.close()
            log.info("shutdown complete (%d background task(s) cancelled)", cancelled)

    graphql_engine = GraphQLEngine(dev=dev)
    state = State(
        {
            "config": config,
            "registry": registry,
            "context": context,
            "background": background,
            "services": services,
            "schedulers": schedulers,
            "graphql_services": GraphQLServices.from_database(
                services.db,
                clusters=services.clusters,
                metrics=services.metrics,
                node_list=DatabaseNodeLister(services.db.nodes, services.clusters),
                archive_meta=functools.partial(sync_archive_meta, services),
                settings=GraphQLSettings(
                    resampling_resolutions=tuple(config.main.resampling.resolutions)
                    if config.main.resampling
                    else ()
                ),
            ),
            "token_auth": TokenAuth.from_config(config, users=services.db.users),
            "login": login,
            "login_buttons": login_buttons,
            "session_codec": login.sessions,
            "graphql_engine": graphql_engine,
            "enabled_kinds": _enabled_kinds(config),
            "dev": dev,
        }
    )
    api = Router(path="/", route_handlers=[list_plugins])
    return Litestar(
        route_handlers=[
            healthz,
            api,
            *rest_routers(),
            *ui_routers(),
            nodestate_router(),
            graphql_router(dev=dev, engine=graphql_engine),
            *static_routers,
        ],
        # Accepted start_job/stop_job requests (every adapter, every job) are answered before Litestar's
        # request machinery; everything else of theirs goes to the routes (cc_core.api.fastpath).
        # Plugins add their own the same way.
        plugins=[*contributions, FastPathPlugin(FastStartJob(), FastStopJob())],
        # Upstream's route groups (contract §1.1): the middleware decides by the matched route's group.
        middleware=[DefineMiddleware(CSRFMiddleware), DefineMiddleware(GroupAuthMiddleware)],
        before_send=[security_headers_hook(config.main.trusted_proxies)],
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET", "POST", "HEAD", "OPTIONS"],
            allow_headers=["X-Requested-With", "Content-Type", "Authorization", "Origin"],
            allow_credentials=False,
        ),
        compression_config=CompressionConfig(
            backend="gzip",
            gzip_compress_level=5,
            minimum_size=500,
            # Routes whose answers are always tiny skip the compressor (Litestar builds a gzip stream for
            # every response before it knows the size: ~15 % of start_job's server time).
            exclude_opt_key=SKIP_COMPRESSION,
        ),
        exception_handlers={
            HTTPException: http_exception_handler,
            DBError: db_error_handler,
            MetricDataError: db_error_handler,
            Exception: internal_error_handler,
        },
        template_config=template_config,
        openapi_config=openapi_config,
        lifespan=[lifespan],
        state=state,
        request_max_body_size=config.main.max_body_size,
        # Logging is the CLI's (`--loglevel`, `--logdate`). Litestar's default config would reset the root
        # logger to INFO with its own queue handler at start-up, so `--loglevel warn` printed every job.
        logging_config=None,
        debug=False,
    )

"""``clustercockpit metric-store serve``: the embedded store as its own server, a drop-in for Go
cc-metric-store.

It reads the same ``config.json`` as the main server: the ``metric-store`` section (retention,
checkpoints, NATS subscriptions), the ``nats`` section, and the ``archive`` section only to load the
clusters' ``cluster.json`` files (which metrics exist, their intervals and aggregations). It answers
cc-metric-store's API — ``GET /api/query``, ``POST /api/write``, ``POST /api/free``, ``GET /api/debug``,
``GET /api/healthcheck`` — so the main server's ``metric-store-external`` client (ours or Go
cc-backend's) can use it, and a large site can run one store per cluster.

Authentication as cc-metric-store: every request needs ``Authorization: Bearer <JWT>`` signed with the
site's Ed25519 key (``JWT_PUBLIC_KEY``, as the main server); roles are not checked. Retention runs
without the running-jobs exclusion (no job database here).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from cc_core.config import Config
    from cc_core.plugins import PluginRegistry

log = logging.getLogger(__name__)

DEFAULT_ADDR = "localhost:8082"  # cc-metric-store's default


def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A valid Ed25519 JWT in ``Authorization: Bearer`` (or ``X-Auth-Token``); roles are not checked."""
    connection.app.state["token_auth"].user_from(connection)


def create_store_app(config: Config, registry: PluginRegistry | None = None) -> Litestar:
    """The standalone metric-store app for a loaded ``config`` (plugins validated on the way)."""
    from litestar import Litestar, MediaType, get
    from litestar.datastructures import State
    from litestar.exceptions import HTTPException

    from cc_core.api.auth import TokenAuth
    from cc_core.api.errors import http_exception_handler, internal_error_handler
    from cc_core.config import ConfigError
    from cc_core.context import PluginContext
    from cc_core.plugins import make_plugin_manager
    from cc_core.services import ClusterCatalog

    from .api import ingest_handlers, query_handlers
    from .backend import InternalStore

    registry = registry if registry is not None else make_plugin_manager()
    config.validate_plugins(registry)
    section = config.plugin_configs.get("$.metric-store")
    if section is None:
        raise ConfigError("the configuration has no `metric-store` section", file=config.source)
    catalog = ClusterCatalog()
    minimum = config.main.resampling.minimum_points if config.main.resampling else 1000
    context = PluginContext(
        config,
        registry,
        services={"clusters": catalog, "nats_config": config.nats, "resampling_minimum_points": minimum},
    )
    holder: dict[str, InternalStore] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from cc_core.archive import load_clusters, open_backend

        archive = open_backend(dict(config.archive), registry=registry, context=context, source=config.source)
        try:
            await archive.init()
            catalog.by_name = await load_clusters(archive)
        finally:
            await archive.close()
        log.info("metric store: clusters %s", ", ".join(catalog.names()) or "none")
        store = InternalStore(section, context)
        await store.start()
        holder["store"] = store
        try:
            yield
        finally:
            holder.pop("store", None)
            await store.close()

    @get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def get_store() -> InternalStore | None:
        return holder.get("store")

    guards = [token_guard]
    return Litestar(
        route_handlers=[healthz, *ingest_handlers(get_store, guards), *query_handlers(get_store, guards)],
        exception_handlers={HTTPException: http_exception_handler, Exception: internal_error_handler},
        lifespan=[lifespan],
        state=State({"token_auth": TokenAuth.from_config(config), "context": context}),
        request_max_body_size=config.main.max_body_size,
        # Logging as the CLI set it up (--loglevel): Litestar's default queue handler would lose the
        # last records (the final checkpoint) when uvicorn re-raises SIGTERM after shutdown.
        logging_config=None,
        debug=False,
    )


@click.group("metric-store")
def metric_store_group() -> None:
    """The metric store (cc-metric-store compatible) as its own server."""


@metric_store_group.command("serve")
@click.option("--addr", default=DEFAULT_ADDR, show_default=True, help="Listen address host:port.")
@click.pass_context
def serve(ctx: click.Context, addr: str) -> None:
    """Run the metric store with cc-metric-store's HTTP API (query, write, free, debug, healthcheck)."""
    import uvicorn

    from cc_core.cli.server import split_addr
    from cc_core.cli.state import state

    st = state(ctx)
    config = st.config()
    config.secret("JWT_PUBLIC_KEY", required_for="to verify the Bearer tokens of clients")
    app = create_store_app(config, st.registry())
    host, port = split_addr(addr)
    click.echo(f"metric store listening on http://{host}:{port}/")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level={"debug": "debug", "info": "info"}.get(st.loglevel, "warning"),
        timeout_graceful_shutdown=60,
        server_header=False,
    )

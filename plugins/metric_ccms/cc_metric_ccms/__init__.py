"""cc-metric-store for ClusterCockpit: the embedded store (default), standalone server and HTTP client.

Kinds: ``cc-metric-store-internal`` (the ``metric-store`` section) and ``cc-metric-store``
(``metric-store-external`` entries). Routes: ``/api/write``, ``/api/free``, ``/api/debug`` when the
embedded store is configured. Commands: ``clustercockpit metric-store serve``, ``clustercockpit cleanup-checkpoints``. Importing this module is
cheap; backends, routes and commands load when their hook is called.
"""

from __future__ import annotations

from typing import Any

from cc_core.hookspecs import hookimpl


@hookimpl
def register_metric_backends(register):  # type: ignore[no-untyped-def]
    from cc_metric_ccms.backend import InternalStore
    from cc_metric_ccms.client import ExternalStore

    register(InternalStore)
    register(ExternalStore)


@hookimpl
def litestar_plugins(context):  # type: ignore[no-untyped-def]
    """The embedded store's ingest routes, behind the metric-store guard (contract §1.1, §1.4)."""
    if context.section("$.metric-store") is None:
        return None
    from cc_core.api.auth import metric_store_guard
    from cc_core.api.fastpath import FastPathPlugin
    from cc_core.web import Contribution
    from cc_metric_ccms.api import ingest_handlers
    from cc_metric_ccms.backend import SERVICE_NAME
    from cc_metric_ccms.fastwrite import FastWrite

    def get_store() -> Any:
        return context.services.get(SERVICE_NAME)

    # The routes answer every request; FastWrite answers accepted `/api/write` bodies before Litestar's
    # request machinery and leaves everything else to the routes (see cc_metric_ccms.fastwrite).
    return [
        Contribution(route_handlers=ingest_handlers(get_store, [metric_store_guard])),
        FastPathPlugin(FastWrite(get_store)),
    ]


@hookimpl
def register_cli_commands(cli):  # type: ignore[no-untyped-def]
    from cc_metric_ccms.cleanup_cli import cleanup_checkpoints
    from cc_metric_ccms.server import metric_store_group

    cli.add_command(metric_store_group)
    cli.add_command(cleanup_checkpoints)

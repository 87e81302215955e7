"""cc-metric-store for ClusterCockpit: the embedded store (default), standalone server and HTTP client.

Kinds: ``cc-metric-store-internal`` (the ``metric-store`` section) and ``cc-metric-store``
(``metric-store-external`` entries). Importing this module is cheap; backends load on registration.
"""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_metric_backends(register):  # type: ignore[no-untyped-def]
    from cc_metric_ccms.config import ExternalStore, InternalStore

    register(InternalStore)
    register(ExternalStore)

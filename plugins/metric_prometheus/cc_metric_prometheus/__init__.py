"""Prometheus for ClusterCockpit (kind ``prometheus``). Importing this module is cheap; the class loads on registration."""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_metric_backends(register):  # type: ignore[no-untyped-def]
    from cc_metric_prometheus.backend import PrometheusBackend

    register(PrometheusBackend)

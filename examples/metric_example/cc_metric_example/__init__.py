"""A worked example of a ClusterCockpit plugin: a metric backend (kind ``example-csv``) that reads series
from CSV files. Importing this module is cheap; the backend class loads only when registered."""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_metric_backends(register):  # type: ignore[no-untyped-def]
    from cc_metric_example.backend import CSVBackend

    register(CSVBackend)

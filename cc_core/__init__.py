"""ClusterCockpit for Python: the core (config, plugin system, database, APIs, web UI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clustercockpit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The version of the job-archive layout and of upstream's DB schema we are wire-compatible with.
ARCHIVE_VERSION = 3
UPSTREAM_DB_VERSION = 11

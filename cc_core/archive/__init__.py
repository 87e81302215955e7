"""The job archive: layout, file formats and the base class of archive backends (contract §3).

Backends are plugins (``archive-fs`` → kind ``file``, ``archive-s3`` → kind ``s3``); this package holds
what they share. `open_backend` builds one from an ``archive`` config section, the way the app and the
``clustercockpit archive`` commands do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cc_core.archive.errors import (
    ArchiveAccessError,
    ArchiveError,
    ArchiveFormatError,
    ArchiveVersionError,
    ClusterNotFoundError,
    JobNotFoundError,
)
from cc_core.archive.layout import (
    CLUSTER_FILE,
    DATA_FILE,
    DATA_GZ_FILE,
    GZIP_THRESHOLD,
    META_FILE,
    VERSION,
    VERSION_FILE,
    job_dir,
    job_dir_of,
    parse_job_dir,
)

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.interfaces import ArchiveBackend
    from cc_core.plugins import PluginRegistry
    from cc_core.schema.cluster import Cluster

__all__ = [
    "CLUSTER_FILE",
    "DATA_FILE",
    "DATA_GZ_FILE",
    "GZIP_THRESHOLD",
    "META_FILE",
    "VERSION",
    "VERSION_FILE",
    "ArchiveAccessError",
    "ArchiveError",
    "ArchiveFormatError",
    "ArchiveVersionError",
    "ClusterNotFoundError",
    "JobNotFoundError",
    "job_dir",
    "job_dir_of",
    "load_clusters",
    "open_backend",
    "parse_job_dir",
]


def open_backend(
    section: dict[str, Any],
    *,
    registry: PluginRegistry | None = None,
    context: PluginContext | None = None,
    source: str = "<archive config>",
    validate: bool = False,
) -> ArchiveBackend:
    """An (uninitialised) backend for an ``archive``-style section (``{"kind": "file", "path": …}``).

    The keys the core owns (``kind``, ``compression``, ``retention``) are stripped before the backend's
    ``Config`` validates the rest; errors are `cc_core.config.ConfigError` naming ``source`` and the key.
    Call ``await backend.init()`` before use.
    """
    from cc_core.config import CORE_ARCHIVE_KEYS, ConfigError, _convert_plugin
    from cc_core.plugins import make_plugin_manager

    if not isinstance(section, dict):
        raise ConfigError("an archive configuration must be a JSON object", file=source)
    reg = registry if registry is not None else make_plugin_manager()
    kind = section.get("kind", "file")
    if not isinstance(kind, str):
        raise ConfigError("expected a string", file=source, path="$.kind")
    cls = reg.resolve("archive", kind, path="$.kind", file=source)
    settings = {k: v for k, v in section.items() if k not in CORE_ARCHIVE_KEYS}
    config = _convert_plugin(cls, settings, "$", source)
    backend = cls(config, context)
    backend.validate = validate
    return backend


async def load_clusters(backend: ArchiveBackend) -> dict[str, Cluster]:
    """Every cluster of the archive, derived (contract §3.5), by name; errors name the cluster file."""
    from cc_core.schema.cluster import ClusterConfigError

    out: dict[str, Cluster] = {}
    for name in await backend.get_clusters():
        cluster = await backend.load_cluster_config(name)
        try:
            out[name] = cluster.derive(source=f"{name}/cluster.json")
        except ClusterConfigError as e:
            raise ArchiveFormatError(f"{name}/cluster.json", str(e).split(": ", 1)[-1]) from None
    return out

"""File-system job archive for ClusterCockpit (``"archive": {"kind": "file", "path": "./var/job-archive"}``).

The version-3 directory layout of upstream cc-backend, read and written unchanged. Importing this module
is cheap: the backend class is imported when the plugin registers it.
"""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_archive_backends(register):  # type: ignore[no-untyped-def]
    from cc_archive_fs.backend import FsArchive

    register(FsArchive)

"""Archive errors: every one names where (job directory, object key or file) and what went wrong.

``str(error)`` is ``"<path>: <problem>"``, ready for a CLI line or a log entry, so callers never need a
traceback to tell the user which job is broken.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """A problem with the job archive at ``path`` (a file path, ``s3://bucket/key``, or the archive root)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class ArchiveVersionError(ArchiveError):
    """``version.txt`` is missing from a non-empty archive, unreadable, or not the supported version."""


class JobNotFoundError(ArchiveError):
    """The job (its ``meta.json``) or its data file is not in the archive."""


class ClusterNotFoundError(ArchiveError):
    """The cluster has no ``cluster.json`` in the archive."""


class ArchiveFormatError(ArchiveError):
    """A file exists but cannot be used: corrupt gzip, truncated or invalid JSON, schema violation."""


class ArchiveAccessError(ArchiveError):
    """The storage refused or failed: permission denied, unreachable endpoint, I/O error."""

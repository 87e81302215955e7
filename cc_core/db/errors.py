"""Typed errors of the database layer.

Every error carries ``status_code``, the HTTP status upstream answers for that situation, so the REST
and GraphQL layers can map them without a table of their own (`except DBError as e: status =
e.status_code`). Messages never contain SQL and are safe to show to the client that sent the input.
"""

from __future__ import annotations


class DBError(Exception):
    """Base of all errors raised by `cc_core.db`."""

    status_code: int = 500


# --------------------------------------------------------------------------------------------------
# Schema / migrations


class SchemaError(DBError):
    """The database file is not usable at this program version; the message says what to run."""

    status_code = 500


class SchemaOutdatedError(SchemaError):
    """The database needs ``clustercockpit migrate-db`` before it can be served."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer ClusterCockpit; this version must not touch it."""


class SchemaDirtyError(SchemaError):
    """golang-migrate marked the database dirty (an upstream migration failed half-way)."""


class NotAClusterCockpitDatabase(SchemaError):
    """The file has tables, but none of ClusterCockpit's version tables."""


class MigrationError(SchemaError):
    """A migration (or revert) cannot be applied; the database is unchanged."""


# --------------------------------------------------------------------------------------------------
# Bad input (400)


class InvalidInputError(DBError, ValueError):
    """A filter, order, page or value that cannot be turned into a query (HTTP 400)."""

    status_code = 400


class InvalidStateError(InvalidInputError):
    """A job state that is not one of upstream's twelve."""


class InvalidPageError(InvalidInputError):
    """``page``/``itemsPerPage`` not positive (``itemsPerPage = -1`` means all)."""


class InvalidTimeRangeError(InvalidInputError):
    """A `TimeRange` with an unknown named range, or ``from`` after ``to``."""


class InvalidMetricNameError(InvalidInputError):
    """A metric or footprint key outside ``^[a-zA-Z0-9_]+$`` (it would end up in a JSON path)."""


class InvalidSortError(InvalidInputError):
    """An order field that is neither a sortable column nor a valid footprint key, or a bad direction."""


class InvalidFilterError(InvalidInputError):
    """Any other malformed filter value (non-numeric job id, unknown `shared` value, ...)."""


class InvalidStopTimeError(InvalidInputError):
    """stop_job with a stop time before the job's start time."""


# --------------------------------------------------------------------------------------------------
# Lookups, conflicts, permissions


class NotFoundError(DBError, LookupError):
    """The row does not exist or is not visible to the user (HTTP 404)."""

    status_code = 404


class JobNotFoundError(NotFoundError):
    pass


class TagNotFoundError(NotFoundError):
    pass


class UserNotFoundError(NotFoundError):
    pass


class NodeNotFoundError(NotFoundError):
    pass


class ConflictError(DBError):
    """The request contradicts what is stored (HTTP 422, as upstream answers these)."""

    status_code = 422


class DuplicateJobError(ConflictError):
    """start_job for a jobId+cluster that already started less than 24 h before (upstream's rule)."""

    def __init__(self, message: str, *, existing_id: int | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class JobAlreadyStoppedError(ConflictError):
    """stop_job for a job that is no longer running."""


class UserExistsError(ConflictError):
    pass


class UserUpdateError(ConflictError):
    """A role/project change upstream refuses (role already present, manager with projects, ...)."""


class TooManyJobsError(ConflictError):
    """An analysis query matched more jobs than it may process (upstream: 500 for footprints)."""


class PermissionDeniedError(DBError, PermissionError):
    """The user may not do this (unknown roles, foreign tag scope, admin-only tables) (HTTP 403)."""

    status_code = 403

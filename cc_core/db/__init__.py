"""The job database: schema, migrations and repositories (upstream cc-backend's ``internal/repository``).

Open it with `Database` (``Database.from_config(config)`` in the server): SQLite for a path in
``main.db``, PostgreSQL for a ``postgresql://`` URL. The repositories hang off the database object::

    db = Database.from_config(config)
    page = await db.jobs.list(user, [JobFilter(cluster=StringInput(eq="fritz"))], PageRequest(50, 1))
    stats = await db.stats.jobs_statistics(user, filters, group_by="USER", sort_by="TOTALCOREHOURS")

Every read takes the acting `cc_core.auth.user.User` and applies upstream's visibility rules;
internal callers pass `SYSTEM_USER`. Errors are `DBError` subclasses with an HTTP ``status_code``.
"""

from cc_core.db.engine import Database, resolve_url
from cc_core.db.errors import (
    ConflictError,
    DBError,
    DuplicateJobError,
    InvalidFilterError,
    InvalidInputError,
    InvalidMetricNameError,
    InvalidPageError,
    InvalidSortError,
    InvalidStateError,
    InvalidStopTimeError,
    InvalidTimeRangeError,
    JobAlreadyStoppedError,
    JobNotFoundError,
    MigrationError,
    NotAClusterCockpitDatabase,
    NotFoundError,
    PermissionDeniedError,
    SchemaDirtyError,
    SchemaError,
    SchemaOutdatedError,
    SchemaTooNewError,
    TagNotFoundError,
    TooManyJobsError,
    UserExistsError,
    UserNotFoundError,
    UserUpdateError,
)
from cc_core.db.filters import (
    FloatRange,
    IntRange,
    JobFilter,
    MetricStatItem,
    OrderByInput,
    PageRequest,
    StringInput,
    TimeRange,
)
from cc_core.db.jobs import SYSTEM_USER, JobPage, JobRepository
from cc_core.db.migrations import (
    CURRENT_VERSION,
    SchemaVersion,
    initialise_database,
    migrate,
    optimize,
    revert,
    schema_version,
)
from cc_core.db.nodes import Node, NodeFilter, NodeRepository, NodeStatesTimed, NodeStateUpdate
from cc_core.db.stats import (
    Footprints,
    HistoPoint,
    JobsStatistics,
    MetricHistogramSpec,
    MetricHistoPoint,
    MetricHistoPoints,
    StatsRepository,
)
from cc_core.db.tags import TagRepository
from cc_core.db.users import StoredUser, UserConfigRepository, UserRepository

__all__ = [
    "CURRENT_VERSION",
    "SYSTEM_USER",
    "ConflictError",
    "DBError",
    "Database",
    "DuplicateJobError",
    "FloatRange",
    "Footprints",
    "HistoPoint",
    "IntRange",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidMetricNameError",
    "InvalidPageError",
    "InvalidSortError",
    "InvalidStateError",
    "InvalidStopTimeError",
    "InvalidTimeRangeError",
    "JobAlreadyStoppedError",
    "JobFilter",
    "JobNotFoundError",
    "JobPage",
    "JobRepository",
    "JobsStatistics",
    "MetricHistoPoint",
    "MetricHistoPoints",
    "MetricHistogramSpec",
    "MetricStatItem",
    "MigrationError",
    "Node",
    "NodeFilter",
    "NodeRepository",
    "NodeStateUpdate",
    "NodeStatesTimed",
    "NotAClusterCockpitDatabase",
    "NotFoundError",
    "OrderByInput",
    "PageRequest",
    "PermissionDeniedError",
    "SchemaDirtyError",
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "SchemaVersion",
    "StatsRepository",
    "StoredUser",
    "StringInput",
    "TagNotFoundError",
    "TagRepository",
    "TimeRange",
    "TooManyJobsError",
    "UserConfigRepository",
    "UserExistsError",
    "UserNotFoundError",
    "UserRepository",
    "UserUpdateError",
    "initialise_database",
    "migrate",
    "optimize",
    "resolve_url",
    "revert",
    "schema_version",
]

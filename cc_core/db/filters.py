"""`JobFilter` and friends (GraphQL's inputs as msgspec structs) and their translation to SQL.

The structs mirror upstream's GraphQL inputs field for field (JSON names included), so the GraphQL
and REST layers can convert their input into them directly. Translation follows upstream's
``BuildWhereClause`` (internal/repository/jobQuery.go), with these deliberate differences:

* every value is a bound parameter — including ``shared`` and footprint keys, which upstream pastes
  into the SQL text; the only inlined values are job states taken from our own constant list (so
  SQLite can match the partial index ``WHERE job_state = 'running'``);
* bad input raises a typed `InvalidInputError` (upstream ignores unknown time ranges, returns no
  rows for a bad metric name, and panics on a bad sort field);
* ``LIKE`` patterns escape ``%`` and ``_`` in user input, and are case-insensitive on PostgreSQL too
  (ILIKE), as SQLite's LIKE is;
* ``duration`` filters and sorts by the *effective* duration (``now - start_time`` while running),
  the value jobs report.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Float, Integer, Text, bindparam, case, cast, func, literal_column, text
from sqlalchemy.sql.elements import ColumnElement, TextClause

from cc_core.auth.user import User
from cc_core.db import tables as T
from cc_core.db.errors import (
    InvalidFilterError,
    InvalidMetricNameError,
    InvalidPageError,
    InvalidSortError,
    InvalidStateError,
    InvalidTimeRangeError,
    PermissionDeniedError,
)
from cc_core.schema.job import JOB_STATES, SHARED_VALUES

METRIC_NAME_RE = re.compile(r"^[a-zA-Z0-9_]+$")


class _Input(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    pass


class StringInput(_Input):
    """Upstream's StringInput: only the first set field applies, in upstream's code order
    eq, neq, startsWith, endsWith, contains, in (the GraphQL schema lists them differently)."""

    eq: str | None = None
    neq: str | None = None
    contains: str | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    in_: list[str] | None = msgspec.field(default=None, name="in")


class IntRange(_Input):
    """Both > 0: BETWEEN; only ``from`` > 0: ≥; only ``to`` > 0: ≤; neither: no condition (upstream)."""

    from_: int = msgspec.field(default=0, name="from")
    to: int = 0


class FloatRange(_Input):
    """As `IntRange`, for floats."""

    from_: float = msgspec.field(default=0.0, name="from")
    to: float = 0.0


class TimeRange(_Input):
    """``from``/``to`` (RFC 3339 or epoch seconds), or a named ``range`` such as ``last24h``."""

    range: str | None = None
    from_: datetime | int | None = msgspec.field(default=None, name="from")
    to: datetime | int | None = None


class MetricStatItem(_Input):
    """A range on one footprint value; ``metricName`` is the footprint key (``flops_any_avg``)."""

    metric_name: str
    range: FloatRange


class JobFilter(_Input):
    """Upstream's GraphQL ``JobFilter``; a list of them is ANDed."""

    tags: list[int | str] | None = None
    db_id: list[int | str] | None = None
    job_id: StringInput | None = None
    array_job_id: int | None = None
    user: StringInput | None = None
    project: StringInput | None = None
    job_name: StringInput | None = None
    cluster: StringInput | None = None
    sub_cluster: StringInput | None = None
    partition: StringInput | None = None
    duration: IntRange | None = None
    energy: FloatRange | None = None
    num_nodes: IntRange | None = None
    num_accelerators: IntRange | None = None
    num_hwthreads: IntRange | None = msgspec.field(default=None, name="numHWThreads")
    start_time: TimeRange | None = None
    state: list[str] | None = None
    metric_stats: list[MetricStatItem] | None = None
    shared: str | None = None
    schedule: str | None = None
    node: StringInput | None = None
    # Older upstream (and its UI): only jobs that started at least this many seconds ago.
    min_running_for: int | None = None


class OrderByInput(_Input):
    """``type == "col"`` sorts by a job column, anything else by a footprint key."""

    field: str
    type: str = "col"
    order: str = "ASC"


class PageRequest(_Input):
    """``itemsPerPage = -1``: everything."""

    items_per_page: int = 50
    page: int = 1


# --------------------------------------------------------------------------------------------------
# Validation helpers


NAMED_RANGES: dict[str, int] = {
    "last6h": 6 * 3600,
    "last24h": 24 * 3600,
    "last7d": 7 * 86400,
    "last30d": 30 * 86400,
}
_RANGE_RE = re.compile(r"^last(\d{1,6})(m|h|d)$")
_RANGE_UNIT = {"m": 60, "h": 3600, "d": 86400}


def named_range_seconds(name: str) -> int:
    """Seconds covered by ``last6h`` … ``last30d`` (also any ``last<N>m|h|d``)."""
    if name in NAMED_RANGES:
        return NAMED_RANGES[name]
    m = _RANGE_RE.match(name)
    if not m or int(m.group(1)) == 0:
        raise InvalidTimeRangeError(
            f"unknown time range {name!r} (use last6h, last24h, last7d, last30d or from/to)"
        )
    return int(m.group(1)) * _RANGE_UNIT[m.group(2)]


def _epoch(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTimeRangeError(f"invalid time {value!r}")
    return value


def check_metric_name(name: str) -> str:
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
        raise InvalidMetricNameError(f"invalid metric name {name!r} (allowed: letters, digits, '_')")
    return name


def check_states(states: Sequence[str]) -> list[str]:
    bad = [s for s in states if s not in JOB_STATES]
    if bad:
        raise InvalidStateError(f"invalid job state {bad[0]!r} (valid: {', '.join(JOB_STATES)})")
    return list(states)


_STATE_LITERALS: dict[str, ColumnElement[str]] = {s: literal_column(f"'{s}'", Text) for s in JOB_STATES}


def state_literal(state: str) -> ColumnElement[str]:
    """A job state as an SQL literal, taken from our constant list (never from the caller's string).

    SQLite uses a partial index only when the query spells the same literal as the index's WHERE.
    """
    return _STATE_LITERALS[state]


def _ints(values: Sequence[int | str], what: str) -> list[int]:
    out: list[int] = []
    for v in values:
        if isinstance(v, bool):
            raise InvalidFilterError(f"invalid {what} {v!r}")
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise InvalidFilterError(f"invalid {what} {v!r} (expected an integer)") from None
    return out


def check_page(page: PageRequest | None) -> tuple[int | None, int]:
    """(limit, offset); limit ``None`` = all. Rejects non-positive values except itemsPerPage = -1."""
    if page is None:
        return 50, 0
    if page.items_per_page == -1:
        return None, 0
    if page.items_per_page < 1:
        raise InvalidPageError(f"itemsPerPage must be ≥ 1 (or -1 for all), got {page.items_per_page}")
    if page.page < 1:
        raise InvalidPageError(f"page must be ≥ 1, got {page.page}")
    return page.items_per_page, (page.page - 1) * page.items_per_page


# --------------------------------------------------------------------------------------------------
# SQL text with bound parameters
#
# Conditions are built as SQL text fragments with named parameters (``:p0``, ``:p1`` …) rather than
# SQLAlchemy expression trees: a job-list request then costs ~20 µs of Python to translate instead
# of ~150 µs (building the tree, and SQLAlchemy's cache key for it, for every request). Only
# identifiers from our own whitelists and constants from our own tables go into the text; every
# value is a parameter. `Sql.clause()` hands the same fragment to SQLAlchemy statements.


class Sql:
    """SQL conditions (ANDed) with their named parameters, for one dialect."""

    __slots__ = ("dialect", "params", "parts", "pg")

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.pg = dialect == "postgresql"
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        """A placeholder for ``value``."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def binds(self, values: Sequence[Any]) -> str:
        return ", ".join(self.bind(v) for v in values)

    def add(self, condition: str | None) -> None:
        if condition is not None:
            self.parts.append(condition)

    @property
    def where(self) -> str:
        return " AND ".join(self.parts) if self.parts else "1 = 1"

    def clause(self) -> TextClause:
        """The conditions as one SQLAlchemy clause (for Core statements)."""
        return text(self.where).bindparams(**self.params) if self.params else text(self.where)

    def driver_sql(self, sql: str) -> str:
        """``sql`` in the driver's placeholder style (sqlite3 takes ``:name`` itself)."""
        return _PLACEHOLDER.sub(r"%(\1)s", sql) if self.pg else sql

    # -- dialect-specific pieces

    def json_value(self, column: str, key: str) -> str:
        """The top-level ``key`` of a JSON column (the key is a parameter, never pasted)."""
        if self.pg:
            return f"({column} ->> {self.bind(key)})"
        return f"json_extract({column}, {self.bind('$.' + key)})"

    def json_number(self, column: str, key: str) -> str:
        value = self.json_value(column, key)
        return f"CAST({value} AS DOUBLE PRECISION)" if self.pg else value

    def json_valid(self, column: str) -> str:
        return f"{column} IS NOT NULL" if self.pg else f"json_valid({column})"

    def like(self, column: str, how: str, value: str) -> str:
        """Case-insensitive LIKE (as SQLite's) with ``%``, ``_`` and ``/`` in the value escaped."""
        escaped = value.replace("/", "//").replace("%", "/%").replace("_", "/_")
        pattern = {"contains": f"%{escaped}%", "startsWith": f"{escaped}%", "endsWith": f"%{escaped}"}[how]
        op = "ILIKE" if self.pg else "LIKE"
        return f"{column} {op} {self.bind(pattern)} ESCAPE '/'"

    def effective_duration(self, now: int) -> str:
        return f"(CASE WHEN job.job_state = 'running' THEN {self.bind(now)} - job.start_time ELSE job.duration END)"


_PLACEHOLDER = re.compile(r":(p\d+)\b")


class SqlDialect:
    """SQLAlchemy expressions that differ between the dialects (statistics' aggregates)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg = name == "postgresql"

    def json_number(self, column: ColumnElement[Any], key: str) -> ColumnElement[float]:
        if self.pg:
            return cast(column.op("->>", return_type=Text)(bindparam(None, key, type_=Text)), Float)
        return func.json_extract(column, bindparam(None, "$." + key, type_=Text))

    def json_valid(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        return column.is_not(None) if self.pg else func.json_valid(column) == 1

    def trunc_int(self, a: ColumnElement[Any]) -> ColumnElement[int]:
        """CAST(x AS INTEGER) truncates on SQLite but rounds on PostgreSQL; truncate on both."""
        if self.pg:
            return cast(func.trunc(a), Integer)
        return cast(a, Integer)


def effective_duration(now: int) -> ColumnElement[int]:
    """A running job's duration is now - start_time; the stored one only for finished jobs."""
    j = T.job.c
    return case(
        (j.job_state == state_literal("running"), bindparam(None, now, type_=Integer) - j.start_time),
        else_=j.duration,
    )


# --------------------------------------------------------------------------------------------------
# Conditions


def string_condition(q: Sql, column: str, cond: StringInput) -> str | None:
    """StringInput on a column (SQL expression of ours); upstream's precedence."""
    if cond.eq is not None:
        return f"{column} = {q.bind(cond.eq)}"
    if cond.neq is not None:
        return f"{column} != {q.bind(cond.neq)}"
    if cond.starts_with is not None:
        return q.like(column, "startsWith", cond.starts_with)
    if cond.ends_with is not None:
        return q.like(column, "endsWith", cond.ends_with)
    if cond.contains is not None:
        return q.like(column, "contains", cond.contains)
    if cond.in_ is not None:
        return f"{column} IN ({q.binds(cond.in_)})" if cond.in_ else "1 = 0"
    return None


def _job_id(q: Sql, cond: StringInput) -> str | None:
    if cond.eq is not None:
        return f"job.job_id = {q.bind(_ints([cond.eq], 'jobId')[0])}"
    if cond.neq is not None:
        return f"job.job_id != {q.bind(_ints([cond.neq], 'jobId')[0])}"
    if cond.in_ is not None:
        ids = _ints(cond.in_, "jobId")
        return f"job.job_id IN ({q.binds(ids)})" if ids else "1 = 0"
    return string_condition(q, "CAST(job.job_id AS TEXT)", cond)


def _applies(cond: IntRange | FloatRange) -> bool:
    return cond.from_ > 0 or cond.to > 0


def _range(q: Sql, column: str, cond: IntRange | FloatRange) -> str | None:
    lo, hi = cond.from_, cond.to
    if lo > 0 and hi > 0:
        return f"{column} BETWEEN {q.bind(lo)} AND {q.bind(hi)}"
    if lo > 0:
        return f"{column} >= {q.bind(lo)}"
    if hi > 0:
        return f"{column} <= {q.bind(hi)}"
    return None


def _time(q: Sql, cond: TimeRange, now: int) -> str | None:
    lo = _epoch(cond.from_) if cond.from_ is not None else None
    hi = _epoch(cond.to) if cond.to is not None else None
    if lo is not None and hi is not None:
        if lo > hi:
            raise InvalidTimeRangeError(f"startTime: from ({lo}) is after to ({hi})")
        return f"job.start_time BETWEEN {q.bind(lo)} AND {q.bind(hi)}"
    if lo is not None:
        return f"job.start_time >= {q.bind(lo)}"
    if hi is not None:
        return f"job.start_time <= {q.bind(hi)}"
    if cond.range:
        return f"job.start_time >= {q.bind(now - named_range_seconds(cond.range))}"
    return None


def resource_condition(q: Sql, cond: StringInput, key: str = "hostname") -> str | None:
    """Some element of ``job.resources`` has ``key`` matching ``cond``."""
    if q.pg:
        inner = string_condition(q, f"(r.value ->> {q.bind(key)})", cond)
        source = "jsonb_array_elements(job.resources) AS r(value)"
    else:
        inner = string_condition(q, f"json_extract(r.value, {q.bind('$.' + key)})", cond)
        source = "json_each(job.resources) AS r"
    return None if inner is None else f"EXISTS (SELECT 1 FROM {source} WHERE {inner})"  # noqa: S608


def _meta(q: Sql, cond: StringInput, key: str) -> str | None:
    inner = string_condition(q, q.json_value("job.meta_data", key), cond)
    return None if inner is None else f"{q.json_valid('job.meta_data')} AND {inner}"


def add_filters(q: Sql, filters: Sequence[JobFilter] | JobFilter | None, now: int) -> None:
    """Add the conditions of a list of JobFilters (ANDed) to ``q``; validates every value."""
    if filters is None:
        return
    if isinstance(filters, JobFilter):
        filters = [filters]
    for f in filters:
        if not isinstance(f, JobFilter):
            raise InvalidFilterError(f"expected a JobFilter, got {type(f).__name__}")
        if f.db_id is not None:
            ids = _ints(f.db_id, "dbId")
            q.add(f"job.id IN ({q.binds(ids)})" if ids else "1 = 0")
        if f.cluster is not None:
            q.add(string_condition(q, "job.cluster", f.cluster))
        if f.sub_cluster is not None:
            q.add(string_condition(q, "job.subcluster", f.sub_cluster))
        if f.partition is not None:
            q.add(string_condition(q, "job.cluster_partition", f.partition))
        if f.state is not None:
            states = check_states(f.state)
            if len(states) == 1:  # a literal from our list, so SQLite can use the partial indexes
                q.add(f"job.job_state = '{JOB_STATES[JOB_STATES.index(states[0])]}'")
            else:
                q.add(f"job.job_state IN ({q.binds(states)})" if states else "1 = 0")
        if f.shared is not None:
            if f.shared not in SHARED_VALUES:
                raise InvalidFilterError(
                    f"invalid shared value {f.shared!r} (valid: {', '.join(SHARED_VALUES)})"
                )
            q.add(f"job.shared = {q.bind(f.shared)}")
        if f.project is not None:
            q.add(string_condition(q, "job.project", f.project))
        if f.user is not None:
            q.add(string_condition(q, "job.hpc_user", f.user))
        if f.num_nodes is not None:
            q.add(_range(q, "job.num_nodes", f.num_nodes))
        if f.num_accelerators is not None:
            q.add(_range(q, "job.num_acc", f.num_accelerators))
        if f.num_hwthreads is not None:
            q.add(_range(q, "job.num_hwthreads", f.num_hwthreads))
        if f.array_job_id is not None:
            q.add(f"job.array_job_id = {q.bind(_ints([f.array_job_id], 'arrayJobId')[0])}")
        if f.start_time is not None:
            q.add(_time(q, f.start_time, now))
        if f.duration is not None and _applies(f.duration):
            q.add(_range(q, q.effective_duration(now), f.duration))
        if f.energy is not None:
            q.add(_range(q, "job.energy", f.energy))
        if f.tags is not None:
            tag_ids = _ints(f.tags, "tag id")  # jobs with at least one of the tags (upstream's OR)
            q.add(
                f"job.id IN (SELECT jobtag.job_id FROM jobtag WHERE jobtag.tag_id IN ({q.binds(tag_ids)}))"  # noqa: S608
                if tag_ids
                else "1 = 0"
            )
        if f.job_id is not None:
            q.add(_job_id(q, f.job_id))
        for item in f.metric_stats or ():
            key = check_metric_name(item.metric_name)
            if _applies(item.range):
                q.add(q.json_valid("job.footprint"))
                q.add(_range(q, q.json_number("job.footprint", key), item.range))
        if f.node is not None:
            q.add(resource_condition(q, f.node))
        if f.job_name is not None:
            q.add(_meta(q, f.job_name, "jobName"))
        if f.schedule is not None:
            if f.schedule == "interactive":
                q.add(_meta(q, StringInput(eq="interactive"), "jobName"))
            elif f.schedule == "batch":
                q.add(_meta(q, StringInput(neq="interactive"), "jobName"))
            else:
                raise InvalidFilterError(f"invalid schedule {f.schedule!r} (interactive or batch)")
        if f.min_running_for is not None:
            q.add(f"job.start_time < {q.bind(now - _ints([f.min_running_for], 'minRunningFor')[0])}")


# --------------------------------------------------------------------------------------------------
# Visibility (contract §6.2)


def add_visibility(q: Sql, user: User | None) -> None:
    """Limit ``q`` to the jobs ``user`` may see.

    Pure API tokens (exactly role ``api``), admins and support see all; managers their projects' jobs
    and their own; users their own. Anything else is refused — there is no "no user" path.
    """
    if user is None:
        raise PermissionDeniedError("no user: job queries need an authenticated user")
    if user.is_pure_api or user.has_any_role("admin", "support"):
        return
    if user.has_role("manager"):
        if user.projects:
            q.add(
                f"(job.project IN ({q.binds(list(user.projects))}) OR job.hpc_user = {q.bind(user.username)})"
            )
        else:
            q.add(f"job.hpc_user = {q.bind(user.username)}")
        return
    if user.has_role("user"):
        q.add(f"job.hpc_user = {q.bind(user.username)}")
        return
    raise PermissionDeniedError("user has no or unknown roles")


def job_where(
    user: User | None,
    filters: Sequence[JobFilter] | JobFilter | None,
    dialect: str,
    *,
    now: int | None = None,
) -> Sql:
    """Visibility plus filters: what every read of the job table applies."""
    q = Sql(dialect)
    add_visibility(q, user)
    add_filters(q, filters, int(time.time()) if now is None else now)
    return q


def job_conditions(
    user: User | None,
    filters: Sequence[JobFilter] | JobFilter | None,
    dialect: str,
    *,
    now: int | None = None,
) -> list[ColumnElement[bool]]:
    """`job_where` as SQLAlchemy clauses, for Core statements (``.where(*conditions)``)."""
    q = job_where(user, filters, dialect, now=now)
    return [q.clause()] if q.parts else []


def visibility(user: User | None) -> ColumnElement[bool] | None:
    """Only the visibility part, as a clause (``None``: everything is visible)."""
    q = Sql("sqlite")  # visibility uses no dialect-specific SQL
    add_visibility(q, user)
    return q.clause() if q.parts else None


# --------------------------------------------------------------------------------------------------
# Ordering


SORT_COLUMNS: dict[str, str] = {
    "id": "id",
    "dbId": "id",
    "jobId": "job_id",
    "job_id": "job_id",
    "user": "hpc_user",
    "hpcUser": "hpc_user",
    "hpc_user": "hpc_user",
    "project": "project",
    "cluster": "cluster",
    "subCluster": "subcluster",
    "subcluster": "subcluster",
    "partition": "cluster_partition",
    "clusterPartition": "cluster_partition",
    "cluster_partition": "cluster_partition",
    "startTime": "start_time",
    "start_time": "start_time",
    "submitTime": "submit_time",
    "submit_time": "submit_time",
    "duration": "duration",
    "walltime": "walltime",
    "numNodes": "num_nodes",
    "num_nodes": "num_nodes",
    "numHWThreads": "num_hwthreads",
    "numHwthreads": "num_hwthreads",
    "num_hwthreads": "num_hwthreads",
    "numAcc": "num_acc",
    "numAccelerators": "num_acc",
    "num_acc": "num_acc",
    "energy": "energy",
    "arrayJobId": "array_job_id",
    "array_job_id": "array_job_id",
    "state": "job_state",
    "jobState": "job_state",
    "job_state": "job_state",
    "monitoringStatus": "monitoring_status",
    "monitoring_status": "monitoring_status",
    "shared": "shared",
    "smt": "smt",
}

DEFAULT_ORDER = OrderByInput(field="startTime", type="col", order="DESC")


def order_by(order: OrderByInput | None, q: Sql, *, now: int) -> str:
    """ORDER BY text for an OrderByInput (ties broken by db id); may add conditions to ``q``.

    Sorting by a footprint key keeps only jobs with a footprint, as upstream does. NULLs sort first
    ascending and last descending on both dialects (SQLite's order).
    """
    order = order or DEFAULT_ORDER
    direction = (order.order or "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise InvalidSortError(f"invalid sort direction {order.order!r} (ASC or DESC)")
    nullable = True
    if order.type == "col":
        name = SORT_COLUMNS.get(order.field)
        if name is None:
            raise InvalidSortError(
                f"cannot sort by {order.field!r} (sortable: {', '.join(sorted(set(SORT_COLUMNS.values())))})"
            )
        key = q.effective_duration(now) if name == "duration" else f"job.{name}"
        nullable = T.job.c[name].nullable
    else:
        field = check_metric_name(order.field)
        q.add(q.json_valid("job.footprint"))
        key = q.json_number("job.footprint", field)
    nulls = ""
    if q.pg and nullable:
        nulls = " NULLS LAST" if direction == "DESC" else " NULLS FIRST"
    return f"{key} {direction}{nulls}, job.id {direction}"

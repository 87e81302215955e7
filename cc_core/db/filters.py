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
from sqlalchemy import (
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

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


def state_literal(state: str) -> ColumnElement[str]:
    """A job state as an SQL literal, taken from our constant list (never from the caller's string).

    SQLite uses a partial index only when the query spells the same literal as the index's WHERE.
    """
    return literal_column(f"'{JOB_STATES[JOB_STATES.index(state)]}'", Text)


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
# Dialect-specific pieces


class SqlDialect:
    """The few expressions that differ between SQLite and PostgreSQL (JSON access, LIKE, casts)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg = name == "postgresql"

    def json_value(self, column: ColumnElement[Any], key: str) -> ColumnElement[Any]:
        """The value at top-level ``key`` of a JSON column (``key`` is bound, never pasted)."""
        if self.pg:
            return column.op("->>", return_type=Text)(bindparam(None, key, type_=Text))
        return func.json_extract(column, bindparam(None, "$." + key, type_=Text))

    def json_number(self, column: ColumnElement[Any], key: str) -> ColumnElement[float]:
        value = self.json_value(column, key)
        return cast(value, Float) if self.pg else value

    def json_valid(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        return column.is_not(None) if self.pg else func.json_valid(column) == 1

    def like(self, column: ColumnElement[Any], how: str, value: str) -> ColumnElement[bool]:
        """Case-insensitive LIKE with the user's ``%``/``_`` escaped (SQLite's LIKE is already ci)."""
        if how == "contains":
            return (
                column.icontains(value, autoescape=True)
                if self.pg
                else column.contains(value, autoescape=True)
            )
        if how == "startsWith":
            return (
                column.istartswith(value, autoescape=True)
                if self.pg
                else column.startswith(value, autoescape=True)
            )
        return (
            column.iendswith(value, autoescape=True) if self.pg else column.endswith(value, autoescape=True)
        )

    def resource_elements(self) -> Any:
        """The table of ``resources`` array elements of the (correlated) outer job row."""
        if self.pg:
            return func.jsonb_array_elements(T.job.c.resources).table_valued("value")
        return func.json_each(T.job.c.resources).table_valued("value")

    def element_value(self, elements: Any, key: str) -> ColumnElement[Any]:
        if self.pg:
            return elements.c.value.op("->>", return_type=Text)(bindparam(None, key, type_=Text))
        return func.json_extract(elements.c.value, bindparam(None, "$." + key, type_=Text))

    def int_div(self, a: ColumnElement[Any], b: int) -> ColumnElement[int]:
        """Integer division truncating toward zero, as SQLite's and Go's."""
        if self.pg:
            return func.trunc(cast(a, Float) / b).cast(Integer)
        return cast(a / b, Integer)

    def trunc_int(self, a: ColumnElement[Any]) -> ColumnElement[int]:
        """CAST(x AS INTEGER) truncates on SQLite but rounds on PostgreSQL; truncate on both."""
        if self.pg:
            return cast(func.trunc(a), Integer)
        return cast(a, Integer)


# --------------------------------------------------------------------------------------------------
# Conditions


def effective_duration(now: int) -> ColumnElement[int]:
    """A running job's duration is now - start_time; the stored one only for finished jobs."""
    j = T.job.c
    return case(
        (j.job_state == state_literal("running"), bindparam(None, now, type_=Integer) - j.start_time),
        else_=j.duration,
    )


def _string(column: ColumnElement[Any], cond: StringInput, d: SqlDialect) -> ColumnElement[bool] | None:
    if cond.eq is not None:
        return column == cond.eq
    if cond.neq is not None:
        return column != cond.neq
    if cond.starts_with is not None:
        return d.like(column, "startsWith", cond.starts_with)
    if cond.ends_with is not None:
        return d.like(column, "endsWith", cond.ends_with)
    if cond.contains is not None:
        return d.like(column, "contains", cond.contains)
    if cond.in_ is not None:
        if not cond.in_:
            return false()
        return column.in_(cond.in_)
    return None


def _job_id(cond: StringInput, d: SqlDialect) -> ColumnElement[bool] | None:
    col = T.job.c.job_id
    if cond.eq is not None:
        return col == _ints([cond.eq], "jobId")[0]
    if cond.neq is not None:
        return col != _ints([cond.neq], "jobId")[0]
    text_col = cast(col, Text)
    if cond.starts_with is not None:
        return d.like(text_col, "startsWith", cond.starts_with)
    if cond.ends_with is not None:
        return d.like(text_col, "endsWith", cond.ends_with)
    if cond.contains is not None:
        return d.like(text_col, "contains", cond.contains)
    if cond.in_ is not None:
        ids = _ints(cond.in_, "jobId")
        return col.in_(ids) if ids else false()
    return None


def _range(column: ColumnElement[Any], cond: IntRange | FloatRange) -> ColumnElement[bool] | None:
    lo, hi = cond.from_, cond.to
    if lo > 0 and hi > 0:
        return column.between(lo, hi)
    if lo > 0:
        return column >= lo
    if hi > 0:
        return column <= hi
    return None


def _time(cond: TimeRange, now: int) -> ColumnElement[bool] | None:
    col = T.job.c.start_time
    lo = _epoch(cond.from_) if cond.from_ is not None else None
    hi = _epoch(cond.to) if cond.to is not None else None
    if lo is not None and hi is not None:
        if lo > hi:
            raise InvalidTimeRangeError(f"startTime: from ({lo}) is after to ({hi})")
        return col.between(lo, hi)
    if lo is not None:
        return col >= lo
    if hi is not None:
        return col <= hi
    if cond.range:
        return col >= now - named_range_seconds(cond.range)
    return None


def _resources(cond: StringInput, d: SqlDialect, key: str = "hostname") -> ColumnElement[bool] | None:
    elements = d.resource_elements()
    inner = _string(d.element_value(elements, key), cond, d)
    if inner is None:
        return None
    return exists(select(literal(1)).select_from(elements).where(inner))


def _meta(cond: StringInput, d: SqlDialect, key: str) -> ColumnElement[bool] | None:
    value = d.json_value(T.job.c.meta_data, key)
    inner = _string(value, cond, d)
    if inner is None:
        return None
    return and_(d.json_valid(T.job.c.meta_data), inner)


def filter_conditions(
    filters: Sequence[JobFilter] | JobFilter | None, dialect: str, *, now: int | None = None
) -> list[ColumnElement[bool]]:
    """SQL conditions (to be ANDed) for a list of JobFilters; validates every value."""
    if filters is None:
        return []
    if isinstance(filters, JobFilter):
        filters = [filters]
    now = int(time.time()) if now is None else now
    d = SqlDialect(dialect)
    j = T.job.c
    out: list[ColumnElement[bool] | None] = []
    for f in filters:
        if not isinstance(f, JobFilter):
            raise InvalidFilterError(f"expected a JobFilter, got {type(f).__name__}")
        if f.db_id is not None:
            ids = _ints(f.db_id, "dbId")
            out.append(j.id.in_(ids) if ids else false())
        if f.cluster is not None:
            out.append(_string(j.cluster, f.cluster, d))
        if f.sub_cluster is not None:
            out.append(_string(j.subcluster, f.sub_cluster, d))
        if f.partition is not None:
            out.append(_string(j.cluster_partition, f.partition, d))
        if f.state is not None:
            states = check_states(f.state)
            if len(states) == 1:
                out.append(j.job_state == state_literal(states[0]))
            elif states:
                out.append(j.job_state.in_(states))
            else:
                out.append(false())
        if f.shared is not None:
            if f.shared not in SHARED_VALUES:
                raise InvalidFilterError(
                    f"invalid shared value {f.shared!r} (valid: {', '.join(SHARED_VALUES)})"
                )
            out.append(j.shared == f.shared)
        if f.project is not None:
            out.append(_string(j.project, f.project, d))
        if f.user is not None:
            out.append(_string(j.hpc_user, f.user, d))
        if f.num_nodes is not None:
            out.append(_range(j.num_nodes, f.num_nodes))
        if f.num_accelerators is not None:
            out.append(_range(j.num_acc, f.num_accelerators))
        if f.num_hwthreads is not None:
            out.append(_range(j.num_hwthreads, f.num_hwthreads))
        if f.array_job_id is not None:
            out.append(j.array_job_id == f.array_job_id)
        if f.start_time is not None:
            out.append(_time(f.start_time, now))
        if f.duration is not None:
            out.append(_range(effective_duration(now), f.duration))
        if f.energy is not None:
            out.append(_range(j.energy, f.energy))
        if f.tags is not None:
            tag_ids = _ints(f.tags, "tag id")
            if tag_ids:  # jobs with at least one of the tags (upstream's OR logic)
                out.append(j.id.in_(select(T.jobtag.c.job_id).where(T.jobtag.c.tag_id.in_(tag_ids))))
            else:
                out.append(false())
        if f.job_id is not None:
            out.append(_job_id(f.job_id, d))
        for item in f.metric_stats or ():
            key = check_metric_name(item.metric_name)
            cond = _range(d.json_number(j.footprint, key), item.range)
            if cond is not None:
                out.append(and_(d.json_valid(j.footprint), cond))
        if f.node is not None:
            out.append(_resources(f.node, d))
        if f.job_name is not None:
            out.append(_meta(f.job_name, d, "jobName"))
        if f.schedule is not None:
            if f.schedule == "interactive":
                out.append(_meta(StringInput(eq="interactive"), d, "jobName"))
            elif f.schedule == "batch":
                out.append(_meta(StringInput(neq="interactive"), d, "jobName"))
            else:
                raise InvalidFilterError(f"invalid schedule {f.schedule!r} (interactive or batch)")
        if f.min_running_for is not None:
            out.append(j.start_time < now - int(f.min_running_for))
    return [c for c in out if c is not None]


# --------------------------------------------------------------------------------------------------
# Visibility (contract §6.2)


def visibility(user: User | None) -> ColumnElement[bool] | None:
    """The condition limiting ``user`` to the jobs they may see; ``None`` = everything.

    Pure API tokens (exactly role ``api``), admins and support see all; managers their projects' jobs
    and their own; users their own. Anything else is refused — there is no "no user" path.
    """
    if user is None:
        raise PermissionDeniedError("no user: job queries need an authenticated user")
    if user.is_pure_api or user.has_any_role("admin", "support"):
        return None
    j = T.job.c
    if user.has_role("manager"):
        if user.projects:
            return or_(j.project.in_(list(user.projects)), j.hpc_user == user.username)
        return j.hpc_user == user.username
    if user.has_role("user"):
        return j.hpc_user == user.username
    raise PermissionDeniedError("user has no or unknown roles")


def job_conditions(
    user: User | None,
    filters: Sequence[JobFilter] | JobFilter | None,
    dialect: str,
    *,
    now: int | None = None,
) -> list[ColumnElement[bool]]:
    """Visibility plus filters: what every read of the job table applies."""
    conds = filter_conditions(filters, dialect, now=now)
    vis = visibility(user)
    if vis is not None:
        conds.insert(0, vis)
    return conds


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


def order_clauses(
    order: OrderByInput | None, dialect: str, *, now: int | None = None
) -> tuple[list[ColumnElement[Any]], list[ColumnElement[bool]]]:
    """(ORDER BY terms, extra conditions) for an OrderByInput; ties broken by the job's db id.

    Sorting by a footprint key keeps only jobs with a footprint, as upstream does.
    """
    order = order or DEFAULT_ORDER
    direction = (order.order or "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise InvalidSortError(f"invalid sort direction {order.order!r} (ASC or DESC)")
    desc = direction == "DESC"
    j = T.job.c
    extra: list[ColumnElement[bool]] = []
    if order.type == "col":
        name = SORT_COLUMNS.get(order.field)
        if name is None:
            raise InvalidSortError(
                f"cannot sort by {order.field!r} (sortable: {', '.join(sorted(set(SORT_COLUMNS.values())))})"
            )
        key: ColumnElement[Any] = (
            effective_duration(int(time.time()) if now is None else now) if name == "duration" else j[name]
        )
    else:
        d = SqlDialect(dialect)
        field = check_metric_name(order.field)
        key = d.json_number(j.footprint, field)
        extra.append(d.json_valid(j.footprint))
    term = key.desc() if desc else key.asc()
    if dialect == "postgresql" and (order.type != "col" or j[SORT_COLUMNS[order.field]].nullable):
        # SQLite sorts NULL as the smallest value; make PostgreSQL agree (where NULLs can occur).
        term = term.nulls_last() if desc else term.nulls_first()
    return [term, j.id.desc() if desc else j.id.asc()], extra

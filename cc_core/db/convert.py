"""A ``job`` row ↔ `cc_core.schema.Job`, with msgspec doing the JSON columns.

Rows are plain tuples in the order of `JOB_COLUMNS` (SQLAlchemy Core rows index like tuples), decoded
into `Job` structs in one pass: no ORM objects, no intermediate dicts. JSON columns are decoded with
typed msgspec decoders; a value that does not fit the type (hand-edited databases, old cc-backend
versions) falls back to a lenient decode instead of failing the whole page.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Select, Text, cast, select
from sqlalchemy.sql.elements import ColumnElement

from cc_core.db import tables as T
from cc_core.db.errors import InvalidInputError, InvalidStateError
from cc_core.schema.job import JOB_STATES, SHARED_VALUES, Job, Resource

_enc = msgspec.json.Encoder()
_dec_resources = msgspec.json.Decoder(list[Resource])
_dec_floats = msgspec.json.Decoder(dict[str, float])
_dec_strings = msgspec.json.Decoder(dict[str, str])
_dec_any = msgspec.json.Decoder()

# The columns every job query selects, in this order (meta_data only on request, it can be large).
JOB_COLUMN_NAMES: tuple[str, ...] = (
    "id",
    "job_id",
    "hpc_user",
    "project",
    "cluster",
    "subcluster",
    "start_time",
    "submit_time",
    "cluster_partition",
    "array_job_id",
    "num_nodes",
    "num_hwthreads",
    "num_acc",
    "shared",
    "monitoring_status",
    "smt",
    "job_state",
    "duration",
    "walltime",
    "resources",
    "footprint",
    "energy",
    "energy_footprint",
)
JSON_COLUMNS = frozenset({"resources", "footprint", "energy_footprint", "meta_data"})


@functools.cache
def job_select(dialect: str, with_metadata: bool = False) -> Select[Any]:
    """``SELECT <job columns> FROM job``, built once (statements are immutable; callers extend it)."""
    return select(*select_columns(dialect, with_metadata=with_metadata))


def select_columns(dialect: str, *, with_metadata: bool = False) -> list[ColumnElement[Any]]:
    """The job columns for a SELECT; JSONB is read as text on PostgreSQL (decoded by msgspec here)."""
    names = JOB_COLUMN_NAMES + (("meta_data",) if with_metadata else ())
    cols: list[ColumnElement[Any]] = []
    for n in names:
        c = T.job.c[n]
        if dialect == "postgresql" and n in JSON_COLUMNS:
            cols.append(cast(c, Text).label(n))
        else:
            cols.append(c)
    return cols


def json_text(dialect: str, column: Any) -> ColumnElement[Any]:
    """Any column for reading; a JSONB column as its text on PostgreSQL."""
    if dialect == "postgresql" and isinstance(column.type, T.JSONText):
        return cast(column, Text).label(column.name)
    return column


def json_column(dialect: str, name: str) -> ColumnElement[Any]:
    """A JSON column of ``job`` for reading: as text on PostgreSQL (jsonb), as is on SQLite."""
    c = T.job.c[name]
    return cast(c, Text).label(name) if dialect == "postgresql" else c


def encode_json(value: Any) -> str | None:
    """JSON text for a JSON column (``None`` stays SQL NULL)."""
    if value is None:
        return None
    return _enc.encode(value).decode()


def _decode_floats(raw: Any) -> dict[str, float] | None:
    if raw is None or raw == "" or raw == "null":
        return None
    try:
        return _dec_floats.decode(raw)
    except msgspec.DecodeError:  # nulls or strings in a hand-edited footprint: keep the numbers
        value = _dec_any.decode(raw)
    if not isinstance(value, dict):
        return None
    return {k: float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _decode_meta(raw: Any) -> dict[str, str] | None:
    if raw is None or raw == "" or raw == "null":
        return None
    try:
        return _dec_strings.decode(raw)
    except msgspec.DecodeError:  # non-string values: keep them, as JSON text
        value = _dec_any.decode(raw)
    if not isinstance(value, dict):
        return None
    return {k: v if isinstance(v, str) else _enc.encode(v).decode() for k, v in value.items()}


def _decode_resources(raw: Any) -> list[Resource]:
    if raw is None or raw == "":
        return []
    try:
        return _dec_resources.decode(raw)
    except msgspec.DecodeError:
        value = _dec_any.decode(raw)
        return msgspec.convert(value or [], list[Resource], strict=False)


def row_to_job(row: Sequence[Any], now: int | None = None) -> Job:
    """One row (in `JOB_COLUMN_NAMES` order, optionally + meta_data) → `Job`.

    Running jobs report ``duration = now - start_time`` (the stored value is only refreshed when the
    job stops), as upstream's scanJob does.
    """
    (
        id_,
        job_id,
        user,
        project,
        cluster,
        subcluster,
        start_time,
        submit_time,
        partition,
        array_job_id,
        num_nodes,
        num_hwthreads,
        num_acc,
        shared,
        monitoring_status,
        smt,
        state,
        duration,
        walltime,
        resources,
        footprint,
        energy,
        energy_footprint,
    ) = row[:23]
    if state == "running":
        duration = max(0, (int(time.time()) if now is None else now) - start_time)
    meta = _decode_meta(row[23]) if len(row) > 23 else None
    if _POSITIONAL:  # ~6× faster than keywords; used only while Job's field order is the one we know
        return Job(
            job_id,
            user,
            project,
            cluster,
            start_time,
            num_nodes,
            _decode_resources(resources),
            subcluster,
            partition or "",
            array_job_id or 0,
            num_hwthreads or 0,
            num_acc or 0,
            shared,
            monitoring_status,
            smt,
            walltime,
            0,
            state,
            submit_time or 0,
            duration,
            meta,
            None,
            energy or 0.0,
            _decode_floats(energy_footprint),
            _decode_floats(footprint),
            None,
            None,
            id_,
        )
    return Job(
        id=id_,
        job_id=job_id,
        user=user,
        project=project,
        cluster=cluster,
        sub_cluster=subcluster,
        start_time=start_time,
        submit_time=submit_time or 0,
        partition=partition or "",
        array_job_id=array_job_id or 0,
        num_nodes=num_nodes,
        num_hwthreads=num_hwthreads or 0,
        num_acc=num_acc or 0,
        shared=shared,
        monitoring_status=monitoring_status,
        smt=smt,
        job_state=state,
        duration=duration,
        walltime=walltime,
        resources=_decode_resources(resources),
        footprint=_decode_floats(footprint),
        energy=energy or 0.0,
        energy_footprint=_decode_floats(energy_footprint),
        meta_data=meta,
    )


# The field order of `Job` that the positional construction above assumes.
_POSITIONAL = Job.__struct_fields__ == (
    "job_id",
    "user",
    "project",
    "cluster",
    "start_time",
    "num_nodes",
    "resources",
    "sub_cluster",
    "partition",
    "array_job_id",
    "num_hwthreads",
    "num_acc",
    "shared",
    "monitoring_status",
    "smt",
    "walltime",
    "requested_memory",
    "job_state",
    "submit_time",
    "duration",
    "meta_data",
    "tags",
    "energy",
    "energy_footprint",
    "footprint",
    "concurrent_jobs",
    "statistics",
    "id",
)


def rows_to_jobs(rows: Sequence[Sequence[Any]], now: int | None = None) -> list[Job]:
    now = int(time.time()) if now is None else now
    return [row_to_job(r, now) for r in rows]


# Columns written by an insert, in this order (the id is assigned by the database or by bulk insert).
INSERT_COLUMNS: tuple[str, ...] = (
    "job_id",
    "hpc_user",
    "project",
    "cluster",
    "subcluster",
    "cluster_partition",
    "array_job_id",
    "num_nodes",
    "num_hwthreads",
    "num_acc",
    "shared",
    "monitoring_status",
    "smt",
    "job_state",
    "start_time",
    "submit_time",
    "duration",
    "walltime",
    "footprint",
    "energy",
    "energy_footprint",
    "resources",
    "meta_data",
)


def check_job(job: Job) -> None:
    """The checks the table's constraints would make, as typed errors instead of IntegrityError."""
    if job.job_state not in JOB_STATES:
        raise InvalidStateError(f"invalid job state {job.job_state!r} (valid: {', '.join(JOB_STATES)})")
    if job.shared not in SHARED_VALUES:
        raise InvalidInputError(f"invalid shared value {job.shared!r} (valid: {', '.join(SHARED_VALUES)})")
    if job.monitoring_status not in T.MONITORING_STATES:
        raise InvalidInputError(f"invalid monitoringStatus {job.monitoring_status!r} (valid: 0, 1, 2, 3)")
    if not job.cluster or not job.user:
        raise InvalidInputError("a job needs a cluster and a user")


def job_to_row(job: Job) -> tuple[Any, ...]:
    """`Job` → values in `INSERT_COLUMNS` order (JSON columns as text)."""
    return (
        job.job_id,
        job.user,
        job.project,
        job.cluster,
        job.sub_cluster,
        job.partition,
        job.array_job_id,
        job.num_nodes,
        job.num_hwthreads,
        job.num_acc,
        job.shared,
        job.monitoring_status,
        job.smt,
        job.job_state,
        job.start_time,
        job.submit_time,
        job.duration,
        job.walltime,
        _enc.encode(job.footprint).decode() if job.footprint is not None else None,
        job.energy,
        _enc.encode(job.energy_footprint).decode() if job.energy_footprint is not None else None,
        _enc.encode(job.resources).decode(),
        _enc.encode(job.meta_data).decode() if job.meta_data is not None else None,
    )

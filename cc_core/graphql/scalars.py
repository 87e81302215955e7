"""The custom scalars of upstream's schema: ``Time``, ``Any``, ``NullableFloat``, ``MetricScope``,
``JobState``, ``SchedulerState`` and ``MonitoringState``.

Each is a `typing.NewType` (what resolvers and types annotate) mapped to a strawberry scalar definition
in `SCALAR_MAP`, the way strawberry recommends (`StrawberryConfig.scalar_map`).

Wire formats follow upstream (gqlgen + cc-lib):

* ``Time`` is written as RFC 3339 in UTC (``2024-05-01T12:00:00Z``, fractional seconds only when non-zero,
  like Go's ``RFC3339Nano``); resolvers may return epoch seconds (what the database stores) or an aware
  `datetime`. Input must be an RFC 3339 date-time with an offset; it arrives as an aware `datetime`.
* ``NullableFloat`` is written with exactly two decimals and ``null`` for NaN (`floats.fixed2_raw`).
  Lists of it are normally numpy arrays that bypass per-element serialisation (`execution`).
* ``MetricScope`` and ``JobState`` accept only upstream's values (cc-lib's ``UnmarshalGQL`` checks them);
  ``SchedulerState`` and ``MonitoringState`` are checked against upstream's node state constants, where
  upstream accepts any string and then silently matches nothing.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from cc_core.graphql.floats import fixed2_raw
from cc_core.schema.job import JOB_STATES
from cc_core.schema.metrics import METRIC_SCOPES

__all__ = [
    "SCALAR_MAP",
    "AnyValue",
    "JobState",
    "MetricScope",
    "MonitoringState",
    "NullableFloat",
    "SchedulerState",
    "Time",
    "format_time",
    "parse_time",
]

Time = NewType("Time", datetime)
AnyValue = NewType("AnyValue", object)
NullableFloat = NewType("NullableFloat", float)
MetricScope = NewType("MetricScope", str)
JobState = NewType("JobState", str)
SchedulerState = NewType("SchedulerState", str)
MonitoringState = NewType("MonitoringState", str)

# cc-lib `schema.SchedulerState` / `schema.MonitoringState` constants.
SCHEDULER_STATES: tuple[str, ...] = ("allocated", "reserved", "idle", "mixed", "down", "unknown")
MONITORING_STATES: tuple[str, ...] = ("full", "partial", "failed")

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def format_time(value: Any) -> str:
    """RFC 3339 in UTC for epoch seconds (int/float) or a `datetime` (naive means UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return text + "Z"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Time cannot represent {value!r}: expected epoch seconds or a datetime")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"Time cannot represent {value!r}")
        if not value.is_integer():
            return format_time(datetime(1970, 1, 1) + timedelta(seconds=value))
        value = int(value)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def parse_time(value: Any) -> datetime:
    """An aware `datetime` from an RFC 3339 string; a `ValueError` that names the expected form otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"Time must be an RFC 3339 string such as 2024-05-01T12:00:00Z, got {value!r}")
    m = _RFC3339.fullmatch(value.strip())
    if m is None:
        raise ValueError(
            f"Time must be an RFC 3339 date-time with offset, such as 2024-05-01T12:00:00Z, got {value!r}"
        )
    year, month, day, hour, minute, second, fraction, z, sign, oh, om = m.groups()
    tz = UTC
    if not z:
        offset = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-offset if sign == "-" else offset)
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),  # a leap second reads as :59, as Go's parser normalises it
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as e:
        raise ValueError(f"Time {value!r} is not a valid date-time: {e}") from None


def _serialize_nullable_float(value: Any) -> Any:
    return fixed2_raw(value)


def _parse_nullable_float(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"NullableFloat must be a number or null, got {value!r}")
    return float(value)


def _enum_scalar(name: str, allowed: tuple[str, ...]) -> ScalarDefinition:
    allowed_set = frozenset(allowed)
    choices = ", ".join(allowed)

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, one of: {choices}; got {value!r}")
        if value not in allowed_set:
            raise ValueError(f"{value!r} is not a valid {name} (one of: {choices})")
        return value

    return strawberry.scalar(name=name, serialize=str, parse_value=parse)


def _identity(value: Any) -> Any:
    return value


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Time: strawberry.scalar(
        name="Time",
        description="A date-time in RFC 3339 format (UTC on output).",
        serialize=format_time,
        parse_value=parse_time,
    ),
    AnyValue: strawberry.scalar(
        name="Any",
        description="Any JSON value.",
        serialize=_identity,
        parse_value=_identity,
    ),
    NullableFloat: strawberry.scalar(
        name="NullableFloat",
        description="A float written with two decimals; null stands for NaN (a missing sample).",
        serialize=_serialize_nullable_float,
        parse_value=_parse_nullable_float,
    ),
    MetricScope: _enum_scalar("MetricScope", METRIC_SCOPES),
    JobState: _enum_scalar("JobState", JOB_STATES),
    SchedulerState: _enum_scalar("SchedulerState", SCHEDULER_STATES),
    MonitoringState: _enum_scalar("MonitoringState", MONITORING_STATES),
}

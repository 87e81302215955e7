"""The custom scalars: ``Time`` (RFC 3339 both ways), ``NullableFloat`` (2 decimals, NaN → null), and
the string scalars that only accept upstream's values — directly and through a query."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from cc_core.auth.user import User
from cc_core.graphql.scalars import SCALAR_MAP, NullableFloat, format_time, parse_time

from .conftest import FakeJobs, context_for, make_job, run


def test_time_is_written_as_rfc3339_utc() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert format_time(1_700_000_000.0) == "2023-11-14T22:13:20Z"
    assert format_time(1.5) == "1970-01-01T00:00:01.5Z"  # fractions only when there are some
    aware = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(aware) == "2024-05-01T12:00:00Z"
    assert format_time(datetime(2024, 5, 1, 12, 0, 0, 250000)) == "2024-05-01T12:00:00.25Z"
    with pytest.raises(TypeError):
        format_time("yesterday")
    with pytest.raises(TypeError):
        format_time(math.nan)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00.123456789z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00-00:30", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_time_parses_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed.tzinfo is not None
    assert parsed == expected


@pytest.mark.parametrize(
    "text",
    ["2024-05-01", "2024-05-01T12:00:00", "2024-05-01 12:00:00Z", "1714564800", "2024-13-01T00:00:00Z"],
)
def test_time_refuses_anything_else_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|not a valid date-time"):
        parse_time(text)


def test_nullable_float_serialises_with_two_decimals_and_null() -> None:
    serialize = SCALAR_MAP[NullableFloat].serialize
    assert serialize is not None
    enc = msgspec.json.encode
    assert (
        enc([serialize(1), serialize(2.5), serialize(-0.004), serialize(math.nan)])
        == b"[1.00,2.50,-0.00,null]"
    )
    parse = SCALAR_MAP[NullableFloat].parse_value
    assert parse is not None
    assert math.isnan(parse(None))
    assert parse(3) == 3.0
    with pytest.raises(ValueError, match="number or null"):
        parse("3")


def test_time_field_in_a_query(engine) -> None:  # type: ignore[no-untyped-def]
    ctx = context_for(jobs=FakeJobs(make_job(start_time=1_700_000_000)))
    status, body = run(engine, '{ job(id: "7") { startTime state } }', ctx)
    assert status == 200, body
    assert body["data"]["job"] == {"startTime": "2023-11-14T22:13:20Z", "state": "completed"}


def test_time_argument_must_be_rfc3339(engine) -> None:  # type: ignore[no-untyped-def]
    ctx = context_for(User("root", ["admin"]))
    query = 'query ($from: Time!) { clusterMetrics(cluster: "x", from: $from, to: "2024-01-01T00:00:00Z") { nodeCount } }'
    status, body = run(engine, query, ctx, variables={"from": "yesterday"})
    assert status == 422
    assert "RFC 3339" in body["errors"][0]["message"]
    status, body = run(
        engine,
        query.replace('"2024-01-01T00:00:00Z"', '"1.1.2024"'),
        ctx,
        variables={"from": "2024-01-01T00:00:00Z"},
    )
    assert status == 422
    assert "RFC 3339" in body["errors"][0]["message"]


def test_metric_scope_accepts_only_upstreams_scopes(engine) -> None:  # type: ignore[no-untyped-def]
    status, body = run(engine, '{ jobMetrics(id: "7", scopes: ["node", "rack"]) { name } }', context_for())
    assert status == 422
    assert "'rack' is not a valid MetricScope" in body["errors"][0]["message"]
    # A bare literal reads as its name, as gqlgen reads it (valid here, the job is just not found).
    status, body = run(
        engine, '{ jobMetrics(id: "7", scopes: [node, core]) { name } }', context_for(jobs=FakeJobs())
    )
    assert status == 200
    assert body["errors"][0]["message"] == "job 7 not found"


def test_job_state_accepts_only_upstreams_states(engine) -> None:  # type: ignore[no-untyped-def]
    status, body = run(engine, '{ jobs(filter: [{state: ["finished"]}]) { count } }', context_for())
    assert status == 422
    assert "'finished' is not a valid JobState" in body["errors"][0]["message"]
    assert "running" in body["errors"][0]["message"]  # the message lists the valid values

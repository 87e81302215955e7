"""Every JobFilter field against a brute-force evaluation of the same filter over the generated truth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import anyio
import pytest

from cc_core.db import (
    FloatRange,
    IntRange,
    InvalidFilterError,
    InvalidMetricNameError,
    InvalidStateError,
    InvalidTimeRangeError,
    JobFilter,
    MetricStatItem,
    PageRequest,
    StringInput,
    TimeRange,
)
from cc_core.schema.job import Job
from tests.db.conftest import ADMIN, NOW, Seeded

ALL = PageRequest(items_per_page=-1, page=1)


def _str(value: str | None, cond: StringInput) -> bool:
    """StringInput on one value, upstream's precedence; SQL NULL matches nothing."""
    if value is None:
        return False
    if cond.eq is not None:
        return value == cond.eq
    if cond.neq is not None:
        return value != cond.neq
    lv = value.lower()
    if cond.starts_with is not None:
        return lv.startswith(cond.starts_with.lower())
    if cond.ends_with is not None:
        return lv.endswith(cond.ends_with.lower())
    if cond.contains is not None:
        return cond.contains.lower() in lv
    if cond.in_ is not None:
        return value in cond.in_
    return True


def _range(value: float | None, lo: float, hi: float) -> bool:
    if lo > 0 and hi > 0:
        return value is not None and lo <= value <= hi
    if lo > 0:
        return value is not None and value >= lo
    if hi > 0:
        return value is not None and value <= hi
    return True


def job_name(j: Job) -> str | None:
    return (j.meta_data or {}).get("jobName")


Case = tuple[str, JobFilter, Callable[[Job], bool]]

T30 = NOW - 30 * 86400
CASES: list[Case] = [
    ("cluster eq", JobFilter(cluster=StringInput(eq="alex")), lambda j: j.cluster == "alex"),
    ("cluster neq", JobFilter(cluster=StringInput(neq="alex")), lambda j: j.cluster != "alex"),
    (
        "cluster in",
        JobFilter(cluster=StringInput(in_=["alex", "woody"])),
        lambda j: j.cluster in ("alex", "woody"),
    ),
    ("cluster in empty", JobFilter(cluster=StringInput(in_=[])), lambda j: False),
    (
        "subcluster startsWith",
        JobFilter(sub_cluster=StringInput(starts_with="A")),
        lambda j: j.sub_cluster.startswith("a"),
    ),
    (
        "partition endsWith",
        JobFilter(partition=StringInput(ends_with="1tb")),
        lambda j: j.partition.endswith("1tb"),
    ),
    ("user contains", JobFilter(user=StringInput(contains="U00")), lambda j: "u00" in j.user),
    ("user eq", JobFilter(user=StringInput(eq="u0007")), lambda j: j.user == "u0007"),
    (
        "project startsWith",
        JobFilter(project=StringInput(starts_with="p01")),
        lambda j: j.project.startswith("p01"),
    ),
    (
        "precedence eq wins",
        JobFilter(project=StringInput(eq="p001", contains="zzz", in_=["p002"])),
        lambda j: j.project == "p001",
    ),
    (
        "precedence startsWith over contains",
        JobFilter(user=StringInput(contains="zzz", starts_with="u01")),
        lambda j: j.user.startswith("u01"),
    ),
    (
        "underscore is literal",
        JobFilter(job_name=StringInput(contains="_")),
        lambda j: "_" in (job_name(j) or ""),
    ),
    ("percent literal", JobFilter(user=StringInput(starts_with="%")), lambda j: False),
    ("jobName eq", JobFilter(job_name=StringInput(eq="train")), lambda j: job_name(j) == "train"),
    (
        "jobName contains",
        JobFilter(job_name=StringInput(contains="RUN")),
        lambda j: "run" in (job_name(j) or ""),
    ),
    (
        "jobName in",
        JobFilter(job_name=StringInput(in_=["relax", "bench"])),
        lambda j: job_name(j) in ("relax", "bench"),
    ),
    ("schedule interactive", JobFilter(schedule="interactive"), lambda j: job_name(j) == "interactive"),
    ("schedule batch", JobFilter(schedule="batch"), lambda j: job_name(j) not in (None, "interactive")),
    (
        "node eq",
        JobFilter(node=StringInput(eq="f0012")),
        lambda j: any(r.hostname == "f0012" for r in j.resources),
    ),
    (
        "node contains",
        JobFilter(node=StringInput(contains="a00")),
        lambda j: any("a00" in r.hostname for r in j.resources),
    ),
    (
        "node startsWith",
        JobFilter(node=StringInput(starts_with="w01")),
        lambda j: any(r.hostname.startswith("w01") for r in j.resources),
    ),
    ("jobId eq", JobFilter(job_id=StringInput(eq="1000042")), lambda j: j.job_id == 1000042),
    (
        "jobId in",
        JobFilter(job_id=StringInput(in_=["1000001", "1000002", "77"])),
        lambda j: j.job_id in (1000001, 1000002),
    ),
    ("jobId contains", JobFilter(job_id=StringInput(contains="999")), lambda j: "999" in str(j.job_id)),
    ("numNodes between", JobFilter(num_nodes=IntRange(from_=2, to=16)), lambda j: 2 <= j.num_nodes <= 16),
    ("numNodes from", JobFilter(num_nodes=IntRange(from_=64)), lambda j: j.num_nodes >= 64),
    ("numNodes to", JobFilter(num_nodes=IntRange(to=1)), lambda j: j.num_nodes <= 1),
    ("numNodes zero range ignored", JobFilter(num_nodes=IntRange()), lambda j: True),
    (
        "numHWThreads",
        JobFilter(num_hwthreads=IntRange(from_=100, to=1000)),
        lambda j: 100 <= j.num_hwthreads <= 1000,
    ),
    ("numAccelerators", JobFilter(num_accelerators=IntRange(from_=1)), lambda j: j.num_acc >= 1),
    (
        "duration (effective)",
        JobFilter(duration=IntRange(from_=3600, to=7200)),
        lambda j: 3600 <= j.duration <= 7200,
    ),
    ("energy", JobFilter(energy=FloatRange(from_=1.5, to=20.0)), lambda j: 1.5 <= j.energy <= 20.0),
    (
        "startTime range",
        JobFilter(start_time=TimeRange(range="last7d")),
        lambda j: j.start_time >= NOW - 7 * 86400,
    ),
    (
        "startTime last6h",
        JobFilter(start_time=TimeRange(range="last6h")),
        lambda j: j.start_time >= NOW - 6 * 3600,
    ),
    (
        "startTime lastNd",
        JobFilter(start_time=TimeRange(range="last3d")),
        lambda j: j.start_time >= NOW - 3 * 86400,
    ),
    (
        "startTime from/to (RFC 3339)",
        JobFilter(
            start_time=TimeRange(
                from_=datetime.fromtimestamp(T30, UTC), to=datetime.fromtimestamp(NOW - 10 * 86400, UTC)
            )
        ),
        lambda j: T30 <= j.start_time <= NOW - 10 * 86400,
    ),
    ("startTime from epoch", JobFilter(start_time=TimeRange(from_=T30)), lambda j: j.start_time >= T30),
    ("startTime to", JobFilter(start_time=TimeRange(to=T30)), lambda j: j.start_time <= T30),
    ("state single", JobFilter(state=["running"]), lambda j: j.job_state == "running"),
    ("state list", JobFilter(state=["failed", "timeout"]), lambda j: j.job_state in ("failed", "timeout")),
    ("state empty list", JobFilter(state=[]), lambda j: False),
    ("shared", JobFilter(shared="multi_user"), lambda j: j.shared == "multi_user"),
    (
        "metricStats",
        JobFilter(
            metric_stats=[MetricStatItem(metric_name="flops_any_avg", range=FloatRange(from_=100, to=400))]
        ),
        lambda j: _range((j.footprint or {}).get("flops_any_avg"), 100, 400),
    ),
    (
        "metricStats two keys",
        JobFilter(
            metric_stats=[
                MetricStatItem(metric_name="mem_bw_avg", range=FloatRange(to=50)),
                MetricStatItem(metric_name="acc_utilization_avg", range=FloatRange(from_=10)),
            ]
        ),
        lambda j: (
            _range((j.footprint or {}).get("mem_bw_avg"), 0, 50)
            and _range((j.footprint or {}).get("acc_utilization_avg"), 10, 0)
        ),
    ),
    ("minRunningFor", JobFilter(min_running_for=20 * 86400), lambda j: j.start_time < NOW - 20 * 86400),
    ("dbId", JobFilter(db_id=["3", 5, "8"]), lambda j: j.id in (3, 5, 8)),
    ("dbId empty", JobFilter(db_id=[]), lambda j: False),
    (
        "combined",
        JobFilter(
            cluster=StringInput(eq="fritz"),
            state=["completed"],
            start_time=TimeRange(range="last30d"),
            num_nodes=IntRange(from_=1, to=4),
        ),
        lambda j: (
            j.cluster == "fritz"
            and j.job_state == "completed"
            and j.start_time >= T30
            and 1 <= j.num_nodes <= 4
        ),
    ),
]


def _ids(seeded: Seeded, filters: list[JobFilter]) -> tuple[list[int], int | None]:
    page = anyio.run(lambda: seeded.db.jobs.list(ADMIN, filters, ALL))
    return sorted(j.id for j in page.items if j.id is not None), page.count


@pytest.mark.parametrize(("name", "flt", "pred"), CASES, ids=[c[0] for c in CASES])
def test_filter_matches_brute_force(
    seeded: Seeded, name: str, flt: JobFilter, pred: Callable[[Job], bool]
) -> None:
    want = sorted(j.id for j in seeded.jobs if pred(j) and j.id is not None)
    got, count = _ids(seeded, [flt])
    assert got == want
    assert count == len(want)
    if name not in ("cluster in empty", "state empty list", "dbId empty", "percent literal", "jobId in"):
        assert want, f"case {name!r} selects nothing in the seeded data; it would prove nothing"


def test_filter_list_is_anded(seeded: Seeded) -> None:
    a = JobFilter(cluster=StringInput(eq="fritz"))
    b = JobFilter(state=["failed"])
    got, _ = _ids(seeded, [a, b])
    assert got == sorted(j.id for j in seeded.jobs if j.cluster == "fritz" and j.job_state == "failed")


def test_array_job_filter(seeded: Seeded) -> None:
    from collections import Counter

    array_id, n = Counter(j.array_job_id for j in seeded.jobs if j.array_job_id).most_common(1)[0]
    got, count = _ids(seeded, [JobFilter(array_job_id=array_id)])
    assert got == sorted(j.id for j in seeded.jobs if j.array_job_id == array_id)
    assert count == n >= 1


def test_tag_filter(seeded: Seeded) -> None:
    from sqlalchemy import select

    from cc_core.db import tables as T

    rows = seeded.db.read_sync(
        lambda c: c.execute(select(T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.tag_scope, T.tag.c.id)).all()
    )
    by_key = {(r[0], r[1], r[2]): r[3] for r in rows}
    vasp, paper = by_key[("app", "vasp", "global")], next(i for k, i in by_key.items() if k[1] == "paper")
    got, _ = _ids(seeded, [JobFilter(tags=[vasp, str(paper)])])
    want_keys = {("app", "vasp", "global")} | {k for k, i in by_key.items() if i == paper}
    want = sorted(
        j.id for j in seeded.jobs if any((t.type, t.name, t.scope) in want_keys for t in j.tags or ())
    )
    assert got == want and want


@pytest.mark.parametrize(
    ("flt", "error"),
    [
        (JobFilter(state=["exploded"]), InvalidStateError),
        (JobFilter(start_time=TimeRange(range="lastweek")), InvalidTimeRangeError),
        (JobFilter(start_time=TimeRange(range="last0d")), InvalidTimeRangeError),
        (JobFilter(start_time=TimeRange(from_=NOW, to=NOW - 10)), InvalidTimeRangeError),
        (
            JobFilter(metric_stats=[MetricStatItem(metric_name='x") OR 1=1 --', range=FloatRange(from_=1))]),
            InvalidMetricNameError,
        ),
        (JobFilter(shared="everyone"), InvalidFilterError),
        (JobFilter(schedule="sometimes"), InvalidFilterError),
        (JobFilter(job_id=StringInput(eq="12a")), InvalidFilterError),
        (JobFilter(db_id=["x"]), InvalidFilterError),
        (JobFilter(tags=["t1"]), InvalidFilterError),
    ],
)
def test_bad_filters_raise_typed_errors(seeded: Seeded, flt: JobFilter, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        anyio.run(lambda: seeded.db.jobs.list(ADMIN, [flt]))
    assert exc.value.status_code == 400  # type: ignore[attr-defined]


def test_filter_structs_decode_graphql_json() -> None:
    import msgspec

    raw = (
        b'{"cluster": {"eq": "fritz"}, "jobId": {"in": ["1", "2"]}, "numHWThreads": {"from": 1, "to": 8},'
        b' "startTime": {"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00+01:00"},'
        b' "metricStats": [{"metricName": "flops_any_avg", "range": {"from": 1.5, "to": 0}}], "state": ["running"]}'
    )
    f = msgspec.json.decode(raw, type=JobFilter)
    assert f.cluster == StringInput(eq="fritz")
    assert f.job_id is not None and f.job_id.in_ == ["1", "2"]
    assert f.num_hwthreads == IntRange(from_=1, to=8)
    assert f.start_time is not None and isinstance(f.start_time.from_, datetime)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"clusterName": {"eq": "x"}}', type=JobFilter)

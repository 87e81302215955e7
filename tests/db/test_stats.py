"""jobsStatistics against a brute-force computation over the generated truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import anyio
import pytest

from cc_core.auth.user import User
from cc_core.db import (
    Database,
    InvalidInputError,
    InvalidMetricNameError,
    JobFilter,
    JobsStatistics,
    MetricHistogramSpec,
    PageRequest,
    StringInput,
    TimeRange,
    TooManyJobsError,
)
from cc_core.db.stats import DURATION_BINS, TOTAL_FIELDS
from cc_core.schema.job import Job
from tests.db.conftest import ADMIN, NOW, Seeded

SHORT = 300


def hours(seconds: int) -> int:
    return (seconds + 1800) // 3600


def brute_totals(jobs: list[Job]) -> dict[str, int]:
    return {
        "totalJobs": len(jobs),
        "totalUsers": len({j.user for j in jobs}),
        "totalWalltime": hours(sum(j.duration for j in jobs)),
        "totalNodes": sum(j.num_nodes for j in jobs),
        "totalNodeHours": hours(sum(j.duration * j.num_nodes for j in jobs)),
        "totalCores": sum(j.num_hwthreads for j in jobs),
        "totalCoreHours": hours(sum(j.duration * j.num_hwthreads for j in jobs)),
        "totalAccs": sum(j.num_acc for j in jobs),
        "totalAccHours": hours(sum(j.duration * j.num_acc for j in jobs)),
        "runningJobs": sum(1 for j in jobs if j.job_state == "running"),
        "shortJobs": sum(1 for j in jobs if j.duration < SHORT),
    }


def as_dict(s: JobsStatistics) -> dict[str, int]:
    import msgspec

    d = msgspec.to_builtins(s)
    return {k: d[k] for k in TOTAL_FIELDS}


FILTERS: list[tuple[str, list[JobFilter], Callable[[Job], bool]]] = [
    ("all", [], lambda j: True),
    ("cluster", [JobFilter(cluster=StringInput(eq="fritz"))], lambda j: j.cluster == "fritz"),
    (
        "cluster+last7d",
        [JobFilter(cluster=StringInput(eq="alex"), start_time=TimeRange(range="last7d"))],
        lambda j: j.cluster == "alex" and j.start_time >= NOW - 7 * 86400,
    ),
    ("running", [JobFilter(state=["running"])], lambda j: j.job_state == "running"),
]


def stats(seeded: Seeded, user: User = ADMIN, filters=None, **kw) -> list[JobsStatistics]:
    return anyio.run(lambda: seeded.db.stats.jobs_statistics(user, filters, **kw))


@pytest.mark.parametrize(("name", "filters", "pred"), FILTERS, ids=[f[0] for f in FILTERS])
def test_totals(seeded: Seeded, name: str, filters, pred) -> None:
    got = stats(seeded, filters=filters)
    assert len(got) == 1
    assert as_dict(got[0]) == brute_totals([j for j in seeded.jobs if pred(j)])


def test_only_requested_fields_are_computed(seeded: Seeded) -> None:
    got = stats(seeded, fields=["totalJobs", "runningJobs"])[0]
    want = brute_totals(seeded.jobs)
    assert (got.total_jobs, got.running_jobs) == (want["totalJobs"], want["runningJobs"])
    assert got.total_core_hours == 0 and got.total_users == 0 and got.hist_duration == []


@pytest.mark.parametrize("group", ["USER", "PROJECT", "CLUSTER", "SUBCLUSTER"])
@pytest.mark.parametrize(
    "sort", [None, "TOTALCOREHOURS", "TOTALJOBS", "TOTALWALLTIME", "TOTALUSERS", "TOTALACCHOURS"]
)
def test_grouped(seeded: Seeded, group: str, sort: str | None) -> None:
    key = {
        "USER": lambda j: j.user,
        "PROJECT": lambda j: j.project,
        "CLUSTER": lambda j: j.cluster,
        "SUBCLUSTER": lambda j: j.sub_cluster,
    }[group]
    groups: dict[str, list[Job]] = defaultdict(list)
    for j in seeded.jobs:
        groups[key(j)].append(j)
    want = {k: brute_totals(v) for k, v in groups.items()}
    got = stats(seeded, group_by=group, sort_by=sort)
    assert {s.id: as_dict(s) for s in got} == want
    if sort is not None:
        field = {
            "TOTALCOREHOURS": "totalCoreHours",
            "TOTALJOBS": "totalJobs",
            "TOTALWALLTIME": "totalWalltime",
            "TOTALUSERS": "totalUsers",
            "TOTALACCHOURS": "totalAccHours",
        }[sort]
        order = sorted(want, key=lambda k: (-want[k][field], k))
        assert [s.id for s in got] == order
    else:
        assert [s.id for s in got] == sorted(want)


def test_grouped_top_n_with_filter(seeded: Seeded) -> None:
    flt = [JobFilter(cluster=StringInput(eq="fritz"), start_time=TimeRange(range="last30d"))]
    got = stats(
        seeded,
        filters=flt,
        fields=["totalJobs", "totalCoreHours"],
        group_by="USER",
        sort_by="TOTALCOREHOURS",
        page=PageRequest(items_per_page=10, page=1),
    )
    groups: dict[str, list[Job]] = defaultdict(list)
    for j in seeded.jobs:
        if j.cluster == "fritz" and j.start_time >= NOW - 30 * 86400:
            groups[j.user].append(j)
    want = sorted(groups, key=lambda u: (-brute_totals(groups[u])["totalCoreHours"], u))[:10]
    assert [s.id for s in got] == want
    assert [s.total_core_hours for s in got] == [brute_totals(groups[u])["totalCoreHours"] for u in want]
    page2 = stats(
        seeded,
        filters=flt,
        fields=["totalJobs"],
        group_by="USER",
        sort_by="TOTALCOREHOURS",
        page=PageRequest(items_per_page=10, page=2),
    )
    assert [s.id for s in page2] == sorted(
        groups, key=lambda u: (-brute_totals(groups[u])["totalCoreHours"], u)
    )[10:20]


@pytest.mark.parametrize("bins", [*DURATION_BINS, "24h", None])
def test_duration_histogram(seeded: Seeded, bins: str | None) -> None:
    count, size = DURATION_BINS.get(bins or "1h", (24, 3600))
    got = stats(seeded, fields=["histDuration"], num_duration_bins=bins)[0].hist_duration
    c = Counter(j.duration // size + 1 for j in seeded.jobs)
    assert [(p.value, p.count) for p in got] == [(i * size, c.get(i, 0)) for i in range(1, count + 1)]


@pytest.mark.parametrize(("name", "filters", "pred"), FILTERS, ids=[f[0] for f in FILTERS])
def test_value_histograms(seeded: Seeded, name: str, filters, pred) -> None:
    got = stats(seeded, filters=filters, fields=["histNumNodes", "histNumCores", "histNumAccs", "totalJobs"])[
        0
    ]
    jobs = [j for j in seeded.jobs if pred(j)]
    for points, attr in (
        (got.hist_num_nodes, "num_nodes"),
        (got.hist_num_cores, "num_hwthreads"),
        (got.hist_num_accs, "num_acc"),
    ):
        want = sorted(Counter(getattr(j, attr) for j in jobs).items())
        assert [(p.value, p.count) for p in points] == want
    assert got.total_jobs == len(jobs)


@pytest.mark.parametrize(
    ("metric", "peak", "bins"),
    [("flops_any", 1000.0, 10), ("mem_bw", 250.0, 7), ("acc_utilization", 100.0, 20)],
)
def test_metric_histogram(seeded: Seeded, metric: str, peak: float, bins: int) -> None:
    spec = MetricHistogramSpec(metric=metric, peak=peak, stat="avg", unit="GB/s")
    got = stats(seeded, fields=["histMetrics"], metrics=[spec], num_metric_bins=bins)[0].hist_metrics
    assert len(got) == 1 and got[0].metric == metric and got[0].unit == "GB/s" and got[0].stat == "avg"
    counts: Counter[int] = Counter()
    for j in seeded.jobs:
        v = (j.footprint or {}).get(f"{metric}_avg")
        if v is None or v > peak:
            continue
        v = peak * 0.999999999 if v == peak else v
        counts[int(v / peak * bins) + 1] += 1
    step = int(peak) // bins
    want = [(i, counts.get(i, 0), step * (i - 1), step * i) for i in range(1, bins + 1)]
    assert [(p.bin, p.count, p.min, p.max) for p in got[0].data] == want
    assert sum(counts.values()) > 0


def test_metric_histogram_zero_peak_and_several_metrics(seeded: Seeded) -> None:
    got = stats(
        seeded,
        fields=["histMetrics"],
        metrics=[
            MetricHistogramSpec(metric="flops_any", peak=0),
            MetricHistogramSpec(metric="cpu_load", peak=72),
        ],
    )[0]
    assert [h.metric for h in got.hist_metrics] == ["flops_any", "cpu_load"]
    assert all(p.count == 0 for p in got.hist_metrics[0].data)
    assert sum(p.count for p in got.hist_metrics[1].data) == sum(1 for j in seeded.jobs if j.footprint)


def test_stats_apply_visibility(seeded: Seeded) -> None:
    alice = seeded.jobs[0].user
    got = stats(seeded, User(alice, ["user"]), group_by="USER")
    assert [s.id for s in got] == [alice]
    assert as_dict(got[0]) == brute_totals([j for j in seeded.jobs if j.user == alice])


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"fields": ["histDuration"], "group_by": "USER"}, InvalidInputError),
        ({"fields": ["histMetrics"], "group_by": "PROJECT"}, InvalidInputError),
        ({"group_by": "PLANET"}, InvalidInputError),
        ({"group_by": "USER", "sort_by": "TOTALFUN"}, InvalidInputError),
        ({"fields": ["totalJoy"]}, InvalidInputError),
        (
            {"fields": ["histMetrics"], "metrics": [MetricHistogramSpec(metric="a;b", peak=1)]},
            InvalidMetricNameError,
        ),
        (
            {"fields": ["histMetrics"], "metrics": [MetricHistogramSpec(metric="a", peak=1, stat="median")]},
            InvalidInputError,
        ),
        ({"group_by": "USER", "page": PageRequest(items_per_page=0, page=1)}, InvalidInputError),
    ],
)
def test_bad_statistics_requests(seeded: Seeded, kw, error) -> None:
    with pytest.raises(error):
        stats(seeded, **kw)


def test_footprints(seeded: Seeded) -> None:
    flt = [JobFilter(cluster=StringInput(eq="alex"), start_time=TimeRange(range="last7d"))]
    got = anyio.run(lambda: seeded.db.stats.footprints(ADMIN, flt, ["flops_any_avg", "acc_utilization_avg"]))
    jobs = sorted(
        (
            j
            for j in seeded.jobs
            if j.cluster == "alex" and j.start_time >= NOW - 7 * 86400 and j.monitoring_status not in (0, 2)
        ),
        key=lambda j: j.id,
    )
    assert got.node_hours == [j.duration / 60 * j.num_nodes for j in jobs]
    assert got.core_hours == [j.duration / 60 * j.num_hwthreads if j.num_hwthreads else 1.0 for j in jobs]
    assert got.acc_hours == [j.duration / 60 * j.num_acc if j.num_acc else 1.0 for j in jobs]
    assert got.metrics["flops_any_avg"] == [(j.footprint or {}).get("flops_any_avg") for j in jobs]
    with pytest.raises(TooManyJobsError):
        anyio.run(lambda: seeded.db.stats.footprints(ADMIN, None, ["flops_any_avg"]))


def test_user_names_in_user_groups(db: Database) -> None:
    from tests.db.test_lifecycle import make_job

    db.users.add_sync("alice", name="Alice Liddell", roles=["user"])
    db.jobs.bulk_insert_sync(
        [
            make_job(1, job_state="completed", duration=7200),
            make_job(2, user="bob", job_state="completed", duration=1800),
        ]
    )
    got = anyio.run(lambda: db.stats.jobs_statistics(ADMIN, None, group_by="USER", sort_by="TOTALWALLTIME"))
    assert [(s.id, s.name, s.total_walltime) for s in got] == [("alice", "Alice Liddell", 2), ("bob", "", 1)]
    assert anyio.run(lambda: db.stats.count_grouped(ADMIN, None, "USER")) == {"alice": 1, "bob": 1}
    empty = anyio.run(lambda: db.stats.jobs_statistics(ADMIN, [JobFilter(cluster=StringInput(eq="none"))]))
    assert as_dict(empty[0]) == dict.fromkeys(TOTAL_FIELDS, 0)

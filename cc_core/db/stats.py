"""``jobsStatistics``: totals, grouped totals and histograms, computed in SQL — only what was asked for.

Semantics are upstream's (internal/repository/stats.go, contract §2.1):

* durations of running jobs count as ``now - start_time``;
* hour fields are ``round(sum(duration × resource) / 3600)`` (upstream's SQL meant to round but
  divides integers on SQLite and so truncates; we round, the value the schema describes);
* ``shortJobs`` counts jobs with ``duration < main.short-running-jobs-duration``;
* grouping by USER/PROJECT/CLUSTER/SUBCLUSTER, sorted descending by a `SORT_FIELDS` total, paged;
  for USER groups ``name`` is the user's display name;
* histograms only without grouping: duration in upstream's bin layouts (value = upper bin edge in
  seconds, all bins present), numNodes/numHWThreads/numAcc as value counts, metric histograms over
  footprint values in ``bins`` equal bins from 0 to the metric's peak.

Independent queries of one request run concurrently on separate read connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
import msgspec
from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from cc_core.auth.user import User
from cc_core.db import tables as T
from cc_core.db.convert import json_column
from cc_core.db.errors import InvalidInputError, TooManyJobsError
from cc_core.db.filters import (
    JobFilter,
    PageRequest,
    SqlDialect,
    check_metric_name,
    check_page,
    effective_duration,
    job_conditions,
    state_literal,
)

GROUP_COLUMNS: dict[str, str] = {
    "USER": "hpc_user",
    "PROJECT": "project",
    "CLUSTER": "cluster",
    "SUBCLUSTER": "subcluster",
}
SORT_FIELDS: dict[str, str] = {
    "TOTALJOBS": "totalJobs",
    "TOTALUSERS": "totalUsers",
    "TOTALWALLTIME": "totalWalltime",
    "TOTALNODES": "totalNodes",
    "TOTALNODEHOURS": "totalNodeHours",
    "TOTALCORES": "totalCores",
    "TOTALCOREHOURS": "totalCoreHours",
    "TOTALACCS": "totalAccs",
    "TOTALACCHOURS": "totalAccHours",
}
TOTAL_FIELDS: tuple[str, ...] = (
    "totalJobs",
    "totalUsers",
    "totalWalltime",
    "totalNodes",
    "totalNodeHours",
    "totalCores",
    "totalCoreHours",
    "totalAccs",
    "totalAccHours",
    "runningJobs",
    "shortJobs",
)
HISTOGRAM_FIELDS: tuple[str, ...] = (
    "histDuration",
    "histNumNodes",
    "histNumCores",
    "histNumAccs",
    "histMetrics",
)
ALL_FIELDS = frozenset(TOTAL_FIELDS + HISTOGRAM_FIELDS)

# numDurationBins → (number of bins, bin width in seconds); anything else → (24, 3600) as upstream.
DURATION_BINS: dict[str, tuple[int, int]] = {
    "1m": (60, 60),
    "10m": (72, 600),
    "1h": (48, 3600),
    "6h": (12, 21600),
    "12h": (14, 43200),
}
DEFAULT_DURATION_BINS = "1h"
DEFAULT_METRIC_BINS = 10
MAX_JOBS_FOR_ANALYSIS = 500


class HistoPoint(msgspec.Struct):
    count: int
    value: int


class MetricHistoPoint(msgspec.Struct):
    bin: int | None
    count: int
    min: int | None
    max: int | None


class MetricHistoPoints(msgspec.Struct):
    metric: str
    unit: str
    stat: str | None
    data: list[MetricHistoPoint]


class JobsStatistics(msgspec.Struct, rename="camel"):
    """GraphQL ``JobsStatistics``; fields that were not asked for stay 0 / empty."""

    id: str = ""
    name: str = ""
    total_users: int = 0
    total_jobs: int = 0
    running_jobs: int = 0
    short_jobs: int = 0
    total_walltime: int = 0
    total_nodes: int = 0
    total_node_hours: int = 0
    total_cores: int = 0
    total_core_hours: int = 0
    total_accs: int = 0
    total_acc_hours: int = 0
    hist_duration: list[HistoPoint] = msgspec.field(default_factory=list)
    hist_num_nodes: list[HistoPoint] = msgspec.field(default_factory=list)
    hist_num_cores: list[HistoPoint] = msgspec.field(default_factory=list)
    hist_num_accs: list[HistoPoint] = msgspec.field(default_factory=list)
    hist_metrics: list[MetricHistoPoints] = msgspec.field(default_factory=list)


class MetricHistogramSpec(msgspec.Struct):
    """One metric histogram: the caller knows the cluster config (peak, unit, footprint stat)."""

    metric: str
    peak: float
    stat: str = "avg"
    unit: str = ""


class Footprints(msgspec.Struct, rename="camel"):
    """GraphQL ``Footprints`` from the footprint column: per-job values and time weights."""

    node_hours: list[float]
    acc_hours: list[float]
    core_hours: list[float]
    metrics: dict[str, list[float | None]]


_FIELD_ATTR: dict[str, str] = {
    "totalJobs": "total_jobs",
    "totalUsers": "total_users",
    "totalWalltime": "total_walltime",
    "totalNodes": "total_nodes",
    "totalNodeHours": "total_node_hours",
    "totalCores": "total_cores",
    "totalCoreHours": "total_core_hours",
    "totalAccs": "total_accs",
    "totalAccHours": "total_acc_hours",
    "runningJobs": "running_jobs",
    "shortJobs": "short_jobs",
}


class StatsRepository:
    """Statistics over the jobs a user may see; see the module docstring."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.dialect: str = db.dialect
        self.d = SqlDialect(self.dialect)

    # ------------------------------------------------------------------ SQL builders

    def _hours(self, total: ColumnElement[Any]) -> ColumnElement[int]:
        """round(total / 3600) for a non-negative integer sum, identically on both dialects."""
        return cast(self.d.trunc_int((total + 1800) / literal(3600.0, Float)), BigInteger)

    def _aggregates(self, fields: set[str], now: int, short: int) -> list[ColumnElement[Any]]:
        j = T.job.c
        dur = effective_duration(now)
        zero = literal(0, Integer)
        expr: dict[str, Callable[[], ColumnElement[Any]]] = {
            "totalJobs": lambda: func.count(),
            "totalUsers": lambda: func.count(j.hpc_user.distinct()),
            "totalWalltime": lambda: self._hours(func.coalesce(func.sum(dur), 0)),
            "totalNodes": lambda: func.coalesce(func.sum(j.num_nodes), 0),
            "totalNodeHours": lambda: self._hours(func.coalesce(func.sum(dur * j.num_nodes), 0)),
            "totalCores": lambda: func.coalesce(func.sum(j.num_hwthreads), 0),
            "totalCoreHours": lambda: self._hours(func.coalesce(func.sum(dur * j.num_hwthreads), 0)),
            "totalAccs": lambda: func.coalesce(func.sum(j.num_acc), 0),
            "totalAccHours": lambda: self._hours(func.coalesce(func.sum(dur * j.num_acc), 0)),
            "runningJobs": lambda: func.count(case((j.job_state == state_literal("running"), 1))),
            "shortJobs": lambda: func.count(case((dur < short, 1))),
        }
        return [(expr[f]() if f in fields else zero).label(f) for f in TOTAL_FIELDS]

    def _totals(
        self,
        conn: Connection,
        conds: list[ColumnElement[bool]],
        fields: set[str],
        group_by: str | None,
        sort_by: str | None,
        page: PageRequest | None,
        now: int,
    ) -> list[JobsStatistics]:
        short = int(self.db.short_running_jobs_duration)
        aggs = self._aggregates(fields, now, short)
        if group_by is None:
            row = conn.execute(select(*aggs).select_from(T.job).where(*conds)).one()
            return [_stats_from(row, "")]
        col = T.job.c[GROUP_COLUMNS[group_by]]
        q = select(col, *aggs).where(*conds).group_by(col)
        if sort_by is not None:
            by = next(a for a in aggs if a.key == SORT_FIELDS[sort_by])
            q = q.order_by(by.desc(), col)
        else:
            q = q.order_by(col)
        if page is not None:
            limit, offset = check_page(page)
            if limit is not None:
                q = q.limit(limit).offset(offset)
        rows = conn.execute(q).all()
        stats = [_stats_from(r[1:], r[0]) for r in rows if r[0] is not None]
        if group_by == "USER" and stats:
            names = dict(
                conn.execute(
                    select(T.hpc_user.c.username, T.hpc_user.c.name).where(
                        T.hpc_user.c.username.in_([s.id for s in stats])
                    )
                ).all()
            )
            for s in stats:
                s.name = names.get(s.id) or ""
        return stats

    def _duration_histogram(
        self, conn: Connection, conds: list[ColumnElement[bool]], bins: str | None, now: int
    ) -> list[HistoPoint]:
        count, size = DURATION_BINS.get(bins or DEFAULT_DURATION_BINS, (24, 3600))
        value = (effective_duration(now) // size + 1).label("value")
        q = select(value, func.count()).where(*conds).group_by(literal_column("value"))
        found = {int(v): int(n) for v, n in conn.execute(q) if v is not None}
        return [HistoPoint(count=found.get(i, 0), value=i * size) for i in range(1, count + 1)]

    def _value_histogram(
        self, conn: Connection, conds: list[ColumnElement[bool]], column: str
    ) -> list[HistoPoint]:
        col = T.job.c[column]
        q = select(col, func.count()).where(*conds).group_by(col).order_by(col)
        counts: dict[int, int] = {}
        for v, n in conn.execute(q):
            key = int(v or 0)
            counts[key] = counts.get(key, 0) + int(n)
        return [HistoPoint(count=n, value=v) for v, n in sorted(counts.items())]

    def _metric_histogram(
        self, conn: Connection, conds: list[ColumnElement[bool]], spec: MetricHistogramSpec, bins: int
    ) -> MetricHistoPoints:
        check_metric_name(spec.metric)
        if spec.stat not in ("avg", "min", "max"):
            raise InvalidInputError(f"invalid footprint statistic {spec.stat!r} (avg, min or max)")
        key = check_metric_name(f"{spec.metric}_{spec.stat}")
        peak = float(spec.peak)
        step = int(peak) // bins
        points = [
            MetricHistoPoint(bin=i, count=0, min=step * (i - 1), max=step * i) for i in range(1, bins + 1)
        ]
        if peak > 0:
            d = self.d
            value = d.json_number(T.job.c.footprint, key)
            # A value equal to the peak belongs to the last bin, not to an extra one (upstream).
            adjusted = case((value == peak, peak * 0.999999999), else_=value)
            bin_ = (d.trunc_int(adjusted / literal(peak, Float) * bins) + 1).label("bin")
            q = (
                select(bin_, func.count())
                .where(*conds, d.json_valid(T.job.c.footprint), value.is_not(None), value <= peak)
                .group_by(bin_)
            )
            for b, n in conn.execute(q):
                if b is not None and 1 <= int(b) <= bins:
                    points[int(b) - 1].count = int(n)
        return MetricHistoPoints(metric=spec.metric, unit=spec.unit, stat=spec.stat, data=points)

    # ------------------------------------------------------------------ API

    async def jobs_statistics(
        self,
        user: User,
        filters: Sequence[JobFilter] | JobFilter | None = None,
        *,
        fields: Iterable[str] | None = None,
        group_by: str | None = None,
        sort_by: str | None = None,
        page: PageRequest | None = None,
        num_duration_bins: str | None = None,
        metrics: Sequence[MetricHistogramSpec] = (),
        num_metric_bins: int | None = None,
    ) -> list[JobsStatistics]:
        """GraphQL ``jobsStatistics``. ``fields`` = the requested GraphQL field names (default: all
        totals, no histograms); only those are computed. One element without ``group_by``."""
        wanted = set(TOTAL_FIELDS) if fields is None else set(fields)
        unknown = wanted - ALL_FIELDS - {"id", "name"}
        if unknown:
            raise InvalidInputError(f"unknown statistics field(s): {', '.join(sorted(unknown))}")
        if group_by is not None and group_by not in GROUP_COLUMNS:
            raise InvalidInputError(f"invalid groupBy {group_by!r} ({', '.join(GROUP_COLUMNS)})")
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise InvalidInputError(f"invalid sortBy {sort_by!r} ({', '.join(SORT_FIELDS)})")
        hists = wanted & set(HISTOGRAM_FIELDS)
        if hists and group_by is not None:
            raise InvalidInputError("histograms only implemented without groupBy argument")
        bins = DEFAULT_METRIC_BINS if num_metric_bins is None else int(num_metric_bins)
        if "histMetrics" in wanted and bins < 1:
            raise InvalidInputError("numMetricBins must be ≥ 1")
        if page is not None:
            check_page(page)
        totals = wanted & set(TOTAL_FIELDS)
        if sort_by is not None:
            totals.add(SORT_FIELDS[sort_by])
        now = int(self.db.clock())
        conds = job_conditions(user, filters, self.dialect, now=now)
        for m in metrics:
            check_metric_name(m.metric)

        tasks: list[Callable[[Connection], Any]] = []
        if totals or group_by is not None or not hists:
            tasks.append(lambda c: self._totals(c, conds, totals, group_by, sort_by, page, now))
        if "histDuration" in wanted:
            tasks.append(
                lambda c: ("histDuration", self._duration_histogram(c, conds, num_duration_bins, now))
            )
        for name, column in (
            ("histNumNodes", "num_nodes"),
            ("histNumCores", "num_hwthreads"),
            ("histNumAccs", "num_acc"),
        ):
            if name in wanted:
                tasks.append(lambda c, n=name, col=column: (n, self._value_histogram(c, conds, col)))
        if "histMetrics" in wanted:
            for spec in metrics:
                tasks.append(lambda c, s=spec: ("histMetrics", self._metric_histogram(c, conds, s, bins)))

        results = await self._gather(tasks)
        stats: list[JobsStatistics] = [JobsStatistics()]
        if totals or group_by is not None or not hists:
            stats = results.pop(0)
        if hists:
            target = stats[0]
            for name, value in results:
                if name == "histDuration":
                    target.hist_duration = value
                elif name == "histNumNodes":
                    target.hist_num_nodes = value
                elif name == "histNumCores":
                    target.hist_num_cores = value
                elif name == "histNumAccs":
                    target.hist_num_accs = value
                else:
                    target.hist_metrics.append(value)
        return stats

    async def _gather(self, tasks: list[Callable[[Connection], Any]]) -> list[Any]:
        """Run read tasks; results in task order.

        PostgreSQL runs them concurrently on separate connections (separate server processes). SQLite
        runs them one after the other in one thread hop: measured, two concurrent SQLite readers
        in two Python threads were slower than one doing both.
        """
        if len(tasks) == 1 or self.dialect != "postgresql":
            return await self.db.read(lambda c: [t(c) for t in tasks])
        results: list[Any] = [None] * len(tasks)

        async def one(i: int) -> None:
            results[i] = await self.db.read(tasks[i])

        async with anyio.create_task_group() as tg:
            for i in range(len(tasks)):
                tg.start_soon(one, i)
        return results

    async def count_grouped(
        self, user: User, filters: Sequence[JobFilter] | JobFilter | None, group_by: str
    ) -> dict[str, int]:
        """Number of jobs per group (upstream's JobCountGrouped)."""
        stats = await self.jobs_statistics(user, filters, fields=["totalJobs"], group_by=group_by)
        return {s.id: s.total_jobs for s in stats}

    async def footprints(
        self,
        user: User,
        filters: Sequence[JobFilter] | JobFilter | None,
        keys: Sequence[str],
        *,
        max_jobs: int = MAX_JOBS_FOR_ANALYSIS,
    ) -> Footprints:
        """Per-job footprint values and time weights (GraphQL ``jobsFootprints``) from the DB.

        At most ``max_jobs`` jobs (else `TooManyJobsError`, as upstream); jobs with monitoring
        disabled or failed archiving are skipped. Weights are upstream's: duration/60 × count, 1.0
        when the count is 0.
        """
        for k in keys:
            check_metric_name(k)
        now = int(self.db.clock())

        def run(conn: Connection) -> Footprints:
            j = T.job.c
            conds = job_conditions(user, filters, self.dialect, now=now)
            q = (
                select(
                    effective_duration(now),
                    j.num_nodes,
                    j.num_acc,
                    j.num_hwthreads,
                    j.monitoring_status,
                    json_column(self.dialect, "footprint"),
                )
                .where(*conds)
                .order_by(j.id)
                .limit(max_jobs + 1)
            )
            rows = conn.execute(q).all()
            if len(rows) > max_jobs:
                raise TooManyJobsError(f"too many jobs matched (max: {max_jobs})")
            dec = msgspec.json.Decoder()
            out = Footprints([], [], [], {k: [] for k in keys})
            for dur, nodes, accs, cores, status, raw in rows:
                if status in (0, 2):
                    continue
                minutes = float(dur) / 60.0
                out.node_hours.append(minutes * (nodes or 0))
                out.acc_hours.append(minutes * accs if accs else 1.0)
                out.core_hours.append(minutes * cores if cores else 1.0)
                fp = dec.decode(raw) if raw else None
                for k in keys:
                    v = fp.get(k) if isinstance(fp, dict) else None
                    out.metrics[k].append(float(v) if isinstance(v, (int, float)) else None)
            return out

        return await self.db.read(run)


def _stats_from(row: Sequence[Any], id_: str) -> JobsStatistics:
    s = JobsStatistics(id=str(id_))
    for name, value in zip(TOTAL_FIELDS, row, strict=True):
        setattr(s, _FIELD_ATTR[name], int(value or 0))
    return s

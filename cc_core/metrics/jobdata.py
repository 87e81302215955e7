"""Post-processing of `JobData` shared by every source (upstream cc-lib ``schema`` helpers and the
dispatcher's ``dataLoader.go``): statistics series, synthesised node scope, LTTB resampling of archived
data, filtering, rounding, and the job statistics the archiver stores.

All of it works on whole numpy arrays. Where upstream's helper computes something wrong it is fixed
here and said so: the statistics series is NaN-aware (upstream's median counts missing values as 0),
the synthesised node series takes its statistics from the summed data (upstream averages the children's
averages and takes min/max of the children's extremes, which is not the statistics of a sum), and job
statistics take the minimum of the node minimums (upstream starts the running-job minimum at 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from cc_core.metrics.lttb import lttb
from cc_core.schema.job import JobStatistics
from cc_core.schema.metrics import (
    JobData,
    JobMetric,
    MetricStatistics,
    Series,
    StatsSeries,
    scope_granularity,
)
from cc_core.schema.units import Unit

#: Metrics with this many series or more get a statistics series (upstream ``maxSeriesSize``).
STATS_SERIES_MIN = 8
#: Metrics whose node scope is synthesised from finer scopes when missing (upstream ``AddNodeScope``).
NODE_SCOPE_METRICS = ("flops_any", "mem_bw")


def round2(x: float) -> float:
    """Go's ``math.Round(x*100)/100``: half away from zero (Python's `round` rounds half to even)."""
    if x != x or x in (math.inf, -math.inf):
        return x
    return math.copysign(math.floor(abs(x) * 100 + 0.5), x) / 100


def _padded(rows: Sequence[np.ndarray]) -> np.ndarray:
    n = max((len(r) for r in rows), default=0)
    if all(len(r) == n for r in rows):
        return np.asarray(np.stack(rows), dtype=np.float64) if rows else np.empty((0, 0))
    out = np.full((len(rows), n), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def statistics_series(series: Sequence[Series]) -> StatsSeries:
    """Per time step, min / median / mean / max across ``series`` (NaN where fewer than three have a
    value, as upstream)."""
    rows = _padded([np.asarray(s.data, dtype=np.float64) for s in series])
    valid = ~np.isnan(rows)
    cnt = valid.sum(axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mn = np.fmin.reduce(rows, axis=0)
        mx = np.fmax.reduce(rows, axis=0)
        med = np.nanmedian(rows, axis=0)
        mean = np.where(valid, rows, 0.0).sum(axis=0) / cnt
    few = cnt < 3
    for arr in (mn, mx, med, mean):
        arr[few] = np.nan
    return StatsSeries(mean=mean, median=med, min=mn, max=mx)


def add_statistics_series(data: JobData, minimum: int = STATS_SERIES_MIN) -> None:
    """Attach a statistics series to every metric/scope with at least ``minimum`` series."""
    for scoped in data.values():
        for jm in scoped.values():
            if jm.statistics_series is None and len(jm.series) >= minimum:
                jm.statistics_series = statistics_series(jm.series)


def _nan_stats(data: np.ndarray) -> MetricStatistics:
    v = data[~np.isnan(data)]
    if v.size == 0:
        return MetricStatistics(0.0, 0.0, 0.0)
    return MetricStatistics(float(v.mean()), float(v.min()), float(v.max()))


def add_node_scope(data: JobData, metric: str) -> bool:
    """Synthesise the node scope of ``metric`` by summing its coarsest available scope per host (for
    ``flops_any`` and ``mem_bw`` when a backend delivered only finer scopes). False if nothing to do."""
    scoped = data.get(metric)
    if not scoped or "node" in scoped:
        return False
    scope = max(scoped, key=scope_granularity)
    jm = scoped[scope]
    if not jm.series:
        return False
    hosts: dict[str, list[np.ndarray]] = {}
    for s in jm.series:
        hosts.setdefault(s.hostname, []).append(np.asarray(s.data, dtype=np.float64))
    out = []
    for host, rows in hosts.items():
        arr = _padded(rows)
        valid = ~np.isnan(arr)
        summed = np.where(valid, arr, 0.0).sum(axis=0)
        summed[~valid.any(axis=0)] = np.nan
        out.append(Series(hostname=host, data=summed, statistics=_nan_stats(summed)))
    scoped["node"] = JobMetric(unit=jm.unit, timestep=jm.timestep, series=out)
    return True


def round_metric_stats(data: JobData) -> None:
    """Round every series' statistics to two decimals (upstream ``RoundMetricStats``)."""
    for scoped in data.values():
        for jm in scoped.values():
            for s in jm.series:
                st = s.statistics
                s.statistics = MetricStatistics(round2(st.avg), round2(st.min), round2(st.max))  # type: ignore[arg-type]


def resample(data: JobData, resolution: int, minimum_points: int) -> None:
    """LTTB-downsample every series to ``resolution`` seconds in place (archived jobs; upstream
    resamples each series with the metric's timestep and keeps it when not applicable)."""
    if resolution <= 0:
        return
    for scoped in data.values():
        for jm in scoped.values():
            step = jm.timestep
            for s in jm.series:
                try:
                    s.data, step = lttb(s.data, jm.timestep, resolution, minimum_points)
                except ValueError:  # not a multiple of the timestep: keep the native data
                    step = jm.timestep
            jm.timestep = step


def effective_scope(native: str, requested: str) -> str:
    """The coarser of a metric's native scope and a requested one (what a backend delivers, §8.4)."""
    return native if scope_granularity(native) > scope_granularity(requested) else requested


def filter_data(
    data: JobData,
    metrics: Sequence[str] | None,
    scopes: Sequence[str] | None,
    native: Mapping[str, str] | None = None,
) -> JobData:
    """The requested metrics, and of a metric with several scopes the requested ones (all of them when
    none matches), as upstream filters archived data. With the metrics' ``native`` scopes a requested
    scope finer than the native one selects the native scope, as a backend would deliver it (upstream
    drops it), so that a job reads the same from the archive as it did from its backend."""
    if metrics is None and scopes is None:
        return data
    names = list(data) if metrics is None else [m for m in metrics if m in data]
    out: JobData = {}
    for m in names:
        scoped = data[m]
        if len(scoped) > 1 and scopes is not None:
            nat = (native or {}).get(m)
            wanted = {effective_scope(nat, s) for s in scopes} if nat else set(scopes)
            subset = {s: jm for s, jm in scoped.items() if s in wanted}
            if subset:
                scoped = subset
        out[m] = scoped
    return out


def data_size(data: JobData) -> int:
    """Approximate bytes held by ``data`` (the arrays and a little per series), for the cache budget."""
    total = 0
    for scoped in data.values():
        for jm in scoped.values():
            total += 200
            for s in jm.series:
                total += 150 + getattr(s.data, "nbytes", 8 * len(s.data))
            ss = jm.statistics_series
            if ss is not None:
                total += sum(getattr(a, "nbytes", 0) for a in (ss.mean, ss.median, ss.min, ss.max))
    return total


def job_statistics(
    data: JobData, num_nodes: int, units: Mapping[str, Unit] | None = None
) -> dict[str, JobStatistics]:
    """Per metric, from its node-scope series: avg = Σ node averages / ``num_nodes`` (two decimals),
    min of the node minimums, max of the node maximums (the archiver's ``meta.json`` statistics)."""
    out: dict[str, JobStatistics] = {}
    for metric, scoped in data.items():
        jm = scoped.get("node")
        if jm is None or not jm.series:
            continue
        avgs = [float(s.statistics.avg) for s in jm.series]  # type: ignore[arg-type]
        mins = [float(s.statistics.min) for s in jm.series]  # type: ignore[arg-type]
        maxs = [float(s.statistics.max) for s in jm.series]  # type: ignore[arg-type]
        unit = (units or {}).get(metric) or jm.unit
        out[metric] = JobStatistics(
            unit=Unit(base=unit.base, prefix=unit.prefix),
            avg=round2(sum(avgs) / max(num_nodes, 1)),
            min=min(mins),
            max=max(maxs),
        )
    return out


def combine_node_stats(per_host: Mapping[str, MetricStatistics] | None, num_nodes: int) -> MetricStatistics:
    """Job-level statistics of one metric from its per-host statistics (running jobs): avg = Σ / nodes,
    min of minimums, max of maximums, two decimals; zeros when no host has data (as upstream)."""
    if not per_host:
        return MetricStatistics(0.0, 0.0, 0.0)
    vals = list(per_host.values())
    avg = sum(float(v.avg) for v in vals) / max(num_nodes, 1)  # type: ignore[arg-type]
    return MetricStatistics(
        round2(avg),
        round2(min(float(v.min) for v in vals)),  # type: ignore[arg-type]
        round2(max(float(v.max) for v in vals)),  # type: ignore[arg-type]
    )


def copy_job_data(data: JobData) -> JobData:
    """A deep copy (arrays included) for callers that modify what a cache may hold."""
    out: JobData = {}
    for m, scoped in data.items():
        out[m] = {}
        for sc, jm in scoped.items():
            ss = jm.statistics_series
            out[m][sc] = JobMetric(
                unit=jm.unit,
                timestep=jm.timestep,
                series=[
                    Series(s.hostname, np.array(s.data, dtype=np.float64), s.statistics, s.id)
                    for s in jm.series
                ],
                statistics_series=None
                if ss is None
                else StatsSeries(
                    ss.mean.copy(), ss.median.copy(), ss.min.copy(), ss.max.copy(), ss.percentiles
                ),
            )
    return out

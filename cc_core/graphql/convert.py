"""Pure conversions between GraphQL arguments/results and the services' data (no I/O).

Everything here is a small function of its inputs so it can be tested without a server: argument
normalisation (ids, pages, orders, filters), upstream's derived job fields (footprint split, energy
hardware classes, the concurrent-jobs rule), and the numeric post-processing of the analysis queries
(roofline tiles, footprint time weights, cluster metric sums).

Input objects are read by attribute, so both strawberry input instances and plain namespaces work;
strawberry's ``UNSET`` (an argument that was not given) counts as absent, like ``None``. Filters are
first normalised to upstream's wire form (`job_filter`: camelCase keys, only given fields) and then
converted to the database's structs (`cc_core.db.filters.JobFilter` …), which refuse unknown fields — so
a drift between the GraphQL inputs and the repository's filter model fails loudly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
from strawberry import UNSET

from cc_core.graphql.errors import InvalidInput

__all__ = [
    "DEFAULT_PAGE",
    "cluster_metric_sum",
    "concurrent_list_query",
    "energy_footprint_values",
    "energy_hardware",
    "epoch",
    "footprint_values",
    "is_given",
    "job_filter",
    "job_filters",
    "metric_histogram_specs",
    "node_filter",
    "node_filters",
    "order_by",
    "page_request",
    "parse_id",
    "parse_ids",
    "prefix_factor",
    "roofline_tiles",
    "time_weights",
    "wants_concurrent_jobs",
]

DEFAULT_PAGE = (50, 1)
"""`jobs` without ``page``: 50 items, first page (upstream)."""


def is_given(value: Any) -> bool:
    """False for None and for strawberry's ``UNSET`` (an optional argument the query did not give)."""
    return value is not None and value is not UNSET


def _get(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    return value if is_given(value) else None


# ------------------------------------------------------------------------------------------ ids, pages


def parse_id(value: Any, what: str = "job") -> int:
    """A database id from a GraphQL ``ID`` (string or int); a clear error for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    raise InvalidInput(f"invalid {what} id {value!r}: expected an integer")


def parse_ids(values: Iterable[Any], what: str = "tag") -> list[int]:
    return [parse_id(v, what) for v in values]


def page_request(page: Any, default: tuple[int, int] | None = DEFAULT_PAGE) -> Any:
    """Upstream's `PageRequest{itemsPerPage, page}` as the database's `PageRequest`, checked here with
    GraphQL-worded messages. ``itemsPerPage: -1`` means all rows. Without ``page`` the ``default``
    (items, page) applies, or None (no paging) when ``default`` is None."""
    from cc_core.db.filters import PageRequest

    if not is_given(page):
        if default is None:
            return None
        items, number = default
    else:
        items, number = page.items_per_page, page.page
    if items != -1 and items < 1:
        raise InvalidInput(f"page.itemsPerPage must be positive or -1 (all), got {items}")
    if number < 1:
        raise InvalidInput(f"page.page must be 1 or more, got {number}")
    return PageRequest(items_per_page=items, page=number)


def order_by(order: Any) -> Any:
    """`OrderByInput` → the database's `OrderByInput` (the field is validated by the repository)."""
    from cc_core.db.filters import OrderByInput

    if not is_given(order):
        return None
    direction = getattr(order.order, "value", order.order)
    return OrderByInput(field=order.field, type=order.type, order=str(direction).upper())


def epoch(value: Any) -> int:
    """Epoch seconds of a `Time` input (aware `datetime`) or of an int."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


# ------------------------------------------------------------------------------------------ filters

# Upstream applies only the first set operator, in this order (`buildStringCondition`).
_STRING_OPS = (("eq", "eq"), ("neq", "neq"), ("starts_with", "startsWith"), ("ends_with", "endsWith"))
_STRING_OPS_TAIL = (("contains", "contains"), ("in_", "in"))


def _string_input(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    for attr, key in (*_STRING_OPS, *_STRING_OPS_TAIL):
        op = _get(value, attr)
        if op is not None:
            return {key: list(op) if key == "in" else op}
    return None


def _range(value: Any, cast: type) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"from": cast(value.from_), "to": cast(value.to)}


def _time_range(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {}
    if (r := _get(value, "range")) is not None and r != "":
        out["range"] = r
    if (f := _get(value, "from_")) is not None:
        out["from"] = epoch(f)
    if (t := _get(value, "to")) is not None:
        out["to"] = epoch(t)
    return out or None


_METRIC_KEY = re.compile(r"[a-zA-Z0-9_]+")

_JOB_STRING_FIELDS = (
    ("job_id", "jobId"),
    ("user", "user"),
    ("project", "project"),
    ("job_name", "jobName"),
    ("cluster", "cluster"),
    ("sub_cluster", "subCluster"),
    ("partition", "partition"),
    ("node", "node"),
)
_JOB_INT_RANGES = (
    ("duration", "duration"),
    ("num_nodes", "numNodes"),
    ("num_accelerators", "numAccelerators"),
    ("num_hw_threads", "numHWThreads"),
)


def job_filter(f: Any) -> dict[str, Any]:
    """One `JobFilter` input as a plain mapping with upstream's field names and only the fields given.

    ``tags``/``dbId`` become ints, `StringInput` keeps only the operator upstream applies, `TimeRange`
    times become epoch seconds, ``metricStats`` names are checked against ``^[a-zA-Z0-9_]+$`` (they end
    up in a JSON path).
    """
    out: dict[str, Any] = {}
    if (tags := _get(f, "tags")) is not None:
        out["tags"] = parse_ids(tags, "tag")
    if (db_ids := _get(f, "db_id")) is not None:
        out["dbId"] = parse_ids(db_ids, "job")
    for attr, key in _JOB_STRING_FIELDS:
        if (s := _string_input(_get(f, attr))) is not None:
            out[key] = s
    if (array_job_id := _get(f, "array_job_id")) is not None:
        out["arrayJobId"] = int(array_job_id)
    for attr, key in _JOB_INT_RANGES:
        if (r := _range(_get(f, attr), int)) is not None:
            out[key] = r
    if (energy := _range(_get(f, "energy"), float)) is not None:
        out["energy"] = energy
    if (start := _time_range(_get(f, "start_time"))) is not None:
        out["startTime"] = start
    if (states := _get(f, "state")) is not None:
        out["state"] = [str(s) for s in states]
    if (stats := _get(f, "metric_stats")) is not None:
        items = []
        for item in stats:
            if not _METRIC_KEY.fullmatch(item.metric_name):
                raise InvalidInput(
                    f"metricStats.metricName {item.metric_name!r} is invalid: only letters, digits and _"
                )
            items.append({"metricName": item.metric_name, "range": _range(item.range, float)})
        out["metricStats"] = items
    for attr in ("shared", "schedule"):
        if (value := _get(f, attr)) is not None:
            out[attr] = value
    return out


def job_filters(filters: Any) -> list[Any]:
    """The ANDed filter list of a query as `cc_core.db.filters.JobFilter` structs (absent = none)."""
    from cc_core.db.filters import JobFilter

    if not is_given(filters):
        return []
    return [_to_struct(job_filter(f), JobFilter, "JobFilter") for f in filters]


def _to_struct(value: dict[str, Any], struct: type, what: str) -> Any:
    try:
        return msgspec.convert(value, struct)
    except msgspec.ValidationError as e:  # a GraphQL input the repository's model does not know
        raise InvalidInput(f"{what}: {e}") from None


def node_filter(f: Any) -> dict[str, Any]:
    """One `NodeFilter` input, normalised like `job_filter`."""
    out: dict[str, Any] = {}
    for attr, key in (("hostname", "hostname"), ("cluster", "cluster"), ("sub_cluster", "subCluster")):
        if (s := _string_input(_get(f, attr))) is not None:
            out[key] = s
    for attr, key in (
        ("scheduler_state", "schedulerState"),
        ("health_state", "healthState"),
        ("time_start", "timeStart"),
    ):
        if (value := _get(f, attr)) is not None:
            out[key] = value
    return out


def node_filters(filters: Any) -> list[Any]:
    """`NodeFilter` inputs as `cc_core.db.nodes.NodeFilter` structs."""
    from cc_core.db.nodes import NodeFilter

    if not is_given(filters):
        return []
    return [_to_struct(node_filter(f), NodeFilter, "NodeFilter") for f in filters]


# ------------------------------------------------------------------------------------------ job fields


def footprint_values(footprint: Mapping[str, float] | None) -> list[tuple[str, str, float]]:
    """``(name, stat, value)`` per footprint key, split at the last ``_`` (``flops_any_avg`` →
    ``flops_any``, ``avg``), as upstream's resolver does (a key without ``_`` gives name ``""``)."""
    out = []
    for key, value in (footprint or {}).items():
        name, _, stat = key.rpartition("_")
        out.append((name, stat, value))
    return out


_HARDWARE = (
    (re.compile("cpu|Cpu|CPU"), "CPU"),
    (re.compile("acc|Acc|ACC"), "Accelerator"),
    (re.compile("mem|Mem|MEM"), "Memory"),
    (re.compile("core|Core|CORE"), "Core"),
)


def energy_hardware(metric: str) -> str:
    """Upstream's hardware class of an energy metric, by the first matching name fragment."""
    for pattern, hardware in _HARDWARE:
        if pattern.search(metric):
            return hardware
    return "Other"


def energy_footprint_values(energy: Mapping[str, float] | None) -> list[tuple[str, str, float]]:
    """``(hardware, metric, value)`` for each entry of a job's energy footprint."""
    return [(energy_hardware(name), name, value) for name, value in (energy or {}).items()]


def wants_concurrent_jobs(job: Any, min_duration: int = 600) -> bool:
    """Upstream lists concurrent jobs only for shared-node jobs that ran longer than 10 minutes."""
    return job.shared != "none" and job.duration > min_duration


def concurrent_list_query(cluster: str, items: Iterable[Any]) -> str:
    """Upstream's `JobLinkResultList.listQuery`: the job-list URL query of the concurrent jobs."""
    return f"cluster={cluster}" + "".join(f"&jobId={item.job_id}" for item in items)


def metric_histogram_specs(
    metrics: Sequence[str], clusters: Sequence[Any], cluster: str | None
) -> list[tuple[str, float, str, str]]:
    """``(metric, peak, footprint stat, unit)`` per `histMetrics` metric, chosen as upstream does: the
    filtered cluster's config; without a cluster filter (or a peak of 0 there) the largest peak over all
    clusters, unit and stat from the first cluster that has them. Metrics no cluster knows are left out."""
    out = []
    for metric in metrics:
        peak, unit, stat, known = 0.0, "", "", False
        scopes = (
            ([c for c in clusters if c.name == cluster], list(clusters)) if cluster else (list(clusters),)
        )
        for candidates in scopes:
            for c in candidates:
                mc = c.metric(metric)
                if mc is None:
                    continue
                known = True
                peak = max(peak, mc.peak)
                unit = unit or (mc.unit.prefix + mc.unit.base)
                stat = stat or mc.footprint
            if peak:
                break
        if known:
            out.append((metric, peak, stat or "avg", unit))
    return out


def live_metric_bins(values: np.ndarray, peak: float, bins: int) -> list[tuple[int, int, int, int]]:
    """``(bin, count, min, max)`` of running jobs' averages, as upstream bins them: integer bin width
    ``int(peak) // bins``, bin ``b`` (from 1) holding the averages whose integer part is in
    ``[width·(b-1), width·b)``; NaN (no data) and values at or beyond the last edge are not counted."""
    width = int(peak) // bins
    finite = np.asarray(values, dtype=np.float64)
    finite = np.trunc(finite[np.isfinite(finite)])
    out = []
    for b in range(1, bins + 1):
        lo, hi = width * (b - 1), width * b
        out.append((b, int(np.count_nonzero((finite >= lo) & (finite < hi))), lo, hi))
    return out


# ------------------------------------------------------------------------------------------ analysis


def roofline_tiles(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    rows: int,
    cols: int,
    min_x: float,
    min_y: float,
    max_x: float,
    max_y: float,
) -> np.ndarray:
    """Counts of (log10 intensity, log10 flops) samples per tile, ``[row][col]`` (upstream's heatmap).

    ``pairs`` are (flops_any, mem_bw) node series; x = flops/membw, y = flops. Samples outside the box, or
    NaN, are skipped; the series are cut to the shorter length.
    """
    if rows < 0 or cols < 0:
        raise InvalidInput("rooflineHeatmap: rows and cols must not be negative")
    tiles = np.zeros((rows, cols), dtype=np.float64)
    if rows == 0 or cols == 0:
        return tiles
    lx0, ly0, lx1, ly1 = (math.log10(v) if v > 0 else -math.inf for v in (min_x, min_y, max_x, max_y))
    with np.errstate(all="ignore"):
        for flops, membw in pairs:
            n = min(len(flops), len(membw))
            if n == 0:
                continue
            f = np.asarray(flops[:n], dtype=np.float64)
            m = np.asarray(membw[:n], dtype=np.float64)
            x = np.log10(f / m)
            y = np.log10(f)
            keep = ~(np.isnan(x) | np.isnan(y)) & (x >= lx0) & (x < lx1) & (y >= ly0) & (y <= ly1)
            tx = np.floor((x[keep] - lx0) / (lx1 - lx0) * cols)
            ty = np.floor((y[keep] - ly0) / (ly1 - ly0) * rows)
            ok = (tx >= 0) & (tx < cols) & (ty >= 0) & (ty < rows)
            np.add.at(tiles, (ty[ok].astype(np.intp), tx[ok].astype(np.intp)), 1.0)
    return tiles


def time_weights(jobs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`jobsFootprints` weights per job: node, accelerator and core "hours" (upstream: duration/60 × count,
    i.e. minutes; 1.0 where the count is 0)."""
    duration = np.fromiter((j.duration for j in jobs), dtype=np.float64, count=len(jobs)) / 60.0
    nodes = np.fromiter((j.num_nodes for j in jobs), dtype=np.float64, count=len(jobs))
    accs = np.fromiter((j.num_acc for j in jobs), dtype=np.float64, count=len(jobs))
    cores = np.fromiter((j.num_hwthreads for j in jobs), dtype=np.float64, count=len(jobs))
    return (
        duration * nodes,
        np.where(accs > 0, duration * accs, 1.0),
        np.where(cores > 0, duration * cores, 1.0),
    )


_PREFIXES = {
    "": 0,
    "K": 3,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
    "m": -3,
    "u": -6,
    "n": -9,
}


def prefix_factor(old: str, new: str) -> float:
    """The factor converting a value with SI prefix ``old`` to prefix ``new``, computed as cc-lib's ccUnits
    does (``1e9 / 1e12`` for G → T), so that the rounding below sees the same doubles as upstream."""
    try:
        return float(f"1e{_PREFIXES[old]}") / float(f"1e{_PREFIXES[new]}")
    except KeyError as e:
        raise InvalidInput(f"unknown unit prefix {e.args[0]!r}") from None


def cluster_metric_sum(series: Iterable[np.ndarray], prefix: str, target: str = "T") -> np.ndarray | None:
    """Sum of node series (NaN counts as 0; series of another length than the first are skipped, as
    upstream does), converted from ``prefix`` to ``target`` and rounded to 2 decimals."""
    total: np.ndarray | None = None
    for data in series:
        arr = np.asarray(data, dtype=np.float64)
        if total is None:
            if arr.size == 0:
                continue
            total = np.nan_to_num(arr, nan=0.0).copy()
        elif arr.shape == total.shape:
            total += np.nan_to_num(arr, nan=0.0)
    if total is None:
        return None
    scaled = total * prefix_factor(prefix, target) * 100.0
    # Go's math.Round: halves away from zero (numpy rounds them to even).
    return np.copysign(np.floor(np.abs(scaled) + 0.5), scaled) / 100.0

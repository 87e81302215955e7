"""Job metric data: upstream's `schema.JobData` (archive ``data.json``, metric backends' results).

``JobData = {metric: {scope: JobMetric}}``. Every numeric series is a numpy ``float64`` array with NaN
where the JSON has ``null``, so that plotting, statistics and resampling work on whole arrays instead of
Python lists.

JSON follows upstream's marshallers (`cc-lib:schema/float.go`) byte for byte where it matters:

* series values are written with exactly two decimals after rounding to float32 (upstream formats them
  with ``bitSize 32``), statistics and statistics series with two decimals of the float64 value;
* NaN (and ±Inf, which upstream would write as invalid JSON) become ``null``;
* ``Series`` keys come in the order ``hostname, id, statistics{min,avg,max}, data``; ``JobMetric`` keys in
  Go's declaration order ``statisticsSeries, unit, series, timestep``.

Decoding is the hot path (a job view loads a 13 MB ``data.json`` at once). msgspec decodes the structure
and hands each ``data`` array, as a plain list, to a ``dec_hook`` that converts it with one
``numpy.array`` call: no per-element Python code, and no element type checks that numpy repeats anyway.
The result costs about the same as a schema-less ``msgspec.json.decode`` of the same bytes.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from cc_core.schema.units import Unit, no_unit

# Metric scopes, coarse to fine as upstream's granularity table orders them (`schema.MetricScope`).
METRIC_SCOPES: tuple[str, ...] = ("node", "socket", "memoryDomain", "core", "hwthread", "accelerator")
_SCOPE_GRANULARITY = {"node": 10, "socket": 5, "memoryDomain": 4, "core": 3, "hwthread": 2, "accelerator": 1}


def scope_granularity(scope: str) -> int:
    """Upstream's ordering value of a scope (node 10 … accelerator 1); -1 for an unknown scope."""
    return _SCOPE_GRANULARITY.get(scope, -1)


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


class MetricStatistics(msgspec.Struct):
    """Statistics of one series over time. ``null`` in JSON reads as NaN (upstream reads it as 0)."""

    avg: float | None = 0.0
    min: float | None = 0.0
    max: float | None = 0.0

    def __post_init__(self) -> None:
        # Nulls are rare; normalising them here keeps every consumer free of None checks.
        if self.avg is None or self.min is None or self.max is None:
            self.avg = _nan_if_none(self.avg)
            self.min = _nan_if_none(self.min)
            self.max = _nan_if_none(self.max)


def _arrays_equal(a: Any, b: Any) -> bool:
    return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


class Series(msgspec.Struct):
    """One time series: a node, or a socket/core/accelerator of a node (``id``).

    ``data`` is a float64 array, NaN for missing samples. Series missing ``statistics`` in JSON (old
    archives) read as zeros, as upstream's decoder leaves them.
    """

    hostname: str
    data: np.ndarray
    statistics: MetricStatistics = msgspec.field(default_factory=MetricStatistics)
    id: str | None = None

    def __eq__(self, other: object) -> bool:
        # numpy arrays compare element-wise; equality of series means same values with NaN == NaN.
        if not isinstance(other, Series):
            return NotImplemented
        return (
            self.hostname == other.hostname
            and self.id == other.id
            and _stats_equal(self.statistics, other.statistics)
            and _arrays_equal(self.data, other.data)
        )

    __hash__ = None  # type: ignore[assignment]


def _stats_equal(a: MetricStatistics, b: MetricStatistics) -> bool:
    return all(
        x == y or (x != x and y != y)  # NaN-aware
        for x, y in ((a.avg, b.avg), (a.min, b.min), (a.max, b.max))
    )


class StatsSeries(msgspec.Struct):
    """Statistics across the series of a metric, per time step (``statisticsSeries``).

    ``percentiles`` maps the percentile (10, 25, 50, …) to its series; JSON keys are strings.
    """

    mean: np.ndarray
    median: np.ndarray
    min: np.ndarray
    max: np.ndarray
    percentiles: dict[int, np.ndarray] | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatsSeries):
            return NotImplemented
        if not all(
            _arrays_equal(getattr(self, k), getattr(other, k)) for k in ("mean", "median", "min", "max")
        ):
            return False
        a, b = self.percentiles or {}, other.percentiles or {}
        return a.keys() == b.keys() and all(_arrays_equal(a[k], b[k]) for k in a)

    __hash__ = None  # type: ignore[assignment]


class JobMetric(msgspec.Struct, rename={"statistics_series": "statisticsSeries"}):
    """A metric at one scope: its unit, sampling interval (s) and series."""

    unit: Unit = msgspec.field(default_factory=no_unit)
    timestep: int = 0
    series: list[Series] = msgspec.field(default_factory=list)
    statistics_series: StatsSeries | None = None


JobData = dict[str, dict[str, JobMetric]]
"""``{metric: {scope: JobMetric}}`` — the content of ``data.json``."""


class ScopedStats(msgspec.Struct, omit_defaults=True):
    """Statistics of one series, without its data (upstream `schema.ScopedStats`)."""

    hostname: str
    data: MetricStatistics
    id: str | None = None


JobStats = dict[str, dict[str, list[ScopedStats]]]
"""``{metric: {scope: [ScopedStats]}}`` — what `load_job_stats` returns (upstream `ScopedJobStats`)."""


# --------------------------------------------------------------------------------------------- decode


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is np.ndarray:
        # `obj` is the decoded JSON list; numpy turns None into NaN and rejects non-numbers
        # (its TypeError/ValueError becomes a msgspec.ValidationError naming the JSON path).
        if not isinstance(obj, list):
            raise TypeError(f"expected an array, got {type(obj).__name__}")
        return np.array(obj, dtype=np.float64)
    raise NotImplementedError(f"cannot decode {type_!r}")


_DATA_DECODER = msgspec.json.Decoder(JobData, dec_hook=_dec_hook)


class _StatsOnlySeries(msgspec.Struct):
    hostname: str
    statistics: MetricStatistics = msgspec.field(default_factory=MetricStatistics)
    id: str | None = None


class _StatsOnlyMetric(msgspec.Struct):
    series: list[_StatsOnlySeries] = msgspec.field(default_factory=list)


_STATS_DECODER = msgspec.json.Decoder(dict[str, dict[str, _StatsOnlyMetric]])


def decode_job_data(buf: bytes | bytearray | memoryview | str) -> JobData:
    """Decode a ``data.json`` document. Raises `msgspec.DecodeError` / `msgspec.ValidationError`."""
    return _DATA_DECODER.decode(buf)


def decode_job_stats(buf: bytes | bytearray | memoryview | str) -> JobStats:
    """The per-series statistics of a ``data.json`` document, skipping the data arrays.

    Mirrors upstream's `DecodeJobStats`: scopes (and metrics) without any series are left out. Skipping
    the arrays makes this several times faster than `decode_job_data`.
    """
    raw = _STATS_DECODER.decode(buf)
    out: JobStats = {}
    for metric, scopes in raw.items():
        per_scope: dict[str, list[ScopedStats]] = {}
        for scope, jm in scopes.items():
            if jm.series:
                per_scope[scope] = [ScopedStats(s.hostname, s.statistics, s.id) for s in jm.series]
        if per_scope:
            out[metric] = per_scope
    return out


def job_data_stats(data: JobData) -> JobStats:
    """`decode_job_stats` for already decoded data."""
    out: JobStats = {}
    for metric, scopes in data.items():
        per_scope = {
            scope: [ScopedStats(s.hostname, s.statistics, s.id) for s in jm.series]
            for scope, jm in scopes.items()
            if jm.series
        }
        if per_scope:
            out[metric] = per_scope
    return out


# --------------------------------------------------------------------------------------------- encode

_FMT2 = "%.2f".__mod__
_json_str = msgspec.json.encode


def format_floats(values: np.ndarray, *, float32: bool = False) -> str:
    """A JSON array body (without brackets): two decimals each, ``null`` for NaN/±Inf.

    ``float32=True`` rounds to float32 first, as upstream's `Series` marshaller does for series data.
    """
    arr = np.asarray(values, dtype=np.float32 if float32 else np.float64)
    lst = arr.tolist()
    if np.isfinite(arr).all():
        return ",".join(map(_FMT2, lst))
    return ",".join("null" if x != x or x in (math.inf, -math.inf) else _FMT2(x) for x in lst)


def _fmt_stat(x: float | None) -> str:
    if x is None or x != x or x in (math.inf, -math.inf):
        return "null"
    return _FMT2(x)


def _unit_json(unit: Unit) -> str:
    # Upstream always writes `base` (the JSON schema requires it) and omits an empty prefix.
    if unit.prefix:
        return f'{{"base":{_json_str(unit.base).decode()},"prefix":{_json_str(unit.prefix).decode()}}}'
    return f'{{"base":{_json_str(unit.base).decode()}}}'


def _series_json(s: Series, out: list[str]) -> None:
    out.append('{"hostname":')
    out.append(_json_str(s.hostname).decode())
    if s.id is not None:
        out.append(',"id":')
        out.append(_json_str(s.id).decode())
    st = s.statistics
    out.append(
        f',"statistics":{{"min":{_fmt_stat(st.min)},"avg":{_fmt_stat(st.avg)},"max":{_fmt_stat(st.max)}}}'
    )
    out.append(',"data":[')
    out.append(format_floats(s.data, float32=True))
    out.append("]}")


def _stats_series_json(ss: StatsSeries, out: list[str]) -> None:
    out.append("{")
    if ss.percentiles:
        # Go's encoder sorts map keys by their string form ("10" < "25" < "5").
        items = sorted((str(k), v) for k, v in ss.percentiles.items())
        out.append('"percentiles":{')
        out.append(",".join(f'"{k}":[{format_floats(v)}]' for k, v in items))
        out.append("},")
    out.append(",".join(f'"{k}":[{format_floats(getattr(ss, k))}]' for k in ("mean", "median", "min", "max")))
    out.append("}")


def encode_job_metric(jm: JobMetric) -> bytes:
    """One `JobMetric` as upstream writes it."""
    out: list[str] = []
    _job_metric_json(jm, out)
    return "".join(out).encode()


def _job_metric_json(jm: JobMetric, out: list[str]) -> None:
    out.append("{")
    if jm.statistics_series is not None:
        out.append('"statisticsSeries":')
        _stats_series_json(jm.statistics_series, out)
        out.append(",")
    out.append(f'"unit":{_unit_json(jm.unit)},"series":[')
    for i, s in enumerate(jm.series):
        if i:
            out.append(",")
        _series_json(s, out)
    out.append(f'],"timestep":{int(jm.timestep)}}}')


def encode_job_data(data: JobData) -> bytes:
    """Serialise `JobData` as upstream's ``data.json`` (compact, newline-terminated like Go's Encoder)."""
    out: list[str] = ["{"]
    for i, (metric, scopes) in enumerate(data.items()):
        if i:
            out.append(",")
        out.append(_json_str(metric).decode())
        out.append(":{")
        for j, (scope, jm) in enumerate(scopes.items()):
            if j:
                out.append(",")
            out.append(_json_str(scope).decode())
            out.append(":")
            _job_metric_json(jm, out)
        out.append("}")
    out.append("}\n")
    return "".join(out).encode()


def round_like_archive(data: JobData) -> JobData:
    """The values a write → read round trip through ``data.json`` yields (two decimals, float32 data).

    Useful to compare data that was just archived with data read back.
    """
    return decode_job_data(encode_job_data(data))

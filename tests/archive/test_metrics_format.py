"""data.json: numpy series, upstream's float format (2 decimals, null), key order, fast statistics."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from cc_core.schema import JobMetric, MetricStatistics, Series, StatsSeries, Unit
from cc_core.schema.metrics import (
    decode_job_data,
    decode_job_stats,
    encode_job_data,
    encode_job_metric,
    format_floats,
    job_data_stats,
)

DOC = b"""{"cpu_load": {"node": {"unit": {"base": "load"}, "timestep": 60, "series": [
  {"hostname": "e0102", "statistics": {"avg": 17.98, "min": 4.01, "max": 19.42},
   "data": [4.01, 14.37, null, 18.13]},
  {"data": [1, 2], "hostname": "e0103", "id": "3"}]}}}"""


def test_decode_gives_float64_arrays_with_nan_for_null() -> None:
    data = decode_job_data(DOC)
    jm = data["cpu_load"]["node"]
    assert jm.unit == Unit("load") and jm.timestep == 60 and jm.statistics_series is None
    s0, s1 = jm.series
    assert isinstance(s0.data, np.ndarray) and s0.data.dtype == np.float64
    assert s0.data[:2].tolist() == [4.01, 14.37] and math.isnan(s0.data[2])
    assert s0.statistics == MetricStatistics(avg=17.98, min=4.01, max=19.42)
    # Missing statistics read as zeros, as upstream's decoder leaves them; ids are strings.
    assert s1.statistics == MetricStatistics(0.0, 0.0, 0.0) and s1.id == "3"


def test_bad_values_are_errors_with_a_json_path() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"series\[0\]\.data"):
        decode_job_data(b'{"cpu_load": {"node": {"series": [{"hostname": "a", "data": ["x"]}]}}}')
    with pytest.raises(msgspec.ValidationError, match="hostname"):
        decode_job_data(b'{"cpu_load": {"node": {"series": [{"data": [1]}]}}}')
    with pytest.raises(msgspec.DecodeError, match="truncated"):
        decode_job_data(DOC[:100])


def test_series_json_is_upstreams() -> None:
    jm = JobMetric(
        unit=Unit("B/s", "G"),
        timestep=60,
        series=[
            Series(
                "h1",
                np.array([0.125, 1.0, np.nan, -0.001, np.inf, 1e3]),
                MetricStatistics(1.0, 0.5, 2.005),
                "0",
            )
        ],
    )
    out = encode_job_metric(jm)
    assert out == (
        b'{"unit":{"base":"B/s","prefix":"G"},"series":[{"hostname":"h1","id":"0",'
        b'"statistics":{"min":0.50,"avg":1.00,"max":2.00},'  # 2.005 is 2.00499999… in binary
        b'"data":[0.12,1.00,null,-0.00,null,1000.00]}],"timestep":60}'
    )


def test_data_values_are_rounded_as_float32_like_upstream() -> None:
    # 0.365 is 0.36499999999999999 as float64 but 0.36500000953… as float32.
    assert format_floats(np.array([0.365])) == "0.36"
    assert format_floats(np.array([0.365]), float32=True) == "0.37"
    assert format_floats(np.array([], dtype=float)) == ""


def test_statistics_series_key_order_and_percentile_sorting() -> None:
    ss = StatsSeries(
        mean=np.array([1.0]),
        median=np.array([2.0]),
        min=np.array([0.0]),
        max=np.array([np.nan]),
        percentiles={5: np.array([1.0]), 10: np.array([2.0]), 90: np.array([3.0])},
    )
    out = encode_job_metric(JobMetric(unit=Unit("W"), timestep=10, series=[], statistics_series=ss))
    assert out == (
        b'{"statisticsSeries":{"percentiles":{"10":[2.00],"5":[1.00],"90":[3.00]},'
        b'"mean":[1.00],"median":[2.00],"min":[0.00],"max":[null]},'
        b'"unit":{"base":"W"},"series":[],"timestep":10}'
    )
    back = decode_job_data(b'{"m": {"node": ' + out + b"}}")["m"]["node"]
    assert back.statistics_series == ss


def test_round_trip_and_equality() -> None:
    data = decode_job_data(DOC)
    again = decode_job_data(encode_job_data(data))
    assert again == data
    assert encode_job_data(again) == encode_job_data(data)
    assert encode_job_data(data).endswith(b"}\n")
    changed = decode_job_data(DOC)
    changed["cpu_load"]["node"].series[0].data[0] = 5.0
    assert changed != data


def test_job_stats_skip_the_data() -> None:
    stats = decode_job_stats(DOC)
    assert stats == job_data_stats(decode_job_data(DOC))
    first = stats["cpu_load"]["node"][0]
    assert (first.hostname, first.id, first.data.max) == ("e0102", None, 19.42)
    assert decode_job_stats(b'{"m": {"node": {"series": []}}}') == {}


def test_null_statistics_read_as_nan_and_write_as_null() -> None:
    doc = b'{"m": {"node": {"series": [{"hostname": "a", "statistics": {"avg": null, "min": 1, "max": 2}, "data": []}]}}}'
    s = decode_job_data(doc)["m"]["node"].series[0]
    assert math.isnan(s.statistics.avg)  # type: ignore[arg-type]
    assert b'"statistics":{"min":1.00,"avg":null,"max":2.00}' in encode_job_data(decode_job_data(doc))

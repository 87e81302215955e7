"""Numeric series skip graphql-core's per-element completion and still produce the same JSON bytes.

The *naive path* is graphql-core's own list completion (strawberry's executor, every element through
the scalar's serializer); the *bypass* is `SeriesExecutor`. Both encode with `encode_response`.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from graphql import execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from cc_core.graphql.execution import Fixed2Ref, SeriesExecutor, encode_response
from cc_core.graphql.floats import encode_fixed2, fixed2
from cc_core.graphql.schema import schema
from cc_core.graphql.services import GraphQLSettings

from .conftest import FakeJobs, FakeMetrics, context_for, make_job, make_job_data

JOB_METRICS = """
query ($id: ID!) {
  jobMetrics(id: $id) {
    name scope
    metric {
      unit { base prefix } timestep
      statisticsSeries { mean median min max }
      series { hostname id statistics { min avg max } data }
    }
  }
}
"""


def _run(
    query: str, context: Any, executor: type, variables: dict[str, Any] | None = None
) -> tuple[bytes, Any]:
    async def go() -> Any:
        result = execute(
            schema._schema,
            parse(query),
            context_value=context,
            variable_values=variables,
            executor_class=executor,
            operation_extensions=None,
        )
        return await result if asyncio.iscoroutine(result) or hasattr(result, "__await__") else result

    result = asyncio.run(go())
    assert not result.errors, result.errors
    return encode_response(result.data), result.data


def _reference(values: Any) -> bytes:
    return b"[" + b",".join(fixed2(v) for v in np.asarray(values, dtype=np.float64).tolist()) + b"]"


# ------------------------------------------------------------------------------------------ formatter

ADVERSARIAL = [
    0.0, -0.0, 0.005, 0.015, 0.025, 0.125, 0.375, 1.005, 2.675, -0.001, -0.005, -0.004999,
    9.995, 99.995, 999.995, 1e6, 123456789.125, 21474836.47, 21474836.48, 1e11, 1e13, -1e13,
    1.5e15, 1e20, 1e300, -1e300, math.nan, math.inf, -math.inf, 5e-324, -5e-324,
]  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_formatter_equals_per_value_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = [
        rng.uniform(-1e4, 1e4, 300),
        np.round(rng.uniform(-100, 100, 300), 3),  # three decimals: many exact and inexact ties
        (rng.integers(-(10**6), 10**6, 300) + 0.5) / 100,
        rng.choice(np.array(ADVERSARIAL), 300),
        rng.uniform(0, 1e12, 300).astype(np.float32),  # float32 input is formatted as its float64 value
        10.0 ** rng.uniform(-5, 14, 300) * rng.choice([-1.0, 1.0], 300),
        np.array([], dtype=np.float64),
        rng.integers(-50, 50, 200),  # integer arrays too
    ]
    rng.shuffle(arrays)  # type: ignore[arg-type]
    assert encode_fixed2(arrays) == [_reference(a) for a in arrays]


def test_formatter_small_and_empty_inputs() -> None:
    assert encode_fixed2([]) == []
    assert encode_fixed2([np.array([]), np.array([])]) == [b"[]", b"[]"]
    assert encode_fixed2([np.array([1.0, math.nan, -2.5])]) == [b"[1.00,null,-2.50]"]
    assert encode_fixed2([np.array([math.nan] * 500)]) == [b"[" + b",".join([b"null"] * 500) + b"]"]


def test_two_decimals_nan_null_and_go_rounding() -> None:
    assert fixed2(1) == b"1.00"
    assert fixed2(2.675) == b"2.67"  # the binary value is 2.67499…, as Go's strconv sees it
    assert fixed2(0.125) == b"0.12"  # exact tie: half to even
    assert fixed2(-0.001) == b"-0.00"  # Go keeps the sign
    assert fixed2(math.nan) == b"null"
    assert fixed2(math.inf) == b"null"  # Go would write +Inf, which is not JSON


# ------------------------------------------------------------------------------------------ executor


def test_job_metrics_bypass_equals_naive_path() -> None:
    data = make_job_data(metrics=3, nodes=8, samples=300)
    ctx = context_for(jobs=FakeJobs(make_job()), metrics=FakeMetrics(data))
    fast, fast_data = _run(JOB_METRICS, ctx, SeriesExecutor, {"id": "7"})
    naive, _ = _run(JOB_METRICS, ctx, StrawberryGraphQLCoreExecutionContext, {"id": "7"})
    assert fast == naive
    # ... and the bypass did happen: series data are placeholders, not lists of 300 fragments.
    first = fast_data["jobMetrics"][0]["metric"]["series"][0]["data"]
    assert isinstance(first, Fixed2Ref)
    # the JSON is upstream's text: exactly two decimals, null for NaN
    series = data["metric0"]["node"].series[0].data
    assert _reference(series) in fast
    assert b"null" in _reference(series)


def test_python_lists_take_the_naive_path_with_the_same_text() -> None:
    data = make_job_data(metrics=1, nodes=2, samples=50)
    as_lists = make_job_data(metrics=1, nodes=2, samples=50)
    for s in as_lists["metric0"]["node"].series:
        s.data = s.data.tolist()  # type: ignore[assignment]
    a, _ = _run(
        JOB_METRICS,
        context_for(jobs=FakeJobs(make_job()), metrics=FakeMetrics(data)),
        SeriesExecutor,
        {"id": "7"},
    )
    b, _ = _run(
        JOB_METRICS,
        context_for(jobs=FakeJobs(make_job()), metrics=FakeMetrics(as_lists)),
        SeriesExecutor,
        {"id": "7"},
    )
    assert a == b


class _HeatmapMetrics:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(3)

    async def load_data(self, job: Any, metrics: Any, scopes: Any, resolution: int) -> Any:
        from cc_core.schema.metrics import JobMetric, Series
        from cc_core.schema.units import Unit

        def metric(lo: float, hi: float) -> JobMetric:
            return JobMetric(
                unit=Unit(base="F/s"), series=[Series(hostname="h", data=10 ** self.rng.uniform(lo, hi, 500))]
            )

        return {"flops_any": {"node": metric(0, 3)}, "mem_bw": {"node": metric(0, 2)}}

    async def load_averages(self, jobs: Any, metrics: Any) -> list[np.ndarray]:
        return [np.array([1.005, math.nan, 3.0])[: len(jobs)] for _ in metrics]


def test_roofline_heatmap_and_footprints_bypass_equal_naive_path() -> None:
    query = """{
      rooflineHeatmap(filter: [], rows: 10, cols: 12, minX: 0.01, minY: 1.0, maxX: 1000.0, maxY: 10000.0)
      jobsFootprints(metrics: ["flops_any"]) {
        timeWeights { nodeHours accHours coreHours }
        metrics { metric data }
      }
    }"""

    def ctx() -> Any:
        c = context_for(jobs=FakeJobs(*(make_job(id=i) for i in range(3))), metrics=_HeatmapMetrics())
        c.services.settings = GraphQLSettings()
        return c

    fast, _ = _run(query, ctx(), SeriesExecutor)
    naive, naive_data = _run(query, ctx(), StrawberryGraphQLCoreExecutionContext)
    assert fast == naive
    heatmap = naive_data["rooflineHeatmap"]
    assert len(heatmap) == 10 and all(len(row) == 12 for row in heatmap)
    assert sum(map(sum, heatmap)) > 0
    assert b'"data":[1.00,null,3.00]' in fast


def test_encoder_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        encode_response({"x": object()})


# ------------------------------------------------------------------------------------ lists of objects


def _both(query: str, context_factory: Any) -> tuple[Any, Any]:
    """(fast, naive) results — data and error messages/paths — of the same query and services."""

    def run(executor: type) -> Any:
        async def go() -> Any:
            result = execute(
                schema._schema, parse(query), context_value=context_factory(), executor_class=executor
            )
            return await result if hasattr(result, "__await__") else result

        result = asyncio.run(go())
        errors = [(e.message, e.path) for e in result.errors or []]
        return encode_response(result.data), errors

    return run(SeriesExecutor), run(StrawberryGraphQLCoreExecutionContext)


OBJECT_LIST_QUERY = """
{ jobs { items { __typename id jobId user project startTime state numHWThreads SMT energy
  resources { hostname hwthreads } footprint { name stat value } energyFootprint { hardware value } metaData
  alias: cluster tags { name } } } }
"""


def test_object_lists_complete_like_graphql_core() -> None:
    jobs = [make_job(id=i, job_id=100 + i, energy=i * 0.5, tags=[]) for i in range(1, 6)]
    fast, naive = _both(OBJECT_LIST_QUERY, lambda: context_for(jobs=FakeJobs(*jobs)))
    assert fast == naive and not fast[1]
    assert b'"alias":"fritz"' in fast[0] and b'"__typename":"Job"' in fast[0]


@pytest.mark.parametrize(
    "broken",
    [
        {"project": None},  # null in a non-null field: the error and its path come from graphql-core
        {"job_id": 2**40},  # an Int out of range
        {"energy": math.nan},  # a Float that is not finite
        {"tags": None},  # tags not loaded with the page: the DataLoader (an awaitable) answers
        {"smt": "two"},  # an Int field holding text
    ],
)
def test_object_lists_fall_back_where_graphql_core_differs(broken: dict[str, Any]) -> None:
    jobs = [make_job(id=1, tags=[]), make_job(id=2, **{"tags": [], **broken}), make_job(id=3, tags=[])]

    class _Tags:
        async def of_jobs(self, user: Any, ids: list[int]) -> dict[int, list[Any]]:
            return {i: [] for i in ids}

    fast, naive = _both(OBJECT_LIST_QUERY, lambda: context_for(jobs=FakeJobs(*jobs), tags=_Tags()))
    assert fast == naive
    assert bool(naive[1]) == ("tags" not in broken), naive[1]  # the bad values really are errors

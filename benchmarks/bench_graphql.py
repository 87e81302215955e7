"""GraphQL numeric series: ``jobMetrics`` server time against msgspec encoding the same numpy data.

*ours*: `GraphQLEngine.execute` of upstream's job-view ``jobMetrics`` query (cached parse/validation,
execution with `SeriesExecutor`, response encoding), services answering from memory.
*limit*: ``msgspec.json.encode`` of the same response structure with every array as ``tolist()`` — the
cost of writing these floats as JSON at all. Target ≤ 2× (issue 7).
*naive*: the same query through graphql-core's per-element list completion, for comparison.

Cases: 64 series × 1,440 points (one metric), and the issue's 64 nodes × 10 metrics × 1,440 samples.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
from graphql import execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from benchmarks._report import Result, best_of, report
from cc_core.auth.user import User
from cc_core.graphql import GraphQLContext, GraphQLEngine, GraphQLServices
from cc_core.graphql.execution import encode_response
from cc_core.graphql.floats import encode_fixed2
from cc_core.graphql.schema import schema
from cc_core.schema.job import Job, Resource
from cc_core.schema.metrics import JobMetric, MetricStatistics, Series, StatsSeries
from cc_core.schema.units import Unit

QUERY = """
query ($dbid: ID!, $selectedMetrics: [String!]!, $selectedScopes: [MetricScope!]!, $selectedResolution: Int) {
  jobMetrics(id: $dbid, metrics: $selectedMetrics, scopes: $selectedScopes, resolution: $selectedResolution) {
    name
    scope
    metric {
      unit { prefix base }
      timestep
      statisticsSeries { min median max }
      series { hostname id data statistics { min avg max } }
    }
  }
}
"""


def make_data(metrics: int, nodes: int = 64, samples: int = 1440) -> dict[str, dict[str, JobMetric]]:
    rng = np.random.default_rng(42)
    data = {}
    for m in range(metrics):
        series = []
        for n in range(nodes):
            values = rng.uniform(0.0, 5000.0, samples).astype(np.float32).astype(np.float64)
            values[rng.integers(0, samples, 10)] = np.nan
            stats = MetricStatistics(avg=float(np.nanmean(values)), min=float(np.nanmin(values)), max=5000.0)
            series.append(Series(hostname=f"f{n:04d}", data=values, statistics=stats))
        sseries = StatsSeries(*(rng.uniform(0.0, 5000.0, samples) for _ in range(4)))
        data[f"metric_{m}"] = {
            "node": JobMetric(unit=Unit("F/s", "G"), timestep=60, series=series, statistics_series=sseries)
        }
    return data


class _Jobs:
    def __init__(self, job: Job) -> None:
        self.job = job

    async def find_by_id(self, user: User, job_id: int) -> Job:
        return self.job


class _Metrics:
    def __init__(self, data: Any) -> None:
        self.data = data

    async def load_data(self, job: Job, metrics: Any, scopes: Any, resolution: int) -> Any:
        return self.data


def msgspec_limit(data: Any) -> bytes:
    """The same response as plain msgspec encoding of the numpy data (``tolist`` + encode)."""
    items = []
    for name, scopes in data.items():
        for scope, jm in scopes.items():
            ss = jm.statistics_series
            items.append(
                {
                    "name": name,
                    "scope": scope,
                    "metric": {
                        "unit": {"prefix": jm.unit.prefix, "base": jm.unit.base},
                        "timestep": jm.timestep,
                        "statisticsSeries": {
                            "min": ss.min.tolist(),
                            "median": ss.median.tolist(),
                            "max": ss.max.tolist(),
                        },
                        "series": [
                            {
                                "hostname": s.hostname,
                                "id": s.id,
                                "data": s.data.tolist(),
                                "statistics": {
                                    "min": s.statistics.min,
                                    "avg": s.statistics.avg,
                                    "max": s.statistics.max,
                                },
                            }
                            for s in jm.series
                        ],
                    },
                }
            )
    return msgspec.json.encode({"data": {"jobMetrics": items}})


def run_case(label: str, metrics: int, loop: asyncio.AbstractEventLoop) -> list[Result]:
    data = make_data(metrics)
    job = Job(
        job_id=1,
        user="u",
        project="p",
        cluster="c",
        start_time=0,
        num_nodes=64,
        resources=[Resource("h")],
        id=1,
    )
    context = GraphQLContext(
        user=User("admin", ["admin"]), services=GraphQLServices(jobs=_Jobs(job), metrics=_Metrics(data))
    )
    variables = {
        "dbid": "1",
        "selectedMetrics": list(data),
        "selectedScopes": ["node"],
        "selectedResolution": 0,
    }
    engine = GraphQLEngine()

    def ours() -> bytes:
        response = loop.run_until_complete(engine.execute(QUERY, variables, None, context))
        assert response.status_code == 200
        return response.body

    document = parse(QUERY)

    def naive() -> bytes:
        result = loop.run_until_complete(
            execute(  # type: ignore[arg-type]
                schema._schema,
                document,
                context_value=context,
                variable_values=variables,
                executor_class=StrawberryGraphQLCoreExecutionContext,
                operation_extensions=None,
            )
        )
        return encode_response(result.data)

    body = ours()
    assert body == naive(), "bypass and naive path must produce identical JSON"
    values = 64 * metrics * 1440
    t_ours = best_of(ours, repeat=7)
    t_limit = best_of(lambda: msgspec_limit(data), repeat=7)
    t_naive = best_of(naive, repeat=2)
    print(f"{label}: {values:,} values, {len(body) / 1e6:.1f} MB of JSON")
    return [
        Result(
            f"jobMetrics {label}",
            t_ours,
            t_limit,
            target="≤ 2×",
            limit_name="msgspec tolist+encode",
            ok=t_ours <= 2 * t_limit,
        ),
        Result(
            f"  naive per-element completion {label}", t_naive, t_limit, limit_name="msgspec tolist+encode"
        ),
    ]


def formatter_case() -> Result:
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(0.0, 5000.0, 1440) for _ in range(64)]
    t_fmt = best_of(lambda: encode_fixed2(arrays), repeat=15)
    t_lim = best_of(lambda: msgspec.json.encode([a.tolist() for a in arrays]), repeat=15)
    return Result(
        "2-decimal formatter, 64 × 1440",
        t_fmt,
        t_lim,
        target="≤ 2×",
        limit_name="msgspec tolist+encode",
        ok=t_fmt <= 2 * t_lim,
    )


def main() -> bool:
    loop = asyncio.new_event_loop()
    try:
        results = [formatter_case()]
        results += run_case("64 series × 1440", 1, loop)
        results += run_case("64 nodes × 10 metrics × 1440", 10, loop)
    finally:
        loop.close()
    report("graphql", results)
    return all(r.ok is not False for r in results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

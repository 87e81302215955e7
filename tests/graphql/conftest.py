"""Helpers for the GraphQL tests of part 1 (schema, scalars, numeric bypass, limits, conversions).

The fakes here are deliberately minimal: each implements only the one or two service methods a test
needs, returning fixed data, so that what is tested is the *GraphQL side* (argument conversion, result
shaping, serialisation). They do not model the database: visibility, filters and statistics are tested
against the real repository in the end-to-end tests (part 2).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import pytest

from cc_core.auth.user import User
from cc_core.graphql import GraphQLContext, GraphQLEngine, GraphQLServices
from cc_core.schema.job import Job, Resource
from cc_core.schema.metrics import JobMetric, MetricStatistics, Series, StatsSeries
from cc_core.schema.units import Unit


def make_job(**overrides: Any) -> Job:
    fields: dict[str, Any] = {
        "id": 7,
        "job_id": 1234,
        "user": "alice",
        "project": "proj",
        "cluster": "fritz",
        "sub_cluster": "main",
        "start_time": 1_700_000_000,
        "duration": 3600,
        "num_nodes": 2,
        "num_hwthreads": 144,
        "num_acc": 0,
        "resources": [Resource(hostname="f0101", hwthreads=[0, 1]), Resource(hostname="f0102")],
        "job_state": "completed",
        "shared": "none",
        "footprint": {"flops_any_avg": 12.5, "mem_bw_avg": 80.25, "cpu_load_avg": 71.0},
        "energy_footprint": {"cpu_power": 10.0, "acc_mem_power": 2.0, "core_energy": 3.0, "ib": 1.0},
        "meta_data": {"jobName": "test"},
        "monitoring_status": 3,
        "energy": 1.5,
    }
    fields.update(overrides)
    return Job(**fields)


def make_job_data(
    metrics: int = 1, nodes: int = 64, samples: int = 1440, seed: int = 1, nan_every: int = 97
) -> dict[str, dict[str, JobMetric]]:
    """``{metric: {"node": JobMetric}}`` with random series, some NaN samples and statistics series."""
    rng = np.random.default_rng(seed)
    data: dict[str, dict[str, JobMetric]] = {}
    for m in range(metrics):
        series = []
        for n in range(nodes):
            values = rng.uniform(-10.0, 5000.0, samples)
            if nan_every:
                values[::nan_every] = np.nan
            series.append(
                Series(
                    hostname=f"f{n:04d}",
                    data=values,
                    statistics=MetricStatistics(avg=float(np.nanmean(values)), min=0.0, max=5000.0),
                    id=None if n % 2 else str(n),
                )
            )
        stats = StatsSeries(*(rng.uniform(0.0, 10.0, samples) for _ in range(4)))
        data[f"metric{m}"] = {
            "node": JobMetric(unit=Unit("F/s", "G"), timestep=60, series=series, statistics_series=stats)
        }
    return data


class FakeJobs:
    """`JobRepository.find_by_id` and `list` over a fixed list: paging only, no filters or visibility."""

    def __init__(self, *jobs: Job) -> None:
        self.jobs = {j.id: j for j in jobs}
        self.calls: list[dict[str, Any]] = []

    async def find_by_id(
        self, user: User, id_: int, *, with_metadata: bool = True, with_tags: bool = False
    ) -> Job:
        from cc_core.db.errors import JobNotFoundError

        try:
            return self.jobs[id_]
        except KeyError:
            raise JobNotFoundError(f"job {id_} not found") from None

    async def list(
        self,
        user: User,
        filters: Any = None,
        page: Any = None,
        order: Any = None,
        *,
        count: bool = True,
        with_tags: bool = False,
        with_metadata: bool = False,
    ) -> Any:
        from cc_core.db import JobPage

        self.calls.append(
            {
                "filters": filters,
                "page": page,
                "order": order,
                "count": count,
                "with_tags": with_tags,
                "with_metadata": with_metadata,
            }
        )
        rows = list(self.jobs.values())
        total = len(rows)
        more = False
        if page is not None and page.items_per_page != -1:
            offset = (page.page - 1) * page.items_per_page
            more = total > offset + page.items_per_page
            rows = rows[offset : offset + page.items_per_page]
        return JobPage(items=rows, count=total if count else None, has_next_page=more)


class FakeMetrics:
    """`MetricDispatcher.load_data` returning fixed `JobData`."""

    def __init__(self, data: Any) -> None:
        self.data = data

    async def load_data(self, job: Job, metrics: Any, scopes: Any, resolution: int) -> Any:
        return self.data


def context_for(user: User | None = None, **services: Any) -> GraphQLContext:
    return GraphQLContext(user=user or User("alice", ["user"]), services=GraphQLServices(**services))


def run(engine: GraphQLEngine, query: str, context: GraphQLContext, **kw: Any) -> tuple[int, Any]:
    """Execute and decode: ``(status, JSON body)``."""
    response = asyncio.run(engine.execute(query, context=context, **kw))
    return response.status_code, msgspec.json.decode(response.body)


@pytest.fixture
def engine() -> GraphQLEngine:
    return GraphQLEngine()

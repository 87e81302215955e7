"""A few resolvers through the whole schema, against minimal in-memory fakes of the service Protocols.

Only the GraphQL-side logic is under test here: how a stored job becomes a GraphQL ``Job`` (footprint
split, energy hardware classes, the concurrent-jobs rule, ``Time``), argument checks, role checks done
in the resolver, batching, paging arithmetic and error messages. Visibility, filters and statistics are
the repository's job and are tested end to end against the real database in part 2.
"""

from __future__ import annotations

import math
from typing import Any

from cc_core.auth.user import User
from cc_core.graphql import GraphQLEngine
from cc_core.schema.job import ConcurrentJobs, JobLink, Tag
from cc_core.schema.metrics import MetricStatistics

from .conftest import FakeJobs, FakeMetrics, context_for, make_job, make_job_data, run

JOB_FIELDS = """
{ job(id: "7") {
    id jobId user startTime duration numHWThreads SMT state
    resources { hostname hwthreads accelerators }
    footprint { name stat value }
    energyFootprint { hardware metric value }
    concurrentJobs { count }
    metaData
} }
"""


def test_job_fields_are_converted_like_upstream(engine: GraphQLEngine) -> None:
    job = make_job(smt=2)
    status, body = run(engine, JOB_FIELDS, context_for(jobs=FakeJobs(job)))
    assert status == 200, body
    assert body["data"]["job"] == {
        "id": "7",
        "jobId": 1234,
        "user": "alice",
        "startTime": "2023-11-14T22:13:20Z",
        "duration": 3600,
        "numHWThreads": 144,
        "SMT": 2,
        "state": "completed",
        "resources": [
            {"hostname": "f0101", "hwthreads": [0, 1], "accelerators": None},
            {"hostname": "f0102", "hwthreads": None, "accelerators": None},
        ],
        "footprint": [
            {"name": "flops_any", "stat": "avg", "value": 12.5},
            {"name": "mem_bw", "stat": "avg", "value": 80.25},
            {"name": "cpu_load", "stat": "avg", "value": 71.0},
        ],
        "energyFootprint": [
            {"hardware": "CPU", "metric": "cpu_power", "value": 10.0},
            {"hardware": "Accelerator", "metric": "acc_mem_power", "value": 2.0},
            {"hardware": "Core", "metric": "core_energy", "value": 3.0},
            {"hardware": "Other", "metric": "ib", "value": 1.0},
        ],
        "concurrentJobs": None,  # shared == "none": not even asked for
        "metaData": {"jobName": "test"},
    }


class _Concurrent(FakeJobs):
    looked_up = 0

    async def concurrent_jobs(self, user: User, job: Any) -> ConcurrentJobs:
        self.looked_up += 1
        return ConcurrentJobs(items=[JobLink(id=8, job_id=99)], count=1)


def test_concurrent_jobs_are_looked_up_for_long_shared_jobs(engine: GraphQLEngine) -> None:
    repo = _Concurrent(make_job(shared="multi_user", duration=601))
    status, body = run(
        engine, '{ job(id: "7") { concurrentJobs { listQuery count items { id } } } }', context_for(jobs=repo)
    )
    assert status == 200, body
    assert body["data"]["job"]["concurrentJobs"] == {
        "listQuery": "cluster=fritz&jobId=99",
        "count": 1,
        "items": [{"id": "8"}],
    }
    assert repo.looked_up == 1


def test_other_users_job_is_refused_for_plain_users(engine: GraphQLEngine) -> None:
    jobs = FakeJobs(make_job(user="bob"))
    status, body = run(engine, '{ job(id: "7") { id } }', context_for(User("alice", ["user"]), jobs=jobs))
    assert status == 200
    assert body["data"] == {"job": None}
    assert body["errors"][0]["message"] == "you are not allowed to see this job"
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _status, body = run(engine, '{ job(id: "7") { id } }', context_for(User("carol", ["manager"]), jobs=jobs))
    assert body["data"] == {"job": {"id": "7"}}


def test_bad_id_is_a_clear_error(engine: GraphQLEngine) -> None:
    _status, body = run(engine, '{ job(id: "seven") { id } }', context_for(jobs=FakeJobs()))
    assert body["errors"][0]["message"] == "invalid job id 'seven': expected an integer"
    assert body["errors"][0]["path"] == ["job"]


def test_missing_service_is_named(engine: GraphQLEngine) -> None:
    _status, body = run(engine, "{ tags { id } }", context_for())
    assert body["errors"][0]["message"] == "the job database (tags) is not available on this server"


def test_statistics_nan_reads_as_zero_and_series_ids(engine: GraphQLEngine) -> None:
    data = make_job_data(metrics=1, nodes=2, samples=4, nan_every=0)
    data["metric0"]["node"].series[0].statistics = MetricStatistics(avg=None, min=1.0, max=2.0)
    ctx = context_for(jobs=FakeJobs(make_job()), metrics=FakeMetrics(data))
    status, body = run(
        engine, '{ jobMetrics(id: "7") { metric { series { id statistics { avg min max } } } } }', ctx
    )
    assert status == 200, body
    series = body["data"]["jobMetrics"][0]["metric"]["series"]
    assert series[0] == {"id": "0", "statistics": {"avg": 0.0, "min": 1.0, "max": 2.0}}
    assert series[1]["id"] is None


def test_jobs_page_arguments_and_count_only_when_selected(engine: GraphQLEngine) -> None:
    repo = FakeJobs(*(make_job(id=i) for i in range(1, 6)))
    query = "{ jobs(page: {itemsPerPage: 2, page: %d}) { items { id } count hasNextPage offset limit } }"
    _status, body = run(engine, query % 2, context_for(jobs=repo))
    assert body["data"]["jobs"] == {
        "items": [{"id": "3"}, {"id": "4"}],
        "count": 5,
        "hasNextPage": True,
        "offset": None,
        "limit": None,
    }
    _status, body = run(engine, query % 3, context_for(jobs=repo))
    assert body["data"]["jobs"]["hasNextPage"] is False
    run(
        engine,
        '{ jobs(order: {field: "duration", type: "col", order: DESC}) { items { id } } }',
        context_for(jobs=repo),
    )
    call = repo.calls[-1]
    assert (call["page"].items_per_page, call["page"].page) == (50, 1)  # upstream's default page
    assert (call["order"].field, call["order"].order) == ("duration", "DESC")
    assert (call["count"], call["with_tags"], call["with_metadata"]) == (False, False, False)
    run(engine, "{ jobs { items { tags { id } metaData } count } }", context_for(jobs=repo, tags=_Tags()))
    assert (repo.calls[-1]["count"], repo.calls[-1]["with_tags"], repo.calls[-1]["with_metadata"]) == (
        True,
        True,
        True,
    )
    _status, body = run(
        engine, "{ jobs(page: {itemsPerPage: 0, page: 1}) { count } }", context_for(jobs=repo)
    )
    assert body["errors"][0]["message"] == "page.itemsPerPage must be positive or -1 (all), got 0"


class _Tags:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def of_jobs(self, user: Any, job_ids: list[int]) -> dict[int, list[Tag]]:
        self.calls.append(list(job_ids))
        return {i: [Tag(type="app", name=f"t{i}", id=i)] for i in job_ids}


class _Users:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def get_many(self, usernames: list[str]) -> dict[str, Any]:
        from cc_core.db import StoredUser

        self.asked.append(sorted(usernames))
        return {u: StoredUser(username=u, name=u.title(), email=f"{u}@example.org") for u in usernames}


def test_tags_and_users_of_a_job_list_come_in_batches(engine: GraphQLEngine) -> None:
    tags, users = _Tags(), _Users()
    jobs = FakeJobs(*(make_job(id=i, user="bob" if i % 2 else "alice") for i in range(1, 5)))
    query = "{ jobs { items { id tags { name } userData { name email } } } }"
    _status, body = run(engine, query, context_for(jobs=jobs, tags=tags, users=users))
    items = body["data"]["jobs"]["items"]
    # the fake repository ignores with_tags, so tags come through one batched loader call
    assert [i["tags"] for i in items] == [[{"name": f"t{i}"}] for i in range(1, 5)]
    assert tags.calls == [[1, 2, 3, 4]]
    assert items[0]["userData"] == {"name": "Bob", "email": "bob@example.org"}
    assert users.asked == [["alice", "bob"]]  # one batch, each distinct user once
    tagged = FakeJobs(make_job(id=1, tags=[Tag(type="app", name="vasp", id=3)]))
    _status, body = run(engine, "{ jobs { items { tags { name } } } }", context_for(jobs=tagged, tags=tags))
    assert body["data"]["jobs"]["items"][0]["tags"] == [{"name": "vasp"}]  # loaded with the page
    assert len(tags.calls) == 1


class _Broken(FakeJobs):
    async def find_by_id(self, user: Any, id_: int, **kw: Any) -> Any:
        raise RuntimeError("database file /var/secret/job.db is corrupt")


def test_unexpected_errors_are_masked_unless_dev(caplog: Any) -> None:
    _status, body = run(GraphQLEngine(), '{ job(id: "1") { id } }', context_for(jobs=_Broken()))
    assert body["errors"][0]["message"] == "internal server error (details are in the server log)"
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL"}
    assert "secret" not in str(body)
    assert "corrupt" in caplog.text  # logged with the traceback for the operator
    _status, body = run(GraphQLEngine(dev=True), '{ job(id: "1") { id } }', context_for(jobs=_Broken()))
    assert "corrupt" in body["errors"][0]["message"]


class _Clusters:
    def __init__(self) -> None:
        from cc_core.schema.cluster import Cluster, MetricConfig, MetricValue, SubCluster
        from cc_core.schema.units import Unit

        self.c = Cluster(
            name="fritz",
            metric_config=[MetricConfig(name="flops_any", unit=Unit("F/s", "G"), timestep=60)],
            sub_clusters=[
                SubCluster(
                    name="main",
                    nodes="f[0101-0188]",
                    flop_rate_scalar=MetricValue(unit=Unit("F/s", "G"), value=1.0),
                    flop_rate_simd=MetricValue(unit=Unit("F/s", "G"), value=math.pi),
                    memory_bandwidth=MetricValue(unit=Unit("B/s", "G"), value=2.0),
                )
            ],
        ).derive()

    def cluster(self, name: str) -> Any:
        return self.c if name == "fritz" else None

    def clusters(self) -> list[Any]:
        return [self.c]


def test_sub_cluster_fields_and_metric_value_name(engine: GraphQLEngine) -> None:
    query = """{ clusters { name subClusters { name numberOfNodes footprint
        flopRateSimd { name unit { base prefix } value }
        metricConfig { name scope subClusters { name } } } } }"""
    status, body = run(engine, query, context_for(clusters=_Clusters()))
    assert status == 200, body
    sc = body["data"]["clusters"][0]["subClusters"][0]
    assert sc["numberOfNodes"] == 88
    assert sc["footprint"] == []
    assert sc["flopRateSimd"] == {
        "name": "flopRateSimd",
        "unit": {"base": "F/s", "prefix": "G"},
        "value": math.pi,
    }
    assert sc["metricConfig"] == [{"name": "flops_any", "scope": "node", "subClusters": []}]


def test_admin_only_queries_refuse_other_roles(engine: GraphQLEngine) -> None:
    query = '{ clusterMetrics(cluster: "fritz", from: "2024-01-01T00:00:00Z", to: "2024-01-02T00:00:00Z") { nodeCount } }'
    _status, body = run(engine, query, context_for(User("alice", ["user", "manager"]), clusters=_Clusters()))
    assert body["errors"][0]["message"] == "you need to be administrator or support staff for this query"
    _status, body = run(
        engine, '{ nodeStatesTimed(type: "bogus") { state } }', context_for(User("a", ["admin"]))
    )
    assert (
        body["errors"][0]["message"] == "unknown node state query type 'bogus': expected 'node' or 'health'"
    )
    _status, body = run(
        engine, '{ nodeStatesTimed(type: "node") { state } }', context_for(User("a", ["user"]))
    )
    assert body["errors"][0]["message"] == "you need to be administrator or support staff for node queries"


class _Stats:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def jobs_statistics(self, user: Any, filters: Any, **kw: Any) -> list[Any]:
        from cc_core.db import JobsStatistics

        self.requests.append((filters, kw))
        return [JobsStatistics(id="alice", name="Alice", total_jobs=3, total_core_hours=7)]


def test_jobs_statistics_asks_only_for_selected_fields(engine: GraphQLEngine) -> None:
    repo = _Stats()
    query = """{ jobsStatistics(filter: [{cluster: {eq: "fritz"}}], groupBy: USER, sortBy: TOTALCOREHOURS,
                 page: {itemsPerPage: 10, page: 1}) { id name totalJobs ... on JobsStatistics { totalCoreHours } } }"""
    status, body = run(engine, query, context_for(stats=repo))
    assert status == 200, body
    assert body["data"]["jobsStatistics"] == [
        {"id": "alice", "name": "Alice", "totalJobs": 3, "totalCoreHours": 7}
    ]
    filters, kw = repo.requests[0]
    assert [f.cluster.eq for f in filters] == ["fritz"]
    assert kw["fields"] == {"totalJobs", "totalCoreHours"}
    assert (kw["group_by"], kw["sort_by"], kw["num_duration_bins"], kw["num_metric_bins"]) == (
        "USER",
        "TOTALCOREHOURS",
        "1h",
        None,
    )
    assert (kw["page"].items_per_page, kw["page"].page) == (10, 1)
    _status, body = run(
        engine, "{ jobsStatistics(groupBy: PROJECT) { histDuration { count } } }", context_for(stats=repo)
    )
    assert body["errors"][0]["message"] == "histograms only implemented without groupBy argument"
    assert len(repo.requests) == 1  # refused before the database is asked


def test_tag_scope_rules() -> None:
    from cc_core.graphql.resolvers import may_delete_tag, may_write_tag_scope

    admin, support, api = User("root", ["admin"]), User("sup", ["support"]), User("bot", ["api"])
    alice = User("alice", ["user"])
    assert may_write_tag_scope(admin, "admin") and may_write_tag_scope(api, "admin")
    assert not may_write_tag_scope(support, "admin")
    assert may_write_tag_scope(support, "global") and may_write_tag_scope(api, "global")
    assert not may_write_tag_scope(alice, "global")
    assert may_write_tag_scope(alice, "alice") and not may_write_tag_scope(alice, "bob")
    assert may_delete_tag(admin, "global") and not may_delete_tag(support, "global")
    assert may_delete_tag(alice, "alice") and not may_delete_tag(admin, "alice")

# The expected values are computed with SQL text assembled from this file's own constants (visibility
# conditions, filter translations): no outside input reaches it.
# ruff: noqa: S608
"""Every query and mutation of the schema, end to end, for every role (contract §2, §6.2, §6.4).

One site for the module (`e2e_site`): 240 archived jobs imported by init-db, five running jobs with
samples in the embedded metric store, node states, users. Requests go through ``POST /query`` of the
real app with a session cookie (user, manager with projects, support, admin), an API token (api) or
nothing (anonymous). Expected values come from raw ``sqlite3`` on the same database file or from the
samples the site wrote — never from the code under test.

`CASES` maps each ``Query``/``Mutation`` field to its test; `test_every_field_has_a_case` fails when the
schema gains a field without one.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cc_core.graphql.schema import schema
from cc_core.metrics.jobdata import STATS_SERIES_MIN

from .e2e_site import E2E, LIVE_METRICS, POINTS, STEP, open_e2e

ROLES = ("user", "manager", "support", "admin", "api")
STAFF = ("support", "admin")
WIDE = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    client, site = open_e2e(tmp_path_factory.mktemp("gql-e2e") / "site")
    try:
        yield site
    finally:
        client.__exit__(None, None, None)


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [int(i["id"]) for i in items]


def _tags_readable(e: E2E, who: str) -> set[tuple[str, str, str]]:
    """Contract §6.4 (read) in SQL."""
    ident = e.ids[who]
    scopes = ["global", ident.username]
    if set(ident.roles) & {"admin", "support"}:
        scopes.append("admin")
    marks = ",".join("?" * len(scopes))
    return set(e.sql(f"SELECT tag_type, tag_name, tag_scope FROM tag WHERE tag_scope IN ({marks})", scopes))


def _hours(total: float) -> int:
    return int((total + 1800) // 3600)


# ================================================================================ simple queries


def case_clusters(e: E2E) -> None:
    archive = Path(e.site.root / "var" / "job-archive")
    want = sorted(p.name for p in archive.iterdir() if (p / "cluster.json").is_file())
    for who in ROLES:
        got = e.data(who, "{ clusters { name partitions subClusters { name numberOfNodes } } }")["clusters"]
        assert sorted(c["name"] for c in got) == want
        for c in got:
            parts = {
                p
                for (p,) in e.sql(
                    "SELECT DISTINCT cluster_partition FROM job WHERE cluster = ?", (c["name"],)
                )
            }
            assert set(c["partitions"]) == parts
            raw = json.loads((archive / c["name"] / "cluster.json").read_text())
            assert [s["name"] for s in c["subClusters"]] == [s["name"] for s in raw["subClusters"]]
    assert e.post("anonymous", "{ clusters { name } }")[0] == 401


def case_tags(e: E2E) -> None:
    for who in ROLES:
        got = {
            (t["type"], t["name"], t["scope"]) for t in e.data(who, "{ tags { id type name scope } }")["tags"]
        }
        assert got == _tags_readable(e, who), who
    # the generated archive has tags of every scope, so the rule is really exercised
    scopes = {s for (s,) in e.sql("SELECT DISTINCT tag_scope FROM tag")}
    assert {"global", "admin"} <= scopes and len(scopes) > 2


def case_globalMetrics(e: E2E) -> None:
    archive = Path(e.site.root / "var" / "job-archive")
    full: dict[str, set[str]] = {}
    restricted: dict[str, set[str]] = {}
    for cdir in archive.iterdir():
        if (cdir / "cluster.json").is_file():
            for mc in json.loads((cdir / "cluster.json").read_text())["metricConfig"]:
                full.setdefault(mc["name"], set()).add(cdir.name)
                if not mc.get("restrict"):
                    restricted.setdefault(mc["name"], set()).add(cdir.name)
    assert restricted != full  # the site has a restricted metric
    for who in ROLES:
        got = e.data(who, "{ globalMetrics { name unit { base } availability { cluster } } }")[
            "globalMetrics"
        ]
        want = restricted if who in ("user", "manager") else full
        assert {m["name"]: {a["cluster"] for a in m["availability"]} for m in got} == want, who


def case_user(e: E2E) -> None:
    me = e.ids["user"].username
    q = "query ($u: String!) { user(username: $u) { username name email } }"
    assert e.data("user", q, {"u": me})["user"] == {
        "username": me,
        "name": f"Name of {me}",
        "email": f"{me}@example.org",
    }
    assert "forbidden" in e.error("user", q, {"u": "helpdesk"})
    assert "forbidden" in e.error("api", q, {"u": "helpdesk"})
    for who in ("manager", "support", "admin"):
        assert e.data(who, q, {"u": me})["user"]["name"] == f"Name of {me}"
        assert e.data(who, q, {"u": "nobody-here"})["user"] is None


def case_allocatedNodes(e: E2E) -> None:
    # Upstream counts every running job's hosts for anyone; here the hosts come from the jobs the user
    # may see (§6.2), so a plain user does not learn where others' jobs run.
    for who in ROLES:
        vis, vp = e.visible(who)
        want: Counter[str] = Counter()
        for sub, _host in e.sql(
            "SELECT DISTINCT job.subcluster, json_extract(r.value, '$.hostname') FROM job, json_each(job.resources) r "
            f"WHERE job.job_state = 'running' AND job.cluster = 'fritz' AND {vis}",
            vp,
        ):
            want[sub] += 1
        got = e.data(who, '{ allocatedNodes(cluster: "fritz") { name count } }')["allocatedNodes"]
        assert {c["name"]: c["count"] for c in got} == dict(want), who
        assert want or who in ("user", "manager")


# ================================================================================ nodes


NODE_QUERIES = {
    "nodes": '{ nodes(filter: [{cluster: {eq: "fritz"}}]) { count items { hostname schedulerState healthState } } }',
    "nodesWithMeta": '{ nodesWithMeta(filter: [{cluster: {eq: "fritz"}}]) { count items { hostname metaData } } }',
    "nodeStates": '{ nodeStates(filter: [{cluster: {eq: "fritz"}}]) { state count } }',
    "nodeStatesTimed": '{ nodeStatesTimed(filter: [{cluster: {eq: "fritz"}}], type: "node") { state counts times } }',
}


def _latest_states(e: E2E) -> dict[str, tuple[str, str]]:
    rows = e.sql(
        "SELECT node.hostname, s.node_state, s.health_state FROM node JOIN node_state s ON s.node_id = node.id "
        "WHERE node.cluster = 'fritz' AND s.time_stamp = (SELECT MAX(time_stamp) FROM node_state x WHERE x.node_id = node.id)"
    )
    return {h: (ns, hs) for h, ns, hs in rows}


def _node_roles(e: E2E, field: str) -> Any:
    for who in ("user", "manager", "api"):
        assert "administrator or support" in e.error(who, NODE_QUERIES[field]), who
    return [e.data(who, NODE_QUERIES[field])[field] for who in STAFF]


def case_nodes(e: E2E) -> None:
    states = _latest_states(e)
    for got in _node_roles(e, "nodes"):
        assert got["count"] == len(states)
        assert {i["hostname"]: (i["schedulerState"], i["healthState"]) for i in got["items"]} == states
        assert [i["hostname"] for i in got["items"]] == sorted(states)
    got = e.data("admin", "{ nodes(filter: [{schedulerState: idle}]) { items { hostname } } }")["nodes"]
    assert {i["hostname"] for i in got["items"]} == {h for h, (s, _) in states.items() if s == "idle"}


def case_nodesWithMeta(e: E2E) -> None:
    states = _latest_states(e)
    for got in _node_roles(e, "nodesWithMeta"):
        assert {i["hostname"] for i in got["items"]} == set(states)


def case_nodeStates(e: E2E) -> None:
    states = _latest_states(e)
    want = Counter(s for s, _ in states.values()) + Counter(h for _, h in states.values())
    for got in _node_roles(e, "nodeStates"):
        assert Counter({s["state"]: s["count"] for s in got}) == want


def case_nodeStatesTimed(e: E2E) -> None:
    rows = e.sql(
        "SELECT s.node_state, s.time_stamp, COUNT(*) FROM node_state s JOIN node ON node.id = s.node_id "
        "WHERE node.cluster = 'fritz' GROUP BY s.node_state, s.time_stamp"
    )
    want = {(st, ts): n for st, ts, n in rows}
    for got in _node_roles(e, "nodeStatesTimed"):
        seen = {(g["state"], t): c for g in got for t, c in zip(g["times"], g["counts"], strict=True)}
        assert seen == want
    assert "unknown node state query type" in e.error("admin", '{ nodeStatesTimed(type: "bogus") { state } }')


def case_node(e: E2E) -> None:
    ((node_id, host),) = e.sql("SELECT id, hostname FROM node WHERE hostname = 'f0951'")
    q = f'{{ node(id: "{node_id}") {{ id hostname cluster subCluster schedulerState healthState }} }}'
    for who in STAFF:
        got = e.data(who, q)["node"]
        assert got == {
            "id": str(node_id),
            "hostname": host,
            "cluster": "fritz",
            "subCluster": "spr1tb",
            "schedulerState": "idle",
            "healthState": "partial",
        }
    for who in ("user", "manager", "api"):
        assert "administrator or support" in e.error(who, q)
    assert e.data("admin", '{ node(id: "999999") { id } }')["node"] is None


# ================================================================================ one job


def _job_owned(e: E2E, who: str) -> int:
    return int(e.sql("SELECT MIN(id) FROM job WHERE hpc_user = ?", (e.ids[who].username,))[0][0] or 0)


def _job_of_project(e: E2E) -> int:
    project = e.ids["manager"].projects[0]
    return int(e.sql("SELECT MIN(id) FROM job WHERE project = ?", (project,))[0][0])


def _job_of_stranger(e: E2E) -> int:
    ident = e.ids["user"]
    projects = e.ids["manager"].projects
    marks = ",".join("?" * len(projects))
    return int(
        e.sql(
            f"SELECT MIN(id) FROM job WHERE hpc_user != ? AND project NOT IN ({marks})",
            (ident.username, *projects),
        )[0][0]
    )


def case_job(e: E2E) -> None:
    q = "query ($id: ID!) { job(id: $id) { id jobId user project cluster startTime duration numNodes state tags { name scope } footprint { name stat value } userData { name } } }"
    own, managed, foreign = _job_owned(e, "user"), _job_of_project(e), _job_of_stranger(e)
    (row,) = e.sql(
        "SELECT job_id, hpc_user, project, cluster, start_time, duration, num_nodes, job_state, footprint FROM job WHERE id = ?",
        (own,),
    )
    got = e.data("user", q, {"id": str(own)})["job"]
    assert (
        got["jobId"],
        got["user"],
        got["project"],
        got["cluster"],
        got["duration"],
        got["numNodes"],
        got["state"],
    ) == (row[0], row[1], row[2], row[3], row[5], row[6], row[7])
    assert got["startTime"] == __import__("datetime").datetime.fromtimestamp(
        row[4], __import__("datetime").UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {f"{f['name']}_{f['stat']}": f["value"] for f in got["footprint"]} == json.loads(row[8])
    assert got["userData"] == {"name": f"Name of {row[1]}"}
    for who, job_id, ok in (
        ("user", foreign, False),
        ("user", managed, False),
        ("manager", managed, True),
        ("manager", foreign, False),
        ("support", foreign, True),
        ("admin", foreign, True),
        ("api", foreign, False),  # visible to the pure API user, but `job` wants owner or staff
    ):
        if ok:
            assert e.data(who, q, {"id": str(job_id)})["job"]["id"] == str(job_id), who
        else:
            e.error(who, q, {"id": str(job_id)})


def _running(e: E2E, who: str) -> dict[str, Any]:
    me = e.ids[who].username
    return next(j for j in e.running if j["user"] == me)


def _written(e: E2E, job: dict[str, Any], metric: str) -> dict[str, np.ndarray]:
    return {h: e.samples[(h, metric)] for h in job["hosts"]}


def case_jobMetrics(e: E2E) -> None:
    job = e.running[0]
    q = (
        "query ($id: ID!, $m: [String!]) { jobMetrics(id: $id, metrics: $m, scopes: [node]) "
        "{ name scope metric { timestep unit { base } series { hostname data statistics { min avg max } } "
        "statisticsSeries { min max } } } }"
    )
    got = e.data("user", q, {"id": str(job["id"]), "m": list(LIVE_METRICS)})["jobMetrics"]
    assert sorted(m["name"] for m in got) == sorted(LIVE_METRICS)
    for m in got:
        assert m["scope"] == "node" and m["metric"]["timestep"] == STEP
        want = _written(e, job, m["name"])
        series = {s["hostname"]: s for s in m["metric"]["series"]}
        assert set(series) == set(want)
        for host, values in want.items():
            assert series[host]["data"][:POINTS] == values.tolist()
            assert series[host]["statistics"]["max"] == values.max()
        # two nodes: fewer series than a statistics series needs (the dispatcher's minimum)
        assert (m["metric"]["statisticsSeries"] is None) == (len(want) < STATS_SERIES_MIN)
    # an unknown metric is simply absent; the job of another user is refused
    assert e.data("admin", q, {"id": str(job["id"]), "m": ["no_such_metric"]})["jobMetrics"] == []
    e.error("user", q, {"id": str(e.running[2]["id"]), "m": ["cpu_load"]})
    # an archived job of upstream's reference archive: the series of its data.json.gz, 2 decimals
    ((ref_id, ref_start),) = e.sql(
        "SELECT id, start_time FROM job WHERE cluster = 'emmy' AND job_id = 1403244"
    )
    path = e.site.root / "var" / "job-archive" / "emmy" / "1403" / "244" / str(ref_start) / "data.json.gz"
    stored = json.loads(gzip.decompress(path.read_bytes()))
    got = e.data("admin", q, {"id": str(ref_id), "m": ["flops_any", "mem_bw"]})["jobMetrics"]
    assert sorted(m["name"] for m in got) == ["flops_any", "mem_bw"]
    for m in got:
        want = {s["hostname"]: s["data"] for s in stored[m["name"]]["node"]["series"]}
        assert {s["hostname"] for s in m["metric"]["series"]} == set(want)
        for s in m["metric"]["series"]:
            for v, w in zip(s["data"], want[s["hostname"]], strict=True):
                assert (v is None and (w is None or math.isnan(w))) or abs(v - w) <= 0.005 + 1e-9, (v, w)
    # the reference job without a data file, and a generated (meta-only) archived job: a GraphQL error
    # naming the problem, no 500
    ((no_data,),) = e.sql("SELECT id FROM job WHERE cluster = 'emmy' AND job_id = 1404397")
    assert "archive" in e.error("admin", q, {"id": str(no_data), "m": ["cpu_load"]}).lower()
    archived = _job_owned(e, "user")
    assert "archive" in e.error("admin", q, {"id": str(archived), "m": ["cpu_load"]}).lower()


def case_jobStats(e: E2E) -> None:
    job = e.running[0]
    q = 'query ($id: ID!) { jobStats(id: $id, metrics: ["cpu_load", "mem_used"]) { name data { min avg max } } }'
    got = {s["name"]: s["data"] for s in e.data("user", q, {"id": str(job["id"])})["jobStats"]}
    for metric in ("cpu_load", "mem_used"):
        per_host = list(_written(e, job, metric).values())
        assert got[metric]["min"] == min(v.min() for v in per_host)
        assert got[metric]["max"] == max(v.max() for v in per_host)
        assert math.isclose(
            got[metric]["avg"], round(float(np.mean([v.mean() for v in per_host])), 2), abs_tol=0.01
        )
    # archived job: statistics come from its meta.json
    archived = _job_owned(e, "user")
    meta = _archived_meta(e, archived)
    got = {s["name"]: s["data"] for s in e.data("user", q, {"id": str(archived)})["jobStats"]}
    for metric in ("cpu_load", "mem_used"):
        assert math.isclose(got[metric]["avg"], meta["statistics"][metric]["avg"], abs_tol=0.01)


def _archived_meta(e: E2E, db_id: int) -> dict[str, Any]:
    ((cluster, job_id, start),) = e.sql("SELECT cluster, job_id, start_time FROM job WHERE id = ?", (db_id,))
    root = (
        e.site.root
        / "var"
        / "job-archive"
        / cluster
        / str(job_id // 1000)
        / f"{job_id % 1000:03d}"
        / str(start)
    )
    return json.loads((root / "meta.json").read_text())


def case_scopedJobStats(e: E2E) -> None:
    job = e.running[0]
    q = 'query ($id: ID!) { scopedJobStats(id: $id, metrics: ["cpu_load"], scopes: [node]) { name scope stats { hostname data { min avg max } } } }'
    (got,) = e.data("user", q, {"id": str(job["id"])})["scopedJobStats"]
    assert got["name"] == "cpu_load" and got["scope"] == "node"
    want = _written(e, job, "cpu_load")
    assert {s["hostname"]: (s["data"]["min"], s["data"]["max"]) for s in got["stats"]} == {
        h: (v.min(), v.max()) for h, v in want.items()
    }


# ================================================================================ job lists


JOBS_Q = (
    "query ($f: [JobFilter!], $p: PageRequest, $o: OrderByInput) { jobs(filter: $f, page: $p, order: $o) "
    "{ count hasNextPage items { id user project tags { type name scope } userData { name } } } }"
)

# (GraphQL filter list, SQL condition, parameters): filter semantics of contract §2.4.
FILTERS: list[tuple[list[dict[str, Any]], str, list[Any]]] = [
    ([], "1=1", []),
    ([{"cluster": {"eq": "fritz"}}], "cluster = ?", ["fritz"]),
    (
        [{"cluster": {"neq": "fritz"}}, {"state": ["completed", "failed"]}],
        "cluster != ? AND job_state IN ('completed','failed')",
        ["fritz"],
    ),
    ([{"project": {"startsWith": "p0"}}], "project LIKE 'p0%'", []),
    (
        [{"user": {"contains": "1"}, "cluster": {"eq": "alex"}}],
        "hpc_user LIKE '%1%' AND cluster = 'alex'",
        [],
    ),
    # only the first non-null StringInput operator applies (eq wins over contains)
    ([{"cluster": {"eq": "woody", "contains": "zzz"}}], "cluster = 'woody'", []),
    ([{"user": {"in": ["other1", "other2"]}}], "hpc_user IN ('other1','other2')", []),
    ([{"numNodes": {"from": 2, "to": 16}}], "num_nodes BETWEEN 2 AND 16", []),
    ([{"numNodes": {"from": 8, "to": 0}}], "num_nodes >= 8", []),
    ([{"duration": {"from": 0, "to": 3600}}], "duration <= 3600", []),
    ([{"numHWThreads": {"from": 0, "to": 0}}], "1=1", []),
    ([{"energy": {"from": 1.5, "to": 100.0}}], "energy BETWEEN 1.5 AND 100.0", []),
    ([{"state": ["running"]}], "job_state = 'running'", []),
    ([{"jobName": {"eq": "interactive"}}], "json_extract(meta_data, '$.jobName') = 'interactive'", []),
    ([{"schedule": "interactive"}], "json_extract(meta_data, '$.jobName') = 'interactive'", []),
    (
        [{"metricStats": [{"metricName": "flops_any_avg", "range": {"from": 100.0, "to": 400.0}}]}],
        "json_extract(footprint, '$.flops_any_avg') BETWEEN 100.0 AND 400.0",
        [],
    ),
    (
        [{"startTime": {"from": "2023-01-01T00:00:00Z", "to": "2023-06-30T00:00:00Z"}}],
        "start_time BETWEEN 1672531200 AND 1688083200",
        [],
    ),
    ([{"startTime": {"range": "last24h"}}], "start_time >= ?", ["NOW-86400"]),
    ([{"arrayJobId": 0}, {"cluster": {"endsWith": "tz"}}], "array_job_id = 0 AND cluster LIKE '%tz'", []),
    (
        [{"node": {"eq": "f0902"}}],
        "EXISTS (SELECT 1 FROM json_each(resources) r WHERE json_extract(r.value, '$.hostname') = 'f0902')",
        [],
    ),
]


def _params(e: E2E, params: list[Any]) -> list[Any]:
    return [e.now - 86400 if p == "NOW-86400" else p for p in params]


def case_jobs(e: E2E) -> None:
    order = {"field": "startTime", "type": "col", "order": "DESC"}
    for who in ROLES:
        vis, vis_params = e.visible(who)
        for gql_filter, cond, params in FILTERS:
            want = [
                i
                for (i,) in e.sql(
                    f"SELECT id FROM job WHERE {vis} AND {cond} ORDER BY start_time DESC, id DESC",
                    [*vis_params, *_params(e, params)],
                )
            ]
            got = e.data(who, JOBS_Q, {"f": gql_filter, "p": {"itemsPerPage": 10, "page": 1}, "o": order})[
                "jobs"
            ]
            assert got["count"] == len(want), (who, gql_filter)
            assert _ids(got["items"]) == want[:10], (who, gql_filter)
            assert got["hasNextPage"] == (len(want) > 10)
    # tags of a page are the visible ones only (§6.4); user names resolved from the user table
    tagged = e.sql(
        "SELECT job_id FROM jobtag JOIN tag ON tag.id = tag_id WHERE tag_scope NOT IN ('global', 'admin') LIMIT 1"
    )[0][0]
    for who in ("admin", "api", "support"):
        (item,) = e.data(who, JOBS_Q, {"f": [{"dbId": [str(tagged)]}]})["jobs"]["items"]
        readable = _tags_readable(e, who)
        stored = set(
            e.sql(
                "SELECT tag_type, tag_name, tag_scope FROM tag JOIN jobtag ON tag.id = tag_id WHERE job_id = ?",
                (tagged,),
            )
        )
        assert {(t["type"], t["name"], t["scope"]) for t in item["tags"]} == stored & readable
        assert item["userData"] == {"name": f"Name of {item['user']}"}
    # tag filter; second page; unpaged; footprint ordering
    tag_id, n = e.sql("SELECT tag_id, COUNT(*) FROM jobtag GROUP BY tag_id ORDER BY COUNT(*) DESC LIMIT 1")[0]
    assert e.data("admin", JOBS_Q, {"f": [{"tags": [str(tag_id)]}]})["jobs"]["count"] == n
    all_ids = [i for (i,) in e.sql("SELECT id FROM job ORDER BY start_time DESC, id DESC")]
    page2 = e.data("admin", JOBS_Q, {"p": {"itemsPerPage": 7, "page": 2}, "o": order})["jobs"]
    assert _ids(page2["items"]) == all_ids[7:14]
    assert len(e.data("admin", JOBS_Q, {"p": {"itemsPerPage": -1, "page": 1}})["jobs"]["items"]) == len(
        all_ids
    )
    by_flops = [
        i
        for (i,) in e.sql(
            # upstream: only jobs with a valid footprint; one without the key sorts first (NULL)
            "SELECT id FROM job WHERE json_valid(footprint) "
            "ORDER BY json_extract(footprint, '$.flops_any_avg') ASC, id ASC LIMIT 5"
        )
    ]
    got = e.data(
        "admin",
        JOBS_Q,
        {
            "p": {"itemsPerPage": 5, "page": 1},
            "o": {"field": "flops_any_avg", "type": "footprint", "order": "ASC"},
        },
    )
    assert _ids(got["jobs"]["items"]) == by_flops


def _totals_sql(e: E2E, cond: str, params: list[Any]) -> dict[str, Any]:
    now = int(time.time())
    dur = f"(CASE WHEN job_state = 'running' THEN {now} - start_time ELSE duration END)"
    rows = e.sql(
        f"SELECT COUNT(*), COUNT(DISTINCT hpc_user), COALESCE(SUM(num_nodes),0), COALESCE(SUM(num_hwthreads),0), "
        f"COALESCE(SUM(num_acc),0), COALESCE(SUM({dur}),0), COALESCE(SUM({dur} * num_hwthreads),0), "
        f"COUNT(CASE WHEN job_state = 'running' THEN 1 END), COUNT(CASE WHEN {dur} < 300 THEN 1 END) "
        f"FROM job WHERE {cond}",
        params,
    )
    n, users, nodes, cores, accs, walltime, core_s, running, short = rows[0]
    return {
        "totalJobs": n,
        "totalUsers": users,
        "totalNodes": nodes,
        "totalCores": cores,
        "totalAccs": accs,
        "totalWalltime": _hours(walltime),
        "totalCoreHours": _hours(core_s),
        "runningJobs": running,
        "shortJobs": short,
    }


STATS_FIELDS = (
    "totalJobs totalUsers totalNodes totalCores totalAccs totalWalltime totalCoreHours runningJobs shortJobs"
)


def _close_hours(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Running jobs' durations grow with the clock: hour totals may differ by one between the queries."""
    for k, v in want.items():
        if k in ("totalWalltime", "totalCoreHours"):
            assert abs(got[k] - v) <= 1, (k, got[k], v)
        else:
            assert got[k] == v, (k, got[k], v)


def case_jobsStatistics(e: E2E) -> None:
    q = f"query ($f: [JobFilter!]) {{ jobsStatistics(filter: $f) {{ {STATS_FIELDS} }} }}"
    grouped = f"query ($f: [JobFilter!]) {{ jobsStatistics(filter: $f, groupBy: USER) {{ id name {STATS_FIELDS} }} }}"
    for who in ROLES:
        vis, vis_params = e.visible(who)
        for gql_filter, cond, params in FILTERS[:4] + FILTERS[12:13]:
            (got,) = e.data(who, q, {"f": gql_filter})["jobsStatistics"]
            _close_hours(got, _totals_sql(e, f"{vis} AND {cond}", [*vis_params, *_params(e, params)]))
        rows = e.data(who, grouped, {"f": [{"cluster": {"eq": "fritz"}}]})["jobsStatistics"]
        users = [
            u
            for (u,) in e.sql(
                f"SELECT DISTINCT hpc_user FROM job WHERE {vis} AND cluster = 'fritz' ORDER BY hpc_user",
                vis_params,
            )
        ]
        assert [r["id"] for r in rows] == users, who
        for r in rows[:5]:
            _close_hours(
                {k: v for k, v in r.items() if k not in ("id", "name")},
                _totals_sql(e, f"{vis} AND cluster = 'fritz' AND hpc_user = ?", [*vis_params, r["id"]]),
            )
            assert r["name"] == (
                f"Name of {r['id']}" if r["id"] not in ("other1", "other2", "other3") else ""
            )
    # top 3 projects by core hours
    top = e.data(
        "admin",
        "{ jobsStatistics(groupBy: PROJECT, sortBy: TOTALJOBS, page: {itemsPerPage: 3, page: 1}) { id totalJobs } }",
    )
    want = e.sql("SELECT project, COUNT(*) FROM job GROUP BY project ORDER BY COUNT(*) DESC, project LIMIT 3")
    assert [(r["id"], r["totalJobs"]) for r in top["jobsStatistics"]] == [tuple(w) for w in want]
    _histograms(e)
    _metric_histograms(e)
    assert "without groupBy" in e.error(
        "admin", "{ jobsStatistics(groupBy: USER) { histDuration { count } } }"
    )


def _histograms(e: E2E) -> None:
    q = (
        'query ($f: [JobFilter!]) { jobsStatistics(filter: $f, numDurationBins: "1h") { histDuration { count value } '
        "histNumNodes { count value } histNumCores { count value } histNumAccs { count value } } }"
    )
    for who in ("user", "admin"):
        vis, vp = e.visible(who)
        for gql_filter, cond in (
            ([{"cluster": {"eq": "alex"}}], "cluster = 'alex'"),
            ([{"state": ["running"]}], "job_state = 'running'"),
        ):
            (got,) = e.data(who, q, {"f": gql_filter})["jobsStatistics"]
            where = f"{vis} AND {cond}"
            for field, col in (
                ("histNumNodes", "num_nodes"),
                ("histNumCores", "num_hwthreads"),
                ("histNumAccs", "num_acc"),
            ):
                want = e.sql(
                    f"SELECT {col}, COUNT(*) FROM job WHERE {where} GROUP BY {col} ORDER BY {col}", vp
                )
                assert [(p["value"], p["count"]) for p in got[field]] == [tuple(w) for w in want], (
                    who,
                    field,
                )
            dur = f"(CASE WHEN job_state = 'running' THEN {e.now} - start_time ELSE duration END)"
            bins = Counter(
                {
                    b: n
                    for b, n in e.sql(
                        f"SELECT {dur} / 3600 + 1, COUNT(*) FROM job WHERE {where} GROUP BY 1", vp
                    )
                }
            )
            assert len(got["histDuration"]) == 48
            assert {p["value"] // 3600: p["count"] for p in got["histDuration"] if p["count"]} == {
                b: n for b, n in bins.items() if b <= 48
            }


def _peak(e: E2E, cluster: str, metric: str) -> float:
    doc = json.loads((e.site.root / "var" / "job-archive" / cluster / "cluster.json").read_text())
    return next(m["peak"] for m in doc["metricConfig"] if m["name"] == metric)


def _metric_histograms(e: E2E) -> None:
    q = (
        "query ($f: [JobFilter!], $m: [String!], $b: Int) { jobsStatistics(filter: $f, metrics: $m, numMetricBins: $b) "
        "{ histMetrics { metric unit stat data { bin count min max } } } }"
    )
    # finished jobs: footprint values in SQL, bins 0..peak of the filtered cluster
    peak = _peak(e, "alex", "flops_any")
    (got,) = e.data("admin", q, {"f": [{"cluster": {"eq": "alex"}}], "m": ["flops_any"], "b": 10})[
        "jobsStatistics"
    ]
    (h,) = got["histMetrics"]
    assert (h["metric"], h["unit"], h["stat"]) == ("flops_any", "GF/s", "avg")
    values = [
        v
        for (v,) in e.sql(
            "SELECT json_extract(footprint, '$.flops_any_avg') FROM job WHERE cluster = 'alex' AND footprint IS NOT NULL"
        )
    ]
    want = Counter(min(int(v / peak * 10) + 1, 10) for v in values if v is not None and v <= peak)
    assert [p["count"] for p in h["data"]] == [want.get(b, 0) for b in range(1, 11)]
    # running jobs only, more of them than the live histograms are made for: a clear error
    from cc_core.graphql import resolvers

    limit = resolvers.RUNNING_HISTOGRAM_MAX_JOBS
    resolvers.RUNNING_HISTOGRAM_MAX_JOBS = 2
    try:
        message = e.error("admin", q, {"f": [{"state": ["running"]}], "m": ["cpu_load"], "b": 4})
    finally:
        resolvers.RUNNING_HISTOGRAM_MAX_JOBS = limit
    assert "too many running jobs matched for metric histograms (max: 2)" in message
    # running jobs only: live averages from the metric store (sum over nodes / nodes), as upstream
    for who in ("user", "admin"):
        vis, vp = e.visible(who)
        live = [j for j in e.running if e.sql(f"SELECT 1 FROM job WHERE id = ? AND {vis}", [j["id"], *vp])]
        (got,) = e.data(
            who,
            q,
            {
                "f": [{"state": ["running"]}, {"cluster": {"eq": "fritz"}}],
                "m": ["cpu_load", "mem_used"],
                "b": 8,
            },
        )["jobsStatistics"]
        assert [h["metric"] for h in got["histMetrics"]] == ["cpu_load", "mem_used"]
        for h in got["histMetrics"]:
            metric = h["metric"]
            width = int(_peak(e, "fritz", metric)) // 8
            averages = [
                float(np.mean([e.samples[(host, metric)].mean() for host in j["hosts"]])) for j in live
            ]
            want = Counter(int(a) // width + 1 for a in averages if int(a) < 8 * width)
            assert h["stat"] is None
            assert [(p["bin"], p["min"], p["max"]) for p in h["data"]] == [
                (b, width * (b - 1), width * b) for b in range(1, 9)
            ]
            assert [p["count"] for p in h["data"]] == [want.get(b, 0) for b in range(1, 9)], (who, metric)
            assert sum(want.values()) > 0  # the data really lands in bins


def case_jobsMetricStats(e: E2E) -> None:
    q = 'query ($f: [JobFilter!]) { jobsMetricStats(filter: $f, metrics: ["cpu_load"]) { id jobId startTime numNodes stats { name data { min max } } } }'
    for who in ("user", "admin"):
        vis, vp = e.visible(who)
        want = [
            i
            for (i,) in e.sql(
                f"SELECT id FROM job WHERE {vis} AND job_state = 'running' ORDER BY start_time, id", vp
            )
        ]
        got = e.data(who, q, {"f": [{"state": ["running"]}]})["jobsMetricStats"]
        assert [g["id"] for g in got] == want
        for g in got:
            job = next(j for j in e.running if j["id"] == g["id"])
            (stat,) = g["stats"]
            per_host = _written(e, job, "cpu_load").values()
            assert (stat["data"]["min"], stat["data"]["max"]) == (
                min(v.min() for v in per_host),
                max(v.max() for v in per_host),
            )


def case_jobsFootprints(e: E2E) -> None:
    q = 'query ($f: [JobFilter!]) { jobsFootprints(filter: $f, metrics: ["flops_any", "mem_bw"]) { timeWeights { nodeHours coreHours } metrics { metric data } } }'
    for who in ("user", "manager", "admin"):
        vis, vp = e.visible(who)
        rows = e.sql(
            f"SELECT json_extract(footprint, '$.flops_any_avg'), duration, num_nodes FROM job "
            f"WHERE {vis} AND cluster = 'woody' AND monitoring_status NOT IN (0, 2) ORDER BY start_time DESC, id DESC",
            vp,
        )
        got = e.data(who, q, {"f": [{"cluster": {"eq": "woody"}}]})["jobsFootprints"]
        flops = next(m for m in got["metrics"] if m["metric"] == "flops_any")["data"]
        assert sorted(flops) == sorted(round(r[0], 2) for r in rows), who
        assert sorted(got["timeWeights"]["nodeHours"]) == sorted(round(r[1] / 60 * r[2], 2) for r in rows)
    _analysis_limit(e, q, {"f": []})


def _analysis_limit(e: E2E, query: str, variables: dict[str, Any]) -> None:
    """More jobs than `max_jobs_for_analysis` match: a clear error (the site has fewer than upstream's
    500, so the limit is lowered for one request through the same engine and services)."""
    import dataclasses

    from cc_core.auth.user import User
    from cc_core.graphql import GraphQLContext, GraphQLSettings

    services = dataclasses.replace(
        e.client.app.state["graphql_services"], settings=GraphQLSettings(max_jobs_for_analysis=100)
    )
    engine = e.client.app.state["graphql_engine"]

    async def run() -> Any:
        ctx = GraphQLContext(user=User("root1", ["admin"]), services=services)
        return json.loads((await engine.execute(query, variables, None, ctx)).body)

    body = e.client.blocking_portal.call(run)
    assert "too many jobs matched (max: 100)" in body["errors"][0]["message"], body


def case_rooflineHeatmap(e: E2E) -> None:
    q = "query ($f: [JobFilter!]!) { rooflineHeatmap(filter: $f, rows: 4, cols: 5, minX: 0.01, minY: 1.0, maxX: 1000.0, maxY: 100000.0) }"
    for who in ("user", "admin"):
        vis, vp = e.visible(who)
        live = [j for j in e.running if e.sql(f"SELECT 1 FROM job WHERE id = ? AND {vis}", [j["id"], *vp])]
        got = e.data(who, q, {"f": [{"state": ["running"]}]})["rooflineHeatmap"]
        tiles = np.zeros((4, 5))
        for j in live:
            for host in j["hosts"]:
                flops, bw = e.samples[(host, "flops_any")], e.samples[(host, "mem_bw")]
                x = np.log10(flops / bw)
                y = np.log10(flops)
                col = np.floor((x - np.log10(0.01)) / (np.log10(1000.0) - np.log10(0.01)) * 5).astype(int)
                row = np.floor((y - np.log10(1.0)) / (np.log10(100000.0) - np.log10(1.0)) * 4).astype(int)
                for r, c in zip(row, col, strict=True):
                    if 0 <= r < 4 and 0 <= c < 5:
                        tiles[r, c] += 1
        assert np.array(got).sum() == tiles.sum() == sum(len(j["hosts"]) for j in live) * POINTS
        assert got == tiles.tolist(), who
    _analysis_limit(e, q, {"f": []})


def _node_window(e: E2E) -> dict[str, str]:
    import datetime as dt

    def iso(t: int) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {"from": iso(e.t0), "to": iso(e.t0 + STEP * POINTS)}


def case_nodeMetrics(e: E2E) -> None:
    q = (
        'query ($from: Time!, $to: Time!) { nodeMetrics(cluster: "fritz", nodes: ["f0900", "f0902"], '
        'metrics: ["cpu_load", "no_such_metric"], scopes: [node], from: $from, to: $to) '
        "{ host nodeState subCluster metrics { name scope metric { series { data } } } } }"
    )
    for who in ("user", "manager", "api"):
        assert "administrator or support" in e.error(who, q, _node_window(e))
    for who in STAFF:
        got = {n["host"]: n for n in e.data(who, q, _node_window(e))["nodeMetrics"]}
        assert set(got) == {"f0900", "f0902"}
        for host, n in got.items():
            assert n["nodeState"] == "allocated" and n["subCluster"] == "spr1tb"
            (m,) = n["metrics"]
            assert m["name"] == "cpu_load" and m["scope"] == "node"
            assert m["metric"]["series"][0]["data"][:POINTS] == e.samples[(host, "cpu_load")].tolist()


def case_nodeMetricsList(e: E2E) -> None:
    q = (
        "query ($from: Time!, $to: Time!, $state: String!, $filter: String!, $page: PageRequest) { nodeMetricsList("
        'cluster: "fritz", subCluster: "spr1tb", stateFilter: $state, nodeFilter: $filter, metrics: ["cpu_load"], '
        "scopes: [node], from: $from, to: $to, page: $page) { totalNodes hasNextPage items { host nodeState metricHealth "
        "metrics { name metric { series { data } } } } } }"
    )
    window = _node_window(e)
    assert "administrator or support" in e.error("user", q, {**window, "state": "all", "filter": ""})
    states = _latest_states(e)
    got = e.data(
        "admin", q, {**window, "state": "all", "filter": "", "page": {"itemsPerPage": 4, "page": 1}}
    )["nodeMetricsList"]
    assert got["totalNodes"] == len(states) and got["hasNextPage"] == (len(states) > 4)
    assert [i["host"] for i in got["items"]] == sorted(states)[:4]
    for item in got["items"]:
        assert (item["nodeState"], item["metricHealth"]) == states[item["host"]]
        assert (
            item["metrics"][0]["metric"]["series"][0]["data"][:POINTS]
            == e.samples[(item["host"], "cpu_load")].tolist()
        )
    idle = e.data("support", q, {**window, "state": "idle", "filter": "95"})["nodeMetricsList"]
    assert [i["host"] for i in idle["items"]] == sorted(
        h for h, (s, _) in states.items() if s == "idle" and "95" in h
    )
    # topology hosts without a node row, paged
    missing = e.data(
        "admin", q, {**window, "state": "notindb", "filter": "f09", "page": {"itemsPerPage": 10, "page": 1}}
    )["nodeMetricsList"]
    topo = [
        f"f{i:04d}" for i in range(496, 992) if f"f{i:04d}".startswith("f09") and f"f{i:04d}" not in states
    ]
    assert missing["totalNodes"] == len(topo) and [i["host"] for i in missing["items"]] == topo[:10]
    # a cluster without node states: "all" falls back to the topology's hosts (upstream does the same)
    doc = json.loads((e.site.root / "var" / "job-archive" / "alex" / "cluster.json").read_text())
    nodelist = next(sc["nodes"] for sc in doc["subClusters"] if sc["name"] == "a100")  # "a[0041-0081]"
    lo, hi = (int(x) for x in nodelist[2:-1].split("-"))
    alex = q.replace('cluster: "fritz", subCluster: "spr1tb"', 'cluster: "alex", subCluster: "a100"')
    got = e.data(
        "admin", alex, {**window, "state": "all", "filter": "", "page": {"itemsPerPage": 5, "page": 2}}
    )
    page = got["nodeMetricsList"]
    assert page["totalNodes"] == hi - lo + 1 and page["hasNextPage"]
    assert [i["host"] for i in page["items"]] == [f"a{n:04d}" for n in range(lo + 5, lo + 10)]
    assert {(i["nodeState"], i["metricHealth"]) for i in page["items"]} == {("", "")}  # no node rows


def case_clusterMetrics(e: E2E) -> None:
    q = 'query ($from: Time!, $to: Time!) { clusterMetrics(cluster: "fritz", metrics: ["mem_used"], from: $from, to: $to) { nodeCount metrics { name unit { prefix base } data } } }'
    assert "administrator or support" in e.error("manager", q, _node_window(e))
    got = e.data("admin", q, _node_window(e))["clusterMetrics"]
    hosts = {h for (h, m) in e.samples if m == "mem_used"}
    assert got["nodeCount"] == len(hosts)
    (m,) = got["metrics"]
    total = sum(e.samples[(h, "mem_used")] for h in hosts)
    # mem_used is in GB: the sum over all nodes is converted to TB, 2 decimals
    assert m["name"] == "mem_used" and m["unit"] == {"prefix": "T", "base": "B"}
    assert len(m["data"]) >= POINTS
    assert np.allclose(m["data"][:POINTS], np.round(total * 1e-3, 2), atol=0.011)


# ================================================================================ mutations


CREATE = "mutation ($t: String!, $n: String!, $s: String!) { createTag(type: $t, name: $n, scope: $s) { id type name scope } }"


def _create(e: E2E, who: str, name: str, scope: str) -> dict[str, Any]:
    return e.data(who, CREATE, {"t": "e2e", "n": name, "s": scope})["createTag"]


def case_createTag(e: E2E) -> None:
    rules = {  # contract §6.4 write rules: (role, scope) → allowed
        ("user", "own"): True,
        ("user", "global"): False,
        ("user", "admin"): False,
        ("user", "other"): False,
        ("manager", "global"): False,
        ("manager", "own"): True,
        ("support", "global"): True,
        ("support", "admin"): False,
        ("admin", "global"): True,
        ("admin", "admin"): True,
        ("admin", "other"): False,
        ("api", "global"): True,
        ("api", "admin"): True,
    }
    for (who, scope_kind), allowed in rules.items():
        scope = {"own": e.ids[who].username, "other": "someone-else"}.get(scope_kind, scope_kind)
        name = f"c-{who}-{scope_kind}"
        if allowed:
            tag = _create(e, who, name, scope)
            assert e.sql("SELECT tag_type, tag_name, tag_scope FROM tag WHERE id = ?", (int(tag["id"]),)) == [
                ("e2e", name, scope)
            ]
        else:
            assert "not authorized" in e.error(who, CREATE, {"t": "e2e", "n": name, "s": scope}), (
                who,
                scope_kind,
            )
            assert not e.sql("SELECT 1 FROM tag WHERE tag_name = ?", (name,))


def case_addTagsToJob(e: E2E) -> None:
    q = "mutation ($j: ID!, $t: [ID!]!) { addTagsToJob(job: $j, tagIds: $t) { name scope } }"
    own = _job_owned(e, "user")
    private = _create(e, "user", "a-private", e.ids["user"].username)
    glob = _create(e, "admin", "a-global", "global")
    got = e.data("user", q, {"j": str(own), "t": [private["id"]]})["addTagsToJob"]
    assert {"name": "a-private", "scope": e.ids["user"].username} in got
    assert e.sql("SELECT 1 FROM jobtag WHERE job_id = ? AND tag_id = ?", (own, int(private["id"])))
    assert "not authorized" in e.error("user", q, {"j": str(own), "t": [glob["id"]]})
    e.error("user", q, {"j": str(_job_of_stranger(e)), "t": [private["id"]]})  # not the user's job
    assert not e.sql(
        "SELECT 1 FROM jobtag WHERE job_id = ? AND tag_id = ?", (_job_of_stranger(e), int(private["id"]))
    )
    got = e.data("admin", q, {"j": str(own), "t": [glob["id"]]})["addTagsToJob"]
    # the admin does not see the user's private tag among the job's tags
    assert {"name": "a-global", "scope": "global"} in got and all(
        t["scope"] != e.ids["user"].username for t in got
    )
    # the archive's meta.json of the finished job carries the tag too
    assert any(t["name"] == "a-global" for t in _archived_meta(e, own).get("tags") or [])


def case_removeTagsFromJob(e: E2E) -> None:
    add = "mutation ($j: ID!, $t: [ID!]!) { addTagsToJob(job: $j, tagIds: $t) { id } }"
    q = "mutation ($j: ID!, $t: [ID!]!) { removeTagsFromJob(job: $j, tagIds: $t) { name } }"
    own = _job_owned(e, "user")
    tag = _create(e, "support", "r-global", "global")
    e.data("support", add, {"j": str(own), "t": [tag["id"]]})
    assert "not authorized" in e.error("user", q, {"j": str(own), "t": [tag["id"]]})
    got = e.data("support", q, {"j": str(own), "t": [tag["id"]]})["removeTagsFromJob"]
    assert all(t["name"] != "r-global" for t in got)
    assert not e.sql("SELECT 1 FROM jobtag WHERE job_id = ? AND tag_id = ?", (own, int(tag["id"])))


def case_removeTagFromList(e: E2E) -> None:
    q = "mutation ($t: [ID!]!) { removeTagFromList(tagIds: $t) }"
    mine = _create(e, "user", "l-private", e.ids["user"].username)
    glob = _create(e, "support", "l-global", "global")
    assert "not authorized" in e.error("user", q, {"t": [glob["id"]]})
    assert "not authorized" in e.error("support", q, {"t": [glob["id"]]})  # only admins delete global tags
    assert e.data("user", q, {"t": [mine["id"]]})["removeTagFromList"] == [int(mine["id"])]
    assert e.data("admin", q, {"t": [glob["id"]]})["removeTagFromList"] == [int(glob["id"])]
    assert not e.sql("SELECT 1 FROM tag WHERE id IN (?, ?)", (int(mine["id"]), int(glob["id"])))


def case_deleteTag(e: E2E) -> None:
    q = "mutation ($id: ID!) { deleteTag(id: $id) }"
    mine = _create(e, "user", "d-private", e.ids["user"].username)
    glob = _create(e, "admin", "d-global", "global")
    assert "not authorized" in e.error("user", q, {"id": glob["id"]})
    assert e.data("user", q, {"id": mine["id"]})["deleteTag"] == mine["id"]
    assert e.data("admin", q, {"id": glob["id"]})["deleteTag"] == glob["id"]
    assert not e.sql("SELECT 1 FROM tag WHERE id IN (?, ?)", (int(mine["id"]), int(glob["id"])))
    # another user's private tag is not even readable: not found
    e.error("admin", q, {"id": _create(e, "manager", "d-boss", "boss")["id"]})


def case_updateConfiguration(e: E2E) -> None:
    q = 'mutation ($v: String!) { updateConfiguration(name: "plot_list_selectedMetrics", value: $v) }'
    for who in ("user", "admin"):
        value = json.dumps(["cpu_load", who])
        assert e.data(who, q, {"v": value})["updateConfiguration"] is None
        assert e.sql(
            "SELECT value FROM configuration WHERE username = ? AND confkey = 'plot_list_selectedMetrics'",
            (e.ids[who].username,),
        ) == [(value,)]


CASES: dict[str, Callable[[E2E], None]] = {
    name.removeprefix("case_"): fn
    for name, fn in globals().items()
    if name.startswith("case_") and callable(fn)
}


def _schema_fields() -> set[str]:
    gql = schema._schema
    return set(gql.query_type.fields) | set(gql.mutation_type.fields)  # type: ignore[union-attr]


def test_every_field_has_a_case() -> None:
    fields = _schema_fields()
    assert fields - set(CASES) == set(), "Query/Mutation fields without an end-to-end case"
    assert set(CASES) - fields == set(), "cases for fields the schema does not have"


@pytest.mark.parametrize("field", sorted(_schema_fields()))
def test_field(e2e: E2E, field: str) -> None:
    CASES[field](e2e)


# ================================================================================ bad input


BAD_INPUT = [
    ("{ jobs(filter: [{state: [bogus]}]) { count } }", "bogus"),
    ('{ jobs(filter: [{startTime: {range: "last99y"}}]) { count } }', "last99y"),
    ('{ jobs(filter: [{startTime: {from: "yesterday"}}]) { count } }', "Time"),
    (
        '{ jobs(filter: [{metricStats: [{metricName: "flops\') OR 1=1 --", range: {from: 1, to: 2}}]}]) { count } }',
        "metricName",
    ),
    ('{ jobs(filter: [{dbId: ["abc"]}]) { count } }', "abc"),
    ('{ jobs(filter: [{tags: ["1; DROP TABLE job"]}]) { count } }', "DROP"),
    ('{ jobs(order: {field: "start_time; DROP TABLE job", type: "col"}) { count } }', "cannot sort by"),
    ('{ jobs(order: {field: "flops\'", type: "footprint"}) { count } }', "invalid metric name"),
    ("{ jobs(page: {itemsPerPage: 0, page: 1}) { count } }", "itemsPerPage"),
    ("{ jobs(page: {itemsPerPage: 10, page: -3}) { count } }", "page"),
    ("{ jobs(page: {itemsPerPage: 99999999999, page: 1}) { count } }", "Int"),
    (
        '{ jobsStatistics(metrics: ["flops_any"], numMetricBins: 0) { histMetrics { metric } } }',
        "numMetricBins",
    ),
    ("{ jobsStatistics(groupBy: USER) { histMetrics { metric } } }", "groupBy"),
    ('{ jobMetrics(id: "not-a-number") { name } }', "not-a-number"),
    ('{ job(id: "99999999") { id } }', "99999999"),
    ('{ nodeStatesTimed(type: "neither") { state } }', "neither"),
    (
        '{ clusterMetrics(cluster: "nosuch", from: "2024-01-01T00:00:00Z", to: "2024-01-02T00:00:00Z") { nodeCount } }',
        "nosuch",
    ),
    ("{ nodes(filter: [{schedulerState: sleeping}]) { count } }", "sleeping"),
    ("{ jobs { items { id nosuchfield } } }", "nosuchfield"),
    ('mutation { createTag(type: "", name: "x", scope: "global") { id } }', "type"),
    ('mutation { addTagsToJob(job: "1", tagIds: ["999999"]) { id } }', "999999"),
]


@pytest.mark.parametrize(("query", "mentions"), BAD_INPUT)
def test_bad_input_is_a_graphql_error(e2e: E2E, query: str, mentions: str) -> None:
    message = e2e.error("admin", query)
    assert mentions.lower() in message.lower(), message


def test_huge_but_valid_page_is_answered(e2e: E2E) -> None:
    got = e2e.data("admin", "{ jobs(page: {itemsPerPage: 2147483647, page: 1}) { count items { id } } }")[
        "jobs"
    ]
    assert len(got["items"]) == got["count"] == e2e.sql("SELECT COUNT(*) FROM job")[0][0]
    # a page far beyond the end is empty, not an error or an overflow
    got = e2e.data(
        "admin", "{ jobs(page: {itemsPerPage: 2147483647, page: 2147483647}) { items { id } hasNextPage } }"
    )
    assert got["jobs"] == {"items": [], "hasNextPage": False}


def test_user_names_of_a_page_come_in_one_query(e2e: E2E) -> None:
    """A page of many users resolves ``userData`` with one ``get_many`` call (no N+1)."""
    repo = e2e.services.db.users
    calls: list[int] = []
    original = repo.get_many

    async def counting(names: Any) -> Any:
        calls.append(len(names))
        return await original(names)

    repo.get_many = counting
    try:
        got = e2e.data(
            "admin", "{ jobs(page: {itemsPerPage: 100, page: 1}) { items { user userData { name } } } }"
        )
    finally:
        del repo.get_many
    users = {i["user"] for i in got["jobs"]["items"]}
    assert len(users) > 10 and calls == [len(users)]


def test_fast_list_completion_matches_graphql_core(e2e: E2E) -> None:
    """The job page completed by the object-list fast path equals graphql-core's own completion."""
    import asyncio

    from graphql import execute, parse
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from cc_core.auth.user import User
    from cc_core.graphql import GraphQLContext
    from cc_core.graphql.execution import encode_response

    query = (
        "{ jobs(page: {itemsPerPage: 60, page: 1}) { count items { __typename id jobId user project cluster subCluster "
        "startTime duration walltime numNodes numHWThreads numAcc energy SMT shared partition arrayJobId "
        "monitoringStatus state tags { id type scope name } resources { hostname hwthreads accelerators } "
        "footprint { name stat value } energyFootprint { hardware metric value } metaData userData { name email } } } }"
    )
    fast = e2e.data("admin", query)
    services = e2e.client.app.state["graphql_services"]

    async def naive() -> Any:
        ctx = GraphQLContext(user=User("root1", ["admin"]), services=services)
        result = await execute(
            schema._schema,
            parse(query),
            context_value=ctx,
            executor_class=StrawberryGraphQLCoreExecutionContext,
        )  # type: ignore[misc]
        assert not result.errors, result.errors
        return json.loads(encode_response(result.data))["data"]

    assert e2e.client.blocking_portal.call(naive) == fast
    assert asyncio.iscoroutinefunction(naive)

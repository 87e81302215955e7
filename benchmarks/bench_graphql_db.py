"""GraphQL job list and statistics on 1,000,000 jobs against raw sqlite3 running the equivalent SQL.

*ours*: `GraphQLEngine.execute` of the query (parse/validation cache, resolvers, repository SQL building,
worker-thread hop, decoding rows into `Job`, completion and JSON encoding of the response) on a real
SQLite database with `cc_core.db.generate` jobs.
*limit*: the same rows fetched with hand-written SQL through the raw ``sqlite3`` driver (no decoding of
JSON columns, no response): the physical cost of reading what the answer contains.

Figures:

* ``jobs``: the job list's first page (50 items, the fields upstream's job list shows, with count, tags
  and user names), cluster + state filter, sorted by start time descending (≤ 3×, issue 7); and the same
  page without ``count``, where the SQL is cheap and GraphQL's own work shows;
* ``jobsStatistics`` over all jobs: every total plus the duration and node/core/accelerator histograms
  (≤ 1.5×);
* ``jobsStatistics`` grouped by user (every user, with display names: the user list view) (≤ 1.5×).

The database is generated once and cached (``CC_BENCH_CACHE``, default ``$TMPDIR/cc-bench-cache``) as
``graphql-<n>-seed1.db``; later runs copy nothing and start at once. Size: ``CC_BENCH_GQL_JOBS`` (default
1,000,000). Run: ``python -m benchmarks graphql_db``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._report import Result, report
from benchmarks.bench_db import paired
from cc_core.auth.user import User
from cc_core.db import Database
from cc_core.db.generate import generate_jobs
from cc_core.graphql import GraphQLContext, GraphQLEngine, GraphQLServices

DEFAULT_JOBS = 1_000_000
SEED = 1
# A fixed "now" for the generator keeps the cached file identical between runs; `last30d`-style filters
# are avoided (they would depend on the wall clock), the filter is cluster + state.
GENERATED_NOW = 1_760_000_000
ADMIN = User("bench", ["admin"])
SHORT = 300  # main.short-running-jobs-duration default

JOBS_QUERY = """
query ($filter: [JobFilter!]!, $sorting: OrderByInput!, $paging: PageRequest!) {
  jobs(filter: $filter, order: $sorting, page: $paging) {
    items {
      id jobId user project cluster subCluster startTime duration walltime numNodes numHWThreads numAcc
      energy SMT shared partition arrayJobId monitoringStatus state
      tags { id type scope name }
      resources { hostname }
      footprint { name stat value }
      metaData
      userData { name }
    }
    count
    hasNextPage
  }
}
"""
JOBS_VARS = {
    "filter": [{"cluster": {"eq": "fritz"}}, {"state": ["completed"]}],
    "sorting": {"field": "startTime", "type": "col", "order": "DESC"},
    "paging": {"itemsPerPage": 50, "page": 1},
}

NO_COUNT_QUERY = JOBS_QUERY.replace("    count\n", "")

GLOBAL_STATS_QUERY = """
{ jobsStatistics {
    totalJobs runningJobs shortJobs totalUsers totalWalltime totalNodes totalNodeHours totalCores
    totalCoreHours totalAccs totalAccHours
    histDuration { count value } histNumNodes { count value } histNumCores { count value }
    histNumAccs { count value }
} }
"""

USER_STATS_QUERY = """
{ jobsStatistics(groupBy: USER) { id name totalJobs totalWalltime totalCoreHours totalAccHours } }
"""

_DUR = "(CASE WHEN job_state = 'running' THEN :now - start_time ELSE duration END)"


def _hours(expr: str) -> str:
    return f"CAST((COALESCE(SUM({expr}), 0) + 1800) / 3600.0 AS INTEGER)"


RAW = {
    "page": "SELECT id, job_id, hpc_user, project, cluster, subcluster, start_time, duration, walltime, "
    "num_nodes, num_hwthreads, num_acc, energy, smt, shared, cluster_partition, array_job_id, "
    "monitoring_status, job_state, resources, footprint, meta_data FROM job "
    "WHERE cluster = 'fritz' AND job_state = 'completed' ORDER BY start_time DESC, id DESC LIMIT 51",
    "count": "SELECT COUNT(*) FROM job WHERE cluster = 'fritz' AND job_state = 'completed'",
    "tags": "SELECT jobtag.job_id, tag.id, tag.tag_type, tag.tag_name, tag.tag_scope FROM jobtag "
    "JOIN tag ON tag.id = jobtag.tag_id WHERE jobtag.job_id IN ({ids})",
    "users": "SELECT username, name FROM hpc_user WHERE username IN ({names})",
    "totals": f"SELECT COUNT(*), COUNT(CASE WHEN job_state = 'running' THEN 1 END), "
    f"COUNT(CASE WHEN {_DUR} < {SHORT} THEN 1 END), COUNT(DISTINCT hpc_user), {_hours(_DUR)}, "
    f"COALESCE(SUM(num_nodes), 0), {_hours(_DUR + ' * num_nodes')}, COALESCE(SUM(num_hwthreads), 0), "
    f"{_hours(_DUR + ' * num_hwthreads')}, COALESCE(SUM(num_acc), 0), {_hours(_DUR + ' * num_acc')} FROM job",
    "hist_duration": f"SELECT {_DUR} / 3600 + 1 AS v, COUNT(*) FROM job GROUP BY v",
    "hist_nodes": "SELECT num_nodes, COUNT(*) FROM job GROUP BY num_nodes",
    "hist_cores": "SELECT num_hwthreads, COUNT(*) FROM job GROUP BY num_hwthreads",
    "hist_accs": "SELECT num_acc, COUNT(*) FROM job GROUP BY num_acc",
    "by_user": f"SELECT hpc_user, COUNT(*), {_hours(_DUR)}, {_hours(_DUR + ' * num_hwthreads')}, "
    f"{_hours(_DUR + ' * num_acc')} FROM job GROUP BY hpc_user ORDER BY hpc_user",
    "user_names": "SELECT username, name FROM hpc_user",
}


def cache_dir() -> Path:
    return Path(os.environ.get("CC_BENCH_CACHE") or Path(tempfile.gettempdir()) / "cc-bench-cache")


def cached_database(n: int) -> Path:
    """The generated database of ``n`` jobs (+ a user row per job owner), built once: generated into a
    temporary file next to the cache entry and renamed into place, so an interrupted build leaves
    nothing half-written behind."""
    path = cache_dir() / f"graphql-{n}-seed{SEED}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    print(f"generating {n:,} jobs into {path} (once) ...", flush=True)
    t0 = time.perf_counter()
    jobs = generate_jobs(n, seed=SEED, now=GENERATED_NOW)
    t1 = time.perf_counter()
    db = Database(str(tmp))
    try:
        gc.collect()
        gc.freeze()
        db.jobs.bulk_insert_sync(jobs)
        users = sorted({j.user for j in jobs})
        del jobs
        gc.unfreeze()
    finally:
        db.close_sync()
    conn = sqlite3.connect(str(tmp))
    with conn:
        conn.executemany(
            "INSERT INTO hpc_user (username, name, email, roles, projects) VALUES (?, ?, ?, '[\"user\"]', '[]')",
            [(u, f"User {u}", f"{u}@example.org") for u in users],
        )
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    print(f"generated in {t1 - t0:.1f} s, stored in {time.perf_counter() - t1:.1f} s", flush=True)
    return path


def main(argv: list[str] | None = None) -> bool:
    n = int(os.environ.get("CC_BENCH_GQL_JOBS", DEFAULT_JOBS))
    path = cached_database(n)
    db = Database(str(path))
    raw = sqlite3.connect(str(path), check_same_thread=False)
    raw.execute("PRAGMA cache_size = -2097152")
    engine = GraphQLEngine()
    context = GraphQLContext(user=ADMIN, services=GraphQLServices.from_database(db))
    results: list[Result] = []

    def q(sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        return raw.execute(sql, params or {}).fetchall()

    async def gql(query: str, variables: dict[str, Any] | None = None) -> bytes:
        context.cache.clear()  # per-request caches, as a new request would have
        response = await engine.execute(query, variables, None, context)
        assert response.status_code == 200 and b'"errors"' not in response.body[:20], response.body[:300]
        return response.body

    def raw_page() -> Any:
        rows = q(RAW["page"])
        ids = ",".join(str(r[0]) for r in rows[:50])
        names = ",".join(f"'{u}'" for u in {r[2] for r in rows[:50]})  # generated names: [u0-9]
        return rows, q(RAW["count"]), q(RAW["tags"].format(ids=ids)), q(RAW["users"].format(names=names))

    def raw_page_only() -> Any:
        rows = q(RAW["page"])
        ids = ",".join(str(r[0]) for r in rows[:50])
        names = ",".join(f"'{u}'" for u in {r[2] for r in rows[:50]})
        return rows, q(RAW["tags"].format(ids=ids)), q(RAW["users"].format(names=names))

    def raw_global() -> Any:
        now = {"now": int(db.clock())}
        return [q(RAW[k], now) for k in ("totals", "hist_duration", "hist_nodes", "hist_cores", "hist_accs")]

    def raw_by_user() -> Any:
        return q(RAW["by_user"], {"now": int(db.clock())}), q(RAW["user_names"])

    async def measure() -> None:
        import msgspec

        body = msgspec.json.decode(await gql(JOBS_QUERY, JOBS_VARS))["data"]["jobs"]
        rows, count, _tags, _users = raw_page()
        assert [int(i["id"]) for i in body["items"]] == [r[0] for r in rows[:50]], "page disagrees with SQL"
        assert body["count"] == count[0][0]
        ours, limit = await paired(lambda: gql(JOBS_QUERY, JOBS_VARS), raw_page, rounds=15)
        results.append(
            Result(
                f"jobs page (50 of {count[0][0]:,}, UI fields, count, tags, user names)",
                ours,
                limit,
                target="≤ 3×",
                limit_name="raw sqlite3: page + count + tags + users",
                ok=ours <= 3 * limit,
            )
        )

        # Without the count the page is a few milliseconds of SQL: what is left is GraphQL's own cost.
        ours, limit = await paired(lambda: gql(NO_COUNT_QUERY, JOBS_VARS), raw_page_only, rounds=15)
        results.append(
            Result(
                "  same page without count (hasNextPage only)",
                ours,
                limit,
                limit_name="raw sqlite3: page + tags + users",
            )
        )

        body = msgspec.json.decode(await gql(GLOBAL_STATS_QUERY))["data"]["jobsStatistics"][0]
        totals = raw_global()[0][0]
        # running jobs' hours grow with the clock between the two queries: hours agree to 0.01 %
        assert (body["totalJobs"], body["totalNodes"], body["totalCores"]) == (
            totals[0],
            totals[5],
            totals[7],
        )
        assert abs(body["totalCoreHours"] - totals[8]) <= 1e-4 * totals[8], (
            body["totalCoreHours"],
            totals[8],
        )
        ours, limit = await paired(lambda: gql(GLOBAL_STATS_QUERY), raw_global, rounds=5)
        results.append(
            Result(
                f"jobsStatistics, all {n:,} jobs: 11 totals + 4 histograms",
                ours,
                limit,
                target="≤ 1.5×",
                limit_name="raw sqlite3: 5 queries",
                ok=ours <= 1.5 * limit,
            )
        )

        body = msgspec.json.decode(await gql(USER_STATS_QUERY))["data"]["jobsStatistics"]
        by_user, _names = raw_by_user()
        assert [(s["id"], s["totalJobs"]) for s in body] == [(r[0], r[1]) for r in by_user]
        assert all(
            abs(s["totalCoreHours"] - r[3]) <= 1e-4 * r[3] + 1 for s, r in zip(body, by_user, strict=True)
        )
        ours, limit = await paired(lambda: gql(USER_STATS_QUERY), raw_by_user, rounds=5)
        results.append(
            Result(
                f"jobsStatistics grouped by user ({len(body):,} users, names)",
                ours,
                limit,
                target="≤ 1.5×",
                limit_name="raw sqlite3: group by + names",
                ok=ours <= 1.5 * limit,
            )
        )

    try:
        asyncio.run(measure())
    finally:
        raw.close()
        db.close_sync()
    report(f"GraphQL on SQLite {n} jobs", results)
    return all(r.ok is not False for r in results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

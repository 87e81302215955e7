"""Ordering, paging, counting and per-role visibility of job lists and lookups."""

from __future__ import annotations

import anyio
import pytest

from cc_core.auth.user import User
from cc_core.db import (
    SYSTEM_USER,
    InvalidMetricNameError,
    InvalidPageError,
    InvalidSortError,
    JobFilter,
    JobNotFoundError,
    OrderByInput,
    PageRequest,
    PermissionDeniedError,
    StringInput,
)
from cc_core.schema.job import Job
from tests.db.conftest import ADMIN, API, NOW, SUPPORT, Seeded

ALL = PageRequest(items_per_page=-1, page=1)


def _list(seeded: Seeded, user: User = ADMIN, **kw: object) -> list[Job]:
    return anyio.run(lambda: seeded.db.jobs.list(user, **kw)).items  # type: ignore[arg-type]


SORTS = [
    ("startTime", lambda j: j.start_time),
    ("duration", lambda j: j.duration),
    ("numNodes", lambda j: j.num_nodes),
    ("numHWThreads", lambda j: j.num_hwthreads),
    ("numAcc", lambda j: j.num_acc),
    ("energy", lambda j: j.energy),
    ("jobId", lambda j: j.job_id),
    ("user", lambda j: j.user),
    ("cluster", lambda j: j.cluster),
    ("walltime", lambda j: j.walltime),
    ("arrayJobId", lambda j: j.array_job_id),
]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize(("field", "key"), SORTS, ids=[s[0] for s in SORTS])
def test_order_by_column(seeded: Seeded, field: str, key, direction: str) -> None:
    flt = [JobFilter(cluster=StringInput(eq="woody"))]
    got = _list(seeded, filters=flt, page=ALL, order=OrderByInput(field=field, type="col", order=direction))
    want = sorted((j for j in seeded.jobs if j.cluster == "woody"), key=lambda j: (key(j), j.id))
    if direction == "DESC":
        want.reverse()
    assert [j.id for j in got] == [j.id for j in want]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("key", ["flops_any_avg", "acc_utilization_avg"])
def test_order_by_footprint_key(seeded: Seeded, direction: str, key: str) -> None:
    got = _list(seeded, page=ALL, order=OrderByInput(field=key, type="foot", order=direction))
    # Upstream keeps only jobs that have a footprint when sorting by one of its keys; jobs whose
    # footprint lacks the key sort as NULL, i.e. first ascending, last descending (SQLite's order).
    have = [j for j in seeded.jobs if j.footprint is not None]

    def sort_key(j: Job) -> tuple[int, float, int]:
        v = j.footprint.get(key)  # type: ignore[union-attr]
        return (0, 0.0, j.id) if v is None else (1, v, j.id)  # type: ignore[return-value]

    want = sorted(have, key=sort_key, reverse=direction == "DESC")
    assert [j.id for j in got] == [j.id for j in want]


def test_default_order_is_start_time_descending(seeded: Seeded) -> None:
    got = _list(seeded, page=PageRequest(items_per_page=20, page=1))
    want = sorted(seeded.jobs, key=lambda j: (j.start_time, j.id), reverse=True)[:20]
    assert [j.id for j in got] == [j.id for j in want]


def test_paging_covers_everything_once(seeded: Seeded) -> None:
    flt = [JobFilter(cluster=StringInput(eq="alex"))]
    total = sum(1 for j in seeded.jobs if j.cluster == "alex")
    seen: list[int] = []
    page_no = 1
    while True:
        page = seeded.db.jobs.list_sync(ADMIN, flt, PageRequest(items_per_page=97, page=page_no))
        seen += [j.id for j in page.items if j.id is not None]
        assert page.count == total
        if not page.has_next_page:
            assert len(page.items) == total - 97 * (page_no - 1)
            break
        assert len(page.items) == 97
        page_no += 1
    assert sorted(seen) == sorted(j.id for j in seeded.jobs if j.cluster == "alex")
    assert len(seen) == len(set(seen))


def test_exact_page_boundary_has_no_next_page(seeded: Seeded) -> None:
    n = sum(1 for j in seeded.jobs if j.cluster == "alex")
    page = anyio.run(
        lambda: seeded.db.jobs.list(ADMIN, [JobFilter(cluster=StringInput(eq="alex"))], PageRequest(n, 1))
    )
    assert len(page.items) == n and not page.has_next_page
    beyond = anyio.run(lambda: seeded.db.jobs.list(ADMIN, None, PageRequest(50, 10_000)))
    assert beyond.items == [] and not beyond.has_next_page and beyond.count == len(seeded.jobs)


def test_count_can_be_skipped(seeded: Seeded) -> None:
    page = anyio.run(lambda: seeded.db.jobs.list(ADMIN, None, PageRequest(5, 1), count=False))
    assert page.count is None and len(page.items) == 5 and page.has_next_page
    assert anyio.run(seeded.db.jobs.count, ADMIN, None) == len(seeded.jobs)


@pytest.mark.parametrize(
    ("page", "order", "error"),
    [
        (PageRequest(items_per_page=0, page=1), None, InvalidPageError),
        (PageRequest(items_per_page=-2, page=1), None, InvalidPageError),
        (PageRequest(items_per_page=10, page=0), None, InvalidPageError),
        (PageRequest(items_per_page=10, page=-1), None, InvalidPageError),
        (None, OrderByInput(field="password", type="col"), InvalidSortError),
        (None, OrderByInput(field="start_time; DROP TABLE job", type="col"), InvalidSortError),
        (None, OrderByInput(field="startTime", type="col", order="SIDEWAYS"), InvalidSortError),
        (None, OrderByInput(field="flops-any", type="foot"), InvalidMetricNameError),
    ],
)
def test_bad_page_and_order(seeded: Seeded, page, order, error) -> None:
    with pytest.raises(error):
        _list(seeded, page=page, order=order)


def test_jobs_decode_completely(seeded: Seeded) -> None:
    """Round trip: what the bulk path wrote is what a list returns (metadata and tags on request)."""
    got = {j.id: j for j in _list(seeded, page=ALL, with_metadata=True)}
    for want in seeded.jobs[:300]:
        j = got[want.id]
        assert j.resources == want.resources
        assert j.footprint == want.footprint
        assert j.energy_footprint == want.energy_footprint
        assert j.meta_data == want.meta_data
        assert (j.job_id, j.user, j.project, j.cluster, j.sub_cluster, j.partition) == (
            want.job_id,
            want.user,
            want.project,
            want.cluster,
            want.sub_cluster,
            want.partition,
        )
        assert (j.start_time, j.submit_time, j.duration, j.walltime, j.job_state) == (
            want.start_time,
            want.submit_time,
            want.duration,
            want.walltime,
            want.job_state,
        )
        assert (j.num_nodes, j.num_hwthreads, j.num_acc, j.shared, j.monitoring_status, j.energy) == (
            want.num_nodes,
            want.num_hwthreads,
            want.num_acc,
            want.shared,
            want.monitoring_status,
            want.energy,
        )


def test_running_jobs_report_live_duration(seeded: Seeded) -> None:
    running = [j for j in _list(seeded, filters=[JobFilter(state=["running"])], page=ALL)]
    assert running
    for j in running:
        assert j.duration == NOW - j.start_time


def test_tags_of_listed_jobs_respect_scope(seeded: Seeded) -> None:
    admin_view = {j.id: j.tags for j in _list(seeded, page=ALL, with_tags=True)}
    for want in seeded.jobs:
        visible = sorted((t.type, t.name) for t in want.tags or () if t.scope in ("global", "admin"))
        assert sorted((t.type, t.name) for t in admin_view[want.id] or ()) == visible
    owner = next(j for j in seeded.jobs if any(t.scope == j.user for t in j.tags or ()))
    mine = _list(seeded, User(owner.user, ["user"]), page=ALL, with_tags=True)
    tags = next(j.tags for j in mine if j.id == owner.id)
    assert any(t.scope == owner.user for t in tags or ())
    assert all(t.scope != "admin" for j in mine for t in j.tags or ())


# ------------------------------------------------------------------ visibility (§6.2)


def _visible(seeded: Seeded, user: User) -> set[int]:
    return {j.id for j in _list(seeded, user, page=ALL) if j.id is not None}


def test_visibility_per_role(seeded: Seeded) -> None:
    everything = {j.id for j in seeded.jobs}
    assert _visible(seeded, ADMIN) == everything
    assert _visible(seeded, SUPPORT) == everything
    assert _visible(seeded, API) == everything
    assert _visible(seeded, SYSTEM_USER) == everything
    alice = seeded.jobs[0].user
    assert _visible(seeded, User(alice, ["user"])) == {j.id for j in seeded.jobs if j.user == alice}
    # api + user is not a "pure" API token: only own jobs
    assert _visible(seeded, User(alice, ["user", "api"])) == {j.id for j in seeded.jobs if j.user == alice}
    projects = sorted({j.project for j in seeded.jobs})[:2]
    mgr = User("boss", ["manager"], projects=projects)
    assert _visible(seeded, mgr) == {j.id for j in seeded.jobs if j.project in projects or j.user == "boss"}
    lonely = User(alice, ["manager"])  # no projects: own jobs only
    assert _visible(seeded, lonely) == {j.id for j in seeded.jobs if j.user == alice}
    assert _visible(seeded, User("nobody", ["user"])) == set()


def test_injection_in_projects_is_just_a_value(seeded: Seeded) -> None:
    mgr = User("x", ["manager"], projects=["p001' OR '1'='1", "p002"])
    assert _visible(seeded, mgr) == {j.id for j in seeded.jobs if j.project == "p002"}


def test_unknown_roles_are_refused(seeded: Seeded) -> None:
    for user in (User("x", []), User("x", ["anonymous"]), User("x", ["wizard"])):
        with pytest.raises(PermissionDeniedError):
            _list(seeded, user)
    with pytest.raises(PermissionDeniedError):
        _list(seeded, None)  # type: ignore[arg-type]


def test_find_by_id_and_key_apply_visibility(seeded: Seeded) -> None:
    job = seeded.jobs[10]
    owner, other = User(job.user, ["user"]), User("someone-else", ["user"])
    got = anyio.run(lambda: seeded.db.jobs.find_by_id(owner, job.id, with_tags=True))
    assert got.job_id == job.job_id and got.meta_data == job.meta_data
    with pytest.raises(JobNotFoundError) as exc:
        anyio.run(lambda: seeded.db.jobs.find_by_id(other, job.id))
    assert exc.value.status_code == 404
    assert anyio.run(lambda: seeded.db.jobs.find(owner, job.job_id, job.cluster, job.start_time)).id == job.id
    assert anyio.run(lambda: seeded.db.jobs.find(ADMIN, job.job_id)).id == job.id
    with pytest.raises(JobNotFoundError):
        anyio.run(lambda: seeded.db.jobs.find(other, job.job_id, job.cluster))
    with pytest.raises(JobNotFoundError):
        anyio.run(lambda: seeded.db.jobs.find(ADMIN, job.job_id, "nocluster"))
    assert [j.id for j in anyio.run(lambda: seeded.db.jobs.find_all(ADMIN, job.job_id))] == [job.id]


def test_used_and_allocated_nodes(seeded: Seeded) -> None:
    running = [j for j in seeded.jobs if j.job_state == "running"]
    used = anyio.run(lambda: seeded.db.jobs.used_nodes(API, NOW + 1))
    want: dict[str, set[str]] = {}
    for j in running:
        want.setdefault(j.cluster, set()).update(r.hostname for r in j.resources)
    assert {c: set(h) for c, h in used.items()} == want
    alloc = anyio.run(lambda: seeded.db.jobs.allocated_nodes(ADMIN, "fritz"))
    counts: dict[str, dict[str, int]] = {}
    for j in running:
        if j.cluster == "fritz":
            for r in j.resources:
                counts.setdefault(j.sub_cluster, {}).setdefault(r.hostname, 0)
                counts[j.sub_cluster][r.hostname] += 1
    assert alloc == counts
    assert anyio.run(lambda: seeded.db.jobs.partitions("fritz")) == ["main", "spr1tb"]


def test_concurrent_jobs(seeded: Seeded) -> None:
    job = next(j for j in seeded.jobs if j.job_state != "running" and j.duration > 3600 and j.num_nodes == 1)
    host = job.resources[0].hostname
    got = anyio.run(lambda: seeded.db.jobs.concurrent_jobs(ADMIN, job))
    stop = job.start_time + job.duration
    want = sorted(
        j.id
        for j in seeded.jobs
        if j.cluster == job.cluster
        and any(r.hostname == host for r in j.resources)
        and (
            (
                j.job_state != "running"
                and j.start_time < stop - 200
                and j.start_time + j.duration > job.start_time + 200
            )
            or (j.job_state == "running" and j.start_time <= stop - 200)
        )
    )
    assert sorted(link.id for link in got.items) == want
    assert got.count == len(want) and job.id in want

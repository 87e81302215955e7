"""Job lifecycle writes: start, stop (upstream's checks), metadata, footprint, deletes, bulk insert."""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
import msgspec
import pytest

from cc_core.auth.user import User
from cc_core.db import (
    Database,
    DBError,
    DuplicateJobError,
    InvalidInputError,
    InvalidStateError,
    InvalidStopTimeError,
    JobAlreadyStoppedError,
    JobFilter,
    JobNotFoundError,
    PageRequest,
    PermissionDeniedError,
)
from cc_core.schema.job import Job, Resource, Tag
from tests.db.conftest import ADMIN, API, NOW

ALL = PageRequest(items_per_page=-1, page=1)


def make_job(job_id: int = 1, *, start: int = NOW - 600, cluster: str = "fritz", **kw: object) -> Job:
    fields: dict[str, object] = dict(
        job_id=job_id,
        user="alice",
        project="p1",
        cluster=cluster,
        sub_cluster="main",
        partition="main",
        start_time=start,
        num_nodes=1,
        num_hwthreads=72,
        walltime=3600,
        resources=[Resource(hostname="f0101", hwthreads=list(range(72)))],
        meta_data={"jobName": "x", "jobScript": "#!/bin/sh\necho 'quoted' \"too\""},
    )
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def run(fn, *args, **kw):
    return anyio.run(lambda: fn(*args, **kw))


def test_start_is_visible_at_once(db: Database) -> None:
    started = run(db.jobs.start, make_job(), user=API)
    assert started.id is not None and started.job_state == "running"
    page = run(db.jobs.list, ADMIN, None, ALL)
    assert [j.id for j in page.items] == [started.id]
    got = run(db.jobs.find_by_id, ADMIN, started.id)
    assert got.duration == 600 and got.meta_data == make_job().meta_data
    # start forces the state to running, whatever the body said
    other = run(db.jobs.start, make_job(2, job_state="completed"))
    assert other.job_state == "running"


def test_duplicate_rule_is_upstreams(db: Database) -> None:
    first = run(db.jobs.start, make_job(7, start=NOW - 1000))
    for start in (NOW - 1000, NOW - 1000 + 86399, NOW - 50_000):  # same, later within 24 h, earlier
        with pytest.raises(DuplicateJobError) as exc:
            run(db.jobs.start, make_job(7, start=start))
        assert exc.value.status_code == 422 and exc.value.existing_id == first.id
    # a day later the scheduler may reuse the id; another cluster may use it any time
    assert run(db.jobs.start, make_job(7, start=NOW - 1000 + 86400)).id
    assert run(db.jobs.start, make_job(7, start=NOW - 1000, cluster="alex")).id


def test_start_validates(db: Database) -> None:
    with pytest.raises(InvalidInputError):
        run(db.jobs.start, make_job(shared="everybody"))
    with pytest.raises(InvalidInputError):
        run(db.jobs.start, make_job(num_nodes=0))
    with pytest.raises(InvalidInputError):
        run(db.jobs.start, make_job(resources=[]))
    with pytest.raises(InvalidInputError):
        run(db.jobs.start, make_job(monitoring_status=9))


def test_start_with_tags_checks_scope(db: Database) -> None:
    by_api = run(db.jobs.start, make_job(1, tags=[Tag(type="app", name="vasp")]), user=API)
    by_alice = run(
        db.jobs.start,
        make_job(2, tags=[Tag(type="note", name="mine", scope="alice")]),
        user=User("alice", ["user", "api"]),
    )
    alice = User("alice", ["user"])
    assert [(t.type, t.name, t.scope) for t in run(db.tags.of_job, alice, by_api.id)] == [
        ("app", "vasp", "global")
    ]
    assert [(t.type, t.name, t.scope) for t in run(db.tags.of_job, alice, by_alice.id)] == [
        ("note", "mine", "alice")
    ]
    for user, tag in (
        (User("alice", ["user", "api"]), Tag(type="app", name="x")),  # global needs admin/support/pure api
        (API, Tag(type="note", name="x", scope="alice")),  # someone else's private scope
        (User("s", ["support"]), Tag(type="r", name="x", scope="admin")),  # admin scope needs admin
    ):
        with pytest.raises(PermissionDeniedError):
            run(db.jobs.start, make_job(3, tags=[tag]), user=user)
    assert run(db.jobs.count, ADMIN, None) == 2  # nothing of the refused starts was stored


def test_concurrent_starts_share_commits_not_failures(db: Database) -> None:
    """Group commit: concurrent starts go into shared transactions, each job in its own savepoint."""

    async def main() -> dict[int, object]:
        results: dict[int, object] = {}

        async def one(i: int) -> None:
            try:
                results[i] = await db.jobs.start(make_job(i % 30 + 1, start=NOW - 100))
            except DuplicateJobError as e:
                results[i] = e

        async with anyio.create_task_group() as tg:
            for i in range(45):
                tg.start_soon(one, i)
        return results

    results = anyio.run(main)
    started = [r for r in results.values() if isinstance(r, Job)]
    assert len(started) == 30 and sum(isinstance(r, DuplicateJobError) for r in results.values()) == 15
    page = run(db.jobs.list, ADMIN, None, ALL)
    assert sorted(j.id for j in page.items) == sorted(j.id for j in started)
    assert sorted(j.job_id for j in page.items) == list(range(1, 31))


def test_concurrent_stops_and_starts_share_commits_not_failures(db: Database) -> None:
    """Stops join the same group commit as starts; a failing stop rolls back only itself."""
    for i in range(1, 21):
        run(db.jobs.start, make_job(i, start=NOW - 100))

    async def main() -> dict[str, object]:
        results: dict[str, object] = {}

        async def stop(i: int, tag: str) -> None:
            try:
                results[tag] = await db.jobs.stop(i, stop_time=NOW)
            except DBError as e:
                results[tag] = e

        async def start(i: int) -> None:
            results[f"start{i}"] = await db.jobs.start(make_job(i, start=NOW - 50))

        async with anyio.create_task_group() as tg:
            for i in range(1, 21):
                tg.start_soon(stop, i, f"stop{i}")
                tg.start_soon(stop, i + 100, f"missing{i}")  # not found: its own error only
            for i in range(200, 210):
                tg.start_soon(start, i)
        return results

    results = anyio.run(main)
    for i in range(1, 21):
        stopped = results[f"stop{i}"]
        assert isinstance(stopped, Job) and stopped.job_state == "completed", stopped
        assert isinstance(results[f"missing{i}"], JobNotFoundError)
    assert all(isinstance(results[f"start{i}"], Job) for i in range(200, 210))
    page = run(db.jobs.list, ADMIN, None, ALL)
    states = {j.job_id: j.job_state for j in page.items}
    assert states == {**dict.fromkeys(range(1, 21), "completed"), **dict.fromkeys(range(200, 210), "running")}


def test_cancelled_start_is_not_inserted_later(sqlite_db: Database) -> None:
    """A start still queued when its caller is cancelled is dropped; one being written is waited for."""
    db = sqlite_db
    release = threading.Event()
    holding = threading.Event()

    def hold_writer() -> None:  # another write in flight: the group commit goes to the writer thread
        with db._write_lock:
            holding.set()
            release.wait(10)

    async def main() -> dict[str, object]:
        out: dict[str, object] = {}
        scopes = {name: anyio.CancelScope() for name in ("in-flight", "queued")}

        async def start(name: str, job_id: int) -> None:
            with scopes[name]:
                out[name] = await db.jobs.start(make_job(job_id))
                return
            out[name] = "cancelled"

        holder = threading.Thread(target=hold_writer)
        holder.start()
        await anyio.to_thread.run_sync(holding.wait)
        async with anyio.create_task_group() as tg:
            tg.start_soon(start, "in-flight", 1)  # its batch waits in the writer thread for the lock
            await anyio.sleep(0.05)
            tg.start_soon(start, "queued", 2)  # queued behind that batch
            await anyio.sleep(0.05)
            scopes["queued"].cancel()
            scopes["in-flight"].cancel()
            await anyio.sleep(0.05)
            release.set()
        await anyio.to_thread.run_sync(holder.join)
        await db.jobs.start(make_job(4))
        return out

    out = anyio.run(main)
    assert out["queued"] == "cancelled" and out["in-flight"] == "cancelled"
    # the in-flight start committed (its caller waited for it before giving up); the queued one never ran
    assert sorted(j.job_id for j in run(db.jobs.list, ADMIN, None, ALL).items) == [1, 4]


def test_stop_checks_in_upstream_order(db: Database) -> None:
    job = run(db.jobs.start, make_job(5, start=NOW - 3600))
    with pytest.raises(JobNotFoundError) as nf:
        run(db.jobs.stop, 6, stop_time=NOW)
    assert nf.value.status_code == 404
    with pytest.raises(JobNotFoundError):
        run(db.jobs.stop, 5, cluster="alex", stop_time=NOW)
    with pytest.raises(InvalidStopTimeError) as bad:
        run(db.jobs.stop, 5, stop_time=NOW - 7200)
    assert bad.value.status_code == 400
    with pytest.raises(InvalidStateError):
        run(db.jobs.stop, 5, stop_time=NOW, state="exploded")
    with pytest.raises(InvalidStateError):
        run(db.jobs.stop, 5, stop_time=NOW, state="running")
    stopped = run(db.jobs.stop, 5, cluster="fritz", start_time=NOW - 3600, stop_time=NOW)
    assert (stopped.id, stopped.job_state, stopped.duration) == (job.id, "completed", 3600)
    stored = run(db.jobs.find_by_id, ADMIN, job.id)
    assert (stored.job_state, stored.duration) == ("completed", 3600)
    with pytest.raises(JobAlreadyStoppedError) as again:
        run(db.jobs.stop, 5, stop_time=NOW)
    assert again.value.status_code == 422


def test_stop_picks_newest_match(db: Database) -> None:
    run(db.jobs.start, make_job(9, start=NOW - 200_000))
    newer = run(db.jobs.start, make_job(9, start=NOW - 100))
    stopped = run(db.jobs.stop, 9, stop_time=NOW, state="failed")
    assert stopped.id == newer.id and stopped.job_state == "failed"


def test_metadata_footprint_status(db: Database) -> None:
    job = run(db.jobs.start, make_job())
    updated = run(db.jobs.update_metadata, job.id, "message", "<b>careful</b>")
    assert updated.meta_data is not None and updated.meta_data["message"] == "<b>careful</b>"
    assert updated.meta_data["jobName"] == "x"
    run(
        db.jobs.update_footprint,
        job.id,
        footprint={"flops_any_avg": 1.5},
        energy_footprint={"cpu_power": 2.0},
        energy=2.0,
        monitoring_status=3,
    )
    got = run(db.jobs.find_by_id, ADMIN, job.id)
    assert (got.footprint, got.energy_footprint, got.energy, got.monitoring_status) == (
        {"flops_any_avg": 1.5},
        {"cpu_power": 2.0},
        2.0,
        3,
    )
    run(db.jobs.update_monitoring_status, job.id, 2)
    assert run(db.jobs.find_by_id, ADMIN, job.id).monitoring_status == 2
    with pytest.raises(JobNotFoundError):
        run(db.jobs.update_metadata, 999, "a", "b")
    with pytest.raises(JobNotFoundError):
        run(db.jobs.update_footprint, 999, energy=1.0)
    with pytest.raises(InvalidInputError):
        run(db.jobs.update_monitoring_status, job.id, 7)


def test_deletes(db: Database) -> None:
    a = run(db.jobs.start, make_job(1, start=NOW - 9000))
    b = run(db.jobs.start, make_job(2, start=NOW - 8000, tags=[Tag(type="app", name="vasp")]))
    c = run(
        db.jobs.start, make_job(3, start=NOW - 7000, tags=[Tag(type="review", name="keep", scope="admin")])
    )
    d = run(db.jobs.start, make_job(4, start=NOW - 10))
    assert run(db.jobs.delete_before, NOW - 100, omit_tagged="all") == 1  # a
    assert run(db.jobs.delete_before, NOW - 100, omit_tagged="user") == 1  # b: only an auto tag
    assert run(db.jobs.delete_before, NOW - 100) == 1  # c
    assert {j.id for j in run(db.jobs.list, ADMIN, None, ALL).items} == {d.id}
    with pytest.raises(InvalidInputError):
        run(db.jobs.delete_before, NOW, omit_tagged="some")
    assert run(db.jobs.delete_by_key, 4, "fritz") == d.id
    with pytest.raises(JobNotFoundError):
        run(db.jobs.delete_by_key, 4)
    e = run(db.jobs.start, make_job(5))
    run(db.jobs.delete, e.id)
    with pytest.raises(JobNotFoundError):
        run(db.jobs.delete, e.id)
    assert run(db.jobs.count, ADMIN, None) == 0
    del a, b, c


def test_delete_cascades_to_tag_links(db: Database) -> None:
    job = run(db.jobs.start, make_job(tags=[Tag(type="app", name="vasp")]))
    run(db.jobs.delete, job.id)
    assert run(db.tags.counts, ADMIN) == [(run(db.tags.visible, ADMIN)[0], 0)]


def test_walltime_and_duration_maintenance(db: Database) -> None:
    over = run(db.jobs.start, make_job(1, start=NOW - 7200, walltime=3600))
    fine = run(db.jobs.start, make_job(2, start=NOW - 600, walltime=3600))
    assert run(db.jobs.stop_exceeding_walltime, 600) == 1
    got = run(db.jobs.find_by_id, ADMIN, over.id)
    assert (got.job_state, got.monitoring_status, got.duration) == ("failed", 2, 7200)
    assert run(db.jobs.update_running_durations) == 1
    assert run(db.jobs.find_by_id, ADMIN, fine.id).duration == 600
    assert [j.id for j in run(db.jobs.running, "fritz", min_running=300)] == [fine.id]
    assert run(db.jobs.running, "fritz", min_running=3600) == []


def test_find_between_for_retention(db: Database) -> None:
    jobs = [make_job(i, start=NOW - 1000 * i, job_state="completed", duration=10) for i in range(1, 6)]
    jobs[1].tags = [Tag(type="review", name="x", scope="admin")]
    run(db.jobs.bulk_insert, jobs)
    got = run(db.jobs.find_between, 0, NOW - 2500)
    assert sorted(j.job_id for j in got) == [3, 4, 5]
    got = run(db.jobs.find_between, NOW - 4500, NOW, omit_tagged="user")
    assert sorted(j.job_id for j in got) == [1, 3, 4]
    with pytest.raises(Exception, match="before"):
        run(db.jobs.find_between, NOW, NOW)


def test_bulk_insert_keeps_tags_and_scopes(db: Database) -> None:
    jobs = [
        make_job(
            i,
            job_state="completed",
            duration=100 + i,
            tags=[Tag(type="app", name="a"), Tag(type="n", name="p", scope=f"u{i % 3}")],
        )
        for i in range(1, 301)
    ]
    ids = db.jobs.bulk_insert_sync(jobs, batch_size=64)
    assert len(ids) == 300 and None not in ids and len(set(ids)) == 300
    listed = run(db.jobs.list, ADMIN, None, ALL, with_tags=True).items
    assert len(listed) == 300
    by_id = {j.id: j for j in listed}
    for i, job_id in zip(range(1, 301), ids, strict=True):
        assert by_id[job_id].job_id == i and by_id[job_id].duration == 100 + i
    with pytest.raises(JobNotFoundError):  # u1 may not see alice's job at all
        run(db.tags.of_job, User("u1", ["user"]), ids[0])
    admin_tags = run(db.tags.of_job, ADMIN, ids[0])
    assert [(t.type, t.name, t.scope) for t in admin_tags] == [("app", "a", "global")]
    counts = dict(((t.type, t.name, t.scope), n) for t, n in run(db.tags.counts, User("u1", ["admin"])))
    assert counts[("n", "p", "u1")] == 100 and counts[("app", "a", "global")] == 300


def test_bulk_insert_conflicts(db: Database) -> None:
    db.jobs.bulk_insert_sync([make_job(1, job_state="completed")])
    with pytest.raises(DuplicateJobError):
        db.jobs.bulk_insert_sync([make_job(2, job_state="completed"), make_job(1, job_state="completed")])
    assert run(db.jobs.count, ADMIN, None) == 1  # the whole batch was rolled back
    ids = db.jobs.bulk_insert_sync(
        [
            make_job(2, job_state="completed", tags=[Tag(type="a", name="b")]),
            make_job(1, job_state="completed", tags=[Tag(type="a", name="b")]),
        ],
        conflict="ignore",
    )
    assert ids[0] is not None and ids[1] is None
    assert run(db.jobs.count, ADMIN, None) == 2
    assert run(db.jobs.count, ADMIN, [JobFilter(tags=[run(db.tags.visible, ADMIN)[0].id])]) == 1
    with pytest.raises(InvalidInputError):
        db.jobs.bulk_insert_sync([make_job(3)], conflict="replace")
    with pytest.raises(InvalidStateError):
        db.jobs.bulk_insert_sync([make_job(3, job_state="exploded")])


def test_bulk_insert_with_deferred_indexes(db: Database) -> None:
    from cc_core.db import tables as T
    from cc_core.db.migrations import MigrationContext

    jobs = [make_job(i, job_state="completed", start=NOW - i) for i in range(1, 1001)]
    ids = db.jobs.bulk_insert_sync(jobs, defer_indexes=True)
    assert len(ids) == 1000
    names = (
        db.read_sync(lambda c: set(MigrationContext(db.dialect, sa_conn=c).plain_indexes(["job"])))
        if not db.is_sqlite
        else {
            r[0]
            for r in db.read_sync(
                lambda c: c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='index'").all()
            )
        }
    )
    assert {d.name for d in T.JOB_INDEXES} <= names
    run(db.jobs.flush)
    assert run(db.jobs.count, ADMIN, None) == 0 and run(db.tags.visible, ADMIN) == []


def test_bulk_loader_in_batches(db: Database) -> None:
    from cc_core.db import tables as T
    from tests.db.test_schema_migrations import describe_schema

    db.jobs.flush_sync()
    with db.jobs.bulk_loader() as load:
        ids = load([make_job(i, job_state="completed", start=NOW - i) for i in range(1, 401)])
        ids += load(
            [
                make_job(i, job_state="completed", start=NOW - i, tags=[Tag(type="a", name="b")])
                for i in range(401, 801)
            ]
        )
    assert len(ids) == 800 and None not in ids
    assert run(db.jobs.count, ADMIN, [JobFilter(tags=[run(db.tags.visible, ADMIN)[0].id])]) == 400
    db.close_sync()
    assert set(describe_schema(db.url)["job"]["indexes"]) == {d.name for d in T.JOB_INDEXES}


def test_out_of_memory_state_is_storable(db: Database) -> None:
    """Upstream's state name is out_of_memory (some upstream DB constraints misspell it)."""
    ids = db.jobs.bulk_insert_sync([make_job(1, job_state="out_of_memory")])
    assert run(db.jobs.find_by_id, ADMIN, ids[0]).job_state == "out_of_memory"


def test_start_sync_and_structs_round_trip(db: Database) -> None:
    job = db.jobs.start_sync(make_job(energy_footprint={"acc_power": 1.25}, footprint={"x_avg": 2.0}))
    got = run(db.jobs.find_by_id, ADMIN, job.id)
    assert msgspec.json.decode(msgspec.json.encode(got), type=Job) == got
    assert got.energy_footprint == {"acc_power": 1.25} and got.footprint == {"x_avg": 2.0}

"""The taggers' writes on SQLite and PostgreSQL: global tags created once, linked once, a job that has
a tag of that type and name in any scope keeps it, the message replaces ``metaData.message`` and keeps
the other keys, and a batch run over jobs that changed meanwhile neither fails nor duplicates."""

from __future__ import annotations

import asyncio

import pytest

from cc_core.auth.user import User
from cc_core.db import Database
from cc_core.db.errors import JobNotFoundError
from cc_core.interfaces import TaggerResult
from cc_core.schema.job import Tag
from cc_core.taggers.service import RunReport, TaggerService

from .test_lifecycle import make_job


def _tags(db: Database, job_id: int) -> list[tuple[str, str, str]]:
    tags = asyncio.run(db.tags.of_jobs(None, [job_id])).get(job_id, [])  # type: ignore[arg-type]
    return sorted((t.type, t.name, t.scope) for t in tags)


def test_writes_are_idempotent(db: Database) -> None:
    service = TaggerService(db=db, archive=None, taggers=[])  # type: ignore[arg-type]
    job = db.jobs.start_sync(make_job(1, meta_data={"jobScript": "srun gmx", "jobName": "md"}))
    other = db.jobs.start_sync(make_job(2))
    app = TaggerResult(tags=[Tag(type="app", name="gromacs"), Tag(type="app", name="python")])
    w = asyncio.run(service.write(job, app))
    assert (w.tags_added, w.message_changed) == (2, False)
    assert asyncio.run(service.write(job, app)).changed is False
    # The same tag on another job reuses the tag row.
    assert (
        asyncio.run(service.write(other, TaggerResult(tags=[Tag(type="app", name="gromacs")]))).tags_added
        == 1
    )
    assert len({t.id for t in asyncio.run(db.tags.visible(User("a", roles=["admin"])))}) == 2

    msg = TaggerResult(tags=[Tag(type="jobClass", name="lowload")], message="low load")
    w = asyncio.run(service.write(job, msg))
    assert (w.tags_added, w.message_changed) == (1, True)
    assert asyncio.run(service.write(job, msg)).changed is False
    stored = asyncio.run(db.jobs.find_by_id(User("a", roles=["admin"]), job.id))  # type: ignore[arg-type]
    assert stored.meta_data == {"jobScript": "srun gmx", "jobName": "md", "message": "low load"}
    assert _tags(db, job.id) == [  # type: ignore[arg-type]
        ("app", "gromacs", "global"),
        ("app", "python", "global"),
        ("jobClass", "lowload", "global"),
    ]

    # A private tag of that type and name counts as present (upstream's HasTag ignores the scope).
    third = db.jobs.start_sync(make_job(3, user="bob"))
    asyncio.run(db.tags.tag_job(User("bob", roles=["user"]), third.id, [Tag("app", "vasp", "bob")]))  # type: ignore[arg-type]
    assert asyncio.run(service.write(third, TaggerResult(tags=[Tag("app", "vasp")]))).changed is False

    with pytest.raises(JobNotFoundError):
        asyncio.run(service.write(make_job(9, id=999_999), app))


def test_batch_write_skips_vanished_jobs(db: Database) -> None:
    service = TaggerService(db=db, archive=None, taggers=[])  # type: ignore[arg-type]
    a = db.jobs.start_sync(make_job(11))
    gone = make_job(12, id=888_888)
    report = RunReport()
    result = TaggerResult(tags=[Tag("app", "julia")])

    async def run() -> None:
        await service._write_batch([(a, result, None), (gone, result, None)], report, asyncio.Semaphore(4))

    asyncio.run(run())
    assert (report.changed, report.tags_added, report.errors) == (1, 1, [])
    assert _tags(db, a.id) == [("app", "julia", "global")]  # type: ignore[arg-type]

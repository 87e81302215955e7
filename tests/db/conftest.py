"""Fixtures of the database tests: every test that takes ``db`` or ``seeded`` runs on SQLite and PostgreSQL.

* ``db`` — a fresh, empty database at the current schema (SQLite file in tmp_path, or a fresh
  PostgreSQL database from cc_core.testing's ``postgresql_url``).
* ``seeded`` — a shared, read-only database per backend with `N_SEEDED` generated jobs, users and
  tags, plus the generated jobs (with their db ids) as the truth to compare against. Tests that write
  must use ``db`` instead.

All seeded data is generated relative to a fixed `NOW`, and the databases' clock is pinned to it, so
running jobs' durations and named time ranges are exact.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cc_core.auth.user import User
from cc_core.db import Database
from cc_core.db.generate import generate_jobs
from cc_core.schema.job import Job

NOW = 1_760_000_000
N_SEEDED = 3000

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service("postgresql"))]

ADMIN = User("root", ["admin"])
SUPPORT = User("helpdesk", ["support"])
API = User("machine", ["api"])


def _postgres(request: pytest.FixtureRequest, fixture: str) -> Any:
    try:
        return request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"service: the {fixture} fixture (cc_core.testing) is required under CI")
        pytest.skip(f"service: the {fixture} fixture (cc_core.testing) is not available")


def backend_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return str(tmp_path / "job.db")
    return _postgres(request, "postgresql_url")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, request.param, tmp_path)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.clock = lambda: NOW
    try:
        yield database
    finally:
        database.close_sync()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "job.db")
    database.clock = lambda: NOW
    try:
        yield database
    finally:
        database.close_sync()


@dataclass
class Seeded:
    """A seeded database and the truth: the generated jobs with ids, as the database should return."""

    db: Database
    jobs: list[Job]
    by_id: dict[int, Job] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.db.dialect


def _truth(jobs: list[Job], ids: list[int | None]) -> list[Job]:
    out = []
    for job, id_ in zip(jobs, ids, strict=True):
        assert id_ is not None
        duration = NOW - job.start_time if job.job_state == "running" else job.duration
        out.append(msgspec.structs.replace(job, id=id_, duration=duration))
    return out


class _Registry:
    def __init__(self) -> None:
        self.seeded: dict[str, Seeded] = {}
        self.cleanup: list[Any] = []


@pytest.fixture(scope="session")
def _seed_registry() -> Iterator[_Registry]:
    reg = _Registry()
    yield reg
    for s in reg.seeded.values():
        s.db.close_sync()
    for fn in reversed(reg.cleanup):
        with contextlib.suppress(Exception):  # the server may be gone already; its data dir goes too
            fn()


def seed(db: Database) -> list[Job]:
    """Fill ``db`` with the standard dataset; returns the truth."""
    jobs = generate_jobs(N_SEEDED, seed=7, now=NOW, span_days=60, users=150, projects=40)
    ids = db.jobs.bulk_insert_sync(jobs)
    return _truth(jobs, ids)


@pytest.fixture(params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, _seed_registry: _Registry, tmp_path_factory: pytest.TempPathFactory
) -> Seeded:
    backend = request.param
    if backend not in _seed_registry.seeded:
        if backend == "sqlite":
            url = str(tmp_path_factory.mktemp("seeded") / "job.db")
        else:
            server = _postgres(request, "postgresql_server")
            url = server.create_database("cc_seeded")
            _seed_registry.cleanup.append(lambda: server.drop_database("cc_seeded"))
        database = Database(url)
        database.clock = lambda: NOW
        truth = seed(database)
        _seed_registry.seeded[backend] = Seeded(database, truth, {j.id: j for j in truth if j.id is not None})
    return _seed_registry.seeded[backend]

"""Run each scheduled task once per due time, however many server replicas share the database.

Every replica computes the same due times (`cc_core.tasks.schedule`). At a due time each one tries to
*claim* it in ``cc_task_run`` — one transaction that creates the task's row if missing and then moves
``due_ms`` up to the due time only where it is still lower::

    UPDATE cc_task_run SET due_ms = :due, holder = :me, … WHERE name = :name AND due_ms < :due

Exactly one replica sees one updated row: on PostgreSQL a second UPDATE waits for the first one's row
lock and then re-checks its WHERE against the committed row (READ COMMITTED); on SQLite the write
transactions are serialised by the file lock. The winner runs the task and records the outcome in
the same row, which `clustercockpit tasks list` shows. A claimed run whose replica dies is not retried:
the next due time is (upstream's gocron does not catch up on missed runs either).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cc_core.db import tables as T

if TYPE_CHECKING:
    from cc_core.db import Database

MESSAGE_LIMIT = 2000


def default_holder() -> str:
    """``host:pid`` plus a random suffix: tells replicas (and two managers in one process) apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The last run of a task as stored: claimed due time, who ran it, when, how long, how it ended."""

    name: str
    due_ms: int
    holder: str
    started_ms: int | None
    duration_ms: int | None
    outcome: str
    message: str | None


class TaskLease:
    """Claims and run records in ``cc_task_run`` of one database."""

    def __init__(self, db: Database, holder: str | None = None) -> None:
        self.db = db
        self.holder = holder or default_holder()

    def _ensure_row(self, conn: Connection, name: str) -> None:
        values = {"name": name, "due_ms": -1, "holder": "", "outcome": ""}
        if self.db.is_sqlite:
            conn.execute(sqlite.insert(T.task_run).values(**values).on_conflict_do_nothing())
        else:
            conn.execute(postgresql.insert(T.task_run).values(**values).on_conflict_do_nothing())

    async def claim(self, name: str, due: float) -> bool:
        """Whether this replica won the run of ``name`` due at ``due`` (epoch seconds)."""
        due_ms = round(due * 1000)
        now_ms = int(time.time() * 1000)

        def run(conn: Connection) -> bool:
            self._ensure_row(conn, name)
            c = T.task_run.c
            q = (
                update(T.task_run)
                .where(c.name == name, c.due_ms < due_ms)
                .values(
                    due_ms=due_ms,
                    holder=self.holder,
                    started_ms=now_ms,
                    duration_ms=None,
                    outcome="running",
                    message=None,
                )
            )
            return int(conn.execute(q).rowcount) == 1

        return await self.db.write(run)

    async def record(
        self, name: str, *, started: float, duration: float, outcome: str, message: str | None
    ) -> None:
        """Store how a run ended (also for runs by hand, which claim nothing)."""
        text = None if message is None else message[:MESSAGE_LIMIT]

        def run(conn: Connection) -> None:
            self._ensure_row(conn, name)
            conn.execute(
                update(T.task_run)
                .where(T.task_run.c.name == name)
                .values(
                    holder=self.holder,
                    started_ms=int(started * 1000),
                    duration_ms=int(duration * 1000),
                    outcome=outcome,
                    message=text,
                )
            )

        await self.db.write(run)

    async def records(self) -> dict[str, RunRecord]:
        def run(conn: Connection) -> dict[str, RunRecord]:
            rows = conn.execute(select(T.task_run)).all()
            return {r.name: RunRecord(*r) for r in rows}

        return await self.db.read(run)

"""Archive each stopped job once, however many server replicas share the database.

Every replica's archiver may see the same stopped job: the replica whose REST ``stop_job`` call
queued it, and every replica that sweeps for stopped-but-unarchived jobs (at start-up and then
periodically, to pick up the jobs of a replica that died). Before archiving, a replica *claims* the
job in ``cc_archive_claim`` — one write transaction::

    INSERT INTO cc_archive_claim (job_id, holder, expires_ms) VALUES (:id, :me, :now + ttl)
    ON CONFLICT (job_id) DO UPDATE SET holder = :me, expires_ms = :now + ttl
        WHERE cc_archive_claim.expires_ms < :now

then checks that the job is still stopped and at monitoring status 1 (not archived meanwhile). On
PostgreSQL a second replica's INSERT waits for the first one's uncommitted row and then sees the
conflict; its DO UPDATE applies only to an *expired* claim, so exactly one replica wins. On SQLite
the write transactions are serialised by the file lock. The status check runs after the insert, so
it sees the committed result of any replica that archived the job and released its claim.

While archiving, the winner renews its claim every ``ttl / 3`` (`renew`: ``expires_ms = now + ttl``
where it is still the holder), so a slow metric backend or archive never lets the claim run out
under a live replica. Right before writing the archive it renews once more: if the claim is no
longer its own (its renewals stalled for longer than ``ttl`` — a paused process, a database it could
not reach — and another replica took the job over), it gives the job up without writing.

After archiving (status 3) or failing (status 2) the winner deletes its claim. A replica that dies
mid-archive leaves the job at status 1 with a claim that expires after ``ttl``; the next sweep of any
replica then takes it over. The job table's ``monitoring_status`` keeps upstream's values (0-3): the
claim lives in our own table, never in a new status value.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cc_core.db import tables as T

if TYPE_CHECKING:
    from cc_core.db import Database

#: How long a claim holds. Archiving one job takes well under a second to a few seconds; a claim is
#: only ever taken over from a replica that stopped working on it.
DEFAULT_TTL = 300.0


class ArchiveClaims:
    """Claims on stopped jobs in ``cc_archive_claim`` for one holder (one archiver)."""

    def __init__(self, db: Database, holder: str, *, ttl: float = DEFAULT_TTL) -> None:
        self.db = db
        self.holder = holder
        self.ttl = ttl

    async def claim(self, job_id: int) -> bool:
        """Whether this holder may archive job ``job_id`` (database id) now."""
        now_ms = int(time.time() * 1000)
        expires = now_ms + int(self.ttl * 1000)
        ins = (sqlite if self.db.is_sqlite else postgresql).insert(T.archive_claim)
        stmt = (
            ins.values(job_id=job_id, holder=self.holder, expires_ms=expires)
            .on_conflict_do_update(
                index_elements=[T.archive_claim.c.job_id],
                set_={"holder": self.holder, "expires_ms": expires},
                where=T.archive_claim.c.expires_ms < now_ms,
            )
            .returning(T.archive_claim.c.job_id)
        )  # a row back = claimed (rowcount is -1 with psycopg here)
        j = T.job.c

        def run(conn: Connection) -> bool:
            if conn.execute(stmt).first() is None:
                return False  # another replica holds an unexpired claim
            row = conn.execute(select(j.job_state, j.monitoring_status).where(j.id == job_id)).first()
            if row is None or row.monitoring_status != 1 or row.job_state == "running":
                # Archived (or failed) meanwhile, deleted, or running: nothing to do, no claim kept.
                conn.execute(self._own(job_id))
                return False
            return True

        return await self.db.write(run)

    async def renew(self, job_id: int) -> bool:
        """Extend this holder's claim on ``job_id`` by ``ttl`` from now; False if the claim is gone or
        another holder's (taken over after it expired): the caller must not write the job then."""
        c = T.archive_claim.c
        expires = int(time.time() * 1000) + int(self.ttl * 1000)
        stmt = (
            update(T.archive_claim)
            .where(c.job_id == job_id, c.holder == self.holder)
            .values(expires_ms=expires)
            .returning(c.job_id)
        )
        return await self.db.write(lambda conn: conn.execute(stmt).first() is not None)

    def _own(self, job_id: int) -> delete:  # type: ignore[valid-type]
        c = T.archive_claim.c
        return delete(T.archive_claim).where(c.job_id == job_id, c.holder == self.holder)

    async def release(self, job_id: int) -> None:
        """Drop this holder's claim (after the job's status moved to 2 or 3)."""
        stmt = self._own(job_id)
        await self.db.write(lambda conn: conn.execute(stmt))

    async def held_elsewhere(self) -> set[int]:
        """Job ids with an unexpired claim (the sweep skips them)."""
        now_ms = int(time.time() * 1000)
        c = T.archive_claim.c

        def run(conn: Connection) -> set[int]:
            return {int(r[0]) for r in conn.execute(select(c.job_id).where(c.expires_ms >= now_ms))}

        return await self.db.read(run)

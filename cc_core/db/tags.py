"""Tags with scopes: ``global``, ``admin``, or a username (private). Contract §6.4.

Read: ``global`` everyone; ``admin`` admins and support; a private scope only its owner.
Write (create, attach, detach): ``admin`` scope admins or a pure API token; ``global`` admins, support
or a pure API token; one's own private scope always. Deleting a tag altogether (GraphQL
``removeTagFromList``): admins for ``global``/``admin`` tags, the owner for a private one.

Upstream checks ``admin``/``global`` before the username, so a user *called* ``admin`` gets no
private scope of that name; we keep that order. Unlike upstream, a tag is unique per
(type, name, scope), so a private tag never collides with a global one of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sq

from cc_core.auth.user import User
from cc_core.db import tables as T
from cc_core.db.errors import (
    InvalidInputError,
    JobNotFoundError,
    PermissionDeniedError,
    TagNotFoundError,
)
from cc_core.db.filters import visibility
from cc_core.schema.job import MonitoringStatus, Tag

GLOBAL = "global"
ADMIN = "admin"
# Tag types the automatic taggers write; "omit tagged = user" ignores them (upstream).
AUTO_TAG_TYPES: tuple[str, ...] = ("app", "jobClass")


def can_read(user: User, scope: str) -> bool:
    if scope == ADMIN:
        return user.has_any_role("admin", "support")
    if scope == GLOBAL:
        return True
    return scope == user.username


def can_write(user: User, scope: str) -> bool:
    if scope == ADMIN:
        return user.has_role("admin") or user.is_pure_api
    if scope == GLOBAL:
        return user.has_any_role("admin", "support") or user.is_pure_api
    return scope == user.username


def can_delete(user: User, scope: str) -> bool:
    if scope in (ADMIN, GLOBAL):
        return user.has_role("admin")
    return scope == user.username


def readable_scopes(user: User) -> list[str]:
    """The scopes ``user`` may read, as a bound list for ``tag_scope IN (...)``."""
    scopes = [GLOBAL]
    if user.has_any_role("admin", "support"):
        scopes.append(ADMIN)
    if user.username not in (ADMIN, GLOBAL):
        scopes.append(user.username)
    return scopes


def _check_write(user: User | None, scope: str) -> None:
    if user is not None and not can_write(user, scope):
        raise PermissionDeniedError(f"not allowed to write tags of scope {scope!r}")


def _scope(scope: str | None) -> str:
    scope = scope or GLOBAL
    if not isinstance(scope, str) or len(scope) > 255:
        raise InvalidInputError("invalid tag scope")
    return scope


def _check_tag(type_: str, name: str) -> None:
    if not type_ or not name:
        raise InvalidInputError("a tag needs a type and a name")
    if len(type_) > 255 or len(name) > 255:
        raise InvalidInputError("tag type and name are limited to 255 characters")


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT construct (it has ``on_conflict_do_nothing/do_update`` on both)."""
    return pg.insert(table) if dialect == "postgresql" else sq.insert(table)


def insert_ignore(dialect: str, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for either dialect."""
    return dialect_insert(dialect, table).on_conflict_do_nothing()


def _row_tag(row: Sequence[Any]) -> Tag:
    return Tag(id=row[0], type=row[1], name=row[2], scope=row[3])


_TAG_COLS = (T.tag.c.id, T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.tag_scope)


# --------------------------------------------------------------------------------------------------
# Connection-level helpers (shared with the job repository's start and bulk paths)


def ensure_tags(
    conn: Connection, dialect: str, specs: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """Ids of (type, name, scope) tags, creating the missing ones; one query when all exist."""
    wanted = {(t, n, _scope(s)) for t, n, s in specs}
    if not wanted:
        return {}
    for t, n, _ in wanted:
        _check_tag(t, n)
    keys = list(wanted)
    ids = _tag_ids(conn, keys)
    missing = [k for k in keys if k not in ids]
    if missing:
        conn.execute(
            insert_ignore(dialect, T.tag),
            [{"tag_type": t, "tag_name": n, "tag_scope": s} for t, n, s in missing],
        )
        ids.update(_tag_ids(conn, missing))
    return ids


def _tag_ids(conn: Connection, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    ids: dict[tuple[str, str, str], int] = {}
    for i in range(0, len(keys), 300):
        rows = conn.execute(
            select(T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.tag_scope, T.tag.c.id).where(
                tuple_(T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.tag_scope).in_(keys[i : i + 300])
            )
        ).all()
        ids.update({(r[0], r[1], r[2]): int(r[3]) for r in rows})
    return ids


def link_tags(conn: Connection, dialect: str, pairs: Iterable[tuple[int, int]]) -> None:
    """Attach (job id, tag id) pairs; existing links are kept."""
    rows = [{"job_id": j, "tag_id": t} for j, t in pairs]
    if rows:
        conn.execute(insert_ignore(dialect, T.jobtag), rows)


def tags_of_jobs(conn: Connection, job_ids: Sequence[int], user: User | None) -> dict[int, list[Tag]]:
    """The tags of each job that ``user`` may read (``None``: all tags, for internal use)."""
    out: dict[int, list[Tag]] = {}
    if not job_ids:
        return out
    for i in range(0, len(job_ids), 900):
        chunk = list(job_ids[i : i + 900])
        q = (
            select(T.jobtag.c.job_id, *_TAG_COLS)
            .join(T.tag, T.tag.c.id == T.jobtag.c.tag_id)
            .where(T.jobtag.c.job_id.in_(chunk))
            .order_by(T.jobtag.c.job_id, T.tag.c.id)
        )
        if user is not None:
            q = q.where(T.tag.c.tag_scope.in_(readable_scopes(user)))
        for r in conn.execute(q):
            out.setdefault(r[0], []).append(_row_tag(r[1:]))
    return out


def _visible_job(conn: Connection, user: User, job_id: int) -> None:
    vis = visibility(user)
    q = select(T.job.c.id).where(T.job.c.id == job_id)
    if vis is not None:
        q = q.where(vis)
    if conn.execute(q).first() is None:
        raise JobNotFoundError(f"job {job_id} not found")


def _job_tags(conn: Connection, user: User, job_id: int) -> list[Tag]:
    return tags_of_jobs(conn, [job_id], user).get(job_id, [])


class TagRepository:
    """Tags and job↔tag links. Every method takes the acting `User` and applies the scope rules."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.dialect: str = db.dialect
        # Called after a commit that deleted tags, with the db ids of the archived jobs that carried
        # them: their archived meta.json still lists the tags (the server rewrites it in the background).
        self.on_deleted: list[Callable[[list[int]], None]] = []

    def _archived_jobs_with(self, conn: Connection, tag_ids: Sequence[int]) -> list[int]:
        rows = conn.execute(
            select(T.jobtag.c.job_id)
            .distinct()
            .join(T.job, T.job.c.id == T.jobtag.c.job_id)
            .where(
                T.jobtag.c.tag_id.in_(list(tag_ids)),
                T.job.c.monitoring_status == int(MonitoringStatus.ARCHIVING_SUCCESSFUL),
                T.job.c.job_state != "running",
            )
        )
        return [r[0] for r in rows]

    def _notify_deleted(self, job_ids: list[int]) -> None:
        if job_ids:
            for listener in self.on_deleted:
                listener(job_ids)

    # ------------------------------------------------------------------ reads

    async def visible(self, user: User) -> list[Tag]:
        """All tags ``user`` may read (GraphQL ``tags``)."""

        def run(conn: Connection) -> list[Tag]:
            q = select(*_TAG_COLS).where(T.tag.c.tag_scope.in_(readable_scopes(user))).order_by(T.tag.c.id)
            return [_row_tag(r) for r in conn.execute(q)]

        return await self.db.read(run)

    async def counts(self, user: User) -> list[tuple[Tag, int]]:
        """Readable tags with the number of jobs carrying them that ``user`` may see (tag list page)."""

        def run(conn: Connection) -> list[tuple[Tag, int]]:
            vis = visibility(user)
            jt = T.jobtag
            sub = select(jt.c.tag_id, func.count().label("n")).group_by(jt.c.tag_id)
            if vis is not None:
                sub = sub.join(T.job, T.job.c.id == jt.c.job_id).where(vis)
            counted = sub.subquery()
            q = (
                select(*_TAG_COLS, func.coalesce(counted.c.n, 0))
                .outerjoin(counted, counted.c.tag_id == T.tag.c.id)
                .where(T.tag.c.tag_scope.in_(readable_scopes(user)))
                .order_by(T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.id)
            )
            return [(_row_tag(r[:4]), int(r[4])) for r in conn.execute(q)]

        return await self.db.read(run)

    async def get(self, user: User, tag_id: int) -> Tag:
        def run(conn: Connection) -> Tag:
            row = conn.execute(select(*_TAG_COLS).where(T.tag.c.id == tag_id)).first()
            if row is None or not can_read(user, row[3]):
                raise TagNotFoundError(f"tag {tag_id} not found")
            return _row_tag(row)

        return await self.db.read(run)

    async def find(self, type_: str, name: str, scope: str = GLOBAL) -> Tag | None:
        """A tag by its key (no permission check: the key names it already)."""

        def run(conn: Connection) -> Tag | None:
            row = conn.execute(
                select(*_TAG_COLS).where(
                    T.tag.c.tag_type == type_, T.tag.c.tag_name == name, T.tag.c.tag_scope == _scope(scope)
                )
            ).first()
            return _row_tag(row) if row else None

        return await self.db.read(run)

    async def of_job(self, user: User, job_id: int) -> list[Tag]:
        """The tags of a job ``user`` may see (the job must be visible to them)."""

        def run(conn: Connection) -> list[Tag]:
            _visible_job(conn, user, job_id)
            return _job_tags(conn, user, job_id)

        return await self.db.read(run)

    async def of_jobs(self, user: User, job_ids: Sequence[int]) -> dict[int, list[Tag]]:
        """Readable tags of many jobs in one query (job visibility is the caller's list)."""
        return await self.db.read(lambda conn: tags_of_jobs(conn, list(job_ids), user))

    async def job_has_tag(self, job_id: int, type_: str, name: str) -> bool:
        """Whether a job carries a tag of that type and name in any scope (taggers' check)."""

        def run(conn: Connection) -> bool:
            q = (
                select(T.tag.c.id)
                .join(T.jobtag, T.jobtag.c.tag_id == T.tag.c.id)
                .where(T.jobtag.c.job_id == job_id, T.tag.c.tag_type == type_, T.tag.c.tag_name == name)
                .limit(1)
            )
            return conn.execute(q).first() is not None

        return await self.db.read(run)

    # ------------------------------------------------------------------ writes

    async def create(self, user: User, type_: str, name: str, scope: str = GLOBAL) -> Tag:
        """Create (or return the existing) tag (GraphQL ``createTag``)."""
        scope = _scope(scope)
        _check_tag(type_, name)
        _check_write(user, scope)

        def run(conn: Connection) -> Tag:
            tid = ensure_tags(conn, self.dialect, [(type_, name, scope)])[(type_, name, scope)]
            return Tag(id=tid, type=type_, name=name, scope=scope)

        return await self.db.write(run)

    async def add_to_job(self, user: User, job_id: int, tag_ids: Sequence[int]) -> list[Tag]:
        """Attach existing tags (GraphQL ``addTagsToJob``); returns the job's tags ``user`` may see."""

        def run(conn: Connection) -> list[Tag]:
            _visible_job(conn, user, job_id)
            tags = self._tags_by_id(conn, tag_ids)
            for t in tags:
                _check_write(user, t.scope)
            link_tags(conn, self.dialect, [(job_id, t.id) for t in tags if t.id is not None])
            return _job_tags(conn, user, job_id)

        return await self.db.write(run)

    async def remove_from_job(self, user: User, job_id: int, tag_ids: Sequence[int]) -> list[Tag]:
        """Detach tags (GraphQL ``removeTagsFromJob``); returns the job's remaining visible tags."""

        def run(conn: Connection) -> list[Tag]:
            _visible_job(conn, user, job_id)
            tags = self._tags_by_id(conn, tag_ids)
            for t in tags:
                _check_write(user, t.scope)
            ids = [t.id for t in tags]
            conn.execute(delete(T.jobtag).where(T.jobtag.c.job_id == job_id, T.jobtag.c.tag_id.in_(ids)))
            return _job_tags(conn, user, job_id)

        return await self.db.write(run)

    async def tag_job(self, user: User | None, job_id: int, specs: Sequence[Tag]) -> list[Tag]:
        """Attach tags by (type, name, scope), creating missing ones (REST ``tag_job``).

        ``user=None`` is for the automatic taggers, which write without a permission check (upstream's
        ``AddTagOrCreateDirect``); they still cannot see jobs that do not exist.
        """
        keys = [(s.type, s.name, _scope(s.scope)) for s in specs]
        for t, n, s in keys:
            _check_tag(t, n)
            _check_write(user, s)

        def run(conn: Connection) -> list[Tag]:
            if user is None:
                if conn.execute(select(T.job.c.id).where(T.job.c.id == job_id)).first() is None:
                    raise JobNotFoundError(f"job {job_id} not found")
            else:
                _visible_job(conn, user, job_id)
            ids = ensure_tags(conn, self.dialect, keys)
            link_tags(conn, self.dialect, [(job_id, ids[k]) for k in keys])
            return tags_of_jobs(conn, [job_id], user).get(job_id, [])

        return await self.db.write(run)

    async def untag_job(self, user: User, job_id: int, specs: Sequence[Tag]) -> list[Tag]:
        """Detach tags by key (REST DELETE ``tag_job``): only ``global``/``admin`` scopes, as upstream."""

        def run(conn: Connection) -> list[Tag]:
            _visible_job(conn, user, job_id)
            for s in specs:
                scope = _scope(s.scope)
                if scope not in (GLOBAL, ADMIN):
                    continue
                _check_write(user, scope)
                tid = conn.execute(
                    select(T.tag.c.id).where(
                        T.tag.c.tag_type == s.type, T.tag.c.tag_name == s.name, T.tag.c.tag_scope == scope
                    )
                ).scalar()
                if tid is None:
                    raise TagNotFoundError(f"tag {s.type}:{s.name} ({scope}) does not exist")
                conn.execute(delete(T.jobtag).where(T.jobtag.c.job_id == job_id, T.jobtag.c.tag_id == tid))
            return _job_tags(conn, user, job_id)

        return await self.db.write(run)

    async def delete(self, user: User, tag_ids: Sequence[int]) -> list[int]:
        """Delete tags and all their links (GraphQL ``removeTagFromList``); the ids deleted."""

        def run(conn: Connection) -> tuple[list[int], list[int]]:
            tags = self._tags_by_id(conn, tag_ids)
            for t in tags:
                if not can_delete(user, t.scope):
                    raise PermissionDeniedError(f"not allowed to delete tag {t.id} of scope {t.scope!r}")
            ids = [t.id for t in tags if t.id is not None]
            jobs: list[int] = []
            if ids:
                jobs = self._archived_jobs_with(conn, ids)
                conn.execute(delete(T.jobtag).where(T.jobtag.c.tag_id.in_(ids)))
                conn.execute(delete(T.tag).where(T.tag.c.id.in_(ids)))
            return ids, jobs

        ids, jobs = await self.db.write(run)
        self._notify_deleted(jobs)
        return ids  # type: ignore[no-any-return]

    async def delete_by_key(self, user: User, specs: Sequence[Tag]) -> int:
        """Delete tags by (type, name, scope) (REST DELETE ``/api/tags/``): global/admin scopes only.

        Returns how many were deleted; private-scope and unknown tags count as not deleted.
        """

        def run(conn: Connection) -> tuple[int, list[int]]:
            n = 0
            jobs: set[int] = set()
            for s in specs:
                scope = _scope(s.scope)
                if scope not in (GLOBAL, ADMIN):
                    continue
                _check_write(user, scope)
                tid = conn.execute(
                    select(T.tag.c.id).where(
                        T.tag.c.tag_type == s.type, T.tag.c.tag_name == s.name, T.tag.c.tag_scope == scope
                    )
                ).scalar()
                if tid is None:
                    continue
                jobs.update(self._archived_jobs_with(conn, [tid]))
                conn.execute(delete(T.jobtag).where(T.jobtag.c.tag_id == tid))
                conn.execute(delete(T.tag).where(T.tag.c.id == tid))
                n += 1
            return n, sorted(jobs)

        n, jobs = await self.db.write(run)
        self._notify_deleted(jobs)
        return n  # type: ignore[no-any-return]

    def _tags_by_id(self, conn: Connection, tag_ids: Sequence[int]) -> list[Tag]:
        ids: list[int] = []
        for t in tag_ids:
            try:
                ids.append(int(t))
            except (TypeError, ValueError):
                raise InvalidInputError(f"invalid tag id {t!r}") from None
        if not ids:
            return []
        rows = conn.execute(select(*_TAG_COLS).where(T.tag.c.id.in_(ids))).all()
        found = {r[0]: _row_tag(r) for r in rows}
        for i in ids:
            if i not in found:
                raise TagNotFoundError(f"tag {i} not found")
        return [found[i] for i in dict.fromkeys(ids)]


def omit_tagged_condition(mode: str) -> Any:
    """Jobs to keep out of a deletion/retention: ``none``, ``all`` tagged, or ``user``-tagged ones."""
    j = T.job.c
    if mode == "none":
        return None
    if mode == "all":
        return ~select(T.jobtag.c.job_id).where(T.jobtag.c.job_id == j.id).exists()
    if mode == "user":
        q = (
            select(T.jobtag.c.job_id)
            .join(T.tag, T.tag.c.id == T.jobtag.c.tag_id)
            .where(T.jobtag.c.job_id == j.id, T.tag.c.tag_type.not_in(AUTO_TAG_TYPES))
        )
        return ~q.exists()
    raise InvalidInputError(f"invalid omit-tagged mode {mode!r} (none, all or user)")


__all__ = [
    "ADMIN",
    "AUTO_TAG_TYPES",
    "GLOBAL",
    "TagRepository",
    "can_delete",
    "can_read",
    "can_write",
    "ensure_tags",
    "link_tags",
    "omit_tagged_condition",
    "readable_scopes",
    "tags_of_jobs",
]

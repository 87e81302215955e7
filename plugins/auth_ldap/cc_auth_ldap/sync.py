"""User sync from the directory: ``clustercockpit sync-ldap`` and the periodic ``ldap-sync`` task.

As upstream (contract §6.3): bind as ``search-dn``, list the entries matching ``user-filter`` under
``user-base``, add the missing ones as LDAP users with role ``user`` (name from ``username-attr``) and,
with ``sync-del-old-users``, delete LDAP users of the database whose entry is gone. Beyond upstream:

* only users whose auth source is LDAP are ever deleted — the delete itself says ``ldap = 1``, so a local
  account is safe even if it was converted between listing and deleting;
* a directory answer with no users at all never deletes anybody (a wrong filter or an empty replica
  would otherwise wipe every LDAP account); it is logged instead;
* a directory user whose name is taken by a local account is left alone and reported;
* with a group mapping (``group-roles``/``group-projects``) the roles and projects of existing LDAP users
  follow their groups.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.to_thread

from cc_auth_ldap.authenticator import make_directory
from cc_auth_ldap.config import LdapConfig
from cc_core.auth.user import AuthSource

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cc_auth_ldap.directory import Directory

log = logging.getLogger(__name__)

SECTION = "$.auth.ldap"


@dataclass
class SyncResult:
    """What one sync did (or, in a dry run, would do)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)
    directory_users: int = 0

    def summary(self) -> str:
        text = f"added {len(self.added)}, removed {len(self.removed)}"
        if self.updated:
            text += f", updated {len(self.updated)}"
        if self.kept_local:
            text += f", {len(self.kept_local)} name(s) taken by non-LDAP accounts"
        return text


def _delete_ldap_users(names: Sequence[str]) -> Any:
    from sqlalchemy import delete

    from cc_core.db import tables as T

    def run(conn: Connection) -> list[str]:
        stmt = (
            delete(T.hpc_user)
            .where(T.hpc_user.c.username.in_(list(names)), T.hpc_user.c.ldap == int(AuthSource.LDAP))
            .returning(T.hpc_user.c.username)
        )
        return sorted(r[0] for r in conn.execute(stmt))

    return run


async def sync_users(
    config: LdapConfig, directory: Directory, db: Any, *, dry_run: bool = False
) -> SyncResult:
    """One sync; `DirectoryError` when the directory cannot be listed (then nothing changes)."""
    from cc_core.db.errors import DBError

    users = db.users
    entries = await anyio.to_thread.run_sync(directory.all_users)
    in_directory = {e.username: e for e in entries}
    stored_users = {u.username: u for u in await users.list()}
    in_db = {n for n, u in stored_users.items() if u.auth_source == AuthSource.LDAP}
    result = SyncResult(directory_users=len(in_directory))

    for name in sorted(in_directory):
        entry = in_directory[name]
        roles, projects = config.roles_and_projects(set(entry.groups))
        stored = stored_users.get(name)
        if name in in_db:
            if (
                config.maps_groups
                and stored is not None
                and (stored.roles, stored.projects) != (roles, projects)
            ):
                result.updated.append(name)
                if not dry_run:
                    await users.update(name, roles=roles, projects=projects)
            continue
        if stored is not None or dry_run:
            (result.added if stored is None else result.kept_local).append(name)
            continue
        try:
            created = await users.add_if_not_exists(
                name, roles=roles, projects=projects, name=entry.name, auth_source=AuthSource.LDAP
            )
            if created and entry.email:
                await users.update(name, email=entry.email)
        except DBError as e:
            log.warning("LDAP sync: cannot add %r: %s", name, e)
            continue
        (result.added if created else result.kept_local).append(name)
    for name in result.kept_local:
        log.info("LDAP sync: %r exists as a non-LDAP account; left unchanged", name)

    gone = sorted(in_db - set(in_directory))
    if config.sync_del_old_users and gone:
        if not in_directory:
            log.warning(
                "LDAP sync: the directory returned no users for %s under %s; not removing the %d LDAP "
                "user(s) of the database (check user-base and user-filter)",
                config.user_filter,
                config.user_base,
                len(gone),
            )
        elif dry_run:
            result.removed = gone
        else:
            result.removed = await db.write(_delete_ldap_users(gone))
    log.info("LDAP sync: %s", result.summary())
    return result


class LdapSyncTask:
    """The periodic sync (`cc_core.interfaces.Task`), every ``auth.ldap.sync-interval``."""

    name: ClassVar[str] = "ldap-sync"

    def __init__(self, config: LdapConfig, context: Any) -> None:
        self.config = config
        self._context = context
        self.directory = make_directory(config, context)

    @classmethod
    def create(cls, context: Any) -> LdapSyncTask | None:
        """The task, or ``None`` without an ``auth.ldap`` section or ``sync-interval``."""
        config = context.section(SECTION)
        if not isinstance(config, LdapConfig) or config.sync_seconds <= 0:
            return None
        return cls(config, context)

    @property
    def schedule(self) -> float:
        return self.config.sync_seconds

    async def run(self) -> str | None:
        result = await sync_users(self.config, self.directory, self._context.services["db"])
        return result.summary()

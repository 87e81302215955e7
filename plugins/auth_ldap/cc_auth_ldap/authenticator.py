"""The ``ldap`` authenticator (upstream `LdapAuthenticator`, contract §6.3).

It applies to a login when the database user has auth source LDAP, or — with ``sync-user-on-login`` —
when the user is unknown to the database and exactly one directory entry matches
``(&<user-filter>(<uid-attr>=<username>))``. The password is checked by binding as the user.

One deliberate difference: upstream writes the new user to the database in ``CanLogin``, before the
password is checked, so anybody could create accounts for every directory user by trying names. Here
``can_login`` only returns the candidate and ``login`` stores it after a successful bind.

ldap3 is synchronous; every directory call runs in a worker thread so a slow directory never blocks
the event loop. An unreachable directory is a logged warning and a login-page message, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import anyio.to_thread

from cc_auth_ldap.config import LdapConfig
from cc_auth_ldap.directory import Directory, DirectoryError, DirectoryUser
from cc_core.auth.errors import LoginError
from cc_core.auth.local import LOGIN_FAILED
from cc_core.auth.user import AuthSource, AuthType, User

log = logging.getLogger(__name__)

UNAVAILABLE = "the user directory (LDAP) is not reachable, try again later"
ADMIN_PASSWORD_ENV = "LDAP_ADMIN_PASSWORD"  # noqa: S105 - the variable's name


def make_directory(config: LdapConfig, context: Any) -> Directory:
    """The `Directory` for ``config`` with LDAP_ADMIN_PASSWORD from the site's environment."""
    return Directory(config, context.secret(ADMIN_PASSWORD_ENV), context.base_dir)


class LdapAuthenticator:
    """LDAP logins and user sync (`cc_core.interfaces.Authenticator`, kind ``ldap``); the plugin's
    README (plugins/auth_ldap) explains behaviour and group mapping."""

    kind: ClassVar[str] = "ldap"
    Config = LdapConfig

    def __init__(self, config: LdapConfig, context: Any) -> None:
        self.config = config
        self._context = context
        self.directory = make_directory(config, context)

    @property
    def _users(self) -> Any:
        return self._context.services["db"].users

    async def can_login(self, user: User | None, username: str, request: Any) -> User | bool:
        if user is not None:
            return user.auth_source == AuthSource.LDAP
        if not self.config.sync_user_on_login or not username:
            return False
        try:
            entry = await anyio.to_thread.run_sync(self.directory.lookup, username)
        except DirectoryError as e:
            log.warning("LDAP: cannot look up %r for sync-user-on-login: %s", username, e)
            return False
        if entry is None:
            return False
        return User(
            username=entry.username,
            name=entry.name,
            email=entry.email,
            roles=["user"],
            auth_source=AuthSource.LDAP,
        )

    async def login(self, user: User | None, username: str, password: str, request: Any) -> User:
        if user is None or not password:
            raise LoginError(LOGIN_FAILED)
        stored = await self._users.get(user.username)
        if stored is not None and stored.auth_source != AuthSource.LDAP:
            # A local (or OIDC) account of the same name: a directory password must never open it.
            raise LoginError(LOGIN_FAILED)
        details = stored is None or self.config.update_user_on_login
        try:
            entry = await anyio.to_thread.run_sync(
                lambda: self.directory.authenticate(user.username, password, details=details)
            )
        except DirectoryError as e:
            log.warning("LDAP: login of %r failed, directory unavailable: %s", user.username, e)
            raise LoginError(UNAVAILABLE) from None
        if entry is None:
            raise LoginError(LOGIN_FAILED)
        if stored is None:
            stored = await self._create(entry)
        elif self.config.update_user_on_login:
            stored = await self._update(user.username, entry)
        return stored.to_user(AuthType.SESSION)  # type: ignore[no-any-return]

    async def _create(self, entry: DirectoryUser) -> Any:
        # Without the entry's groups (lookup failed) the user starts with role `user`, as upstream;
        # the next sync or login brings the mapped roles.
        roles, projects = self.config.roles_and_projects(set(entry.groups))
        created = await self._users.add_if_not_exists(
            entry.username, roles=roles, projects=projects, name=entry.name, auth_source=AuthSource.LDAP
        )
        if created and entry.email:
            await self._users.update(entry.username, email=entry.email)
        stored = await self._users.get(entry.username)
        if stored is None or stored.auth_source != AuthSource.LDAP:
            raise LoginError(LOGIN_FAILED)
        if created:
            log.info("LDAP: added user %r (roles %s) on login", entry.username, ",".join(roles))
        return stored

    async def _update(self, username: str, entry: DirectoryUser) -> Any:
        if not entry.complete:  # the entry could not be read: change nothing rather than drop roles
            stored = await self._users.get(username)
            if stored is None:
                raise LoginError(LOGIN_FAILED)
            return stored
        changes: dict[str, Any] = {}
        if entry.name:
            changes["name"] = entry.name
        if entry.email:
            changes["email"] = entry.email
        if self.config.maps_groups:
            changes["roles"], changes["projects"] = self.config.roles_and_projects(set(entry.groups))
        return await self._users.update(username, **changes)

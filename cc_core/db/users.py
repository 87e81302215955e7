"""Users (``hpc_user``) and their UI configuration (``configuration``).

Passwords are bcrypt hashes (cost 10, upstream's default), checked in a worker thread: a bcrypt
check takes tens of milliseconds and must not block the event loop. ``roles`` and ``projects`` are
JSON arrays; the auth source lives in upstream's historically named ``ldap`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio.to_thread
import bcrypt
import msgspec
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cc_core.auth.user import VALID_ROLES, AuthSource, AuthType, Role, User
from cc_core.db import tables as T
from cc_core.db.convert import json_text
from cc_core.db.errors import (
    InvalidInputError,
    UserExistsError,
    UserNotFoundError,
    UserUpdateError,
)
from cc_core.db.tags import dialect_insert, insert_ignore

BCRYPT_COST = 10
_enc = msgspec.json.Encoder()
_dec_list = msgspec.json.Decoder(list[str])
_dec_any = msgspec.json.Decoder()


class StoredUser(msgspec.Struct, kw_only=True):
    """A user row; ``password_hash`` never leaves the server (not part of any API encoding)."""

    username: str
    name: str = ""
    email: str = ""
    roles: list[str] = msgspec.field(default_factory=list)
    projects: list[str] = msgspec.field(default_factory=list)
    auth_source: int = AuthSource.LOCAL
    password_hash: str | None = None

    def to_user(self, auth_type: AuthType = AuthType.SESSION) -> User:
        return User(
            username=self.username,
            roles=list(self.roles),
            projects=list(self.projects),
            name=self.name,
            email=self.email,
            auth_type=auth_type,
            auth_source=AuthSource(self.auth_source)
            if self.auth_source in (0, 1, 2, 3)
            else AuthSource.LOCAL,
        )


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()


def check_password_hash(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


def normalise_roles(roles: Sequence[str]) -> list[str]:
    """Lower-case, validated, duplicates removed, order kept (`ValueError` names the bad role)."""
    out: list[str] = []
    for r in roles:
        try:
            label = Role.parse(r).label
        except ValueError as e:
            raise InvalidInputError(str(e)) from None
        if label not in out:
            out.append(label)
    return out


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not username.strip() or len(username) > 255:
        raise InvalidInputError("a username must be a non-empty string of at most 255 characters")
    return username


def _json_list(raw: Any) -> list[str]:
    if raw is None or raw == "":
        return []
    try:
        return _dec_list.decode(raw)
    except msgspec.DecodeError:
        value = _dec_any.decode(raw)
        return [str(v) for v in value] if isinstance(value, list) else []


_USER_COLS = (
    T.hpc_user.c.username,
    T.hpc_user.c.name,
    T.hpc_user.c.email,
    T.hpc_user.c.roles,
    T.hpc_user.c.projects,
    T.hpc_user.c.ldap,
    T.hpc_user.c.password,
)


def _row_user(row: Sequence[Any]) -> StoredUser:
    return StoredUser(
        username=row[0],
        name=row[1] or "",
        email=row[2] or "",
        roles=_json_list(row[3]),
        projects=_json_list(row[4]),
        auth_source=int(row[5] or 0),
        password_hash=row[6],
    )


class UserRepository:
    """Users as upstream stores them."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.dialect: str = db.dialect

    def _cols(self) -> list[Any]:
        return [json_text(self.dialect, c) for c in _USER_COLS]

    def _get(self, conn: Connection, username: str) -> StoredUser | None:
        row = conn.execute(select(*self._cols()).where(T.hpc_user.c.username == username)).first()
        return _row_user(row) if row else None

    def _must(self, conn: Connection, username: str) -> StoredUser:
        user = self._get(conn, username)
        if user is None:
            raise UserNotFoundError(f"user {username!r} not found")
        return user

    async def get(self, username: str) -> StoredUser | None:
        return await self.db.read(lambda c: self._get(c, username))

    def get_sync(self, username: str) -> StoredUser | None:
        return self.db.read_sync(lambda c: self._get(c, username))

    async def get_many(self, usernames: Sequence[str]) -> dict[str, StoredUser]:
        """The users of ``usernames`` that exist, by name, in one query (a page of jobs resolves the
        display names of all its users at once). Chunked below SQLite's bound-parameter limit."""
        names = sorted(set(usernames))

        def run(conn: Connection) -> dict[str, StoredUser]:
            out: dict[str, StoredUser] = {}
            for i in range(0, len(names), 500):
                chunk = names[i : i + 500]
                for row in conn.execute(select(*self._cols()).where(T.hpc_user.c.username.in_(chunk))):
                    user = _row_user(row)
                    out[user.username] = user
            return out

        if not names:
            return {}
        return await self.db.read(run)

    async def list(self, *, not_just_user: bool = False) -> list[StoredUser]:
        """All users; ``not_just_user`` leaves out those whose roles are exactly ``[user]`` or none."""

        def run(conn: Connection) -> list[StoredUser]:
            users = [
                _row_user(r) for r in conn.execute(select(*self._cols()).order_by(T.hpc_user.c.username))
            ]
            if not_just_user:
                users = [u for u in users if u.roles not in ([], ["user"])]
            return users

        return await self.db.read(run)

    def _values(
        self,
        username: str,
        *,
        password: str | None,
        roles: Sequence[str],
        projects: Sequence[str],
        name: str,
        email: str,
        auth_source: int,
    ) -> dict[str, Any]:
        if int(auth_source) not in (0, 1, 2, 3):
            raise InvalidInputError(f"invalid auth source {auth_source!r} (0 local, 1 LDAP, 2 token, 3 OIDC)")
        values: dict[str, Any] = {
            "username": _check_username(username),
            "roles": _enc.encode(normalise_roles(roles)).decode(),
            "projects": _enc.encode(list(projects)).decode(),
            "ldap": int(auth_source),
            "name": name or None,
            "email": email or None,
        }
        if password:
            values["password"] = hash_password(password)
        return values

    def add_sync(
        self,
        username: str,
        *,
        password: str | None = None,
        roles: Sequence[str] = ("user",),
        projects: Sequence[str] = (),
        name: str = "",
        email: str = "",
        auth_source: int = AuthSource.LOCAL,
    ) -> StoredUser:
        """Create a user (`UserExistsError` if the name is taken); the password is bcrypt-hashed."""
        values = self._values(
            username,
            password=password,
            roles=roles,
            projects=projects,
            name=name,
            email=email,
            auth_source=auth_source,
        )

        def run(conn: Connection) -> StoredUser:
            if self._get(conn, username) is not None:
                raise UserExistsError(f"user {username!r} already exists")
            try:
                conn.execute(insert(T.hpc_user).values(**values))
            except IntegrityError:
                raise UserExistsError(f"user {username!r} already exists") from None
            return self._must(conn, username)

        return self.db.write_sync(run)

    async def add(self, username: str, **kw: Any) -> StoredUser:
        """`add_sync` in a worker thread (hashing included)."""
        limiter = self.db._write_limiter if self.db.is_sqlite else self.db._read_limiter
        return await anyio.to_thread.run_sync(lambda: self.add_sync(username, **kw), limiter=limiter)

    async def add_if_not_exists(
        self,
        username: str,
        *,
        roles: Sequence[str] = ("user",),
        projects: Sequence[str] = (),
        name: str = "",
        auth_source: int = AuthSource.LOCAL,
    ) -> bool:
        """Create a user without password unless one exists (LDAP/OIDC sync); whether it was created."""
        values = self._values(
            username,
            password=None,
            roles=roles,
            projects=projects,
            name=name,
            email="",
            auth_source=auth_source,
        )

        def run(conn: Connection) -> bool:
            stmt = insert_ignore(self.dialect, T.hpc_user).values(**values).returning(T.hpc_user.c.username)
            return conn.execute(stmt).first() is not None

        return await self.db.write(run)

    def delete_sync(self, username: str) -> None:
        def run(conn: Connection) -> None:
            if conn.execute(delete(T.hpc_user).where(T.hpc_user.c.username == username)).rowcount == 0:
                raise UserNotFoundError(f"user {username!r} not found")

        self.db.write_sync(run)

    async def delete(self, username: str) -> None:
        """Delete a user (their UI configuration goes with them)."""
        await anyio.to_thread.run_sync(lambda: self.delete_sync(username))

    async def update(
        self,
        username: str,
        *,
        name: str | None = None,
        email: str | None = None,
        roles: Sequence[str] | None = None,
        projects: Sequence[str] | None = None,
        auth_source: int | None = None,
        password: str | None = None,
    ) -> StoredUser:
        """Change the given fields of a user (login sync with ``update-user-on-login``, admin edits)."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name or None
        if email is not None:
            values["email"] = email or None
        if roles is not None:
            values["roles"] = _enc.encode(normalise_roles(roles)).decode()
        if projects is not None:
            values["projects"] = _enc.encode(list(projects)).decode()
        if auth_source is not None:
            values["ldap"] = int(auth_source)
        if password:
            values["password"] = await anyio.to_thread.run_sync(hash_password, password)

        def run(conn: Connection) -> StoredUser:
            self._must(conn, username)
            if values:
                conn.execute(update(T.hpc_user).where(T.hpc_user.c.username == username).values(**values))
            return self._must(conn, username)

        return await self.db.write(run)

    async def _modify(self, username: str, change: Any) -> StoredUser:
        def run(conn: Connection) -> StoredUser:
            user = self._must(conn, username)
            roles, projects = change(user)
            conn.execute(
                update(T.hpc_user)
                .where(T.hpc_user.c.username == username)
                .values(roles=_enc.encode(roles).decode(), projects=_enc.encode(projects).decode())
            )
            return self._must(conn, username)

        return await self.db.write(run)

    @staticmethod
    def _role(role: str) -> str:
        label = role.strip().lower()
        if label not in VALID_ROLES:
            raise UserUpdateError(f"supplied role is no valid option : {label}")
        return label

    async def add_role(self, username: str, role: str) -> StoredUser:
        label = self._role(role)

        def change(u: StoredUser) -> tuple[list[str], list[str]]:
            if label in u.roles:
                raise UserUpdateError(f"user {username} already has role {label}")
            return [*u.roles, label], u.projects

        return await self._modify(username, change)

    async def remove_role(self, username: str, role: str) -> StoredUser:
        label = self._role(role)

        def change(u: StoredUser) -> tuple[list[str], list[str]]:
            if label not in u.roles:
                raise UserUpdateError(f"role already deleted for user '{username}': {label}")
            if label == "manager" and u.projects:
                raise UserUpdateError(
                    f"cannot remove role 'manager' while user {username} still has assigned project(s): "
                    f"{', '.join(u.projects)}"
                )
            return [r for r in u.roles if r != label], u.projects

        return await self._modify(username, change)

    async def add_project(self, username: str, project: str) -> StoredUser:
        def change(u: StoredUser) -> tuple[list[str], list[str]]:
            if "manager" not in u.roles:
                raise UserUpdateError(f"user '{username}' is not a manager")
            if project in u.projects:
                raise UserUpdateError(f"user '{username}' already manages project '{project}'")
            return u.roles, [*u.projects, project]

        return await self._modify(username, change)

    async def remove_project(self, username: str, project: str) -> StoredUser:
        def change(u: StoredUser) -> tuple[list[str], list[str]]:
            if "manager" not in u.roles:
                raise UserUpdateError(f"user '{username}' is not a manager")
            if project not in u.projects:
                raise UserUpdateError(
                    f"user '{username}': cannot remove project '{project}' - does not match"
                )
            return u.roles, [p for p in u.projects if p != project]

        return await self._modify(username, change)

    async def check_password(self, username: str, password: str) -> StoredUser | None:
        """The local user if ``password`` matches its hash (bcrypt in a worker thread), else ``None``."""
        user = await self.get(username)
        if user is None or user.auth_source != AuthSource.LOCAL:
            return None
        ok = await anyio.to_thread.run_sync(check_password_hash, password, user.password_hash)
        return user if ok else None

    async def ldap_usernames(self) -> list[str]:
        def run(conn: Connection) -> list[str]:
            q = select(T.hpc_user.c.username).where(T.hpc_user.c.ldap == int(AuthSource.LDAP))
            return [r[0] for r in conn.execute(q.order_by(T.hpc_user.c.username))]

        return await self.db.read(run)


class UserConfigRepository:
    """Per-user UI settings: JSON values by key, merged over the site defaults on read."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.dialect: str = db.dialect

    async def get(self, username: str | None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """``defaults`` overlaid with the user's stored keys (``username=None``: the defaults only)."""
        out = dict(defaults or {})
        if username is None:
            return out

        def run(conn: Connection) -> list[tuple[str, str]]:
            q = select(T.configuration.c.confkey, T.configuration.c.value).where(
                T.configuration.c.username == username
            )
            return [(r[0], r[1]) for r in conn.execute(q)]

        for key, raw in await self.db.read(run):
            try:
                out[key] = _dec_any.decode(raw) if raw is not None else None
            except msgspec.DecodeError:
                out[key] = raw
        return out

    async def update(self, username: str, key: str, value: str) -> None:
        """Store one key (``value`` is JSON text, as the UI sends it); the user must exist."""
        if not key or len(key) > 255:
            raise InvalidInputError("configuration key must be 1 to 255 characters")
        try:
            _dec_any.decode(value)
        except (msgspec.DecodeError, TypeError):
            raise InvalidInputError(f"configuration value for {key!r} is not valid JSON") from None

        def run(conn: Connection) -> None:
            if (
                conn.execute(select(T.hpc_user.c.username).where(T.hpc_user.c.username == username)).first()
                is None
            ):
                raise UserNotFoundError(f"user {username!r} not found")
            stmt = (
                dialect_insert(self.dialect, T.configuration)
                .values(username=username, confkey=key, value=value)
                .on_conflict_do_update(index_elements=["username", "confkey"], set_={"value": value})
            )
            conn.execute(stmt)

        await self.db.write(run)

    async def delete(self, username: str, key: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                delete(T.configuration).where(
                    T.configuration.c.username == username, T.configuration.c.confkey == key
                )
            )

        await self.db.write(run)

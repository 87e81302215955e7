"""The ``local`` authenticator: users of the database with a bcrypt password (upstream `LocalAuthenticator`).

It applies to a login attempt when the user exists with auth source *local*; the password check runs in
a worker thread (bcrypt at cost 10 takes tens of milliseconds). A user without a password hash (API-only
accounts created with an empty password) can never log in this way.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cc_core.auth.errors import LoginError
from cc_core.auth.user import AuthSource, AuthType, User

LOGIN_FAILED = "invalid username or password"


class LocalAuthenticator:
    """`cc_core.interfaces.Authenticator` for local accounts; takes no settings."""

    kind: ClassVar[str] = "local"
    Config = None

    def __init__(self, config: Any, context: Any) -> None:
        self._context = context

    @property
    def _users(self) -> Any:
        return self._context.services["db"].users

    async def can_login(self, user: User | None, username: str, request: Any) -> bool:
        return user is not None and user.auth_source == AuthSource.LOCAL

    async def login(self, user: User | None, username: str, password: str, request: Any) -> User:
        if not password:
            raise LoginError(LOGIN_FAILED)
        stored = await self._users.check_password(username, password)
        if stored is None:
            raise LoginError(LOGIN_FAILED)
        return stored.to_user(AuthType.SESSION)  # type: ignore[no-any-return]

"""Users and roles as upstream defines them (cc-lib `schema/user.go`, contract §6.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Role(IntEnum):
    """Roles in ascending privilege; a user's auth level is the highest role held."""

    ANONYMOUS = 0
    API = 1
    USER = 2
    MANAGER = 3
    SUPPORT = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r} (valid: {', '.join(VALID_ROLES)})") from None
        if role is cls.ANONYMOUS:
            raise ValueError("the anonymous role cannot be assigned")
        return role


VALID_ROLES: tuple[str, ...] = ("api", "user", "manager", "support", "admin")


class AuthSource(IntEnum):
    LOCAL = 0
    LDAP = 1
    TOKEN = 2
    OIDC = 3


class AuthType(IntEnum):
    TOKEN = 0
    SESSION = 1


@dataclass(slots=True)
class User:
    username: str
    roles: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    name: str = ""
    email: str = ""
    auth_type: AuthType = AuthType.SESSION
    auth_source: AuthSource = AuthSource.LOCAL

    def has_role(self, role: str | Role) -> bool:
        label = role.label if isinstance(role, Role) else role
        return label in self.roles

    def has_any_role(self, *roles: str | Role) -> bool:
        return any(self.has_role(r) for r in roles)

    def has_all_roles(self, *roles: str | Role) -> bool:
        return all(self.has_role(r) for r in roles)

    @property
    def auth_level(self) -> Role:
        levels = [Role[r.upper()] for r in self.roles if r.upper() in Role.__members__]
        return max(levels, default=Role.ANONYMOUS)

    @property
    def is_pure_api(self) -> bool:
        """Exactly the single role ``api`` (upstream treats it as a trusted machine client)."""
        return self.roles == ["api"]


def anonymous_admin() -> User:
    """The user every request acts as when ``main.disable-authentication`` is set.

    Upstream runs no authentication middleware then and leaves *no* user in the request, so every
    role check and visibility filter fails or dereferences nil (contract §1.1, §16). We give such
    requests one well-defined identity instead: ``anonymous`` with the roles ``admin`` and ``api``, which
    passes every route group and sees every job — exactly what "authentication disabled" means, and
    visible as ``anonymous`` wherever a username is recorded (tag scopes, UI settings).
    """
    return User(
        username=ANONYMOUS_USERNAME,
        roles=["admin", "api"],
        name="Anonymous (authentication disabled)",
        auth_type=AuthType.SESSION,
        auth_source=AuthSource.LOCAL,
    )


ANONYMOUS_USERNAME = "anonymous"

"""Logins: the authenticator chain, the login rate limit and the session cookie (contract §6.3).

`LoginService.login` is upstream's `Authentication.Login`: rate limit per (client address, username),
look the user up in the database, then ask each enabled authenticator in order whether it applies
(`can_login`) and let the first that does decide (`login`). A refused login, a user no authenticator
applies to and an unknown user all read "invalid username or password"; for the latter two a dummy
bcrypt check keeps the answer time the same, so neither message nor timing tells which usernames exist.

Authenticator order
    Upstream tries LDAP → JWT (session, cookie) → local, whatever the config says. Here the enabled
    authenticators are the plugin sections under ``auth`` (``ldap``, ``oidc``, third-party kinds) in the
    order the config lists them, followed by the built-ins ``jwt`` and ``local`` — which reproduces
    upstream's order for upstream's configs. A site that wants another order lists the built-ins
    explicitly (``"auth": {"local": {}, "ldap": {...}}``). ``jwts`` is the token settings section, not an
    authenticator, and does not count.

Sessions
    The cookie is `cc_core.auth.session.SessionCodec`'s signed value: ``SESSION_KEY`` is required unless
    ``main.disable-authentication`` (upstream since 1.5: no ephemeral key that logs everybody out on a
    restart and differs between replicas); ``HttpOnly``, ``SameSite=Lax``, ``Secure`` whenever the request
    came over HTTPS (directly or via a trusted proxy), ``Max-Age`` = ``main.session-max-age``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from cc_core.auth.errors import LoginError
from cc_core.auth.local import LOGIN_FAILED
from cc_core.auth.ratelimit import LoginRateLimiter
from cc_core.auth.session import COOKIE_NAME, SessionCodec, decode_session_key
from cc_core.auth.user import User
from cc_core.config import Config, ConfigError, parse_duration

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.plugins import PluginRegistry

log = logging.getLogger(__name__)

BUILTIN_ORDER: tuple[str, ...] = ("jwt", "local")
TOKEN_SETTINGS_SECTION = "jwts"  # noqa: S105 - a config key
# A valid bcrypt hash (cost 10) of a random password, to spend the same time on unknown users.
_DUMMY_HASH = "$2b$10$znMg1phF46Xq1MKKXN5VkOlPn.A0mGBdAP2MjYY6JXpu1BQyYR91W"


def authenticator_order(config: Config) -> list[str]:
    """Kinds of the enabled authenticators in the order they are tried (see the module docstring)."""
    order = [k for k in config.auth if k != TOKEN_SETTINGS_SECTION]
    order += [k for k in BUILTIN_ORDER if k not in order]
    return order


def build_authenticators(config: Config, registry: PluginRegistry, context: PluginContext) -> list[Any]:
    """Instantiate the enabled authenticators, in order.

    Plugin classes get ``cls(section, context)`` with their validated ``auth.<kind>`` section; the
    core's own (registered by the ``clustercockpit`` distribution) may instead provide
    ``from_core_config(config, context)``, as the ``jwt`` authenticator does to read ``auth.jwts`` and the
    cross-login secrets. An authenticator whose ``enabled`` property is false (e.g. ``jwt`` without
    any cross-login configured) is left out.
    """
    from cc_core.plugins import CORE_DISTRIBUTION

    out: list[Any] = []
    for kind in authenticator_order(config):
        reg = registry.get("authenticator", kind)
        if reg is None:
            registry.resolve("authenticator", kind, path=f"$.auth.{kind}", file=config.source)
            continue
        factory = getattr(reg.cls, "from_core_config", None)
        if reg.distribution == CORE_DISTRIBUTION and factory is not None:
            instance = factory(config, context)
        else:
            instance = reg.cls(context.section(f"$.auth.{kind}"), context)
        if getattr(instance, "enabled", True):
            out.append(instance)
    return out


@dataclass
class LoginService:
    """The login side of authentication; one per app (``app.state["login"]``)."""

    sessions: SessionCodec
    authenticators: Sequence[Any]
    users: Any  # cc_core.db.UserRepository
    limiter: LoginRateLimiter = field(default_factory=LoginRateLimiter)
    disabled: bool = False

    @classmethod
    def from_config(
        cls, config: Config, registry: PluginRegistry, context: PluginContext, users: Any
    ) -> LoginService:
        """Build the chain; `ConfigError` when ``SESSION_KEY`` is missing or a secret is unusable."""
        disabled = config.main.disable_authentication
        sessions = cls.session_codec(config)
        authenticators = [] if disabled else build_authenticators(config, registry, context)
        if disabled:
            log.warning(
                "main.disable-authentication is set: every request acts as the admin user 'anonymous'"
            )
        return cls(
            sessions=sessions,
            authenticators=authenticators,
            users=users,
            disabled=disabled,
        )

    @staticmethod
    def session_codec(config: Config) -> SessionCodec:
        """The session cookie codec under ``SESSION_KEY``; `ConfigError` when it is missing (and
        authentication is on) or too short. Without authentication a random key serves the process."""
        raw_key = config.secret("SESSION_KEY")
        env_file = config._meta.get("env_file") or ".env"
        if raw_key is None and not config.main.disable_authentication:
            raise ConfigError(
                "SESSION_KEY is not set; it is required to sign login sessions (unless "
                "main.disable-authentication). Put it in .env next to the config (`clustercockpit init` "
                "writes one: 32 random bytes, base64) or in the environment.",
                file=env_file,
            )
        try:
            key = decode_session_key(raw_key) if raw_key is not None else secrets.token_bytes(32)
        except ValueError as e:
            raise ConfigError(str(e), file=env_file) from None
        return SessionCodec(key, parse_duration(config.main.session_max_age))

    @property
    def kinds(self) -> list[str]:
        return [a.kind for a in self.authenticators]

    async def login(self, request: Any, username: str, password: str, client: str) -> User:
        """The user the first applicable authenticator accepts; `LoginError` otherwise."""
        if not self.limiter.allow(client, username):
            log.warning("login rate limit hit for %s / %r", client, username)
            raise LoginError("too many login attempts, try again in a few minutes")
        user: User | None = None
        if username:
            stored = await self.users.get(username)
            user = stored.to_user() if stored is not None else None
        for authenticator in self.authenticators:
            applies = await authenticator.can_login(user, username, request)
            if not applies:
                continue
            candidate = applies if isinstance(applies, User) else user
            result = await authenticator.login(candidate, username, password, request)
            if not result.roles:
                raise LoginError("this account has no roles")
            log.info(
                "login: %s via %s (roles %s)", result.username, authenticator.kind, ",".join(result.roles)
            )
            return result  # type: ignore[no-any-return]
        await _spend_bcrypt_time(password)
        raise LoginError(LOGIN_FAILED)

    def cookie_value(self, user: User) -> str:
        return self.sessions.encode(user)

    @property
    def cookie_name(self) -> str:
        return COOKIE_NAME

    @property
    def max_age(self) -> int:
        return self.sessions.max_age


async def _spend_bcrypt_time(password: str) -> None:
    from cc_core.db.users import check_password_hash

    await anyio.to_thread.run_sync(check_password_hash, password or "x", _DUMMY_HASH)

"""The ``jwt`` authenticator: logins carried by a JWT instead of a password (contract §6.3).

Two of upstream's mechanisms, tried in upstream's order:

* **JWT session login** (`JWTSessionAuthenticator`): ``/jwt-login?login-token=…`` or an
  ``Authorization: Bearer …`` header on ``/login``/``/jwt-login``, an HS256/HS512 token signed with
  ``CROSS_LOGIN_JWT_HS512_KEY``. Unset key: the mechanism is off. Set but empty or shorter than 32
  bytes: the server refuses to start (`cc_core.auth.jwt_tokens.load_hmac_key`) — upstream before 1.5.4
  accepted tokens "signed" with an empty key.
* **JWT cookie cross-login** (`JWTCookieSessionAuthenticator`): a cookie named ``jwts.cookie-name``
  holding an EdDSA token. ``iss`` equal to ``jwts.trusted-issuer`` → verified with
  ``CROSS_LOGIN_JWT_PUBLIC_KEY``; no ``iss`` → our own ``JWT_PUBLIC_KEY``; any other issuer is refused.
  Needs cookie name, trusted issuer and the cross-login key; the cookie is deleted after the login.

With ``jwts.validate-user`` the token's subject must exist in the database and its stored roles and
projects apply. Without it the user is built from the claims (valid role names only; ``projects``;
``name`` as a string or upstream's ``{"values": [...]}``), and ``sync-user-on-login`` /
``update-user-on-login`` add or update it in the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cc_core.auth.errors import LoginError
from cc_core.auth.jwt_tokens import (
    TokenError,
    load_hmac_key,
    load_public_key,
    unverified_issuer,
    verify,
    verify_hs,
)
from cc_core.auth.provisioning import provision_user
from cc_core.auth.user import VALID_ROLES, AuthSource, AuthType, User
from cc_core.config import Config, ConfigError, parse_duration

log = logging.getLogger(__name__)

# Where the login handler finds cookies an authenticator wants deleted from the browser.
DELETE_COOKIES_STATE = "cc_delete_cookies"


@dataclass(frozen=True, slots=True)
class JWTLoginSettings:
    """What the core hands the built-in ``jwt`` authenticator (from ``auth.jwts`` and ``.env``)."""

    hs_key: bytes | None = field(default=None, repr=False)
    own_public_key: Ed25519PublicKey | None = None
    cross_public_key: Ed25519PublicKey | None = None
    cookie_name: str = ""
    trusted_issuer: str = ""
    validate_user: bool = False
    sync_user_on_login: bool = False
    update_user_on_login: bool = False
    max_age_seconds: float = 0.0

    @classmethod
    def from_config(cls, config: Config) -> JWTLoginSettings:
        """Read the settings; a present but unusable HMAC key is a `ConfigError` (refuse to start)."""
        hs_key = None
        if "CROSS_LOGIN_JWT_HS512_KEY" in config.env:
            try:
                hs_key = load_hmac_key(config.env["CROSS_LOGIN_JWT_HS512_KEY"])
            except ValueError as e:
                raise ConfigError(str(e), file=".env") from None
        own = config.secret("JWT_PUBLIC_KEY")
        cross = config.secret("CROSS_LOGIN_JWT_PUBLIC_KEY")
        try:
            own_key = load_public_key(own) if own else None
            cross_key = load_public_key(cross) if cross else None
        except ValueError as e:
            raise ConfigError(str(e), file=".env") from None
        jwts = config.jwts
        return cls(
            hs_key=hs_key,
            own_public_key=own_key,
            cross_public_key=cross_key,
            cookie_name=jwts.cookie_name,
            trusted_issuer=jwts.trusted_issuer,
            validate_user=jwts.validate_user,
            sync_user_on_login=jwts.sync_user_on_login,
            update_user_on_login=jwts.update_user_on_login,
            max_age_seconds=parse_duration(jwts.max_age),
        )

    @property
    def cookie_login(self) -> bool:
        return bool(
            self.cookie_name and self.trusted_issuer and self.cross_public_key and self.own_public_key
        )


def _bearer(request: Any) -> str:
    authz = request.headers.get("authorization", "")
    return authz[7:].strip() if authz[:7].lower() == "bearer " else ""


def _name(claims: dict[str, Any]) -> str:
    name = claims.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, dict) and isinstance(name.get("values"), list):
        return " ".join(str(v) for v in name["values"])
    return ""


class JWTLoginAuthenticator:
    """`cc_core.interfaces.Authenticator` for token logins (see the module docstring)."""

    kind: ClassVar[str] = "jwt"
    Config = None

    def __init__(self, settings: JWTLoginSettings | None, context: Any) -> None:
        self.settings = settings or JWTLoginSettings()
        self._context = context

    @classmethod
    def from_core_config(cls, config: Config, context: Any) -> JWTLoginAuthenticator:
        """How the core builds this built-in: its settings come from ``auth.jwts`` and the secrets."""
        return cls(JWTLoginSettings.from_config(config), context)

    @property
    def enabled(self) -> bool:
        return self.settings.hs_key is not None or self.settings.cookie_login

    def _cookie(self, request: Any) -> str:
        if not self.settings.cookie_login:
            return ""
        return str(request.cookies.get(self.settings.cookie_name) or "")

    async def can_login(self, user: User | None, username: str, request: Any) -> bool:
        if self.settings.hs_key is not None and (_bearer(request) or request.query_params.get("login-token")):
            return True
        return bool(self._cookie(request))

    async def login(self, user: User | None, username: str, password: str, request: Any) -> User:
        s = self.settings
        raw = ""
        if s.hs_key is not None:
            raw = _bearer(request) or str(request.query_params.get("login-token") or "")
        try:
            if raw:
                assert s.hs_key is not None
                claims = verify_hs(raw, s.hs_key, max_age_seconds=s.max_age_seconds)
            else:
                cookie = self._cookie(request)
                if not cookie:
                    raise LoginError("no login token")
                claims = self._verify_cookie(cookie)
                delete = request.state.get(DELETE_COOKIES_STATE)
                if delete is None:
                    delete = request.state[DELETE_COOKIES_STATE] = []
                delete.append(s.cookie_name)
        except TokenError as e:
            log.info("token login refused: %s", e)
            raise LoginError(f"login token refused: {e}") from None
        return await self._user(claims)

    def _verify_cookie(self, token: str) -> dict[str, Any]:
        s = self.settings
        issuer = unverified_issuer(token)
        if issuer == s.trusted_issuer:
            key = s.cross_public_key
        elif issuer == "":
            key = s.own_public_key
        else:
            raise TokenError(f"untrusted JWT issuer: {issuer!r}")
        assert key is not None
        return verify(token, [key], max_age_seconds=s.max_age_seconds)

    async def _user(self, claims: dict[str, Any]) -> User:
        s = self.settings
        users = self._context.services["db"].users
        sub = claims["sub"]
        if s.validate_user:
            stored = await users.get(sub)
            if stored is None:
                raise LoginError("unknown user")
            user: User = stored.to_user(AuthType.SESSION)
            return user
        roles = claims.get("roles") if isinstance(claims.get("roles"), list) else []
        projects = claims.get("projects") if isinstance(claims.get("projects"), list) else []
        user = User(
            username=sub,
            roles=[r for r in dict.fromkeys(roles or []) if isinstance(r, str) and r in VALID_ROLES],
            projects=[p for p in projects or [] if isinstance(p, str)],
            name=_name(claims),
            auth_type=AuthType.SESSION,
            auth_source=AuthSource.TOKEN,
        )
        if not user.roles:
            raise LoginError("the login token carries no valid role")
        if s.sync_user_on_login or s.update_user_on_login:
            await self._sync(users, user)
        return user

    async def _sync(self, users: Any, user: User) -> None:
        """Upstream's handleTokenUser: add unknown users / update known ones, as configured."""
        await provision_user(
            users,
            user,
            source=AuthSource.TOKEN,
            add=self.settings.sync_user_on_login,
            update=self.settings.update_user_on_login,
            what="token",
        )

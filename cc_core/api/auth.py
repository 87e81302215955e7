"""Request authentication and the route-group rules of upstream's ``server.go`` (contract §1.1).

Every route belongs to one *group*, and one app-level middleware (`GroupAuthMiddleware`) applies that
group's rule before any guard or handler runs — the same table as upstream's middleware per route group:

=============  ==========================================================  ====================================
group          accepted credential                                          roles
=============  ==========================================================  ====================================
``api``        JWT (``X-Auth-Token`` / ``Authorization: Bearer``) + the     exactly ``api``, or ``admin`` + ``api``
               client address in ``main.api-allowed-ips``
``metricstore`` JWT (``/api/{write,free,debug,healthcheck}``)               ``api`` alone or with user/manager/admin
``userapi``    JWT                                                          ``api`` alone or with user/manager/
                                                                            support/admin
``config``     session cookie only (``/config/*``)                          ``admin``
``frontend``   session cookie only (``/frontend/*``)                        any logged-in user
``secured``    JWT header first, else session (pages, ``/query``)           any
``public``     none (login, static files, ``/healthz``)                     —
=============  ==========================================================  ====================================

The group comes from the route handler's ``opt["auth_group"]`` when a router sets it, else from the
*matched route template* (``scope["path_template"]``, never the raw path, so ``//api/…`` or other path
tricks cannot move a request into a weaker group). A route nobody classified is ``secured``: new pages
(also a plugin's) need a login unless they opt out with ``opt={"auth_group": "public"}``.

No credential, or an invalid one, is 401; a valid credential without the roles, or a client address
outside the allow-list, is 403 (upstream answers 401 for both; a client learns nothing new from the
distinction, an operator learns what to fix). The resolved user is ``scope["cc_user"]``
(`current_user`). With ``main.disable-authentication`` every request is `anonymous_admin` — upstream's
behaviour there is broken (no user at all, contract §16) — but the IP allow-list of ``/api`` still applies.

Token checks are cached per token string (the signature check is the expensive part of a request to
``/api``); expiry and ``jwts.max-age`` are re-checked on every use.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from cc_core.api.security import client_address
from cc_core.auth.jwt_tokens import TokenError, load_public_key, verify
from cc_core.auth.user import VALID_ROLES, AuthSource, AuthType, User, anonymous_admin
from cc_core.config import Config, parse_duration

if TYPE_CHECKING:
    from cc_core.auth.session import SessionCodec

log = logging.getLogger(__name__)

# Scope keys: the request's effective user, and the per-credential caches behind it.
USER_KEY = "cc_user"
_TOKEN_USER_KEY = "cc_token_user"  # noqa: S105 - a scope key
_SESSION_USER_KEY = "cc_session_user"
_NO_USER = object()

_TOKEN_CACHE_SIZE = 10_000
# The key pair in upstream's configs/env-template.txt: its private half is public.
UPSTREAM_DEMO_PUBLIC_KEY = "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0="


class AuthGroup(StrEnum):
    """Upstream's route groups (see the module docstring)."""

    PUBLIC = "public"
    API = "api"
    METRIC_STORE = "metricstore"
    USER_API = "userapi"
    CONFIG = "config"
    FRONTEND = "frontend"
    SECURED = "secured"


def group_opt(group: AuthGroup) -> dict[str, str]:
    """``opt`` for a router or handler: ``Router(..., opt=group_opt(AuthGroup.PUBLIC))``."""
    return {"auth_group": group.value}


_METRIC_STORE_PREFIXES = ("/api/write", "/api/free", "/api/debug", "/api/healthcheck")


def _under(template: str, prefix: str) -> bool:
    return template == prefix or template.startswith(prefix + "/")


def route_group(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> AuthGroup:
    """The group of the matched route: the handler's ``opt``, else its path template."""
    explicit = handler.opt.get("auth_group")
    if explicit:
        return AuthGroup(explicit)
    template = connection.scope.get("path_template") or "/"
    if any(_under(template, p) for p in _METRIC_STORE_PREFIXES):
        return AuthGroup.METRIC_STORE
    if _under(template, "/api"):
        return AuthGroup.API
    if _under(template, "/userapi"):
        return AuthGroup.USER_API
    if template.startswith("/config/"):  # "/config" itself is the (secured) settings page
        return AuthGroup.CONFIG
    if _under(template, "/frontend"):
        return AuthGroup.FRONTEND
    return AuthGroup.SECURED


# --------------------------------------------------------------------------------------------------
# role rules (contract §1.1)


def api_roles_ok(user: User) -> bool:
    """``/api``: exactly ``api``, or at least two roles including both ``admin`` and ``api``."""
    return user.roles == ["api"] or (len(user.roles) >= 2 and user.has_all_roles("admin", "api"))


def _api_plus(user: User, extra: Sequence[str]) -> bool:
    if user.roles == ["api"]:
        return True
    return user.has_role("api") and user.has_any_role(*extra)


def user_api_roles_ok(user: User) -> bool:
    return _api_plus(user, ("user", "manager", "support", "admin"))


def metric_store_roles_ok(user: User) -> bool:
    """Metric-store API: ``support`` is not enough (upstream)."""
    return _api_plus(user, ("user", "manager", "admin"))


# --------------------------------------------------------------------------------------------------
# tokens


@dataclass
class TokenAuth:
    """Verifies API tokens against the site's Ed25519 public key(s); the ``/api`` IP allow-list.

    ``validate_user`` (``auth.jwts.validate-user``): the token's subject must be a user of the database
    and that user's roles and projects apply, not the token's. Otherwise roles come from the token
    (unknown role names dropped) and projects are empty, as upstream's API tokens carry none.
    """

    public_keys: list[Ed25519PublicKey]
    max_age_seconds: float
    allowed_ips: list[str]
    trusted_proxies: list[str]
    validate_user: bool = False
    disabled: bool = False
    users: Any = None  # cc_core.db.UserRepository, for validate-user
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: Config, *, users: Any = None) -> TokenAuth:
        keys = []
        pub = config.secret("JWT_PUBLIC_KEY")
        if pub:
            keys.append(load_public_key(pub))
            if pub.strip().strip('"') == UPSTREAM_DEMO_PUBLIC_KEY:
                log.warning(
                    "JWT_PUBLIC_KEY is upstream's published demo key: anyone can sign tokens for this server; "
                    "make your own with `clustercockpit gen-keypair`"
                )
        else:
            log.warning("JWT_PUBLIC_KEY is not set: API tokens cannot be verified, /api answers 401")
        max_age = parse_duration(config.jwts.max_age)
        if pub and max_age <= 0:
            log.warning("auth.jwts.max-age is not set: API tokens minted here never expire")
        return cls(
            public_keys=keys,
            max_age_seconds=max_age,
            allowed_ips=list(config.main.api_allowed_ips),
            trusted_proxies=list(config.main.trusted_proxies),
            validate_user=config.jwts.validate_user,
            disabled=config.main.disable_authentication,
            users=users,
        )

    def token_from(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        # Straight from the ASGI headers (names are lower-case there): on every API request, and
        # Litestar's Headers object decodes all of them first.
        token = authz = None
        for name, value in connection.scope["headers"]:
            if name == b"x-auth-token" and token is None:
                token = value
            elif name == b"authorization" and authz is None:
                authz = value
        if token and token.strip():
            return token.decode("latin-1").strip()
        if authz is not None and authz[:7].lower() == b"bearer ":
            return authz[7:].decode("latin-1").strip() or None
        return None

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims (`TokenError` otherwise); signature checks are cached per token."""
        cached = self._cache.get(token)
        if cached is not None:
            exp = cached.get("exp")
            if isinstance(exp, int | float) and time.time() > exp + 5:
                self._cache.pop(token, None)
                raise TokenError("token has expired")
            iat = cached.get("iat")
            if (
                self.max_age_seconds > 0
                and isinstance(iat, int | float)
                and time.time() - iat > self.max_age_seconds + 5
            ):
                raise TokenError("token is older than auth.jwts.max-age")
            return cached
        if not self.public_keys:
            raise TokenError("API tokens are not configured on this server (JWT_PUBLIC_KEY)")
        claims = verify(token, self.public_keys, max_age_seconds=self.max_age_seconds)
        if len(self._cache) >= _TOKEN_CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = claims
        return claims

    def _claims_user(self, claims: dict[str, Any]) -> User:
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            raise TokenError("token claim `roles` must be a list of strings")
        name = claims.get("name")
        return User(
            username=claims["sub"],
            roles=[r for r in dict.fromkeys(roles) if isinstance(r, str) and r in VALID_ROLES],
            projects=[],
            name=name if isinstance(name, str) else "",
            auth_type=AuthType.TOKEN,
            auth_source=AuthSource.TOKEN,
        )

    def _token_or_401(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        token = self.token_from(connection)
        if not token:
            raise NotAuthorizedException("missing API token (X-Auth-Token or Authorization: Bearer)")
        try:
            return self.claims(token)
        except TokenError as e:
            raise NotAuthorizedException(str(e)) from None

    def user_from(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User:
        """The token's user (401 `NotAuthorizedException` for a missing or invalid token).

        Synchronous for the per-route guards; `authenticate` is the async version that reads the
        database without blocking for ``validate-user`` (the group guard runs it first, so this one
        usually returns the cached result).
        """
        if self.disabled:
            return anonymous_admin()
        cached = connection.scope.get(_TOKEN_USER_KEY)  # type: ignore[call-overload]
        if isinstance(cached, User):
            return cached
        claims = self._token_or_401(connection)
        if self.validate_user:
            stored = self.users.get_sync(claims["sub"]) if self.users is not None else None
            user = self._stored(stored)
        else:
            user = self._claims_user(claims)
        connection.scope[_TOKEN_USER_KEY] = user  # type: ignore[literal-required]
        return user

    async def authenticate(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User:
        """`user_from` with the ``validate-user`` lookup in a worker thread."""
        if self.disabled:
            return anonymous_admin()
        cached = connection.scope.get(_TOKEN_USER_KEY)  # type: ignore[call-overload]
        if isinstance(cached, User):
            return cached
        claims = self._token_or_401(connection)
        if self.validate_user:
            stored = await self.users.get(claims["sub"]) if self.users is not None else None
            user = self._stored(stored)
        else:
            user = self._claims_user(claims)
        connection.scope[_TOKEN_USER_KEY] = user  # type: ignore[literal-required]
        return user

    @staticmethod
    def _stored(stored: Any) -> User:
        if stored is None:
            raise NotAuthorizedException("unknown user (auth.jwts.validate-user is set)")
        return stored.to_user(AuthType.TOKEN)

    def ip_allowed(self, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        if not self.allowed_ips or self.allowed_ips[0] == "*":
            return True
        ip = client_address(connection.scope, self.trusted_proxies)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        for entry in self.allowed_ips:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                if entry == ip:
                    return True
        return False


def _auth(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenAuth:
    return connection.app.state["token_auth"]


# --------------------------------------------------------------------------------------------------
# sessions


def session_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The user of a valid session cookie (or the anonymous admin when authentication is disabled)."""
    cached = connection.scope.get(_SESSION_USER_KEY, None)  # type: ignore[call-overload]
    if cached is not None:
        return None if cached is _NO_USER else cached
    token_auth = _auth(connection)
    user: User | None
    if token_auth.disabled:
        user = anonymous_admin()
    else:
        codec: SessionCodec | None = connection.app.state.get("session_codec")
        user = codec.decode(connection.cookies.get("session")) if codec is not None else None
    connection.scope[_SESSION_USER_KEY] = user if user is not None else _NO_USER  # type: ignore[literal-required]
    return user


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The user the group guard resolved for this request."""
    user = connection.scope.get(USER_KEY)  # type: ignore[call-overload]
    if not isinstance(user, User):  # a handler without a group guard: never act as nobody
        raise NotAuthorizedException("authentication required")
    return user


async def secured_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """Pages, ``/query``: an API token if the request has one (upstream checks it first), else the
    session; 401 without either."""
    token_auth = _auth(connection)
    if not token_auth.disabled and token_auth.token_from(connection):
        return await token_auth.authenticate(connection)
    user = session_user(connection)
    if user is None:
        raise NotAuthorizedException("unauthorized (please login first)")
    return user


def _require(user: User, ok: bool, what: str) -> None:
    if not ok:
        raise PermissionDeniedException(f"user {user.username!r} lacks the roles for {what}")


async def authenticate_group(connection: ASGIConnection[Any, Any, Any, Any], group: AuthGroup) -> User | None:
    """The user for ``group``'s rule, or 401/403 (`NotAuthorizedException`/`PermissionDeniedException`)."""
    token_auth = _auth(connection)
    if group is AuthGroup.PUBLIC:
        return None
    if group is AuthGroup.API:
        if not token_auth.ip_allowed(connection):
            raise PermissionDeniedException("client address not in main.api-allowed-ips")
        user = await token_auth.authenticate(connection)
        _require(user, api_roles_ok(user), "/api")
        return user
    if group is AuthGroup.USER_API:
        user = await token_auth.authenticate(connection)
        _require(user, user_api_roles_ok(user), "/userapi")
        return user
    if group is AuthGroup.METRIC_STORE:
        user = await token_auth.authenticate(connection)
        _require(user, metric_store_roles_ok(user), "the metric-store API")
        return user
    if group is AuthGroup.CONFIG or group is AuthGroup.FRONTEND:
        session = session_user(connection)
        if session is None:
            raise NotAuthorizedException("unauthorized (a login session is required)")
        if group is AuthGroup.CONFIG:
            _require(session, session.has_role("admin"), "/config (admin)")
        return session
    return await secured_user(connection)


class GroupAuthMiddleware:
    """Apply the matched route's group rule and remember the user (``scope["cc_user"]``).

    App-level middleware runs after routing (``scope["route_handler"]`` is set) and before the route's
    own guards, which read the user it stored. It is middleware rather than an app-level guard because
    Litestar copies the route handler object for every guard call (~30 µs per request on start_job's
    path); 401/403 raised here reach the app's exception handlers like a guard's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if handler is not None and scope["type"] in ("http", "websocket"):
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive, send)
            user = await authenticate_group(connection, route_group(connection, handler))
            if user is not None:
                scope[USER_KEY] = user  # type: ignore[literal-required]
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------------------------------
# per-route guards (explicit, in addition to the group guard)


def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``/api`` group: IP allow-list, then role ``api`` alone or ``admin`` + ``api``."""
    auth = _auth(connection)
    if not auth.ip_allowed(connection):
        raise PermissionDeniedException("client address not in main.api-allowed-ips")
    user = auth.user_from(connection)
    _require(user, api_roles_ok(user), "/api")


def admin_api_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Admin-only ``/api`` endpoints: the token must carry both ``admin`` and ``api``."""
    api_guard(connection, handler)
    user = _auth(connection).user_from(connection)
    _require(user, user.has_all_roles("admin", "api"), "this admin endpoint")


def user_api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = _auth(connection).user_from(connection)
    _require(user, user_api_roles_ok(user), "/userapi")


def metric_store_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = _auth(connection).user_from(connection)
    _require(user, metric_store_roles_ok(user), "the metric-store API")


def admin_session_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admin-only endpoints of the session groups (``/frontend/logs/``): the session user is an admin."""
    user = current_user(connection)
    if not user.has_role("admin"):
        raise PermissionDeniedException("only admins are allowed here")

"""API authentication (JWT from `X-Auth-Token` or `Authorization: Bearer`) and the route-group guards.

Route groups and role rules follow upstream (contract §1.1):

* ``/api``: exactly the role ``api``, or at least two roles including both ``admin`` and ``api``; and the
  client address must pass ``main.api-allowed-ips``;
* ``/api/{write,free,debug,healthcheck}`` (metric store): ``api`` alone or with user/manager/admin;
* ``/userapi``: ``api`` alone or with any of user/manager/support/admin.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from cc_core.api.security import client_address
from cc_core.auth.jwt_tokens import TokenError, load_public_key, verify
from cc_core.auth.user import AuthSource, AuthType, User
from cc_core.config import Config, parse_duration

log = logging.getLogger(__name__)


@dataclass
class TokenAuth:
    """Verifies API tokens against the site's Ed25519 public key(s)."""

    public_keys: list[Ed25519PublicKey]
    max_age_seconds: float
    allowed_ips: list[str]
    trusted_proxies: list[str]

    @classmethod
    def from_config(cls, config: Config) -> TokenAuth:
        keys = []
        pub = config.secret("JWT_PUBLIC_KEY")
        if pub:
            keys.append(load_public_key(pub))
        else:
            log.warning("JWT_PUBLIC_KEY is not set: API tokens cannot be verified, /api answers 401")
        return cls(
            public_keys=keys,
            max_age_seconds=parse_duration(config.jwts.max_age),
            allowed_ips=list(config.main.api_allowed_ips),
            trusted_proxies=list(config.main.trusted_proxies),
        )

    def token_from(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        token = connection.headers.get("x-auth-token")
        if token:
            return token.strip()
        authz = connection.headers.get("authorization", "")
        if authz[:7].lower() == "bearer ":
            return authz[7:].strip()
        return None

    def user_from(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User:
        """The token's user; `NotAuthorizedException` (401) for a missing or invalid token."""
        cached = connection.scope.get("cc_user")
        if isinstance(cached, User):
            return cached
        token = self.token_from(connection)
        if not token:
            raise NotAuthorizedException("missing API token (X-Auth-Token or Authorization: Bearer)")
        if not self.public_keys:
            raise NotAuthorizedException("API tokens are not configured on this server (JWT_PUBLIC_KEY)")
        try:
            claims = verify(token, self.public_keys, max_age_seconds=self.max_age_seconds)
        except TokenError as e:
            raise NotAuthorizedException(str(e)) from None
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise NotAuthorizedException("token claim `roles` must be a list of strings")
        projects = claims.get("projects") or []
        user = User(
            username=claims["sub"],
            roles=roles,
            projects=[p for p in projects if isinstance(p, str)] if isinstance(projects, list) else [],
            auth_type=AuthType.TOKEN,
            auth_source=AuthSource.TOKEN,
        )
        connection.scope["cc_user"] = user  # type: ignore[typeddict-unknown-key]
        return user

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


def _require(user: User, ok: bool, what: str) -> None:
    if not ok:
        raise PermissionDeniedException(f"user {user.username!r} lacks the roles for {what}")


def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``/api`` group: IP allow-list, then role ``api`` alone or ``admin`` + ``api``."""
    auth = _auth(connection)
    if not auth.ip_allowed(connection):
        raise PermissionDeniedException("client address not in main.api-allowed-ips")
    user = auth.user_from(connection)
    ok = user.roles == ["api"] or (len(user.roles) >= 2 and user.has_all_roles("admin", "api"))
    _require(user, ok, "/api")


def admin_api_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Admin-only ``/api`` endpoints: the token must carry both ``admin`` and ``api``."""
    api_guard(connection, handler)
    user = _auth(connection).user_from(connection)
    _require(user, user.has_all_roles("admin", "api"), "this admin endpoint")


def _api_plus(user: User, extra: Sequence[str]) -> bool:
    if user.roles == ["api"]:
        return True
    return user.has_role("api") and user.has_any_role(*extra)


def user_api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = _auth(connection).user_from(connection)
    _require(user, _api_plus(user, ("user", "manager", "support", "admin")), "/userapi")


def metric_store_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = _auth(connection).user_from(connection)
    _require(user, _api_plus(user, ("user", "manager", "admin")), "the metric-store API")

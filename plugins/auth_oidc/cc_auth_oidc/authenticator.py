"""The ``oidc`` authenticator: the provider client, the client credentials and the user sync.

OpenID Connect logs in through the browser (`cc_auth_oidc.routes`), not through the login form, so in
the password chain (`cc_core.auth.service.LoginService`) it never applies: ``can_login`` is always
false and a password can never log in an OIDC account. The instance lives in that chain anyway, built
from ``auth.oidc`` like every authenticator and in the config's order; the routes find it there.

Client credentials are upstream's environment variables ``OID_CLIENT_ID`` (required: without it no
provider accepts us, so the server refuses to start and says so) and ``OID_CLIENT_SECRET`` (empty for a
public client, which PKCE still protects; a warning is logged).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from cc_auth_oidc.claims import user_from_claims
from cc_auth_oidc.config import OidcConfig
from cc_auth_oidc.provider import AuthRequest, OpenIDProvider
from cc_core.auth.errors import LoginError
from cc_core.auth.provisioning import provision_user
from cc_core.auth.user import AuthSource, User
from cc_core.config import ConfigError

log = logging.getLogger(__name__)

CLIENT_ID_VAR = "OID_CLIENT_ID"
CLIENT_SECRET_VAR = "OID_CLIENT_SECRET"  # noqa: S105 - the variable's name


class OidcAuthenticator:
    """`cc_core.interfaces.Authenticator` for OpenID Connect (kind ``oidc``)."""

    kind: ClassVar[str] = "oidc"
    Config = OidcConfig

    def __init__(self, config: OidcConfig, context: Any) -> None:
        client_id = context.secret(CLIENT_ID_VAR) or ""
        if not client_id:
            raise ConfigError(
                f"{CLIENT_ID_VAR} is not set; auth.oidc needs the client id registered at the provider. "
                "Put it in .env next to the config or in the environment.",
                path="$.auth.oidc",
            )
        client_secret = context.secret(CLIENT_SECRET_VAR) or ""
        if not client_secret:
            log.warning("%s is not set: logging in as a public OpenID client (PKCE only)", CLIENT_SECRET_VAR)
        self.settings = config
        self._context = context
        self.provider = OpenIDProvider(config.provider, client_id, client_secret)

    async def can_login(self, user: User | None, username: str, request: Any) -> bool:
        return False

    async def login(self, user: User | None, username: str, password: str, request: Any) -> User:
        raise LoginError("this account logs in with OpenID Connect")

    async def start(self, redirect_uri: str) -> AuthRequest:
        """Begin a login: the provider URL to send the browser to, and the secrets to keep."""
        return await self.provider.authorization_request(redirect_uri)

    async def complete(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> User:
        """Finish a login: verified tokens → `User`, synced into the database as configured."""
        result = await self.provider.finish(code, redirect_uri, verifier, nonce)
        user = user_from_claims(result.id_claims, result.userinfo)
        if self.settings.sync_user_on_login or self.settings.update_user_on_login:
            await self._sync(user)
        return user

    async def _sync(self, user: User) -> None:
        """Add unknown users (``sync-user-on-login``) / update known ones (``update-user-on-login``)."""
        await provision_user(
            self._context.services["db"].users,
            user,
            source=AuthSource.OIDC,
            add=self.settings.sync_user_on_login,
            update=self.settings.update_user_on_login,
            what="OIDC",
        )

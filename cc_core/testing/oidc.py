"""OIDC: oidc-provider-mock (Flask + authlib) in a thread, a real OpenID provider for login tests."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from ._process import HOST, require_module, tcp_open, wait_for

SERVICE = "oidc"

#: Users every session starts with: ``sub`` -> extra claims (beyond ``sub``).
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "preferred_username": "alice",
        "email": "alice@example.com",
        "name": "Alice Anderson",
        "realm_access": {"roles": ["user"]},
        "projects": ["p1"],
    },
    "admin": {
        "preferred_username": "admin",
        "email": "admin@example.com",
        "name": "Admin Istrator",
        "realm_access": {"roles": ["admin"]},
        "projects": [],
    },
}


@dataclass
class OIDCProvider:
    """A running OpenID provider at ``issuer``; any client id/secret is accepted, nonce required.

    To log in, POST ``{"sub": "<user>"}`` to the authorization URL (that is the mock's login form);
    the reply is a 302 to ``redirect_uri?code=...``. Unknown subjects get only an ``email`` claim.
    """

    issuer: str
    #: sub -> claims, as last set through this handle.
    users: dict[str, dict[str, Any]]
    _server: Any = field(default=None, repr=False, compare=False)

    @property
    def discovery_url(self) -> str:
        """The ``.well-known/openid-configuration`` URL."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def set_user(self, sub: str, claims: Mapping[str, Any]) -> None:
        """Create or replace a user's claims (takes effect for the next login)."""
        import httpx

        resp = httpx.put(f"{self.issuer}/users/{sub}", json=dict(claims), trust_env=False, timeout=10)
        if resp.status_code != 204:
            raise RuntimeError(f"setting OIDC user {sub} failed: {resp.status_code} {resp.text}")
        self.users[sub] = copy.deepcopy(dict(claims))

    def set_users(self, users: Mapping[str, Mapping[str, Any]]) -> None:
        """Create or replace several users (users not named keep their claims)."""
        for sub, claims in users.items():
            self.set_user(sub, claims)


@contextlib.contextmanager
def serve_oidc_provider(
    users: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    token_max_age: timedelta | None = None,
    port: int = 0,
) -> Iterator[OIDCProvider]:
    """Serve oidc-provider-mock on 127.0.0.1 (its own helper binds "localhost") until the block ends.

    ``users`` defaults to `DEFAULT_USERS`; ``token_max_age`` is the lifetime of the access and ID tokens
    it issues (default one hour; a negative value makes every token arrive already expired); ``port``
    0 picks a free one.
    """
    require_module(SERVICE, "oidc_provider_mock", "oidc-provider-mock")
    import werkzeug.serving

    with warnings.catch_warnings():
        # It imports authlib.jose, which authlib deprecates. authlib.deprecate installs an "always"
        # filter when first imported, so import that first and put our "ignore" in front of it.
        import authlib.deprecate  # noqa: F401

        warnings.simplefilter("ignore", DeprecationWarning)
        import oidc_provider_mock

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    claims = copy.deepcopy(dict(users if users is not None else DEFAULT_USERS))
    options: dict[str, Any] = {}
    if token_max_age is not None:
        options["access_token_max_age"] = token_max_age
    app = oidc_provider_mock.app(
        require_nonce=True,
        user_claims=[oidc_provider_mock.User(sub=sub, claims=dict(c)) for sub, c in claims.items()],
        **options,
    )
    server = werkzeug.serving.make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider-mock", daemon=True)
    thread.start()
    try:
        wait_for(lambda: tcp_open(server.server_port), timeout=10, what="OIDC provider")
        yield OIDCProvider(issuer=f"http://{HOST}:{server.server_port}", users=claims, _server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OIDCProvider]:
    """A provider for the whole session with the users alice and admin (`serve_oidc_provider`)."""
    with serve_oidc_provider() as provider:
        yield provider

"""OpenID Connect login for ClusterCockpit (kind ``oidc``, section ``auth.oidc``).

Importing this module is cheap: authlib, httpx and the routes load when a hook is called.
"""

from __future__ import annotations

from typing import Any

from cc_core.hookspecs import hookimpl


@hookimpl
def register_authenticators(register):  # type: ignore[no-untyped-def]
    from cc_auth_oidc.authenticator import OidcAuthenticator

    register(OidcAuthenticator)


@hookimpl
def litestar_plugins(context: Any) -> Any:
    """The ``/oidc-login`` and ``/oidc-callback`` routes and the login page's button, only when
    ``auth.oidc`` is configured (as upstream mounts them)."""
    if context.section("$.auth.oidc") is None:
        return None
    from cc_auth_oidc.routes import oidc_callback, oidc_login
    from cc_core.web import Contribution, LoginButton

    return [
        Contribution(
            route_handlers=[oidc_login, oidc_callback],
            login_buttons=[LoginButton("Log in with OpenID Connect", "/oidc-login")],
        )
    ]

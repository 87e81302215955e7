"""Built-in authenticator ``jwt``: HS256/HS512 cross-login tokens and the JWT cookie cross-login
(`cc_core.auth.jwt_login`)."""

from __future__ import annotations

from cc_core.hookspecs import Register, hookimpl


@hookimpl
def register_authenticators(register: Register) -> None:
    from cc_core.auth.jwt_login import JWTLoginAuthenticator

    register(JWTLoginAuthenticator)

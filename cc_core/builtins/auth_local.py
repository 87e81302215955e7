"""Built-in authenticator ``local``: database users with bcrypt passwords (`cc_core.auth.local`)."""

from __future__ import annotations

from cc_core.hookspecs import Register, hookimpl


@hookimpl
def register_authenticators(register: Register) -> None:
    from cc_core.auth.local import LocalAuthenticator

    register(LocalAuthenticator)

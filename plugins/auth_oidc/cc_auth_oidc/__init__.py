"""OIDC for ClusterCockpit (kind ``oidc``). Importing this module is cheap; the class loads on registration."""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_authenticators(register):  # type: ignore[no-untyped-def]
    from cc_auth_oidc.config import Backend

    register(Backend)

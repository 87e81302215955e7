"""LDAP for ClusterCockpit (kind ``ldap``). Importing this module is cheap; the class loads on registration."""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_authenticators(register):  # type: ignore[no-untyped-def]
    from cc_auth_ldap.config import Backend

    register(Backend)

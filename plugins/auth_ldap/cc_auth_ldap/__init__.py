"""LDAP for ClusterCockpit (kind ``ldap``): logins, ``sync-ldap`` and the periodic ``ldap-sync`` task.

Importing this module is cheap (no ldap3): the classes load when their hook registers them.
"""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_authenticators(register):  # type: ignore[no-untyped-def]
    from cc_auth_ldap.authenticator import LdapAuthenticator

    register(LdapAuthenticator)


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    from cc_auth_ldap.sync import LdapSyncTask

    register(LdapSyncTask)


@hookimpl
def register_cli_commands(cli):  # type: ignore[no-untyped-def]
    from cc_auth_ldap.cli import sync_ldap

    cli.add_command(sync_ldap)

"""``clustercockpit sync-ldap``: upstream's ``-sync-ldap`` flag, added through `register_cli_commands`."""

from __future__ import annotations

import asyncio

import click

from cc_auth_ldap.sync import SECTION, SyncResult


@click.command("sync-ldap")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.pass_context
def sync_ldap(ctx: click.Context, dry_run: bool) -> None:
    """Synchronise users from LDAP (upstream -sync-ldap).

    Adds directory users missing from the database (role user) and, with auth.ldap.sync-del-old-users,
    removes LDAP users whose entry is gone. Local accounts are never changed or removed.
    """
    from cc_auth_ldap.authenticator import make_directory
    from cc_auth_ldap.directory import DirectoryError
    from cc_auth_ldap.sync import sync_users
    from cc_core.cli.state import state
    from cc_core.context import PluginContext
    from cc_core.db import Database, DBError

    cli_state = state(ctx)
    config = cli_state.validated_config()
    section = config.plugin_configs.get(SECTION)
    if section is None:
        raise click.ClickException(f"{config.source}: no `auth.ldap` section, so there is nothing to sync")
    context = PluginContext(config, cli_state.registry())
    directory = make_directory(section, context)

    async def run() -> SyncResult:
        async with Database.from_config(config) as db:
            return await sync_users(section, directory, db, dry_run=dry_run)

    try:
        result = asyncio.run(run())
    except DirectoryError as e:
        raise click.ClickException(f"LDAP sync failed: {e}") from None
    except DBError as e:
        raise click.ClickException(str(e)) from None
    prefix = "dry run, would have " if dry_run else ""
    click.echo(f"{prefix}{result.summary()} ({result.directory_users} user(s) in the directory)")
    for label, names in (
        ("added", result.added),
        ("removed", result.removed),
        ("updated", result.updated),
        ("left alone (non-LDAP account of that name)", result.kept_local),
    ):
        if names:
            click.echo(f"  {label}: {', '.join(names)}")

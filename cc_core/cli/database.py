"""Database commands: migrate-db, revert-db, optimize-db, add-user, del-user, jwt (upstream flags).

``init-db`` and ``import-job`` belong to the archive commands. Every command reads ``main.db`` from the
config (default ``./var/job.db`` when there is no config file), and every database problem becomes one
``error:`` line naming what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from cc_core.cli.state import state

if TYPE_CHECKING:
    from cc_core.db import Database


@contextlib.contextmanager
def _database(ctx: click.Context, *, check_version: bool) -> Iterator[Database]:
    """The configured database; database errors become `click.ClickException`s."""
    from cc_core.db import Database, DBError

    cfg = state(ctx).config(allow_missing=True)
    try:
        with Database.from_config(cfg, check_version=check_version) as db:
            yield db
    except DBError as e:
        raise click.ClickException(str(e)) from None


@click.command("migrate-db")
@click.option("--no-backup", is_flag=True, help="Skip the backup copy of an SQLite database.")
@click.option(
    "--force",
    is_flag=True,
    help="Upstream -force-db: clear cc-backend's 'dirty' schema flag (after a failed upstream migration "
    "you have checked by hand), then migrate.",
)
@click.option(
    "--to",
    "to_url",
    metavar="postgresql://…",
    help="Instead: copy the (current) SQLite database into this empty PostgreSQL database.",
)
@click.pass_context
def migrate_db(ctx: click.Context, no_backup: bool, force: bool, to_url: str | None) -> None:
    """Migrate the database to the current schema (upstream -migrate-db); SQLite is backed up first.

    Accepts cc-backend databases at schema version 10 or 11. With ``--to postgresql://…`` the SQLite
    database (run plain ``migrate-db`` first if it is older) is copied into an empty PostgreSQL database.
    """
    from cc_core.db import DBError, migrate

    if to_url is not None:
        from cc_core.db.copy import copy_database

        with _database(ctx, check_version=True) as db:
            try:
                result = copy_database(
                    db, to_url, progress=lambda t, n: click.echo(f"copied: {t} ({n} rows)")
                )
            except DBError as e:
                raise click.ClickException(str(e)) from None
            click.echo(f"{db}: {result.total} rows copied to PostgreSQL, row counts verified")
        return
    with _database(ctx, check_version=False) as db:
        result = migrate(db, backup=not no_backup, force=force)
        if result.backup is not None:
            click.echo(f"backup: {result.backup}")
        if not result.steps:
            click.echo(f"{db}: already at the current schema ({result.after.describe()})")
            return
        for step in result.steps:
            click.echo(f"applied: {step}")
        click.echo(f"{db}: now at {result.after.describe()}")


@click.command("revert-db")
@click.option("--no-backup", is_flag=True, help="Skip the backup copy of an SQLite database.")
@click.pass_context
def revert_db(ctx: click.Context, no_backup: bool) -> None:
    """Revert the last database migration (upstream -revert-db)."""
    from cc_core.db import revert

    with _database(ctx, check_version=False) as db:
        result = revert(db, backup=not no_backup)
        if result.backup is not None:
            click.echo(f"backup: {result.backup}")
        for step in result.steps:
            click.echo(f"reverted: {step}")
        click.echo(f"{db}: now at {result.after.describe()}")


@click.command("optimize-db")
@click.pass_context
def optimize_db(ctx: click.Context) -> None:
    """VACUUM and ANALYZE the database (upstream -optimize-db)."""
    from cc_core.db import optimize

    with _database(ctx, check_version=True) as db:
        optimize(db)
        click.echo(f"{db}: optimized (VACUUM, ANALYZE)")


def _parse_new_user(spec: str) -> tuple[str, list[str], str]:
    """``<username>:<role,role>:<password>`` as upstream's -add-user (the password may contain ':')."""
    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise click.BadParameter("expected <username>:<role,role,...>:<password>", param_hint="USER_SPEC")
    username, roles_text, password = parts
    roles = [r.strip() for r in roles_text.split(",") if r.strip()]
    if not roles:
        raise click.BadParameter("give at least one role (api, user, manager, support, admin)")
    return username, roles, password


@click.command("add-user")
@click.argument("user_spec", metavar="USER:ROLES:PASSWORD")
@click.pass_context
def add_user(ctx: click.Context, user_spec: str) -> None:
    """Add a local user, e.g. ``alice:admin,api:secret`` (upstream -add-user).

    Roles: api, user, manager, support, admin. An empty password makes an account that cannot log in
    with a password (e.g. for API tokens only).
    """
    from cc_core.db import DBError

    username, roles, password = _parse_new_user(user_spec)
    with _database(ctx, check_version=True) as db:
        try:
            user = db.users.add_sync(username, password=password or None, roles=roles)
        except DBError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"added user {user.username!r} with roles {', '.join(user.roles)}")


@click.command("del-user")
@click.argument("username")
@click.pass_context
def del_user(ctx: click.Context, username: str) -> None:
    """Delete a user and their UI settings (upstream -del-user)."""
    from cc_core.db import DBError

    with _database(ctx, check_version=True) as db:
        try:
            db.users.delete_sync(username)
        except DBError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"deleted user {username!r}")


@click.command("jwt")
@click.argument("username")
@click.pass_context
def jwt(ctx: click.Context, username: str) -> None:
    """Print a JWT for a user of the database (upstream -jwt), signed with JWT_PRIVATE_KEY.

    The token carries the user's roles and expires after auth.jwts.max-age (if set).
    """
    from cc_core.auth.jwt_tokens import load_private_key, mint
    from cc_core.config import parse_duration

    cfg = state(ctx).config(allow_missing=True)
    secret = cfg.secret("JWT_PRIVATE_KEY", required_for="to sign tokens (`clustercockpit jwt`)")
    assert secret is not None
    try:
        key = load_private_key(secret)
    except ValueError as e:
        raise click.ClickException(f"JWT_PRIVATE_KEY: {e}") from None
    with _database(ctx, check_version=True) as db:
        user = db.users.get_sync(username)
    if user is None:
        raise click.ClickException(f"user {username!r} not found in the database (add it with `add-user`)")
    if "api" not in user.roles:
        click.echo(
            f"warning: user {username!r} does not have the role 'api'; the token will not be accepted by /api/",
            err=True,
        )
    token = mint(key, user.username, list(user.roles), max_age_seconds=parse_duration(cfg.jwts.max_age))
    click.echo(token)


COMMANDS: list[click.Command] = [migrate_db, revert_db, optimize_db, add_user, del_user, jwt]

"""User sync against a real slapd: the ``ldap-sync`` task (`create` + `run`) and ``clustercockpit sync-ldap``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from cc_auth_ldap.cli import sync_ldap
from cc_auth_ldap.sync import SECTION, LdapSyncTask
from click.testing import CliRunner
from ldap_testlib import ldap_section, make_ldap_site, plugin_context

from cc_core.auth.user import AuthSource
from cc_core.cli import cli as root_cli
from cc_core.db import Database
from cc_core.testing import LdapServer

pytestmark = pytest.mark.service("ldap")


def _section(server: LdapServer, **extra: Any) -> dict[str, Any]:
    return ldap_section(
        server,
        **{
            "sync-interval": "1h",
            "sync-del-old-users": True,
            "group-base": server.groups_dn,
            "group-roles": {"hpcadmins": ["admin"]},
            **extra,
        },
    )


@pytest.fixture(scope="module")
def task_site(slapd_server: LdapServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_ldap_site(tmp_path_factory.mktemp("ldap-sync"), _section(slapd_server))


def _users(db: Database) -> dict[str, Any]:
    return {u.username: u for u in asyncio.run(db.users.list())}


def test_create_returns_a_task_only_when_a_sync_interval_is_configured(task_site: Any) -> None:
    context = plugin_context(task_site)
    task = LdapSyncTask.create(context)
    assert task is not None and task.name == "ldap-sync"
    assert task.schedule == 3600.0
    configs = context._config.plugin_configs
    configs[SECTION] = msgspec.structs.replace(configs[SECTION], sync_interval="")
    assert LdapSyncTask.create(context) is None
    del configs[SECTION]
    assert LdapSyncTask.create(context) is None


def test_task_adds_updates_and_removes_ldap_users_but_never_local_ones(
    task_site: Any, slapd_server: LdapServer
) -> None:
    with Database.from_config(task_site.config()) as db:
        users = db.users
        users.add_sync("carol", password="carol-pw", roles=["admin"])  # local, not in the directory
        users.add_sync("bob", password="bob-local", roles=["support"])  # local, same name as a directory user
        users.add_sync("ghost", roles=["user"], auth_source=AuthSource.LDAP)  # LDAP, gone from the directory
        users.add_sync("alice", roles=["user"], auth_source=AuthSource.LDAP)  # LDAP; hpcadmins → admin
        slapd_server.add_user("sy-new", "pw", "Sync New", mail="sy-new@example.com")
        try:
            task = LdapSyncTask.create(plugin_context(task_site, db))
            assert task is not None
            outcome = asyncio.run(task.run())
            assert outcome is not None
            m = re.fullmatch(
                r"added (\d+), removed 1, updated 1, 1 name\(s\) taken by non-LDAP accounts", outcome
            )
            assert m, outcome
            after = _users(db)
            assert "ghost" not in after
            assert after["carol"].auth_source == AuthSource.LOCAL and after["carol"].roles == ["admin"]
            assert after["bob"].auth_source == AuthSource.LOCAL and after["bob"].roles == ["support"]
            assert after["alice"].roles == ["user", "admin"]
            new = after["sy-new"]
            assert new.auth_source == AuthSource.LDAP and new.roles == ["user"]
            assert new.name == "Sync New" and new.email == "sy-new@example.com"
            assert int(m.group(1)) == len([u for u in after.values() if u.auth_source == AuthSource.LDAP]) - 1

            # The entry goes, another comes: the next run removes one and adds one.
            slapd_server.delete_user("sy-new")
            slapd_server.add_user("sy-late", "pw", "Sync Late")
            assert asyncio.run(task.run()) == "added 1, removed 1, 1 name(s) taken by non-LDAP accounts"
            after = _users(db)
            assert "sy-new" not in after and after["sy-late"].auth_source == AuthSource.LDAP
            assert {"carol", "bob"} <= set(after)
        finally:
            slapd_server.delete_user("sy-late")


def test_an_empty_directory_answer_removes_nobody(task_site: Any, slapd_server: LdapServer) -> None:
    from cc_auth_ldap.authenticator import make_directory
    from cc_auth_ldap.sync import sync_users

    with Database.from_config(task_site.config()) as db:
        db.users.add_sync("kept-ldap", roles=["user"], auth_source=AuthSource.LDAP)
        context = plugin_context(task_site, db)
        config = msgspec.structs.replace(context.section(SECTION), user_filter="(uid=nobody-at-all)")
        result = asyncio.run(sync_users(config, make_directory(config, context), db))
        assert result.removed == [] and result.directory_users == 0
        assert "kept-ldap" in _users(db)
        # Without sync-del-old-users, users gone from the directory stay.
        config = msgspec.structs.replace(context.section(SECTION), sync_del_old_users=False)
        result = asyncio.run(sync_users(config, make_directory(config, context), db))
        assert result.removed == [] and "kept-ldap" in _users(db)


def _cli() -> click.Group:
    """The root command's options and callback with the plugin's command, as `clustercockpit` has it."""
    return click.Group(
        "clustercockpit", params=root_cli.params, callback=root_cli.callback, commands=[sync_ldap]
    )


def test_sync_ldap_command(slapd_server: LdapServer, tmp_path: Path) -> None:
    site = make_ldap_site(tmp_path / "site", _section(slapd_server))
    config = str(site.config_path)
    runner = CliRunner()

    dry = runner.invoke(_cli(), ["--config", config, "sync-ldap", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("dry run, would have added ")
    assert "alice" in dry.stdout and "bob" in dry.stdout
    with Database.from_config(site.config()) as db:
        assert _users(db) == {}

    real = runner.invoke(_cli(), ["--config", config, "sync-ldap"])
    assert real.exit_code == 0, real.output
    assert re.match(r"added \d+, removed 0 \(\d+ user\(s\) in the directory\)", real.stdout), real.stdout
    with Database.from_config(site.config()) as db:
        synced = _users(db)
    assert synced["alice"].auth_source == AuthSource.LDAP and synced["alice"].roles == ["user", "admin"]
    assert synced["bob"].roles == ["user"]

    # A wrong LDAP_ADMIN_PASSWORD: one error line naming what to check, exit status 1, no traceback.
    bad_env = tmp_path / "bad.env"
    bad_env.write_text(
        (site.root / ".env")
        .read_text()
        .replace('LDAP_ADMIN_PASSWORD="secret"', 'LDAP_ADMIN_PASSWORD="wrong"')
    )
    bad = runner.invoke(_cli(), ["--config", config, "--env-file", str(bad_env), "sync-ldap"])
    assert bad.exit_code == 1
    assert "LDAP sync failed" in bad.stderr and "LDAP_ADMIN_PASSWORD" in bad.stderr
    assert "Traceback" not in bad.output

    # No auth.ldap section: nothing to sync, said so.
    plain = tmp_path / "plain.json"
    doc = msgspec.json.decode(site.config_path.read_bytes())
    del doc["auth"]
    plain.write_bytes(msgspec.json.encode(doc))
    none = runner.invoke(_cli(), ["--config", str(plain), "--env-file", str(site.root / ".env"), "sync-ldap"])
    assert none.exit_code == 1 and "no `auth.ldap` section" in none.stderr


def test_a_slow_directory_does_not_block_the_event_loop(task_site: Any) -> None:
    """ldap3 blocks; the authenticator runs it in a worker thread, so other requests go on meanwhile."""
    from cc_auth_ldap.authenticator import UNAVAILABLE, LdapAuthenticator
    from cc_auth_ldap.directory import Directory
    from ldap_testlib import silent_server

    from cc_core.auth.errors import LoginError

    with Database.from_config(task_site.config()) as db, silent_server() as port:
        db.users.add_sync("slowpoke", roles=["user"], auth_source=AuthSource.LDAP)
        context = plugin_context(task_site, db)
        config = context.section(SECTION)
        authenticator = LdapAuthenticator(config, context)
        authenticator.directory = Directory(
            msgspec.structs.replace(config, url=f"ldap://127.0.0.1:{port}", timeout="1s"), None
        )

        async def scenario() -> tuple[int, str]:
            ticks = 0
            done = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick_task = asyncio.create_task(ticker())
            user = (await db.users.get("slowpoke")).to_user()
            try:
                await authenticator.login(user, "slowpoke", "pw", None)
                message = ""
            except LoginError as e:
                message = str(e)
            done.set()
            await tick_task
            return ticks, message

        ticks, message = asyncio.run(scenario())
        assert message == UNAVAILABLE
        assert ticks > 30  # ~1 s of timeout at 10 ms per tick; a blocked loop would tick once or twice

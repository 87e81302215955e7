"""The database commands: migrate-db, revert-db, optimize-db, add-user, del-user, jwt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from cc_core.auth.jwt_tokens import load_public_key, verify
from cc_core.cli import build_cli
from cc_core.cli.keys import generate_keypair
from cc_core.db import Database, schema_version
from cc_core.db.migrations import CURRENT_VERSION


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str]:
    pub, priv = generate_keypair()
    (tmp_path / "config.json").write_text(
        json.dumps({"main": {"db": "./var/job.db"}, "auth": {"jwts": {"max-age": "2h"}}})
    )
    (tmp_path / ".env").write_text(f'JWT_PUBLIC_KEY="{pub}"\nJWT_PRIVATE_KEY="{priv}"\n')
    return tmp_path, pub


def cli(site_dir: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(build_cli(), ["-c", str(site_dir / "config.json"), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_users_and_tokens(site: tuple[Path, str]) -> None:
    d, pub = site
    code, out, _ = cli(d, "add-user", "alice:admin,api:pa:ss")
    assert code == 0 and "added user 'alice'" in out
    with Database(d / "var" / "job.db") as db:
        user = anyio.run(lambda: db.users.check_password("alice", "pa:ss"))  # the password may contain ':'
        assert user is not None and user.roles == ["admin", "api"]
    code, _, err = cli(d, "add-user", "alice:user:x")
    assert code == 1 and "already exists" in err
    code, _, err = cli(d, "add-user", "bob:wizard:x")
    assert code == 1 and "unknown role" in err
    code, _, err = cli(d, "add-user", "bob-no-roles")
    assert code == 2

    code, token, _ = cli(d, "jwt", "alice")
    assert code == 0
    claims = verify(token.strip(), [load_public_key(pub)])
    assert claims["sub"] == "alice" and claims["roles"] == ["admin", "api"]
    assert claims["exp"] - claims["iat"] == 7200

    assert cli(d, "add-user", "bob:user:pw")[0] == 0
    code, token, err = cli(d, "jwt", "bob")
    assert code == 0 and "does not have the role 'api'" in err and token.count(".") == 2
    code, _, err = cli(d, "jwt", "nobody")
    assert code == 1 and "not found" in err

    assert cli(d, "del-user", "bob")[0] == 0
    code, _, err = cli(d, "del-user", "bob")
    assert code == 1 and "not found" in err


def test_jwt_needs_the_private_key(site: tuple[Path, str]) -> None:
    d, _ = site
    (d / ".env").write_text("")
    cli(d, "add-user", "alice:api:x")
    with pytest.raises(Exception, match="JWT_PRIVATE_KEY"):
        cli(d, "jwt", "alice")


def test_migrate_revert_optimize(site: tuple[Path, str]) -> None:
    d, _ = site
    code, out, _ = cli(d, "migrate-db")  # no database yet: created at the current version
    assert code == 0 and "upstream 11 + ours" in out
    code, out, _ = cli(d, "migrate-db")
    assert code == 0 and "already at the current schema" in out
    code, out, _ = cli(d, "revert-db")
    assert code == 0 and f"reverted: {CURRENT_VERSION:03d}" in out and "backup:" in out
    code, _, err = cli(d, "add-user", "alice:api:x")  # serving commands refuse an outdated database
    assert code == 1 and "clustercockpit migrate-db" in err
    code, _, err = cli(d, "optimize-db")
    assert code == 1 and "migrate-db" in err
    code, out, _ = cli(d, "migrate-db", "--no-backup")
    assert code == 0 and f"applied: {CURRENT_VERSION:03d}" in out and "backup:" not in out
    assert cli(d, "optimize-db")[0] == 0
    with Database(d / "var" / "job.db") as db:
        assert schema_version(db).is_current
    backups = list((d / "var").glob("job.db.backup-*"))
    assert len(backups) == 1


def test_migrate_upstream_database(site: tuple[Path, str], shared_reference: Path) -> None:
    d, _ = site
    (d / "var").mkdir()
    target = d / "var" / "job.db"
    shutil.copyfile(shared_reference / "upstream-db" / "job-v10.db", target)
    target.chmod(0o644)
    code, _, err = cli(d, "jwt", "demo")
    assert code == 1 and "migrate-db" in err
    code, out, _ = cli(d, "migrate-db")
    assert code == 0 and "applied: upstream 11" in out and "backup: " in out
    assert cli(d, "del-user", "demo")[0] == 0

"""`init`, `version` and `plugins`."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cc_core.cli.keys import generate_keypair
from cc_core.cli.state import state

INIT_CONFIG = {
    "main": {"addr": "localhost:8080", "db": "./var/job.db", "short-running-jobs-duration": 300},
    "auth": {"jwts": {"max-age": "2000h"}},
    "archive": {"kind": "file", "path": "./var/job-archive"},
    "metric-store": {
        "retention-in-memory": "48h",
        "memory-cap": 0,
        "checkpoints": {"directory": "./var/checkpoints"},
    },
}


def _write_new(path: Path, text: str, mode: int = 0o644) -> None:
    """Create ``path`` atomically (temp + rename); never overwrite."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def init_site(directory: Path) -> list[Path]:
    """Create config.json, .env (fresh keys), var/ and an empty version-3 archive in ``directory``."""
    var = directory / "var"
    if var.exists():
        raise click.ClickException(
            f"{var} already exists; `init` only sets up a fresh site (remove it, or use another directory)"
        )
    created: list[Path] = []
    cfg = directory / "config.json"
    if not cfg.exists():
        _write_new(cfg, json.dumps(INIT_CONFIG, indent=2) + "\n")
        created.append(cfg)
    env = directory / ".env"
    if not env.exists():
        pub, priv = generate_keypair()
        session = base64.b64encode(secrets.token_bytes(32)).decode()
        _write_new(
            env,
            "# Secrets of this ClusterCockpit site. Keep this file private.\n"
            f'JWT_PUBLIC_KEY="{pub}"\nJWT_PRIVATE_KEY="{priv}"\nSESSION_KEY="{session}"\n',
            mode=0o600,
        )
        created.append(env)
    archive = var / "job-archive"
    archive.mkdir(parents=True)
    _write_new(archive / "version.txt", "3\n")
    created += [var, archive]
    return created


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(directory: Path) -> None:
    """Set up a new site: config.json, .env with fresh keys, var/ and an empty job archive (upstream -init)."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in init_site(directory):
        click.echo(f"created {p}")
    try:
        from cc_core.db import initialise_database  # type: ignore[attr-defined]
    except ImportError:
        return
    initialise_database(directory / "var" / "job.db")
    click.echo(f"created {directory / 'var' / 'job.db'}")


@click.command("version")
def version() -> None:
    """Print the version (upstream -version)."""
    from cc_core import ARCHIVE_VERSION, UPSTREAM_DB_VERSION, __version__

    click.echo(f"clustercockpit {__version__}")
    click.echo(f"job archive version {ARCHIVE_VERSION}, upstream database schema {UPSTREAM_DB_VERSION}")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins: distribution, version, the kinds they provide and the hooks they implement."""
    from cc_core.plugins import describe

    listing = describe(state(ctx).registry())
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    table = Table(title="ClusterCockpit plugins")
    for col in ("plugin", "distribution", "version", "kinds", "hooks"):
        table.add_column(col)
    for p in listing:
        kinds = "; ".join(f"{cat}: {', '.join(k)}" for cat, k in p["kinds"].items())
        table.add_row(p["name"], p["distribution"], p["version"], kinds, ", ".join(p["hooks"]))
    Console(width=160).print(table)


COMMANDS = [init, version, plugins]

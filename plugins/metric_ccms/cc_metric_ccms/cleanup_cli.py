"""``clustercockpit cleanup-checkpoints`` (upstream ``-cleanup-checkpoints``): one cleanup run by hand.

Uses the ``metric-store`` section of ``config.json`` exactly as the server's periodic cleanup does:
files older than now − ``retention-in-memory`` are deleted, or archived to Parquet in ``cleanup.directory``
when ``cleanup.mode`` is ``archive``. Safe while the server runs: only snapshot files the store no longer
loads are touched, never ``current.wal``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("cleanup-checkpoints")
@click.option(
    "--before",
    type=int,
    default=None,
    help="Unix time: clean files older than this instead of now − retention-in-memory.",
)
@click.pass_context
def cleanup_checkpoints(ctx: click.Context, before: int | None) -> None:
    """Delete or archive (Parquet) old metric-store checkpoint files (upstream -cleanup-checkpoints)."""
    from cc_core.cli.state import state
    from cc_core.config import ConfigError, parse_duration

    from .cleanup import archive_old, delete_old

    st = state(ctx)
    config = st.config()
    config.validate_plugins(st.registry())
    section = config.plugin_configs.get("$.metric-store")
    if section is None:
        raise ConfigError(
            "checkpoint cleanup needs a `metric-store` section in the configuration", file=config.source
        )
    if before is None:
        retention = parse_duration(section.retention_in_memory)
        if not retention:
            raise click.UsageError("`retention-in-memory` is 0: give --before to say what is old")
        before = int(time.time() - retention)

    def site_path(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else config.base_dir / path

    directory = site_path(section.checkpoints.directory)
    if section.cleanup.mode == "archive":
        target = site_path(section.cleanup.directory or "./var/checkpoints-archive")
        try:
            rep = archive_old(directory, target, before)
        except RuntimeError as e:  # pyarrow missing
            raise click.ClickException(str(e)) from None
        click.echo(
            f"Cleanup done: {rep.files} checkpoint files archived to Parquet ({rep.rows} rows) in {target}."
        )
    else:
        rep = delete_old(directory, before)
        click.echo(f"Cleanup done: {rep.files} checkpoint files deleted.")
    for err in rep.errors:
        click.echo(f"error: {err}", err=True)
    if rep.errors:
        raise SystemExit(1)

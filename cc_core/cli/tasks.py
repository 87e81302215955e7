"""``clustercockpit tasks``: the periodic services of the server (contract §10).

``tasks list`` shows every task the configuration enables (schedule, next due time, last recorded
run from the database, also runs by other replicas); ``tasks run NAME`` runs one now, in this
process, against the configured database and archive, and records it like a scheduled run.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

from cc_core.cli.state import run_cli_errors_as_messages, state

if TYPE_CHECKING:
    from cc_core.services import CoreServices
    from cc_core.tasks import TaskManager


@asynccontextmanager
async def _services(ctx: click.Context) -> AsyncIterator[tuple[CoreServices, TaskManager]]:
    """Database, archive, clusters and metric backends as the server has them (without the archiver
    worker and without the web app), and the task manager on them."""
    from cc_core.archive import load_clusters
    from cc_core.context import PluginContext
    from cc_core.services import CoreServices
    from cc_core.tasks import create_task_manager

    st = state(ctx)
    config = st.validated_config()
    registry = st.registry()
    context = PluginContext(config, registry)
    services = CoreServices.open(config, registry, context)
    try:
        await services.archive.init()
        services.clusters.by_name = await load_clusters(services.archive)
        if services.metrics is not None:
            await services.metrics.start()
        yield services, create_task_manager(services)
    finally:
        await services.close()


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return _dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@click.group("tasks")
def tasks_group() -> None:
    """List the server's periodic tasks or run one by hand."""


@tasks_group.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Enabled tasks: schedule, next run, last run (from the database, any replica)."""
    from rich.console import Console
    from rich.table import Table

    from cc_core.cli.importing import _run

    async def main() -> None:
        async with _services(ctx) as (_, manager):
            records = await manager.lease.records() if manager.lease is not None else {}
            table = Table("task", "schedule", "next run", "last run", "outcome", "took", "message")
            for entry in manager.describe():
                rec = records.get(entry["name"])
                started = rec.started_ms / 1000 if rec is not None and rec.started_ms else None
                took = (
                    f"{rec.duration_ms / 1000:.2f} s"
                    if rec is not None and rec.duration_ms is not None
                    else "-"
                )
                table.add_row(
                    entry["name"],
                    entry["schedule"],
                    _when(entry["next"]),
                    _when(started),
                    (rec.outcome if rec is not None else "") or "never run",
                    took,
                    (rec.message or "") if rec is not None else "",
                )
            Console(width=160).print(table)
            if not manager.tasks:
                click.echo("no task is enabled by this configuration")

    with run_cli_errors_as_messages():
        _run(main())


@tasks_group.command("run")
@click.argument("name")
@click.pass_context
def run_cmd(ctx: click.Context, name: str) -> None:
    """Run the task NAME now; exit status 1 if it fails."""
    from cc_core.cli.importing import _run

    async def main() -> bool:
        async with _services(ctx) as (_, manager):
            if name not in manager.tasks:
                known = ", ".join(manager.tasks) or "none"
                click.echo(f"error: no enabled task {name!r} (enabled: {known})", err=True)
                raise SystemExit(2)
            result = await manager.run_now(name)
            click.echo(f"{name}: {result.describe()}")
            return result.ok

    with run_cli_errors_as_messages():
        ok = _run(main())
    raise SystemExit(0 if ok else 1)


COMMANDS = [tasks_group]

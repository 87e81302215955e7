"""``clustercockpit init-db`` and ``clustercockpit import-job`` (upstream ``-init-db`` / ``-import-job``).

Both use the database (``main.db``) and the archive (``archive`` section) of ``--config``; the work is
in `cc_core.importer`. Problems are one ``error:`` line each (with the job's archive path or the file
name), never a traceback; the exit status is 1 if anything failed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cc_core.cli.state import state

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from cc_core.importer import InitDBReport

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; every expected failure becomes one ``error:`` line and exit status 1."""
    import logging

    from cc_core.archive.errors import ArchiveError
    from cc_core.archive.validation import SchemaUnavailableError
    from cc_core.cli.archive import _run_loop
    from cc_core.config import ConfigError
    from cc_core.db import DBError
    from cc_core.importer import ImportJobError

    try:
        return _run_loop(coro)
    except (ArchiveError, DBError, ImportJobError, SchemaUnavailableError, ConfigError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        click.echo("interrupted: nothing was changed", err=True)
        raise SystemExit(130) from None
    except (click.exceptions.Abort, click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as e:  # a bug or an unforeseen storage error: one line, details in the debug log
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        click.echo(f"error: unexpected {type(e).__name__}: {e} (--loglevel debug shows details)", err=True)
        raise SystemExit(1) from None


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _progress(console: Console, total: int | None) -> Progress:
    """Bar, count, rate, failures, elapsed time and ETA on stderr; silent unless stderr is a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]init-db"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} jobs/s"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _tracker(progress: Progress, total: int | None) -> Callable[[InitDBReport], None]:
    task = progress.add_task("jobs", total=total, rate="-", failed=0)

    def update(r: InitDBReport) -> None:
        progress.update(task, completed=r.processed, rate=f"{r.rate:,.0f}", failed=r.failed)

    return update


def _report_errors(errors: list[str], limit: int = 200) -> None:
    for line in errors[:limit]:
        click.echo(f"error: {line}", err=True)
    if len(errors) > limit:
        click.echo(f"error: … and {len(errors) - limit} more", err=True)


@click.command("init-db")
@click.option(
    "--validate/--no-validate",
    default=None,
    help="Check every meta.json against the JSON schema [default: main.validate].",
)
@click.option(
    "--batch-size", default=2000, show_default=True, type=click.IntRange(1), help="Jobs per bulk insert."
)
@click.pass_context
def init_db_cmd(ctx: click.Context, validate: bool | None, batch_size: int) -> None:
    """Re-create the job and tag tables from the job archive (upstream -init-db).

    Deletes every job, tag and job-tag link, then imports every job of the archive with footprint,
    energy footprint and energy computed from its statistics; tags keep their scope. All of it is one
    database transaction: if the import fails as a whole, the database is left as it was (and on SQLite
    a running server keeps showing the old jobs until the new ones are committed). Jobs that cannot be
    imported are listed with their archive path and skipped (exit status 1). An archive without any
    cluster is refused.
    """
    from cc_core.archive import tools
    from cc_core.archive.errors import ArchiveError
    from cc_core.cli.archive import _where, open_archive
    from cc_core.db import Database
    from cc_core.importer import init_db

    st = state(ctx)
    cfg = st.validated_config(allow_missing=True)
    check = cfg.main.validate if validate is None else validate

    async def main() -> InitDBReport:
        backend = open_archive(ctx, None, validate=check)
        await backend.init()
        try:
            if not await backend.get_clusters():
                # A mistyped archive path would otherwise empty the database (and bootstrap an archive).
                raise ArchiveError(
                    _where(backend),
                    "the archive holds no cluster: is archive.path right? Database unchanged.",
                )
            console = _stderr()
            total = await tools.count_jobs(backend) if console.is_terminal else None
            with Database.from_config(cfg) as db, _progress(console, total) as progress:
                report = await init_db(db, backend, progress=_tracker(progress, total), batch_size=batch_size)
            return report
        finally:
            await backend.close()

    report = _run(main())
    _report_errors(report.errors)
    summary = (
        f"init-db: {report.imported:,} jobs imported in {report.seconds:.1f} s ({report.rate:,.0f} jobs/s), "
        f"{report.failed:,} failed"
    )
    if report.cluster_errors:
        summary += f", {len(report.cluster_errors)} unusable cluster config(s)"
    summary += f"; {report.removed:,} jobs were replaced"
    click.echo(summary)
    raise SystemExit(0 if report.ok else 1)


@click.command("import-job")
@click.argument("specs", nargs=-1, required=True, metavar="META.json:DATA.json[,META:DATA…]")
@click.option(
    "--validate/--no-validate",
    default=None,
    help="Check the files against the JSON schemas [default: main.validate].",
)
@click.pass_context
def import_job_cmd(ctx: click.Context, specs: tuple[str, ...], validate: bool | None) -> None:
    """Import finished jobs from meta/data file pairs into the archive and the database (upstream
    -import-job).

    The files are decoded strictly (unknown keys are errors). Every pair is read and checked before
    anything is written; the first problem stops the command with a message naming the file. A job
    whose database insert fails is removed from the archive again.
    """
    from cc_core.cli.archive import open_archive
    from cc_core.db import Database
    from cc_core.importer import import_jobs, parse_import_spec

    st = state(ctx)
    cfg = st.validated_config(allow_missing=True)
    check = cfg.main.validate if validate is None else validate

    async def main() -> list[Any]:
        pairs = parse_import_spec(specs)
        backend = open_archive(ctx, None, validate=check)
        await backend.init()
        try:
            with Database.from_config(cfg) as db:
                return await import_jobs(db, backend, pairs, validate=check)
        finally:
            await backend.close()

    for job in _run(main()):
        click.echo(
            f"imported job {job.job_id} (cluster {job.cluster}, start {job.start_time}) as database id {job.id}"
        )


COMMANDS: list[click.Command] = [init_db_cmd, import_job_cmd]

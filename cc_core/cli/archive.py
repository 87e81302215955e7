"""``clustercockpit archive``: upstream's archive-manager and archive-migration tools as one command group.

Every subcommand takes archives as ARCHIVE arguments, each either a directory (a file archive), a JSON
backend config (``'{"kind": "s3", "bucket": …}'``, upstream's ``-src-config``/``-dst-config``) or a
``.json`` file holding one (or a whole config.json, whose ``archive`` section is used). Without an
ARCHIVE the ``archive`` section of the global ``--config`` is used.

Per-job problems are printed with the job's path and the run goes on; the exit status is 1 if any job
failed. Errors never print a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cc_core.cli.state import state

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from cc_core.archive.tools import Tally
    from cc_core.interfaces import ArchiveBackend

T = TypeVar("T")
log = logging.getLogger(__name__)
ARCHIVE_HELP = "a directory, a JSON backend config, or a .json file with one [default: the config's archive]"


# ------------------------------------------------------------------------------------------ plumbing


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, in a helper thread when this thread already runs a loop (an embedding app)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=target, name="clustercockpit-archive")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; archive and config errors become one ``error:`` line and exit status 1."""
    from cc_core.archive.errors import ArchiveError
    from cc_core.archive.parquet import ParquetUnavailableError
    from cc_core.archive.validation import SchemaUnavailableError

    try:
        return _run_loop(coro)
    except (ArchiveError, ParquetUnavailableError, SchemaUnavailableError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except (click.exceptions.Abort, click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as e:  # a bug or an unforeseen storage error: one line, details in the debug log
        log.debug("archive command failed", exc_info=True)
        click.echo(f"error: unexpected {type(e).__name__}: {e} (--loglevel debug shows details)", err=True)
        raise SystemExit(1) from None


def _section(spec: str) -> tuple[dict[str, Any], str]:
    """``(backend section, where it came from)`` for an ARCHIVE argument; relative paths are made
    absolute (relative to the working directory, or to the .json file that names them)."""
    from cc_core.config import ConfigError

    text = spec.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"invalid JSON archive config: {e.msg} (column {e.colno})", file="<command line>"
            ) from None
        return doc, "<command line>"
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read archive config: {e}", file=path) from None
        if isinstance(doc, dict) and isinstance(doc.get("archive"), dict):
            doc = doc["archive"]
        if isinstance(doc, dict) and doc.get("kind", "file") == "file" and "path" in doc:
            p = Path(str(doc["path"])).expanduser()
            doc = {**doc, "path": str(p if p.is_absolute() else path.resolve().parent / p)}
        return doc, str(path)
    return {"kind": "file", "path": str(path.resolve())}, spec


def open_archive(ctx: click.Context, spec: str | None, *, validate: bool = False) -> ArchiveBackend:
    """The backend an ARCHIVE argument (or the configured archive) names, not yet initialised."""
    from cc_core.archive import open_backend
    from cc_core.context import PluginContext

    st = state(ctx)
    registry = st.registry()
    if spec is None:
        cfg = st.config(allow_missing=True)
        context = PluginContext(cfg, registry)
        return open_backend(
            dict(cfg.archive), registry=registry, context=context, source=cfg.source, validate=validate
        )
    section, source = _section(spec)
    return open_backend(section, registry=registry, source=source, validate=validate)


def _base(backend: ArchiveBackend, what: str) -> Any:
    from cc_core.archive.backend import ArchiveBase

    if not isinstance(backend, ArchiveBase):
        click.echo(f"error: {what} needs a backend built on cc_core.archive.backend.ArchiveBase", err=True)
        raise SystemExit(1)
    return backend


def _where(backend: ArchiveBackend) -> str:
    display = getattr(backend, "_display", None)
    return display("").rstrip("/") if callable(display) else type(backend).__name__


def _progress(total: int | None, label: str) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} jobs/s"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=False,
        disable=total == 0,
    )


def _tracker(progress: Progress, total: int | None) -> Callable[[Tally], None]:
    task = progress.add_task("jobs", total=total, rate="-", failed=0)

    def update(t: Tally) -> None:
        rate = t.processed / t.seconds if t.seconds > 0 else 0
        progress.update(task, completed=t.processed, rate=f"{rate:,.0f}", failed=t.failed)

    return update


def _report_errors(errors: list[str], limit: int = 200) -> None:
    for line in errors[:limit]:
        click.echo(f"error: {line}", err=True)
    if len(errors) > limit:
        click.echo(f"error: … and {len(errors) - limit} more", err=True)


def _parse_date(value: str | None, *, end_of_day: bool = False) -> int:
    """Epoch seconds from upstream's ``2006-Jan-02`` (local time), ISO ``2006-01-02[THH:MM]`` or a number."""
    if not value:
        return 0
    text = value.strip()
    if text.isdigit():
        return int(text)
    for fmt in ("%Y-%b-%d", "%Y-%m-%d"):
        try:
            return int(dt.datetime.strptime(text, fmt).timestamp())  # local time, as upstream
        except ValueError:
            pass
    try:
        return int(dt.datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected a date like 2024-Jan-31 (upstream), 2024-01-31 or epoch seconds"
        ) from None


def _fmt_time(ts: int | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def archive_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("archive", required=False, metavar="[ARCHIVE]")(f)


# ------------------------------------------------------------------------------------------ commands


@click.group(name="archive")
def archive_group() -> None:
    """Inspect, validate, copy, convert and migrate job archives (upstream archive-manager).

    ARCHIVE is a directory (file archive), a JSON backend config such as
    '{"kind": "s3", "bucket": "jobs", "endpoint": "http://127.0.0.1:9000", "use-path-style": true}',
    or a .json file holding one; without it, the archive of --config is used.
    """


@archive_group.command("info")
@archive_option
@click.pass_context
def info_cmd(ctx: click.Context, archive: str | None) -> None:
    """Per-cluster table: jobs, first and last start time, size."""
    from rich.console import Console
    from rich.table import Table

    async def main() -> None:
        backend = open_archive(ctx, archive)
        await backend.init()
        info = await backend.info()
        table = Table(title=f"Job archive {_where(backend)}")
        for col, just in (
            ("cluster", "left"),
            ("jobs", "right"),
            ("from", "left"),
            ("to", "left"),
            ("size (MB)", "right"),
        ):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        total_jobs, total_bytes, first, last = 0, 0, None, None
        for name, ci in sorted(info.items()):
            table.add_row(
                name,
                f"{ci.jobs:,}",
                _fmt_time(ci.first_start),
                _fmt_time(ci.last_start),
                f"{ci.bytes / 1e6:,.2f}",
            )
            total_jobs += ci.jobs
            total_bytes += ci.bytes
            if ci.first_start is not None:
                first = ci.first_start if first is None else min(first, ci.first_start)
            if ci.last_start is not None:
                last = ci.last_start if last is None else max(last, ci.last_start)
        table.add_section()
        table.add_row(
            "TOTAL", f"{total_jobs:,}", _fmt_time(first), _fmt_time(last), f"{total_bytes / 1e6:,.2f}"
        )
        Console().print(table)
        await backend.close()

    _run(main())


@archive_group.command("validate")
@archive_option
@click.option("--cluster", default=None, help="Only this cluster.")
@click.option(
    "--schema/--no-schema", default=True, show_default=True, help="Also check against the JSON schemas."
)
@click.pass_context
def validate_cmd(ctx: click.Context, archive: str | None, cluster: str | None, schema: bool) -> None:
    """Decode (and schema-check) every cluster config and every job; list each broken job with its path."""
    from cc_core.archive import tools, validation

    async def main() -> int:
        if schema and not validation.available():
            raise validation.SchemaUnavailableError(
                "schema validation needs the `jsonschema` package (pip install jsonschema); "
                "use --no-schema to only decode"
            )
        backend = open_archive(ctx, archive, validate=schema)
        await backend.init()
        total = await tools.count_jobs(backend, cluster)
        with _progress(total, "validate") as progress:
            tally = await tools.validate_archive(backend, cluster=cluster, progress=_tracker(progress, total))
        _report_errors(tally.errors)
        other = len(tally.errors) - tally.failed
        click.echo(
            f"{tally.done + tally.failed} jobs checked in {tally.seconds:.1f} s: {tally.done} valid, "
            f"{tally.failed} with problems" + (f"; {other} cluster configs with problems" if other else "")
        )
        await backend.close()
        return 1 if tally.errors else 0

    raise SystemExit(_run(main()))


@archive_group.command("copy")
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@click.option("--workers", "-j", default=8, show_default=True, help="Jobs copied in parallel.")
@click.option("--cluster", default=None, help="Only this cluster.")
@click.pass_context
def copy_cmd(ctx: click.Context, source: str, destination: str, workers: int, cluster: str | None) -> None:
    """Copy every job from SOURCE to DESTINATION (file ↔ s3 ↔ …), byte for byte.

    Jobs already in DESTINATION are skipped, so an interrupted copy is resumed by running it again
    (upstream: archive-manager -import -src-config … -dst-config …).
    """
    from cc_core.archive import tools

    async def main() -> int:
        src = open_archive(ctx, source)
        dst = open_archive(ctx, destination)
        await src.init()
        await dst.init()
        total = await tools.count_jobs(src, cluster)
        with _progress(total, "copy") as progress:
            tally = await tools.copy_archive(
                src, dst, workers=workers, cluster=cluster, progress=_tracker(progress, total)
            )
        _report_errors(tally.errors)
        rate = tally.processed / tally.seconds if tally.seconds else 0
        click.echo(
            f"{tally.done} jobs copied, {tally.skipped} already there, {tally.failed} failed "
            f"in {tally.seconds:.1f} s ({rate:,.0f} jobs/s)"
        )
        await src.close()
        await dst.close()
        return 1 if tally.failed else 0

    raise SystemExit(_run(main()))


@archive_group.command("remove")
@archive_option
@click.option(
    "--before", default=None, help="Remove jobs started before this date (2024-Jan-31, 2024-01-31, epoch)."
)
@click.option("--after", default=None, help="Remove jobs started after this date.")
@click.option("--cluster", default=None, help="Only this cluster; alone, remove the whole cluster.")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def remove_cmd(
    ctx: click.Context,
    archive: str | None,
    before: str | None,
    after: str | None,
    cluster: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Remove jobs by start time and/or cluster (upstream -remove-before/-remove-after/-remove-cluster).

    Only the archive is changed; the database still lists the jobs until the next init-db.
    """
    from cc_core.archive import tools

    if not (before or after or cluster):
        raise click.UsageError("give --before, --after and/or --cluster")
    t_before, t_after = _parse_date(before), _parse_date(after)
    whole_cluster = cluster is not None and not before and not after
    if whole_cluster:
        t_before = 2**62

    async def main() -> None:
        backend = open_archive(ctx, archive)
        await backend.init()
        if cluster is not None and cluster not in await backend.get_clusters():
            from cc_core.archive.errors import ClusterNotFoundError

            raise ClusterNotFoundError(_where(backend), f"no cluster {cluster!r} in the archive")
        n = await tools.count_in_range(backend, t_before, t_after, cluster)
        what = f"{n} job{'s' if n != 1 else ''}" + (
            f" and the configuration of cluster {cluster!r}" if whole_cluster else ""
        )
        if dry_run:
            click.echo(f"would remove {what} from {_where(backend)}")
            return
        if n == 0 and not whole_cluster:
            click.echo("nothing to remove")
            return
        if not yes:
            click.confirm(f"Remove {what} from {_where(backend)}?", abort=True, err=True)
        removed = await backend.clean(t_before, t_after, cluster)
        if whole_cluster:
            await _base(backend, "removing a cluster").remove_cluster(cluster)
        click.echo(
            f"removed {removed} job{'s' if removed != 1 else ''}"
            + (f" and cluster {cluster!r}" if whole_cluster else "")
        )
        await backend.close()

    _run(main())


@archive_group.command("migrate")
@archive_option
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--workers", "-j", default=4, show_default=True, help="Jobs migrated in parallel.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def migrate_cmd(ctx: click.Context, archive: str | None, dry_run: bool, workers: int, yes: bool) -> None:
    """Upgrade a version-2 archive to version 3 (upstream archive-migration).

    Rewrites each meta.json (exclusive → shared; adds submitTime, energy, requestedMemory; drops legacy
    fields) and sets version.txt to 3 once every job succeeded. Back up the archive first.
    """
    from cc_core.archive import migrate

    async def main() -> int:
        backend = _base(open_archive(ctx, archive), "migration")
        version = await migrate.archive_version(backend)
        if version != 2:
            await migrate.migrate_archive(backend, dry_run=True)  # raises with the reason
        total = await migrate.count_jobs(backend)
        if not dry_run and not yes:
            click.echo(
                f"This rewrites meta.json of {total} jobs in {_where(backend)}. Back it up first.", err=True
            )
            click.confirm("Continue?", abort=True, err=True)
        with _progress(total, "migrate" + (" (dry run)" if dry_run else "")) as progress:
            update = _tracker(progress, total)

            def on_job(r: migrate.MigrationResult) -> None:
                from cc_core.archive.tools import Tally

                t = Tally(done=r.migrated, skipped=r.unchanged, failed=r.failed)
                t.started = started
                update(t)

            import time

            started = time.perf_counter()
            result = await migrate.migrate_archive(backend, dry_run=dry_run, workers=workers, progress=on_job)
        _report_errors(result.errors)
        verb = "would migrate" if dry_run else "migrated"
        click.echo(
            f"{verb} {result.migrated} jobs, {result.unchanged} already current, {result.failed} failed"
        )
        if result.version_updated:
            click.echo("version.txt is now 3")
        elif not dry_run:
            click.echo("version.txt left at 2: fix the failed jobs and run migrate again", err=True)
        return 1 if result.failed else 0

    raise SystemExit(_run(main()))


@archive_group.command("convert")
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@click.option(
    "--to",
    "fmt",
    type=click.Choice(["parquet", "json"]),
    required=True,
    help="parquet: JSON archive SOURCE → Parquet files in DESTINATION; json: the reverse.",
)
@click.option(
    "--max-file-size", default=512, show_default=True, help="Split Parquet files at this size (MB)."
)
@click.option("--cluster", default=None, help="Only this cluster.")
@click.pass_context
def convert_cmd(
    ctx: click.Context, source: str, destination: str, fmt: str, max_file_size: int, cluster: str | None
) -> None:
    """Convert between the JSON archive and upstream's Parquet layout (upstream -convert -format).

    The Parquet side is a directory or bucket given like an archive (no version.txt there). Needs
    pyarrow: pip install "clustercockpit[parquet]".
    """
    from cc_core.archive import parquet, tools

    async def main() -> int:
        parquet._pa()  # fail early with the install hint
        if fmt == "parquet":
            src = open_archive(ctx, source)
            await src.init()
            target = _base(open_archive(ctx, destination), "a Parquet target")
            total = await tools.count_jobs(src, cluster)
            with _progress(total, "to parquet") as progress:
                tally, files = await parquet.export_parquet(
                    src,
                    target,
                    max_file_size_mb=max_file_size,
                    cluster=cluster,
                    progress=_tracker(progress, total),
                )
            _report_errors(tally.errors)
            click.echo(f"{tally.done} jobs written to {len(files)} Parquet files, {tally.failed} failed")
        else:
            source_store = _base(open_archive(ctx, source), "a Parquet source")
            dst = open_archive(ctx, destination)
            await dst.init()
            with _progress(None, "from parquet") as progress:
                tally = await parquet.import_parquet(
                    source_store, dst, cluster=cluster, progress=_tracker(progress, None)
                )
            _report_errors(tally.errors)
            click.echo(f"{tally.done} jobs imported, {tally.skipped} already there, {tally.failed} failed")
        return 1 if tally.failed else 0

    raise SystemExit(_run(main()))


COMMANDS: list[click.Command] = [archive_group]

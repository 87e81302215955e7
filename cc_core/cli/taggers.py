"""``clustercockpit apply-tags`` (upstream ``-apply-tags``): run the job taggers over every finished job.

Uses the database (``main.db``) and archive of ``--config``, and the rule directories next to the config
(``var/tagger/apps``, ``var/tagger/jobclasses``) over the built-in rules. Rule files that do not load
are listed (file and position) and skipped. Re-running changes nothing that is already there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cc_core.cli.state import state

if TYPE_CHECKING:
    from cc_core.taggers.service import RunReport


@click.command("apply-tags")
@click.option(
    "--tagger",
    "names",
    multiple=True,
    metavar="NAME",
    help="Run only this tagger (repeatable; e.g. AppTagger, JobClassTagger) [default: all].",
)
@click.pass_context
def apply_tags_cmd(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Run all job taggers on every finished job (upstream -apply-tags).

    Start taggers (app detection) see the job script; stop taggers (job classes) need the job's
    statistics from the archive, so jobs that were never archived only get start taggers. Tags are
    added once (a job that has one keeps it), messages replace ``metaData.message``; archived jobs'
    ``meta.json`` follows. Errors on one job are listed and the others still processed (exit status 1).
    """
    from cc_core.archive import load_clusters
    from cc_core.cli.archive import open_archive
    from cc_core.cli.importing import _run, _stderr
    from cc_core.context import PluginContext
    from cc_core.db import Database
    from cc_core.services import ClusterCatalog
    from cc_core.taggers.service import TaggerService

    st = state(ctx)
    cfg = st.validated_config(allow_missing=True)
    registry = st.registry()
    known = registry.kinds("tagger")
    unknown = [n for n in names if n not in known]
    if unknown:
        click.echo(
            f"error: unknown tagger {', '.join(unknown)} (installed: {', '.join(known) or 'none'})", err=True
        )
        raise SystemExit(2)

    async def main() -> tuple[RunReport, list[str]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        backend = open_archive(ctx, None)
        await backend.init()
        try:
            catalog = ClusterCatalog(await load_clusters(backend))
            with Database.from_config(cfg) as db:
                context = PluginContext(
                    cfg, registry, services={"db": db, "archive": backend, "clusters": catalog}
                )
                service = TaggerService(db=db, archive=backend, registry=registry, context=context)
                problems = service.problems()
                for p in problems:
                    click.echo(f"warning: rule skipped: {p}", err=True)
                console = _stderr()
                with Progress(
                    TextColumn("[bold]apply-tags"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[changed]} changed"),
                    TimeElapsedColumn(),
                    console=console,
                    disable=not console.is_terminal,
                ) as progress:
                    task = progress.add_task("jobs", total=None, changed=0)

                    def update(r: RunReport, total: int) -> None:
                        progress.update(task, completed=r.jobs, total=total, changed=r.changed)

                    report = await service.run_all(list(names) or None, progress=update)
                return report, problems
        finally:
            await backend.close()

    report, _problems = _run(main())
    for line in report.errors[:200]:
        click.echo(f"error: {line}", err=True)
    if len(report.errors) > 200:
        click.echo(f"error: … and {len(report.errors) - 200} more", err=True)
    summary = (
        f"apply-tags: {report.jobs:,} finished jobs in {report.seconds:.1f} s ({report.rate:,.0f} jobs/s): "
        f"{report.changed:,} changed, {report.tags_added:,} tags added, {report.messages:,} messages set"
    )
    if report.skipped_stop:
        summary += f"; {report.skipped_stop:,} not archived (no statistics for job classes)"
    if report.errors:
        summary += f"; {len(report.errors):,} failed"
    click.echo(summary)
    raise SystemExit(1 if report.errors else 0)


COMMANDS: list[click.Command] = [apply_tags_cmd]

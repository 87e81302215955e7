"""``clustercockpit config-reference``: the configuration reference for the installed plugins."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("config-reference")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.pass_context
def config_reference(ctx: click.Context, output: Path | None) -> None:
    """Print every config.json key with type, default and meaning (Markdown)."""
    from cc_core.cli.state import state
    from cc_core.config_reference import reference, render_markdown

    text = render_markdown(reference(state(ctx).registry()))
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(output)
    click.echo(f"wrote {output}")


COMMANDS = [config_reference]

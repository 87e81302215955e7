"""``clustercockpit config-reference``, ``rest-reference`` and ``graphql-reference``: the generated
reference pages (docs/configuration.md, docs/rest.md, docs/graphql.md)."""

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


def _emit(text: str, output: Path | None) -> None:
    """Print ``text``, or write it to ``output`` atomically (temp file + rename)."""
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(output)
    click.echo(f"wrote {output}")


@click.command("rest-reference")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.pass_context
def rest_reference(ctx: click.Context, output: Path | None) -> None:
    """Print the REST API reference from the app's OpenAPI document (Markdown)."""
    from cc_core.cli.state import state
    from cc_core.rest_reference import build, render_markdown

    _emit(render_markdown(*build(state(ctx).registry())), output)


@click.command("graphql-reference")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def graphql_reference(output: Path | None) -> None:
    """Print the GraphQL reference: endpoint, auth, limits and the schema as SDL (Markdown)."""
    from cc_core.graphql_reference import render_markdown

    _emit(render_markdown(), output)


COMMANDS = [config_reference, rest_reference, graphql_reference]

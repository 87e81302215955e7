"""The `clustercockpit` command: one subcommand per upstream `cc-backend` flag, plus plugin commands.

Upstream flag → subcommand: see the table in README.md. Global options come before the subcommand
(``clustercockpit --config site.json --loglevel info serve``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cc_core.cli.state import CLIState, run_cli_errors_as_messages

if TYPE_CHECKING:
    from cc_core.plugins import PluginRegistry

LOG_LEVELS = ("debug", "info", "warn", "err", "crit")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--config",
    "config_path",
    default="./config.json",
    show_default=True,
    envvar="CC_CONFIG",
    help="Path to config.json (upstream -config).",
)
@click.option("--env-file", default=None, help="Path to the .env file [default: next to the config].")
@click.option(
    "--loglevel",
    type=click.Choice(LOG_LEVELS),
    default="warn",
    show_default=True,
    envvar="CC_LOGLEVEL",
    help="Log level (upstream -loglevel).",
)
@click.option("--logdate", is_flag=True, help="Prefix log lines with date and time (upstream -logdate).")
@click.pass_context
def cli(ctx: click.Context, config_path: str, env_file: str | None, loglevel: str, logdate: bool) -> None:
    """ClusterCockpit: job-specific performance monitoring for HPC clusters."""
    ctx.obj = CLIState(config_path=config_path, env_file=env_file, loglevel=loglevel, logdate=logdate)
    ctx.obj.setup_logging()


def _add_core_commands() -> None:
    from cc_core.cli import (
        archive,
        database,
        demo,
        importing,
        keys,
        reference,
        server,
        setup,
        taggers,
        tasks,
        unavailable,
    )

    for module in (
        setup,
        keys,
        server,
        database,
        archive,
        importing,
        reference,
        taggers,
        tasks,
        demo,
        unavailable,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


def build_cli() -> click.Group:
    """The root group with core commands and, if plugins load, theirs (`register_cli_commands`)."""
    if not cli.commands:
        _add_core_commands()
    return cli


def add_plugin_commands(group: click.Group, registry: PluginRegistry | None = None) -> None:
    """Let each plugin add commands; a name already taken is refused with both owners named."""
    from cc_core.plugins import PluginError, make_plugin_manager

    if registry is None:
        try:
            registry = make_plugin_manager()
        except PluginError as e:  # plugins are broken: keep the core commands usable, say why
            click.echo(f"warning: plugins not loaded: {e}", err=True)
            return
    for impl in registry.pm.hook.register_cli_commands.get_hookimpls():
        dist = registry.infos[impl.plugin_name].distribution
        probe = click.Group()
        impl.function(cli=probe)
        for name, cmd in probe.commands.items():
            taken = group.commands.get(name)
            if taken is not None and getattr(taken, "_cc_placeholder", False):
                taken = None  # a "needs plugin X" placeholder gives way to the plugin's command
            if taken is not None:
                owner = getattr(group.commands[name], "_cc_distribution", "clustercockpit")
                click.echo(
                    f"warning: command {name!r} from {dist} ignored: already provided by {owner}", err=True
                )
                continue
            cmd._cc_distribution = dist  # type: ignore[attr-defined]
            group.add_command(cmd)


_plugin_commands_added = False


def main(argv: list[str] | None = None) -> None:
    global _plugin_commands_added
    group = build_cli()
    if not _plugin_commands_added:  # main() may run more than once in a process (the demo launcher)
        add_plugin_commands(group)
        _plugin_commands_added = True
    with run_cli_errors_as_messages():
        group.main(args=argv if argv is not None else sys.argv[1:], prog_name="clustercockpit")

"""Placeholders for commands that a plugin provides: without the plugin, they say which extra to install.

A plugin's command of the same name replaces the placeholder (`cc_core.cli.add_plugin_commands`), so
`clustercockpit --help` shows upstream's whole command surface on every installation.
"""

from __future__ import annotations

import click

# name: (upstream flag, extra, what it does)
FROM_PLUGINS: dict[str, tuple[str, str, str]] = {
    "sync-ldap": ("-sync-ldap", "ldap", "Synchronise users from LDAP."),
    "cleanup-checkpoints": (
        "-cleanup-checkpoints",
        "ccms",
        "Delete or archive old metric-store checkpoints.",
    ),
}


def _placeholder(name: str, flag: str, extra: str, text: str) -> click.Command:
    hint = f'pip install "clustercockpit[{extra}]"'

    @click.command(
        name=name,
        help=f"{text} (upstream {flag}) — needs a plugin: {hint}.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        click.echo(f"error: `clustercockpit {name}` needs a plugin that is not installed: {hint}", err=True)
        raise SystemExit(2)

    command._cc_placeholder = True  # type: ignore[attr-defined]
    return command


COMMANDS = [_placeholder(n, f, x, t) for n, (f, x, t) in FROM_PLUGINS.items()]

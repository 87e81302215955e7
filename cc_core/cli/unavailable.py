"""Commands whose subsystem is not built yet: they exist (so `--help` shows the whole surface) and say so.

Each entry names the upstream flag it stands for. A command moves out of this list when it works.
"""

from __future__ import annotations

import click

# name: (upstream flag, what it will do)
PENDING: dict[str, tuple[str, str]] = {
    "tasks": ("(none)", "List scheduled tasks or run one by hand."),
    "demo": ("(none)", "Generate and run the demo site."),
}


# Commands a plugin provides: without that plugin they say which extra to install. A plugin's command
# of the same name replaces the placeholder (`cc_core.cli.add_plugin_commands`).
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


def _make(name: str, flag: str, text: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{text} (upstream {flag}) — not available yet in this version.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        click.echo(f"error: `clustercockpit {name}` is not available yet in this version.", err=True)
        raise SystemExit(2)

    return command


COMMANDS = [_make(n, f, t) for n, (f, t) in PENDING.items()] + [
    _placeholder(n, f, x, t) for n, (f, x, t) in FROM_PLUGINS.items()
]

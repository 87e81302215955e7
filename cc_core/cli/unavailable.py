"""Commands whose subsystem is not built yet: they exist (so `--help` shows the whole surface) and say so.

Each entry names the upstream flag it stands for. A command moves out of this list when it works.
"""

from __future__ import annotations

import click

# name: (upstream flag, what it will do)
PENDING: dict[str, tuple[str, str]] = {
    "sync-ldap": ("-sync-ldap", "Synchronise users from LDAP (needs the auth-ldap plugin)."),
    "cleanup-checkpoints": ("-cleanup-checkpoints", "Delete or archive old metric-store checkpoints."),
    "tasks": ("(none)", "List scheduled tasks or run one by hand."),
    "demo": ("(none)", "Generate and run the demo site."),
}


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


COMMANDS = [_make(n, f, t) for n, (f, t) in PENDING.items()]

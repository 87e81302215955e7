"""The hook surface of ClusterCockpit: the only functions a plugin implements.

Every hook here is documented in its docstring (this is its reference documentation), has a section in
`docs/plugins.md` and a test; `tests/test_hookspecs_documented.py` fails when one of the three is missing.

The registration hooks are called once, when the app or the CLI is built. They hand a `register`
callable to the plugin; the plugin passes it a *class*. The config's ``kind`` then selects one of the
registered classes, which is instantiated with its validated config section. Queries are method calls on
that instance, never hook calls: hooks register, objects do the work.

A plugin module looks like this::

    from cc_core.hookspecs import hookimpl

    class MyBackend:
        kind = "my-tsdb"
        class Config(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
            url: str
        def __init__(self, config: Config, context: PluginContext) -> None: ...

    @hookimpl
    def register_metric_backends(register):
        register(MyBackend)

and is announced in its ``pyproject.toml``::

    [project.entry-points.clustercockpit]
    my-tsdb = "cc_my_tsdb"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from litestar.plugins import InitPluginProtocol

    from cc_core.context import PluginContext

PROJECT_NAME = "clustercockpit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[type], None]


@hookspec
def register_metric_backends(register: Register) -> None:
    """Register metric data backends (classes implementing `cc_core.interfaces.MetricBackend`).

    Call ``register(cls)`` once per backend class. ``cls.kind`` is the value of ``kind`` that selects it
    in a ``metric-store-external`` entry (built-in kinds: ``cc-metric-store``, ``prometheus``,
    ``influxdb``); ``cls.Config`` is a msgspec struct that validates that entry. The core routes each
    cluster (or ``<cluster>-<subcluster>``, or ``*``) to one instance, as upstream's metric dispatcher
    does. Two plugins registering the same kind is an error that names both distributions.
    """


@hookspec
def register_archive_backends(register: Register) -> None:
    """Register job-archive backends (classes implementing `cc_core.interfaces.ArchiveBackend`).

    ``cls.kind`` is matched against ``archive.kind`` in ``config.json`` (built-ins: ``file``, ``s3``);
    ``cls.Config`` validates the ``archive`` section minus the keys the core owns (``kind``,
    ``compression``, ``retention``). Backends must keep upstream's version-3 layout and object keys, so an
    archive written by Go cc-backend is read unchanged.
    """


@hookspec
def register_authenticators(register: Register) -> None:
    """Register login mechanisms (classes implementing `cc_core.interfaces.Authenticator`).

    ``cls.kind`` names the mechanism (``local``, ``jwt``, ``ldap``, ``oidc``). An authenticator is enabled
    when its section exists under ``auth`` in ``config.json`` and is built as ``cls(section, context)``;
    the built-ins ``jwt`` and ``local`` are always enabled. Enabled authenticators are tried in the order
    the config lists them, followed by ``jwt`` and ``local`` unless the config lists those too — which
    gives upstream's LDAP → JWT session → JWT cookie → local (`cc_core.auth.service`). The first whose
    ``can_login`` applies decides; ``login`` returns the `User` or raises `cc_core.auth.errors.LoginError`.
    """


@hookspec
def register_taggers(register: Register) -> None:
    """Register job taggers (classes implementing `cc_core.interfaces.Tagger`).

    A tagger declares the event it runs on (``"start"``: when a job starts; ``"stop"``: after a job was
    archived) and returns the tags (and an optional message) it wants on a job; the core writes them.
    Taggers run when ``main.enable-job-taggers`` is set, from ``clustercockpit apply-tags`` and from the
    admin UI.
    """


@hookspec
def register_schedulers(register: Register) -> None:
    """Register batch-system integrations (classes implementing `cc_core.interfaces.Scheduler`).

    A scheduler plugin feeds job starts, stops and node states into the core (what sites run
    cc-slurm-adapter for). It is enabled by an entry in the ``schedulers`` config list whose ``kind`` is
    ``cls.kind``; the core runs ``await instance.run(sink)`` as a background service and cancels it on
    shutdown.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Register periodic background services (classes implementing `cc_core.interfaces.Task`).

    ``cls.name`` is unique; ``instance.schedule`` says when it runs (an interval in seconds or a daily
    ``"HH:MM"``). The task manager runs each task, logs every outcome, never lets one failing task stop
    the others, and, with several replicas on one PostgreSQL database, runs it once per interval.
    ``clustercockpit tasks run NAME`` runs one by hand.
    """


@hookspec
def register_cli_commands(cli: click.Group) -> None:
    """Add subcommands to the ``clustercockpit`` command-line tool.

    ``cli`` is the root click group; call ``cli.add_command(cmd)`` or decorate with ``@cli.command()``.
    A command whose name is already taken is refused with both distributions named.
    """


@hookspec
def litestar_plugins(context: PluginContext) -> Sequence[InitPluginProtocol] | None:
    """Contribute to the web application: routes, middleware, templates, static files, navigation.

    Return Litestar plugins (objects with ``on_app_init(app_config)``); `cc_core.web.Contribution` is a
    ready-made one taking ``route_handlers``, ``template_dirs`` (searched before the core's, so a plugin
    can override any template, Datasette-style), ``static_dirs``, ``nav_items`` and ``login_buttons``
    (buttons under the login form that start another login flow, e.g. OpenID Connect). ``context`` gives
    validated config sections and core services; it is never the raw global config.
    """


def hook_names() -> list[str]:
    """All hook names declared in this module, for the plugin listing and the documentation test."""
    return sorted(
        name for name, obj in globals().items() if callable(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
    )

"""Plugin discovery and the registry of backend classes.

Plugins are found through the ``clustercockpit`` entry-point group and loaded on purpose (by
`create_app` and the CLI), never at import. ``CC_LOAD_PLUGINS=a,b`` loads only the named entry points
(an empty value loads none); ``CC_DISABLE_PLUGINS=a,b`` skips them. Built-in modules (`DEFAULT_PLUGINS`)
go through the same door as external plugins.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from importlib_metadata import entry_points

from cc_core import hookspecs
from cc_core.config import KIND_EXTRAS, ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "clustercockpit"
# Built-in modules registered like any external plugin. Later subsystems add theirs here
# (the app and job-class taggers, the core tasks).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "cc_core.builtins.auth_local",
    "cc_core.builtins.auth_jwt",
    "cc_core.builtins.tasks",
    "cc_core.builtins.taggers",
)
CORE_DISTRIBUTION = "clustercockpit"

# Registry categories: hook that fills it, and the human name used in messages.
CATEGORIES: dict[str, tuple[str, str]] = {
    "metric": ("register_metric_backends", "metric backend"),
    "archive": ("register_archive_backends", "archive backend"),
    "authenticator": ("register_authenticators", "authenticator"),
    "tagger": ("register_taggers", "tagger"),
    "scheduler": ("register_schedulers", "scheduler"),
    "task": ("register_tasks", "task"),
}


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid."""


@dataclass(slots=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    kinds: dict[str, list[str]] = field(default_factory=dict)
    builtin: bool = False


@dataclass(slots=True)
class Registered:
    cls: type
    plugin: str
    distribution: str


def _split(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {p.strip() for p in value.split(",") if p.strip()}


class PluginRegistry:
    """The loaded plugins and every class they registered, by category and kind."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
        self.pm = pm
        self.infos = infos
        self._classes: dict[str, dict[str, Registered]] = {c: {} for c in CATEGORIES}
        for category, (hook_name, label) in CATEGORIES.items():
            self._collect(category, hook_name, label)

    @property
    def hook(self) -> Any:
        """Typed-enough access to ``pm.hook`` for the non-registration hooks."""
        return self.pm.hook

    def _collect(self, category: str, hook_name: str, label: str) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name
            info = self.infos[plugin_name]

            def register(cls: type, _info: PluginInfo = info, _name: str = plugin_name) -> None:
                key = getattr(cls, "name" if category == "task" else "kind", None)
                if not isinstance(key, str) or not key:
                    attr = "name" if category == "task" else "kind"
                    raise PluginError(
                        f"{_info.distribution}: {label} class {cls.__qualname__} has no `{attr}` string"
                    )
                existing = self._classes[category].get(key)
                if existing is not None:
                    raise PluginError(
                        f"{label} kind {key!r} is registered twice: by {existing.distribution} "
                        f"({existing.cls.__module__}.{existing.cls.__qualname__}) and by "
                        f"{_info.distribution} ({cls.__module__}.{cls.__qualname__}); "
                        "uninstall one of them or disable it with CC_DISABLE_PLUGINS"
                    )
                self._classes[category][key] = Registered(cls, _name, _info.distribution)
                _info.kinds.setdefault(category, []).append(key)

            impl.function(register=register)

    def kinds(self, category: str) -> list[str]:
        return sorted(self._classes[category])

    def get(self, category: str, kind: str) -> Registered | None:
        return self._classes[category].get(kind)

    def classes(self, category: str) -> dict[str, type]:
        return {k: r.cls for k, r in self._classes[category].items()}

    def resolve(self, category: str, kind: str, *, path: str = "", file: str | None = None) -> type:
        """The class for ``kind``, or a `ConfigError` that says which package to install."""
        reg = self._classes[category].get(kind)
        if reg is not None:
            return reg.cls
        label = CATEGORIES[category][1]
        extra = KIND_EXTRAS.get(kind)
        installed = ", ".join(self.kinds(category)) or "none"
        if extra:
            hint = f'install it with: pip install "clustercockpit[{extra}]"'
        else:
            hint = "no known plugin provides it; check the spelling or install the third-party plugin"
        raise ConfigError(
            f"unknown {label} kind {kind!r}: {hint} (installed: {installed})", file=file, path=path
        )


def _entry_points() -> Iterable[Any]:
    return entry_points(group=ENTRY_POINT_GROUP)


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    extra_plugins: Iterable[ModuleType | object] = (),
    environ: dict[str, str] | None = None,
) -> PluginRegistry:
    """Build the plugin manager: built-ins, then installed entry points (filtered by the env vars)."""
    env = os.environ if environ is None else environ
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    from cc_core import __version__

    for modname in DEFAULT_PLUGINS:
        mod = __import__(modname, fromlist=["_"])
        name = modname.rsplit(".", 1)[-1]
        pm.register(mod, name=name)
        infos[name] = PluginInfo(name, CORE_DISTRIBUTION, __version__, modname, builtin=True)

    if load_entrypoints:
        only = _split(env.get("CC_LOAD_PLUGINS"))
        disabled = _split(env.get("CC_DISABLE_PLUGINS")) or set()
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist is not None else "?"
            if only is not None and ep.name not in only and dist not in only:
                continue
            if ep.name in disabled or dist in disabled:
                continue
            if ep.name in infos:
                raise PluginError(
                    f"plugin name {ep.name!r} is used twice: by {infos[ep.name].distribution} and by {dist}"
                )
            try:
                mod = ep.load()
            except Exception as e:  # a broken plugin must say who it is
                raise PluginError(f"cannot load plugin {ep.name!r} from {dist}: {e}") from e
            pm.register(mod, name=ep.name)
            version = ep.dist.version if ep.dist is not None else "?"
            infos[ep.name] = PluginInfo(ep.name, dist, version, ep.value)

    for i, plugin in enumerate(extra_plugins):
        name = getattr(plugin, "__name__", f"extra-{i}")
        pm.register(plugin, name=name)
        infos[name] = PluginInfo(name, "<in-process>", "", name)

    pm.check_pending()
    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [] if not h.name.startswith("_"))
    return PluginRegistry(pm, infos)


def describe(registry: PluginRegistry) -> list[dict[str, Any]]:
    """The plugin listing shared by `clustercockpit plugins` and `GET /api/plugins`."""
    return [
        {
            "name": i.name,
            "distribution": i.distribution,
            "version": i.version,
            "module": i.module,
            "builtin": i.builtin,
            "hooks": i.hooks,
            "kinds": {k: sorted(v) for k, v in i.kinds.items()},
        }
        for i in sorted(registry.infos.values(), key=lambda i: (not i.builtin, i.name))
    ]


class PendingBackend:
    """Base for a plugin class whose implementation has not landed yet.

    It registers its kind and validates its config section (so configs are checked today), but
    refuses to be instantiated with a message that says so, instead of pretending to work.
    """

    kind: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PluginError(
            f"{type(self).__module__.split('.')[0]}: the {self.kind!r} backend is not available yet in "
            "this version"
        )

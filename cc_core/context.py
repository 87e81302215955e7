"""What a plugin instance is handed: its validated config section and the core services it may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cc_core.config import Config
    from cc_core.plugins import PluginRegistry


@dataclass
class PluginContext:
    """Passed to plugin constructors and to `litestar_plugins`.

    Plugins read their own section with `section()`; they never see the global config or `os.environ`
    (secrets reach them through ``{"$env": ...}`` in their section). ``services`` holds the core objects
    a plugin may use (``"db"``, ``"archive"``, ``"metrics"``, ``"users"`` …) once they are built.
    """

    _config: Config
    registry: PluginRegistry
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """Directory of `config.json`: relative paths in a section are relative to it."""
        return self._config.base_dir

    def section(self, path: str) -> Any:
        """The validated ``Config`` struct of the section at JSON ``path`` (e.g. ``"$.auth.ldap"``)."""
        return self._config.plugin_configs.get(path)

    def sections(self, prefix: str) -> dict[str, Any]:
        """All validated sections whose path starts with ``prefix`` (e.g. ``"$.metric-store-external"``)."""
        return {p: c for p, c in self._config.plugin_configs.items() if p.startswith(prefix)}

    def secret(self, name: str) -> str | None:
        """An upstream environment secret a plugin owns (e.g. ``LDAP_ADMIN_PASSWORD``), from ``.env`` or
        the process environment; ``None`` when unset. For new settings prefer ``{"$env": ...}``."""
        return self._config.secret(name)

    @property
    def dev(self) -> bool:
        return bool(self.services.get("dev", False))

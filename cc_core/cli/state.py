"""Shared state of one CLI invocation: where the config is, and lazily the config and plugins."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cc_core.config import Config
    from cc_core.plugins import PluginRegistry

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "err": logging.ERROR,
    "crit": logging.CRITICAL,
}


@dataclass
class CLIState:
    config_path: str
    env_file: str | None
    loglevel: str = "warn"
    logdate: bool = False
    _config: Config | None = field(default=None, repr=False)
    _registry: PluginRegistry | None = field(default=None, repr=False)

    def setup_logging(self) -> None:
        fmt = "%(levelname)s %(name)s: %(message)s"
        if self.logdate:
            fmt = "%(asctime)s " + fmt
        logging.basicConfig(level=LEVELS[self.loglevel], format=fmt, force=True)

    def config(self, *, allow_missing: bool = False) -> Config:
        """The loaded config; ``allow_missing`` gives defaults when the file does not exist."""
        if self._config is None:
            from cc_core.config import load_config

            path: str | None = self.config_path
            if allow_missing and not Path(self.config_path).exists():
                path = None
            self._config = load_config(path, env_file=self.env_file)
        return self._config

    def registry(self) -> PluginRegistry:
        if self._registry is None:
            from cc_core.plugins import make_plugin_manager

            self._registry = make_plugin_manager()
        return self._registry

    def validated_config(self, *, allow_missing: bool = False) -> Config:
        cfg = self.config(allow_missing=allow_missing)
        cfg.validate_plugins(self.registry())
        return cfg


@contextlib.contextmanager
def run_cli_errors_as_messages() -> Iterator[None]:
    """Known errors become one `error:` line and exit status 1, never a traceback."""
    from cc_core.config import ConfigError
    from cc_core.plugins import PluginError

    try:
        yield
    except (ConfigError, PluginError) as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None


def state(ctx: click.Context) -> CLIState:
    obj = ctx.find_object(CLIState)
    assert obj is not None
    return obj

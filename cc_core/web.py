"""How plugins contribute to the web app (`litestar_plugins` hook), and the core's template setup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

import web as web_package

WEB_DIR = Path(web_package.__file__).parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
VENDOR_DIR = WEB_DIR / "vendor"


@dataclass(frozen=True, slots=True)
class NavItem:
    """A navigation entry; shown to users whose auth level is at least ``min_role``."""

    title: str
    href: str
    icon: str = "puzzle"
    min_role: str = "user"


@dataclass(frozen=True, slots=True)
class LoginButton:
    """A button under the login form that starts another way to log in (e.g. OpenID Connect).

    ``href`` is followed with ``?redirect=<target>`` added when the login page has a target, so a flow
    that keeps it can return the user where they were going.
    """

    title: str
    href: str
    icon: str = "box-arrow-in-right"


@dataclass(eq=False)
class Contribution(InitPluginProtocol):
    """A ready-made Litestar plugin for the common contributions.

    ``template_dirs`` are searched before the core's templates, so a plugin can add pages and override
    any core template by giving a file the same name. ``static_dirs`` maps a URL prefix under
    ``/static/`` to a directory; ``login_buttons`` appear under the login form.
    """

    route_handlers: Sequence[Any] = ()
    template_dirs: Sequence[Path] = ()
    static_dirs: dict[str, Path] = field(default_factory=dict)
    nav_items: Sequence[NavItem] = ()
    login_buttons: Sequence[LoginButton] = ()
    middleware: Sequence[Any] = ()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(self.route_handlers)
        app_config.middleware.extend(self.middleware)
        return app_config

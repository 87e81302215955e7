"""Fixtures of the metric-data tests: a real site (config, keys, database, archive with the contract's
cluster) and the in-process app on it, with a blocking portal into the app's event loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar.testing import TestClient

from cc_core.testing.metric_contract import make_cluster
from cc_core.testing.site import Site, make_site

T = TypeVar("T")


@dataclass
class App:
    """The running app: HTTP client, its services, and a way to run coroutines on its loop."""

    client: TestClient[Any]
    site: Site

    @property
    def services(self) -> Any:
        return self.client.app.state["services"]

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``await fn(*args, **kwargs)`` on the app's event loop."""

        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.client.blocking_portal.call(run)

    def auth(self, roles: tuple[str, ...] = ("api",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.site.token(roles)}"}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site", [make_cluster()])


def open_app(site: Site) -> TestClient[Any]:
    from cc_core.app import create_app
    from cc_core.plugins import make_plugin_manager

    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "metric-ccms,archive-fs"})
    return TestClient(create_app(site.config(), registry=registry), raise_server_exceptions=False)


@pytest.fixture
def app(site: Site) -> Iterator[App]:
    with open_app(site) as client:
        yield App(client, site)

"""Fixtures of the task tests: a real site (SQLite database, file archive with the contract's cluster)
opened the way `clustercockpit tasks run` opens it, so built-in tasks run against real storage."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cc_core.testing.metric_contract import make_cluster
from cc_core.testing.site import Site, make_site


def postgres_url(request: pytest.FixtureRequest) -> str:
    try:
        return request.getfixturevalue("postgresql_url")
    except pytest.FixtureLookupError:
        if os.environ.get("CI") == "true":
            pytest.fail("service: the postgresql_url fixture (cc_core.testing) is required under CI")
        pytest.skip("service: the postgresql_url fixture (cc_core.testing) is not available")


def task_site(root: Path, **config: Any) -> Site:
    """A site without a metric store (tasks that need one are tested with the app in tests/metrics)."""
    return make_site(root, [make_cluster()], config={"metric-store": None, **config})


@asynccontextmanager
async def open_services(site: Site) -> AsyncIterator[Any]:
    """`CoreServices` of the site with the task manager in ``services.context.services["tasks"]``."""
    from cc_core.archive import load_clusters
    from cc_core.context import PluginContext
    from cc_core.plugins import make_plugin_manager
    from cc_core.services import CoreServices
    from cc_core.tasks import create_task_manager

    config = site.config()
    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "archive-fs"})
    config.validate_plugins(registry)
    context = PluginContext(config, registry)
    services = CoreServices.open(config, registry, context)
    try:
        await services.archive.init()
        services.clusters.by_name = await load_clusters(services.archive)
        context.services["tasks"] = create_task_manager(services)
        yield services
    finally:
        await services.close()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return task_site(tmp_path / "site")

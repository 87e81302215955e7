"""UI tests: one live server per module (`cc_core.testing.ui`), Chromium from the `chromium` fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cc_core.testing.ui import UISite, make_ui_site


@pytest.fixture(scope="module")
def ui_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISite]:
    site = make_ui_site(tmp_path_factory.mktemp("ui-site"))
    yield site
    site.stop()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``$CC_SCREENSHOT_DIR``, else ``test-artifacts/screenshots`` of the checkout (git-ignored; CI keeps it)."""
    raw = os.environ.get("CC_SCREENSHOT_DIR")
    path = Path(raw) if raw else Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path

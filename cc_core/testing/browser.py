"""Chromium through Playwright's sync API, for web UI tests (the system browser, never downloaded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._process import require_binary, require_module

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SERVICE = "chromium"
CHROMIUM = "/usr/bin/chromium"

#: Headless flags that also keep Chromium from talking to Google (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """A headless Chromium ``Browser``; tests open their own contexts/pages and close them."""
    executable = require_binary(SERVICE, CHROMIUM, "chromium")
    require_module(SERVICE, "playwright", "playwright")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()

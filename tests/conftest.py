"""Fixtures shared by the core tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture
def shared_reference() -> Path:
    """Upstream's reference data in ../shared; skipped on a user's clone, but required under CI."""
    if not SHARED_REFERENCE.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared: {SHARED_REFERENCE} is missing (CI requires it)")
        pytest.skip(f"shared: {SHARED_REFERENCE} not present (a clone without ../shared)")
    return SHARED_REFERENCE

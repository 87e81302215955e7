"""Fixtures of the archive tests: the small fixture archive (always) and upstream's reference archive."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

FIXTURE_ARCHIVE = Path(__file__).resolve().parent.parent / "fixtures" / "job-archive"


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy an archive and make it writable (the shared reference files are read-only)."""
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


@pytest.fixture
def fixture_archive(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/job-archive (3 clusters, 2 emmy jobs, one with cut-down data)."""
    return copy_tree(FIXTURE_ARCHIVE, tmp_path / "fixture-archive")


@pytest.fixture
def reference_archive(shared_reference: Path, tmp_path: Path) -> Path:
    """A writable copy of ../shared/reference/job-archive (skipped without ../shared, failed under CI)."""
    return copy_tree(shared_reference / "job-archive", tmp_path / "reference-archive")

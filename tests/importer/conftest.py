"""Fixtures of the importer tests: sites (config + archive + SQLite database) and a CLI runner."""

from __future__ import annotations

import json
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cc_core.cli import build_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
IMPORTER_FIXTURES = FIXTURES / "importer"
FIXTURE_ARCHIVE = FIXTURES / "job-archive"


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a tree and make it writable (the shared reference files are read-only)."""
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


@dataclass
class Site:
    """A config.json naming an SQLite database and a file archive, all under one temporary directory."""

    dir: Path
    archive: Path
    db: Path

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    def cli(self, *args: str) -> tuple[int, str, str]:
        """Run ``clustercockpit --config <site> ARGS``; returns (exit code, stdout, stderr)."""
        r = CliRunner().invoke(build_cli(), ["--config", str(self.config), *args])
        if r.exception and not isinstance(r.exception, SystemExit):
            raise r.exception
        return r.exit_code, r.stdout, r.stderr


def make_site(root: Path, archive: Path, *, validate: bool = False) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    site = Site(root, archive, root / "job.db")
    site.config.write_text(
        json.dumps(
            {
                "main": {"db": str(site.db), "validate": validate},
                "archive": {"kind": "file", "path": str(archive)},
            }
        )
    )
    return site


def fritz_archive(root: Path, cluster_json: Path = IMPORTER_FIXTURES / "cluster-fritz.json") -> Path:
    """An empty version-3 archive holding only upstream's importer fritz cluster config."""
    (root / "fritz").mkdir(parents=True)
    (root / "version.txt").write_text("3\n")
    shutil.copyfile(cluster_json, root / "fritz" / "cluster.json")
    return root


@pytest.fixture
def fritz_site(tmp_path: Path) -> Site:
    """A site whose archive has upstream's importer fritz cluster and no jobs (upstream's test setup)."""
    return make_site(tmp_path / "site", fritz_archive(tmp_path / "archive"))

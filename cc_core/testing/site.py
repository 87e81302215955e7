"""A throwaway ClusterCockpit site for integration tests: ``config.json``, ``.env`` with a fresh Ed25519
key pair, an initialised SQLite database and a job archive holding the given clusters' ``cluster.json``.

The same directory serves the main server (`create_app(site.config())`) and the standalone metric store
(``clustercockpit --config <site>/config.json metric-store serve``), so tests exercise the real
configuration path, not hand-built objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cc_core.schema.cluster import Cluster


@dataclass
class Site:
    """Paths and secrets of a site made by `make_site`."""

    root: Path
    public_key: str
    private_key: str

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def environ(self) -> dict[str, str]:
        return {
            "JWT_PUBLIC_KEY": self.public_key,
            "JWT_PRIVATE_KEY": self.private_key,
            "SESSION_KEY": "x" * 32,
        }

    def config(self) -> Any:
        """The loaded `cc_core.config.Config` (secrets from `environ`, not the process environment)."""
        from cc_core.config import load_config

        return load_config(self.config_path, environ=self.environ)

    def spawn(
        self, *args: str, log: Path, env: dict[str, str] | None = None, loglevel: str = "info"
    ) -> subprocess.Popen[bytes]:
        """``clustercockpit --config <site> --loglevel <loglevel> <args>`` as a real process (the
        site's secrets and ``env`` over this process's environment; output appended to ``log``)."""
        environ = {**os.environ, **self.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        cmd = [sys.executable, "-m", "cc_core", "--config", str(self.config_path), "--loglevel", loglevel]
        with log.open("ab") as out:
            return subprocess.Popen([*cmd, *args], stdout=out, stderr=subprocess.STDOUT, env=environ)

    def token(self, roles: Sequence[str] = ("api",), username: str = "machine") -> str:
        """An API token signed with the site's key."""
        from cc_core.auth.jwt_tokens import load_private_key, mint

        return mint(load_private_key(self.private_key), username, list(roles), max_age_seconds=3600)


def make_site(root: Path, clusters: Sequence[Cluster], *, config: dict[str, Any] | None = None) -> Site:
    """Write the site below ``root``. ``config`` sections are merged over the defaults (embedded metric
    store with its checkpoints in ``var/checkpoints``, file archive in ``var/job-archive``)."""
    from cc_core.cli.keys import generate_keypair
    from cc_core.db import initialise_database
    from cc_core.schema.cluster import encode_cluster

    root.mkdir(parents=True, exist_ok=True)
    archive = root / "var" / "job-archive"
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "version.txt").write_text("3\n")
    for c in clusters:
        (archive / c.name).mkdir(exist_ok=True)
        (archive / c.name / "cluster.json").write_bytes(encode_cluster(c))
    doc: dict[str, Any] = {
        "main": {"addr": "127.0.0.1:0", "db": str(root / "var" / "job.db")},
        "archive": {"kind": "file", "path": str(archive)},
        "metric-store": {
            "retention-in-memory": "48h",
            "memory-cap": 0,
            "checkpoints": {"directory": str(root / "var" / "checkpoints")},
        },
    }
    for key, value in (config or {}).items():
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    (root / "config.json").write_text(json.dumps(doc, indent=2))
    pub, priv = generate_keypair()
    (root / ".env").write_text(
        f'JWT_PUBLIC_KEY="{pub}"\nJWT_PRIVATE_KEY="{priv}"\nSESSION_KEY="{"s" * 32}"\n'
    )
    initialise_database(root / "var" / "job.db")
    return Site(root, pub, priv)

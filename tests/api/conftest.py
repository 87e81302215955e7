"""A real server for the REST API tests: a site directory (config, .env secrets, SQLite database, a copy of
the fixture job archive with upstream's fritz/alex/emmy cluster.json), served by uvicorn on a free port
in a thread; clients talk plain HTTP to it.

``make_server(tmp_path, main={...}, auth={...}, env={...})`` builds one; the module-scoped ``server``
fixture is the default site shared by the read-mostly tests. Session cookies for a role are made with
the site's own SESSION_KEY (`ApiSite.session`), tokens with its private key (`ApiSite.token`); the login
tests go through ``POST /login`` for real.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cc_core.auth.jwt_tokens import load_private_key, mint
from cc_core.auth.session import SessionCodec, decode_session_key
from cc_core.auth.user import AuthSource, User
from cc_core.cli.keys import generate_keypair
from cc_core.testing import free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SESSION_KEY = base64.b64encode(b"s" * 32).decode()
HS_KEY = base64.b64encode(b"h" * 64).decode()

# The roles of the access matrix: name → roles.
ROLES: dict[str, list[str]] = {
    "api": ["api"],
    "user": ["user"],
    "manager": ["manager"],
    "support": ["support"],
    "admin": ["admin"],
    "admin+api": ["admin", "api"],
}


@dataclass
class ApiSite:
    root: Path
    base_url: str
    public_key: str
    private_key: str
    env: dict[str, str]
    app: Any = None
    server: Any = None
    thread: Any = None
    clients: list[httpx.Client] = field(default_factory=list)
    # One connection pool for every client of this site: creating an httpx client costs ~20 ms (its
    # TLS context), which would dominate tests that make one client per role.
    transport: httpx.HTTPTransport = field(default_factory=lambda: httpx.HTTPTransport(verify=False))

    @property
    def db_path(self) -> Path:
        return self.root / "job.db"

    @property
    def services(self) -> Any:
        return self.app.state["services"]

    def token(self, roles: list[str], username: str = "alice", **kw: Any) -> str:
        return mint(load_private_key(self.private_key), username, roles, max_age_seconds=3600, **kw)

    def session(self, roles: list[str], username: str = "alice", projects: list[str] | None = None) -> str:
        codec = SessionCodec(decode_session_key(self.env.get("SESSION_KEY", SESSION_KEY)), 3600)
        return codec.encode(
            User(username, roles=roles, projects=projects or [], auth_source=AuthSource.LOCAL)
        )

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=30,
            follow_redirects=False,
            transport=self.transport,
            **kw,
        )

    def api(self, roles: list[str] | None = None, username: str = "alice") -> httpx.Client:
        """A client sending an API token (default roles: ``api``)."""
        return self.client(headers={"X-Auth-Token": self.token(roles or ["api"], username)})

    def browser(self, roles: list[str], username: str = "alice") -> httpx.Client:
        """A client with a login session for ``roles``."""
        c = self.client()
        c.cookies.set("session", self.session(roles, username))
        return c

    def run_db(self, fn: Any) -> Any:
        return self.services.db.read_sync(fn)

    def stop(self) -> None:
        self.transport.close()
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)


def write_site(
    root: Path,
    *,
    main: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    env: dict[str, str | None] | None = None,
) -> tuple[Path, dict[str, str], str, str]:
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "archive"
    if not archive.exists():
        shutil.copytree(FIXTURES / "job-archive", archive)
    cfg = {
        "main": {"db": str(root / "job.db"), **(main or {})},
        "auth": {"jwts": {"max-age": "1h"}, **(auth or {})},
        "archive": {"kind": "file", "path": str(archive)},
        "metric-store": {"retention-in-memory": "48h", "memory-cap": 0},
    }
    (root / "config.json").write_text(json.dumps(cfg))
    pub, priv = generate_keypair()
    environ = {"JWT_PUBLIC_KEY": pub, "JWT_PRIVATE_KEY": priv, "SESSION_KEY": SESSION_KEY}
    for k, v in (env or {}).items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v
    return root / "config.json", environ, pub, priv


def make_server(
    root: Path,
    *,
    main: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    env: dict[str, str | None] | None = None,
    dev: bool = False,
) -> ApiSite:
    """Build the app for a fresh site and serve it with uvicorn on 127.0.0.1 (a thread)."""
    from cc_core.app import create_app
    from cc_core.config import load_config
    from cc_core.plugins import make_plugin_manager

    cfg_path, environ, pub, priv = write_site(root, main=main, auth=auth, env=env)
    config = load_config(cfg_path, environ=environ)
    app = create_app(config, registry=make_plugin_manager(environ={}), dev=dev)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return ApiSite(root, f"http://127.0.0.1:{port}", pub, priv, environ, app, server, thread)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiSite]:
    site = make_server(tmp_path_factory.mktemp("site"))
    yield site
    site.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ApiSite]:
    """A server of its own, for tests that change what others read."""
    site = make_server(tmp_path / "site")
    yield site
    site.stop()


def start_payload(job_id: int = 123000, start: int = 1649723812, **over: Any) -> dict[str, Any]:
    """Upstream's example start_job body (configs/startJobPayload.json), with overrides."""
    body: dict[str, Any] = {
        "cluster": "fritz",
        "jobId": job_id,
        "jobState": "running",
        "numAcc": 0,
        "numHwthreads": 72,
        "numNodes": 1,
        "partition": "main",
        "requestedMemory": 128000,
        "resources": [{"hostname": "f0726"}],
        "startTime": start,
        "subCluster": "main",
        "submitTime": start,
        "user": "k106eb10",
        "project": "k106eb",
        "walltime": 86400,
        "metaData": {"jobName": "ams_pipeline", "jobScript": "#!/bin/bash\n./mybinary\n"},
    }
    body.update(over)
    return body

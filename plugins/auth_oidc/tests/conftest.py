"""A real ClusterCockpit server with ``auth.oidc`` against a real OpenID provider (oidc-provider-mock).

`serve_site` writes a site (config.json with ``auth.oidc``, .env, SQLite, file archive), builds the app
with the installed plugins and serves it with uvicorn on a free 127.0.0.1 port in a thread. `Flow`
walks the login through plain HTTP the way a browser does, one step at a time, so the negative tests
can tamper with exactly one thing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from cc_core.testing import free_port
from cc_core.testing.oidc import OIDCProvider
from cc_core.testing.site import make_site

CLIENT_ID = "cc-backend"
CLIENT_SECRET = "cc-oidc-secret"


@dataclass
class OidcSite:
    root: Path
    base_url: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def users(self) -> Any:
        return self.app.state["services"].db.users

    @property
    def authenticator(self) -> Any:
        return next(a for a in self.app.state["login"].authenticators if a.kind == "oidc")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=False, trust_env=False)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve_site(root: Path, auth: dict[str, Any], env: dict[str, str] | None = None) -> OidcSite:
    from cc_core.app import create_app
    from cc_core.config import load_config
    from cc_core.plugins import make_plugin_manager

    site = make_site(root, [], config={"metric-store": None, "auth": {"jwts": {"max-age": "1h"}, **auth}})
    environ = {**site.environ, "OID_CLIENT_ID": CLIENT_ID, "OID_CLIENT_SECRET": CLIENT_SECRET, **(env or {})}
    app = create_app(load_config(site.config_path, environ=environ), registry=make_plugin_manager(environ={}))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True, name="cc-oidc-test-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return OidcSite(root, f"http://127.0.0.1:{port}", app, server, thread)


def oidc_section(provider: OIDCProvider | str, **extra: Any) -> dict[str, Any]:
    issuer = provider if isinstance(provider, str) else provider.issuer
    return {"oidc": {"provider": issuer, **extra}}


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, oidc_provider: OIDCProvider) -> Iterator[OidcSite]:
    """The shared server: ``auth.oidc`` with sync and update on login, then the built-in local login."""
    s = serve_site(
        tmp_path_factory.mktemp("oidc-site"),
        oidc_section(oidc_provider, **{"sync-user-on-login": True, "update-user-on-login": True}),
    )
    yield s
    s.stop()


class Flow:
    """One login attempt through plain HTTP: the app's client keeps the app's cookies."""

    def __init__(self, site: OidcSite) -> None:
        self.site = site
        self.app = site.client()
        self.provider = httpx.Client(timeout=30, follow_redirects=False, trust_env=False)
        self.last_set_cookies: list[str] = []

    def close(self) -> None:
        self.app.close()
        self.provider.close()

    def start(self, redirect: str | None = None) -> str:
        """``GET /oidc-login``: the provider's authorization URL (the flow cookies are kept)."""
        resp = self.app.get("/oidc-login", params={"redirect": redirect} if redirect else None)
        assert resp.status_code == 302, resp.text
        self.last_set_cookies = resp.headers.get_list("set-cookie")
        return resp.headers["location"]

    def cookies(self) -> dict[str, str]:
        """The app's cookies this browser holds now."""
        return {c.name: c.value or "" for c in self.app.cookies.jar}

    def authorize(self, auth_url: str, sub: str) -> str:
        """The user picks ``sub`` on the provider's form: the callback URL it redirects to."""
        resp = self.provider.post(auth_url, data={"sub": sub})
        assert resp.status_code == 302, resp.text
        return resp.headers["location"]

    def callback(self, callback_url: str, cookies: dict[str, str] | None = None) -> httpx.Response:
        """Follow the provider's redirect back; ``cookies`` replaces this browser's cookies for it."""
        parts = urlsplit(callback_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.site.base_url
        if cookies is None:
            return self.app.get(parts.path, params=parse_qs(parts.query))
        header = "; ".join(f"{k}={v}" for k, v in cookies.items())
        with self.site.client() as other:
            return other.get(
                parts.path, params=parse_qs(parts.query), headers={"cookie": header} if header else {}
            )

    def login(self, sub: str, redirect: str | None = None) -> httpx.Response:
        return self.callback(self.authorize(self.start(redirect), sub))


@pytest.fixture
def flow(site: OidcSite) -> Iterator[Flow]:
    f = Flow(site)
    yield f
    f.close()

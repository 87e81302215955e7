"""Global HTTP behaviour over real HTTP semantics: headers, CSRF, CORS, error bodies, API token auth."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Request, get, post
from litestar.testing import TestClient

from cc_core.app import create_app
from cc_core.auth.jwt_tokens import load_private_key, mint
from cc_core.cli.keys import generate_keypair
from cc_core.config import load_config
from cc_core.hookspecs import hookimpl
from cc_core.plugins import make_plugin_manager
from cc_core.web import Contribution

PUB, PRIV = generate_keypair()


# The test routes are public (no login): these tests are about global HTTP behaviour, not auth.
PUBLIC = {"auth_group": "public"}


@get("/api/boom", sync_to_thread=False, opt=PUBLIC)
def boom() -> None:
    raise RuntimeError("secret internals /etc/passwd")


@get("/page/boom", sync_to_thread=False, opt=PUBLIC)
def page_boom() -> None:
    raise RuntimeError("secret internals")


@post("/api/echo-size", opt=PUBLIC)
async def echo_size(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"size": len(await request.body())}


class TestRoutes:
    @hookimpl
    def litestar_plugins(self, context):  # type: ignore[no-untyped-def]
        return [Contribution(route_handlers=[boom, page_boom, echo_size])]


def make_client(tmp_path: Path, main: dict[str, Any] | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "config.json").write_text(
        json.dumps({"main": main or {}, "auth": {"jwts": {"max-age": "1h"}}})
    )
    environ = (
        {"JWT_PUBLIC_KEY": PUB, "JWT_PRIVATE_KEY": PRIV, "SESSION_KEY": "k" * 32} if env is None else env
    )
    cfg = load_config(tmp_path / "config.json", environ=environ)
    registry = make_plugin_manager(environ={}, extra_plugins=[TestRoutes()])
    return TestClient(create_app(cfg, registry=registry), raise_server_exceptions=False)


def token(roles: list[str], **kw: Any) -> str:
    return mint(load_private_key(PRIV), "alice", roles, max_age_seconds=3600, **kw)


EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
}


def test_security_headers_on_every_kind_of_response(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        for path in ("/healthz", "/api/nope", "/nope", "/static/cc.css", "/api/plugins"):
            r = c.get(path)
            for k, v in EXPECTED_HEADERS.items():
                assert r.headers.get(k) == v, (path, k)
            assert "strict-transport-security" not in r.headers


def test_hsts_only_on_https_and_forwarded_proto_only_from_trusted_proxy(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.get("/healthz", headers={"x-forwarded-proto": "https"})
        assert "strict-transport-security" not in r.headers  # untrusted client cannot claim https
    with make_client(tmp_path, main={"trusted-proxies": ["127.0.0.0/8", "testclient"]}) as c:
        c.base_url = c.base_url.copy_with(scheme="https")
        r = c.get("/healthz")
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_csrf_guard_blocks_cross_site_state_changes(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.post("/api/echo-size", content=b"x", headers={"sec-fetch-site": "cross-site"})
        assert r.status_code == 403
        assert r.text == "cross-site request blocked"
        assert r.headers["x-frame-options"] == "DENY"
        r = c.post("/api/echo-size", content=b"xy", headers={"sec-fetch-site": "same-origin"})
        assert r.status_code == 201 and r.json() == {"size": 2}
        # Safe methods are never blocked.
        assert c.get("/healthz", headers={"sec-fetch-site": "cross-site"}).status_code == 200


def test_cors_allows_any_origin_but_never_credentials(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.options(
            "/healthz",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "GET",
                "access-control-request-headers": "Authorization",
            },
        )
        assert r.status_code in (200, 204)
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        r = c.get("/healthz", headers={"origin": "https://evil.example"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize("prefix", ["/api/", "/userapi/", "/frontend/", "/config/"])
def test_unknown_api_paths_answer_upstreams_json_404(tmp_path: Path, prefix: str) -> None:
    with make_client(tmp_path) as c:
        r = c.get(prefix + "does/not/exist")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"status": "Resource not found", "error": "the requested endpoint does not exist"}


def test_unknown_page_answers_html_404(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.get("/monitoring/nothing", headers={"accept": "text/html"})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "404 Not Found" in r.text


def test_unhandled_errors_answer_500_without_traceback(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.get("/api/boom")
        assert r.status_code == 500
        assert r.json() == {
            "status": "Internal Server Error",
            "error": "internal server error (details are in the server log)",
        }
        r = c.get("/page/boom", headers={"accept": "text/html"})
        assert r.status_code == 500 and "secret internals" not in r.text and "Traceback" not in r.text


def test_oversized_body_is_413(tmp_path: Path) -> None:
    with make_client(tmp_path, main={"max-body-size": 1000}) as c:
        r = c.post("/api/echo-size", content=b"x" * 5000)
        assert r.status_code == 413
        assert r.json()["status"] == "Request Entity Too Large"


def test_api_plugins_requires_admin_api_token(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.get("/api/plugins")
        assert r.status_code == 401
        assert r.json()["status"] == "Unauthorized"
        r = c.get("/api/plugins", headers={"X-Auth-Token": token(["api"])})
        assert r.status_code == 403 and r.json()["status"] == "Forbidden"
        r = c.get("/api/plugins", headers={"Authorization": "Bearer " + token(["admin"])})
        assert r.status_code == 403
        r = c.get("/api/plugins", headers={"Authorization": "Bearer " + token(["admin", "api"])})
        assert r.status_code == 200
        names = {p["name"]: p for p in r.json()}
        assert names["metric-ccms"]["distribution"] == "clustercockpit-metric-ccms"
        assert names["metric-ccms"]["enabled"] == ["$.metric-store"]


def _hs256(claims: dict[str, Any], key: bytes) -> str:
    """Hand-made HS256 token (pyjwt refuses to sign with a PEM key; an attacker would not)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def _forged(alg: str, key: Any) -> str:
    return jwt.encode(
        {"sub": "alice", "roles": ["admin", "api"], "iat": int(time.time())}, key, algorithm=alg
    )


def test_bad_tokens_are_401(tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate()
    pub_raw = base64.b64decode(PUB)
    pem = (
        load_private_key(PRIV)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    none_token = jwt.encode({"sub": "alice", "roles": ["admin", "api"]}, None, algorithm="none")
    expired = mint(
        load_private_key(PRIV), "alice", ["admin", "api"], max_age_seconds=60, now=time.time() - 3600
    )
    bad = {
        "other key": _forged("EdDSA", other),
        "alg none": none_token,
        "HS256 with public key": _hs256({"sub": "alice", "roles": ["admin", "api"]}, pub_raw),
        "HS256 with PEM public key": _hs256({"sub": "alice", "roles": ["admin", "api"]}, pem),
        "expired": expired,
        "garbage": "not.a.token",
    }
    with make_client(tmp_path) as c:
        for what, tok in bad.items():
            r = c.get("/api/plugins", headers={"X-Auth-Token": tok})
            assert r.status_code == 401, what
            assert set(r.json()) == {"status", "error"}, what


def test_ip_allow_list_uses_socket_address_not_headers(tmp_path: Path) -> None:
    tok = token(["admin", "api"])
    with make_client(tmp_path, main={"api-allowed-ips": ["10.1.2.3"]}) as c:
        r = c.get("/api/plugins", headers={"X-Auth-Token": tok, "X-Real-Ip": "10.1.2.3"})
        assert r.status_code == 403  # a client cannot claim an allowed address
    with make_client(
        tmp_path, main={"api-allowed-ips": ["10.1.2.3"], "trusted-proxies": ["testclient"]}
    ) as c:
        r = c.get("/api/plugins", headers={"X-Auth-Token": tok, "X-Forwarded-For": "10.1.2.3"})
        assert r.status_code in (200, 403)

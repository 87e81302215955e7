"""Logins over HTTP: local accounts, sessions, logout, redirects, rate limit, cross-login tokens (HS256/HS512,
JWT cookie with a trusted issuer), validate-user, disabled authentication (contract §6.3, §15)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cc_core.auth.jwt_tokens import load_private_key, mint
from cc_core.cli.keys import generate_keypair
from cc_core.config import ConfigError

from .conftest import HS_KEY, ApiSite, make_server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = make_server(tmp_path_factory.mktemp("login"), main={"session-max-age": "2h"})
    users = s.services.db.users
    users.add_sync("alice", password="alice-pw", roles=["user"], projects=[])
    users.add_sync("root", password="root-pw", roles=["admin"])
    users.add_sync("tokenonly", password=None, roles=["api"])
    for i in range(3):
        users.add_sync(f"limited{i}", password="right-pw", roles=["user"])
    for i in range(len(REDIRECTS)):
        users.add_sync(f"redir{i}", password="redir-pw", roles=["user"])
    yield s
    s.stop()


def _cookie_attrs(set_cookie: str) -> dict[str, str]:
    parts = [p.strip() for p in set_cookie.split(";")]
    out = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        out[k.lower()] = v
    return out


def test_local_login_sets_a_hardened_session_cookie_and_opens_pages(site: ApiSite) -> None:
    c = site.client()
    r = c.post(
        "/login", data={"username": "alice", "password": "alice-pw", "redirect": "/monitoring/jobs/?x=1"}
    )
    assert r.status_code == 302
    assert r.headers["location"] == "/monitoring/jobs/?x=1"
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("session=")
    attrs = _cookie_attrs(set_cookie)
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax" and attrs["path"] == "/"
    assert attrs["max-age"] == "7200"  # main.session-max-age
    assert "secure" not in attrs  # plain HTTP from an untrusted peer
    page = c.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "ClusterCockpit" in page.text
    # The session works for the frontend API and GraphQL, not for /api (token only).
    assert (
        c.post(
            "/frontend/configuration/", data={"key": "plot_list_selectedMetrics", "value": '["a"]'}
        ).status_code
        == 200
    )
    q = c.post("/query", json={"query": '{ user(username: "alice") { username } }'})
    assert q.status_code == 200 and q.json()["data"]["user"]["username"] == "alice"
    assert c.get("/api/jobs/").status_code == 401


def test_pages_need_a_login_and_answer_the_login_form(site: ApiSite) -> None:
    c = site.client()
    r = c.get("/", headers={"accept": "text/html"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert 'action="/login"' in r.text and 'name="redirect" value="/"' in r.text
    assert c.get("/healthz").status_code == 200
    assert c.get("/login").status_code == 200
    assert c.get("/static/cc.css").status_code == 200
    assert c.get("/imprint").status_code == 200 and c.get("/privacy").status_code == 200
    assert c.post("/query", json={"query": "{ clusters { name } }"}).status_code == 401


def test_failed_logins_say_the_same_for_unknown_users_and_wrong_passwords(site: ApiSite) -> None:
    c = site.client()
    wrong = c.post("/login", data={"username": "root", "password": "nope"})
    unknown = c.post("/login", data={"username": "nobody", "password": "nope"})
    no_pw = c.post("/login", data={"username": "tokenonly", "password": ""})
    for r in (wrong, unknown, no_pw):
        assert r.status_code == 401
        assert "invalid username or password" in r.text
        assert "set-cookie" not in r.headers


REDIRECTS = [
    ("https://evil.example/", "/"),
    ("//evil.example", "/"),
    ("/\\evil.example", "/"),
    ("/ok", "/ok"),
    ("", "/"),
]


@pytest.mark.parametrize(("i", "target", "expected"), [(i, t, e) for i, (t, e) in enumerate(REDIRECTS)])
def test_login_redirects_only_to_relative_paths(site: ApiSite, i: int, target: str, expected: str) -> None:
    r = site.client().post(
        "/login", data={"username": f"redir{i}", "password": "redir-pw", "redirect": target}
    )
    assert r.status_code == 302 and r.headers["location"] == expected


def test_login_rate_limit_per_address_and_username(site: ApiSite) -> None:
    c = site.client()
    for _ in range(5):
        assert c.post("/login", data={"username": "limited0", "password": "wrong"}).status_code == 401
    r = c.post("/login", data={"username": "limited0", "password": "right-pw"})
    assert r.status_code == 401 and "too many login attempts" in r.text
    assert c.post("/login", data={"username": "limited1", "password": "right-pw"}).status_code == 302


def test_logout_expires_the_session(site: ApiSite) -> None:
    c = site.client()
    assert c.post("/login", data={"username": "alice", "password": "alice-pw"}).status_code == 302
    r = c.post("/logout")
    assert r.status_code == 200 and "Logout successful" in r.text
    attrs = _cookie_attrs(r.headers["set-cookie"])
    assert attrs["max-age"] == "0"
    assert c.get("/", headers={"accept": "text/html"}).status_code == 401


def test_cross_site_login_post_is_blocked(site: ApiSite) -> None:
    r = site.client().post(
        "/login", data={"username": "alice", "password": "alice-pw"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 403 and r.text == "cross-site request blocked"


def test_secure_cookie_behind_a_trusted_https_proxy(tmp_path: Path) -> None:
    s = make_server(tmp_path / "tls", main={"trusted-proxies": ["127.0.0.1/32"]})
    try:
        s.services.db.users.add_sync("bob", password="bob-pw", roles=["user"])
        r = s.client().post(
            "/login", data={"username": "bob", "password": "bob-pw"}, headers={"x-forwarded-proto": "https"}
        )
        assert r.status_code == 302
        assert "secure" in _cookie_attrs(r.headers["set-cookie"])
        assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        s.stop()


def _hs(claims: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_jwt_login_with_hs256_and_hs512(tmp_path: Path) -> None:
    s = make_server(tmp_path / "hs", env={"CROSS_LOGIN_JWT_HS512_KEY": HS_KEY})
    key = base64.b64decode(HS_KEY)
    try:
        now = int(time.time())
        for alg in ("HS256", "HS512"):
            tok = _hs(
                {"sub": "carol", "roles": ["user", "bogus"], "projects": ["p1"], "exp": now + 60}, key, alg
            )
            c = s.client()
            r = c.get("/jwt-login", params={"login-token": tok, "redirect": "/x"})
            assert r.status_code == 302 and r.headers["location"] == "/x", r.text
            me = c.post("/query", json={"query": "{ clusters { name } }"})
            assert me.status_code == 200
        c = s.client()
        tok = _hs({"sub": "carol", "roles": ["admin"]}, key)
        assert c.post("/jwt-login", headers={"authorization": f"Bearer {tok}"}).status_code == 302
        refused = {
            "wrong key": _hs({"sub": "carol", "roles": ["admin"]}, b"w" * 48),
            "expired": _hs({"sub": "carol", "roles": ["admin"], "exp": now - 3600}, key),
            "alg none": jwt.encode({"sub": "carol", "roles": ["admin"]}, None, algorithm="none"),
            "EdDSA": s.token(["admin"], "carol"),
            "no roles": _hs({"sub": "carol"}, key),
        }
        for what, tok in refused.items():
            r = s.client().get("/jwt-login", params={"login-token": tok})
            assert r.status_code == 401, what
            assert "set-cookie" not in r.headers, what
    finally:
        s.stop()


@pytest.mark.parametrize("value", ["", "   ", base64.b64encode(b"short").decode(), "not base64 !!"])
def test_unusable_hs_key_refuses_to_start(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="CROSS_LOGIN_JWT_HS512_KEY"):
        make_server(tmp_path / "bad", env={"CROSS_LOGIN_JWT_HS512_KEY": value})


def test_jwt_cookie_cross_login_with_trusted_issuer(tmp_path: Path) -> None:
    cross_pub, cross_priv = generate_keypair()
    s = make_server(
        tmp_path / "cookie",
        auth={"jwts": {"max-age": "1h", "cookie-name": "cc-jwt", "trusted-issuer": "portal.example"}},
        env={"CROSS_LOGIN_JWT_PUBLIC_KEY": cross_pub},
    )
    try:
        cross = load_private_key(cross_priv)
        now = int(time.time())
        good = jwt.encode(
            {"sub": "dave", "roles": ["user"], "iss": "portal.example", "exp": now + 60},
            cross,
            algorithm="EdDSA",
        )
        c = s.client()
        c.cookies.set("cc-jwt", good)
        r = c.get("/jwt-login")
        assert r.status_code == 302, r.text
        cookies = r.headers.get_list("set-cookie")
        assert any(x.startswith("session=") for x in cookies)
        assert any(x.startswith("cc-jwt=") and "max-age=0" in x.lower() for x in cookies)  # consumed
        own = mint(load_private_key(s.private_key), "erin", ["user"], max_age_seconds=60)  # no iss: our key
        c2 = s.client()
        c2.cookies.set("cc-jwt", own)
        assert c2.get("/jwt-login").status_code == 302
        refused = {
            "other issuer": jwt.encode(
                {"sub": "x", "roles": ["admin"], "iss": "evil"}, cross, algorithm="EdDSA"
            ),
            "trusted issuer, wrong key": jwt.encode(
                {"sub": "x", "roles": ["admin"], "iss": "portal.example"},
                Ed25519PrivateKey.generate(),
                algorithm="EdDSA",
            ),
            "HS256": _hs({"sub": "x", "roles": ["admin"], "iss": "portal.example"}, b"k" * 48),
        }
        for what, tok in refused.items():
            c3 = s.client()
            c3.cookies.set("cc-jwt", tok)
            assert c3.get("/jwt-login").status_code == 401, what
    finally:
        s.stop()


def test_validate_user_takes_roles_from_the_database(tmp_path: Path) -> None:
    s = make_server(tmp_path / "vu", auth={"jwts": {"max-age": "1h", "validate-user": True}})
    try:
        s.services.db.users.add_sync("frank", password=None, roles=["api"])
        # The token claims admin+api; the database says api only.
        c = s.api(["admin", "api"], username="frank")
        assert c.get("/api/jobs/").status_code == 200
        assert c.get("/api/users/").status_code == 403
        assert s.api(["api"], username="ghost").get("/api/jobs/").status_code == 401  # unknown user
    finally:
        s.stop()


def test_disable_authentication_acts_as_anonymous_admin(tmp_path: Path) -> None:
    s = make_server(tmp_path / "noauth", main={"disable-authentication": True}, env={"SESSION_KEY": None})
    try:
        c = s.client()
        assert c.get("/api/jobs/").status_code == 200
        assert c.get("/api/users/").status_code == 200
        assert c.get("/config/roles/").json() == ["api", "user", "manager", "support", "admin"]
        assert c.get("/", headers={"accept": "text/html"}).status_code == 200
        r = c.post("/query", json={"query": "{ clusters { name } }"})
        assert r.status_code == 200
        assert c.get("/login").status_code == 200 and "anonymous" in c.get("/login").text
    finally:
        s.stop()


def test_missing_session_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SESSION_KEY is not set"):
        make_server(tmp_path / "nokey", env={"SESSION_KEY": None})
    with pytest.raises(ConfigError, match="too short"):
        make_server(tmp_path / "shortkey", env={"SESSION_KEY": base64.b64encode(b"x" * 8).decode()})


def test_tampered_or_foreign_session_cookie_is_no_session(site: ApiSite) -> None:
    c = site.client()
    forged = site.session(["admin"], "mallory")
    body, sig = forged.split(".")
    c.cookies.set("session", body + "." + sig[::-1])
    assert c.get("/config/users/").status_code == 401
    from cc_core.auth.session import SessionCodec
    from cc_core.auth.user import User

    other = SessionCodec(b"o" * 32, 3600).encode(User("mallory", ["admin"]))
    c.cookies.set("session", other)
    assert c.get("/config/users/").status_code == 401


def test_login_page_escapes_the_redirect_value(site: ApiSite) -> None:
    """Stored/reflected XSS (§15.6): whatever ends up in a page is escaped by the templates."""
    r = site.client().get("/login", params={"redirect": '/x"><script>alert(1)</script>'})
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    assert "&#34;&gt;&lt;script&gt;" in r.text or "&quot;&gt;&lt;script&gt;" in r.text


def test_json_roundtrip_of_login_info(site: ApiSite) -> None:
    """The graphql user query sees the session's user (roles from the session)."""
    c = site.browser(["admin"], "root")
    r = c.post("/query", json={"query": '{ user(username: "alice") { username name } }'})
    assert r.status_code == 200, r.text
    assert json.loads(r.text)["data"]["user"]["username"] == "alice"


def test_jwt_login_syncs_or_validates_users(tmp_path: Path) -> None:
    key = base64.b64decode(HS_KEY)
    s = make_server(
        tmp_path / "sync",
        auth={"jwts": {"max-age": "1h", "sync-user-on-login": True}},
        env={"CROSS_LOGIN_JWT_HS512_KEY": HS_KEY},
    )
    try:
        tok = _hs(
            {"sub": "newcomer", "roles": ["user"], "projects": ["p1"], "name": {"values": ["New", "Comer"]}},
            key,
        )
        assert s.client().get("/jwt-login", params={"login-token": tok}).status_code == 302
        stored = s.services.db.users.get_sync("newcomer")
        assert stored is not None and stored.roles == ["user"] and stored.name == "New Comer"
    finally:
        s.stop()
    s = make_server(
        tmp_path / "validate",
        auth={"jwts": {"max-age": "1h", "validate-user": True}},
        env={"CROSS_LOGIN_JWT_HS512_KEY": HS_KEY},
    )
    try:
        s.services.db.users.add_sync("known", password=None, roles=["support"])
        c = s.client()
        tok = _hs({"sub": "known", "roles": ["admin"]}, key)  # roles in the token do not count
        assert c.get("/jwt-login", params={"login-token": tok}).status_code == 302
        assert c.get("/config/roles/").status_code == 403  # support, not admin
        assert (
            s.client()
            .get("/jwt-login", params={"login-token": _hs({"sub": "stranger", "roles": ["admin"]}, key)})
            .status_code
            == 401
        )
    finally:
        s.stop()

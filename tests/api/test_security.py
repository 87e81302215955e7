"""Contract §15, one test per requirement, over HTTP against the real server. Each fails without its fix:
the comment names what upstream (or a naive implementation) does instead."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cc_core.auth.jwt_tokens import TokenError, load_hmac_key, load_private_key, mint, verify_hs
from cc_core.config import ConfigError

from .conftest import ApiSite, make_server, start_payload


def _job_count(site: ApiSite) -> int:
    from sqlalchemy import text

    return int(site.run_db(lambda c: c.execute(text("SELECT count(*) FROM job")).scalar_one()))


# §15.1 -------------------------------------------------------------------------------------------


def test_15_1_empty_hmac_key_is_refused(tmp_path: Path) -> None:
    """Upstream < 1.5.4 verified login tokens with an empty key: anyone could forge an admin login."""
    with pytest.raises(TokenError):
        verify_hs(_hand_hs256({"sub": "admin", "roles": ["admin"]}, b""), b"")
    with pytest.raises(ValueError, match="empty"):
        load_hmac_key("")
    with pytest.raises(ConfigError):
        make_server(tmp_path / "s", env={"CROSS_LOGIN_JWT_HS512_KEY": ""})


def _hand_hs256(claims: dict[str, Any], key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(hmac.new(key, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


# §15.2 -------------------------------------------------------------------------------------------


def test_15_2_metric_names_in_json_paths_are_validated(server: ApiSite) -> None:
    """Upstream pasted metric names into JSON-path SQL; a quote must be refused, not executed."""
    c = server.browser(["admin"])
    query = '{ jobs(filter: [{metricStats: [{metricName: "flops_any_avg\') OR 1=1 --", range: {from: 0, to: 1}}]}]) { count } }'
    r = c.post("/query", json={"query": query})
    assert r.status_code == 200
    body = r.json()
    assert body.get("data") is None or body["data"].get("jobs") is None
    message = json.dumps(body["errors"])
    assert "metricName" in message and "invalid" in message


# §15.4, §15.5 ------------------------------------------------------------------------------------


def test_15_4_cors_never_allows_credentials(server: ApiSite) -> None:
    r = server.client().options(
        "/api/jobs/",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "GET",
            "access-control-request-headers": "Authorization",
        },
    )
    assert r.headers.get("access-control-allow-origin") == "*"
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize("path", ["/api/jobs/", "/login", "/config/users/", "/nope"])
def test_15_5_security_headers_everywhere(server: ApiSite, path: str) -> None:
    r = server.client().get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert (
        r.headers["content-security-policy"] == "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
    )
    assert "strict-transport-security" not in r.headers  # plain HTTP, no trusted proxy


# §15.6 -------------------------------------------------------------------------------------------


def test_15_6_job_text_is_escaped_in_pages(server: ApiSite) -> None:
    """metaData.message is shown in the UI: it must be escaped (upstream rendered it as HTML)."""
    c = server.api()
    db_id = c.post("/api/jobs/start_job/", json=start_payload(job_id=6060)).json()["id"]
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    assert (
        c.patch(f"/api/jobs/edit_meta/{db_id}", json={"key": "message", "value": payload}).status_code == 200
    )
    job = c.get(f"/api/jobs/{db_id}").json()["Meta"]
    assert job["metaData"]["message"] == payload  # stored as given; escaping is the page's job
    env = server.app.template_engine.engine
    html = env.from_string("<p>{{ job.metaData.message }}</p>").render(job=job)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    # And a value reflected into a real page (the login form's redirect) is escaped too.
    r = server.client().get("/login", params={"redirect": '/"><script>alert(3)</script>'})
    assert "<script>alert(3)" not in r.text


# §15.7 -------------------------------------------------------------------------------------------


def test_15_7_projects_and_tag_scopes_are_bound_parameters(fresh: ApiSite) -> None:
    """Manager projects and tag scopes come from LDAP/OIDC: as SQL text they would open every job."""
    api = fresh.api()
    for i, project in enumerate(["pa", "pb", "pc"]):
        assert (
            api.post(
                "/api/jobs/start_job/", json=start_payload(job_id=7000 + i, project=project, user=f"u{i}")
            ).status_code
            == 201
        )
    evil_project = "x') OR 1=1 OR ('1'='1"
    c = fresh.client()
    c.cookies.set("session", fresh.session(["manager"], "mgr", projects=[evil_project]))
    r = c.post("/query", json={"query": "{ jobs { count items { project } } }"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["jobs"]["count"] == 0
    # A username used as a tag scope: an injected scope must not reveal other scopes' tags.
    admin = fresh.api(["admin", "api"])
    job = api.get("/api/jobs/").json()["jobs"][0]["id"]
    assert (
        admin.post(
            f"/api/jobs/tag_job/{job}", json=[{"type": "secret", "name": "s", "scope": "admin"}]
        ).status_code
        == 200
    )
    sneaky = fresh.client()
    sneaky.cookies.set("session", fresh.session(["user"], "x' OR tag_scope='admin"))
    r = sneaky.post("/query", json={"query": "{ tags { name scope } }"})
    assert r.status_code == 200
    assert all(t["scope"] != "admin" for t in r.json()["data"]["tags"])
    # The free-text `shared` filter (interpolated upstream) is checked and bound.
    r = fresh.browser(["admin"]).post(
        "/query", json={"query": """{ jobs(filter: [{shared: "none' OR '1'='1"}]) { count } }"""}
    )
    assert r.status_code == 200 and r.json().get("errors")


# §15.8 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{"page": 0}, {"page": -3}, {"items-per-page": 0}, {"items-per-page": -1}])
def test_15_8_non_positive_pages_are_400(server: ApiSite, params: dict[str, int]) -> None:
    r = server.api().get("/api/jobs/", params=params)
    assert r.status_code == 400 and set(r.json()) == {"status", "error"}


def test_15_8_graphql_page_zero_is_an_error(server: ApiSite) -> None:
    r = server.browser(["admin"]).post(
        "/query", json={"query": "{ jobs(page: {itemsPerPage: 10, page: 0}) { count } }"}
    )
    assert r.json().get("errors")


# §15.9 -------------------------------------------------------------------------------------------


def test_15_9_cross_site_state_changes_are_blocked(fresh: ApiSite) -> None:
    before = _job_count(fresh)
    r = fresh.api().post(
        "/api/jobs/start_job/", json=start_payload(job_id=9090), headers={"sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 403 and r.text == "cross-site request blocked"
    assert _job_count(fresh) == before
    r = fresh.browser(["admin"]).post(
        "/config/users/",
        data={"username": "evil", "password": "x", "role": "admin"},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403
    assert fresh.services.db.users.get_sync("evil") is None


# §15.11 ------------------------------------------------------------------------------------------


def test_15_11_session_key_is_mandatory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SESSION_KEY"):
        make_server(tmp_path / "s", env={"SESSION_KEY": None})


# §15.12 ------------------------------------------------------------------------------------------


def test_15_12_login_rate_limit_and_relative_redirects(fresh: ApiSite) -> None:
    fresh.services.db.users.add_sync("victim", password="correct horse", roles=["admin"])
    c = fresh.client()
    for _ in range(5):
        c.post("/login", data={"username": "victim", "password": "guess"})
    r = c.post("/login", data={"username": "victim", "password": "correct horse"})
    assert r.status_code == 401 and "too many login attempts" in r.text
    fresh.services.db.users.add_sync("other", password="pw", roles=["user"])
    r = c.post(
        "/login", data={"username": "other", "password": "pw", "redirect": "https://evil.example/phish"}
    )
    assert r.status_code == 302 and r.headers["location"] == "/"


def test_15_12_forwarded_headers_cannot_dodge_the_rate_limit(fresh: ApiSite) -> None:
    """Without trusted proxies the socket address counts: a new X-Forwarded-For per try changes nothing."""
    fresh.services.db.users.add_sync("target", password="pw", roles=["user"])
    c = fresh.client()
    for i in range(5):
        c.post(
            "/login",
            data={"username": "target", "password": "no"},
            headers={"x-forwarded-for": f"10.0.0.{i}"},
        )
    r = c.post(
        "/login", data={"username": "target", "password": "pw"}, headers={"x-forwarded-for": "10.9.9.9"}
    )
    assert r.status_code == 401 and "too many" in r.text


# §15.14 ------------------------------------------------------------------------------------------


def test_15_14_machine_state_path_components_are_validated(tmp_path: Path) -> None:
    state = tmp_path / "state"
    site = make_server(tmp_path / "s", main={"machine-state-dir": str(state)})
    try:
        c = site.api()
        for cluster, host in [
            ("..", "x"),
            ("fritz", ".."),
            ("fritz", "..%2F..%2Fetc"),
            ("a%5C..", "b"),
            ("fritz", "a..b"),
        ]:
            r = c.put(f"/api/machine_state/{cluster}/{host}", content=b'{"pwned": true}')
            assert r.status_code in (400, 404), (cluster, host, r.status_code)
        written = [p for p in tmp_path.rglob("*") if p.is_file() and b"pwned" in p.read_bytes()]
        assert written == []
    finally:
        site.stop()


# §15.15 ------------------------------------------------------------------------------------------


def test_15_15_api_allow_list_uses_the_socket_address(tmp_path: Path) -> None:
    site = make_server(tmp_path / "s", main={"api-allowed-ips": ["10.1.2.3"]})
    try:
        c = site.api()
        for header in ({"x-real-ip": "10.1.2.3"}, {"x-forwarded-for": "10.1.2.3"}):
            assert c.get("/api/jobs/", headers=header).status_code == 403
    finally:
        site.stop()
    site = make_server(
        tmp_path / "t", main={"api-allowed-ips": ["10.1.2.3"], "trusted-proxies": ["127.0.0.1"]}
    )
    try:
        c = site.api()
        assert c.get("/api/jobs/", headers={"x-forwarded-for": "10.1.2.3"}).status_code == 200
        assert c.get("/api/jobs/", headers={"x-forwarded-for": "10.9.9.9"}).status_code == 403
    finally:
        site.stop()


# §15.16 and token checks -------------------------------------------------------------------------


def test_15_16_tokens_expire(server: ApiSite) -> None:
    key = load_private_key(server.private_key)
    expired = mint(key, "alice", ["api"], max_age_seconds=60, now=time.time() - 3600)
    no_exp_but_old = jwt.encode(
        {"sub": "alice", "roles": ["api"], "iat": int(time.time()) - 7200}, key, algorithm="EdDSA"
    )
    for tok in (expired, no_exp_but_old):
        r = server.client().get("/api/jobs/", headers={"X-Auth-Token": tok})
        assert r.status_code == 401, r.text
    assert (
        server.client().get("/api/jobs/", headers={"X-Auth-Token": server.token(["api"])}).status_code == 200
    )


def test_forged_tokens_are_401(server: ApiSite) -> None:
    pub_raw = base64.b64decode(server.public_key)
    pem = (
        load_private_key(server.private_key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"sub": "alice", "roles": ["admin", "api"], "iat": int(time.time())}
    forged = {
        "other key": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "HS256 with the raw public key": _hand_hs256(claims, pub_raw),
        "HS256 with the PEM public key": _hand_hs256(claims, pem),
        "HS256 with the base64 public key": _hand_hs256(claims, server.public_key.encode()),
    }
    for what, tok in forged.items():
        for header in ({"X-Auth-Token": tok}, {"Authorization": f"Bearer {tok}"}):
            r = server.client().get("/api/jobs/", headers=header)
            assert r.status_code == 401, what
            assert r.json()["status"] == "Unauthorized"


def test_no_traceback_and_json_errors_for_malformed_requests(server: ApiSite) -> None:
    c = server.api()
    for method, path, kw in [
        ("POST", "/api/jobs/start_job/", {"content": b"\x00\xff" * 10}),
        ("PATCH", "/api/jobs/edit_meta/1", {"content": b"[" * 10000}),
        ("POST", "/api/jobs/tag_job/1", {"content": b'[{"type": "a", "name": "\\ud800"}]'}),
        ("GET", "/api/jobs/%ff%fe", {}),
        ("DELETE", "/api/jobs/delete_job_before/99999999999999999999999", {}),
    ]:
        r = c.request(method, path, **kw)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert "Traceback" not in r.text and set(r.json()) == {"status", "error"}

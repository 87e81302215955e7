"""The OpenID Connect login through plain HTTP against the live app and the real provider: the good path,
roles/projects/sync, and every way a login must be refused (never a 500)."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cc_auth_oidc import provider as provider_module
from conftest import CLIENT_ID, Flow, OidcSite, oidc_section, serve_site

from cc_core.auth.user import AuthSource
from cc_core.config import ConfigError
from cc_core.testing import free_port
from cc_core.testing.oidc import OIDCProvider, serve_oidc_provider

pytestmark = pytest.mark.service("oidc")


def _session(site: OidcSite, resp: httpx.Response):  # type: ignore[no-untyped-def]
    value = resp.cookies.get("session")
    assert value, f"no session cookie in {resp.headers.get_list('set-cookie')}"
    return site.app.state["session_codec"].decode(value)


def _jwt_sub(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _message(resp: httpx.Response) -> str:
    assert resp.headers["content-type"].startswith("text/html"), resp.text
    start = resp.text.index('id="login-message">') + len('id="login-message">')
    return resp.text[start : resp.text.index("</div>", start)]


def test_login_page_has_the_plugins_button(site: OidcSite) -> None:
    with site.client() as c:
        page = c.get("/login", params={"redirect": "/monitoring/jobs/?state=running"})
    assert page.status_code == 200
    assert 'href="/oidc-login?redirect=/monitoring/jobs/%3Fstate%3Drunning"' in page.text
    assert "Log in with OpenID Connect" in page.text


def test_login_sets_the_signed_session_and_syncs_the_user(site: OidcSite, flow: Flow) -> None:
    auth_url = flow.start(redirect="/monitoring/jobs/?state=running")
    query = parse_qs(urlsplit(auth_url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == [CLIENT_ID] and query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == [f"{site.base_url}/oidc-callback"]
    cookie_header = ", ".join(flow.last_set_cookies)
    assert "HttpOnly" in cookie_header and "SameSite=lax" in cookie_header and "Max-Age=3600" in cookie_header

    resp = flow.callback(flow.authorize(auth_url, "alice"))
    assert resp.status_code == 307
    assert resp.headers["location"] == "/monitoring/jobs/?state=running"
    user = _session(site, resp)
    assert (user.username, user.roles, user.projects) == ("alice", ["user"], ["p1"])
    assert user.auth_source == AuthSource.OIDC and user.name == "Alice Anderson"
    set_cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith("session="))
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    assert all(n not in flow.app.cookies for n in ("oidc_state", "oidc_verifier", "oidc_nonce"))

    # The session opens pages that need one; sync-user-on-login put alice in the database.
    assert flow.app.get("/").status_code == 200
    token = flow.app.get("/frontend/jwt/")
    assert token.status_code == 200 and _jwt_sub(token.text) == "alice"
    stored = site.app.state["services"].db.users.get_sync("alice")
    assert stored.auth_source == AuthSource.OIDC and stored.roles == ["user"] and stored.projects == ["p1"]


def test_roles_from_realm_and_resource_access_and_update_on_login(
    site: OidcSite, oidc_provider: OIDCProvider
) -> None:
    oidc_provider.set_user(
        "u-7f3a",
        {
            "preferred_username": "carol",
            "realm_access": {"roles": ["support", "offline_access"]},
            "resource_access": {"clustercockpit": {"roles": ["manager"]}, "other": {"roles": ["Admin", 7]}},
            "projects": ["a", "b"],
        },
    )
    f = Flow(site)
    try:
        user = _session(site, f.login("u-7f3a"))
    finally:
        f.close()
    assert user.username == "carol"
    assert user.roles == ["admin", "support", "manager"]
    assert user.projects == ["a", "b"]

    # No role we know -> [user]; update-user-on-login rewrites the stored user.
    oidc_provider.set_user(
        "u-7f3a", {"preferred_username": "carol", "realm_access": {"roles": ["uma_authorization"]}}
    )
    f = Flow(site)
    try:
        user = _session(site, f.login("u-7f3a"))
    finally:
        f.close()
    assert user.roles == ["user"] and user.projects == []
    stored = site.app.state["services"].db.users.get_sync("carol")
    assert stored.roles == ["user"] and stored.projects == [] and stored.auth_source == AuthSource.OIDC


def test_a_password_never_logs_in_an_oidc_account(site: OidcSite) -> None:
    with site.client() as c:
        resp = c.post("/login", data={"username": "alice", "password": "anything"})
    assert resp.status_code == 401 and "session" not in resp.cookies


def test_forged_state_is_refused(site: OidcSite, flow: Flow) -> None:
    callback = flow.authorize(flow.start(), "alice")
    forged = callback.replace("state=", "state=forged")
    resp = flow.callback(forged)
    assert resp.status_code == 400
    assert "state mismatch" in _message(resp)
    assert "session" not in resp.cookies


def test_callback_without_a_started_login_is_refused(site: OidcSite, flow: Flow) -> None:
    callback = flow.authorize(flow.start(), "alice")
    resp = flow.callback(callback, cookies={})
    assert resp.status_code == 400
    assert "no OpenID Connect login was started" in _message(resp)


def test_replayed_code_is_refused(site: OidcSite, flow: Flow) -> None:
    callback = flow.authorize(flow.start(), "alice")
    cookies = flow.cookies()
    assert flow.callback(callback).status_code == 307
    replay = flow.callback(callback, cookies=cookies)  # same code, same (stolen) flow cookies
    assert replay.status_code == 400
    assert "refused the authorization code" in _message(replay)
    assert "session" not in replay.cookies


def test_wrong_nonce_is_refused(site: OidcSite, flow: Flow) -> None:
    callback = flow.authorize(flow.start(), "alice")
    cookies = {**flow.cookies(), "oidc_nonce": "not-the-nonce-sent"}
    resp = flow.callback(callback, cookies=cookies)
    assert resp.status_code == 400
    assert "nonce mismatch" in _message(resp)
    assert "session" not in resp.cookies


def test_cancelled_at_the_provider_is_refused(site: OidcSite, flow: Flow) -> None:
    denied = flow.provider.post(flow.start(), data={"action": "deny"})
    assert denied.status_code == 302
    resp = flow.callback(denied.headers["location"])
    assert resp.status_code == 401
    assert "did not log you in (access_denied)" in _message(resp)
    crafted = flow.app.get("/oidc-callback", params={"error": "<script>alert(1)</script>"})
    assert crafted.status_code == 400 and "<script>" not in crafted.text


def test_id_token_checks(site: OidcSite, oidc_provider: OIDCProvider) -> None:
    """Tokens the real provider issued, checked by the plugin's verifier directly: wrong audience,
    tampered payload, expiry (the clock moved past ``exp``)."""
    import anyio

    f = Flow(site)
    try:
        # The app's own authorization request, re-addressed to another client of the same provider.
        auth_url = f.start().replace(f"client_id={CLIENT_ID}", "client_id=someone-else")
        nonce = parse_qs(urlsplit(auth_url).query)["nonce"][0]
        code = parse_qs(urlsplit(f.authorize(auth_url, "alice")).query)["code"][0]
        tokens = httpx.post(
            f"{oidc_provider.issuer}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{site.base_url}/oidc-callback",
                "client_id": "someone-else",
                "client_secret": "x",
            },
            trust_env=False,
        ).json()
    finally:
        f.close()
    raw = tokens["id_token"]
    verifier = site.authenticator.provider

    async def check(token: str, **kw: int) -> str:
        try:
            await verifier.verify_id_token(token, nonce, **kw)
        except provider_module.LoginRefused as e:
            return str(e)
        return "accepted"

    assert "aud mismatch" in anyio.run(check, raw)
    head, payload, sig = raw.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["aud"] = CLIENT_ID
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "signature is invalid" in anyio.run(check, f"{head}.{forged}.{sig}")
    assert "malformed" in anyio.run(check, "not.a.jwt")
    later = int(claims["exp"]) + provider_module.LEEWAY + 1
    assert "expired" in anyio.run(lambda: check(raw, now=later))


def test_expired_id_token_is_refused(tmp_path: Path) -> None:
    """A provider whose tokens are already expired when issued: the callback refuses with 400."""
    with serve_oidc_provider(token_max_age=timedelta(seconds=-600)) as stale:
        s = serve_site(tmp_path / "site", oidc_section(stale))
        f = Flow(s)
        try:
            resp = f.login("alice")
            assert resp.status_code == 400
            assert "ID token has expired" in _message(resp)
            assert "session" not in resp.cookies
        finally:
            f.close()
            s.stop()


class _Warnings(logging.Handler):
    """Warnings of the plugin's loggers (the app replaces the root handlers, so caplog sees nothing)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _Warnings:
        logging.getLogger("cc_auth_oidc").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("cc_auth_oidc").removeHandler(self)


def test_provider_down_at_start_then_up(tmp_path: Path) -> None:
    """The app starts while the provider is down; logins say so (503 + warning) and work once it is up;
    a provider lost in the middle of a login is again a 503, never a 500."""
    port = free_port()
    s = serve_site(tmp_path / "site", oidc_section(f"http://127.0.0.1:{port}"))
    try:
        with s.client() as c, _Warnings() as warned:
            resp = c.get("/oidc-login")
            assert resp.status_code == 503
            assert "identity provider is unavailable" in _message(resp)
            assert any("unavailable" in m and f"127.0.0.1:{port}" in m for m in warned.messages)
            assert c.get("/login").status_code == 200
        with serve_oidc_provider(port=port):
            time.sleep(provider_module.RETRY_INTERVAL)
            f = Flow(s)
            try:
                assert f.login("alice").status_code == 307
                callback = f.authorize(f.start(), "admin")
                cookies = f.cookies()
            finally:
                f.close()
        f = Flow(s)  # the provider is gone again: the token exchange cannot happen
        try:
            with _Warnings() as warned:
                resp = f.callback(callback, cookies=cookies)
            assert resp.status_code == 503
            assert "identity provider is unavailable" in _message(resp)
            assert any("token" in m and "unavailable" in m for m in warned.messages)
        finally:
            f.close()
    finally:
        s.stop()


def test_configuration_errors_are_clear(tmp_path: Path, oidc_provider: OIDCProvider) -> None:
    with pytest.raises(ConfigError, match="OID_CLIENT_ID is not set"):
        serve_site(tmp_path / "a", oidc_section(oidc_provider), env={"OID_CLIENT_ID": ""})
    with pytest.raises(ConfigError, match=r"\$\.auth\.oidc.*http\(s\) issuer URL"):
        serve_site(tmp_path / "b", oidc_section("ldap://example.org"))
    with pytest.raises(ConfigError, match="unknown key"):
        serve_site(tmp_path / "c", oidc_section(oidc_provider, **{"client-id": "x"}))


def test_authenticators_follow_the_config_order(tmp_path: Path, oidc_provider: OIDCProvider) -> None:
    s = serve_site(tmp_path / "site", {"local": {}, **oidc_section(oidc_provider)})
    try:
        assert s.app.state["login"].kinds == ["local", "oidc"]
    finally:
        s.stop()


def test_account_without_a_username_is_refused(site: OidcSite, flow: Flow) -> None:
    resp = flow.login("stranger-without-claims")  # the provider knows only an e-mail address for it
    assert resp.status_code == 401
    assert "preferred_username" in _message(resp)
    assert "session" not in resp.cookies

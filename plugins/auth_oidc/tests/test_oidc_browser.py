"""The whole OpenID Connect login in Chromium: a page that needs a session sends the browser to the login
page, the plugin's button goes to the real provider, the provider's form sends it back, and the browser
ends up logged in on the page it asked for."""

from __future__ import annotations

import base64
import json
import re

import pytest
from conftest import OidcSite

from cc_core.testing.oidc import OIDCProvider

pytestmark = [pytest.mark.service("oidc"), pytest.mark.service("chromium")]


def test_login_through_the_provider_in_chromium(
    site: OidcSite, oidc_provider: OIDCProvider, chromium
) -> None:  # type: ignore[no-untyped-def]
    context = chromium.new_context(base_url=site.base_url)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        first = page.goto("/?from=test")
        assert first is not None and first.status == 401  # no session yet: the login page, in place
        button = page.get_by_role("link", name="Log in with OpenID Connect")
        assert button.get_attribute("href") == "/oidc-login?redirect=/%3Ffrom%3Dtest"
        button.click()

        page.wait_for_url(re.compile(re.escape(f"{oidc_provider.issuer}/oauth2/authorize") + r"\?"))
        page.get_by_role("button", name="admin", exact=True).click()  # the provider's login form

        page.wait_for_url(f"{site.base_url}/?from=test")  # back where the login started
        assert page.get_by_role("heading", name="ClusterCockpit").is_visible()
        session = {c["name"]: c for c in context.cookies()}["session"]
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        assert not {"oidc_state", "oidc_verifier", "oidc_nonce"} & {c["name"] for c in context.cookies()}
        user = site.app.state["session_codec"].decode(session["value"])
        assert (user.username, user.roles) == ("admin", ["admin"])

        # The browser's session opens what needs one: an API token for the logged-in user.
        token = page.request.get("/frontend/jwt/")
        assert token.status == 200
        payload = token.text().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["sub"] == "admin" and claims["roles"] == ["admin"]
    finally:
        context.close()

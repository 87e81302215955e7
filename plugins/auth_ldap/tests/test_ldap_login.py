"""Logins through the real login form (``POST /login``) against a real slapd (contract §6.3)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from ldap_testlib import app_client, captured_logs, ldap_section, login, make_ldap_site

from cc_core.auth.user import AuthSource
from cc_core.testing import LdapServer, free_port

pytestmark = pytest.mark.service("ldap")

UNAVAILABLE = "the user directory (LDAP) is not reachable"


@pytest.fixture(scope="module")
def ldap_app(slapd_server: LdapServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One app: sync-user-on-login, update-user-on-login and a group mapping (hpcadmins → admin,
    hpc → project proj-hpc). Directory users added here are removed again."""
    section = ldap_section(
        slapd_server,
        **{
            "sync-user-on-login": True,
            "update-user-on-login": True,
            "group-base": slapd_server.groups_dn,
            "group-roles": {"hpcadmins": ["admin"]},
            "group-projects": {"hpc": ["proj-hpc"]},
        },
    )
    site = make_ldap_site(tmp_path_factory.mktemp("ldap-login"), section)
    added = ["lg-clash", "lg-renamed", "lg-new"]
    slapd_server.add_user("lg-clash", "clash-ldap-pw")
    slapd_server.add_user("lg-renamed", "renamed-pw", "Old Name")
    slapd_server.add_user("lg-new", "new-pw", "New User")
    try:
        with app_client(site) as client:
            yield client, client.app.state["services"].db.users
    finally:
        for uid in added:
            slapd_server.delete_user(uid)


def _session_cookie(r: Any) -> str:
    set_cookie = r.headers.get("set-cookie", "")
    assert set_cookie.startswith("session="), set_cookie
    return set_cookie


def _stored(client: Any, users: Any, name: str) -> Any:
    return users.get_sync(name)


def test_directory_user_logs_in_and_is_created_with_mapped_roles(ldap_app: Any) -> None:
    client, users = ldap_app
    assert _stored(client, users, "alice") is None
    r = login(client, "alice", "alicepw", redirect="/monitoring/jobs/?x=1")
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/monitoring/jobs/?x=1"
    cookie = _session_cookie(r)
    assert "httponly" in cookie.lower()
    stored = _stored(client, users, "alice")
    assert stored.auth_source == AuthSource.LDAP
    assert stored.roles == ["user", "admin"]  # hpcadmins → admin
    assert stored.projects == ["proj-hpc"]  # member of posixGroup hpc
    assert stored.name == "Alice Anderson" and stored.email == "alice@example.com"
    assert stored.password_hash is None  # the directory keeps the password
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "ClusterCockpit" in page.text
    # The second login finds her in the database (auth source LDAP) and binds again.
    again = login(client, "alice", "alicepw")
    assert again.status_code == 302 and again.headers["location"] == "/monitoring/jobs/"


def test_wrong_password_is_refused_and_creates_nobody(ldap_app: Any) -> None:
    client, users = ldap_app
    r = login(client, "bob", "not-bobs-password")
    assert r.status_code == 401
    assert "invalid username or password" in r.text
    assert "set-cookie" not in r.headers
    # Unlike upstream, a failed login does not create the account.
    assert _stored(client, users, "bob") is None
    ok = login(client, "bob", "bobpw")
    assert ok.status_code == 302
    assert _stored(client, users, "bob").roles == [
        "user",
    ]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("*)(uid=*", "alicepw"),  # filter injection: would match every entry unescaped
        ("*", "bobpw"),
        ("alice)(|(uid=*", "alicepw"),
        ("alice,ou=users", "alicepw"),  # DN injection into user-bind
        ("bob", ""),  # an empty password is an anonymous bind for LDAP: must not log in
    ],
)
def test_injection_and_empty_password_are_refused(ldap_app: Any, username: str, password: str) -> None:
    client, users = ldap_app
    r = login(client, username, password)
    assert r.status_code == 401
    assert "invalid username or password" in r.text
    assert "set-cookie" not in r.headers
    if username != "bob":
        assert _stored(client, users, username) is None


def test_directory_password_never_opens_a_local_account(ldap_app: Any) -> None:
    client, users = ldap_app
    users.add_sync("lg-clash", password="clash-local-pw", roles=["user"])
    refused = login(client, "lg-clash", "clash-ldap-pw")
    assert refused.status_code == 401 and "invalid username or password" in refused.text
    local = login(client, "lg-clash", "clash-local-pw")
    assert local.status_code == 302
    assert _stored(client, users, "lg-clash").auth_source == AuthSource.LOCAL


def test_update_user_on_login_takes_the_directory_name(ldap_app: Any, slapd_server: LdapServer) -> None:
    import ldap3

    client, users = ldap_app
    assert login(client, "lg-renamed", "renamed-pw").status_code == 302
    assert _stored(client, users, "lg-renamed").name == "Old Name"
    with slapd_server.connect() as conn:
        conn.modify(slapd_server.user_dn("lg-renamed"), {"gecos": [(ldap3.MODIFY_REPLACE, ["New Name"])]})
    assert login(client, "lg-renamed", "renamed-pw").status_code == 302
    stored = _stored(client, users, "lg-renamed")
    assert stored.name == "New Name"
    assert stored.roles == ["user"]  # not in hpcadmins; not in the hpc posixGroup either
    assert stored.projects == []


def test_deleted_directory_user_cannot_log_in(ldap_app: Any, slapd_server: LdapServer) -> None:
    client, _ = ldap_app
    assert login(client, "lg-new", "new-pw").status_code == 302
    slapd_server.delete_user("lg-new")
    try:
        r = login(client, "lg-new", "new-pw")
        assert r.status_code == 401 and "invalid username or password" in r.text
    finally:
        slapd_server.add_user("lg-new", "new-pw", "New User")


def _down_app(root: Path, url: str, **extra: Any) -> Any:
    section = {
        "url": url,
        "user-base": "ou=users,dc=example,dc=com",
        "user-bind": "uid={username},ou=users,dc=example,dc=com",
        "sync-user-on-login": True,
        **extra,
    }
    return make_ldap_site(root, section)


def test_unreachable_directory_is_a_login_page_error_and_a_warning(tmp_path: Path) -> None:
    site = _down_app(tmp_path, f"ldap://127.0.0.1:{free_port()}")
    with app_client(site) as client:
        users = client.app.state["services"].db.users
        users.add_sync("dora", roles=["user"], auth_source=AuthSource.LDAP)
        with captured_logs() as records:
            r = login(client, "dora", "whatever")
        assert r.status_code == 401
        assert UNAVAILABLE in r.text
        assert "set-cookie" not in r.headers
        warnings = [rec.getMessage() for rec in records if rec.levelno == logging.WARNING]
        assert any("directory unavailable" in m for m in warnings), warnings
        # An unknown user with sync-user-on-login: the lookup fails, logged; the form says no.
        with captured_logs() as records:
            r = login(client, "nobody-here", "pw")
        assert r.status_code == 401 and "invalid username or password" in r.text
        assert any("cannot look up" in rec.getMessage() for rec in records)


def test_login_keeps_roles_when_the_entry_cannot_be_read(ldap_app: Any) -> None:
    """update-user-on-login with a group mapping must not drop `admin` because the service account
    failed: the bind proved the password, the roles stay as they are."""
    from cc_auth_ldap.directory import Directory

    client, users = ldap_app
    assert login(client, "alice", "alicepw").status_code == 302
    assert users.get_sync("alice").roles == ["user", "admin"]
    (ldap,) = [a for a in client.app.state["login"].authenticators if a.kind == "ldap"]
    working = ldap.directory
    ldap.directory = Directory(working.config, "wrong-admin-password")
    try:
        with captured_logs() as records:
            r = login(client, "alice", "alicepw")
        assert r.status_code == 302
        assert users.get_sync("alice").roles == ["user", "admin"]
        assert any("reading the entry failed" in rec.getMessage() for rec in records)
    finally:
        ldap.directory = working

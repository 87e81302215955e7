"""The `auth.ldap` config checks and the `Directory` against real slapd servers: escaping, lookups,
timeouts, a refused service bind, ``ldaps://`` and StartTLS with certificate verification."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cc_auth_ldap.config import LdapConfig
from cc_auth_ldap.directory import Directory, DirectoryError
from ldap_testlib import ADMIN_PASSWORD, TlsLdap, ldap_section, silent_server, tls_slapd

from cc_core.config import ConfigError, convert
from cc_core.testing import LdapServer


def _config(section: dict[str, Any]) -> LdapConfig:
    return convert(section, LdapConfig, file="config.json", base_path="$.auth.ldap")  # type: ignore[no-any-return]


BASE = {"url": "ldap://127.0.0.1:389", "user-base": "ou=users,dc=example,dc=com"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"url": "http://example.com"}, "must start with ldap:// or ldaps://"),
        ({"user-bind": "uid=x,dc=example"}, '`user-bind` must contain "{username}"'),
        ({"url": "ldaps://h:636", "start-tls": True}, "already encrypted"),
        ({"tls-ca-file": "ca.pem"}, "`tls-ca-file` needs an ldaps:// `url` or `start-tls`"),
        ({"user-filter": "objectclass=posixAccount"}, "`user-filter` must be an LDAP filter"),
        ({"sync-interval": "daily"}, "`sync-interval`: invalid duration"),
        ({"timeout": "0s"}, "`timeout` must be greater than zero"),
        ({"group-base": "ou=g", "group-roles": {"admins": ["boss"]}}, "unknown role 'boss'"),
        ({"group-roles": {"admins": ["admin"]}}, "need `group-base`"),
        ({"bind-password": "x"}, "unknown key"),
    ],
)
def test_config_errors_name_the_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _config({**BASE, **extra})
    assert message in str(e.value)
    assert str(e.value).startswith("config.json: $.auth.ldap")


def test_config_defaults_are_upstreams() -> None:
    c = _config(BASE)
    assert (c.user_filter, c.username_attr, c.uid_attr) == ("(&(objectclass=posixAccount))", "gecos", "uid")
    assert (c.connect_timeout_seconds, c.timeout_seconds, c.sync_seconds) == (10.0, 30.0, 0.0)
    assert not c.maps_groups and c.roles_and_projects({"anything"}) == (["user"], [])


def test_group_mapping_is_case_insensitive_and_merges() -> None:
    c = _config(
        {
            **BASE,
            "group-base": "ou=groups,dc=example,dc=com",
            "group-roles": {"HPC-Admins": ["admin"], "support": ["support", "user"]},
            "group-projects": {"proj-a": ["a"], "proj-b": ["b", "a"]},
        }
    )
    roles, projects = c.roles_and_projects({"hpc-admins", "SUPPORT", "proj-b", "proj-a", "other"})
    assert roles == ["user", "admin", "support"]
    assert projects == ["a", "b"]


@pytest.mark.service("ldap")
def test_lookup_escapes_and_finds_exactly_one(slapd_server: LdapServer) -> None:
    d = Directory(_config(ldap_section(slapd_server)), ADMIN_PASSWORD)
    alice = d.lookup("ALICE")  # LDAP compares uid case-insensitively; the entry's spelling wins
    assert alice is not None and alice.username == "alice" and alice.dn == slapd_server.user_dn("alice")
    assert alice.name == "Alice Anderson" and alice.email == "alice@example.com"
    for hostile in ("*", "*)(uid=*", "alice)(uid=*", "\\2a", "alice\x00"):
        assert d.lookup(hostile) is None, hostile


@pytest.mark.service("ldap")
def test_authenticate_without_user_bind_looks_the_dn_up(slapd_server: LdapServer) -> None:
    d = Directory(_config(ldap_section(slapd_server, **{"user-bind": None})), ADMIN_PASSWORD)
    ok = d.authenticate("bob", "bobpw", details=False)
    assert ok is not None and ok.dn == slapd_server.user_dn("bob") and ok.name == "Bob Brown"
    assert d.authenticate("bob", "wrong", details=False) is None
    assert d.authenticate("bob", "", details=False) is None
    assert d.authenticate("*", "bobpw", details=False) is None


@pytest.mark.service("ldap")
def test_a_refused_service_bind_is_a_directory_error(slapd_server: LdapServer) -> None:
    wrong = Directory(_config(ldap_section(slapd_server)), "not-the-password")
    with pytest.raises(DirectoryError, match="check search-dn and LDAP_ADMIN_PASSWORD"):
        wrong.all_users()
    missing = Directory(_config(ldap_section(slapd_server)), None)
    with pytest.raises(DirectoryError, match="LDAP_ADMIN_PASSWORD is not"):
        missing.lookup("alice")
    # User binds do not need the service account when user-bind is set.
    assert missing.authenticate("alice", "alicepw", details=False) is not None


def test_operation_timeout_applies_to_a_silent_server() -> None:
    with silent_server() as port:
        d = Directory(
            _config(
                {
                    **BASE,
                    "url": f"ldap://127.0.0.1:{port}",
                    "user-bind": "uid={username},dc=x",
                    "timeout": "1s",
                }
            ),
            None,
        )
        start = time.monotonic()
        with pytest.raises(DirectoryError):
            d.authenticate("alice", "pw", details=False)
        assert time.monotonic() - start < 5


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with tls_slapd(tmp_path_factory.mktemp("slapd-tls")) as server:
        yield server


def _tls_config(server: TlsLdap, url: str, **extra: Any) -> LdapConfig:
    return _config(
        {
            "url": url,
            "user-base": server.users_dn,
            "user-bind": f"uid={{username}},{server.users_dn}",
            "search-dn": f"cn=admin,{server.base_dn}",
            **extra,
        }
    )


@pytest.mark.service("ldap")
def test_ldaps_and_starttls_verify_the_server_certificate(tls_server: TlsLdap) -> None:
    ca = str(tls_server.ca_file)
    ldaps = Directory(
        _tls_config(tls_server, f"ldaps://127.0.0.1:{tls_server.tls_port}", **{"tls-ca-file": ca}),
        ADMIN_PASSWORD,
    )
    tina = ldaps.authenticate("tina", "tinapw", details=True)
    assert tina is not None and tina.name == "Tina Turner"
    assert ldaps.authenticate("tina", "wrong", details=False) is None

    starttls = Directory(
        _tls_config(
            tls_server, f"ldap://127.0.0.1:{tls_server.port}", **{"start-tls": True, "tls-ca-file": ca}
        ),
        ADMIN_PASSWORD,
    )
    assert [u.username for u in starttls.all_users()] == ["tina"]

    # Without the CA the certificate is not trusted: refused, not silently accepted.
    untrusted = Directory(_tls_config(tls_server, f"ldaps://127.0.0.1:{tls_server.tls_port}"), ADMIN_PASSWORD)
    with pytest.raises(DirectoryError):
        untrusted.authenticate("tina", "tinapw", details=False)
    untrusted_starttls = Directory(
        _tls_config(tls_server, f"ldap://127.0.0.1:{tls_server.port}", **{"start-tls": True}), ADMIN_PASSWORD
    )
    with pytest.raises(DirectoryError):
        untrusted_starttls.lookup("tina")


def test_relative_ca_file_is_relative_to_the_config(tmp_path: Path) -> None:
    c = _config({**BASE, "url": "ldaps://127.0.0.1:1", "tls-ca-file": "certs/ca.pem"})
    with pytest.raises(ConfigError, match=r"\$.auth.ldap.tls-ca-file: `tls-ca-file`: .*certs/ca.pem is not"):
        Directory(c, None, tmp_path)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    d = Directory(c, None, tmp_path)
    assert d._server().tls.ca_certs_file == str(tmp_path / "certs" / "ca.pem")

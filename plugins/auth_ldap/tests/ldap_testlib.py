"""Helpers for the LDAP plugin tests: a site whose ``auth.ldap`` points at a real slapd, an app client,
and a second slapd speaking TLS (``ldaps://`` and StartTLS) with a throwaway CA."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cc_core.testing import LdapServer, ServiceProcess, free_port, require_binary, wait_for
from cc_core.testing.site import Site, make_site

ADMIN_PASSWORD = "secret"  # the fixture directory's admin password


def ldap_section(server: LdapServer, **overrides: Any) -> dict[str, Any]:
    """An ``auth.ldap`` section for ``server`` (upstream keys, user-bind with the admin as search-dn)."""
    section: dict[str, Any] = {
        "url": server.url,
        "user-base": server.users_dn,
        "search-dn": server.admin_dn,
        "user-bind": f"uid={{username}},{server.users_dn}",
        "user-filter": "(&(objectclass=posixAccount))",
        "username-attr": "gecos",
    }
    section.update(overrides)
    return {k: v for k, v in section.items() if v is not None}


def make_ldap_site(
    root: Path, section: dict[str, Any] | None, *, admin_password: str = ADMIN_PASSWORD
) -> Site:
    """A site (SQLite, empty file archive, no metric store) with ``auth.ldap = section`` and
    LDAP_ADMIN_PASSWORD in its ``.env``."""
    config: dict[str, Any] = {"metric-store": None}
    if section is not None:
        config["auth"] = {"ldap": section}
    site = make_site(root, [], config=config)
    if admin_password:
        with (root / ".env").open("a") as f:
            f.write(f'LDAP_ADMIN_PASSWORD="{admin_password}"\n')
    return site


@contextmanager
def app_client(site: Site) -> Iterator[Any]:
    """A Litestar test client on ``create_app(site.config())`` with its lifespan running."""
    from litestar.testing import TestClient

    from cc_core.app import create_app

    app = create_app(site.config())
    with TestClient(app) as client:
        yield client


def login(client: Any, username: str, password: str, redirect: str = "/monitoring/jobs/") -> Any:
    """``POST /login`` with the login page's form fields, without following the redirect."""
    client.cookies.clear()
    return client.post(
        "/login",
        data={"username": username, "password": password, "redirect": redirect},
        follow_redirects=False,
    )


def plugin_context(site: Site, db: Any | None = None) -> Any:
    """A `PluginContext` for the site's validated config (``services["db"]`` when given)."""
    from cc_core.context import PluginContext
    from cc_core.plugins import make_plugin_manager

    registry = make_plugin_manager()
    config = site.config()
    config.validate_plugins(registry)
    context = PluginContext(config, registry)
    if db is not None:
        context.services["db"] = db
    return context


@contextmanager
def captured_logs(name: str = "cc_auth_ldap") -> Iterator[list[logging.LogRecord]]:
    """Records of logger ``name`` (pytest's caplog handler on the root logger is replaced when the app's
    logging configuration starts, so app-side records need a handler of their own)."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    records: list[logging.LogRecord] = []
    handler = _Collect(logging.DEBUG)
    logger = logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (for the operation timeout)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        sock.close()


# -- a TLS slapd -----------------------------------------------------------------------------------


@dataclass
class TlsLdap:
    """slapd with ``ldap://`` (StartTLS) on ``port`` and ``ldaps://`` on ``tls_port``."""

    port: int
    tls_port: int
    ca_file: Path
    base_dn: str = "dc=tls,dc=example"

    @property
    def users_dn(self) -> str:
        return f"ou=users,{self.base_dn}"


def _write_certs(tmp: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cc test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


@contextmanager
def tls_slapd(tmp: Path) -> Iterator[TlsLdap]:
    """Start a slapd with a throwaway CA's certificate and one user, ``tina``/``tinapw``."""
    import subprocess

    slapd = require_binary("ldap", "slapd", "slapd")
    slapadd = require_binary("ldap", "slapadd", "slapd")
    ca_file, cert_file, key_file = _write_certs(tmp)
    (tmp / "data").mkdir()
    base = "dc=tls,dc=example"
    conf = tmp / "slapd.conf"
    conf.write_text(
        f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {tmp}/slapd.pid
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}
database mdb
maxsize 10485760
suffix "{base}"
rootdn "cn=admin,{base}"
rootpw {ADMIN_PASSWORD}
directory {tmp}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""
    )
    (tmp / "base.ldif").write_text(
        f"""dn: {base}
objectClass: dcObject
objectClass: organization
dc: tls
o: TLS

dn: ou=users,{base}
objectClass: organizationalUnit
ou: users

dn: uid=tina,ou=users,{base}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: tina
cn: Tina Turner
sn: Turner
gecos: Tina Turner
uidNumber: 20001
gidNumber: 20000
homeDirectory: /home/tina
userPassword: tinapw
"""
    )
    log = tmp / "slapd.log"
    with log.open("ab") as out:
        subprocess.run(
            [slapadd, "-f", str(conf), "-l", str(tmp / "base.ldif"), "-q"], check=True, stdout=out, stderr=out
        )
    port, tls_port = free_port(), free_port()
    urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
    proc = ServiceProcess("ldap", [slapd, "-f", conf, "-h", urls, "-d", "0"], log, cwd=tmp).start()

    def listening() -> bool:
        for p in (port, tls_port):
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", p)) != 0:
                    return False
        return True

    try:
        proc.wait_ready(listening, timeout=20)
        yield TlsLdap(port=port, tls_port=tls_port, ca_file=ca_file, base_dn=base)
    finally:
        proc.stop()


__all__ = [
    "ADMIN_PASSWORD",
    "TlsLdap",
    "app_client",
    "captured_logs",
    "ldap_section",
    "login",
    "make_ldap_site",
    "plugin_context",
    "silent_server",
    "tls_slapd",
    "wait_for",
]

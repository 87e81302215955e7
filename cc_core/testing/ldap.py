"""LDAP: an OpenLDAP slapd per test session, preloaded with two users and an admin group."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._process import HOST, ServiceProcess, free_port, require_binary, require_module, run_checked, tcp_open

if TYPE_CHECKING:
    import ldap3

SERVICE = "ldap"
BASE_DN = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "secret"  # noqa: S105 - throwaway directory on 127.0.0.1
USERS_DN = f"ou=users,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
#: gidNumber of the ``hpc`` posixGroup every preloaded user belongs to.
DEFAULT_GID = 10000


@dataclass
class LdapServer:
    """A running slapd; users live under ``users_dn``, groups under ``groups_dn``.

    Preloaded: ``alice``/``alicepw`` and ``bob``/``bobpw`` (inetOrgPerson + posixAccount), the
    groupOfNames ``hpcadmins`` (member alice) and the posixGroup ``hpc`` (memberUid alice, bob).
    """

    url: str
    host: str
    port: int
    base_dn: str = BASE_DN
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    users_dn: str = USERS_DN
    groups_dn: str = GROUPS_DN

    def user_dn(self, uid: str) -> str:
        """DN of the user entry ``uid``."""
        return f"uid={uid},{self.users_dn}"

    def connect(self, dn: str | None = None, password: str | None = None) -> ldap3.Connection:
        """A bound ldap3 connection, as admin unless ``dn``/``password`` are given."""
        import ldap3

        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE)
        return ldap3.Connection(
            server,
            dn if dn is not None else self.admin_dn,
            password if password is not None else self.admin_password,
            auto_bind=True,
            raise_exceptions=True,
        )

    def add_user(
        self,
        uid: str,
        password: str,
        cn: str | None = None,
        *,
        sn: str | None = None,
        mail: str | None = None,
        uid_number: int | None = None,
        gid_number: int = DEFAULT_GID,
    ) -> str:
        """Add an inetOrgPerson + posixAccount user (for user-sync tests); returns its DN."""
        import ldap3

        cn = cn or uid.capitalize()
        with self.connect() as conn:
            if uid_number is None:
                conn.search(
                    self.users_dn, "(objectClass=posixAccount)", ldap3.SUBTREE, attributes=["uidNumber"]
                )
                uid_number = max((int(e.uidNumber.value) for e in conn.entries), default=10000) + 1
            dn = self.user_dn(uid)
            conn.add(
                dn,
                ["inetOrgPerson", "posixAccount"],
                {
                    "uid": uid,
                    "cn": cn,
                    "sn": sn or cn.split()[-1],
                    "displayName": cn,
                    "gecos": cn,
                    "mail": mail or f"{uid}@example.com",
                    "uidNumber": uid_number,
                    "gidNumber": gid_number,
                    "homeDirectory": f"/home/{uid}",
                    "loginShell": "/bin/bash",
                    "userPassword": password,
                },
            )
        return dn

    def delete_user(self, uid: str) -> None:
        """Delete a user entry (and its memberships, so groups stay valid)."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars

        dn = self.user_dn(uid)
        with self.connect() as conn:
            for filt, attr, value in (("(member={})", "member", dn), ("(memberUid={})", "memberUid", uid)):
                conn.search(
                    self.groups_dn, filt.format(escape_filter_chars(value)), ldap3.SUBTREE, attributes=[attr]
                )
                for entry in list(conn.entries):
                    if attr == "member" and len(entry.member.values) == 1:
                        continue  # groupOfNames needs one member; leave a dangling DN rather than fail
                    conn.modify(entry.entry_dn, {attr: [(ldap3.MODIFY_DELETE, [value])]})
            conn.delete(dn)


def _user_ldif(uid: str, password: str, cn: str, sn: str, uid_number: int) -> str:
    return f"""dn: uid={uid},{USERS_DN}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: {uid}
cn: {cn}
sn: {sn}
givenName: {cn.split()[0]}
displayName: {cn}
gecos: {cn}
mail: {uid}@example.com
uidNumber: {uid_number}
gidNumber: {DEFAULT_GID}
homeDirectory: /home/{uid}
loginShell: /bin/bash
userPassword: {password}
"""


BASE_LDIF = f"""dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: {USERS_DN}
objectClass: organizationalUnit
ou: users

dn: {GROUPS_DN}
objectClass: organizationalUnit
ou: groups

{_user_ldif("alice", "alicepw", "Alice Anderson", "Anderson", 10001)}
{_user_ldif("bob", "bobpw", "Bob Brown", "Brown", 10002)}
dn: cn=hpcadmins,{GROUPS_DN}
objectClass: groupOfNames
cn: hpcadmins
member: uid=alice,{USERS_DN}

dn: cn=hpc,{GROUPS_DN}
objectClass: posixGroup
cn: hpc
gidNumber: {DEFAULT_GID}
memberUid: alice
memberUid: bob
"""


def _slapd_conf(tmp: Path) -> str:
    return f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {tmp}/slapd.pid
argsfile {tmp}/slapd.args
database mdb
maxsize 104857600
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {tmp}/data
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """Start slapd on 127.0.0.1 with a slapd.conf of its own (the system's /etc/ldap is ignored)."""
    slapd = require_binary(SERVICE, "slapd", "slapd")
    slapadd = require_binary(SERVICE, "slapadd", "slapd")
    require_module(SERVICE, "ldap3", "ldap3")
    tmp = tmp_path_factory.mktemp("slapd")
    (tmp / "data").mkdir()
    conf = tmp / "slapd.conf"
    conf.write_text(_slapd_conf(tmp))
    (tmp / "base.ldif").write_text(BASE_LDIF)
    log = tmp / "slapd.log"
    run_checked(SERVICE, [slapadd, "-f", conf, "-l", tmp / "base.ldif", "-q"], log)
    port = free_port()
    # -d 0 keeps slapd in the foreground, so the PID we hold is slapd itself.
    proc = ServiceProcess(
        SERVICE, [slapd, "-f", conf, "-h", f"ldap://{HOST}:{port}/", "-d", "0"], log, cwd=tmp
    ).start()
    try:
        proc.wait_ready(lambda: tcp_open(port), timeout=20)
        yield LdapServer(url=f"ldap://{HOST}:{port}", host=HOST, port=port)
    finally:
        proc.stop()

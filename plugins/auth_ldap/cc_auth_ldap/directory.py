"""Everything that talks to the LDAP server: one synchronous `Directory` over ldap3.

ldap3 blocks, so callers run these methods in a worker thread (`anyio.to_thread`). Each call opens its
own connection (ldap3 connections are not shared between threads, and logins are rare enough that a
pool would buy nothing), applies the connect and operation timeouts, upgrades with StartTLS when asked,
and unbinds before returning.

Untrusted text never reaches the server unescaped: a username goes into a filter through
`escape_filter_chars` and into the ``user-bind`` DN through `escape_rdn`, so ``*)(uid=*`` is a literal
name that matches nobody. An empty password is refused before any bind, because LDAP treats a simple
bind with an empty password as an *anonymous* bind that succeeds.

Two kinds of failure stay apart: a refused user bind (wrong password, unknown DN) is a normal
``None``; an unreachable server, a failed StartTLS, a timeout or a refused ``search-dn`` bind raise
`DirectoryError`, which the callers log as a warning and turn into a message for the login page or CLI.
"""

from __future__ import annotations

import logging
import math
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cc_auth_ldap.config import LdapConfig
from cc_core.config import ConfigError

if TYPE_CHECKING:
    import ldap3

log = logging.getLogger(__name__)

#: Bind results that mean "the directory is fine but will not serve" rather than "wrong credentials".
_UNAVAILABLE_RESULTS = {51, 52, 80}  # busy, unavailable, other
PAGE_SIZE = 500


class DirectoryError(Exception):
    """The directory cannot be used right now (unreachable, timeout, TLS, service bind refused)."""


@dataclass(frozen=True)
class DirectoryUser:
    """A user entry as ClusterCockpit needs it. ``groups`` holds the names of mapped groups only;
    ``complete`` is false when only the bind DN is known (attributes and groups were not read)."""

    dn: str
    username: str
    name: str = ""
    email: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    complete: bool = True


def normalise_dn(dn: str) -> str:
    """A DN in a form that compares equal for the same entry (case and spaces around commas)."""
    return re.sub(r"\s*,\s*", ",", dn.strip()).lower()


def _first(attributes: Any, name: str) -> str:
    if not name:
        return ""
    value = attributes.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def _values(attributes: Any, name: str) -> list[str]:
    value = attributes.get(name)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _close(conn: ldap3.Connection) -> None:
    """Unbind, ignoring errors: after a failed TLS handshake or timeout the socket is already gone."""
    try:
        conn.unbind()
    except Exception as e:
        log.debug("LDAP: unbind failed: %s", e)


@dataclass
class _Group:
    name: str
    member_dns: set[str]
    member_uids: set[str]


class Directory:
    """The configured LDAP server. ``admin_password`` is LDAP_ADMIN_PASSWORD (for ``search-dn``)."""

    def __init__(self, config: LdapConfig, admin_password: str | None, base_dir: Path | None = None) -> None:
        self.config = config
        import ldap3  # here, not at module level: registering the plugin must stay cheap

        self._admin_password = admin_password or ""
        tls = None
        if config.url.lower().startswith("ldaps://") or config.start_tls:
            ca_file = None
            if config.tls_ca_file:
                path = Path(config.tls_ca_file)
                ca_file = str(path if path.is_absolute() or base_dir is None else base_dir / path)
                if not Path(ca_file).is_file():
                    raise ConfigError(
                        f"`tls-ca-file`: {ca_file} is not a readable file (PEM CA certificates)",
                        path="$.auth.ldap.tls-ca-file",
                    )
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        self._tls = tls

    def _server(self) -> ldap3.Server:
        import ldap3

        # One per connection: an ldap3 Server keeps per-connection address state, and logins run
        # concurrently in worker threads.
        return ldap3.Server(
            self.config.url,
            connect_timeout=self.config.connect_timeout_seconds,
            get_info=ldap3.NONE,
            tls=self._tls,
        )

    # -- connections ---------------------------------------------------------------------------

    def _open(self, dn: str, password: str) -> tuple[ldap3.Connection, dict[str, Any]]:
        """An open connection after a bind attempt as ``dn`` (anonymous when empty), and the bind
        result. `DirectoryError` for anything but the bind's own answer."""
        import ldap3

        conn = ldap3.Connection(
            self._server(),
            user=dn or None,
            password=password if dn else None,
            authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS,
            # ldap3 packs this into SO_RCVTIMEO and needs whole seconds.
            receive_timeout=max(1, math.ceil(self.config.timeout_seconds)),
            auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=True,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if self.config.start_tls and not conn.start_tls():
                raise DirectoryError(f"{self.config.url}: StartTLS refused: {conn.result}")
            conn.bind()
        except DirectoryError:
            _close(conn)
            raise
        except Exception as e:  # socket, TLS and protocol errors of every kind: the directory is unusable
            _close(conn)
            raise DirectoryError(f"{self.config.url}: {type(e).__name__}: {e}") from None
        result = dict(conn.result or {})
        if "result" not in result or result["result"] in _UNAVAILABLE_RESULTS:
            _close(conn)
            answer = result.get("description") or "no answer"
            raise DirectoryError(f"{self.config.url}: bind answered {answer}")
        return conn, result

    def _service_connection(self) -> ldap3.Connection:
        """Bound as ``search-dn`` with LDAP_ADMIN_PASSWORD (anonymous without ``search-dn``)."""
        dn = self.config.search_dn
        if dn and not self._admin_password:
            raise DirectoryError("`search-dn` is set but LDAP_ADMIN_PASSWORD is not (put it in .env)")
        conn, result = self._open(dn, self._admin_password)
        if result.get("result") != 0:
            _close(conn)
            who = f"search-dn {dn!r}" if dn else "anonymously"
            raise DirectoryError(
                f"{self.config.url}: cannot bind {who}: {result.get('description')} "
                "(check search-dn and LDAP_ADMIN_PASSWORD)"
            )
        return conn

    def _search(self, conn: ldap3.Connection, base: str, filt: str, attributes: Iterable[str]) -> list[Any]:
        """All entries (paged, so server size limits do not silently cut the list); `DirectoryError`
        unless the search completed."""
        import ldap3

        try:
            response = conn.extend.standard.paged_search(
                base,
                filt,
                ldap3.SUBTREE,
                attributes=sorted({a for a in attributes if a}),
                paged_size=PAGE_SIZE,
                generator=False,
            )
        except Exception as e:  # as in `_open`: whatever breaks, the directory is unusable right now
            raise DirectoryError(f"{self.config.url}: search failed: {type(e).__name__}: {e}") from None
        result = conn.result or {}
        if result.get("result") != 0:
            raise DirectoryError(
                f"{self.config.url}: search under {base!r} failed: {result.get('description')} "
                f"{result.get('message') or ''}".rstrip()
            )
        return [e for e in response or () if e.get("type") == "searchResEntry"]

    # -- users -----------------------------------------------------------------------------------

    def _user_attributes(self) -> list[str]:
        c = self.config
        return [c.uid_attr, c.username_attr, c.email_attr]

    def _entry_user(self, entry: Any, groups: list[_Group] | None) -> DirectoryUser | None:
        attrs = entry.get("attributes") or {}
        username = _first(attrs, self.config.uid_attr)
        if not username:
            log.warning("LDAP entry %s has no %r attribute: skipped", entry.get("dn"), self.config.uid_attr)
            return None
        dn = str(entry.get("dn") or "")
        member_of: frozenset[str] = frozenset()
        if groups:
            ndn, uid = normalise_dn(dn), username.lower()
            member_of = frozenset(g.name for g in groups if ndn in g.member_dns or uid in g.member_uids)
        return DirectoryUser(
            dn=dn,
            username=username,
            name=_first(attrs, self.config.username_attr),
            email=_first(attrs, self.config.email_attr),
            groups=member_of,
        )

    def _mapped_groups(self, conn: ldap3.Connection) -> list[_Group]:
        """The groups the role/project mapping names, with their members (empty without a mapping)."""
        from ldap3.utils.conv import escape_filter_chars

        c = self.config
        if not c.maps_groups:
            return []
        names = "".join(f"({c.group_name_attr}={escape_filter_chars(n)})" for n in c.mapped_groups)
        entries = self._search(
            conn,
            c.group_base,
            f"(&{c.group_filter}(|{names}))",
            [c.group_name_attr, "member", "uniqueMember", "memberUid"],
        )
        groups = []
        for entry in entries:
            attrs = entry.get("attributes") or {}
            dns = {
                normalise_dn(v.split("#", 1)[0])
                for v in _values(attrs, "member") + _values(attrs, "uniqueMember")
            }
            uids = {v.lower() for v in _values(attrs, "memberUid")}
            for name in _values(attrs, c.group_name_attr):
                groups.append(_Group(name, dns, uids))
        return groups

    def lookup(self, username: str) -> DirectoryUser | None:
        """The entry matching ``(&<user-filter>(<uid-attr>=<username>))`` if exactly one does."""
        from ldap3.utils.conv import escape_filter_chars

        c = self.config
        if not username:
            return None
        conn = self._service_connection()
        try:
            filt = f"(&{c.user_filter}({c.uid_attr}={escape_filter_chars(username)}))"
            entries = self._search(conn, c.user_base, filt, self._user_attributes())
            if len(entries) != 1:
                if len(entries) > 1:
                    log.warning("LDAP: %d entries match %r; refusing to pick one", len(entries), username)
                return None
            return self._entry_user(entries[0], self._mapped_groups(conn))
        finally:
            _close(conn)

    def all_users(self) -> list[DirectoryUser]:
        """Every entry under ``user-base`` matching ``user-filter`` (for the sync)."""
        c = self.config
        conn = self._service_connection()
        try:
            entries = self._search(conn, c.user_base, c.user_filter, self._user_attributes())
            groups = self._mapped_groups(conn)
        finally:
            _close(conn)
        users = [self._entry_user(e, groups) for e in entries]
        return [u for u in users if u is not None]

    def authenticate(self, username: str, password: str, *, details: bool) -> DirectoryUser | None:
        """Bind as the user; the user (with name, e-mail and groups when ``details``) or ``None`` when
        the directory refuses the credentials.

        The bind DN is ``user-bind`` with ``{username}`` DN-escaped (upstream); without ``user-bind``
        the entry is looked up with the service account first and its DN is used.
        """
        from ldap3.utils.dn import escape_rdn

        if not username or not password:
            return None
        entry: DirectoryUser | None = None
        if self.config.user_bind:
            dn = self.config.user_bind.replace("{username}", escape_rdn(username))
        else:
            entry = self.lookup(username)
            if entry is None:
                return None
            dn = entry.dn
        conn, result = self._open(dn, password)
        _close(conn)
        if result.get("result") != 0:
            log.debug("LDAP bind as %r refused: %s", dn, result.get("description"))
            return None
        if details and entry is None:
            try:
                entry = self.lookup(username)
            except DirectoryError as e:
                # The password is right; failing the login because the service account cannot
                # search would lock everybody out. The caller keeps roles as they are.
                log.warning("LDAP: %r authenticated, but reading the entry failed: %s", username, e)
        return entry if entry is not None else DirectoryUser(dn=dn, username=username, complete=False)

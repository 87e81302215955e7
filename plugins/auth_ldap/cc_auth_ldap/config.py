"""The `auth.ldap` section: upstream's keys (contract §5.2) plus a few optional ones of ours.

Upstream keys keep upstream's meaning and defaults, so a cc-backend config works unchanged. The bind
password of ``search-dn`` is the environment variable ``LDAP_ADMIN_PASSWORD`` (contract §5.3), never a
config key. Our additions (timeouts, StartTLS, a CA file, e-mail attribute, group → role/project mapping)
all default to upstream's behaviour; README.md of this plugin documents them.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

import msgspec

from cc_core.config import parse_duration

#: Upstream's dial timeout and per-operation timeout (contract §6.3).
DEFAULT_CONNECT_TIMEOUT = "10s"
DEFAULT_TIMEOUT = "30s"
DEFAULT_GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
_ROLES = ("api", "user", "manager", "support", "admin")


def _duration(value: str, key: str, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise ValueError(f"`{key}`: {e}") from None
    if positive and seconds <= 0:
        raise ValueError(f"`{key}` must be greater than zero")
    return seconds


class LdapConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    # For the generated configuration reference (docs/configuration.md); upstream keys not listed
    # here are described in `cc_core.config_docs`.
    config_docs: ClassVar[dict[str, str]] = {
        "url": "Directory URL: `ldap://host[:port]` or `ldaps://host[:port]`.",
        "user-bind": "DN a login binds as, with `{username}` DN-escaped; without it the user's DN is "
        "looked up with `search-dn`.",
        "update-user-on-login": "On each login copy name and e-mail (and, with a group mapping, roles "
        "and projects) from the directory.",
        "connect-timeout": "TCP connect timeout (Go-style duration).",
        "timeout": "Timeout of each LDAP operation (Go-style duration, whole seconds).",
        "start-tls": "Upgrade an `ldap://` connection with StartTLS.",
        "tls-ca-file": "PEM file of CAs to trust for `ldaps://` or StartTLS, relative to config.json "
        "(default: the system CAs); certificates and host names are always verified.",
        "email-attr": "Attribute copied into the user's e-mail.",
        "group-base": "Base DN under which groups are searched (needed by `group-roles`/`group-projects`).",
        "group-filter": "LDAP filter selecting groups.",
        "group-name-attr": "Attribute holding a group's name.",
        "group-roles": 'Roles for group members, `{"group": ["role", ...]}`, in addition to `user`.',
        "group-projects": 'Projects for group members, `{"group": ["project", ...]}`.',
    }

    # Upstream's keys.
    url: str
    user_base: str
    search_dn: str = ""
    user_bind: str = ""
    user_filter: str = "(&(objectclass=posixAccount))"
    username_attr: str = "gecos"
    uid_attr: str = "uid"
    sync_interval: str = ""
    sync_del_old_users: bool = False
    sync_user_on_login: bool = False
    update_user_on_login: bool = False
    # Ours (optional; defaults = upstream's behaviour).
    connect_timeout: str = DEFAULT_CONNECT_TIMEOUT
    timeout: str = DEFAULT_TIMEOUT
    start_tls: bool = False
    tls_ca_file: str = ""
    email_attr: str = "mail"
    group_base: str = ""
    group_filter: str = DEFAULT_GROUP_FILTER
    group_name_attr: str = "cn"
    group_roles: dict[str, list[str]] = msgspec.field(default_factory=dict)
    group_projects: dict[str, list[str]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(f"`url` must start with ldap:// or ldaps://, got {self.url!r}")
        if self.start_tls and scheme == "ldaps":
            raise ValueError("`start-tls` is for ldap:// URLs; an ldaps:// connection is already encrypted")
        if self.tls_ca_file and scheme != "ldaps" and not self.start_tls:
            raise ValueError("`tls-ca-file` needs an ldaps:// `url` or `start-tls`")
        if self.user_bind and "{username}" not in self.user_bind:
            raise ValueError('`user-bind` must contain "{username}", e.g. "uid={username},ou=people,dc=…"')
        for key in ("user-filter", "group-filter"):
            value = getattr(self, key.replace("-", "_"))
            if not (value.startswith("(") and value.endswith(")")):
                raise ValueError(f"`{key}` must be an LDAP filter in parentheses, got {value!r}")
        if self.sync_interval:
            _duration(self.sync_interval, "sync-interval")
        _duration(self.connect_timeout, "connect-timeout", positive=True)
        _duration(self.timeout, "timeout", positive=True)
        for group, roles in self.group_roles.items():
            for role in roles:
                if role.strip().lower() not in _ROLES:
                    raise ValueError(
                        f"`group-roles.{group}`: unknown role {role!r} (valid: {', '.join(_ROLES)})"
                    )
        if (self.group_roles or self.group_projects) and not self.group_base:
            raise ValueError("`group-roles`/`group-projects` need `group-base` (where the groups live)")

    @property
    def sync_seconds(self) -> float:
        """The sync interval in seconds; 0 = no periodic sync."""
        return parse_duration(self.sync_interval) if self.sync_interval else 0.0

    @property
    def connect_timeout_seconds(self) -> float:
        return parse_duration(self.connect_timeout)

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    @property
    def maps_groups(self) -> bool:
        """Whether roles and projects come from directory groups (our extension)."""
        return bool(self.group_base and (self.group_roles or self.group_projects))

    @property
    def mapped_groups(self) -> list[str]:
        """The group names the mapping mentions (as configured)."""
        return sorted({*self.group_roles, *self.group_projects})

    def roles_and_projects(self, groups: set[str]) -> tuple[list[str], list[str]]:
        """Roles (always ``user``, plus those of the mapped groups) and projects for a user's group
        names; names compare case-insensitively, as LDAP compares ``cn``."""
        member_of = {g.lower() for g in groups}
        roles = ["user"]
        projects: list[str] = []
        for group in self.mapped_groups:
            if group.lower() not in member_of:
                continue
            for role in self.group_roles.get(group, ()):
                label = role.strip().lower()
                if label not in roles:
                    roles.append(label)
            for project in self.group_projects.get(group, ()):
                if project not in projects:
                    projects.append(project)
        return roles, projects

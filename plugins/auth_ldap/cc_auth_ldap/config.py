"""The `auth.ldap` section with upstream's keys (contract §5.2); the bind password is LDAP_ADMIN_PASSWORD."""

from __future__ import annotations

import msgspec

from cc_core.config import parse_duration
from cc_core.plugins import PendingBackend


class LdapConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
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

    def __post_init__(self) -> None:
        if self.sync_interval:
            try:
                parse_duration(self.sync_interval)
            except ValueError as e:
                raise ValueError(f"`sync-interval`: {e}") from None


class Backend(PendingBackend):
    kind = "ldap"
    Config = LdapConfig

"""The `auth.oidc` section with upstream's keys; client id/secret come from OID_CLIENT_ID/OID_CLIENT_SECRET."""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec


class OidcConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    """``provider`` is the issuer URL (discovery is ``<provider>/.well-known/openid-configuration``);
    ``sync-user-on-login`` adds unknown users to the database at login, ``update-user-on-login``
    rewrites known users' name, roles and projects from the provider's claims."""

    provider: str
    sync_user_on_login: bool = False
    update_user_on_login: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.provider)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"`provider` must be the provider's http(s) issuer URL, not {self.provider!r}")
        if parts.query or parts.fragment:
            raise ValueError("`provider` must be the issuer URL without query or fragment")

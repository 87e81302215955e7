"""The `auth.oidc` section with upstream's keys; client id/secret come from OID_CLIENT_ID/OID_CLIENT_SECRET."""

from __future__ import annotations

import msgspec

from cc_core.plugins import PendingBackend


class OidcConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    provider: str
    sync_user_on_login: bool = False
    update_user_on_login: bool = False


class Backend(PendingBackend):
    kind = "oidc"
    Config = OidcConfig

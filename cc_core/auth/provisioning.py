"""Users that an external login vouches for (JWT, OIDC): add them or update them in the database.

Upstream's ``sync-user-on-login`` / ``update-user-on-login`` for tokens and OpenID Connect. The login
is already valid when this runs, so a failing write is logged and never refuses it (as upstream).
"""

from __future__ import annotations

import logging
from typing import Any

from cc_core.auth.user import AuthSource, User

log = logging.getLogger(__name__)


async def provision_user(
    users: Any, user: User, *, source: AuthSource, add: bool, update: bool, what: str
) -> None:
    """Add ``user`` when unknown and ``add``; rewrite name, e-mail, roles and projects when known and
    ``update``. ``what`` names the login mechanism in log lines."""
    try:
        existing = await users.get(user.username)
        if existing is None and add:
            await users.add_if_not_exists(
                user.username, roles=user.roles, projects=user.projects, name=user.name, auth_source=source
            )
            log.info("%s login: added user %r (roles %s)", what, user.username, ",".join(user.roles))
        elif existing is not None and update:
            changes: dict[str, Any] = {"name": user.name, "roles": user.roles, "projects": user.projects}
            if getattr(user, "email", None):
                changes["email"] = user.email
            await users.update(user.username, **changes)
    except Exception as e:
        log.error("syncing %s user %r into the database failed: %s", what, user.username, e)

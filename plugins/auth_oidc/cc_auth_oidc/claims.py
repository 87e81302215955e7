"""From the provider's claims to a ClusterCockpit `User` (contract §6.3).

Username
    ``preferred_username``, from userinfo when the provider has that endpoint, else from the ID token
    (``sub`` is an opaque id at most providers, so it is never used as the name).
Roles
    Every string in ``realm_access.roles`` and in ``resource_access.<client>.roles`` (Keycloak's
    layout) of the ID token and of userinfo, kept when it names one of our roles (``admin``,
    ``support``, ``manager``, ``user``, ``api``, any case) and dropped otherwise; none left means
    ``[user]``, as upstream.
Projects
    The ``projects`` claim (a list of strings, or one string), ID token first, else userinfo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cc_core.auth.errors import LoginError
from cc_core.auth.user import VALID_ROLES, AuthSource, AuthType, User

DEFAULT_ROLES = ("user",)
MAX_USERNAME = 255


def role_claims(claim_sets: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every role string of the claim sets, in order, without duplicates (not yet mapped)."""
    out: list[str] = []
    for c in claim_sets:
        realm = c.get("realm_access")
        if isinstance(realm, Mapping):
            out += _strings(realm.get("roles"))
        resources = c.get("resource_access")
        if isinstance(resources, Mapping):
            for access in resources.values():
                if isinstance(access, Mapping):
                    out += _strings(access.get("roles"))
    return list(dict.fromkeys(out))


def map_roles(provider_roles: Sequence[str]) -> list[str]:
    """Our roles among ``provider_roles`` (case-insensitive), highest first; ``[user]`` when none."""
    wanted = {r.strip().lower() for r in provider_roles}
    ours = [r for r in reversed(VALID_ROLES) if r in wanted]
    return ours or list(DEFAULT_ROLES)


def user_from_claims(id_claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> User:
    """The session user for a verified login; `LoginError` when the provider names no usable user."""
    username = _first_string("preferred_username", userinfo, id_claims)
    if not username or len(username) > MAX_USERNAME or username != username.strip():
        raise LoginError("the identity provider did not send a usable preferred_username for this account")
    projects: list[str] = []
    for source in (id_claims, userinfo):
        value = source.get("projects")
        if isinstance(value, str) and value:
            projects = [value]
            break
        if isinstance(value, list):
            projects = list(dict.fromkeys(_strings(value)))
            break
    return User(
        username=username,
        roles=map_roles(role_claims([id_claims, userinfo])),
        projects=projects,
        name=_first_string("name", userinfo, id_claims),
        email=_first_string("email", userinfo, id_claims),
        auth_type=AuthType.SESSION,
        auth_source=AuthSource.OIDC,
    )


def _first_string(key: str, *sources: Mapping[str, Any]) -> str:
    for s in sources:
        value = s.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

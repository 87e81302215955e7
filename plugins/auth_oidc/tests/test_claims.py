"""Claims → user: username, role mapping and projects (pure functions, no provider needed)."""

from __future__ import annotations

import msgspec
import pytest
from cc_auth_oidc.claims import map_roles, role_claims, user_from_claims
from cc_auth_oidc.config import OidcConfig

from cc_core.auth.errors import LoginError
from cc_core.auth.user import AuthSource


def test_roles_are_collected_from_realm_and_every_client() -> None:
    claims = {
        "realm_access": {"roles": ["offline_access", "user", 3]},
        "resource_access": {"cc": {"roles": ["manager", "user"]}, "x": {"roles": "admin"}, "y": []},
    }
    assert role_claims([claims, {"realm_access": {"roles": ["support"]}}]) == [
        "offline_access",
        "user",
        "manager",
        "support",
    ]
    assert role_claims([{"realm_access": "admin", "resource_access": ["admin"]}]) == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["user"], ["user"]),
        (["Admin", "api", "unknown"], ["admin", "api"]),
        (["manager", "support", "user"], ["support", "manager", "user"]),
        (["anonymous", "uma_authorization"], ["user"]),
        ([], ["user"]),
    ],
)
def test_role_mapping(given: list[str], expected: list[str]) -> None:
    assert map_roles(given) == expected


def test_user_prefers_userinfo_for_the_username_and_the_id_token_for_projects() -> None:
    user = user_from_claims(
        {"sub": "1", "preferred_username": "old", "projects": ["p1", "p1", 2, "p2"], "name": "N"},
        {"sub": "1", "preferred_username": "alice", "email": "a@x", "projects": ["other"]},
    )
    assert (user.username, user.projects, user.name, user.email) == ("alice", ["p1", "p2"], "N", "a@x")
    assert user.auth_source == AuthSource.OIDC and user.roles == ["user"]
    assert user_from_claims({"preferred_username": "bob", "projects": "single"}, {}).projects == ["single"]


@pytest.mark.parametrize("name", [None, "", " padded", "x" * 256, 42])
def test_unusable_usernames_are_refused(name: object) -> None:
    with pytest.raises(LoginError, match="preferred_username"):
        user_from_claims({"sub": "opaque-id", "preferred_username": name}, {})


@pytest.mark.parametrize(
    "provider", ["", "keycloak", "ftp://idp.example.org", "https://idp.example.org/?a=1"]
)
def test_provider_must_be_an_issuer_url(provider: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="provider"):
        msgspec.convert({"provider": provider}, OidcConfig)


def test_upstream_keys() -> None:
    cfg = msgspec.convert(
        {"provider": "https://idp.example.org/realms/hpc", "sync-user-on-login": True}, OidcConfig
    )
    assert cfg.sync_user_on_login and not cfg.update_user_on_login

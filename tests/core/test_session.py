"""Session cookies, login rate limiting and redirect targets."""

from __future__ import annotations

import base64

import pytest

from cc_core.auth.ratelimit import LoginRateLimiter, safe_redirect_target
from cc_core.auth.session import SessionCodec, decode_session_key
from cc_core.auth.user import AuthSource, User

KEY = base64.b64decode(base64.b64encode(b"k" * 32))


def test_session_round_trip_and_tamper_detection() -> None:
    codec = SessionCodec(KEY, 3600)
    user = User(
        "alice", roles=["user", "manager"], projects=["p1"], auth_source=AuthSource.LDAP, name="Alice"
    )
    cookie = codec.encode(user, now=1000)
    back = codec.decode(cookie, now=1001)
    assert back is not None
    assert (back.username, back.roles, back.projects, back.auth_source, back.name) == (
        "alice",
        ["user", "manager"],
        ["p1"],
        AuthSource.LDAP,
        "Alice",
    )
    body, sig = cookie.split(".")
    forged_body = (
        base64.urlsafe_b64encode(base64.urlsafe_b64decode(body + "==").replace(b'"user"', b'"admin"'))
        .rstrip(b"=")
        .decode()
    )
    assert codec.decode(f"{forged_body}.{sig}", now=1001) is None
    assert codec.decode(cookie, now=1000 + 3601) is None  # expired
    assert SessionCodec(b"x" * 32, 3600).decode(cookie, now=1001) is None  # other key (another site)
    for junk in ("", "a", "a.b", "..", "!!.??"):
        assert codec.decode(junk) is None


def test_session_key_must_be_long_enough() -> None:
    assert decode_session_key(base64.b64encode(b"0123456789abcdef").decode()) == b"0123456789abcdef"
    with pytest.raises(ValueError, match="too short"):
        decode_session_key("short")


def test_rate_limit_is_per_address_and_user() -> None:
    rl = LoginRateLimiter(burst=5, refill_seconds=180)
    assert all(rl.allow("10.0.0.1", "alice", now=0) for _ in range(5))
    assert not rl.allow("10.0.0.1", "alice", now=1)
    assert rl.allow("10.0.0.1", "bob", now=1)
    assert rl.allow("10.0.0.2", "alice", now=1)
    assert rl.allow("10.0.0.1", "ALICE", now=181)  # one token back after 3 minutes, names case-folded
    assert not rl.allow("10.0.0.1", "alice", now=182)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/monitoring/jobs/?cluster=fritz", "/monitoring/jobs/?cluster=fritz"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_redirects_only_to_relative_paths(target: str, expected: str) -> None:
    assert safe_redirect_target(target) == expected

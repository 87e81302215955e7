"""Ed25519 JWTs in upstream's format: mint (`clustercockpit jwt`) and verify (API requests).

Only EdDSA is accepted for API tokens: `alg: none`, HS256 signed with the public key and any other
algorithm are rejected before the signature is looked at (pyjwt's algorithm allow-list).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class TokenError(Exception):
    """A token that must be refused; the message is safe to return to the client."""


def load_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64.strip().strip('"'), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("JWT public key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"JWT public key must be 32 raw bytes (Ed25519), got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_private_key(b64: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(b64.strip().strip('"'), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("JWT private key is not valid base64") from None
    if len(raw) not in (32, 64):
        raise ValueError(f"JWT private key must be 64 bytes (seed + public key, Go format), got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw[:32])


def mint(
    private_key: Ed25519PrivateKey,
    username: str,
    roles: list[str],
    *,
    max_age_seconds: float = 0,
    projects: list[str] | None = None,
    now: float | None = None,
) -> str:
    """A token as upstream mints it: ``{sub, roles, iat, exp}`` (``exp`` when max-age is set)."""
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": username, "roles": roles, "iat": iat}
    if projects:
        claims["projects"] = projects
    if max_age_seconds > 0:
        claims["exp"] = iat + int(max_age_seconds)
    return jwt.encode(claims, private_key, algorithm="EdDSA")


def verify(token: str, public_keys: list[Ed25519PublicKey], *, max_age_seconds: float = 0) -> dict[str, Any]:
    """Claims of a valid token signed by one of ``public_keys``; `TokenError` otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    if header.get("alg") != "EdDSA":
        raise TokenError(f"token algorithm {header.get('alg')!r} is not accepted (EdDSA only)")
    last: Exception | None = None
    for key in public_keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                options={"require": ["sub"], "verify_aud": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token has expired") from None
        except jwt.InvalidSignatureError as e:
            last = e
            continue
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid token: {e}") from None
        if (
            max_age_seconds > 0
            and "iat" in claims
            and time.time() - float(claims["iat"]) > max_age_seconds + 5
        ):
            raise TokenError("token is older than auth.jwts.max-age")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenError("token has no subject")
        return claims
    raise TokenError("token signature is invalid") from last

"""Ed25519 JWTs in upstream's format: mint (`clustercockpit jwt`) and verify (API requests), and the
HMAC-signed login tokens of upstream's cross-login (`/jwt-login`).

Only EdDSA is accepted for API tokens: `alg: none`, HS256 signed with the public key and any other
algorithm are rejected before the signature is looked at (pyjwt's algorithm allow-list). Login tokens
are HS256/HS512 only, and only with a configured key of at least `MIN_HMAC_KEY_BYTES` bytes: upstream
before 1.5.4 verified them with an *empty* key when none was configured, so anyone could forge an
admin login (contract §15.1).
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
        _check_age(claims, max_age_seconds)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenError("token has no subject")
        return claims
    raise TokenError("token signature is invalid") from last


HS_ALGORITHMS = ("HS256", "HS512")
# HS256 needs a key at least as long as its output (RFC 7518 §3.2); we ask the same for HS512.
MIN_HMAC_KEY_BYTES = 32


def load_hmac_key(b64: str) -> bytes:
    """``CROSS_LOGIN_JWT_HS512_KEY`` (standard base64, as upstream) → key bytes.

    Refuses (`ValueError`) an empty or short key instead of running with it: with an empty key every
    token is "valid" for whoever knows that.
    """
    text = b64.strip().strip('"')
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("CROSS_LOGIN_JWT_HS512_KEY is not valid base64") from None
    if len(raw) < MIN_HMAC_KEY_BYTES:
        raise ValueError(
            f"CROSS_LOGIN_JWT_HS512_KEY is {'empty' if not raw else f'only {len(raw)} bytes'}; an HMAC key "
            f"for login tokens must have at least {MIN_HMAC_KEY_BYTES} random bytes (or unset the variable "
            "to disable /jwt-login)"
        )
    return raw


def _check_age(claims: dict[str, Any], max_age_seconds: float) -> None:
    if max_age_seconds > 0 and "iat" in claims:
        try:
            iat = float(claims["iat"])
        except (TypeError, ValueError):
            raise TokenError("token claim `iat` is not a number") from None
        if time.time() - iat > max_age_seconds + 5:
            raise TokenError("token is older than auth.jwts.max-age")


def verify_hs(token: str, key: bytes, *, max_age_seconds: float = 0) -> dict[str, Any]:
    """Claims of an HS256/HS512 login token signed with ``key``; `TokenError` otherwise."""
    if len(key) < MIN_HMAC_KEY_BYTES:  # never verify with an empty or weak key, whatever the caller did
        raise TokenError("login tokens are not configured on this server")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    alg = header.get("alg")
    if alg not in HS_ALGORITHMS:
        raise TokenError(f"unknown signing method for login token: {alg!r} (known: HS256, HS512)")
    try:
        claims = jwt.decode(
            token, key, algorithms=[alg], options={"require": ["sub"], "verify_aud": False}, leeway=5
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token has expired") from None
    except jwt.PyJWTError as e:
        raise TokenError(f"invalid token: {e}") from None
    _check_age(claims, max_age_seconds)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("token has no subject")
    return claims


def unverified_issuer(token: str) -> str:
    """The ``iss`` claim before verification, to choose the key (upstream's cookie cross-login)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    iss = claims.get("iss", "")
    return iss if isinstance(iss, str) else ""

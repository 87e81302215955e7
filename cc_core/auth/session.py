"""Signed session cookies: the login state lives in the cookie, so every replica accepts it.

The cookie (named ``session`` as upstream's) holds ``{username, roles, projects, authSource, exp}``
encoded with msgspec and signed with HMAC-SHA256 under ``SESSION_KEY``. Nothing secret is in it and
nothing in it is trusted without a valid signature; an expired or tampered cookie is no session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

import msgspec

from cc_core.auth.user import AuthSource, AuthType, User

COOKIE_NAME = "session"
_CONTEXT = b"clustercockpit-session-v1"


class SessionPayload(msgspec.Struct, rename="camel"):
    username: str
    roles: list[str]
    projects: list[str]
    auth_source: int
    exp: int
    name: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_session_key(value: str) -> bytes:
    """``SESSION_KEY`` is base64 like upstream's; fall back to the raw bytes for hand-written keys."""
    text = value.strip().strip('"')
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = text.encode()
    if len(key) < 16:
        raise ValueError(
            "SESSION_KEY is too short: use at least 16 random bytes (clustercockpit init makes one)"
        )
    return key


class SessionCodec:
    """Creates and checks session cookie values."""

    def __init__(self, key: bytes, max_age_seconds: float) -> None:
        self._key = hmac.new(key, _CONTEXT, hashlib.sha256).digest()
        self.max_age = int(max_age_seconds) if max_age_seconds > 0 else 30 * 86400
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(SessionPayload)

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def encode(self, user: User, now: float | None = None) -> str:
        payload = SessionPayload(
            username=user.username,
            roles=list(user.roles),
            projects=list(user.projects),
            auth_source=int(user.auth_source),
            exp=int((now if now is not None else time.time()) + self.max_age),
            name=user.name,
        )
        body = self._encoder.encode(payload)
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def decode(self, value: str | None, now: float | None = None) -> User | None:
        """The session's user, or None for a missing, tampered, malformed or expired cookie."""
        if not value or value.count(".") != 1:
            return None
        body_text, sig_text = value.split(".")
        try:
            body, sig = _unb64(body_text), _unb64(sig_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            payload = self._decoder.decode(body)
        except msgspec.DecodeError:
            return None
        if (
            payload.exp < (now if now is not None else time.time())
            or not payload.username
            or not payload.roles
        ):
            return None
        return User(
            username=payload.username,
            roles=payload.roles,
            projects=payload.projects,
            name=payload.name,
            auth_type=AuthType.SESSION,
            auth_source=AuthSource(payload.auth_source),
        )

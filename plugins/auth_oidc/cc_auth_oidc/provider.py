"""Talking to the OpenID provider: discovery, the authorization request, the code exchange, the userinfo
call and the ID-token check.

The HTTP is httpx; the protocol pieces are authlib's (PKCE S256 challenge, random tokens, the OpenID
`CodeIDToken` claim rules) and joserfc's (JWS signature against the provider's JWKS).

Discovery is lazy: nothing is fetched when the app starts, so a provider that is down never stops the
server. The first login fetches ``<provider>/.well-known/openid-configuration`` and keeps it; a failed
fetch is retried by the next login, at most once per `RETRY_INTERVAL`, so a dead provider is not hammered
by every click. The JWKS is fetched with the first ID token and again when a token names a key id the
cached set does not have (the provider rotated its keys).

Two kinds of failure, two exceptions: `ProviderUnavailable` (the provider cannot be reached or answers
nonsense: a server-side problem, logged as a warning, shown as "try again later") and `LoginRefused`
(this login attempt is not acceptable: forged state, replayed code, wrong nonce, expired or foreign ID
token; shown to the user with the reason).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import msgspec
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingKeyError,
)
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

#: Seconds between two discovery (or JWKS) attempts while the provider is failing.
RETRY_INTERVAL = 1.0
#: Clock skew tolerated on ``exp``/``iat``/``nbf`` of ID tokens (seconds).
LEEWAY = 30
#: Asymmetric signature algorithms we verify; ``none`` and the HMAC family are never accepted.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class ProviderUnavailable(Exception):
    """The provider could not be reached, or its answer was unusable (not the user's fault)."""


class LoginRefused(Exception):
    """This login attempt is refused; the message says why and is safe to show."""


class ProviderMetadata(msgspec.Struct, frozen=True):
    """The parts of the discovery document we use (OpenID Connect Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    scopes_supported: list[str] = msgspec.field(default_factory=list)
    id_token_signing_alg_values_supported: list[str] = msgspec.field(default_factory=lambda: ["RS256"])
    token_endpoint_auth_methods_supported: list[str] = msgspec.field(
        default_factory=lambda: ["client_secret_basic"]
    )


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One login attempt: where to send the browser and the secrets to keep for the callback."""

    url: str
    state: str
    verifier: str
    nonce: str


@dataclass(frozen=True, slots=True)
class TokenResult:
    """The verified ID-token claims and the userinfo claims (empty without a userinfo endpoint)."""

    id_claims: dict[str, Any]
    userinfo: dict[str, Any]


class OpenIDProvider:
    """One configured provider (``auth.oidc.provider``) with this server's client credentials."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self._transport = transport
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._last_failure = 0.0
        self._last_error = ""
        self._lock = anyio.Lock()
        self._jwks_lock = anyio.Lock()
        self._last_jwks_fetch = 0.0

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=TIMEOUT, transport=self._transport, follow_redirects=False)

    # ------------------------------------------------------------------------------------------------
    # discovery and keys

    async def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched on first use (see the module docstring for retries)."""
        if self._metadata is not None:
            return self._metadata
        async with self._lock:
            if self._metadata is not None:
                return self._metadata
            if time.monotonic() - self._last_failure < RETRY_INTERVAL:
                raise ProviderUnavailable(self._last_error)
            try:
                self._metadata = await self._discover()
            except ProviderUnavailable as e:
                self._last_failure = time.monotonic()
                self._last_error = str(e)
                raise
            log.info("OpenID provider %s discovered", self.issuer)
            return self._metadata

    async def _discover(self) -> ProviderMetadata:
        url = self.discovery_url
        try:
            async with self._client() as client:
                resp = await client.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"cannot reach {url}: {_describe(e)}") from None
        if resp.status_code != 200:
            raise ProviderUnavailable(f"{url} answered HTTP {resp.status_code}")
        try:
            meta = msgspec.json.decode(resp.content, type=ProviderMetadata)
        except msgspec.DecodeError as e:
            raise ProviderUnavailable(f"{url} is not a usable discovery document: {e}") from None
        if meta.issuer.rstrip("/") != self.issuer:
            # OpenID Connect Discovery §4.3: the issuer must be the one we asked, or tokens could be
            # accepted from a different provider that shares the discovery document.
            raise ProviderUnavailable(
                f"{url} names the issuer {meta.issuer!r}, not {self.issuer!r} (check auth.oidc.provider)"
            )
        return meta

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        async with self._jwks_lock:
            if refresh and time.monotonic() - self._last_jwks_fetch < RETRY_INTERVAL and self._keys:
                return self._keys
            if self._keys is not None and not refresh:
                return self._keys
            meta = await self.metadata()
            self._last_jwks_fetch = time.monotonic()
            try:
                async with self._client() as client:
                    resp = await client.get(meta.jwks_uri)
                resp.raise_for_status()
                self._keys = KeySet.import_key_set(resp.json())
            except httpx.HTTPError as e:
                raise ProviderUnavailable(f"cannot fetch the JWKS {meta.jwks_uri}: {_describe(e)}") from None
            except (ValueError, TypeError, KeyError, JoseError) as e:
                raise ProviderUnavailable(f"the JWKS at {meta.jwks_uri} is unusable: {e}") from None
            return self._keys

    # ------------------------------------------------------------------------------------------------
    # the flow

    async def authorization_request(self, redirect_uri: str) -> AuthRequest:
        """A fresh ``state``, PKCE verifier and ``nonce``, and the provider URL that carries them."""
        meta = await self.metadata()
        state, verifier, nonce = generate_token(32), generate_token(64), generate_token(32)
        scopes = ["openid", "profile", "email"]
        if "roles" in meta.scopes_supported:
            scopes.append("roles")  # Keycloak puts realm_access/resource_access in the token with it
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        return AuthRequest(f"{meta.authorization_endpoint}{sep}{query}", state, verifier, nonce)

    async def finish(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> TokenResult:
        """Exchange ``code`` (with the PKCE verifier), verify the ID token, fetch userinfo."""
        meta = await self.metadata()
        tokens = await self._exchange(meta, code, redirect_uri, verifier)
        raw_id_token = tokens.get("id_token")
        if not isinstance(raw_id_token, str) or not raw_id_token:
            raise LoginRefused("the identity provider returned no ID token")
        access_token = tokens.get("access_token")
        claims = await self.verify_id_token(
            raw_id_token, nonce, access_token if isinstance(access_token, str) else None
        )
        userinfo: dict[str, Any] = {}
        if meta.userinfo_endpoint and isinstance(access_token, str) and access_token:
            userinfo = await self._userinfo(meta, access_token, claims.get("sub"))
        return TokenResult(claims, userinfo)

    async def _exchange(
        self, meta: ProviderMetadata, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.BasicAuth | None = None
        methods = meta.token_endpoint_auth_methods_supported
        if self.client_secret and ("client_secret_basic" in methods or not methods):
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret
        try:
            async with self._client() as client:
                resp = await client.post(
                    meta.token_endpoint, data=form, auth=auth, headers={"accept": "application/json"}
                )
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"cannot reach {meta.token_endpoint}: {_describe(e)}") from None
        body = _json_object(resp)
        if resp.status_code == 400 and body.get("error") in ("invalid_grant", "invalid_request"):
            # RFC 6749 §5.2: a code that is unknown, expired, already used or issued to someone else.
            raise LoginRefused(
                "the identity provider refused the authorization code (expired or already used); "
                "start the login again"
            )
        if resp.status_code != 200:
            error = body.get("error") or f"HTTP {resp.status_code}"
            raise ProviderUnavailable(f"the token endpoint {meta.token_endpoint} answered {error}")
        return body

    async def verify_id_token(
        self, raw: str, nonce: str, access_token: str | None = None, *, now: int | None = None
    ) -> dict[str, Any]:
        """The claims of ``raw`` after checking signature (JWKS), ``iss``, ``aud``, ``exp``, ``iat``,
        ``nonce``, ``azp`` and ``at_hash``; `LoginRefused` naming what is wrong otherwise."""
        meta = await self.metadata()
        algorithms = [a for a in meta.id_token_signing_alg_values_supported if a in ALLOWED_ALGORITHMS]
        if not algorithms:
            raise ProviderUnavailable(
                "the provider signs ID tokens with none of the supported algorithms "
                f"({', '.join(meta.id_token_signing_alg_values_supported) or 'none listed'})"
            )
        try:
            try:
                token = jwt.decode(raw, await self._key_set(), algorithms=algorithms)
            except (InvalidKeyIdError, MissingKeyError):
                token = jwt.decode(raw, await self._key_set(refresh=True), algorithms=algorithms)
        except BadSignatureError:
            raise LoginRefused("the ID token's signature is invalid") from None
        except (InvalidKeyIdError, MissingKeyError):
            raise LoginRefused(
                "the ID token is signed with a key the identity provider does not publish"
            ) from None
        except JoseError as e:
            raise LoginRefused(f"the ID token is malformed ({e.error})") from None
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": meta.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "exp": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            },
            {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
        )
        try:
            claims.validate(now=now, leeway=LEEWAY)
        except ExpiredTokenError:
            raise LoginRefused("the ID token has expired; start the login again") from None
        except ClaimError as e:
            raise LoginRefused(_claim_message(e.claim)) from None
        except JoseError as e:
            raise LoginRefused(f"the ID token is invalid ({e.error})") from None
        return dict(claims)

    async def _userinfo(self, meta: ProviderMetadata, access_token: str, sub: Any) -> dict[str, Any]:
        try:
            async with self._client() as client:
                resp = await client.get(
                    meta.userinfo_endpoint,
                    headers={"authorization": f"Bearer {access_token}", "accept": "application/json"},
                )
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"cannot reach {meta.userinfo_endpoint}: {_describe(e)}") from None
        if resp.status_code != 200:
            raise ProviderUnavailable(f"the userinfo endpoint answered HTTP {resp.status_code}")
        info = _json_object(resp)
        if info.get("sub") != sub:
            # OpenID Connect Core §5.3.2: userinfo for another subject must not be used.
            raise LoginRefused("the identity provider's userinfo is for a different user")
        return info


_CLAIM_MESSAGES = {
    "nonce": "the ID token does not belong to this login attempt (nonce mismatch); start the login again",
    "iss": "the ID token was issued by a different provider (iss mismatch)",
    "aud": "the ID token was issued for a different client (aud mismatch)",
    "azp": "the ID token was issued for a different client (azp mismatch)",
    "at_hash": "the ID token does not match its access token (at_hash mismatch)",
    "iat": "the ID token is issued in the future (iat); check the clocks",
    "nbf": "the ID token is not valid yet (nbf); check the clocks",
}


def _claim_message(claim: str) -> str:
    return _CLAIM_MESSAGES.get(claim, f"the ID token's {claim!r} claim is missing or invalid")


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(e: httpx.HTTPError) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

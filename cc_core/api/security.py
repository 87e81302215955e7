"""Global HTTP hardening (contract §1.6, §15): security headers, CSRF guard, client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"frame-ancestors 'none'; object-src 'none'; base-uri 'self'"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return None


def is_https(scope: Scope, trusted_proxies: Iterable[str] = ()) -> bool:
    if scope.get("scheme") == "https":
        return True
    proto = _header(scope, b"x-forwarded-proto")
    return proto is not None and proto.lower() == b"https" and peer_is_trusted(scope, trusted_proxies)


def peer_is_trusted(scope: Scope, trusted_proxies: Iterable[str]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        addr = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    for net in trusted_proxies:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(scope: Scope, trusted_proxies: Iterable[str]) -> str:
    """The client's IP: the socket peer, or the forwarded address when the peer is a trusted proxy.

    Upstream believes ``X-Real-Ip``/``X-Forwarded-For`` from anyone, which lets a client choose its own
    address for the API allow-list; we only believe them from ``main.trusted-proxies``.
    """
    client = scope.get("client")
    peer = client[0] if client else ""
    proxies = list(trusted_proxies)
    if proxies and peer_is_trusted(scope, proxies):
        real = _header(scope, b"x-real-ip")
        if real:
            return real.decode("latin-1").strip()
        fwd = _header(scope, b"x-forwarded-for")
        if fwd:
            # The right-most address not itself a trusted proxy is the client.
            hops = [h.strip() for h in fwd.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                fake = {"client": (hop, 0)}
                if not peer_is_trusted(fake, proxies):  # type: ignore[arg-type]
                    return hop
            if hops:
                return hops[0]
    return peer


def security_headers_hook(trusted_proxies: Iterable[str] = ()) -> Any:
    """A Litestar ``before_send`` hook: it sees every response, also 404/405 answers from routing,
    which app-level middleware (wrapped around route handlers) never does."""
    proxies = tuple(trusted_proxies)

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = [h for h in message.get("headers", []) if h[0].lower() not in _OURS]
        headers.extend(SECURITY_HEADERS)
        if is_https(scope, proxies):
            headers.append(HSTS)
        message["headers"] = headers  # type: ignore[typeddict-unknown-key]

    return add_headers


class CSRFMiddleware:
    """Blocks state-changing requests that a browser marks as cross-site (``Sec-Fetch-Site``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method", "GET") not in SAFE_METHODS
            and _header(scope, b"sec-fetch-site") == b"cross-site"
        ):
            body = b"cross-site request blocked"
            headers: list[Any] = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


_OURS = frozenset(h[0] for h in (*SECURITY_HEADERS, HSTS))

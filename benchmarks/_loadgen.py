"""A lean HTTP/1.1 keep-alive client for load generation on a small machine.

The benchmarks run client and server on the same two cores. A full-featured client (httpx) spends
~0.2–0.3 ms of CPU per request on header models, URL objects and its connection pool, which is as
much as the server's whole request path: the measurement then shows the client, and the server's
latency tail is mostly time spent waiting for the client's share of the CPU. This client does what
``wrk`` does — pre-built request bytes on one persistent connection, the status line and
``Content-Length`` parsed, nothing else — so nearly all CPU goes to the server under test.

Only what our server sends is understood: ``Content-Length`` framed responses (no chunked bodies),
no redirects, no compression (no ``Accept-Encoding`` is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(slots=True)
class Response:
    status: int
    body: bytes


class Connection:
    """One keep-alive connection; requests are sent one after the other (no pipelining)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    def build(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> bytes:
        """The request bytes, so callers can build once and send many times."""
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: %d\r\n" % len(body))
        head.append(b"\r\n")
        return b"".join(head) + body

    async def send(self, request: bytes) -> Response:
        if self._writer is None:
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lname == b"transfer-encoding":
                raise ValueError("chunked responses are not supported by this load generator")
        body = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return Response(status, body)


def install_uvloop() -> None:
    """Use uvloop for the client's event loop when it is installed (it is a core dependency)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

"""A lean HTTP/1.1 keep-alive client for load generation on a small machine.

The benchmarks run client and server on the same two cores. A full-featured client (httpx) spends
~0.2–0.3 ms of CPU per request on header models, URL objects and its connection pool, which is as
much as the server's whole request path: the measurement then shows the client, and the server's
latency tail is mostly time spent waiting for the client's share of the CPU. This client does what
``wrk`` does — pre-built request bytes on one persistent connection, the status line and
``Content-Length`` parsed, nothing else — so nearly all CPU goes to the server under test.

Only what the servers under test send is understood: ``Content-Length`` or chunked bodies, no
redirects, no compression (no ``Accept-Encoding`` is sent). `Connection` serves request/response
loops that time each request (REST); `blast` pushes a list of pre-built requests through several
connections as fast as they are answered (metric ingest, also against InfluxDB).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
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
        response, close = await read_response(self._reader)
        if close:
            await self.close()
        return response


async def read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """One response from ``reader``; also whether the server announced ``Connection: close``."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif lname == b"connection" and value.strip().lower() == b"close":
            close = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        return Response(status, b"".join(parts)), close
    body = await reader.readexactly(length) if length else b""
    return Response(status, body), close


def build_request(host: str, port: int, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One ``POST`` request as bytes (HTTP/1.1, keep-alive)."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def blast_async(
    host: str, port: int, requests: Sequence[bytes], ok: int, concurrency: int = 8
) -> float:
    """Send every request (``concurrency`` connections, one request in flight on each); seconds from
    the first write to the last answer. Every answer must have status ``ok``."""
    conns = [await asyncio.open_connection(host, port) for _ in range(min(concurrency, len(requests)))]
    queue = list(reversed(requests))

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while queue:
            writer.write(queue.pop())
            response, _ = await read_response(reader)
            if response.status != ok:
                raise RuntimeError(f"HTTP {response.status}: {response.body[:200]!r}")

    try:
        t = time.perf_counter()
        await asyncio.gather(*(worker(r, w) for r, w in conns))
        return time.perf_counter() - t
    finally:
        for _, w in conns:
            w.close()


def blast(host: str, port: int, requests: Sequence[bytes], ok: int, concurrency: int = 8) -> float:
    """`blast_async` in a fresh event loop (uvloop when installed)."""
    install_uvloop()
    return asyncio.run(blast_async(host, port, requests, ok, concurrency))


def install_uvloop() -> None:
    """Use uvloop for the client's event loop when it is installed (it is a core dependency)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

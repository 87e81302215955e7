"""POST pre-built bodies over raw keep-alive HTTP/1.1 sockets: a load generator that costs little CPU.

The ingest benchmark compares servers that spend well under a millisecond per request. httpx spends
~0.2–0.3 ms of client CPU per request (request/response models, URL objects, its pool), so on a 2-core
machine the client, not the server, would set the pace. Here each request is built once as bytes
(request line, headers, body); a worker writes it and reads back the status line, the headers up to the
blank line and a ``Content-Length`` (or chunked) body — nothing else is parsed. Several connections
keep requests in flight; every response must have the expected status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence


def build_request(host: str, port: int, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One ``POST`` request as bytes (HTTP/1.1, keep-alive)."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        return status, b"".join(parts)
    if length > 0:
        return status, await reader.readexactly(length)
    return status, b""  # 204, or an empty 200 with Content-Length: 0


async def blast_async(
    host: str, port: int, requests: Sequence[bytes], ok: int, concurrency: int = 8
) -> float:
    """Send every request (``concurrency`` connections); seconds from the first write to the last answer."""
    conns = [await asyncio.open_connection(host, port) for _ in range(min(concurrency, len(requests)))]
    queue = list(reversed(requests))

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while queue:
            writer.write(queue.pop())
            status, body = await _read_response(reader)
            if status != ok:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")

    try:
        t = time.perf_counter()
        await asyncio.gather(*(worker(r, w) for r, w in conns))
        return time.perf_counter() - t
    finally:
        for _, w in conns:
            w.close()


def blast(host: str, port: int, requests: Sequence[bytes], ok: int, concurrency: int = 8) -> float:
    """`blast_async` in a fresh event loop (uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(blast_async(host, port, requests, ok, concurrency))
    except ImportError:
        return asyncio.run(blast_async(host, port, requests, ok, concurrency))

"""NATS: one nats-server per test session (the metric store's line-protocol transport)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ._process import HOST, ServiceProcess, free_port, require_binary

SERVICE = "nats"


@dataclass
class NatsServer:
    """A running nats-server without auth; connect with ``nats.connect(server.url)``."""

    url: str
    port: int


def _nats_info(port: int) -> bool:
    """A NATS server greets every client with an ``INFO {...}`` line once it is serving."""
    with socket.create_connection((HOST, port), timeout=1.0) as s:
        return s.recv(4).startswith(b"INFO")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """Start nats-server on 127.0.0.1 (no monitoring port, no cluster ports)."""
    binary = require_binary(SERVICE, "nats-server", "nats-server")
    tmp = tmp_path_factory.mktemp("nats")
    port = free_port()
    proc = ServiceProcess(
        SERVICE, [binary, "-a", HOST, "-p", str(port), "-P", tmp / "nats.pid"], tmp / "nats.log", cwd=tmp
    ).start()
    try:
        proc.wait_ready(lambda: _nats_info(port), timeout=20)
        yield NatsServer(url=f"nats://{HOST}:{port}", port=port)
    finally:
        proc.stop()

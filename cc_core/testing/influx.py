"""InfluxDB 1.x: a server per test session with one database created up front."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._process import HOST, ServiceProcess, free_port, http_ok, require_binary

SERVICE = "influxdb"


@dataclass
class InfluxServer:
    """A running influxd (1.x HTTP API, no auth) with ``database`` already created."""

    url: str
    port: int
    database: str = "ccmetrics"

    def write(self, lines: str, precision: str = "s") -> None:
        """Write line protocol into ``database`` (``precision``: ns, u, ms, s, m, h)."""
        import httpx

        resp = httpx.post(
            f"{self.url}/write",
            params={"db": self.database, "precision": precision},
            content=lines.encode(),
            trust_env=False,
            timeout=30,
        )
        if resp.status_code != 204:
            raise RuntimeError(f"influx write failed: {resp.status_code} {resp.text}")

    def query(self, q: str, epoch: str | None = "s") -> dict[str, Any]:
        """Run InfluxQL against ``database`` and return the JSON reply; statement errors raise.

        POST works for every statement (GET is refused for CREATE/DROP). ``epoch`` makes times
        integers in that unit instead of RFC 3339 strings; pass None for the latter.
        """
        import httpx

        data = {"db": self.database, "q": q}
        if epoch:
            data["epoch"] = epoch
        resp = httpx.post(f"{self.url}/query", data=data, trust_env=False, timeout=60)
        body: dict[str, Any] = resp.json()
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if resp.status_code != 200 or "error" in body or errors:
            raise RuntimeError(f"influx query failed ({resp.status_code}): {body.get('error') or errors}")
        return body


def influx_conf(tmp: Path, http_port: int, rpc_port: int) -> str:
    """An influxd config for a throw-away server on loopback ports with its files under ``tmp``."""
    # The RPC bind-address defaults to :8088 on all interfaces, so it is pinned here too.
    return f"""reporting-disabled = true
bind-address = "{HOST}:{rpc_port}"
[meta]
  dir = "{tmp}/meta"
[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false
[http]
  bind-address = "{HOST}:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


@pytest.fixture(scope="session")
def influxdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """Start influxd on 127.0.0.1 (HTTP and RPC ports both loopback) and create ``ccmetrics``."""
    binary = require_binary(SERVICE, "influxd", "influxdb")
    tmp = tmp_path_factory.mktemp("influxdb")
    http_port, rpc_port = free_port(), free_port()
    while rpc_port == http_port:
        rpc_port = free_port()
    conf = tmp / "influxdb.conf"
    conf.write_text(influx_conf(tmp, http_port, rpc_port))
    url = f"http://{HOST}:{http_port}"
    proc = ServiceProcess(SERVICE, [binary, "run", "-config", conf], tmp / "influxdb.log", cwd=tmp).start()
    try:
        proc.wait_ready(lambda: http_ok(f"{url}/ping"), timeout=30)
        server = InfluxServer(url=url, port=http_port)
        server.query(f'CREATE DATABASE "{server.database}"')
        yield server
    finally:
        proc.stop()

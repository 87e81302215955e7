"""Acceptance: ``kill -9`` of the server during steady ingest through HTTP, restart: every sample
acknowledged before the last WAL flush is queryable again (through GraphQL of the restarted server)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from cc_core.testing import free_port, wait_for
from cc_core.testing.metric_contract import CLUSTER
from cc_core.testing.site import Site

# Recent enough to be inside the store's 48 h retention (older WAL records are not replayed).
T0 = (int(time.time()) - 40 * 3600) // 60 * 60
HOSTS = 4
FLUSH_MARGIN = 2.5  # WAL flush every 1 s (+ the flush itself): older acknowledgements are durable


class Server:
    def __init__(self, site: Site, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = site.spawn(
            "serve",
            "--addr",
            f"127.0.0.1:{self.port}",
            log=log,
            env={"CC_LOAD_PLUGINS": "metric-ccms,archive-fs"},
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200

        wait_for(ready, timeout=60, what="the server")


def _body(i: int) -> bytes:
    return "\n".join(
        f"flops_any,cluster={CLUSTER},hostname=h{h},type=hwthread,type-id={c} value={i} {T0 + 60 * i}"
        for h in range(HOSTS)
        for c in range(8)
    ).encode()


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sigkill_during_http_ingest_loses_nothing_flushed(site: Site, tmp_path: Path) -> None:
    server = Server(site, tmp_path / "server.log")
    auth = {"Authorization": f"Bearer {site.token(('api',))}"}
    acked: list[tuple[int, float]] = []
    stop = threading.Event()

    def ingest() -> None:
        with httpx.Client(base_url=server.url, headers=auth, trust_env=False, timeout=5) as c:
            i = 0
            while not stop.is_set():
                try:
                    r = c.post("/api/write", content=_body(i))
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.append((i, time.monotonic()))
                i += 1

    t = threading.Thread(target=ingest)
    t.start()
    # Kill once enough batches are older than the flush margin; a loaded machine just takes longer.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
        len(acked) > 60 and time.monotonic() - acked[60][1] > FLUSH_MARGIN + 0.5
    ):
        time.sleep(0.1)
    server.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    server.proc.wait(10)
    stop.set()
    t.join(10)
    durable = [i for i, at in acked if at < killed - FLUSH_MARGIN]
    assert len(durable) > 50, f"too little ingest before the kill: {len(acked)} batches"
    assert durable == list(range(len(durable)))

    again = Server(site, tmp_path / "server.log")
    try:
        n = len(acked)
        query = (
            'query($from: Time!, $to: Time!) { nodeMetrics(cluster: CLUSTER, nodes: ["h0", "h3"], '
            'metrics: ["flops_any"], from: $from, to: $to) { host metrics { name metric { series { data } } } } }'
        ).replace("CLUSTER", f'"{CLUSTER}"')
        r = httpx.post(
            f"{again.url}/query",
            json={"query": query, "variables": {"from": _iso(T0), "to": _iso(T0 + 60 * (n + 10))}},
            headers={"Authorization": f"Bearer {site.token(('admin', 'api'))}"},
            trust_env=False,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert "errors" not in result, result
        nodes = {
            x["host"]: x["metrics"][0]["metric"]["series"][0]["data"] for x in result["data"]["nodeMetrics"]
        }
        assert set(nodes) == {"h0", "h3"}
        for host, data in nodes.items():
            assert len(data) >= len(durable), host
            assert data[: len(durable)] == [8.0 * i for i in durable], host
            # Whatever came after the last acknowledged flush is complete or absent, never wrong.
            assert all(v is None or v == 8.0 * i for i, v in enumerate(data)), host
    finally:
        again.proc.send_signal(signal.SIGTERM)
        again.proc.wait(60)

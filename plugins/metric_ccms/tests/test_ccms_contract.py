"""The embedded store and the HTTP client pass the metric-backend contract; the client against
``clustercockpit metric-store serve`` running as its own process (real HTTP, real tokens)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cc_metric_ccms.backend import InternalStore
from cc_metric_ccms.client import ExternalStore
from cc_metric_ccms.config import Checkpoints, ExternalStoreConfig, InternalStoreConfig

from cc_core.testing import free_port, wait_for
from cc_core.testing.metric_contract import MetricBackendContract, MetricDataset, make_cluster
from cc_core.testing.site import Site, make_site


class TestInternalStore(MetricBackendContract):
    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> InternalStore:
        config = InternalStoreConfig(
            retention_in_memory="0", memory_cap=0, checkpoints=Checkpoints(directory=str(tmp_path / "ckpt"))
        )
        store = InternalStore(config, context)
        await store.start()
        store.ingest(dataset.line_protocol(with_fresh=True))
        return store


class StandaloneServer:
    """``clustercockpit metric-store serve`` on a free port, stopped by its PID."""

    def __init__(self, site: Site, log: Path) -> None:
        self.site = site
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **site.environ,
            "CC_LOAD_PLUGINS": "metric-ccms,archive-fs",
            "PYTHONUNBUFFERED": "1",
        }
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cc_core",
                "--config",
                str(site.config_path),
                "--loglevel",
                "info",
                "metric-store",
                "serve",
                "--addr",
                f"127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.log = log

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200

        wait_for(ready, timeout=30, what="the standalone metric store")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[StandaloneServer]:
    site = make_site(tmp_path / "site", [make_cluster()])
    server = StandaloneServer(site, tmp_path / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class TestExternalStore(MetricBackendContract):
    server: StandaloneServer | None = None

    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> ExternalStore:
        # The server resamples, so it gets the contract's minimum-points setting.
        resampling = {"minimum-points": self.MINIMUM_POINTS, "resolutions": [60, 120]}
        site = make_site(tmp_path / "site", [dataset.cluster], config={"main": {"resampling": resampling}})
        server = StandaloneServer(site, tmp_path / "server.log")
        self.server = server
        server.wait_ready()
        token = site.token(["api"])
        async with httpx.AsyncClient(trust_env=False) as c:
            r = await c.post(
                f"{server.url}/api/write",
                content=dataset.line_protocol(with_fresh=True),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
        backend = ExternalStore(ExternalStoreConfig(scope="*", url=server.url, token=token), context)
        await backend.start()
        return backend

    async def close_backend(self, backend: Any) -> None:
        await backend.close()
        if self.server is not None:
            self.server.stop()


# ------------------------------------------------------------------------- standalone server specifics


def test_standalone_requires_a_valid_token(standalone: StandaloneServer) -> None:
    url = f"{standalone.url}/api/query?version=v2"
    r = httpx.request("GET", url, content=b"{}", trust_env=False)
    assert r.status_code == 401
    r = httpx.request("GET", url, content=b"{}", headers={"Authorization": "Bearer nope"}, trust_env=False)
    assert r.status_code == 401
    # Roles are not checked (cc-metric-store accepts any token signed with the site key).
    tok = standalone.site.token(["user"])
    r = httpx.request(
        "GET",
        url,
        content=b'{"cluster": "ctest", "from": 0, "to": 1}',
        headers={"Authorization": f"Bearer {tok}"},
        trust_env=False,
    )
    assert r.status_code == 200 and r.json() == {"results": []}


def test_standalone_query_api_matches_cc_metric_store(standalone: StandaloneServer) -> None:
    """for-all-nodes echo, padding with nulls, with-data false, scale-by, group selectors, bad lines."""
    auth = {"Authorization": f"Bearer {standalone.site.token()}"}
    t0 = 1_700_000_040
    lines = "\n".join(
        f"flops_any,cluster=ctest,hostname=n1,type=hwthread,type-id={hw} value={hw + k} {t0 + 60 * k}"
        for k in range(5)
        for hw in range(8)
    )
    lines += "\n" + "\n".join(
        f"cpu_load,cluster=ctest,hostname=n2 value=1.5 {t0 + 60 * k}" for k in range(2, 5)
    )
    r = httpx.post(f"{standalone.url}/api/write/", content=lines, headers=auth, trust_env=False)
    assert r.status_code == 200 and r.content == b""
    bad = "cpu_load,cluster=ctest,hostname=n9 value=1 1700000000\ncpu_load,hostname=n9 value=abc 1700000000"
    r = httpx.post(f"{standalone.url}/api/write", content=bad, headers=auth, trust_env=False)
    assert r.status_code == 400 and "line 2" in r.json()["error"]

    def query(body: dict[str, Any]) -> Any:
        r = httpx.request(
            "GET", f"{standalone.url}/api/query?version=v2", json=body, headers=auth, trust_env=False
        )
        assert r.status_code == 200, r.text
        return r.json()

    res = query({"cluster": "ctest", "from": t0, "to": t0 + 300, "for-all-nodes": ["cpu_load"]})
    assert {q["host"] for q in res["queries"]} == {"n1", "n2"}  # n9's batch was rejected entirely
    by_host = {q["host"]: row for q, row in zip(res["queries"], res["results"], strict=True)}
    assert by_host["n1"] == []  # no cpu_load on n1: left out
    (n2,) = by_host["n2"]
    assert n2["data"] == [None, None, 1.5, 1.5, 1.5]  # padded to the requested start with null
    assert n2["avg"] == 1.5 and n2["resolution"] == 60
    res = query(
        {
            "cluster": "ctest",
            "from": t0,
            "to": t0 + 300,
            "with-data": False,
            "queries": [
                {
                    "metric": "flops_any",
                    "host": "n1",
                    "type": "hwthread",
                    "type-ids": ["0", "4"],
                    "aggreg": True,
                },
                {
                    "metric": "flops_any",
                    "host": "n1",
                    "type": "hwthread",
                    "type-ids": ["1", "2"],
                    "scale-by": 2,
                },
            ],
        }
    )
    (core0,) = res["results"][0]
    assert "data" not in core0 and core0["avg"] == 8.0  # (0+k) + (4+k), k = 0..4 → mean 8
    assert [x["avg"] for x in res["results"][1]] == [6.0, 8.0]
    r = httpx.request(
        "GET", f"{standalone.url}/api/query", content=b'{"from": 5, "to": 1}', headers=auth, trust_env=False
    )
    assert r.status_code == 400


def test_standalone_final_checkpoint_survives_restart(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", [make_cluster()])
    t0 = 1_700_000_040
    body = "\n".join(f"cpu_load,cluster=ctest,hostname=n1 value={k} {t0 + 60 * k}" for k in range(10))
    for attempt in range(2):
        server = StandaloneServer(site, tmp_path / f"server{attempt}.log")
        try:
            server.wait_ready()
            auth = {"Authorization": f"Bearer {site.token()}"}
            if attempt == 0:
                assert (
                    httpx.post(
                        f"{server.url}/api/write", content=body, headers=auth, trust_env=False
                    ).status_code
                    == 200
                )
            else:
                r = httpx.request(
                    "GET",
                    f"{server.url}/api/query",
                    json={
                        "cluster": "ctest",
                        "from": t0,
                        "to": t0 + 600,
                        "queries": [{"metric": "cpu_load", "host": "n1"}],
                    },
                    headers=auth,
                    trust_env=False,
                )
                assert r.json()["results"][0][0]["data"] == [float(k) for k in range(10)]
        finally:
            # uvicorn re-raises SIGTERM after its graceful shutdown.
            assert server.stop() in (0, -signal.SIGTERM)
            assert "final checkpoint written" in server.log.read_text()
    assert list((site.root / "var" / "checkpoints" / "ctest" / "n1").glob("*.bin"))

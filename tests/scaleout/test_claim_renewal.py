"""A replica renews its archive claim while a job takes longer to archive than the claim's TTL, so no
other replica takes the job over; and a replica whose claim *was* taken over (its renewals stalled)
gives the job up without writing a second archive.

The slow step is real: a metric backend plugin (registered through the plugin door like any other)
serves the job's data from the embedded store only once the test opens its gate."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, update

from cc_core.db import SYSTEM_USER
from cc_core.db import tables as T
from cc_core.hookspecs import hookimpl
from cc_core.testing import wait_for
from cc_core.testing.metric_contract import CLUSTER, MetricDataset, make_cluster
from cc_core.testing.site import Site, make_site
from tests.metrics.conftest import App

TTL = 0.6
#: Gates by name: a gated backend serves data only once its gate is set; `entered` says it is waiting.
GATES: dict[str, threading.Event] = {}
ENTERED: dict[str, threading.Event] = {}


class GatedConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    scope: str
    gate: str


class GatedStore:
    """A ``metric-store-external`` kind for tests: the embedded store's data, served once a gate opens."""

    kind: ClassVar[str] = "test-gated"
    Config: ClassVar[type] = GatedConfig

    def __init__(self, config: GatedConfig, context: Any) -> None:
        self.config = config
        self.context = context

    def _inner(self) -> Any:
        return self.context.services["metric_store"]

    async def load_data(
        self, job: Any, metrics: Sequence[str], scopes: Sequence[str], resolution: int
    ) -> Mapping[str, Mapping[str, Any]]:
        ENTERED[self.config.gate].set()
        gate = GATES[self.config.gate]
        while not gate.is_set():
            await asyncio.sleep(0.02)
        return await self._inner().load_data(job, metrics, scopes, resolution)

    def __getattr__(self, name: str) -> Any:  # every other call: straight to the embedded store
        if name.startswith("load_") or name in ("health_check", "node_health"):
            return getattr(self._inner(), name)
        raise AttributeError(name)


class GatedPlugin:
    @hookimpl
    def register_metric_backends(self, register: Any) -> None:
        register(GatedStore)


def _open(site: Site) -> TestClient[Any]:
    from cc_core.app import create_app
    from cc_core.plugins import make_plugin_manager

    registry = make_plugin_manager(
        environ={"CC_LOAD_PLUGINS": "metric-ccms,archive-fs"}, extra_plugins=[GatedPlugin()]
    )
    return TestClient(create_app(site.config(), registry=registry), raise_server_exceptions=False)


@pytest.fixture
def replicas(
    tmp_path: Path, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, App]]:
    monkeypatch.setenv("CC_ARCHIVE_CLAIM_TTL", str(TTL))
    monkeypatch.setenv("CC_ARCHIVE_SWEEP_INTERVAL", "0")  # sweeps only when the test asks
    shared_archive = str(tmp_path / "a" / "var" / "job-archive")
    sites = []
    for name in ("a", "b"):
        GATES[name] = threading.Event()
        ENTERED[name] = threading.Event()
        config: dict[str, Any] = {
            "main": {"db": postgresql_url},
            "metric-store-external": [{"kind": "test-gated", "scope": CLUSTER, "gate": name}],
        }
        if name == "b":
            config["archive"] = {"kind": "file", "path": shared_archive}
        sites.append(make_site(tmp_path / name, [make_cluster()], config=config))
    GATES["b"].set()
    with _open(sites[0]) as ca, _open(sites[1]) as cb:
        a, b = App(ca, sites[0]), App(cb, sites[1])
        assert a.services.archiver.claims.ttl == TTL
        yield a, b


def _prepare(a: App, b: App, job_id: int) -> tuple[int, Path]:
    """Data in both replicas' stores, a running job; returns its id and its archive directory."""
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix=f"r{job_id}")
    for app in (a, b):
        r = app.client.post("/api/write", content=ds.line_protocol(), headers=app.auth())
        assert r.status_code == 200, r.text
    job = a.call(a.services.db.jobs.start, ds.job(id=None, job_id=job_id, job_state="running", duration=0))
    body = {
        "jobId": job_id,
        "cluster": CLUSTER,
        "startTime": ds.t0,
        "jobState": "completed",
        "stopTime": ds.stop,
    }
    r = a.client.post("/api/jobs/stop_job/", json=body, headers=a.auth())  # queued at a
    assert r.status_code == 200, r.text
    root = Path(a.site.root) / "var" / "job-archive" / CLUSTER
    return job.id, root / str(job_id // 1000) / f"{job_id % 1000:03d}" / str(ds.t0)


def _status(app: App, id_: int) -> int:
    return app.call(app.services.db.jobs.find_by_id, SYSTEM_USER, id_).monitoring_status


def _claims(app: App) -> int:
    return app.call(
        app.services.db.read,
        lambda c: c.execute(select(func.count()).select_from(T.archive_claim)).scalar_one(),
    )


def test_claim_is_renewed_while_archiving_takes_longer_than_its_ttl(replicas: tuple[App, App]) -> None:
    a, b = replicas
    id_, job_dir = _prepare(a, b, 5001)
    assert ENTERED["a"].wait(30), "replica a never started archiving"
    # a is stuck loading the job's data for 4 TTLs; b finds the claim live every time it looks.
    deadline = time.monotonic() + 4 * TTL
    looks = 0
    while time.monotonic() < deadline:
        assert b.call(b.services.archiver.claims.claim, id_) is False
        assert b.call(b.services.archiver.sweep) == 0
        looks += 1
        time.sleep(TTL / 4)
    assert looks >= 8
    assert not (job_dir / "meta.json").exists()
    GATES["a"].set()
    a.call(a.services.archiver.join)
    assert (a.services.archiver.archived, a.services.archiver.lost, a.services.archiver.failed) == (1, 0, 0)
    assert b.services.archiver.archived == 0
    assert _status(a, id_) == 3
    assert (job_dir / "meta.json").is_file()
    assert _claims(a) == 0  # released after archiving


def test_replica_whose_claim_was_taken_over_does_not_write(
    replicas: tuple[App, App], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replicas
    id_, job_dir = _prepare(a, b, 5002)
    assert ENTERED["a"].wait(30), "replica a never started archiving"
    db = b.services.db
    claims_b = b.services.archiver.claims

    # a's renewals stall beyond the TTL (as in a paused process): its claim expires and b takes over.
    def expire(c: Any) -> None:
        c.execute(update(T.archive_claim).where(T.archive_claim.c.job_id == id_).values(expires_ms=1))

    def take_over() -> bool:
        b.call(db.write, expire)
        return bool(b.call(claims_b.claim, id_))

    wait_for(take_over, timeout=10, what="b taking over the expired claim")
    job = b.call(db.jobs.find_by_id, SYSTEM_USER, id_)
    b.call(b.services.archiver.archive_job, job)
    b.call(claims_b.release, id_)
    written = (job_dir / "meta.json").read_bytes()
    assert _status(b, id_) == 3

    with caplog.at_level(logging.WARNING, logger="cc_core.metrics.archiver"):
        GATES["a"].set()  # a gets its data now, finds its claim gone, and gives the job up
        a.call(a.services.archiver.join)
    arch = a.services.archiver
    assert (arch.archived, arch.lost, arch.failed) == (0, 1, 0)
    assert "given up" in caplog.text and "5002" in caplog.text
    assert (job_dir / "meta.json").read_bytes() == written  # not written a second time
    assert _status(a, id_) == 3  # b's result stands (a did not mark it failed)
    assert _claims(a) == 0

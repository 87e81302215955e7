"""Line-protocol ingest from NATS (``metric-store.nats-subscriptions``) against a real nats-server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cc_core.testing import NatsServer
from cc_core.testing.metric_contract import CLUSTER, make_cluster
from cc_core.testing.site import make_site

from .conftest import App, open_app

pytestmark = pytest.mark.service("nats")
T0 = 1_700_000_040


def test_nats_subscription_ingests_and_survives_bad_messages(nats_server: NatsServer, tmp_path: Path) -> None:
    import nats

    site = make_site(
        tmp_path / "site",
        [make_cluster()],
        config={
            "nats": {"address": nats_server.url},
            "metric-store": {
                "nats-subscriptions": [
                    {"subscribe-to": "ccmetrics", "cluster-tag": CLUSTER},
                    {"subscribe-to": "other"},
                ]
            },
        },
    )
    with open_app(site) as client:
        app = App(client, site)
        store = app.services.context.services["metric_store"]

        async def publish() -> None:
            nc = await nats.connect(nats_server.url)
            for k in range(50):  # 50 messages of 8 lines, one per hardware thread
                lines = "\n".join(
                    f"flops_any,hostname=nats1,type=hwthread,type-id={c} value={k} {T0 + 60 * k}"
                    for c in range(8)
                )
                await nc.publish("ccmetrics", lines.encode())
            await nc.publish("ccmetrics", b"flops_any,hostname=nats2 value=oops 1700000040")
            await nc.publish("other", f"cpu_load,cluster={CLUSTER},hostname=nats3 value=2 {T0}".encode())
            await nc.publish("other", b"cpu_load,hostname=nats4 value=2 1700000040")  # no cluster at all
            await nc.flush()
            await nc.close()

        app.call(publish)
        deadline = time.monotonic() + 10
        while store.nats.stats.messages < 53 and time.monotonic() < deadline:
            app.call(asyncio.sleep, 0.05)
        assert store.nats.stats.messages == 53
        assert store.nats.stats.rejected >= 1  # the bad value; nothing of it is stored
        engine = store.engine
        r = engine.store.read([CLUSTER, "nats1"], "flops_any", T0, T0 + 60 * 50)
        assert r.data.tolist() == [8.0 * k for k in range(50)]
        assert engine.store.list_children([CLUSTER]) == ["nats1", "nats3"]

"""``POST|PUT /api/nodestate/`` and ``POST /api/healthcheck`` (contract §1.2): scheduler state
priority, health from the metric store, one node_state row per node."""

from __future__ import annotations

import time

import pytest

from cc_core.api.nodestate import determine_state
from cc_core.testing.metric_contract import CLUSTER, METRIC_NAMES

from .conftest import App


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["ALLOCATED", "idle"], "allocated"),
        (["reserved", "down"], "reserved"),
        (["idle", "down"], "down"),
        (["Idle"], "idle"),
        (["down", "mixed"], "down"),
        (["mixed", "drain"], "mixed"),
        (["drain"], "unknown"),
        ([], "unknown"),
    ],
)
def test_state_priority(states: list[str], expected: str) -> None:
    assert determine_state(states) == expected


def _fresh(host: str, metrics: list[str]) -> bytes:
    now = int(time.time())
    lines = []
    for m in metrics:
        if m == "flops_any":
            lines += [f"{m},hostname={host},type=hwthread,type-id={i} value=1 {now}" for i in range(8)]
        elif m in ("mem_bw", "cpu_power"):
            lines += [f"{m},hostname={host},type=socket,type-id={i} value=1 {now}" for i in range(2)]
        else:
            lines.append(f"{m},hostname={host} value=1 {now}")
    return "\n".join(lines).encode()


def test_node_states_with_health(app: App) -> None:
    c = app.client
    ok = c.post(f"/api/write?cluster={CLUSTER}", content=_fresh("n1", METRIC_NAMES), headers=app.auth())
    assert ok.status_code == 200
    assert (
        c.post(
            f"/api/write?cluster={CLUSTER}", content=_fresh("n2", ["cpu_load"]), headers=app.auth()
        ).status_code
        == 200
    )
    body = {
        "cluster": CLUSTER,
        "nodes": [
            {
                "hostname": "n1",
                "states": ["allocated"],
                "cpusAllocated": 8,
                "memoryAllocated": 1024,
                "jobsRunning": 1,
            },
            {"hostname": "n2", "states": ["idle"]},
            {"hostname": "n3", "states": ["idle"]},
            {"hostname": "n4", "states": ["down", "idle"]},
        ],
    }
    r = c.post("/api/nodestate/", json=body, headers=app.auth())
    assert r.status_code == 200, r.text
    assert r.json() == {"msg": f"updated states of 4 node(s) of cluster {CLUSTER}"}
    states = app.call(app.services.db.nodes.states_of_cluster, CLUSTER)
    assert states == {
        "n1": ("allocated", "full"),
        "n2": ("idle", "partial"),
        "n3": ("idle", "failed"),  # no data at all
        "n4": ("down", "full"),  # down nodes are not checked
    }
    node = app.call(app.services.db.nodes.get, "n2", CLUSTER, with_meta=True)
    assert sorted(node.health_data["missing"] + node.health_data["degraded"]) == sorted(
        set(METRIC_NAMES) - {"cpu_load"}
    )
    # PUT is the same; /api/healthcheck too, behind the metric-store guard.
    assert c.put("/api/nodestate", json=body, headers=app.auth()).status_code == 200
    assert c.post("/api/healthcheck", json=body, headers=app.auth(("user", "api"))).status_code == 200
    assert c.post("/api/nodestate/", json=body, headers=app.auth(("user", "api"))).status_code == 403


def test_bad_bodies(app: App) -> None:
    c = app.client
    r = c.post("/api/nodestate/", json={"cluster": CLUSTER, "nodes": [], "extra": 1}, headers=app.auth())
    assert r.status_code == 400 and "extra" in r.json()["error"]
    r = c.post("/api/nodestate/", json={"cluster": "nope", "nodes": []}, headers=app.auth())
    assert r.status_code == 400 and "unknown cluster" in r.json()["error"]
    r = c.post("/api/nodestate/", content=b"{", headers=app.auth())
    assert r.status_code == 400
    assert c.post("/api/nodestate/", json={"cluster": CLUSTER, "nodes": []}).status_code == 401

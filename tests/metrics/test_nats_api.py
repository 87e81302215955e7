"""The NATS API (contract §7) against a real nats-server: job start/stop and node-state events in
upstream's line-protocol format reach the database; bad messages are logged and dropped while the
subscriptions keep working."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cc_core.db import SYSTEM_USER
from cc_core.natsapi.lineprotocol import LineProtocolError, escape_string, parse, parse_line
from cc_core.schema.job import Tag
from cc_core.testing import NatsServer
from cc_core.testing.metric_contract import CLUSTER, MetricDataset, make_cluster
from cc_core.testing.site import make_site

from .conftest import App, open_app

JOB_SUBJECT = "cc.job-events"
NODE_SUBJECT = "cc.node-states"


# -------------------------------------------------------------------------------- line protocol


def test_event_lines_decode_with_escapes() -> None:
    payload = '{"jobId": 1, "note": "say \\"hi\\" \\\\ bye", "a b": "c,d=e"}'
    line = f"job,function=start_job,cluster\\ name=a\\,b event={escape_string(payload)},n=3i,x=1.5,ok=t 1700000000000000000"
    m = parse_line(line)
    assert m.name == "job" and m.tags == {"function": "start_job", "cluster name": "a,b"}
    assert m.event == payload and m.fields["n"] == 3 and m.fields["x"] == 1.5 and m.fields["ok"] is True
    assert m.time == 1_700_000_000_000_000_000
    assert parse_line("nodestate value=1").event is None  # not an event: no string field "event"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('job,function=start_job event="{', "unterminated string"),
        ('job,function event="x"', "malformed tag"),
        ("job", "no fields"),
        ("job value=abc", "invalid value"),
        ('job event="x" 12ab', "invalid timestamp"),
        (",a=b value=1", "missing measurement"),
    ],
)
def test_invalid_lines_name_the_problem(line: str, problem: str) -> None:
    with pytest.raises(LineProtocolError, match=problem):
        parse_line(line)


def test_lines_before_a_bad_one_are_kept() -> None:
    msgs, error = parse(b'# comment\njob event="a"\n\njob event="b"\r\njob event=\nlast event="c"')
    assert [m.event for m in msgs] == ["a", "b"]
    assert error is not None and "line 5" in str(error)


# ------------------------------------------------------------------------------- against NATS


def _start_line(job: Any) -> bytes:
    body = msgspec.json.encode(job).decode()
    return f"job,function=start_job event={escape_string(body)} {time.time_ns()}".encode()


def _stop_line(**req: Any) -> bytes:
    return f"job,function=stop_job event={escape_string(msgspec.json.encode(req).decode())}".encode()


class Collect(logging.Handler):
    """Log records of ``cc_core`` (Litestar's logging setup replaces the root handlers caplog uses)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def clear(self) -> None:
        self.lines.clear()


def _wait(app: App, api: Any, predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        app.call(asyncio.sleep, 0.05)
    app.call(api.join)
    assert predicate()


@pytest.mark.service("nats")
def test_job_and_node_events_over_nats(nats_server: NatsServer, tmp_path: Path) -> None:
    import nats

    caplog = Collect()
    logger = logging.getLogger("cc_core")
    logger.addHandler(caplog)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        _scenario(nats_server, tmp_path, caplog, nats)
    finally:
        logger.removeHandler(caplog)
        logger.setLevel(old_level)


def _scenario(nats_server: NatsServer, tmp_path: Path, caplog: Collect, nats: Any) -> None:
    site = make_site(
        tmp_path / "site",
        [make_cluster()],
        config={
            "nats": {"address": nats_server.url},
            "main": {
                "api-subjects": {
                    "subject-job-event": JOB_SUBJECT,
                    "subject-node-state": NODE_SUBJECT,
                    "job-concurrency": 4,
                }
            },
        },
    )
    now = int(time.time()) // 60 * 60
    ds = MetricDataset(t0=now - 45 * 60, points=40, prefix="nt")
    job = ds.job(id=None, job_state="running", duration=0, monitoring_status=1)

    async def publish(*messages: tuple[str, bytes]) -> None:
        nc = await nats.connect(nats_server.url)
        for subject, data in messages:
            await nc.publish(subject, data)
        await nc.flush()
        await nc.close()

    with open_app(site) as client:
        app = App(client, site)
        api = app.services.context.services["nats_api"]
        app.call(lambda: asyncio.wait_for(api.ready.wait(), 15))
        assert "UNAUTHENTICATED" in caplog.text and JOB_SUBJECT in caplog.text

        # REST start/stop are off while the NATS API owns job events (upstream does not mount them)
        r = client.post("/api/jobs/start_job/", json={}, headers=app.auth())
        assert r.status_code == 404 and "NATS" in r.json()["error"]

        # start, then stop in the same batch: handled in order (same jobId → same worker)
        app.call(
            publish,
            (
                JOB_SUBJECT,
                _start_line(job)
                + b"\n"
                + _stop_line(jobId=4711, cluster=CLUSTER, stopTime=ds.stop, jobState="completed"),
            ),
        )
        _wait(app, api, lambda: api.stats.handled >= 2)
        (stored,) = app.call(app.services.db.jobs.find_all, SYSTEM_USER, 4711, CLUSTER)
        assert stored.job_state == "completed" and stored.duration == ds.stop - ds.t0
        app.call(app.services.archiver.join)  # queued for archiving like a REST stop
        assert app.call(app.services.db.jobs.find_by_id, SYSTEM_USER, stored.id).monitoring_status == 3

        # bad messages: broken line protocol, bad JSON, unknown function, duplicate start, missing jobId
        before = api.stats.rejected
        caplog.clear()
        app.call(
            publish,
            (JOB_SUBJECT, b'job,function=start_job event="{\\"jobId\\": 1'),
            (JOB_SUBJECT, b'job,function=start_job event="{not json}"'),
            (JOB_SUBJECT, b'job,function=restart_job event="{}"'),
            (JOB_SUBJECT, _start_line(job)),
            (JOB_SUBJECT, _stop_line(cluster=CLUSTER, stopTime=ds.stop)),
            (NODE_SUBJECT, b'nodestate event="{\\"cluster\\": \\"nowhere\\", \\"nodes\\": []}"'),
        )
        _wait(app, api, lambda: api.stats.rejected >= before + 6)
        text = caplog.text
        assert "invalid line protocol" in text and "unterminated string" in text
        assert "parsing the event failed" in text and "unknown function 'restart_job'" in text
        assert "already" in text.lower() or "duplicate" in text.lower() or "exists" in text.lower()
        assert "'jobId' is required" in text and "unknown cluster 'nowhere'" in text

        # ... and the subscriptions still work: a new job and a node-state report
        handled = api.stats.handled
        second = ds.job(
            id=None,
            job_id=4800,
            job_state="running",
            duration=0,
            monitoring_status=1,
            tags=[Tag(type="queue", name="nats", scope="global")],  # upstream: fails (nil user)
        )
        report = {
            "cluster": CLUSTER,
            "nodes": [
                {"hostname": "nta", "states": ["allocated"], "cpusAllocated": 8, "jobsRunning": 1},
                {"hostname": "ntb", "states": ["idle", "down"]},
            ],
        }
        node_line = f"nodestate event={escape_string(msgspec.json.encode(report).decode())}".encode()
        app.call(publish, (JOB_SUBJECT, _start_line(second)), (NODE_SUBJECT, node_line))
        _wait(app, api, lambda: api.stats.handled >= handled + 2)
        (new,) = app.call(app.services.db.jobs.find_all, SYSTEM_USER, 4800, CLUSTER)
        assert new.job_state == "running"
        tags = app.call(app.services.db.tags.of_job, SYSTEM_USER, new.id)
        assert [(t.type, t.name) for t in tags] == [("queue", "nats")]
        states = app.call(app.services.db.nodes.states_of_cluster, CLUSTER)
        assert states["nta"][0] == "allocated" and states["ntb"][0] == "down"

        # a queue group: another member (a second replica) takes a share of the events, none twice
        from cc_core.natsapi.api import QUEUE_GROUP

        async def share(n: int) -> int:
            nc = await nats.connect(nats_server.url)
            got: list[bytes] = []

            async def take(msg: Any) -> None:
                got.append(msg.data)

            await nc.subscribe(JOB_SUBJECT, queue=QUEUE_GROUP, cb=take)
            await nc.flush()
            for i in range(n):
                await nc.publish(JOB_SUBJECT, f'job,function=noop_{i} event="{{}}"'.encode())
            await nc.flush()
            await asyncio.sleep(0.5)
            await nc.close()
            return len(got)

        before = api.stats.rejected
        taken = app.call(share, 40)
        _wait(app, api, lambda: api.stats.rejected >= before + 40 - taken)
        assert 0 < taken < 40 and api.stats.rejected - before == 40 - taken

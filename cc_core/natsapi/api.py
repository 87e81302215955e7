"""Job events and node states over NATS (upstream ``internal/api/nats.go``, contract §7).

Enabled by ``main.api-subjects`` together with a ``nats`` section. Messages are line protocol; only
*event* lines (a string field ``event`` holding JSON) are used:

* ``subject-job-event``: ``job,function=start_job event="<Job JSON>"`` and
  ``job,function=stop_job event="<StopJobAPIRequest JSON>"`` — decoded as strictly as the REST bodies
  and handled by the same `cc_core.lifecycle` functions (checks, duplicate rule, archiving);
* ``subject-node-state``: ``nodestate event="<UpdateNodeStatesRequest JSON>"`` — handled by
  `cc_core.api.nodestate.update_node_states`, as ``POST /api/nodestate/``.

Nobody waits for an answer, so every problem (bad line protocol, bad JSON, unknown job, …) is logged
and the message dropped; the subscription goes on. The subjects are unauthenticated — whoever may
publish on the broker can start and stop jobs — so a warning says so at start-up (restrict publish
rights with the broker's ACLs).

Concurrency: ``job-concurrency`` (8) and ``node-concurrency`` (2) workers, as upstream's pools. Unlike
upstream, events of the same job (cluster, jobId) always go to the same worker, so a stop published
right after its start is never handled before it; node states are routed by cluster likewise.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from cc_core.natsapi.lineprotocol import Message, parse

if TYPE_CHECKING:
    from cc_core.config import ApiSubjects, NatsConfig
    from cc_core.services import CoreServices

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
RECONNECT_WAIT = 2.0
PENDING_MSGS_LIMIT = 100_000
QUEUE_GROUP = "clustercockpit-api"


@dataclass(slots=True)
class NatsAPIStats:
    """Counters since start (for tests and diagnostics)."""

    messages: int = 0
    events: int = 0
    handled: int = 0
    rejected: int = 0


def connect_options(nats_config: NatsConfig, name: str) -> dict[str, Any]:
    """nats-py ``connect`` arguments from the ``nats`` section (address, user/password, creds file)."""
    opts: dict[str, Any] = {
        "servers": [nats_config.address],
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
    }
    if nats_config.username:
        opts["user"] = nats_config.username
        opts["password"] = nats_config.password
    if nats_config.creds_file_path:
        opts["user_credentials"] = nats_config.creds_file_path
    return opts


class _Pool:
    """``size`` workers, each with its own queue; an item goes to the worker its key hashes to."""

    def __init__(self, name: str, size: int, handle: Callable[[Message], Awaitable[None]]) -> None:
        self.name = name
        self.queues: list[asyncio.Queue[Message]] = [asyncio.Queue(QUEUE_SIZE) for _ in range(max(size, 1))]
        self.handle = handle
        self.tasks = [
            asyncio.create_task(self._work(q), name=f"nats-{name}-{i}") for i, q in enumerate(self.queues)
        ]

    async def put(self, key: str, msg: Message) -> None:
        q = self.queues[zlib.crc32(key.encode()) % len(self.queues)]
        await q.put(msg)

    async def _work(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            msg = await queue.get()
            try:
                await self.handle(msg)
            finally:
                queue.task_done()

    async def join(self) -> None:
        for q in self.queues:
            await q.join()

    async def close(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.join(), timeout)
        except TimeoutError:
            log.warning("NATS API: %s events still queued at shutdown were dropped", self.name)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class NatsAPI:
    """See the module docstring. `start` returns at once; the connection is made in the background
    (and retried while the broker is unreachable); `ready` is set once both subjects are subscribed."""

    def __init__(self, services: CoreServices, subjects: ApiSubjects, nats_config: NatsConfig) -> None:
        self.services = services
        self.subjects = subjects
        self.nats_config = nats_config
        self.stats = NatsAPIStats()
        self.ready = asyncio.Event()
        self._nc: Any = None
        self._connector: asyncio.Task[None] | None = None
        self._jobs: _Pool | None = None
        self._nodes: _Pool | None = None

    @classmethod
    def from_services(cls, services: CoreServices) -> NatsAPI | None:
        """The API if ``main.api-subjects`` is set; without a ``nats`` section say why nothing listens."""
        config = services.config
        if config.main.api_subjects is None:
            return None
        if config.nats is None:
            log.error(
                "main.api-subjects is set but there is no `nats` section: job events are not received "
                "(and start_job/stop_job over REST are off while api-subjects is set)"
            )
            return None
        return cls(services, config.main.api_subjects, config.nats)

    async def start(self) -> None:
        self._jobs = _Pool("job", self.subjects.job_concurrency, self._job_event)
        self._nodes = _Pool("nodestate", self.subjects.node_concurrency, self._node_event)
        self._connector = asyncio.create_task(self._connect(), name="nats-api-connect")

    async def _connect(self) -> None:
        import nats

        warned = False
        while True:
            try:
                self._nc = await nats.connect(**connect_options(self.nats_config, "clustercockpit-api"))
                break
            except Exception as e:
                if not warned:
                    log.error(
                        "NATS API: cannot connect to %s (%s); retrying every %.0f s",
                        self.nats_config.address,
                        e,
                        RECONNECT_WAIT,
                    )
                    warned = True
                await asyncio.sleep(RECONNECT_WAIT)
        s = self.subjects
        for subject, handler in (
            (s.subject_job_event, self._on_job_message),
            (s.subject_node_state, self._on_node_message),
        ):
            # A queue group: with several server replicas each event is handled by one of them only.
            await self._nc.subscribe(
                subject, queue=QUEUE_GROUP, cb=handler, pending_msgs_limit=PENDING_MSGS_LIMIT
            )
        await self._nc.flush()
        log.warning(
            "NATS API subscriptions started on subjects %r and %r. They are UNAUTHENTICATED: anyone who "
            "may publish on the broker can start and stop jobs and set node states. Restrict publish "
            "rights on these subjects to trusted producers with the broker's ACLs.",
            s.subject_job_event,
            s.subject_node_state,
        )
        self.ready.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop receiving, finish queued events (up to ``timeout``), disconnect."""
        if self._connector is not None:
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception as e:  # already closed or the broker is gone
                log.debug("NATS API drain: %s", e)
                await self._nc.close()
            self._nc = None
        for pool in (self._jobs, self._nodes):
            if pool is not None:
                await pool.close(timeout)

    async def join(self) -> None:
        """Wait until every event received so far is handled (tests)."""
        for pool in (self._jobs, self._nodes):
            if pool is not None:
                await pool.join()

    # ------------------------------------------------------------------------------ receiving

    def _events(self, msg: Any, expected: str) -> list[Message]:
        self.stats.messages += 1
        if not msg.data:
            log.warning("NATS %s: empty message", msg.subject)
            self.stats.rejected += 1
            return []
        lines, error = parse(msg.data)
        if error is not None:
            self.stats.rejected += 1
            log.error("NATS %s: invalid line protocol, rest of the message dropped: %s", msg.subject, error)
        out = []
        for m in lines:
            if m.event is None:
                log.debug("NATS %s: non-event message %r skipped", msg.subject, m.name)
            elif m.name != expected:
                log.warning("NATS %s: unexpected measurement %r (expected %r)", msg.subject, m.name, expected)
            else:
                out.append(m)
        self.stats.events += len(out)
        return out

    async def _on_job_message(self, msg: Any) -> None:
        assert self._jobs is not None
        for m in self._events(msg, "job"):
            await self._jobs.put(_job_key(m), m)

    async def _on_node_message(self, msg: Any) -> None:
        assert self._nodes is not None
        for m in self._events(msg, "nodestate"):
            await self._nodes.put(_cluster_key(m.event or ""), m)

    # ------------------------------------------------------------------------------- handling

    async def _job_event(self, m: Message) -> None:
        function = m.tags.get("function")
        try:
            if function == "start_job":
                await self._start_job(m.event or "")
            elif function == "stop_job":
                await self._stop_job(m.event or "")
            else:
                raise EventError(f"unknown function {function!r} (expected start_job or stop_job)")
            self.stats.handled += 1
        except Exception as e:
            self.stats.rejected += 1
            _log_failure(f"NATS job event ({function})", e)

    async def _start_job(self, payload: str) -> None:
        from cc_core.lifecycle import start_job
        from cc_core.schema.job import StrictJob

        job = _decode(payload, StrictJob, "start job")
        stored = await start_job(self.services, job, None)
        log.info(
            "NATS: new job (id %s): cluster=%s jobId=%d user=%s start=%d",
            stored.id,
            stored.cluster,
            stored.job_id,
            stored.user,
            stored.start_time,
        )

    async def _stop_job(self, payload: str) -> None:
        from cc_core.api.jobs import StopJobAPIRequest
        from cc_core.lifecycle import stop_job

        req = _decode(payload, StopJobAPIRequest, "stop job")
        if req.job_id is None:
            raise EventError("stop job: the field 'jobId' is required")
        job = await stop_job(
            self.services,
            req.job_id,
            stop_time=req.stop_time,
            state=req.job_state,
            cluster=req.cluster,
            start_time=req.start_time,
        )
        log.info(
            "NATS: stopped job (id %s): cluster=%s jobId=%d state=%s duration=%d",
            job.id,
            job.cluster,
            job.job_id,
            job.job_state,
            job.duration,
        )

    async def _node_event(self, m: Message) -> None:
        from cc_core.api.nodestate import UpdateNodeStatesRequest, update_node_states

        try:
            req = _decode(m.event or "", UpdateNodeStatesRequest, "nodestate")
            stored, skipped = await update_node_states(self.services, req.cluster, req.nodes)
            log.debug(
                "NATS nodestate: %d node(s) of %s stored, %d skipped", stored, req.cluster, len(skipped)
            )
            self.stats.handled += 1
        except Exception as e:
            self.stats.rejected += 1
            _log_failure("NATS nodestate", e)


class EventError(ValueError):
    """An event that cannot be handled (bad JSON, missing field, unknown function)."""


def _decode(payload: str, type_: Any, what: str) -> Any:
    if not payload:
        raise EventError(f"{what}: the event payload is empty")
    try:
        return msgspec.json.decode(payload, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise EventError(f"{what}: parsing the event failed: {e}") from None


def _log_failure(where: str, e: Exception) -> None:
    from cc_core.api.errors import APIError
    from cc_core.db.errors import DBError

    if isinstance(e, EventError | DBError | APIError | ValueError):
        log.error("%s: %s", where, getattr(e, "detail", None) or e)
    else:
        log.exception("%s failed", where)


_KEY_DECODER = msgspec.json.Decoder(dict[str, Any])


def _job_key(m: Message) -> str:
    """The jobId of a job event (picks its worker; a stop may omit the cluster, so only the jobId), or
    the raw payload when it does not decode."""
    try:
        return str(_KEY_DECODER.decode(m.event or "").get("jobId"))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return m.event or ""


def _cluster_key(payload: str) -> str:
    try:
        return str(_KEY_DECODER.decode(payload).get("cluster"))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return payload

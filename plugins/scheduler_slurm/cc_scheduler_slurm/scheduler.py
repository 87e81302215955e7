"""`SlurmScheduler`: polls Slurm and feeds job starts, stops and node states into the core.

One sync (every ``poll-interval`` seconds):

1. the cluster's running jobs from our database (the state that survives restarts — nothing is kept
   only in memory that a restart could lose);
2. ``squeue --json --all --states=all``: every job slurmctld knows, including those that finished within
   its ``MinJobAge`` (300 s by default), with their final state and end time;
3. database jobs whose Slurm job (same job id) ended are stopped with Slurm's end time and state; a
   requeued job (pending again, or running again with a new start time) stays the job we recorded
   until it ends. Slurm jobs that run (or ran) and are not in the database are started — a job that
   started and ended between two polls is started and stopped at once; a start refused as a duplicate
   means an earlier run of this service already recorded it;
4. database jobs slurmctld no longer knows at all (it ended while this service was down for longer than
   ``MinJobAge``) are looked up with ``sacct --json`` when Slurm has accounting; without accounting
   they are stopped as ``failed`` at the end of their walltime (or now), with a warning, after being
   missing from two consecutive polls;
5. every ``node-state-interval`` seconds, ``sinfo --json`` node states go to the node-state table.

Slurm being unreachable (a command failing, timing out, or giving no JSON) never counts as "the job is
gone": the sync is abandoned, logged, and retried with exponential backoff up to ``retry-max`` seconds.
The service must see every job: run it as root, as ``SlurmUser``, or as a Slurm operator when the site
sets ``PrivateData=jobs``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec

from cc_core.db.errors import DBError, DuplicateJobError, JobAlreadyStoppedError, JobNotFoundError
from cc_core.schema.job import Job, Resource
from cc_scheduler_slurm.commands import SlurmCommands, SlurmUnavailable
from cc_scheduler_slurm.parse import (
    STOP_STATES,
    AccountedJob,
    SlurmJob,
    SlurmNode,
    parse_sacct,
    parse_sinfo,
    parse_squeue,
)

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.interfaces import JobEventSink
    from cc_core.schema.cluster import Cluster, Topology

log = logging.getLogger(__name__)

Seconds = Annotated[float, msgspec.Meta(gt=0)]
REJECTED_RETRY = 300.0  # seconds before a job the core refused is offered again


class SlurmConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    """A Slurm cluster whose jobs and node states the server records (what cc-slurm-adapter does).

    Polls ``squeue``/``sinfo`` (and ``sacct`` when Slurm has accounting) on the server's machine.
    """

    cluster: str
    slurm_conf: str = ""
    bin_dir: str = ""
    poll_interval: Seconds = 30.0
    node_state_interval: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    command_timeout: Seconds = 30.0
    retry_max: Seconds = 300.0
    accounting: Literal["auto", "on", "off"] = "auto"
    job_script: bool = True
    slurm_info: bool = True
    gpu_pci_addrs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    ignore_hosts: str = ""

    config_docs: ClassVar[dict[str, str]] = {
        "cluster": "The ClusterCockpit cluster (its `cluster.json` in the job archive) the Slurm jobs belong to.",
        "slurm-conf": "`SLURM_CONF` for the Slurm commands (empty: Slurm's own lookup).",
        "bin-dir": "Directory of `squeue`, `sinfo`, `sacct` and `scontrol` (empty: the `PATH`).",
        "poll-interval": "Seconds between two syncs of Slurm's jobs with the database.",
        "node-state-interval": "Seconds between two node-state reports from `sinfo` (0: none).",
        "command-timeout": "Seconds before a Slurm command that has not answered is killed.",
        "retry-max": "Longest pause (seconds) between attempts while Slurm is unreachable; pauses double up to it.",
        "accounting": "`sacct` for jobs slurmctld has forgotten: `auto` (when Slurm has accounting), `on` or `off`.",
        "job-script": "Store the batch script (`scontrol write batch_script`) as metadata `jobScript`.",
        "slurm-info": "Store `scontrol show job` as metadata `slurmInfo`.",
        "gpu-pci-addrs": "Host regex → accelerator ids by GRES index (as cc-slurm-adapter's `gpuPciAddrs`); "
        "else the subcluster topology's accelerators, else the index.",
        "ignore-hosts": "Regex: jobs whose hosts all match are not recorded.",
    }

    def __post_init__(self) -> None:
        if not self.cluster:
            raise ValueError("`cluster` must name a cluster")
        for pattern in [self.ignore_hosts, *self.gpu_pci_addrs]:
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None


@dataclass
class SyncResult:
    """What one sync did (for the log and for tests)."""

    started: list[int] = field(default_factory=list)
    stopped: list[tuple[int, str]] = field(default_factory=list)
    nodes: int = 0

    def __bool__(self) -> bool:
        return bool(self.started or self.stopped)


class SlurmScheduler:
    """Implements `cc_core.interfaces.Scheduler` for Slurm by polling its client commands."""

    kind: ClassVar[str] = "slurm"
    Config: ClassVar[type[SlurmConfig]] = SlurmConfig

    def __init__(self, config: SlurmConfig, context: PluginContext | None = None) -> None:
        self.config = config
        self.context = context
        self.slurm = SlurmCommands(
            bin_dir=config.bin_dir, slurm_conf=config.slurm_conf, timeout=config.command_timeout
        )
        self._ignore = re.compile(config.ignore_hosts) if config.ignore_hosts else None
        self._gpu_ids = [(re.compile(p), ids) for p, ids in config.gpu_pci_addrs.items()]
        # Ids of Slurm jobs this process has recorded as finished (or found recorded): not started again.
        self._finished: set[int] = set()
        # Database jobs (by db id) that slurmctld did not know in the last poll.
        self._missing: set[int] = set()
        # Jobs the core refused to start (unknown cluster or host): logged once, retried every 5 min.
        self._rejected: set[int] = set()
        self._rejected_at = 0.0
        self._nodes: dict[str, SlurmNode] = {}
        self._nodes_at = 0.0
        self._accounting: bool | None = {"on": True, "off": False}.get(config.accounting)
        self.syncs = 0
        self.failures = 0

    # ------------------------------------------------------------------------------------------ loop

    async def run(self, sink: JobEventSink) -> None:
        """Sync every ``poll-interval`` seconds until cancelled; back off while Slurm is unreachable."""
        delay = min(1.0, self.config.retry_max)
        log.info(
            "slurm scheduler for cluster %s: polling every %g s",
            self.config.cluster,
            self.config.poll_interval,
        )
        if self.context is not None and "clusters" in self.context.services and self._cluster() is None:
            log.error(
                "slurm: cluster %r has no cluster.json in the job archive; its jobs cannot be recorded "
                "until it has one",
                self.config.cluster,
            )
        while True:
            try:
                result = await self.sync(sink)
            except SlurmUnavailable as e:
                self.failures += 1
                log.warning("slurm (%s): %s; retrying in %g s", self.config.cluster, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max)
                continue
            except (DBError, OSError) as e:
                self.failures += 1
                log.error("slurm (%s): sync failed: %s; retrying in %g s", self.config.cluster, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max)
                continue
            delay = min(1.0, self.config.retry_max)
            if result:
                log.info(
                    "slurm (%s): started %d job(s), stopped %d",
                    self.config.cluster,
                    len(result.started),
                    len(result.stopped),
                )
            await asyncio.sleep(self.config.poll_interval)

    async def sync(self, sink: JobEventSink) -> SyncResult:
        """One reconciliation of Slurm with the database (see the module docstring)."""
        result = SyncResult()
        cluster = self.config.cluster
        now = time.time()
        report_nodes = self.config.node_state_interval > 0 and (
            now - self._nodes_at >= self.config.node_state_interval
        )
        if report_nodes or not self._nodes:
            nodes = parse_sinfo(await self.slurm.json("sinfo", "--json"))
            self._nodes = {n.name: n for n in nodes}
        running = await sink.running_jobs(cluster)
        jobs = parse_squeue(await self.slurm.json("squeue", "--json", "--all", "--states=all"))
        by_id = {j.job_id: j for j in jobs}

        # 1. database jobs: ended in Slurm, or forgotten by slurmctld
        recorded: set[int] = set()
        forgotten: list[Job] = []
        stops: list[tuple[Job, str, int]] = []
        for db_job in running:
            slurm_job = by_id.get(db_job.job_id)
            if slurm_job is None:
                forgotten.append(db_job)
                continue
            recorded.add(db_job.job_id)
            self._missing.discard(db_job.id or 0)
            state = slurm_job.stop_state
            if state is not None:
                stops.append((db_job, state, slurm_job.end_time))
            elif slurm_job.start_time != db_job.start_time:
                # Requeued: pending again (Slurm delays its restart) or running again. It stays the
                # job we recorded until it ends; a new start within 24 h would be a duplicate anyway.
                log.debug("slurm (%s): job %d was requeued; keeping it running", cluster, db_job.job_id)
        await _each(stops, lambda s: self._stop(sink, *s, result))
        if forgotten:
            await self._stop_forgotten(sink, forgotten, now, result)

        # 2. Slurm jobs that run or ran and are not recorded yet
        if now - self._rejected_at >= REJECTED_RETRY:
            self._rejected.clear()
            self._rejected_at = now
        to_start = [
            j
            for j in jobs
            if j.started
            and j.job_id not in recorded
            and j.job_id not in self._finished
            and j.job_id not in self._rejected
            and not self._ignored(j)
        ]
        if to_start:
            details = await self._details(to_start)
            await _each(
                list(zip(to_start, details, strict=True)),
                lambda jd: self._start(sink, jd[0], jd[1][0], jd[1][1], result),
            )

        self._finished &= by_id.keys()
        self._rejected &= by_id.keys()

        if report_nodes:
            result.nodes = await self._report_nodes(sink, jobs)
            self._nodes_at = now
        self.syncs += 1
        return result

    # -------------------------------------------------------------------------------------- starting

    def _ignored(self, job: SlurmJob) -> bool:
        return self._ignore is not None and all(self._ignore.fullmatch(n.hostname) for n in job.nodes)

    async def _details(self, jobs: Sequence[SlurmJob]) -> list[tuple[str | None, str | None]]:
        """Job script and ``scontrol show job`` text of each job (None where not wanted or gone)."""
        limit = asyncio.Semaphore(4)

        async def one(job: SlurmJob) -> tuple[str | None, str | None]:
            async with limit:
                script = info = None
                if self.config.job_script:
                    script = await self.slurm.text("scontrol", "write", "batch_script", str(job.job_id), "-")
                if self.config.slurm_info:
                    info = await self.slurm.text("scontrol", "show", "job", str(job.job_id))
                    if info is not None:
                        # An array job lists every task; keep the first record, as cc-slurm-adapter.
                        info = info.split("\n\n", 1)[0].strip()
                return script, info

        return list(await asyncio.gather(*(one(j) for j in jobs)))

    def to_job(self, job: SlurmJob, script: str | None = None, info: str | None = None) -> Job:
        """The ClusterCockpit job for a Slurm job."""
        resources = [
            Resource(
                hostname=n.hostname,
                hwthreads=self._hwthreads(n.hostname, n.cores),
                accelerators=self._accelerators(n.hostname, n.gpus),
            )
            for n in job.nodes
        ]
        meta = {"jobName": job.name}
        if info:
            meta["slurmInfo"] = info
        if script:
            meta["jobScript"] = script
        return Job(
            job_id=job.job_id,
            user=job.user,
            project=job.account,
            cluster=self.config.cluster,
            start_time=job.start_time,
            num_nodes=len(resources),
            resources=resources,
            partition=job.partition,
            array_job_id=job.array_job_id,
            num_hwthreads=job.cpus,
            num_acc=job.gpus,
            shared=job.shared,
            walltime=job.time_limit_minutes * 60,
            submit_time=job.submit_time,
            meta_data=meta,
        )

    async def _start(
        self, sink: JobEventSink, job: SlurmJob, script: str | None, info: str | None, result: SyncResult
    ) -> None:
        key = job.job_id
        try:
            await sink.start_job(self.to_job(job, script, info))
        except DuplicateJobError:
            # Recorded (and stopped) by an earlier run of this service: nothing to do.
            self._finished.add(key)
            return
        except DBError as e:  # this job cannot be recorded (unknown cluster or host)
            log.warning("slurm (%s): cannot start job %d: %s", self.config.cluster, job.job_id, e)
            self._rejected.add(key)
            return
        result.started.append(job.job_id)
        state = job.stop_state
        if state is None:
            return
        try:
            stop_time = max(job.end_time, job.start_time)
            await sink.stop_job(job.job_id, self.config.cluster, job.start_time, state, stop_time)
        except (JobAlreadyStoppedError, JobNotFoundError):
            pass
        result.stopped.append((job.job_id, state))
        self._finished.add(key)

    # -------------------------------------------------------------------------------------- stopping

    async def _stop(
        self, sink: JobEventSink, db_job: Job, state: str, end_time: int, result: SyncResult
    ) -> None:
        stop_time = max(end_time, db_job.start_time)
        try:
            await sink.stop_job(db_job.job_id, db_job.cluster, db_job.start_time, state, stop_time)
        except (JobAlreadyStoppedError, JobNotFoundError):
            pass  # stopped meanwhile by someone else (another replica, the REST API)
        self._finished.add(db_job.job_id)
        self._missing.discard(db_job.id or 0)
        result.stopped.append((db_job.job_id, state))

    async def _stop_forgotten(
        self, sink: JobEventSink, jobs: list[Job], now: float, result: SyncResult
    ) -> None:
        """Jobs slurmctld no longer knows: their end from sacct, else stopped as failed."""
        accounted: dict[int, list[AccountedJob]] = {}
        if await self._has_accounting():
            ids = sorted({j.job_id for j in jobs})
            for i in range(0, len(ids), 100):
                chunk = ",".join(map(str, ids[i : i + 100]))
                doc = await self.slurm.json("sacct", "--json", "--allusers", f"--jobs={chunk}")
                for rec in parse_sacct(doc):
                    accounted.setdefault(rec.job_id, []).append(rec)
        for db_job in jobs:
            rec = _matching_record(accounted.get(db_job.job_id, []), db_job.start_time)
            if rec is not None and rec.state in STOP_STATES:
                await self._stop(sink, db_job, STOP_STATES[rec.state], rec.end_time, result)
                continue
            if rec is not None:
                continue  # sacct says it still runs: wait
            if (db_job.id or 0) not in self._missing:
                self._missing.add(db_job.id or 0)  # stopped only when missing twice in a row
                continue
            end = int(now)
            if db_job.walltime > 0:
                end = min(end, db_job.start_time + db_job.walltime)
            log.warning(
                "slurm (%s): job %d (start %d) is unknown to Slurm%s; stopping it as failed",
                self.config.cluster,
                db_job.job_id,
                db_job.start_time,
                "" if self._accounting else " and there is no accounting to ask",
            )
            await self._stop(sink, db_job, "failed", end, result)

    async def _has_accounting(self) -> bool:
        if self._accounting is None:
            code, out, err = await self.slurm.run("sacct", "--json", "--jobs=0", check=False)
            said = (out + err).decode(errors="replace")
            self._accounting = code == 0 and "accounting storage is disabled" not in said.lower()
            log.info(
                "slurm (%s): accounting %s",
                self.config.cluster,
                "available: finished jobs are looked up with sacct" if self._accounting else "disabled",
            )
        return self._accounting

    # ------------------------------------------------------------------------------- node states

    async def _report_nodes(self, sink: JobEventSink, jobs: Iterable[SlurmJob]) -> int:
        counts: dict[str, int] = {}
        for job in jobs:
            if job.started and job.stop_state is None:
                for n in job.nodes:
                    counts[n.hostname] = counts.get(n.hostname, 0) + 1
        payload = [
            {
                "hostname": n.name,
                "states": [s.lower() for s in n.states],
                "cpusAllocated": n.cpus_allocated,
                "memoryAllocated": n.memory_allocated,
                "gpusAllocated": n.gpus_allocated,
                "jobsRunning": counts.get(n.name, 0),
            }
            for n in self._nodes.values()
        ]
        if not payload:
            return 0
        try:
            await sink.update_node_states(self.config.cluster, payload)
        except DBError as e:
            log.warning("slurm (%s): node states not stored: %s", self.config.cluster, e)
            return 0
        return len(payload)

    # ----------------------------------------------------------------------------- hardware ids

    def _cluster(self) -> Cluster | None:
        catalog: Any = (self.context.services.get("clusters") if self.context is not None else None) or None
        return catalog.cluster(self.config.cluster) if catalog is not None else None

    def _topology(self, hostname: str) -> Topology | None:
        cluster = self._cluster()
        if cluster is None:
            return None
        name = cluster.subcluster_for_node(hostname)
        sub = cluster.subcluster(name) if name else None
        return sub.topology if sub is not None else None

    def _socket_cores(self, hostname: str) -> list[list[list[int]]] | None:
        """Per socket, the hardware threads of each of its cores (from the subcluster's topology)."""
        topo = self._topology(hostname)
        if topo is None or not topo.socket or not topo.core:
            return None
        out = []
        for socket in topo.socket:
            members = set(socket)
            out.append([core for core in topo.core if core and core[0] in members])
        return out

    def _hwthreads(self, hostname: str, cores: Sequence[tuple[int, int]]) -> list[int] | None:
        """Hardware thread ids of the allocated (socket, core) pairs: through the cluster's topology
        when it is known, else Slurm's own numbering (socket-major, threads of a core adjacent)."""
        if not cores:
            return None
        layout = self._socket_cores(hostname)
        out: list[int] = []
        if layout is not None:
            for s, c in cores:
                if s < len(layout) and c < len(layout[s]):
                    out.extend(layout[s][c])
            return sorted(out) or None
        node = self._nodes.get(hostname)
        if node is None or node.cores <= 0:
            return None
        threads = max(node.threads, 1)
        for s, c in cores:
            first = (s * node.cores + c) * threads
            out.extend(range(first, first + threads))
        return sorted(out)

    def _accelerators(self, hostname: str, indices: Sequence[int]) -> list[str] | None:
        """Accelerator ids of GRES indices: the configured PCI addresses, else the topology's
        accelerator list, else the index itself."""
        if not indices:
            return None
        for pattern, ids in self._gpu_ids:
            if pattern.fullmatch(hostname):
                return [ids[i] for i in indices if i < len(ids)] or None
        topo = self._topology(hostname)
        if topo is not None and topo.accelerators:
            accs = topo.accelerators
            return [accs[i].id for i in indices if i < len(accs)] or None
        return [str(i) for i in indices]


async def _each(items: Sequence[Any], fn: Callable[[Any], Awaitable[None]], limit: int = 32) -> None:
    """``await fn(item)`` for every item, ``limit`` at a time (so SQLite's group commit can batch the
    starts and PostgreSQL's pool works in parallel); the first error cancels the rest and is raised."""
    if len(items) == 1:
        await fn(items[0])
        return
    sem = asyncio.Semaphore(limit)

    async def one(item: Any) -> None:
        async with sem:
            await fn(item)

    try:
        async with asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(one(item))
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None


def _matching_record(records: list[AccountedJob], start_time: int) -> AccountedJob | None:
    """The sacct record of the run that started at ``start_time`` (else the latest one)."""
    if not records:
        return None
    for rec in records:
        if rec.start_time == start_time:
            return rec
    return max(records, key=lambda r: r.start_time)

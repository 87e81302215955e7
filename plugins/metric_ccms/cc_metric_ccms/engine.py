"""The embedded metric store as one object: store + line-protocol ingest + WAL + checkpoints + workers.

This is what the plugin's backend class, the ``/api/write`` and ``/api/free`` handlers and the NATS
subscriptions call. Everything here is synchronous and thread-safe (one `threading.RLock`, the store's);
`MetricStoreEngine.run` is the async loop that does upstream's background work (WAL flush every second,
checkpoints, retention, memory cap, cleanup) by running those calls in a worker thread.

Ingest is *validate, log, apply*: a body is parsed and checked completely, its samples are appended to
the WAL buffers and written to memory under the lock, and the caller acknowledges it after that. A
sample is crash-safe once a `flush` that started after its ingest returned (upstream: the same, with a
1 s flush interval and no fsync).

Fixes of upstream kept on purpose: a rejected body stores nothing; a checkpoint window starts at the
earliest sample written since the previous checkpoint, so late samples and the records of a WAL replayed
at start are in the snapshot before that WAL is rotated away (upstream's window starts at the previous
checkpoint — or at start-up — and loses them); a host whose WAL reaches ``max-wal-size`` is snapshotted
before its WAL is rotated (upstream just deletes the WAL); snapshots include data stamped after "now"
(clock skew) instead of dropping it at rotation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cc_core.config import parse_duration

from .checkpoint import LoadReport, load_directory, write_snapshots
from .cleanup import CleanupReport, archive_old, delete_old
from .config import InternalStoreConfig
from .lineprotocol import IngestResult, LineProtocolDecoder
from .store import MetricInfo, MetricStore, metrics_from_clusters
from .wal import WalWriter

log = logging.getLogger(__name__)

NodeProvider = Callable[[int], Mapping[str, Collection[str]]]
"""``(ts) -> {cluster: hosts}`` of nodes in use by jobs started before ``ts`` (upstream
``GetUsedNodes``); retention never frees their data."""


class MetricStoreEngine:
    """See the module docstring. Construct, call `start` (loads checkpoints, replays WAL), then use."""

    def __init__(
        self,
        config: InternalStoreConfig,
        metrics: Mapping[str, MetricInfo] | Iterable[MetricInfo],
        *,
        base_dir: Path | str | None = None,
        fsync: bool = True,
        minimum_points: int = 1000,
        node_provider: NodeProvider | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = MetricStore(metrics, minimum_points=minimum_points)
        self.lock = self.store.lock
        self.decoder = LineProtocolDecoder(self.store)
        directory = Path(config.checkpoints.directory)
        if base_dir is not None and not directory.is_absolute():
            directory = Path(base_dir) / directory
        self.directory = directory
        self.base_dir = base_dir
        self.file_format = config.checkpoints.file_format
        if self.file_format not in ("wal", "json"):  # "avro": upstream's retired format
            log.warning("metric store: checkpoint format %r is not supported, using 'wal'", self.file_format)
            self.file_format = "wal"
        self.retention = parse_duration(config.retention_in_memory)
        self.checkpoint_interval = parse_duration(config.checkpoint_interval) or 12 * 3600
        self.memory_cap_bytes = int(config.memory_cap) * 1_000_000_000
        self.node_provider = node_provider
        self.clock = clock
        self.wal: WalWriter | None = (
            WalWriter(self.store, directory, fsync=fsync, max_size=config.checkpoints.max_wal_size)
            if self.file_format == "wal"
            else None
        )
        self.totals = IngestResult()
        self.last_checkpoint = int(clock())
        self._started = False

    @classmethod
    def from_clusters(
        cls, config: InternalStoreConfig, clusters: Iterable[Any], **kw: Any
    ) -> MetricStoreEngine:
        """An engine for the union of the metrics of ``clusters`` (`cc_core.schema.cluster.Cluster`)."""
        return cls(config, metrics_from_clusters(clusters), **kw)

    # ------------------------------------------------------------------------------- life cycle

    def start(self) -> LoadReport:
        """Load checkpoint files newer than now − retention and replay the WALs."""
        now = int(self.clock())
        since = now - int(self.retention) if self.retention else 0
        with self.lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            report = load_directory(self.store, self.directory, since)
            # WAL replay marked the store dirty from its oldest record: the first checkpoint covers it.
            self.last_checkpoint = now
            self._started = True
        log.info(
            "metric store: loaded %d checkpoint files and %d WAL records (%d samples)",
            report.files,
            report.wal_records,
            report.samples,
        )
        return report

    def close(self) -> None:
        """Final checkpoint of everything and WAL rotation (upstream ``Shutdown``)."""
        with self.lock:
            self.checkpoint()
            if self.wal is not None:
                self.wal.close()

    # ----------------------------------------------------------------------------------- ingest

    def ingest(self, payload: bytes, cluster: str | None = None, *, now: int | None = None) -> IngestResult:
        """Validate and store a line-protocol body; raises `LineProtocolError` (storing nothing)."""
        with self.lock:
            batch = self.decoder.parse(payload, cluster, now)
            sids, ts, values, res = self.decoder.apply(batch)
            if len(sids):
                if self.wal is not None:
                    self.wal.append(sids, ts, values)
                st = self.store.write_batch(sids, ts, values)
                res.stored, res.stale = st.written, st.stale
            self.totals.add(res)
            if self.wal is not None and self.wal.max_size:
                big = self.wal.oversized()
                if big:
                    self._snapshot_and_rotate(big)
        return res

    def flush(self) -> int:
        """Write and fsync the buffered WAL records (every second in `run`); returns bytes written."""
        if self.wal is None:
            return 0
        with self.lock:
            pending = self.wal.take_pending()
        return self.wal.write_pending(pending)  # the disk work happens without the store lock

    # ------------------------------------------------------------------------------ checkpoints

    def _snapshot_and_rotate(self, hosts: Sequence[tuple[str, str]] | None, now: int | None = None) -> int:
        now = int(self.clock()) if now is None else now
        to = now + 366 * 24 * 3600  # include samples stamped in the future (clock skew)
        frm = self.last_checkpoint
        if self.store.dirty_since is not None:
            frm = min(frm, self.store.dirty_since)  # late samples written since the last checkpoint
        done = write_snapshots(
            self.store, self.directory, frm, to, self.file_format, hosts, name=self.last_checkpoint
        )
        if self.wal is not None:
            self.wal.rotate(done)
        return len(done)

    def checkpoint(self, now: int | None = None) -> int:
        """Snapshot every host for the window since the last checkpoint and rotate the WALs."""
        now = int(self.clock()) if now is None else now
        with self.lock:
            if self.wal is not None:
                self.wal.flush()
            n = self._snapshot_and_rotate(None, now)
            self.last_checkpoint = now
            self.store.dirty_since = None
        return n

    @property
    def cleanup_directory(self) -> Path:
        """Where ``archive`` mode writes Parquet files (``cleanup.directory``, relative to the site)."""
        d = Path(self.config.cleanup.directory or "./var/checkpoints-archive")
        return d if d.is_absolute() or self.base_dir is None else Path(self.base_dir) / d

    def cleanup(self, now: int | None = None) -> CleanupReport:
        """Delete, or archive to Parquet, checkpoint files older than the retention window."""
        now = int(self.clock()) if now is None else now
        if not self.retention:
            return CleanupReport()
        before = now - int(self.retention)
        with self.lock:
            if self.config.cleanup.mode == "archive":
                rep = archive_old(self.directory, self.cleanup_directory, before)
            else:
                rep = delete_old(self.directory, before)
        verb = "archived to Parquet" if self.config.cleanup.mode == "archive" else "deleted"
        log.info("metric store cleanup: %d checkpoint files %s", rep.files, verb)
        for err in rep.errors:
            log.error("metric store cleanup: %s", err)
        return rep

    # ----------------------------------------------------------------------------- maintenance

    def free(self, selectors: Iterable[Sequence[str]] | None, to: int) -> int:
        """``/api/free``: free buffers older than ``to`` below the selectors; returns blocks freed."""
        return self.store.free(selectors, to)

    def run_retention(
        self, now: int | None = None, in_use: Mapping[str, Collection[str]] | None = None
    ) -> int:
        """Free data older than now − retention, keeping hosts of running jobs."""
        if not self.retention:
            return 0
        now = int(self.clock()) if now is None else now
        before = now - int(self.retention)
        if in_use is None and self.node_provider is not None:
            in_use = self.node_provider(before)
        return self.store.retain(before, in_use)

    def run_memory_cap(self, now: int | None = None) -> int:
        if not self.memory_cap_bytes:
            return 0
        now = int(self.clock()) if now is None else now
        return self.store.enforce_memory_cap(self.memory_cap_bytes, self.retention or 86400.0, now)

    # ------------------------------------------------------------------------------- background

    async def run(self, *, flush_interval: float = 1.0) -> None:
        """Background work until cancelled (then a final flush): WAL flush, checkpoints, retention,
        memory cap, cleanup — each a blocking call run in a worker thread."""
        loop = asyncio.get_running_loop()
        next_ckpt = loop.time() + self.checkpoint_interval
        next_ret = loop.time() + (self.retention / 2 if self.retention else float("inf"))
        next_mem = loop.time() + 300
        next_clean = loop.time() + (self.retention or float("inf"))
        try:
            while True:
                await asyncio.sleep(flush_interval)
                await asyncio.to_thread(self.flush)
                t = loop.time()
                try:
                    if t >= next_ckpt:
                        next_ckpt = t + self.checkpoint_interval
                        await asyncio.to_thread(self.checkpoint)
                    if t >= next_ret:
                        next_ret = t + self.retention / 2
                        freed = await asyncio.to_thread(self.run_retention)
                        log.info("metric store retention: %d blocks freed", freed)
                    if t >= next_mem:
                        high = self.memory_cap_bytes and self.store.nbytes() > 0.8 * self.memory_cap_bytes
                        next_mem = t + (30 if high else 300)
                        await asyncio.to_thread(self.run_memory_cap)
                    if t >= next_clean:
                        next_clean = t + self.retention
                        await asyncio.to_thread(self.cleanup)
                except Exception:  # a failing task must not stop the WAL flushes
                    log.exception("metric store background task failed")
        finally:
            await asyncio.to_thread(self.flush)

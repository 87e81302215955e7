"""``main.nodestate-retention``: old ``node_state`` rows are deleted (02:00) or written to Parquet and
then deleted (02:30), as upstream (contract §10). Each node's latest row is always kept — it is the
node's current state.

The move writes upstream's node-state Parquet files (``cc-nodestate-<YYYY-MM-DD>-<NNN>.parquet`` at the
top of the target, zstd, rows sorted by cluster, subcluster, hostname and time, split at
``max-file-size-mb``) and then deletes exactly the rows it wrote, by id: a report arriving in between
can neither be lost nor make a written row survive.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, delete, select

from cc_core.db import tables as T
from cc_core.tasks.builtin import SECTION_NODESTATE

if TYPE_CHECKING:
    from cc_core.archive.backend import ArchiveBase
    from cc_core.config import NodeStateRetention as Settings
    from cc_core.context import PluginContext

log = logging.getLogger(__name__)

HOUR = 3600
TIMES = {"delete": "02:00", "move": "02:30"}
DELETE_CHUNK = 500
COLUMNS = (
    "time_stamp",
    "node_state",
    "health_state",
    "health_metrics",
    "cpus_allocated",
    "memory_allocated",
    "gpus_allocated",
    "jobs_running",
    "hostname",
    "cluster",
    "subcluster",
)


def _schema() -> Any:
    from cc_core.archive.parquet import _pa

    pa = _pa()
    i32, i64, s = pa.int32(), pa.int64(), pa.string()
    types = (i64, s, s, s, i32, i64, i32, i32, s, s, s)
    return pa.schema(
        [pa.field(n, t, nullable=(n == "health_metrics")) for n, t in zip(COLUMNS, types, strict=True)]
    )


def _old_rows(cutoff: int) -> Any:
    """Rows older than ``cutoff`` that are not their node's latest, with the node's names, in file order."""
    from cc_core.db.nodes import latest_state

    ns, n = T.node_state.c, T.node.c
    latest = (
        select(ns.id)
        .select_from(T.node.join(T.node_state, ns.node_id == n.id))
        .where(latest_state())
        .correlate(None)
    )
    return (
        select(
            ns.id,
            ns.time_stamp,
            ns.node_state,
            ns.health_state,
            ns.health_metrics,
            ns.cpus_allocated,
            ns.memory_allocated,
            ns.gpus_allocated,
            ns.jobs_running,
            n.hostname,
            n.cluster,
            n.subcluster,
        )
        .select_from(T.node_state.join(T.node, ns.node_id == n.id))
        .where(ns.time_stamp < cutoff, ns.id.not_in(latest))
        .order_by(n.cluster, n.subcluster, n.hostname, ns.time_stamp)
    )


def _estimate(row: dict[str, Any]) -> int:
    return 100 + sum(len(row[k] or "") for k in ("node_state", "health_state", "health_metrics"))


class NodeStateRetention:
    """See the module docstring. ``age`` is in hours (default 24)."""

    name: ClassVar[str] = "nodestate-retention"

    def __init__(self, context: PluginContext, settings: Settings) -> None:
        self.context = context
        self.services = context.services
        self.settings = settings

    @classmethod
    def create(cls, context: PluginContext) -> NodeStateRetention | None:
        settings = context.section(SECTION_NODESTATE)
        if settings is None or settings.policy not in TIMES:
            return None
        from cc_core.tasks.builtin.archive import check_target

        check_target(settings, "$.main.nodestate-retention", needed=settings.policy == "move")
        return cls(context, settings)

    @property
    def schedule(self) -> str:
        return TIMES[self.settings.policy]

    @property
    def cutoff(self) -> int:
        age = self.settings.age if self.settings.age > 0 else 24
        return int(time.time()) - age * HOUR

    async def run(self) -> str:
        db = self.services["db"]
        cutoff = self.cutoff
        if self.settings.policy == "delete":
            n = await db.nodes.delete_states_before(cutoff)
            return f"{n} node state(s) older than {cutoff} deleted"
        rows = await db.read(lambda conn: [dict(r._mapping) for r in conn.execute(_old_rows(cutoff))])
        if not rows:
            return f"no node state older than {cutoff}"
        files = await self._write_parquet(rows)
        ids = [r["id"] for r in rows]

        def drop(conn: Connection) -> int:
            n = 0
            for i in range(0, len(ids), DELETE_CHUNK):
                chunk = ids[i : i + DELETE_CHUNK]
                n += int(conn.execute(delete(T.node_state).where(T.node_state.c.id.in_(chunk))).rowcount)
            return n

        n = await db.write(drop)
        return f"{len(rows)} node state(s) written to {len(files)} Parquet file(s), {n} deleted"

    def _open_target(self) -> ArchiveBase:
        from cc_core.archive import open_backend
        from cc_core.archive.backend import ArchiveBase

        s = self.settings
        if s.target_kind == "s3":
            section: dict[str, Any] = {
                "kind": "s3",
                "endpoint": s.target_endpoint,
                "bucket": s.target_bucket,
                "access-key": s.target_access_key,
                "secret-key": s.target_secret_key,
                "region": s.target_region,
                "use-path-style": s.target_use_path_style,
            }
        else:
            section = {"kind": s.target_kind, "path": s.target_path}
        target = open_backend(
            section,
            registry=self.context.registry,
            context=self.context,
            source="config.json: main.nodestate-retention (target-*)",
        )
        if not isinstance(target, ArchiveBase):
            raise TypeError(f"target-kind {s.target_kind!r} cannot store plain files")
        return target

    async def _write_parquet(self, rows: list[dict[str, Any]]) -> list[str]:
        from cc_core.archive.parquet import _pa

        pa = _pa()
        import pyarrow.parquet as pq

        schema = _schema()
        target = self._open_target()
        limit = (self.settings.max_file_size_mb or 128) * 1024 * 1024
        date = _dt.date.today().isoformat()
        prefix = f"cc-nodestate-{date}-"
        _, existing = await target._list("")
        counter = max(
            (
                int(f[len(prefix) : -8])
                for f in existing
                if f.startswith(prefix) and f[len(prefix) : -8].isdigit()
            ),
            default=0,
        )
        files: list[str] = []
        batch: list[dict[str, Any]] = []
        size = 0

        async def flush() -> None:
            nonlocal counter, batch, size
            if not batch:
                return
            for r in batch:
                hm = r["health_metrics"]
                r["health_metrics"] = hm if hm is None or isinstance(hm, str) else _json(hm)
            table = pa.Table.from_pylist([{k: r[k] for k in COLUMNS} for r in batch], schema=schema)
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            counter += 1
            name = f"{prefix}{counter:03d}.parquet"
            await target._write(name, buf.getvalue())
            files.append(name)
            log.info("node-state retention: wrote %s (%d rows)", name, len(batch))
            batch, size = [], 0

        try:
            for r in rows:
                est = _estimate(
                    r if isinstance(r["health_metrics"], str | None) else {**r, "health_metrics": ""}
                )
                if batch and size + est > limit:
                    await flush()
                batch.append(r)
                size += est
            await flush()
        finally:
            await target.close()
        return files


def _json(value: Any) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()

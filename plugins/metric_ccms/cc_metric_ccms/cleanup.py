"""Cleanup of old checkpoint files: delete them, or archive them to Parquet first (contract §8.7).

Upstream runs this every ``retention-in-memory`` for files older than now − retention, and once by hand
with ``-cleanup-checkpoints``. In ``archive`` mode all hosts of a cluster go into one file,
``<cleanup.directory>/<cluster>/<cutoff>.parquet`` (zstd), one row per sample that is not a gap:
``cluster, hostname, metric, scope, scope_id, timestamp, frequency, value`` (float32). The host level
has scope ``node`` and an empty id; a child level's scope and id come from its name (``hwthread3``,
``socket0``, ``cpu7`` → ``hwthread``, an accelerator's PCI address …), as upstream's reader expects.

The Parquet file is written under a temporary name and renamed, and checkpoint files are deleted only
after that rename: a crash or a full disk never loses data that is not in the archive yet. A file that
cannot be read is left in place and reported; the rest of its cluster is still archived.

Which files count as old follows the loader's rule (`checkpoint.select_files`), and a host's newest file
is always kept: a file's window may reach past the cutoff, so cleanup never removes data the store
could still need.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .checkpoint import CheckpointLevel, _file_ts, decode_binary, decode_json, select_files

log = logging.getLogger(__name__)

INSTALL_HINT = 'archiving checkpoints to Parquet needs pyarrow: pip install "clustercockpit[parquet]"'

# Child-level name prefixes and the scope they stand for (upstream's parquet reader agrees).
_SCOPE_PREFIXES = (
    ("socket", "socket"),
    ("memoryDomain", "memoryDomain"),
    ("core", "core"),
    ("hwthread", "hwthread"),
    ("cpu", "hwthread"),
    ("accelerator", "accelerator"),
)


@dataclass(slots=True)
class CleanupReport:
    files: int = 0
    rows: int = 0
    parquet_files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def scope_of(name: str) -> tuple[str, str]:
    """``(scope, id)`` of a child level's name; a name without a known prefix and digit is its own scope."""
    for prefix, scope in _SCOPE_PREFIXES:
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest[:1].isdigit():
            return scope, rest
    return name, ""


def old_files(root: Path, before: int) -> Iterator[tuple[str, str, list[Path]]]:
    """``(cluster, host, files)`` of every host with snapshot files the store no longer needs."""
    root = Path(root)
    if not root.is_dir():
        return
    for cdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for hdir in sorted(p for p in cdir.iterdir() if p.is_dir()):
            stamped = sorted(
                (ts, p) for p in hdir.iterdir() if p.is_file() and (ts := _file_ts(p.name)) is not None
            )
            keep = set(select_files([p.name for _, p in stamped], before))
            old = [p for _, p in stamped[:-1] if p.name not in keep]  # the newest may end after `before`
            if old:
                yield cdir.name, hdir.name, old


def delete_old(root: Path, before: int) -> CleanupReport:
    """Upstream's ``delete`` mode."""
    rep = CleanupReport()
    for _cluster, _host, files in old_files(root, before):
        for p in files:
            try:
                p.unlink()
                rep.files += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                rep.errors.append(f"{p}: {e}")
    return rep


class _Columns:
    """Column buffers of one host; numeric columns as numpy arrays, strings as (value, count) runs."""

    def __init__(self) -> None:
        self.metric: list[tuple[str, int]] = []
        self.scope: list[tuple[str, int]] = []
        self.scope_id: list[tuple[str, int]] = []
        self.timestamp: list[np.ndarray] = []
        self.frequency: list[tuple[int, int]] = []
        self.value: list[np.ndarray] = []
        self.rows = 0

    def add_level(self, lvl: CheckpointLevel, scope: str, scope_id: str) -> None:
        for name in sorted(lvl.metrics):
            m = lvl.metrics[name]
            data = np.asarray(m.data, dtype=np.float32)
            keep = ~np.isnan(data)
            n = int(keep.sum())
            if not n:
                continue
            ts = m.start + m.frequency * np.flatnonzero(keep).astype(np.int64)
            self.metric.append((name, n))
            self.scope.append((scope, n))
            self.scope_id.append((scope_id, n))
            self.frequency.append((int(m.frequency), n))
            self.timestamp.append(ts)
            self.value.append(data[keep])
            self.rows += n
        for child in sorted(lvl.children):
            self.add_level(lvl.children[child], *scope_of(child))

    def table(self, pa: Any, cluster: str, host: str) -> Any:
        def runs(items: list[tuple[Any, int]]) -> Any:
            values = [v for v, _ in items]
            counts = np.array([c for _, c in items], dtype=np.int64)
            return np.repeat(np.array(values, dtype=object), counts)

        n = self.rows
        return pa.table(
            {
                "cluster": pa.array([cluster] * n, pa.string()),
                "hostname": pa.array([host] * n, pa.string()),
                "metric": pa.array(runs(self.metric), pa.string()),
                "scope": pa.array(runs(self.scope), pa.string()),
                "scope_id": pa.array(runs(self.scope_id), pa.string()),
                "timestamp": pa.array(np.concatenate(self.timestamp), pa.int64()),
                "frequency": pa.array(np.repeat(*zip(*self.frequency, strict=True)).astype(np.int64)),
                "value": pa.array(np.concatenate(self.value), pa.float32()),
            }
        )


def _read(path: Path) -> CheckpointLevel:
    buf = path.read_bytes()
    cf = decode_binary(buf) if path.name.endswith(".bin") else decode_json(buf)
    return cf.root


def archive_old(root: Path, target: Path, before: int) -> CleanupReport:
    """Upstream's ``archive`` mode: one Parquet file per cluster, then delete what it holds."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    rep = CleanupReport()
    by_cluster: dict[str, list[tuple[str, list[Path]]]] = {}
    for cluster, host, files in old_files(root, before):
        by_cluster.setdefault(cluster, []).append((host, files))
    for cluster, hosts in by_cluster.items():
        out = Path(target) / cluster / f"{before}.parquet"
        tmp = out.with_name(out.name + ".tmp")
        archived: list[Path] = []
        writer = None
        rows = 0
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            for host, files in hosts:
                cols = _Columns()
                for p in files:
                    try:
                        cols.add_level(_read(p), "node", "")
                    except (OSError, ValueError, msgspec.DecodeError) as e:
                        rep.errors.append(f"{p}: {e}")
                        log.error("checkpoint %s cannot be archived (left in place): %s", p, e)
                        continue
                    archived.append(p)
                if not cols.rows:
                    continue
                table = cols.table(pa, cluster, host)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)  # one row group per host, as upstream
                rows += cols.rows
            if writer is not None:
                writer.close()
                writer = None
                os.replace(tmp, out)
                rep.parquet_files.append(out)
        except (OSError, pa.ArrowException) as e:
            if writer is not None:
                writer.close()
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            rep.errors.append(f"{out}: {e}")
            log.error("archiving checkpoints of %s to %s failed, nothing deleted: %s", cluster, out, e)
            continue
        rep.rows += rows
        for p in archived:
            p.unlink(missing_ok=True)
            rep.files += 1
    return rep

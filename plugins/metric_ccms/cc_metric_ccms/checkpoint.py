"""Snapshots in upstream's formats, and loading a checkpoint directory (contract §8.7).

Layout: ``<dir>/<cluster>/<host>/<from>.bin`` (binary snapshot) or ``<from>.json`` (JSON checkpoint),
plus ``current.wal`` (see `cc_metric_ccms.wal`). A file holds one host's subtree for the window
``[from, to]``: per level, per metric ``frequency``, ``start`` (time of ``data[0]``) and ``data``.

Binary (little-endian, ``walCheckpoint.go``): ``u32 0xCC5B0001, i64 from, i64 to``, then the level
recursively: ``u32 nMetrics, (u16 len + name, i64 freq, i64 start, u32 n, n × f32)…, u32 nChildren,
(u16 len + name, level)…``.

JSON (``checkpoint.go``): ``{"metrics":{name:{"frequency","start","data":[…]}},"children":{…},"from",
"to"}`` with ``null`` for NaN. Upstream writes values with one decimal, which destroys small values
(0.04 IPC becomes 0.0); here they are written with the shortest text that reads back as the same
float32, which upstream's reader accepts unchanged.

Snapshots are written to ``<name>.tmp``, fsynced and renamed, so a crash never leaves half a file under
a name the loader reads.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from .store import MetricStore, MetricStoreError
from .wal import WAL_NAME, read_wal, replay_wal

log = logging.getLogger(__name__)

SNAPSHOT_MAGIC = 0xCC5B0001
_MAGIC_B = struct.pack("<I", SNAPSHOT_MAGIC)


@dataclass(slots=True)
class CheckpointMetric:
    frequency: int
    start: int
    data: np.ndarray  # float32, NaN for gaps


@dataclass(slots=True)
class CheckpointLevel:
    metrics: dict[str, CheckpointMetric] = field(default_factory=dict)
    children: dict[str, CheckpointLevel] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.metrics and not self.children


@dataclass(slots=True)
class CheckpointFile:
    from_: int
    to: int
    root: CheckpointLevel


# ---------------------------------------------------------------------------------------- binary


def encode_binary(cf: CheckpointFile) -> bytes:
    parts: list[bytes] = [_MAGIC_B, struct.pack("<qq", cf.from_, cf.to)]
    _enc_level(cf.root, parts)
    return b"".join(parts)


def _name16(name: str) -> bytes:
    b = name.encode()
    if len(b) > 0xFFFF:
        raise ValueError(f"name too long for a snapshot: {name[:40]}…")
    return struct.pack("<H", len(b)) + b


def _enc_level(lvl: CheckpointLevel, parts: list[bytes]) -> None:
    parts.append(struct.pack("<I", len(lvl.metrics)))
    for name, m in lvl.metrics.items():
        data = np.asarray(m.data, dtype="<f4")
        parts.append(_name16(name))
        parts.append(struct.pack("<qqI", m.frequency, m.start, len(data)))
        parts.append(data.tobytes())
    parts.append(struct.pack("<I", len(lvl.children)))
    for name, child in lvl.children.items():
        parts.append(_name16(name))
        _enc_level(child, parts)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def name(self) -> str:
        (n,) = self.take("<H")
        if self.pos + n > len(self.buf):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        s = self.buf[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def floats(self, n: int) -> np.ndarray:
        if self.pos + 4 * n > len(self.buf):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        a = np.frombuffer(self.buf, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos += 4 * n
        return a


def decode_binary(buf: bytes) -> CheckpointFile:
    """Parse a ``.bin`` snapshot; ValueError for a wrong magic or a truncated file."""
    r = _Reader(buf)
    (magic,) = r.take("<I")
    if magic != SNAPSHOT_MAGIC:
        raise ValueError(f"invalid snapshot magic 0x{magic:08X} (expected 0x{SNAPSHOT_MAGIC:08X})")
    frm, to = r.take("<qq")
    root = _dec_level(r, 0)
    return CheckpointFile(frm, to, root)


def _dec_level(r: _Reader, depth: int) -> CheckpointLevel:
    if depth > 32:
        raise ValueError("snapshot nesting too deep")
    lvl = CheckpointLevel()
    (nm,) = r.take("<I")
    for _ in range(nm):
        name = r.name()
        freq, start, n = r.take("<qqI")
        lvl.metrics[name] = CheckpointMetric(freq, start, r.floats(n))
    (nc,) = r.take("<I")
    for _ in range(nc):
        name = r.name()
        lvl.children[name] = _dec_level(r, depth + 1)
    return lvl


# ------------------------------------------------------------------------------------------ JSON


class _JsonMetric(msgspec.Struct):
    frequency: int
    start: int
    data: list[float | None]


class _JsonLevel(msgspec.Struct):
    metrics: dict[str, _JsonMetric] | None = None
    children: dict[str, _JsonLevel] | None = None
    from_: int = msgspec.field(default=0, name="from")
    to: int = 0


_JSON_DECODER = msgspec.json.Decoder(_JsonLevel)


def decode_json(buf: bytes) -> CheckpointFile:
    doc = _JSON_DECODER.decode(buf)
    return CheckpointFile(doc.from_, doc.to, _from_json(doc))


def _from_json(doc: _JsonLevel) -> CheckpointLevel:
    lvl = CheckpointLevel()
    for name, m in (doc.metrics or {}).items():
        lvl.metrics[name] = CheckpointMetric(m.frequency, m.start, np.array(m.data, dtype=np.float32))
    for name, child in (doc.children or {}).items():
        lvl.children[name] = _from_json(child)
    return lvl


def _floats_json(data: np.ndarray) -> str:
    if data.size == 0:
        return ""
    text = ",".join(np.asarray(data, dtype=np.float32).astype(str).tolist())
    if not np.isfinite(data).all():
        text = ",".join("null" if t in ("nan", "inf", "-inf") else t for t in text.split(","))
    return text


def encode_json(cf: CheckpointFile) -> bytes:
    out: list[str] = []
    _json_level(cf.root, out, cf.from_, cf.to)
    out.append("\n")
    return "".join(out).encode()


def _json_level(lvl: CheckpointLevel, out: list[str], frm: int, to: int) -> None:
    enc = msgspec.json.encode
    out.append('{"metrics":{')
    for i, (name, m) in enumerate(lvl.metrics.items()):
        if i:
            out.append(",")
        out.append(f'{enc(name).decode()}:{{"frequency":{m.frequency},"start":{m.start},"data":[')
        out.append(_floats_json(m.data))
        out.append("]}")
    out.append('},"children":{')
    for i, (name, child) in enumerate(lvl.children.items()):
        if i:
            out.append(",")
        out.append(enc(name).decode() + ":")
        _json_level(child, out, frm, to)
    out.append(f'}},"from":{frm},"to":{to}}}')


# ------------------------------------------------------------------------------ store <-> files


def snapshot_level(store: MetricStore, path: Sequence[str], frm: int, to: int) -> CheckpointLevel | None:
    """The subtree at ``path`` as a checkpoint level for ``[frm, to)``; None if it holds no data."""
    with store.lock:
        lvl = store.find_level(path)
        if lvl is None:
            return None
        return _snap(store, lvl, frm, to)


def _snap(store: MetricStore, lvl: object, frm: int, to: int) -> CheckpointLevel | None:
    out = CheckpointLevel()
    for mi, sid in lvl.series.items():  # type: ignore[attr-defined]
        try:
            freq, _first, _end = store.series_info(sid)
        except KeyError:
            continue
        data, start, _ = store.read_sid(sid, store.slot_time(sid, frm), to)
        if data.size == 0 or np.isnan(data).all():
            continue
        out.metrics[store.metric_name(mi)] = CheckpointMetric(freq, start, data)
    for name, child in lvl.children.items():  # type: ignore[attr-defined]
        c = _snap(store, child, frm, to)
        if c is not None:
            out.children[name] = c
    return None if out.is_empty() else out


def load_level(store: MetricStore, path: Sequence[str], lvl: CheckpointLevel) -> int:
    """Write a checkpoint level into the store below ``path``; metrics the store does not know are
    skipped (the configuration may have changed). Returns samples stored."""
    stored = 0
    for name, m in lvl.metrics.items():
        sid = store.series_id(path, name, create=True)
        if sid is None:
            continue
        try:
            stored += store.write_series(sid, m.start, m.data, m.frequency)
        except MetricStoreError as e:
            log.warning("checkpoint: skipping %s/%s: %s", "/".join(path), name, e)
    for name, child in lvl.children.items():
        stored += load_level(store, (*path, name), child)
    return stored


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_host_snapshot(
    store: MetricStore,
    root: Path,
    cluster: str,
    host: str,
    frm: int,
    to: int,
    file_format: str = "wal",
    name: int | None = None,
) -> Path | None:
    """Write one host's snapshot (``.bin`` for the ``wal`` format, else ``.json``) of ``[frm, to]``,
    named ``<name>`` (default ``frm``); None if the host has no data in the window.

    The loader picks files by name (see `select_files`), so names must follow the checkpoint sequence
    even when a window reaches further back to include late samples: then ``name`` is the regular
    window start and ``frm`` (in the header) the earlier one."""
    lvl = snapshot_level(store, (cluster, host), frm, to)
    if lvl is None:
        return None
    cf = CheckpointFile(frm, to, lvl)
    stem = frm if name is None else name
    if file_format == "json":
        path = Path(root) / cluster / host / f"{stem}.json"
        write_file_atomic(path, encode_json(cf))
    else:
        path = Path(root) / cluster / host / f"{stem}.bin"
        write_file_atomic(path, encode_binary(cf))
    return path


def write_snapshots(
    store: MetricStore,
    root: Path,
    frm: int,
    to: int,
    file_format: str = "wal",
    hosts: Iterable[tuple[str, str]] | None = None,
    name: int | None = None,
) -> list[tuple[str, str]]:
    """Snapshot every host (or ``hosts``); returns the hosts written (whose WAL may now be rotated).
    A host without data in the window is returned too: nothing of it needs the WAL."""
    done = []
    for cluster, host in list(hosts) if hosts is not None else store.hosts():
        try:
            write_host_snapshot(store, root, cluster, host, frm, to, file_format, name)
        except OSError as e:
            log.error("checkpoint of %s/%s failed: %s", cluster, host, e)
            continue
        done.append((cluster, host))
    return done


def _file_ts(name: str) -> int | None:
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in ("bin", "json"):
        return None
    try:
        return int(stem)
    except ValueError:
        return None


def select_files(names: Iterable[str], since: int) -> list[str]:
    """Checkpoint files to load (upstream ``findFiles``): those named ``>= since``, plus the newest
    one before ``since`` when ``since`` falls after it (its window may reach into the retention)."""
    stamped = sorted((ts, n) for n in names if (ts := _file_ts(n)) is not None)
    out = []
    for i, (ts, name) in enumerate(stamped):
        if ts >= since or (i + 1 < len(stamped) and ts < since < stamped[i + 1][0]):
            out.append(name)
    return out


@dataclass(slots=True)
class LoadReport:
    files: int = 0
    samples: int = 0
    wal_files: int = 0
    wal_records: int = 0
    wal_truncated: list[str] = field(default_factory=list)
    earliest_wal_ts: int | None = None
    errors: list[str] = field(default_factory=list)


def load_directory(store: MetricStore, root: Path, since: int, *, replay: bool = True) -> LoadReport:
    """Load every host of a checkpoint directory: snapshot files (oldest first), then ``current.wal``.

    Files whose window ends before ``since`` are skipped, WAL records older than ``since`` too. A bad
    file is reported in ``errors`` and the rest still loads.
    """
    rep = LoadReport()
    root = Path(root)
    if not root.is_dir():
        return rep
    for cdir in sorted(root.iterdir()):
        if not cdir.is_dir():
            log.warning("checkpoint directory: ignoring non-directory %s", cdir)
            continue
        for hdir in sorted(cdir.iterdir()):
            if not hdir.is_dir():
                log.warning("checkpoint directory: ignoring non-directory %s", hdir)
                continue
            _load_host(store, cdir.name, hdir.name, hdir, since, replay, rep)
    return rep


def _load_host(
    store: MetricStore, cluster: str, host: str, hdir: Path, since: int, replay: bool, rep: LoadReport
) -> None:
    names = [p.name for p in hdir.iterdir() if p.is_file()]
    for name in sorted(select_files(names, since), key=lambda n: (_file_ts(n), n)):
        path = hdir / name
        try:
            buf = path.read_bytes()
            cf = decode_binary(buf) if name.endswith(".bin") else decode_json(buf)
        except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as e:
            rep.errors.append(f"{path}: {e}")
            log.error("checkpoint %s cannot be loaded: %s", path, e)
            continue
        if cf.to and cf.to < since:
            continue
        rep.samples += load_level(store, (cluster, host), cf.root)
        rep.files += 1
    wal = hdir / WAL_NAME
    if replay and wal.is_file():
        contents = read_wal(wal, repair=True)
        if contents.error:
            rep.wal_truncated.append(f"{wal}: {contents.error}")
        rep.wal_files += 1
        rep.wal_records += len(contents.mids)
        recent = contents.ts[contents.ts >= since]
        if len(recent):
            t0 = int(recent.min())
            rep.earliest_wal_ts = t0 if rep.earliest_wal_ts is None else min(rep.earliest_wal_ts, t0)
        rep.samples += replay_wal(store, cluster, host, contents, since)

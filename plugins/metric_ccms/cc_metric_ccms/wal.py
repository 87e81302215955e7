"""Write-ahead log in upstream's format (``walCheckpoint.go``, contract §8.7).

One file per host, ``<dir>/<cluster>/<host>/current.wal``: a 4-byte magic ``0xCC1DA701``, then records
``[u32 0xCC1DA7A1][u32 payload length][payload][u32 CRC32-IEEE(payload)]`` with the payload
``i64 ts | u16 len + metric | u8 n | (u8 len + selector)×n | f32 value`` (little-endian; cluster and host
are the directory names; the selectors are the levels below the host, e.g. ``hwthread3``).

Encoding is vectorised because it sits on the ingest path: every record of a batch is built as a row of
a byte matrix (one matrix per payload length), and the CRCs come from CRC32's linearity instead of one
``zlib.crc32`` call per record: for a fixed payload length, ``crc(payload)`` is the CRC of the series'
constant payload (timestamp and value zeroed, computed once per series) XOR a table lookup per varying
byte (8 timestamp bytes, 4 value bytes) — twelve gathers per batch column, no Python per record.

Encoding is also deferred: `WalWriter.append` only keeps the batch's arrays. The flush detaches them
under the store lock with the encoder's tables for their series (`WalEncoder.prepare`, which reads the
store only for series it has not seen) and encodes them all at once afterwards, holding only the I/O
lock. Per-batch numpy overhead is paid once per flush instead of once per request, the request path
does no WAL work, and ingest does not wait while a flush encodes. The kept arrays name series by id,
so they are encoded before any series id is released (the store calls `WalWriter.encode_buffered`
through ``before_release``); detached ones carry their own tables, valid after ids are reused.

Durability: records are buffered per host and written by `WalWriter.flush` (upstream: every second),
which fsyncs every file it wrote, so a sample is on disk once a flush that started after it returns.
The buffers are detached under the store lock and written under a separate I/O lock, so ingest does not
wait for disks.
Reading stops at the first record that is truncated, has a bad magic or length, or fails its CRC; the
file is cut back to the last good record (with a warning) so later appends are reachable again —
upstream leaves the tail in place, which hides every record appended after a torn write.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .store import MetricStore

log = logging.getLogger(__name__)

WAL_FILE_MAGIC = 0xCC1DA701
WAL_RECORD_MAGIC = 0xCC1DA7A1
WAL_NAME = "current.wal"
_FILE_MAGIC_B = struct.pack("<I", WAL_FILE_MAGIC)
_REC_MAGIC_B = struct.pack("<I", WAL_RECORD_MAGIC)
_MAX_PAYLOAD = 1 << 20
_MAX_RAW = 1 << 21  # samples kept unencoded at most (~50 MB of arrays)


def _lin_table(distance: int) -> np.ndarray:
    """CRC32 contribution of each byte value at ``distance`` bytes before the end of a message."""
    zero = zlib.crc32(b"\0" * (distance + 1))
    tail = b"\0" * distance
    return np.array([zlib.crc32(bytes((b,)) + tail) ^ zero for b in range(256)], dtype=np.uint32)


_VALUE_TABLES = [_lin_table(3 - j) for j in range(4)]  # value bytes are the last four of the payload


def encode_mid(metric: str, selectors: Iterable[str]) -> bytes:
    """The middle of a payload: metric name and selectors with their length prefixes."""
    m = metric.encode()
    sels = [s.encode() for s in selectors]
    if len(m) > 0xFFFF or len(sels) > 0xFF or any(len(s) > 0xFF for s in sels):
        raise ValueError("metric name or selector too long for the WAL format")
    return struct.pack("<H", len(m)) + m + bytes((len(sels),)) + b"".join(bytes((len(s),)) + s for s in sels)


def encode_record(ts: int, metric: str, selectors: Iterable[str], value: float) -> bytes:
    """One record, the straightforward way (tests and tools; the writer uses `WalEncoder`)."""
    payload = struct.pack("<q", ts) + encode_mid(metric, selectors) + struct.pack("<f", value)
    return _REC_MAGIC_B + struct.pack("<I", len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


class _Layout(NamedTuple):
    """The encoder's per-series tables as of one `WalEncoder.prepare`."""

    len: np.ndarray
    crc0: np.ndarray
    host: np.ndarray
    row: np.ndarray
    mids: dict[int, list[bytes]]
    mid_arrays: dict[int, np.ndarray]


class WalEncoder:
    """Turns ``(sids, ts, values)`` batches of a store into per-host record bytes."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._epoch = store.epoch
        self._ts_tables: dict[int, list[np.ndarray]] = {}
        self.hosts: list[tuple[str, str]] = []
        self._host_index: dict[tuple[str, str], int] = {}
        self._reset()

    def _reset(self) -> None:
        self._len = np.zeros(0, dtype=np.int64)  # payload length per sid (0 = not computed)
        self._crc0 = np.zeros(0, dtype=np.uint32)
        self._host = np.zeros(0, dtype=np.int64)
        self._row = np.zeros(0, dtype=np.int64)
        self._mids: dict[int, list[bytes]] = {}
        self._mid_arrays: dict[int, np.ndarray] = {}

    def _ts_table(self, plen: int) -> list[np.ndarray]:
        t = self._ts_tables.get(plen)
        if t is None:
            t = self._ts_tables[plen] = [_lin_table(plen - 1 - k) for k in range(8)]
        return t

    def host_of(self, sid: int) -> int:
        return int(self._host[sid])

    def _prepare(self, sids: np.ndarray) -> None:
        if self.store.epoch != self._epoch:  # series ids were reused
            self._epoch = self.store.epoch
            self._reset()
        top = int(sids.max()) + 1 if len(sids) else 0
        if top > len(self._len):
            cap = max(top, 2 * len(self._len), 1024)
            for name, dt in (
                ("_len", np.int64),
                ("_crc0", np.uint32),
                ("_host", np.int64),
                ("_row", np.int64),
            ):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=dt)
                new[: len(old)] = old
                setattr(self, name, new)
        missing = np.unique(sids[self._len[sids] == 0])
        for sid in missing.tolist():
            path, metric = self.store.series_path(sid)
            mid = encode_mid(metric, path[2:])
            plen = 12 + len(mid)
            hk = (path[0], path[1])
            hi = self._host_index.get(hk)
            if hi is None:
                hi = self._host_index[hk] = len(self.hosts)
                self.hosts.append(hk)
            rows = self._mids.setdefault(plen, [])
            self._row[sid] = len(rows)
            rows.append(mid)
            self._mid_arrays.pop(plen, None)
            self._len[sid] = plen
            self._host[sid] = hi
            self._crc0[sid] = zlib.crc32(b"\0" * 8 + mid + b"\0" * 4)

    @staticmethod
    def _mid_array(layout: _Layout, plen: int) -> np.ndarray:
        arr = layout.mid_arrays.get(plen)
        if arr is None:
            rows = layout.mids[plen]
            arr = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), plen - 12)
            layout.mid_arrays[plen] = arr
        return arr

    def encode(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> list[tuple[int, bytes]]:
        """``[(host index, record bytes), …]`` for a batch; records of a host keep their batch order
        within a payload length (the only case where order matters: two writes to one series)."""
        sids = np.asarray(sids, dtype=np.int64)
        return self.encode_prepared(sids, ts, values, self.prepare(sids))

    def prepare(self, sids: np.ndarray) -> _Layout:
        """Learn the layout of series not seen yet (reads the store: call while ``sids`` still name
        their series; cheap once every series is known). The returned tables stay valid for these
        ids even if later calls reset or grow the encoder's (series ids reused after a release)."""
        if len(sids):
            self._prepare(np.asarray(sids, dtype=np.int64))
        return _Layout(self._len, self._crc0, self._host, self._row, self._mids, self._mid_arrays)

    def encode_prepared(
        self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray, layout: _Layout
    ) -> list[tuple[int, bytes]]:
        """`encode` with the tables `prepare` returned: no store access, so it may run without the
        store lock (but not concurrently with `prepare`: the tables grow in place)."""
        n = len(sids)
        if n == 0:
            return []
        sids = np.asarray(sids, dtype=np.int64)
        plen = layout.len[sids]
        host = layout.host[sids]
        order = np.argsort((plen << 32) | host, kind="stable")
        sids, plen, host = sids[order], plen[order], host[order]
        tsb = np.ascontiguousarray(np.asarray(ts, dtype="<i8")[order]).view(np.uint8).reshape(n, 8)
        vb = np.ascontiguousarray(np.asarray(values, dtype="<f4")[order]).view(np.uint8).reshape(n, 4)
        crc = layout.crc0[sids].copy()
        for j in range(4):
            crc ^= _VALUE_TABLES[j][vb[:, j]]
        out: list[tuple[int, bytes]] = []
        cuts = np.flatnonzero(np.diff(plen)) + 1
        bounds = [0, *cuts.tolist(), n]
        for a, z in itertools.pairwise(bounds):
            p = int(plen[a])
            tables = self._ts_table(p)
            g_ts = tsb[a:z]
            g_crc = crc[a:z]
            if (g_ts == g_ts[0]).all():
                c = np.uint32(0)
                for k in range(8):
                    c ^= tables[k][g_ts[0, k]]
                g_crc ^= c
            else:
                for k in range(8):
                    g_crc ^= tables[k][g_ts[:, k]]
            m = z - a
            rec = np.empty((m, p + 12), dtype=np.uint8)
            rec[:, 0:4] = np.frombuffer(_REC_MAGIC_B, dtype=np.uint8)
            rec[:, 4:8] = np.frombuffer(struct.pack("<I", p), dtype=np.uint8)
            rec[:, 8:16] = g_ts
            rec[:, 16 : p + 4] = self._mid_array(layout, p)[layout.row[sids[a:z]]]
            rec[:, p + 4 : p + 8] = vb[a:z]
            rec[:, p + 8 : p + 12] = g_crc.astype("<u4").view(np.uint8).reshape(m, 4)
            g_host = host[a:z]
            hcuts = np.flatnonzero(np.diff(g_host)) + 1
            hb = [0, *hcuts.tolist(), m]
            for x, y in itertools.pairwise(hb):
                out.append((int(g_host[x]), rec[x:y].tobytes()))
        return out


@dataclass(slots=True)
class _Pending:
    """What a flush detached: records encoded before (per host file), and the batches kept by
    `WalWriter.append` since, with the host files they go to."""

    encoded: list[tuple[_HostWal, bytes]] = field(default_factory=list)
    raw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    layout: _Layout | None = None
    hosts: dict[int, _HostWal] = field(default_factory=dict)


@dataclass(slots=True)
class _HostWal:
    path: Path
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    size: int = 0  # bytes on disk (after the last flush)
    fd: int | None = None
    rotated: bool = False


class WalWriter:
    """Per-host WAL files under ``root``: buffer with `append`, make durable with `flush`.

    ``max_size`` (bytes, 0 = unlimited) is upstream's ``max-wal-size``: hosts whose file would grow past
    it are listed by `oversized`; the owner then snapshots them and calls `rotate` (upstream deletes the
    file and loses crash coverage until the next checkpoint instead).
    """

    def __init__(self, store: MetricStore, root: Path, *, fsync: bool = True, max_size: int = 0) -> None:
        self.encoder = WalEncoder(store)
        self.root = Path(root)
        self.fsync = fsync
        self.max_size = max_size
        self._files: dict[int, _HostWal] = {}
        self.io_lock = threading.Lock()
        self._raw: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # batches not encoded yet
        self._raw_n = 0
        store.before_release.append(self.encode_buffered)

    def _host(self, hi: int) -> _HostWal:
        hw = self._files.get(hi)
        if hw is None:
            cluster, host = self.encoder.hosts[hi]
            path = self.root / cluster / host / WAL_NAME
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            hw = self._files[hi] = _HostWal(path, size=size)
        return hw

    def append(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Buffer the records of a batch (call under the store lock; the arrays must not change
        afterwards). Nothing is encoded until `encode_buffered`, nothing touches the disk until `flush`."""
        self._raw.append((sids, ts, values))
        self._raw_n += len(sids)
        if self._raw_n >= _MAX_RAW:  # no flush for a while (no background loop): bound the memory
            self.encode_buffered()

    def _take_raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        if not self._raw:
            return None
        raw, self._raw, self._raw_n = self._raw, [], 0
        if len(raw) == 1:
            return raw[0]
        return (
            np.concatenate([r[0] for r in raw]),
            np.concatenate([r[1] for r in raw]),
            np.concatenate([r[2] for r in raw]),
        )

    def encode_buffered(self) -> None:
        """Encode the batches kept by `append` into per-host record bytes now (under the store lock:
        the series ids must still name the series they named at `append`)."""
        raw = self._take_raw()
        if raw is None:
            return
        with self.io_lock:  # the encoder's tables: not while a flush encodes outside the store lock
            for hi, data in self.encoder.encode(*raw):
                hw = self._host(hi)
                hw.pending.append(data)
                hw.pending_bytes += len(data)

    def oversized(self) -> list[tuple[str, str]]:
        """Hosts whose WAL (on disk + buffered) reached ``max_size``."""
        if not self.max_size:
            return []
        self.encode_buffered()
        return [
            self.encoder.hosts[hi]
            for hi, hw in self._files.items()
            if hw.size + hw.pending_bytes >= self.max_size
        ]

    def pending_bytes(self) -> int:
        self.encode_buffered()
        return sum(hw.pending_bytes for hw in self._files.values())

    def take_pending(self) -> _Pending:
        """Detach everything buffered (call under the store lock; cheap: the batches `append` kept
        are only prepared here — new series' layouts read from the store — and encoded by
        `write_pending`, outside the store lock)."""
        out = _Pending()
        for hw in self._files.values():
            if hw.pending:
                out.encoded.append((hw, b"".join(hw.pending)))
                hw.pending.clear()
                hw.pending_bytes = 0
        raw = self._take_raw()
        if raw is not None:
            with self.io_lock:  # `prepare` grows tables that an unlocked encode may be reading
                out.layout = self.encoder.prepare(raw[0])
            out.raw = raw
            # The files as of now: a host rotated before `write_pending` must not get these records.
            hosts = np.unique(out.layout.host[raw[0]]).tolist() if len(raw[0]) else []
            out.hosts = {hi: self._host(hi) for hi in hosts}
        return out

    def write_pending(self, pending: _Pending) -> int:
        """Encode the detached batches, append all records to their files and fsync them; runs
        without the store lock (only `io_lock`, which `rotate` takes too). Records of a host rotated
        in between are dropped: the snapshot that preceded the rotation already holds them. Returns
        bytes written."""
        written = 0
        synced = []
        with self.io_lock:
            items = list(pending.encoded)  # encoded earlier, so older than the raw batches
            if pending.raw is not None and pending.layout is not None:
                items += [
                    (pending.hosts[hi], data)
                    for hi, data in self.encoder.encode_prepared(*pending.raw, pending.layout)
                ]
            for hw, data in items:
                if hw.rotated:
                    continue
                if hw.fd is None:
                    hw.path.parent.mkdir(parents=True, exist_ok=True)
                    hw.fd = os.open(hw.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    hw.size = os.fstat(hw.fd).st_size
                    if hw.size == 0:
                        os.write(hw.fd, _FILE_MAGIC_B)
                        hw.size = 4
                view = memoryview(data)
                while view:
                    k = os.write(hw.fd, view)
                    view = view[k:]
                hw.size += len(data)
                written += len(data)
                synced.append(hw.fd)
            if self.fsync:
                for fd in dict.fromkeys(synced):
                    os.fsync(fd)
        return written

    def flush(self) -> int:
        """Write every buffered record and fsync the files written; returns bytes written."""
        return self.write_pending(self.take_pending())

    def rotate(self, hosts: Iterable[tuple[str, str]]) -> None:
        """Forget buffered records of ``hosts`` and delete their WAL files (after a snapshot that
        holds everything they contained)."""
        wanted = set(hosts)
        self.encode_buffered()  # so that the hosts' buffered records are found and dropped below
        with self.io_lock:
            for hi, (cluster, host) in enumerate(self.encoder.hosts):
                if (cluster, host) not in wanted:
                    continue
                hw = self._files.pop(hi, None)
                if hw is not None:
                    hw.rotated = True
                    if hw.fd is not None:
                        os.close(hw.fd)
                        hw.fd = None
            for cluster, host in wanted:
                try:
                    (self.root / cluster / host / WAL_NAME).unlink()
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        self.flush()
        with self.io_lock:
            for hw in self._files.values():
                if hw.fd is not None:
                    os.close(hw.fd)
                    hw.fd = None


# ----------------------------------------------------------------------------------------- reading


@dataclass(slots=True)
class WalContents:
    """Records of one WAL file, columnar: ``mids[i]`` identifies the series (see `decode_mid`)."""

    ts: np.ndarray
    values: np.ndarray
    mids: list[bytes]
    good_bytes: int
    error: str | None = None


def decode_mid(mid: bytes) -> tuple[str, tuple[str, ...]]:
    """``(metric, selectors)`` of a payload middle."""
    (mlen,) = struct.unpack_from("<H", mid, 0)
    pos = 2 + mlen
    metric = mid[2:pos].decode()
    n = mid[pos]
    pos += 1
    sels = []
    for _ in range(n):
        ln = mid[pos]
        sels.append(mid[pos + 1 : pos + 1 + ln].decode())
        pos += 1 + ln
    return metric, tuple(sels)


def _mid_length(buf: bytes, start: int, end: int) -> int:
    """Length of the metric+selector part of the payload at ``buf[start:end]``, -1 if malformed."""
    if end - start < 2:
        return -1
    mlen = buf[start] | (buf[start + 1] << 8)
    pos = start + 2 + mlen
    if pos >= end:
        return -1
    n = buf[pos]
    pos += 1
    for _ in range(n):
        if pos >= end:
            return -1
        pos += 1 + buf[pos]
    if pos > end:
        return -1
    return pos - start


def read_wal(path: Path, *, repair: bool = True) -> WalContents:
    """Every valid record of a WAL file, stopping at the first bad one; with ``repair`` the file is
    truncated there (a warning names the file, the offset and the reason)."""
    buf = Path(path).read_bytes()
    n = len(buf)
    empty = WalContents(np.zeros(0, np.int64), np.zeros(0, np.float32), [], 0)
    if n == 0:
        return empty
    if n < 4 or buf[:4] != _FILE_MAGIC_B:
        empty.error = f"invalid file magic {buf[:4].hex()}"
        log.warning("WAL %s: %s; ignoring the file", path, empty.error)
        return empty
    ts_raw: list[int] = []
    val_raw: list[bytes] = []
    mids: list[bytes] = []
    pos = 4
    error = None
    crc32 = zlib.crc32
    mv = memoryview(buf)
    unpack_from = struct.unpack_from
    while pos < n:
        if n - pos < 12:
            error = "truncated record header"
            break
        if buf[pos : pos + 4] != _REC_MAGIC_B:
            error = "invalid record magic"
            break
        (plen,) = unpack_from("<I", buf, pos + 4)
        if plen > _MAX_PAYLOAD or plen < 15:
            error = f"implausible payload length {plen}"
            break
        end = pos + 12 + plen
        if end > n:
            error = "truncated record"
            break
        p0 = pos + 8
        (stored,) = unpack_from("<I", buf, end - 4)
        if crc32(mv[p0 : p0 + plen]) != stored:
            error = "CRC mismatch"
            break
        ml = _mid_length(buf, p0 + 8, p0 + plen)
        if ml < 0 or 8 + ml + 4 > plen:
            error = "malformed payload"
            break
        (t,) = unpack_from("<q", buf, p0)
        ts_raw.append(t)
        mids.append(buf[p0 + 8 : p0 + 8 + ml])
        v0 = p0 + 8 + ml
        val_raw.append(buf[v0 : v0 + 4])
        pos = end
    if error is not None:
        log.warning(
            "WAL %s: %s at byte %d; %s %d bytes after the last good record",
            path,
            error,
            pos,
            "truncating" if repair else "ignoring",
            n - pos,
        )
        if repair:
            with open(path, "r+b") as f:
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
    values = np.frombuffer(b"".join(val_raw), dtype="<f4").astype(np.float32)
    return WalContents(np.array(ts_raw, dtype=np.int64), values, mids, pos, error)


def replay_wal(store: MetricStore, cluster: str, host: str, contents: WalContents, since: int = 0) -> int:
    """Write the records of one host's WAL into the store (records older than ``since`` and unknown
    metrics skipped); returns samples stored."""
    mids, ts, vals = contents.mids, contents.ts, contents.values
    if since:
        recent = ts >= since
        if not recent.all():
            mids = [m for m, r in zip(mids, recent.tolist(), strict=True) if r]
            ts, vals = ts[recent], vals[recent]
    if not mids:
        return 0
    cache: dict[bytes, int] = {}
    for mid in set(mids):
        metric, sels = decode_mid(mid)
        sid = store.series_id((cluster, host, *sels), metric, create=True)
        cache[mid] = -1 if sid is None else sid
    sids = np.fromiter(map(cache.__getitem__, mids), dtype=np.int64, count=len(mids))
    known = sids >= 0
    if not known.all():
        sids, ts, vals = sids[known], ts[known], vals[known]
    return store.write_batch(sids, ts, vals).written

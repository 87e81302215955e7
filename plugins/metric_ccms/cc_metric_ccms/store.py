"""The in-memory data model of the embedded metric store (upstream `pkg/metricstore`, contract §8.2).

Shape
-----
A tree of `Level` nodes, ``cluster → host → (socket0 / memoryDomain1 / core5 / hwthread3 /
accelerator<id> …)``; a level holds one *series* per metric it received data for. A series is a chain
of fixed-size float32 blocks on a time grid: ``start = first_ts - freq/2``, slot ``(ts - start) // freq``;
NaN marks a gap, a write to the same slot overwrites, a write older than the newest block is rejected
(as upstream's buffer chain does).

Why it is laid out like this
----------------------------
Python objects cost ~50-100 bytes each, so nothing here is allocated per sample, and the write path is
vectorised so that a whole ingest batch is one numpy scatter:

* every series' **newest block** (the *head*, where all live writes go) is a row of one big 2-D array
  ``heads[sid, 0:block]``; a batch write is ``heads[sids, slots] = values``;
* per-series bookkeeping (grid origin, head start, frequency, filled length) lives in int64 arrays
  indexed by series id, so computing the slot of every sample of a batch is array arithmetic;
* a full head is copied into a row of a *slab* (a 2048-row array of blocks shared by all series; a
  series keeps the row numbers of its sealed blocks) and the head row is reused. Slabs are large
  allocations of their own, so freeing and sealing blocks at different times cannot fragment the
  heap, and a block costs its 2 KiB plus 16 bytes of bookkeeping: ≈ 4 bytes per stored sample plus a
  few percent.

Blocks of one series share the grid origin (a block starts at ``origin + k·block·freq``), so a read is a
few slice copies into a NaN-filled output and aggregation across children is one reduction over an
aligned 2-D array.

Concurrency: every public method takes ``self.lock`` (a `threading.RLock`), so a checkpoint or WAL flush
may run in a worker thread while the event loop ingests.
"""

from __future__ import annotations

import bisect
import math
import sys
import threading
import time
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cc_core.interfaces import NodeHealth

from .lttb import lttb

#: Default capacity of a block in samples (upstream's ``BufferCap``): 512 × 60 s ≈ 8.5 h per block.
DEFAULT_BLOCK = 512
#: A metric is *degraded* when its newest data is older than this many intervals (upstream: 5).
MAX_MISSING_DATA_POINTS = 5

_UNSET = np.iinfo(np.int64).min
# Per-object costs for memory accounting, measured with tracemalloc (CPython 3.11, numpy 2, 64-bit):
# a series costs ~550-650 bytes beyond its head row (bookkeeping columns, `_Meta`, its share of the
# `Level`, the ingest key-cache entry, the WAL encoder's tables, the two arrays of its sealed blocks);
# each sealed block adds its 2048 bytes of slab row and two int64 (block number, row number).
_SEALED_OVERHEAD = 16
_SERIES_OVERHEAD = 700
_SLAB_SHIFT = 11
_SLAB_ROWS = 1 << _SLAB_SHIFT  # blocks per slab (4 MiB at 512 float32 per block)
_SLAB_MASK = _SLAB_ROWS - 1

Selector = Sequence["str | Sequence[str] | None"]


class MetricStoreError(Exception):
    """A query the store cannot answer (unknown metric, bad range, data that does not align)."""


class NoDataError(MetricStoreError):
    """No series matched the selector (upstream ``ErrNoHostOrMetric``); callers usually skip it."""


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What the store needs to know about a metric: sampling interval and how to combine children.

    ``aggregation`` is ``"sum"``, ``"avg"`` or ``""`` (no aggregation: reading a level that does not hold
    the metric itself, from more than one child, is an error — upstream's rule).
    """

    name: str
    frequency: int
    aggregation: str = ""

    def __post_init__(self) -> None:
        if self.frequency <= 0:
            raise ValueError(f"metric {self.name!r}: frequency must be > 0, got {self.frequency}")
        if self.aggregation not in ("", "sum", "avg"):
            raise ValueError(f"metric {self.name!r}: unknown aggregation {self.aggregation!r}")


def metrics_from_clusters(clusters: Iterable[Any]) -> dict[str, MetricInfo]:
    """The union of the metrics of all clusters (and subcluster overrides), as upstream builds it:
    the largest timestep wins, the aggregation of the first definition is kept."""
    out: dict[str, MetricInfo] = {}

    def add(mc: Any) -> None:
        agg = mc.aggregation if mc.aggregation in ("sum", "avg") else ""
        prev = out.get(mc.name)
        if prev is None:
            out[mc.name] = MetricInfo(mc.name, int(mc.timestep), agg)
        elif prev.frequency < mc.timestep:
            out[mc.name] = MetricInfo(mc.name, int(mc.timestep), prev.aggregation)

    for c in clusters:
        for mc in c.metric_config:
            add(mc)
        for sc in c.sub_clusters:
            for mc in sc.metric_config or ():
                add(mc)
    return out


class Level:
    """A node of the tree: named children and, per metric index, the id of the series it holds."""

    __slots__ = ("children", "series")

    def __init__(self) -> None:
        self.children: dict[str, Level] = {}
        self.series: dict[int, int] = {}


@dataclass(slots=True)
class ReadResult:
    """Data of one read: values at ``from_ + i·resolution``; ``avg/min/max`` over the native data."""

    data: np.ndarray
    from_: int
    to: int
    resolution: int
    avg: float = math.nan
    min: float = math.nan
    max: float = math.nan


@dataclass(slots=True)
class WriteStats:
    """Outcome of a batch write: samples stored and samples rejected as older than their block."""

    written: int = 0
    stale: int = 0


@dataclass(slots=True)
class _Meta:
    level: Level
    metric: int
    path: tuple[str, ...]
    sealed_k: array = field(default_factory=lambda: array("q"))  # block numbers, oldest first
    rows: array = field(default_factory=lambda: array("q"))  # slab row of each sealed block


def nan_stats(data: np.ndarray) -> tuple[float, float, float]:
    """``(avg, min, max)`` ignoring NaN; all NaN (or empty) gives NaNs (upstream `AddStats`)."""
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mask = ~np.isnan(data)
    n = int(mask.sum())
    if n == 0:
        return math.nan, math.nan, math.nan
    if n == data.size:
        return float(data.mean(dtype=np.float64)), float(data.min()), float(data.max())
    v = data[mask]
    return float(v.mean(dtype=np.float64)), float(v.min()), float(v.max())


def nan_stats_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`nan_stats` for every row of a 2-D array at once (one reduction each instead of one per row)."""
    if rows.shape[1] == 0:
        nan = np.full(rows.shape[0], np.nan)
        return nan, nan.copy(), nan.copy()
    mask = ~np.isnan(rows)
    cnt = mask.sum(axis=1)
    total = np.where(mask, rows, 0.0).sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = total / cnt
    mn = np.fmin.reduce(rows, axis=1).astype(np.float64)
    mx = np.fmax.reduce(rows, axis=1).astype(np.float64)
    avg[cnt == 0] = np.nan
    return avg, mn, mx


class MetricStore:
    """The tree of levels and the block storage of all series; see the module docstring."""

    def __init__(
        self,
        metrics: Mapping[str, MetricInfo] | Iterable[MetricInfo],
        *,
        block_size: int = DEFAULT_BLOCK,
        minimum_points: int = 1000,
        initial_capacity: int = 1024,
    ) -> None:
        infos = list(metrics.values()) if isinstance(metrics, Mapping) else list(metrics)
        self.metrics: dict[str, MetricInfo] = {m.name: m for m in infos}
        self._metric_names: list[str] = [m.name for m in infos]
        self._metric_index: dict[str, int] = {m.name: i for i, m in enumerate(infos)}
        self.block = int(block_size)
        self.minimum_points = minimum_points
        self.lock = threading.RLock()
        self.root = Level()
        #: Incremented whenever a series id is released, so caches keyed by series id can notice.
        self.epoch = 0
        #: Called (under the lock) before a series id is released: holders of ids that must still
        #: resolve to their series — the WAL's unencoded batches — settle them first.
        self.before_release: list[Callable[[], None]] = []
        #: Earliest timestamp written by `write_batch` since the owner last reset it (None: nothing):
        #: a checkpoint must start there, or late samples would be missing from it once the WAL that
        #: held them is rotated away.
        self.dirty_since: int | None = None
        cap = max(16, initial_capacity)
        self._heads = np.empty((cap, self.block), dtype=np.float32)
        self._head_start = np.full(cap, _UNSET, dtype=np.int64)
        self._origin = np.zeros(cap, dtype=np.int64)
        self._head_k = np.zeros(cap, dtype=np.int64)
        self._freq = np.ones(cap, dtype=np.int64)
        self._head_len = np.zeros(cap, dtype=np.int64)
        self._meta: list[_Meta | None] = []
        self._free_sids: list[int] = []
        self._n_sealed = 0
        self._slabs: list[np.ndarray] = []
        self._free_rows = array("q")

    # ------------------------------------------------------------------------------------- metrics

    def metric_index(self, name: str) -> int | None:
        return self._metric_index.get(name)

    def metric_name(self, index: int) -> str:
        return self._metric_names[index]

    # ---------------------------------------------------------------------------------------- tree

    def find_level(self, path: Sequence[str]) -> Level | None:
        """The level at ``path`` (``[cluster, host, "socket0", …]``) or None."""
        lvl: Level | None = self.root
        for name in path:
            lvl = lvl.children.get(name)  # type: ignore[union-attr]
            if lvl is None:
                return None
        return lvl

    def _level_or_create(self, path: Sequence[str]) -> Level:
        lvl = self.root
        for name in path:
            child = lvl.children.get(name)
            if child is None:
                child = lvl.children[name] = Level()
            lvl = child
        return lvl

    def list_children(self, path: Sequence[str] = ()) -> list[str]:
        """Names of the children of the level at ``path`` (e.g. the hosts of a cluster)."""
        with self.lock:
            lvl = self.find_level(path)
            return sorted(lvl.children) if lvl is not None else []

    def series_id(self, path: Sequence[str], metric: str, *, create: bool = False) -> int | None:
        """The id of the series of ``metric`` at level ``path``; with ``create`` make it (and the
        levels) if missing. None for an unknown metric or (without ``create``) a missing series."""
        mi = self._metric_index.get(metric)
        if mi is None:
            return None
        with self.lock:
            if not create:
                lvl = self.find_level(path)
                return None if lvl is None else lvl.series.get(mi)
            lvl = self._level_or_create(path)
            sid = lvl.series.get(mi)
            if sid is None:
                sid = self._new_series(lvl, mi, tuple(path))
            return sid

    def series_path(self, sid: int) -> tuple[tuple[str, ...], str]:
        """``(level path, metric name)`` of a series."""
        m = self._meta[sid]
        if m is None:
            raise KeyError(sid)
        return m.path, self._metric_names[m.metric]

    def _new_series(self, lvl: Level, mi: int, path: tuple[str, ...]) -> int:
        if self._free_sids:
            sid = self._free_sids.pop()
        else:
            sid = len(self._meta)
            self._meta.append(None)
            if sid >= len(self._head_start):
                self._grow(2 * len(self._head_start))
        self._meta[sid] = _Meta(lvl, mi, tuple(map(sys.intern, path)))
        self._heads[sid].fill(np.nan)
        self._head_start[sid] = _UNSET
        self._origin[sid] = 0
        self._head_k[sid] = 0
        self._head_len[sid] = 0
        self._freq[sid] = self.metrics[self._metric_names[mi]].frequency
        lvl.series[mi] = sid
        return sid

    def _grow(self, cap: int) -> None:
        # np.empty maps fresh pages lazily: rows not yet handed out cost address space, not memory.
        n = min(len(self._meta), self._heads.shape[0])
        heads = np.empty((cap, self.block), dtype=np.float32)
        heads[:n] = self._heads[:n]
        self._heads = heads
        for name, fill in (
            ("_head_start", _UNSET),
            ("_origin", 0),
            ("_head_k", 0),
            ("_freq", 1),
            ("_head_len", 0),
        ):
            old = getattr(self, name)
            new = np.full(cap, fill, dtype=np.int64)
            new[: len(old)] = old
            setattr(self, name, new)

    def _release(self, sid: int) -> None:
        m = self._meta[sid]
        if m is None:
            return
        for hook in self.before_release:
            hook()
        self._n_sealed -= len(m.sealed_k)
        self._free_rows.extend(m.rows)
        if m.level.series.get(m.metric) == sid:
            del m.level.series[m.metric]
        self._meta[sid] = None
        self._head_start[sid] = _UNSET
        self._head_len[sid] = 0
        self._free_sids.append(sid)
        self.epoch += 1

    @property
    def series_count(self) -> int:
        return len(self._meta) - len(self._free_sids)

    # --------------------------------------------------------------------------------------- write

    def write(self, path: Sequence[str], metric: str, ts: int, value: float) -> bool:
        """Store one sample (convenience; ingest uses `write_batch`). False if unknown or too old."""
        sid = self.series_id(path, metric, create=True)
        if sid is None:
            return False
        st = self.write_batch(np.array([sid]), np.array([ts]), np.array([value]))
        return st.written == 1

    def write_batch(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> WriteStats:
        """Store ``values[i]`` at time ``ts[i]`` (seconds) in series ``sids[i]``.

        The common case — every sample lands in its series' head block — is a single scatter. Samples
        past the end of a head roll that series over (once per ``block`` samples in steady state; a
        replayed WAL may span several blocks, handled one block per pass, each pass vectorised);
        samples older than the head block are rejected and counted as stale.
        """
        sids = np.asarray(sids, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values)
        n = len(sids)
        if n == 0:
            return WriteStats()
        b = self.block
        with self.lock:
            tmin = int(ts.min())
            if self.dirty_since is None or tmin < self.dirty_since:
                self.dirty_since = tmin
            hs = self._head_start[sids]
            fresh = hs == _UNSET
            if fresh.any():
                self._init_fresh(sids[fresh], ts[fresh])
                hs = self._head_start[sids]
            freq = self._freq[sids]
            idx = (ts - hs) // freq
            ok = (idx >= 0) & (idx < b)
            if ok.all():
                self._heads[sids, idx] = values
                np.maximum.at(self._head_len, sids, idx + 1)
                return WriteStats(n, 0)
            written = stale = 0
            while True:
                s_ok, i_ok = sids[ok], idx[ok]
                self._heads[s_ok, i_ok] = values[ok]
                np.maximum.at(self._head_len, s_ok, i_ok + 1)
                written += len(s_ok)
                stale += int((idx < 0).sum())
                over = idx >= b
                if not over.any():
                    return WriteStats(written, stale)
                sids, ts, values, freq = sids[over], ts[over], values[over], freq[over]
                # Roll each series to the block of its earliest overflowing sample, then retry those.
                k = (ts - self._origin[sids]) // (freq * b)
                u, inv = np.unique(sids, return_inverse=True)
                kmin = np.full(len(u), np.iinfo(np.int64).max, dtype=np.int64)
                np.minimum.at(kmin, inv, k)
                for sid, kk in zip(u.tolist(), kmin.tolist(), strict=True):
                    self._roll(sid, kk)
                idx = (ts - self._head_start[sids]) // freq
                ok = (idx >= 0) & (idx < b)

    def _init_fresh(self, sids: np.ndarray, ts: np.ndarray) -> None:
        # A new series starts at the earliest of its samples in the batch, half an interval early.
        u, inv = np.unique(sids, return_inverse=True)
        first = np.full(len(u), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, inv, ts)
        start = first - self._freq[u] // 2
        self._origin[u] = start
        self._head_start[u] = start
        self._head_k[u] = 0
        self._head_len[u] = 0

    def _alloc_row(self) -> int:
        """A free slab row for a sealed block (a new slab when none is left)."""
        if not self._free_rows:
            base = len(self._slabs) * _SLAB_ROWS
            self._slabs.append(np.empty((_SLAB_ROWS, self.block), dtype=np.float32))
            self._free_rows.extend(range(base + _SLAB_ROWS - 1, base - 1, -1))  # low rows first
        return self._free_rows.pop()

    def compact(self) -> int:
        """Move sealed blocks out of the highest slabs into free rows below and release the slabs
        that end up empty (after retention or the memory cap freed many blocks). Returns slabs freed."""
        with self.lock:
            used = self._n_sealed
            keep = -(-used // _SLAB_ROWS)
            if keep >= len(self._slabs):
                return 0
            limit = keep * _SLAB_ROWS
            low_free = sorted(r for r in self._free_rows if r < limit)
            for m in self._meta:
                if m is None:
                    continue
                for i, rid in enumerate(m.rows):
                    if rid >= limit:
                        new = low_free.pop()
                        self._slabs[new >> _SLAB_SHIFT][new & _SLAB_MASK] = self._slabs[rid >> _SLAB_SHIFT][
                            rid & _SLAB_MASK
                        ]
                        m.rows[i] = new
            freed = len(self._slabs) - keep
            del self._slabs[keep:]
            self._free_rows = array("q", sorted(low_free, reverse=True))
            return freed

    def _roll(self, sid: int, k: int) -> None:
        """Seal the head (if it holds data) and start a new head at block number ``k``."""
        m = self._meta[sid]
        assert m is not None
        if self._head_len[sid] > 0:
            rid = self._alloc_row()
            self._slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK] = self._heads[sid]
            m.rows.append(rid)
            m.sealed_k.append(int(self._head_k[sid]))
            self._n_sealed += 1
            self._heads[sid].fill(np.nan)
        self._head_k[sid] = k
        self._head_start[sid] = int(self._origin[sid]) + k * self.block * int(self._freq[sid])
        self._head_len[sid] = 0

    def write_series(
        self, sid: int, start: int, values: np.ndarray, frequency: int | None = None, *, skip_nan: bool = True
    ) -> int:
        """Bulk-load ``values[i]`` at ``start + i·freq`` into one series (checkpoint loading).

        Unlike live writes this also fills older blocks (files may come in any order); NaNs are
        skipped so that a later file never erases data an earlier one had. Returns samples stored.
        """
        vals = np.asarray(values, dtype=np.float32)
        if vals.size == 0:
            return 0
        with self.lock:
            m = self._meta[sid]
            if m is None:
                raise KeyError(sid)
            if self._head_start[sid] == _UNSET:
                f = int(frequency or self._freq[sid])
                self._freq[sid] = f
                origin = int(start) - f // 2
                self._origin[sid] = origin
                self._head_start[sid] = origin
                self._head_k[sid] = 0
                self._head_len[sid] = 0
            f = int(self._freq[sid])
            if frequency is not None and frequency != f:
                raise MetricStoreError(
                    f"series {m.path}/{self._metric_names[m.metric]}: frequency {frequency} in file "
                    f"differs from {f} in memory"
                )
            b = self.block
            origin = int(self._origin[sid])
            g0 = (int(start) - origin) // f  # global slot of values[0]
            n = len(vals)
            pos = 0
            stored = 0
            while pos < n:
                g = g0 + pos
                k = g // b
                off = g - k * b
                take = min(b - off, n - pos)
                chunk = vals[pos : pos + take]
                mask = ~np.isnan(chunk) if skip_nan else np.ones(take, dtype=bool)
                if mask.any():
                    stored += int(mask.sum())
                    target = self._block_for_load(sid, m, k)
                    seg = target[off : off + take]
                    seg[mask] = chunk[mask]
                    if k == int(self._head_k[sid]):
                        last = off + int(np.flatnonzero(mask)[-1]) + 1
                        if last > self._head_len[sid]:
                            self._head_len[sid] = last
                pos += take
            return stored

    def _block_for_load(self, sid: int, m: _Meta, k: int) -> np.ndarray:
        hk = int(self._head_k[sid])
        if k > hk:
            self._roll(sid, k)
            return self._heads[sid]
        if k == hk:
            return self._heads[sid]
        i = bisect.bisect_left(m.sealed_k, k)
        if i < len(m.sealed_k) and m.sealed_k[i] == k:
            rid = m.rows[i]
            return self._slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK]
        rid = self._alloc_row()
        blk = self._slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK]
        blk.fill(np.nan)
        m.sealed_k.insert(i, k)
        m.rows.insert(i, rid)
        self._n_sealed += 1
        return blk

    # ---------------------------------------------------------------------------------------- read

    def _extent(self, sid: int) -> tuple[int, int] | None:
        """``[first, end)`` global slots holding data, or None for an empty series."""
        m = self._meta[sid]
        if m is None or self._head_start[sid] == _UNSET:
            return None
        b = self.block
        hl = int(self._head_len[sid])
        if m.sealed_k:
            first = m.sealed_k[0] * b
        elif hl:
            first = int(self._head_k[sid]) * b
        else:
            return None
        end = int(self._head_k[sid]) * b + hl if hl else (m.sealed_k[-1] + 1) * b
        return first, end

    def data_end(self, sid: int) -> int | None:
        """Time just after the newest sample of a series (upstream ``buffer.end()``), None if empty."""
        ext = self._extent(sid)
        if ext is None:
            return None
        return int(self._origin[sid]) + ext[1] * int(self._freq[sid])

    def _fill(self, sid: int, out: np.ndarray, g0: int) -> tuple[int, int]:
        """Copy the series' slots ``[g0, g0+len(out))`` into ``out``; return the data range in ``out``."""
        ext = self._extent(sid)
        n = len(out)
        if ext is None:
            return 0, 0
        i0 = max(0, ext[0] - g0)
        i1 = min(n, ext[1] - g0)
        if i1 <= i0:
            return 0, 0
        m = self._meta[sid]
        assert m is not None
        b = self.block
        lo, hi = g0 + i0, g0 + i1
        ks = m.sealed_k
        if ks:
            j = bisect.bisect_left(ks, lo // b)
            while j < len(ks) and ks[j] * b < hi:
                ka = ks[j] * b
                a, z = max(lo, ka), min(hi, ka + b)
                rid = m.rows[j]
                out[a - g0 : z - g0] = self._slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK, a - ka : z - ka]
                j += 1
        kh = int(self._head_k[sid]) * b
        a, z = max(lo, kh), min(hi, kh + int(self._head_len[sid]))
        if a < z:
            out[a - g0 : z - g0] = self._heads[sid, a - kh : z - kh]
        return i0, i1

    def _span(self, sid: int, frm: int, to: int) -> tuple[int, int, int]:
        """``(g0, i0, i1)``: global slot of the point at ``frm`` and the range of points
        ``frm + i·freq < to`` that hold data (empty when ``i1 <= i0``)."""
        ext = self._extent(sid)
        if ext is None:
            return 0, 0, 0
        f = int(self._freq[sid])
        n = max(0, -((frm - to) // f))
        g0 = (frm - int(self._origin[sid])) // f
        return g0, max(0, ext[0] - g0), min(n, ext[1] - g0)

    def read_sid(self, sid: int, frm: int, to: int) -> tuple[np.ndarray, int, int]:
        """Raw float32 data of one series at ``frm + i·freq`` for ``t < to``, clipped to the data."""
        with self.lock:
            g0, i0, i1 = self._span(sid, frm, to)
            if i1 <= i0:
                return np.empty(0, dtype=np.float32), frm, frm
            f = int(self._freq[sid])
            out = np.full(i1 - i0, np.nan, dtype=np.float32)
            self._fill(sid, out, g0 + i0)
            return out, frm + i0 * f, frm + i1 * f

    def find_series(self, selector: Selector, metric: str) -> list[int]:
        """Series ids that a read of ``selector`` combines (upstream ``findBuffers``).

        Selector elements: a name, a list of names (a group: those children), or None / ``"*"`` (all
        children). At the end of the selector a level that holds the metric gives its series; one that
        does not contributes all its descendants that do (nearest ones first).
        """
        mi = self._metric_index.get(metric)
        if mi is None:
            raise MetricStoreError(f"unknown metric: {metric}")
        out: list[int] = []
        with self.lock:
            self._find(self.root, list(selector), mi, out)
        return out

    def _find(self, lvl: Level, sel: list[Any], mi: int, out: list[int]) -> None:
        if not sel:
            sid = lvl.series.get(mi)
            if sid is not None:
                m = self._meta[sid]
                if m is not None and (m.sealed_k or self._head_len[sid]):
                    out.append(sid)
                    return
            for child in lvl.children.values():
                self._find(child, sel, mi, out)
            return
        head, rest = sel[0], sel[1:]
        if head is None or head == "*":
            for child in lvl.children.values():
                self._find(child, rest, mi, out)
        elif isinstance(head, str):
            child = lvl.children.get(head)
            if child is not None:
                self._find(child, rest, mi, out)
        else:
            for name in head:
                child = lvl.children.get(name)
                if child is not None:
                    self._find(child, rest, mi, out)

    def read(
        self,
        selector: Selector,
        metric: str,
        frm: int,
        to: int,
        resolution: int = 0,
        *,
        with_stats: bool = True,
    ) -> ReadResult:
        """Data of ``metric`` for ``selector`` in ``[frm, to)`` (upstream ``MemoryStore.Read``).

        Several series (a level without the metric, or a group selector) are combined with the
        metric's aggregation, NaN-aware: a time step is the sum (or mean) of the children that have a
        value there, NaN only when none has; the range is the union of the children's ranges. Then
        LTTB-downsampled to ``resolution`` seconds when that is a multiple of the interval larger than
        it and there are at least ``minimum_points`` samples. Statistics are taken from the data
        *before* downsampling (upstream takes them after, which lets LTTB skew the average).
        Raises `NoDataError` when nothing matches, `MetricStoreError` for other problems.
        """
        if frm > to:
            raise MetricStoreError("invalid time range: 'from' must be before 'to'")
        info = self.metrics.get(metric)
        if info is None:
            raise MetricStoreError(f"unknown metric: {metric}")
        with self.lock:
            sids = self.find_series(selector, metric)
            if not sids:
                raise NoDataError("metric or host not found")
            data, f0, t0, freq = self._combine(sids, info, frm, to)
        return self._finish(data, f0, t0, freq, resolution, with_stats)

    def _combine(
        self, sids: list[int], info: MetricInfo, frm: int, to: int
    ) -> tuple[np.ndarray, int, int, int]:
        f = int(self._freq[sids[0]])
        if len(sids) == 1:
            data, a, z = self.read_sid(sids[0], frm, to)
            return data, a, z, f
        if info.aggregation == "":
            raise MetricStoreError(
                f"metric {info.name!r} has no aggregation, cannot combine {len(sids)} series"
            )
        freqs = self._freq[sids]
        if (freqs != f).any():
            raise MetricStoreError("data from lower granularities does not align (different frequencies)")
        rows, lo, hi = self._rows(sids, frm, to, f)
        if hi <= lo:
            return np.empty(0, dtype=np.float32), frm, frm, f
        nan = np.isnan(rows)
        if not nan.any():  # the common case: every child has every point
            total = rows.sum(axis=0, dtype=np.float64)
            if info.aggregation == "avg":
                total /= len(sids)
        else:
            cnt = len(sids) - nan.sum(axis=0)
            total = np.nansum(rows, axis=0, dtype=np.float64)
            if info.aggregation == "avg":
                with np.errstate(invalid="ignore", divide="ignore"):
                    total /= cnt
            total[cnt == 0] = np.nan
        return total, frm + lo * f, frm + hi * f, f

    def _rows(self, sids: list[int], frm: int, to: int, f: int) -> tuple[np.ndarray, int, int]:
        """Series ``sids`` (same frequency) as rows of one NaN-padded array over the union of their
        data in ``[frm, to)``: ``(rows, lo, hi)``, column j is the point at ``frm + (lo+j)·f``.

        `_span`/`_fill` inlined, with the per-series numbers fetched as Python lists in one go: an
        aggregated read touches tens of children, and numpy scalar access per child adds up.
        """
        sa = np.asarray(sids, dtype=np.int64)
        origins = self._origin[sa].tolist()
        hks = self._head_k[sa].tolist()
        hls = self._head_len[sa].tolist()
        metas = [self._meta[s] for s in sids]
        b = self.block
        n = max(0, -((frm - to) // f))
        g0s: list[int | None] = []
        lo, hi = n, 0
        for o, k, hl, m in zip(origins, hks, hls, metas, strict=True):
            ks = m.sealed_k if m is not None else None
            if ks:
                first, end = ks[0] * b, (k * b + hl if hl else (ks[-1] + 1) * b)
            elif hl:
                first, end = k * b, k * b + hl
            else:
                g0s.append(None)
                continue
            g0 = (frm - o) // f
            i0, i1 = max(0, first - g0), min(n, end - g0)
            if i1 > i0:
                lo, hi = min(lo, i0), max(hi, i1)
                g0s.append(g0)
            else:
                g0s.append(None)
        if hi <= lo:
            return np.empty((len(sids), 0), dtype=np.float32), 0, 0
        rows = np.full((len(sids), hi - lo), np.nan, dtype=np.float32)
        heads = self._heads
        slabs = self._slabs
        for r, (g0, sid, k, hl, m) in enumerate(zip(g0s, sids, hks, hls, metas, strict=True)):
            if g0 is None:
                continue
            a, z = g0 + lo, g0 + hi
            row = rows[r]
            ks = m.sealed_k
            if ks:
                j = bisect.bisect_left(ks, a // b)
                while j < len(ks) and ks[j] * b < z:
                    ka = ks[j] * b
                    x, y = max(a, ka), min(z, ka + b)
                    rid = m.rows[j]
                    row[x - a : y - a] = slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK, x - ka : y - ka]
                    j += 1
            kh = k * b
            x, y = max(a, kh), min(z, kh + hl)
            if x < y:
                row[x - a : y - a] = heads[sid, x - kh : y - kh]
        return rows, lo, hi

    def _finish(
        self, data: np.ndarray, frm: int, to: int, freq: int, resolution: int, with_stats: bool
    ) -> ReadResult:
        data = np.asarray(data, dtype=np.float64)
        avg = mn = mx = math.nan
        if with_stats:
            avg, mn, mx = nan_stats(data)
        res = freq
        if resolution and resolution > freq:
            data, res = lttb(data, freq, resolution, self.minimum_points)
        return ReadResult(data, frm, to, res, avg, mn, mx)

    def stats(self, selector: Selector, metric: str, frm: int, to: int) -> ReadResult:
        """Statistics only (``data`` is still filled; it is cheap and callers may want the range)."""
        return self.read(selector, metric, frm, to, 0, with_stats=True)

    # ------------------------------------------------------------------------------- iteration/dump

    def iter_series(self, path: Sequence[str] = ()) -> Iterator[tuple[tuple[str, ...], str, int]]:
        """``(level path, metric, sid)`` of every non-empty series below ``path`` (depth first)."""
        with self.lock:
            lvl = self.find_level(path)
            if lvl is None:
                return
            stack: list[tuple[tuple[str, ...], Level]] = [(tuple(path), lvl)]
            items = []
            while stack:
                p, node = stack.pop()
                for mi, sid in node.series.items():
                    if self._extent(sid) is not None:
                        items.append((p, self._metric_names[mi], sid))
                for name, child in node.children.items():
                    stack.append(((*p, name), child))
        yield from items

    def hosts(self) -> list[tuple[str, str]]:
        """Every ``(cluster, host)`` in the tree."""
        with self.lock:
            return [(c, h) for c, cl in self.root.children.items() for h in cl.children]

    def slot_time(self, sid: int, t: int) -> int:
        """The representative time (slot start + freq/2, the time of the sample that opened the grid)
        of the slot of series ``sid`` that contains ``t``; reading from it keeps the grid on reload."""
        f = int(self._freq[sid])
        origin = int(self._origin[sid])
        return origin + ((t - origin) // f) * f + f // 2

    def series_info(self, sid: int) -> tuple[int, int, int]:
        """``(frequency, first sample time, end time)`` of a non-empty series."""
        ext = self._extent(sid)
        if ext is None:
            raise KeyError(sid)
        f = int(self._freq[sid])
        o = int(self._origin[sid]) + f // 2
        return f, o + ext[0] * f, o + ext[1] * f

    def debug_dump(self, selector: Sequence[str] = ()) -> dict[str, Any]:
        """The tree below ``selector`` with each metric's blocks as ``{start, len, end}`` (upstream's
        ``/api/debug``). Raises `MetricStoreError` if the level does not exist."""
        with self.lock:
            lvl = self.find_level(selector)
            if lvl is None:
                raise MetricStoreError(f"not found: {list(selector)}")
            return {"data": self._dump(lvl)}

    def _dump(self, lvl: Level) -> dict[str, Any]:
        out: dict[str, Any] = {}
        b = self.block
        for mi, sid in sorted(lvl.series.items()):
            m = self._meta[sid]
            if m is None or self._head_start[sid] == _UNSET:
                continue
            f, origin = int(self._freq[sid]), int(self._origin[sid])
            blocks = []
            for k, rid in zip(m.sealed_k, m.rows, strict=True):
                blk = self._slabs[rid >> _SLAB_SHIFT][rid & _SLAB_MASK]
                filled = np.flatnonzero(~np.isnan(blk))
                length = int(filled[-1]) + 1 if len(filled) else 0
                s = origin + k * b * f
                blocks.append({"start": s, "len": length, "end": s + length * f})
            hl = int(self._head_len[sid])
            hs = int(self._head_start[sid])
            blocks.append({"start": hs, "len": hl, "end": hs + hl * f})
            out[self._metric_names[mi]] = blocks
        for name in sorted(lvl.children):
            out[name] = self._dump(lvl.children[name])
        return out

    # -------------------------------------------------------------------------------- maintenance

    def nbytes(self) -> int:
        """Bytes held for metric data: head rows in use, sealed blocks and per-series bookkeeping."""
        n = self.series_count
        slabs = len(self._slabs) * _SLAB_ROWS * self.block * 4  # free rows included: they are held
        return n * (self.block * 4 + _SERIES_OVERHEAD) + self._n_sealed * _SEALED_OVERHEAD + slabs

    def sample_slots(self) -> int:
        """Slots holding data or gaps inside the stored ranges (what the bytes above pay for)."""
        total = 0
        with self.lock:
            for sid, m in enumerate(self._meta):
                if m is not None and self._head_start[sid] != _UNSET:
                    total += len(m.sealed_k) * self.block + int(self._head_len[sid])
        return total

    def free(self, selectors: Iterable[Sequence[str]] | None, to: int) -> int:
        """Free every block whose data ends before ``to`` below each selector (None = everything);
        series and levels left empty are removed. Returns the number of blocks freed (upstream
        ``/api/free`` and the retention worker)."""
        freed = 0
        with self.lock:
            paths = [()] if selectors is None else [tuple(s) for s in selectors]
            for path in paths:
                lvl = self.find_level(path)
                if lvl is not None:
                    freed += self._free_level(lvl, to)
                    if path:
                        self._prune(path)
        return freed

    def _free_level(self, lvl: Level, to: int) -> int:
        freed = 0
        b = self.block
        for sid in list(lvl.series.values()):
            m = self._meta[sid]
            if m is None:
                continue
            if self._head_start[sid] == _UNSET:
                continue
            f, origin = int(self._freq[sid]), int(self._origin[sid])
            drop = 0
            while drop < len(m.sealed_k) and origin + (m.sealed_k[drop] + 1) * b * f < to:
                drop += 1
            if drop:
                self._drop_oldest(m, drop)
                freed += drop
            head_end = int(self._head_start[sid]) + int(self._head_len[sid]) * f
            if not m.sealed_k and head_end < to:
                freed += 1 if self._head_len[sid] else 0
                self._release(sid)
        for name, child in list(lvl.children.items()):
            freed += self._free_level(child, to)
            if not child.children and not child.series:
                del lvl.children[name]
        return freed

    def _drop_oldest(self, m: _Meta, count: int) -> None:
        self._free_rows.extend(m.rows[:count])
        del m.sealed_k[:count]
        del m.rows[:count]
        self._n_sealed -= count

    def _prune(self, path: tuple[str, ...]) -> None:
        for depth in range(len(path), 0, -1):
            parent = self.find_level(path[: depth - 1])
            child = parent.children.get(path[depth - 1]) if parent is not None else None
            if parent is None or child is None or child.children or child.series:
                return
            del parent.children[path[depth - 1]]

    def retain(self, before: int, keep: Mapping[str, Collection[str]] | None = None) -> int:
        """Retention: free data older than ``before`` on every host except those in ``keep``
        (``{cluster: hosts}``, the nodes of running jobs, upstream ``GetUsedNodes``)."""
        if not keep:
            freed = self.free(None, before)
        else:
            freed = self.free([[c, h] for c, h in self.hosts() if h not in keep.get(c, ())], before)
        if len(self._free_rows) > 2 * _SLAB_ROWS:
            self.compact()
        return freed

    def force_free_oldest(self) -> int:
        """Drop the oldest sealed block of every series (last resort of the memory cap)."""
        freed = 0
        with self.lock:
            for m in self._meta:
                if m is not None and m.sealed_k:
                    self._drop_oldest(m, 1)
                    freed += 1
        return freed

    def enforce_memory_cap(self, cap_bytes: int, retention: float, now: float | None = None) -> int:
        """Free data until `nbytes` is below ``cap_bytes``: first everything older than 75 %, 50 %,
        25 % of the retention window (upstream's steps, ignoring running jobs), then the oldest block
        of every series until it fits. Returns blocks freed."""
        if cap_bytes <= 0 or self.nbytes() <= cap_bytes:
            return 0
        now = time.time() if now is None else now
        freed = 0
        for frac in (0.75, 0.5, 0.25):
            freed += self.free(None, int(now - retention * frac))
            self.compact()
            if self.nbytes() <= cap_bytes:
                return freed
        while self.nbytes() > cap_bytes:
            n = self.force_free_oldest()
            self.compact()
            if n == 0:
                break
            freed += n
        return freed

    # -------------------------------------------------------------------------------------- health

    def health_check(
        self, cluster: str, nodes: Sequence[str], metrics: Sequence[str], now: float | None = None
    ) -> dict[str, NodeHealth]:
        """Health of each node from the freshness of its metrics (contract §8.6).

        A metric is *degraded* if any of its series below the host ends more than 5 intervals before
        ``now``, *missing* if it has no data anywhere below the host (or is not configured). ``full``:
        nothing degraded or missing; ``failed``: host unknown or nothing healthy; else ``partial``.
        """
        now = time.time() if now is None else now
        out: dict[str, NodeHealth] = {}
        with self.lock:
            for host in nodes:
                lvl = self.find_level((cluster, host))
                if lvl is None:
                    out[host] = NodeHealth("failed", missing=list(metrics))
                    continue
                healthy: set[str] = set()
                degraded: set[str] = set()
                wanted = {self._metric_index[m]: m for m in metrics if m in self._metric_index}
                stack = [lvl]
                while stack:
                    node = stack.pop()
                    for mi, name in wanted.items():
                        sid = node.series.get(mi)
                        if sid is None or name in degraded:
                            continue
                        end = self.data_end(sid)
                        if end is None:
                            continue
                        if now - end <= MAX_MISSING_DATA_POINTS * int(self._freq[sid]):
                            healthy.add(name)
                        else:
                            degraded.add(name)
                            healthy.discard(name)
                    stack.extend(node.children.values())
                missing = [m for m in metrics if m not in healthy and m not in degraded]
                deg = [m for m in metrics if m in degraded]
                if not missing and not deg:
                    state = "full"
                elif len(metrics) - len(missing) - len(deg) <= 0:
                    state = "failed"
                else:
                    state = "partial"
                out[host] = NodeHealth(state, missing=missing, degraded=deg)  # type: ignore[arg-type]
        return out

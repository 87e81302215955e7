"""InfluxDB line protocol as cc-metric-collector sends it, decoded into store writes (contract §8.1).

``<metric>[,cluster=c][,hostname=h|host=h][,type=t,type-id=i][,stype=s,stype-id=j] value=<num> [<ts>]``

The series key — the bytes before the first unescaped space — says everything about *where* a sample
goes, and a collector repeats the same few thousand keys every interval. So the decoder keeps a dict
``key bytes → series id`` (per default cluster) and the steady state costs one dict lookup per line plus
the number parsing, all of it done by C loops over whole batches:

* **fast path** (no escapes, quotes, comments, CR or blank lines; every line ``key value=<v> [<ts>]``,
  checked for every line at once with numpy over the raw bytes): ``bytes.split`` → keys, values and
  timestamps as three strided slices; ``np.fromiter(map(cache.get, keys))`` → series ids; values
  through one ``msgspec`` JSON array decode; timestamps converted once per distinct value;
* **general path** for everything else: a per-line scanner that implements the escaping rules and
  reports the line number of the first problem.

A batch is validated completely before anything is stored, so a rejected batch stores nothing (upstream
stores the lines before the bad one). Unknown metrics are dropped and counted; a cluster or host with
``..``, ``/`` or ``\\`` is dropped and counted (they become checkpoint path components).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import msgspec
import numpy as np

from .store import MetricStore

_FLOAT_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(rb"[+-]?\d+")
_UINT_RE = re.compile(rb"\d+")
_BOOLS = frozenset((b"t", b"T", b"true", b"True", b"TRUE", b"f", b"F", b"false", b"False", b"FALSE"))
_FLOAT_LIST = msgspec.json.Decoder(list[float])
_MAX_I64 = 2**63 - 1
_MAX_U64 = 2**64 - 1
# Largest |ts| that still fits int64 nanoseconds at each precision (upstream tries s, ms, µs, ns).
_S_MAX, _MS_MAX, _US_MAX = _MAX_I64 // 10**9, _MAX_I64 // 10**6, _MAX_I64 // 10**3
_UNKNOWN, _INVALID = -1, -2
_PENDING_BASE = -10  # pending (to be created) targets get ids -10, -11, …
_CACHE_LIMIT = 1 << 20

_MEAS_ESC = frozenset(b", \\")
_TAG_ESC = frozenset(b",= \\")


class LineProtocolError(ValueError):
    """A malformed line; ``line`` is its 1-based number in the body. Nothing of the batch was stored."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(slots=True)
class IngestResult:
    """Counts for one body: non-blank lines, samples stored, dropped (unknown metric, invalid
    cluster/host), rejected as older than their series' current block."""

    lines: int = 0
    stored: int = 0
    unknown: int = 0
    invalid: int = 0
    stale: int = 0

    def add(self, other: IngestResult) -> None:
        for k in ("lines", "stored", "unknown", "invalid", "stale"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass(slots=True)
class Target:
    """Where a new series key points: level path and metric (created only when the batch applies)."""

    path: tuple[str, ...]
    metric: str


@dataclass(slots=True)
class Batch:
    """A validated body: per accepted line its series id (or a placeholder), time and value."""

    sids: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    lines: int
    cache: dict[bytes, int]
    pending_keys: list[bytes] = field(default_factory=list)
    pending: list[Target] = field(default_factory=list)


def ts_to_seconds(raw: int) -> int:
    """Seconds of a line-protocol timestamp whose precision is guessed from its size (s, ms, µs, ns)."""
    a = abs(raw)
    if a <= _S_MAX:
        return raw
    if a <= _MS_MAX:
        return raw // 1000
    if a <= _US_MAX:
        return raw // 1_000_000
    return raw // 1_000_000_000


def _ts_array_to_seconds(ts: np.ndarray) -> np.ndarray:
    a = np.abs(ts)
    if (a <= _S_MAX).all():
        return ts
    return np.where(
        a <= _S_MAX,
        ts,
        np.where(a <= _MS_MAX, ts // 1000, np.where(a <= _US_MAX, ts // 1_000_000, ts // 1_000_000_000)),
    )


# --------------------------------------------------------------------------------- low-level scanning


def _scan_unescaped(s: bytes, stop: int, start: int = 0, quotes: bool = False) -> int:
    """Index of the first unescaped ``stop`` byte (outside double quotes if ``quotes``), or len(s).
    Raises ValueError on a backslash at the very end."""
    n = len(s)
    i = start
    in_q = False
    while i < n:
        c = s[i]
        if c == 92:  # backslash
            if i + 1 >= n:
                raise ValueError("bad escape at end of line")
            i += 2
            continue
        if quotes and c == 34:
            in_q = not in_q
        elif c == stop and not in_q:
            return i
        i += 1
    if in_q:
        raise ValueError("unterminated string")
    return n


def _split_unescaped(s: bytes, sep: int, quotes: bool = False) -> list[bytes]:
    out = []
    pos = 0
    while True:
        i = _scan_unescaped(s, sep, pos, quotes)
        out.append(s[pos:i])
        if i >= len(s):
            return out
        pos = i + 1


def _unescape(s: bytes, special: frozenset[int]) -> bytes:
    if 92 not in s:
        return s
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == 92 and i + 1 < n and s[i + 1] in special:
            out.append(s[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def parse_number(raw: bytes) -> float:
    """The numeric value of a field (float, ``<int>i``, ``<uint>u``); ValueError says what is wrong."""
    if not raw:
        raise ValueError("missing field value")
    last = raw[-1]
    if last == 105:  # i
        body = raw[:-1]
        if not _INT_RE.fullmatch(body):
            raise ValueError(f"invalid integer value {raw.decode(errors='replace')!r}")
        v = int(body)
        if not -_MAX_I64 - 1 <= v <= _MAX_I64:
            raise ValueError(f"integer value out of range: {raw.decode()}")
        return float(v)
    if last == 117:  # u
        body = raw[:-1]
        if not _UINT_RE.fullmatch(body):
            raise ValueError(f"invalid unsigned value {raw.decode(errors='replace')!r}")
        v = int(body)
        if v > _MAX_U64:
            raise ValueError(f"unsigned value out of range: {raw.decode()}")
        return float(v)
    if raw[0] == 34:
        raise ValueError("unsupported value type string (field 'value' must be a number)")
    if raw in _BOOLS:
        raise ValueError("unsupported value type bool (field 'value' must be a number)")
    if not _FLOAT_RE.fullmatch(raw):
        raise ValueError(f"invalid number {raw.decode(errors='replace')!r}")
    v = float(raw)
    if v in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {raw.decode()}")
    return v


def parse_timestamp(raw: bytes) -> int:
    """Seconds of a timestamp token; ValueError for non-integers and values beyond int64."""
    if not _INT_RE.fullmatch(raw) or raw[0] == 43:  # no leading '+'
        raise ValueError(f"invalid timestamp {raw.decode(errors='replace')!r}")
    v = int(raw)
    if not -_MAX_I64 - 1 <= v <= _MAX_I64:
        raise ValueError(f"timestamp out of range: {raw.decode()}")
    return ts_to_seconds(v)


def parse_fields(fields: bytes) -> float:
    """The value of the ``value`` field of a field section; other fields are an error (upstream)."""
    value: float | None = None
    for item in _split_unescaped(fields, 44, quotes=True):  # ','
        if not item:
            raise ValueError("empty field")
        eq = _scan_unescaped(item, 61)  # '='
        if eq >= len(item):
            raise ValueError(f"field without value: {item.decode(errors='replace')!r}")
        key = _unescape(item[:eq], _TAG_ESC)
        if key != b"value":
            raise ValueError(f"unknown field {key.decode(errors='replace')!r} (only 'value' is accepted)")
        value = parse_number(item[eq + 1 :])
    if value is None:
        raise ValueError("missing fields")
    return value


def split_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """``(series key, field section, timestamp token)`` of one line (timestamp may be empty)."""
    k = _scan_unescaped(line, 32)
    key = line[:k]
    if not key:
        raise ValueError("missing measurement")
    if k >= len(line):
        raise ValueError("missing fields")
    f = _scan_unescaped(line, 32, k + 1, quotes=True)
    fields = line[k + 1 : f]
    if not fields:
        raise ValueError("missing fields")
    rest = line[f + 1 :].strip(b" ")
    if b" " in rest:
        raise ValueError("unexpected data after the timestamp")
    return key, fields, rest


def parse_key(key: bytes) -> tuple[str, dict[str, str]]:
    """Measurement and tags of a series key, unescaped; ValueError for malformed ones."""
    parts = _split_unescaped(key, 44)  # ','
    meas = _unescape(parts[0], _MEAS_ESC)
    if not meas:
        raise ValueError("missing measurement")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        eq = _scan_unescaped(part, 61)
        if eq >= len(part):
            raise ValueError(f"tag without value: {part.decode(errors='replace')!r}")
        k = _unescape(part[:eq], _TAG_ESC)
        v = _unescape(part[eq + 1 :], _TAG_ESC)
        if not k or not v:
            raise ValueError(f"empty tag key or value: {part.decode(errors='replace')!r}")
        try:
            tags[k.decode()] = v.decode()
        except UnicodeDecodeError:
            raise ValueError("tag is not valid UTF-8") from None
    try:
        return meas.decode(), tags
    except UnicodeDecodeError:
        raise ValueError("measurement is not valid UTF-8") from None


def _bad_component(s: str) -> bool:
    return ".." in s or "/" in s or "\\" in s


# ------------------------------------------------------------------------------------------ decoder


class LineProtocolDecoder:
    """Parses bodies into `Batch`es for one `MetricStore`, caching series keys per default cluster.

    ``parse`` has no side effects (a bad line raises `LineProtocolError` and nothing changes);
    ``apply`` creates the series new keys point to and returns the arrays to write.
    """

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._caches: dict[str | None, dict[bytes, int]] = {}
        self._epoch = store.epoch

    def clear_cache(self) -> None:
        self._caches.clear()

    # ---------------------------------------------------------------------------------- parse

    def parse(self, payload: bytes, default_cluster: str | None = None, now: int | None = None) -> Batch:
        """Validate a whole body. Raises `LineProtocolError` naming the first bad line."""
        if self.store.epoch != self._epoch:  # series were released: ids in the caches may be reused
            self._caches.clear()
            self._epoch = self.store.epoch
        cache = self._caches.get(default_cluster)
        if cache is None or len(cache) > _CACHE_LIMIT:
            cache = self._caches[default_cluster] = {}
        fast = self._fast_split(payload, now)
        if fast is not None:
            keys, values, ts = fast
            linenos = None
        else:
            keys, values, ts, linenos = self._slow_split(payload, now)
        n = len(keys)
        try:
            sids = np.fromiter(map(cache.get, keys), dtype=np.int64, count=n)
            return Batch(sids, ts, values, n, cache)
        except TypeError:
            pass
        # Some keys are new: resolve them (validating the key syntax) without touching the store.
        got = list(map(cache.get, keys))
        pending_index: dict[bytes, int] = {}
        batch = Batch(np.empty(0, np.int64), ts, values, n, cache)
        for i, sid in enumerate(got):
            if sid is not None:
                continue
            key = keys[i]
            code = pending_index.get(key)
            if code is None:
                lineno = linenos[i] if linenos is not None else i + 1
                code = self._resolve(key, default_cluster, lineno, batch)
                pending_index[key] = code
            got[i] = code
        batch.sids = np.array(got, dtype=np.int64)
        return batch

    def _resolve(self, key: bytes, default_cluster: str | None, lineno: int, batch: Batch) -> int:
        try:
            meas, tags = parse_key(key)
        except ValueError as e:
            raise LineProtocolError(lineno, str(e)) from None
        if self.store.metric_index(meas) is None:
            batch.cache[key] = _UNKNOWN  # safe to cache: depends only on the key
            return _UNKNOWN
        cluster = tags.get("cluster") or default_cluster
        if not cluster:
            raise LineProtocolError(lineno, "no 'cluster' tag and no default cluster")
        host = tags.get("hostname", tags.get("host", ""))
        if _bad_component(cluster) or _bad_component(host):
            batch.cache[key] = _INVALID
            return _INVALID
        path = [cluster, host]
        typ = tags.get("type")
        if typ and typ != "node":
            path.append(typ + tags.get("type-id", ""))
            styp = tags.get("stype")
            if styp:
                path.append(styp + tags.get("stype-id", ""))
        if any(len(p.encode()) > 255 for p in path[2:]) or len(meas.encode()) > 65535:
            raise LineProtocolError(lineno, "tag value or metric name too long")
        batch.pending_keys.append(key)
        batch.pending.append(Target(tuple(path), meas))
        return _PENDING_BASE - (len(batch.pending) - 1)

    def _fast_split(
        self, payload: bytes, now: int | None
    ) -> tuple[list[bytes], np.ndarray, np.ndarray] | None:
        data = payload.rstrip(b"\n")
        # Anything that needs the escaping rules, comments or CRs goes to the general parser. (Empty
        # lines need no test: they fail the two-spaces-per-line check below.)
        if not data or b"\\" in data or b'"' in data or b"\r" in data or b"\t" in data or b"#" in data:
            return None
        arr = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        sp = np.flatnonzero(arr == 32)
        n = len(nl) + 1
        # Every line must be `key SP fields [SP ts]` with non-empty parts: the sequence
        # (space, space, newline) per line must increase with gaps of at least 2.
        ntok = 3 if len(sp) == 2 * n else 2 if len(sp) == n else 0
        if not ntok:
            return None
        seq = np.empty((n, ntok), dtype=np.int64)
        seq[:, : ntok - 1] = sp.reshape(n, ntok - 1)
        seq[:-1, ntok - 1] = nl
        seq[-1, ntok - 1] = len(data)
        if (np.diff(seq.reshape(-1), prepend=-1) < 2).any():
            return None
        tokens = data.split()
        if len(tokens) != ntok * n:
            return None
        keys = tokens[0::ntok]
        joined = b",".join(tokens[1::ntok])
        # Each field section must be exactly one `value=<number>`: n occurrences, all at token starts.
        if (
            not joined.startswith(b"value=")
            or joined.count(b"value=") != n
            or joined.count(b",value=") != n - 1
        ):
            values = self._values_slow(tokens[1::ntok])
        else:
            values = None
            joined = joined.replace(b"value=", b"")
            if not joined.translate(None, b"0123456789.-+eE,"):
                try:
                    lst = _FLOAT_LIST.decode(b"[" + joined + b"]")
                    if len(lst) == n:
                        values = np.array(lst, dtype=np.float64)
                        if not np.isfinite(values).all():
                            values = None
                except (msgspec.DecodeError, msgspec.ValidationError):
                    values = None
            if values is None:
                values = self._values_slow(tokens[1::ntok])
        if ntok == 2:
            ts = np.full(n, int(time.time()) if now is None else now, dtype=np.int64)
        else:
            ts = self._ts_tokens(tokens[2::3])
        return keys, values, ts

    @staticmethod
    def _values_slow(vals: list[bytes]) -> np.ndarray:
        out = np.empty(len(vals), dtype=np.float64)
        for i, tok in enumerate(vals):
            try:
                out[i] = parse_fields(tok)
            except ValueError as e:
                raise LineProtocolError(i + 1, str(e)) from None
        return out

    @staticmethod
    def _ts_tokens(tss: list[bytes]) -> np.ndarray:
        n = len(tss)
        first = tss[0]
        if tss.count(first) == n:
            try:
                return np.full(n, parse_timestamp(first), dtype=np.int64)
            except ValueError as e:
                raise LineProtocolError(1, str(e)) from None
        conv: dict[bytes, int] = {}
        for tok in set(tss):
            try:
                conv[tok] = parse_timestamp(tok)
            except ValueError as e:
                raise LineProtocolError(tss.index(tok) + 1, str(e)) from None
        return np.fromiter(map(conv.__getitem__, tss), dtype=np.int64, count=n)

    @staticmethod
    def _slow_split(payload: bytes, now: int | None) -> tuple[list[bytes], np.ndarray, np.ndarray, list[int]]:
        keys: list[bytes] = []
        values: list[float] = []
        stamps: list[int] = []
        linenos: list[int] = []
        default_ts = int(time.time()) if now is None else now
        ts_cache: dict[bytes, int] = {}
        for lineno, raw in enumerate(payload.split(b"\n"), 1):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            line = line.lstrip(b" \t")
            if not line or line[0] == 35:  # '#'
                continue
            try:
                key, fields, tstok = split_line(line)
                value = parse_fields(fields)
                if tstok:
                    t = ts_cache.get(tstok)
                    if t is None:
                        t = ts_cache[tstok] = parse_timestamp(tstok)
                else:
                    t = default_ts
            except ValueError as e:
                raise LineProtocolError(lineno, str(e)) from None
            keys.append(key)
            values.append(value)
            stamps.append(t)
            linenos.append(lineno)
        return (
            keys,
            np.array(values, dtype=np.float64),
            np.array(stamps, dtype=np.int64),
            linenos,
        )

    # ---------------------------------------------------------------------------------- apply

    def apply(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, IngestResult]:
        """Create the series of new keys and return ``(sids, ts, values, counts)`` of the samples to
        store (unknown metrics and invalid names removed and counted)."""
        sids = batch.sids
        if batch.pending:
            created = np.empty(len(batch.pending), dtype=np.int64)
            for j, (key, tgt) in enumerate(zip(batch.pending_keys, batch.pending, strict=True)):
                sid = self.store.series_id(tgt.path, tgt.metric, create=True)
                assert sid is not None
                created[j] = sid
                batch.cache[key] = sid
            pend = sids <= _PENDING_BASE
            sids = sids.copy()
            sids[pend] = created[_PENDING_BASE - sids[pend]]
        res = IngestResult(lines=batch.lines)
        if batch.lines and sids.min() < 0:
            res.unknown = int((sids == _UNKNOWN).sum())
            res.invalid = int((sids == _INVALID).sum())
            keep = sids >= 0
            return sids[keep], batch.ts[keep], batch.values[keep], res
        return sids, batch.ts, batch.values, res

"""Bytes ↔ structs for archive files, with errors that name the file: shared by every backend.

A backend only moves bytes; everything that decides what the bytes mean lives here, so the file and S3
backends (and any third-party one built on `cc_core.archive.backend.ArchiveBase`) read and write exactly
the same files.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import msgspec

from cc_core.archive import validation
from cc_core.archive.errors import ArchiveFormatError, ArchiveVersionError
from cc_core.archive.layout import DATA_FILE, DATA_GZ_FILE, GZIP_THRESHOLD, VERSION
from cc_core.schema.cluster import Cluster, decode_cluster, encode_cluster
from cc_core.schema.job import Job
from cc_core.schema.metrics import JobData, JobStats, decode_job_data, decode_job_stats, encode_job_data

_META_DECODER = msgspec.json.Decoder(Job)
# Go's gzip.NewWriter default; level 9 costs 3× the time for ~2 % smaller files.
GZIP_LEVEL = 6


# ------------------------------------------------------------------------------------------- gzip


def gunzip(buf: bytes, path: str) -> bytes:
    """Decompress a gzip file (all members, as Go's reader does); errors name ``path``."""
    out: list[bytes] = []
    rest = buf
    try:
        while True:
            d = zlib.decompressobj(wbits=31)
            out.append(d.decompress(rest))
            if not d.eof:
                raise ArchiveFormatError(path, "corrupt gzip: file is truncated")
            rest = d.unused_data
            if not rest.lstrip(b"\0"):
                break
    except zlib.error as e:
        raise ArchiveFormatError(path, f"corrupt gzip: {e}") from None
    return out[0] if len(out) == 1 else b"".join(out)


def gzip_bytes(buf: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip with a zero mtime, so equal data gives equal files (copies can be compared byte-wise)."""
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(buf) + c.flush()


# ------------------------------------------------------------------------------------------- meta


def decode_meta(buf: bytes, path: str, *, validate: bool = False) -> Job:
    """``meta.json`` → `Job`. Unknown keys (``stopTime``, ``exclusive`` of old archives) are ignored."""
    if validate:
        _validate("meta", buf, path, "meta.json")
    try:
        return _META_DECODER.decode(buf)
    except msgspec.DecodeError as e:
        raise ArchiveFormatError(path, f"invalid meta.json: {_msg(e, len(buf))}") from None


# Keys upstream always writes (no `omitempty` in Go, or required by job-meta.schema.json).
_META_ALWAYS = ("subCluster", "shared", "monitoringStatus", "jobState", "duration", "statistics")
_META_FIELDS = [(f.name, f.encode_name) for f in msgspec.structs.fields(Job)]


def encode_meta(job: Job) -> bytes:
    """`Job` → ``meta.json`` with every key upstream's JSON schema requires, newline-terminated.

    `Job` omits default values, but upstream always writes ``shared``, ``subCluster``, ``jobState``,
    ``duration``, ``statistics`` and unit ``base``; its validator rejects files without them. Keys come
    in `Job`'s field order, so encoding is deterministic (equal jobs give equal bytes).
    """
    doc: dict[str, Any] = msgspec.to_builtins(job)
    out: dict[str, Any] = {}
    for attr, key in _META_FIELDS:
        if key in doc:
            out[key] = doc[key]
        elif key in _META_ALWAYS:
            value = getattr(job, attr)
            out[key] = {} if value is None else msgspec.to_builtins(value)
    out["monitoringStatus"] = int(job.monitoring_status)  # Go reads an absent key as 0, not 1
    for st in out["statistics"].values():
        st.setdefault("unit", {}).setdefault("base", "")
    for tag in out.get("tags") or ():
        tag.setdefault("scope", "global")
    return msgspec.json.encode(out) + b"\n"


# ------------------------------------------------------------------------------------------- data


def decode_data(buf: bytes, path: str, *, compressed: bool, validate: bool = False) -> JobData:
    """``data.json[.gz]`` → `JobData` (series as float64 arrays)."""
    raw = gunzip(buf, path) if compressed else buf
    if validate:
        _validate("data", raw, path, "data.json")
    try:
        return decode_job_data(raw)
    except msgspec.DecodeError as e:
        raise ArchiveFormatError(path, f"invalid data.json: {_msg(e, len(raw))}") from None


def decode_stats(buf: bytes, path: str, *, compressed: bool, validate: bool = False) -> JobStats:
    """Per-series statistics of ``data.json[.gz]`` without materialising the data arrays."""
    raw = gunzip(buf, path) if compressed else buf
    if validate:
        _validate("data", raw, path, "data.json")
    try:
        return decode_job_stats(raw)
    except msgspec.DecodeError as e:
        raise ArchiveFormatError(path, f"invalid data.json: {_msg(e, len(raw))}") from None


def encode_data(data: JobData) -> tuple[str, bytes]:
    """`JobData` → ``(file name, bytes)``: ``data.json.gz`` above `GZIP_THRESHOLD` bytes, else ``data.json``."""
    raw = encode_job_data(data)
    return compress_data(raw)


def compress_data(raw: bytes, level: int = GZIP_LEVEL) -> tuple[str, bytes]:
    """Upstream's rule for serialised data: gzip when larger than 2000 bytes."""
    if len(raw) > GZIP_THRESHOLD:
        return DATA_GZ_FILE, gzip_bytes(raw, level)
    return DATA_FILE, raw


# ------------------------------------------------------------------------------------------- cluster


def decode_cluster_file(buf: bytes, path: str, *, validate: bool = False) -> Cluster:
    """``cluster.json`` → `Cluster` (raw, as stored; call `Cluster.derive` before use)."""
    if validate:
        _validate("cluster", buf, path, "cluster.json")
    try:
        return decode_cluster(buf)
    except msgspec.DecodeError as e:
        raise ArchiveFormatError(path, f"invalid cluster.json: {_msg(e, len(buf))}") from None


def encode_cluster_file(cluster: Cluster) -> bytes:
    return encode_cluster(cluster)


# ------------------------------------------------------------------------------------------- version


MIGRATE_HINT = "run `clustercockpit archive migrate` to upgrade it to version 3"


def parse_version(buf: bytes, path: str) -> int:
    """The archive version in ``version.txt``; version 2 and anything but 3 are errors saying what to do."""
    text = buf.decode("utf-8", "replace").strip()
    try:
        version = int(text)
    except ValueError:
        raise ArchiveVersionError(path, f"cannot read the archive version: {text[:40]!r}") from None
    if version == 2:
        raise ArchiveVersionError(path, f"this is a version-2 job archive; {MIGRATE_HINT}")
    if version != VERSION:
        raise ArchiveVersionError(path, f"unsupported archive version {version}, need {VERSION}")
    return version


def version_bytes() -> bytes:
    return f"{VERSION}\n".encode()


# ------------------------------------------------------------------------------------------- helpers


_BYTE_POS = re.compile(r"\(byte (\d+)\)$")


def _msg(e: Exception, size: int | None = None) -> str:
    """msgspec's message, saying "truncated" also when the cut fell inside a number or a string."""
    text = str(e)
    if "Input data was truncated" in text:
        return "truncated JSON (input ends too early)"
    m = _BYTE_POS.search(text)
    if size is not None and m and int(m.group(1)) >= size - 32 and "malformed" in text:
        return f"truncated JSON (input ends too early: {text})"
    return text


def _validate(kind: validation.Kind, raw: bytes, path: str, what: str) -> None:
    try:
        problems = validation.validate(kind, raw)
    except msgspec.DecodeError as e:
        raise ArchiveFormatError(path, f"invalid {what}: {_msg(e, len(raw))}") from None
    if problems:
        raise ArchiveFormatError(path, f"{what} does not match the JSON schema: " + "; ".join(problems))

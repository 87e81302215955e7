"""Archive version 2 → 3 (upstream ``tools/archive-migration``, contract §13).

Only ``meta.json`` changes: ``exclusive`` 0/1/2 becomes ``shared`` multi_user/none/single_user,
``submitTime`` (= ``startTime``), ``energy`` (0) and ``requestedMemory`` (0) are added when missing, and the
legacy per-job averages (``mem_used_max``, ``flops_any_avg``, …) are dropped. ``version.txt`` becomes 3 only
when every job migrated; the transformations are idempotent, so a failed run can simply be repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cc_core.archive.backend import ArchiveBase
from cc_core.archive.errors import ArchiveError, ArchiveVersionError
from cc_core.archive.layout import META_FILE, VERSION_FILE
from cc_core.schema.job import Job

EXCLUSIVE_TO_SHARED = {0: "multi_user", 1: "none", 2: "single_user"}
DEPRECATED_FIELDS = (
    "mem_used_max",
    "flops_any_avg",
    "mem_bw_avg",
    "load_avg",
    "net_bw_avg",
    "net_data_vol_total",
    "file_bw_avg",
    "file_data_vol_total",
)


def migrate_meta(doc: dict[str, Any]) -> list[str]:
    """Rewrite a version-2 ``meta.json`` document in place; returns what changed. Raises `ValueError`."""
    changes: list[str] = []
    if "exclusive" in doc:
        value = doc.pop("exclusive")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"`exclusive` has an unexpected value: {value!r}")
        if int(value) not in EXCLUSIVE_TO_SHARED:
            raise ValueError(f"invalid `exclusive` value: {int(value)} (expected 0, 1 or 2)")
        doc["shared"] = EXCLUSIVE_TO_SHARED[int(value)]
        changes.append(f"exclusive={int(value)} → shared={doc['shared']}")
    if "submitTime" not in doc and "startTime" in doc:
        doc["submitTime"] = doc["startTime"]
        changes.append("submitTime added")
    if "energy" not in doc:
        doc["energy"] = 0.0
        changes.append("energy added")
    if "requestedMemory" not in doc:
        doc["requestedMemory"] = 0
        changes.append("requestedMemory added")
    if "shared" not in doc:
        doc["shared"] = "none"
        changes.append("shared added")
    for name in DEPRECATED_FIELDS:
        if name in doc:
            del doc[name]
            changes.append(f"{name} removed")
    return changes


@dataclass
class MigrationResult:
    migrated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    version_updated: bool = False

    @property
    def processed(self) -> int:
        return self.migrated + self.unchanged + self.failed


async def archive_version(backend: ArchiveBase) -> int | None:
    """The number in ``version.txt`` without judging it (None if missing)."""
    buf = await backend._read(VERSION_FILE)
    if buf is None:
        return None
    try:
        return int(buf.decode("utf-8", "replace").strip())
    except ValueError:
        raise ArchiveVersionError(
            backend._display(VERSION_FILE), f"cannot read the version: {buf[:40]!r}"
        ) from None


async def migrate_archive(
    backend: ArchiveBase,
    *,
    dry_run: bool = False,
    workers: int = 4,
    progress: Callable[[MigrationResult], None] | None = None,
) -> MigrationResult:
    """Migrate every job of a version-2 archive; ``progress`` is called after each job."""
    version = await archive_version(backend)
    where = backend._display(VERSION_FILE)
    if version == 3:
        raise ArchiveVersionError(where, "the archive is already version 3; nothing to migrate")
    if version != 2:
        raise ArchiveVersionError(where, f"archive version is {version}, migration needs version 2")

    result = MigrationResult()
    sem = asyncio.Semaphore(max(1, workers))

    async def one(dir: str) -> None:
        key = f"{dir}/{META_FILE}"
        path = backend._display(key)
        async with sem:
            try:
                buf = await backend._read(key)
                if buf is None:
                    return  # not a job
                try:
                    doc = msgspec.json.decode(buf)
                except msgspec.DecodeError as e:
                    raise ValueError(f"invalid JSON: {e}") from None
                if not isinstance(doc, dict):
                    raise ValueError("meta.json is not a JSON object")
                changes = migrate_meta(doc)
                try:
                    msgspec.convert(doc, Job)
                except msgspec.ValidationError as e:
                    raise ValueError(f"still not a valid version-3 meta.json: {e}") from None
                if changes and not dry_run:
                    await backend._write(key, msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n")
                if changes:
                    result.migrated += 1
                else:
                    result.unchanged += 1
            except (ValueError, ArchiveError) as e:
                result.failed += 1
                result.errors.append(str(e) if isinstance(e, ArchiveError) else f"{path}: {e}")
        if progress:
            progress(result)

    pending: set[asyncio.Task[None]] = set()
    async for loc in backend.job_locations():
        pending.add(asyncio.ensure_future(one(loc.dir)))
        if len(pending) >= 4 * max(1, workers):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.gather(*pending)

    if not dry_run and result.failed == 0:
        await backend._write(VERSION_FILE, b"3\n")
        result.version_updated = True
    return result


async def count_jobs(backend: ArchiveBase) -> int:
    return sum((await backend.cluster_sizes()).values())

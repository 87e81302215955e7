"""The version-3 archive layout (contract §3.1), shared by every backend so object keys never drift.

```
version.txt                                   "3\n"
compress.txt                                  last compression cut-off (epoch seconds)
<cluster>/cluster.json
<cluster>/<jobId/1000>/<jobId%1000:03d>/<startTime>/meta.json
                                              .../data.json  or  data.json.gz
```

Keys are ``/``-separated and relative to the archive root (a directory or a bucket).
"""

from __future__ import annotations

from typing import Protocol

VERSION = 3
VERSION_FILE = "version.txt"
COMPRESS_FILE = "compress.txt"
CLUSTER_FILE = "cluster.json"
META_FILE = "meta.json"
DATA_FILE = "data.json"
DATA_GZ_FILE = "data.json.gz"
# data.json is gzipped when its serialised size exceeds this many bytes (upstream `ImportJob`).
GZIP_THRESHOLD = 2000


class JobKey(Protocol):
    """What addresses a job in the archive: any object with these attributes (e.g. `schema.Job`)."""

    cluster: str
    job_id: int
    start_time: int


def _go_divmod(job_id: int) -> tuple[int, int]:
    # Go's / and % truncate toward zero; Python's floor. Identical for the (non-negative) ids seen in
    # practice, and still identical to upstream for any other.
    q, r = divmod(abs(job_id), 1000)
    return (-q, -r) if job_id < 0 else (q, r)


def job_dir(cluster: str, job_id: int, start_time: int) -> str:
    """``emmy/1403/244/1608923076`` for job 1403244 of emmy started at 1608923076."""
    lvl1, lvl2 = _go_divmod(job_id)
    return f"{cluster}/{lvl1}/{lvl2:03d}/{start_time}"


def job_dir_of(job: JobKey) -> str:
    return job_dir(job.cluster, job.job_id, job.start_time)


def job_file(job: JobKey, name: str) -> str:
    return f"{job_dir_of(job)}/{name}"


def cluster_file(cluster: str) -> str:
    return f"{cluster}/{CLUSTER_FILE}"


def parse_job_dir(key: str) -> tuple[str, int, int] | None:
    """``(cluster, jobId, startTime)`` from a job directory key, or None if it is not one."""
    parts = key.strip("/").split("/")
    if len(parts) != 4:
        return None
    cluster, lvl1, lvl2, start = parts
    try:
        a, b, s = int(lvl1), int(lvl2), int(start)
    except ValueError:
        return None
    if len(lvl2.lstrip("-")) != 3:
        return None
    return cluster, a * 1000 + b if a >= 0 else a * 1000 - abs(b), s


def is_hidden(name: str) -> bool:
    """Entries starting with a dot (temporary job directories, editor files) are never jobs/clusters."""
    return name.startswith(".")

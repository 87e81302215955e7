"""``demo generate`` of N jobs (series, archive, users, init-db) against writing the same files plainly.

* ours: `cc_core.demo.generate.generate_site` — N jobs drawn by the job generator, archetype time series
  (numpy), ``data.json.gz`` + ``meta.json`` per job, users, init-db into SQLite. Target: 100,000 jobs in
  under a minute on the 2-core machine, i.e. ≥ 1,667 jobs/s.
* limit: the files of the generated archive (read into memory first) written again into a fresh
  directory with ``os.makedirs`` + ``open``/``write`` — the bytes any generator must put on disk, with
  no data made and no database filled.

Size: ``CC_BENCH_DEMO_JOBS`` (default 20,000 for ``make bench``; 100,000 for the issue's figure).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._report import Result, report


def _cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process and its finished workers."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def _plain_write(files: list[tuple[str, bytes]], root: Path) -> float:
    t0 = time.perf_counter()
    made: set[str] = set()
    base = str(root)
    for rel, data in files:
        path = os.path.join(base, rel)
        d = os.path.dirname(path)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        with open(path, "wb") as f:
            f.write(data)
    return time.perf_counter() - t0


def main() -> bool:
    from cc_core.demo.generate import generate_site

    n = int(os.environ.get("CC_BENCH_DEMO_JOBS", "20000"))
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-demo-"))
    try:
        cpu0 = _cpu_seconds()
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        rep = generate_site(tmp / "site", jobs=n)
        ours = time.perf_counter() - t0
        user1, sys1 = _cpu_seconds()
        user, system = user1 - cpu0[0], sys1 - cpu0[1]
        cpu = user + system
        load = max(load0, os.getloadavg()[0])
        assert rep is not None and rep.imported == n
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items())
        print(f"  {n:,} jobs in {ours:.1f} s ({phases}); {rep.archive_bytes / n / 1e3:.1f} kB series/job raw")
        # The machine is shared: CPU seconds (this process and its workers) do not depend on the load.
        print(
            f"  CPU time {cpu:.1f} s (self + workers; user {user:.1f} s, system {system:.1f} s)"
            f" = {n / cpu:,.0f} jobs per CPU-second; load avg {load:.1f}"
        )
        archive = tmp / "site" / "var" / "job-archive"
        files: list[tuple[str, bytes]] = []
        for dirpath, _dirs, names in os.walk(archive):
            for name in names:
                p = os.path.join(dirpath, name)
                with open(p, "rb") as f:
                    files.append((os.path.relpath(p, archive), f.read()))
        size = sum(len(b) for _, b in files)
        limit = _plain_write(files, tmp / "plain")
        print(f"  archive: {len(files):,} files, {size / 1e6:.0f} MB on disk")
        results = [
            Result(
                f"demo generate, {n:,} jobs (series + archive + init-db)",
                n / ours,
                n / limit,
                unit="/s",
                target="≥ 1,667/s (100k < 60 s)",
                limit_name="plain makedirs + write of the same files",
                ok=n / ours >= 100_000 / 60,
            )
        ]
        report("demo generate", results)
        return all(r.ok is not False for r in results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

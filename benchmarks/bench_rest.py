"""REST job lifecycle over real HTTP: ``start_job`` + ``stop_job`` pairs with JWT auth on SQLite.

The server is ``clustercockpit serve`` (uvicorn) in a subprocess on a fresh site; the load comes from
32 concurrent clients (``benchmarks._loadgen``: raw keep-alive HTTP/1.1 on asyncio + uvloop, like ``wrk``)
in this process, each with its own connection, doing back-to-back requests. Phases, each under the same load:

* *trivial*: ``GET /healthz`` (a JSON dict, no auth, no database) — the limit: what the HTTP stack
  itself (uvicorn + Litestar + the app's middleware) costs per request on this machine;
* *start_job*: only ``POST /api/jobs/start_job/`` (token check, strict decode, sanity checks, insert);
* *pairs*: ``start_job`` then ``stop_job`` of the same job, for 20 s, with ``monitoringStatus: 0`` so that the
  server does only the REST work (no archiving afterwards);
* *pairs + archiving*: the same with the default ``monitoringStatus`` 1, so each stop also queues the job
  for the archiver (metric data from the embedded store, ``meta.json`` + ``data.json`` written) — what a
  site does all day, shown for information.

Client and server share the machine. Besides the client-side rates and latencies, the server's own CPU
time per request (``/proc/<pid>/stat``, all threads) gives its *capacity*: requests per server-CPU second,
independent of how much CPU the client takes.

Afterwards the database is checked: every job the server answered 201 for exists exactly once, with its
id, and every job of a completed pair is stopped — zero lost, zero duplicated.

Targets (issue 5): start_job ≥ 40 % of the trivial endpoint's request rate; p99 ≤ 50 ms.
Run: ``python -m benchmarks rest`` (``BENCH_REST_SECONDS`` shortens the pair phase).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._loadgen import Connection, install_uvloop
from benchmarks._report import Result, report

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT / "tests" / "fixtures" / "job-archive"
CLIENTS = 32
PAIR_SECONDS = float(os.environ.get("BENCH_REST_SECONDS", "20"))
PHASE_SECONDS = min(10.0, PAIR_SECONDS)
RESULTS_MD = Path(__file__).parent / "RESULTS.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    root: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_site(root: Path) -> Site:
    from cc_core.cli.keys import generate_keypair

    shutil.copytree(ARCHIVE, root / "archive")
    config = {
        "main": {"addr": "127.0.0.1:0", "db": str(root / "job.db")},
        "auth": {"jwts": {"max-age": "1h"}},
        "archive": {"kind": "file", "path": str(root / "archive")},
        "metric-store": {"retention-in-memory": "1h", "memory-cap": 0},
    }
    (root / "config.json").write_text(json.dumps(config))
    pub, priv = generate_keypair()
    env = {
        "JWT_PUBLIC_KEY": pub,
        "JWT_PRIVATE_KEY": priv,
        "SESSION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    return Site(root, env, _free_port())


def start_server(site: Site) -> None:
    env = {**os.environ, **site.env}
    cmd = [sys.executable, "-m", "cc_core", "--config", str(site.root / "config.json"), "--loglevel", "warn"]
    cmd += ["serve", "--addr", f"127.0.0.1:{site.port}"]
    log = open(site.root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    site.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if site.proc.poll() is not None:
            raise RuntimeError(f"server exited: {(site.root / 'server.log').read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(site.url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def stop_server(site: Site) -> None:
    if site.proc is not None and site.proc.poll() is None:
        site.proc.terminate()
        try:
            site.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            site.proc.kill()
            site.proc.wait()


def _job(job_id: int, start: int, monitoring: int) -> dict[str, Any]:
    return {
        "monitoringStatus": monitoring,
        "jobId": job_id,
        "user": f"u{job_id % 50}",
        "project": f"p{job_id % 7}",
        "cluster": "fritz",
        "subCluster": "main",
        "partition": "main",
        "numNodes": 1,
        "numHwthreads": 72,
        "resources": [{"hostname": "f0726"}],
        "startTime": start,
        "walltime": 86400,
        "metaData": {"jobName": f"job{job_id}", "jobScript": "#!/bin/bash\nsrun ./app\n"},
    }


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    started: list[tuple[int, int, int]] = field(default_factory=list)  # (db id, jobId, startTime)
    stopped: list[int] = field(default_factory=list)  # db ids
    pairs: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of server CPU during the phase

    def add(self, what: str, dt: float) -> None:
        self.latencies.setdefault(what, []).append(dt)

    def rate(self, what: str) -> float:
        return len(self.latencies.get(what, [])) / self.seconds if self.seconds else 0.0

    def capacity(self, what: str) -> float:
        """Requests of ``what`` per second of server CPU (all of the phase's CPU counted against them)."""
        n = len(self.latencies.get(what, []))
        return n / self.server_cpu if self.server_cpu else 0.0

    def pct(self, what: str, q: float) -> float:
        values = self.latencies.get(what)
        return float(np.percentile(values, q)) if values else float("nan")


_next_id = iter(range(1_000_000, 10**12))


async def _client_loop(site: Site, token: str, phase: Phase, kind: str, until: float) -> None:
    conn = Connection("127.0.0.1", site.port)
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    healthz = conn.build("GET", "/healthz")
    try:
        await conn.open()
        while time.perf_counter() < until:
            if kind == "trivial":
                t0 = time.perf_counter()
                r = await conn.send(healthz)
                phase.add("healthz", time.perf_counter() - t0)
                if r.status != 200:
                    phase.errors.append(f"healthz {r.status}")
                continue
            job_id = next(_next_id)
            start = 1_700_000_000 + job_id % 1_000_000
            body = json.dumps(_job(job_id, start, 1 if kind == "archiving" else 0)).encode()
            request = conn.build("POST", "/api/jobs/start_job/", body, headers)
            t0 = time.perf_counter()
            r = await conn.send(request)
            phase.add("start_job", time.perf_counter() - t0)
            if r.status != 201:
                phase.errors.append(f"start_job {r.status} {r.body[:200]!r}")
                continue
            db_id = int(json.loads(r.body)["id"])
            phase.started.append((db_id, job_id, start))
            if kind not in ("pairs", "archiving"):
                continue
            stop = json.dumps(
                {"jobId": job_id, "cluster": "fritz", "startTime": start, "stopTime": start + 600}
            ).encode()
            request = conn.build("POST", "/api/jobs/stop_job/", stop, headers)
            t0 = time.perf_counter()
            r = await conn.send(request)
            dt = time.perf_counter() - t0
            phase.add("stop_job", dt)
            if r.status != 200 or json.loads(r.body).get("id") != db_id:
                phase.errors.append(f"stop_job {r.status} {r.body[:200]!r}")
                continue
            phase.add("pair", phase.latencies["start_job"][-1] + dt)
            phase.stopped.append(db_id)
            phase.pairs += 1
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_phase(site: Site, token: str, kind: str, seconds: float) -> Phase:
    phase = Phase(kind)
    assert site.proc is not None
    cpu0 = _cpu_seconds(site.proc.pid)
    t0 = time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(*(_client_loop(site, token, phase, kind, until) for _ in range(CLIENTS)))
    phase.seconds = time.perf_counter() - t0
    phase.server_cpu = _cpu_seconds(site.proc.pid) - cpu0
    return phase


def check_database(db: Path, phases: list[Phase]) -> tuple[int, int, int]:
    """(answered, lost, duplicated) over every job the server answered 201 for."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = {r[0]: r[1:] for r in conn.execute("SELECT id, job_id, start_time, job_state FROM job")}
        dup = conn.execute(
            "SELECT count(*) FROM (SELECT job_id, cluster, start_time FROM job GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ).fetchone()[0]
    finally:
        conn.close()
    answered = lost = 0
    stopped = {i for p in phases for i in p.stopped}
    for p in phases:
        for db_id, job_id, start in p.started:
            answered += 1
            row = rows.get(db_id)
            missing = row is None or row[0] != job_id or row[1] != start
            if missing or (db_id in stopped and row[2] != "completed"):
                lost += 1
    dup += len(rows) - answered  # rows nobody was told about would be duplicates, too
    return answered, lost, dup


def main() -> bool:
    from cc_core.auth.jwt_tokens import load_private_key, mint

    tmp = Path(tempfile.mkdtemp(prefix="bench-rest-"))
    site = make_site(tmp)
    ok = True
    try:
        start_server(site)
        token = mint(load_private_key(site.env["JWT_PRIVATE_KEY"]), "bench", ["api"], max_age_seconds=3600)
        install_uvloop()
        asyncio.run(run_phase(site, token, "trivial", 2.0))  # warm-up
        trivial = asyncio.run(run_phase(site, token, "trivial", PHASE_SECONDS))
        starts = asyncio.run(run_phase(site, token, "start", PHASE_SECONDS))
        pairs = asyncio.run(run_phase(site, token, "pairs", PAIR_SECONDS))
        archiving = asyncio.run(run_phase(site, token, "archiving", PHASE_SECONDS))
        stop_server(site)
        answered, lost, dup = check_database(site.root / "job.db", [starts, pairs, archiving])
        errors = starts.errors + pairs.errors + trivial.errors + archiving.errors
        h_rate, h_cap = trivial.rate("healthz"), trivial.capacity("healthz")
        s_rate, s_cap = starts.rate("start_job"), starts.capacity("start_job")
        pair_req = pairs.rate("start_job") + pairs.rate("stop_job")
        pair_cap = (
            len(pairs.latencies.get("start_job", [])) + len(pairs.latencies.get("stop_job", []))
        ) / max(pairs.server_cpu, 1e-9)
        p99 = max(pairs.pct("start_job", 99), pairs.pct("stop_job", 99))
        results = [
            Result("GET /healthz (trivial), client-side rate", h_rate, None, unit="/s"),
            Result(
                "start_job alone, client-side rate",
                s_rate,
                h_rate,
                unit="/s",
                target="≥ 40 %",
                limit_name="healthz",
                ok=s_rate >= 0.4 * h_rate,
            ),
            Result(
                "start_job, server capacity (req per server-CPU s)",
                s_cap,
                h_cap,
                unit="/s",
                target="≥ 40 %",
                limit_name="healthz",
                ok=s_cap >= 0.4 * h_cap,
            ),
            Result(
                "start+stop requests (pairs), client-side rate",
                pair_req,
                h_rate,
                unit="/s",
                target="≥ 40 %",
                limit_name="healthz",
                ok=pair_req >= 0.4 * h_rate,
            ),
            Result("start+stop, server capacity", pair_cap, h_cap, unit="/s", limit_name="healthz"),
            Result("pairs", pairs.pairs / pairs.seconds, None, unit="/s"),
            Result("start_job p50 (pairs)", pairs.pct("start_job", 50), None),
            Result(
                "start_job p99 (pairs)",
                pairs.pct("start_job", 99),
                None,
                target="≤ 50 ms",
                ok=pairs.pct("start_job", 99) <= 0.05,
            ),
            Result("stop_job p50 (pairs)", pairs.pct("stop_job", 50), None),
            Result(
                "stop_job p99 (pairs)",
                pairs.pct("stop_job", 99),
                None,
                target="≤ 50 ms",
                ok=pairs.pct("stop_job", 99) <= 0.05,
            ),
            Result(
                "healthz p50 / p99", trivial.pct("healthz", 50), trivial.pct("healthz", 99), limit_name="p99"
            ),
            Result("pairs with archiving", archiving.pairs / archiving.seconds, None, unit="/s"),
        ]
        report("REST start_stop", results)
        print(
            f"jobs answered 201: {answered}, lost: {lost}, duplicated: {dup}, request errors: {len(errors)}"
        )
        for e in errors[:10]:
            print("  ", e)
        ok = p99 <= 0.05 and s_rate >= 0.4 * h_rate and lost == 0 and dup == 0 and not errors
        _append_results(trivial, starts, pairs, archiving, answered, lost, dup, len(errors))
    finally:
        stop_server(site)
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def _ms(x: float) -> str:
    return f"{x * 1e3:.1f} ms"


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def _append_results(
    trivial: Phase,
    starts: Phase,
    pairs: Phase,
    archiving: Phase,
    answered: int,
    lost: int,
    dup: int,
    errors: int,
) -> None:
    h, hc = trivial.rate("healthz"), trivial.capacity("healthz")
    s, sc = starts.rate("start_job"), starts.capacity("start_job")
    pr = pairs.rate("start_job") + pairs.rate("stop_job")
    n_pair = len(pairs.latencies.get("start_job", [])) + len(pairs.latencies.get("stop_job", []))
    pc = n_pair / pairs.server_cpu if pairs.server_cpu else 0.0
    p99s, p99t = pairs.pct("start_job", 99), pairs.pct("stop_job", 99)
    lines = [
        "",
        f"## REST job lifecycle over HTTP (`benchmarks/bench_rest.py`, {time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, CPython {platform.python_version()}. Server:",
        "`clustercockpit serve` (uvicorn with httptools and uvloop, one process, gzip on) in a subprocess on a",
        f"fresh SQLite site (load average {os.getloadavg()[0]:.1f} before the run); load:",
        f"{CLIENTS} concurrent clients (`benchmarks/_loadgen.py`: raw keep-alive HTTP/1.1 on uvloop, one connection",
        "each, back to back) in the benchmark process, every API request with an Ed25519 JWT. Client and server",
        "share the cores; *server",
        "capacity* = requests per second of server CPU time (all threads), which does not depend on the client.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| `GET /healthz` (trivial JSON, {trivial.seconds:.0f} s) | {h:,.0f} req/s; capacity {hc:,.0f}/server-CPU-s; "
        f"p50 {_ms(trivial.pct('healthz', 50))}, p99 {_ms(trivial.pct('healthz', 99))} | |",
        f"| `start_job` alone ({starts.seconds:.0f} s) | {s:,.0f} req/s = **{s / h:.0%}** of trivial; capacity "
        f"{sc:,.0f}/s = **{sc / hc:.0%}** of trivial | ≥ 40 % {_mark(s >= 0.4 * h)} |",
        f"| start+stop pairs, archiving off ({pairs.seconds:.0f} s) | {pairs.pairs / pairs.seconds:,.0f} pairs/s = "
        f"{pr:,.0f} req/s = {pr / h:.0%} of trivial; capacity {pc:,.0f} req/s = {pc / hc:.0%} | |",
        f"| `start_job` latency (pairs) | p50 {_ms(pairs.pct('start_job', 50))}, p99 {_ms(p99s)} | p99 ≤ 50 ms {_mark(p99s <= 0.05)} |",
        f"| `stop_job` latency (pairs) | p50 {_ms(pairs.pct('stop_job', 50))}, p99 {_ms(p99t)} | p99 ≤ 50 ms {_mark(p99t <= 0.05)} |",
        f"| pairs with archiving on ({archiving.seconds:.0f} s) | {archiving.pairs / archiving.seconds:,.0f} pairs/s; "
        f"stop_job p99 {_ms(archiving.pct('stop_job', 99))} | |",
        f"| jobs answered 201 / lost / duplicated / failed requests | {answered:,} / {lost} / {dup} / {errors} | "
        f"0 / 0 {_mark(not lost and not dup and not errors)} |",
        "",
    ]
    _replace_section(RESULTS_MD, "## REST job lifecycle over HTTP", "\n".join(lines).strip("\n") + "\n")


def _replace_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` in place of the section starting with ``heading`` (or append it): one section per
    benchmark, the latest run."""
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        body = "\n".join(lines).rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "\n".join(lines[end:])
        body = "\n".join(lines[:start]) + "\n" + text + ("\n" + tail if tail else "")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)

"""Synthetic jobs with a realistic spread, for benchmarks, tests and demos.

Three clusters of different shape, ~2000 users with a heavy-tailed activity (a few users submit most
jobs), ~300 projects, log-normal durations capped by the walltime, 1–256 nodes (most jobs small),
states that depend on whether the job could still be running, tags on ~10 % of the jobs (some in
private or admin scope) and footprints with the keys real clusters have. Deterministic for a seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cc_core.schema.job import Job, Resource, Tag


@dataclass(frozen=True, slots=True)
class ClusterShape:
    name: str
    subclusters: tuple[str, ...]
    hwthreads: int
    gpus: int
    nodes: int
    weight: float
    prefix: str
    # Optional per-subcluster node counts and hardware threads (same order as ``subclusters``): hosts
    # are then numbered consecutively subcluster after subcluster, and a job's hosts, hardware threads
    # and subcluster agree (the demo site needs that; the flat default keeps the benchmarks' spread).
    sub_nodes: tuple[int, ...] = ()
    sub_hwthreads: tuple[int, ...] = ()

    def subcluster_layout(self, k: int) -> tuple[int, int, int]:
        """``(first host index, node count, hwthreads per node)`` of subcluster ``k``."""
        if not self.sub_nodes:
            return 0, self.nodes, self.hwthreads
        return sum(self.sub_nodes[:k]), self.sub_nodes[k], self.sub_hwthreads[k]


CLUSTERS: tuple[ClusterShape, ...] = (
    ClusterShape("fritz", ("main", "spr1tb"), 72, 0, 992, 0.5, "f"),
    ClusterShape("alex", ("a40", "a100"), 128, 8, 82, 0.2, "a"),
    ClusterShape("woody", ("main",), 36, 0, 288, 0.3, "w"),
)
STATES_FINISHED = ("completed", "failed", "cancelled", "timeout", "out_of_memory", "node_fail")
STATE_WEIGHTS = (0.80, 0.08, 0.07, 0.03, 0.015, 0.005)
NODE_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NODE_WEIGHTS = (0.62, 0.12, 0.09, 0.07, 0.05, 0.03, 0.015, 0.004, 0.001)
WALLTIMES = (3600, 4 * 3600, 12 * 3600, 24 * 3600)
JOB_NAMES = ("interactive", "train", "md_run", "cfd_sim", "relax", "bench", "postproc", "array_task")
TAG_POOL: tuple[tuple[str, str, str], ...] = (
    ("app", "vasp", "global"),
    ("app", "gromacs", "global"),
    ("app", "openfoam", "global"),
    ("app", "pytorch", "global"),
    ("app", "lammps", "global"),
    ("jobClass", "lowutilization", "global"),
    ("jobClass", "memorybound", "global"),
    ("review", "suspicious", "admin"),
    ("review", "ok", "admin"),
    ("note", "paper", "<user>"),
    ("note", "rerun", "<user>"),
)


def generate_jobs(
    n: int,
    *,
    seed: int = 0,
    now: int | None = None,
    span_days: int = 365,
    users: int = 2000,
    projects: int = 300,
    tag_fraction: float = 0.10,
    first_job_id: int = 1_000_000,
    with_hwthreads: bool = True,
    clusters: tuple[ClusterShape, ...] = CLUSTERS,
) -> list[Job]:
    """``n`` jobs that started within the last ``span_days`` before ``now``; running if not yet done."""
    rng = np.random.default_rng(seed)
    now = int(time.time()) if now is None else int(now)
    span = span_days * 86400
    weights = np.array([c.weight for c in clusters])
    cluster_idx = rng.choice(len(clusters), size=n, p=weights / weights.sum())
    # Heavy-tailed user activity; each user mostly works in one project.
    user_rank = np.minimum(rng.zipf(1.3, size=n) - 1, users - 1)
    user_perm = rng.permutation(users)
    user_ids = user_perm[user_rank]
    user_project = rng.integers(0, projects, size=users)
    other_project = rng.integers(0, projects, size=n)
    project_ids = np.where(rng.random(n) < 0.9, user_project[user_ids], other_project)
    start = now - rng.integers(60, span, size=n)
    wait = rng.integers(0, 6 * 3600, size=n)
    walltime = rng.choice(np.array(WALLTIMES), size=n)
    duration = np.minimum(rng.lognormal(mean=np.log(1800), sigma=1.6, size=n).astype(np.int64) + 1, walltime)
    nodes = rng.choice(np.array(NODE_CHOICES), size=n, p=np.array(NODE_WEIGHTS) / sum(NODE_WEIGHTS))
    states = rng.choice(len(STATES_FINISHED), size=n, p=np.array(STATE_WEIGHTS) / sum(STATE_WEIGHTS))
    running = start + duration > now
    arrays = rng.random(n) < 0.1
    names = rng.integers(0, len(JOB_NAMES), size=n)
    shared_draw = rng.random(n)
    tagged = rng.random(n) < tag_fraction
    tag_pick = rng.integers(0, len(TAG_POOL), size=(n, 2))
    two_tags = rng.random(n) < 0.3
    flops = rng.gamma(2.0, 150.0, size=n)
    membw = rng.gamma(2.0, 40.0, size=n)
    memused = rng.gamma(3.0, 20.0, size=n)
    load = rng.random(n) * 72
    accutil = rng.random(n) * 100
    power = rng.gamma(4.0, 60.0, size=n)
    node_offset = rng.integers(0, 10_000, size=n)
    subcluster_pick = rng.integers(0, 2, size=n)

    jobs: list[Job] = []
    for i in range(n):
        c = clusters[int(cluster_idx[i])]
        k_sub = int(subcluster_pick[i]) % len(c.subclusters)
        sub = c.subclusters[k_sub]
        first, n_sub, hw_node = c.subcluster_layout(k_sub)
        nn = int(min(nodes[i], n_sub))
        shared = "none"
        hw = hw_node * nn
        acc = c.gpus * nn
        if nn == 1 and shared_draw[i] < 0.4:
            shared = "single_user" if shared_draw[i] < 0.1 else "multi_user"
            hw = max(1, hw_node // (1 + int(shared_draw[i] * 10)))
            acc = min(c.gpus, 1 + int(shared_draw[i] * 4)) if c.gpus else 0
        base = int(node_offset[i]) % n_sub
        resources: list[Resource] = []
        for k in range(nn):
            host = f"{c.prefix}{first + (base + k) % n_sub:04d}"
            if nn == 1 and with_hwthreads:
                resources.append(
                    Resource(
                        hostname=host,
                        hwthreads=list(range(hw)),
                        accelerators=[f"0000:{g:02x}:00.0" for g in range(acc)] if acc else None,
                    )
                )
            else:
                resources.append(Resource(hostname=host))
        is_running = bool(running[i])
        dur = int(duration[i])
        fp = {
            "flops_any_avg": round(float(flops[i]), 3),
            "mem_bw_avg": round(float(membw[i]), 3),
            "mem_used_max": round(float(memused[i]), 3),
            "cpu_load_avg": round(float(load[i]), 3),
        }
        if c.gpus:
            fp["acc_utilization_avg"] = round(float(accutil[i]), 3)
        energy = round(float(power[i]) * nn * dur / 3600 / 1000, 2)
        tags: list[Tag] | None = None
        user = f"u{int(user_ids[i]):04d}"
        if tagged[i]:
            picks = [int(tag_pick[i, 0])] + ([int(tag_pick[i, 1])] if two_tags[i] else [])
            tags = []
            for p in dict.fromkeys(picks):
                t, nm, sc = TAG_POOL[p]
                tags.append(Tag(type=t, name=nm, scope=user if sc == "<user>" else sc))
        jobs.append(
            Job(
                job_id=first_job_id + i,
                user=user,
                project=f"p{int(project_ids[i]):03d}",
                cluster=c.name,
                sub_cluster=sub,
                partition=sub,
                start_time=int(start[i]),
                submit_time=int(start[i] - wait[i]),
                num_nodes=nn,
                num_hwthreads=hw,
                num_acc=acc,
                shared=shared,
                smt=1,
                walltime=int(walltime[i]),
                job_state="running" if is_running else STATES_FINISHED[int(states[i])],
                duration=0 if is_running else dur,
                monitoring_status=1 if is_running else 3,
                array_job_id=(first_job_id + i - (i % 7)) if arrays[i] else 0,
                resources=resources,
                meta_data={"jobName": JOB_NAMES[int(names[i])]},
                footprint=None if is_running else fp,
                energy=0.0 if is_running else energy,
                energy_footprint=None if is_running else {"cpu_power": energy},
                tags=tags,
            )
        )
    return jobs

"""Job archetypes and their metric time series.

Each finished demo job follows one archetype — compute-bound, memory-bound, idle/low-load, high memory,
oversubscribed, GPU-heavy, failing early, long multi-node — that sets the level of every metric as a
fraction of the subcluster's node peak and the shape of its time series. The levels are chosen against
upstream's job-class rules (``configs/tagger/jobclasses``) and the site's thresholds, so the job-class
tagger finds real patterns: memory-bound jobs run above 80 % of peak memory bandwidth, idle jobs below
the flops and bandwidth alert levels and 85 % of the cores' load, and so on. Job scripts carry
the command lines of real applications so the app tagger's patterns (``configs/tagger/apps``) match.

Series are generated with numpy, one matrix per metric (nodes × samples, or cores/GPUs × samples), and
the statistics in ``data.json`` (per series) and in ``meta.json`` (per metric, over the node series)
are computed from the values actually written (rounded to two decimals), so rooflines, footprints and
histograms agree with the plots. Long jobs are sampled more coarsely (``Detail.max_samples``), which
keeps a data file small and 100,000 jobs quick to generate; core-scope series are written for
single-node jobs (``Detail.core_metrics``; for benchmark-sized archives only for a share of them,
``Detail.core_fraction``), accelerator series for GPU jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import numpy as np

from cc_core.demo.site import TIMESTEP, DemoCluster, SubShape, limits, metric_specs
from cc_core.schema.job import Job, JobStatistics
from cc_core.schema.units import Unit

# Fraction of the node peak per metric; missing metrics use DEFAULT_LEVELS.
DEFAULT_LEVELS: dict[str, float] = {
    "cpu_load": 0.97,
    "cpu_user": 0.95,
    "mem_used": 0.35,
    "flops_any": 0.35,
    "mem_bw": 0.4,
    "ipc": 0.5,
    "clock": 0.85,
    "cpu_power": 0.8,
    "ib_recv": 0.02,
    "ib_xmit": 0.02,
    "nfs4_read": 0.01,
    "nfs4_write": 0.01,
    "acc_utilization": 0.0,
    "acc_mem_used": 0.0,
    "acc_power": 0.15,
}


@dataclass(frozen=True, slots=True)
class Archetype:
    name: str
    levels: dict[str, float]
    apps: tuple[str, ...]
    noise: float = 0.05


ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "compute",
            {"flops_any": 0.45, "mem_bw": 0.35, "ipc": 0.65, "cpu_power": 0.85},
            ("gromacs", "vasp", "lammps", "cp2k", "starccm"),
        ),
        Archetype(
            "memory",
            {"flops_any": 0.07, "mem_bw": 0.9, "ipc": 0.2, "mem_used": 0.55, "cpu_power": 0.7},
            ("openfoam", "cp2k", "julia"),
        ),
        Archetype(
            "idle",
            {
                "cpu_load": 0.08,
                "cpu_user": 0.06,
                "flops_any": 0.002,
                "mem_bw": 0.01,
                "ipc": 0.15,
                "mem_used": 0.05,
                "cpu_power": 0.25,
                "clock": 0.5,
            },
            ("python", "matlab", "orca"),
            noise=0.2,
        ),
        Archetype(
            "highmem",
            {"mem_used": 0.975, "flops_any": 0.12, "mem_bw": 0.5, "cpu_load": 0.9, "cpu_user": 0.85},
            ("turbomole", "orca", "matlab"),
        ),
        Archetype(
            "oversubscribed",
            {"cpu_load": 1.4, "cpu_user": 0.99, "flops_any": 0.1, "ipc": 0.3},
            ("python", "julia"),
        ),
        Archetype(
            "gpu",
            {
                "cpu_load": 0.08,
                "cpu_user": 0.07,
                "flops_any": 0.01,
                "mem_bw": 0.04,
                "acc_utilization": 0.9,
                "acc_mem_used": 0.7,
                "acc_power": 0.8,
                "cpu_power": 0.35,
                "nfs4_read": 0.2,
            },
            ("python", "gromacs"),
        ),
        Archetype("failing", {"flops_any": 0.2}, ("vasp", "python", "openfoam", "lammps"), noise=0.3),
        Archetype(
            "longmulti",
            {"flops_any": 0.5, "mem_bw": 0.45, "ib_recv": 0.3, "ib_xmit": 0.3, "nfs4_write": 0.1},
            ("gromacs", "openfoam", "lammps", "starccm", "vasp"),
        ),
    )
}

# Command lines that the app tagger knows (lower-cased patterns from configs/tagger/apps).
APP_COMMANDS: dict[str, str] = {
    "gromacs": "module load gromacs/2023.3\nsrun gmx_mpi mdrun -deffnm md -maxh 23.5\n",
    "vasp": "module load vasp/6.4.2\nsrun vasp_std > vasp.log\n",
    "lammps": "module load lammps/2aug2023\nsrun lmp -in in.lj -var steps 50000\n",
    "cp2k": "module load cp2k/2024.1\nsrun cp2k.psmp -i h2o.inp -o h2o.out\n",
    "starccm": "module load starccm/18.02\nstarccm+ -batch run.java -np $SLURM_NTASKS -podkey $KEY sim.sim\n",
    "openfoam": "module load openfoam/v2306\nsrun simpleFoam -parallel > log.simpleFoam\n",
    "julia": "module load julia/1.10\nsrun julia --threads=auto solver.jl\n",
    "python": "module load python/3.12-conda\nconda activate torch\nsrun python train.py --epochs 90\n",
    "matlab": "module load matlab/r2024a\nmatlab -nodisplay -r \"run('analysis.m'); exit\"\n",
    "orca": "module load orca/5.0.4\n$(which orca) input.inp > output.out\n",
    "turbomole": "module load turbomole/7.8\nridft > ridft.out\nrdgrad > rdgrad.out\n",
}

# Node totals a shared job gets only its share of.
_SHARE_SCALED = frozenset(("cpu_load", "mem_used", "flops_any", "mem_bw", "cpu_power"))
# Metrics also written at core scope for single-node jobs (their native scope is hwthread).
CORE_METRICS = ("flops_any", "cpu_user", "ipc")


@dataclass(frozen=True, slots=True)
class Detail:
    """How much data each job gets: samples per series at most, metrics with core-scope series and the
    share of single-node jobs that get them."""

    max_samples: int = 120
    core_metrics: tuple[str, ...] = CORE_METRICS
    core_fraction: float = 1.0
    #: Share of jobs whose data.json has every metric (and core/accelerator scopes); the others (the
    #: "bulk") get node series of `bulk_metrics` only, with at most `bulk_samples` samples. Their
    #: meta.json statistics still cover every metric, so footprints, rooflines and histograms are whole.
    full_fraction: float = 1.0
    bulk_metrics: tuple[str, ...] = ("cpu_load", "flops_any", "mem_bw", "mem_used", "acc_utilization")
    bulk_samples: int = 12

    @classmethod
    def for_jobs(cls, n: int) -> Detail:
        """Full detail for a demo-sized archive; leaner series for benchmark-sized ones: a random fifth
        of the jobs keeps every metric and scope (a realistic sample), the rest carry five metrics."""
        if n <= 20_000:
            return cls()
        return cls(max_samples=24, core_metrics=("flops_any",), core_fraction=0.5, full_fraction=0.2)


def job_script(job: Job, app: str, gpus: int) -> str:
    """A Slurm batch script running ``app`` (directives are comments, which the app tagger ignores)."""
    lines = [
        "#!/bin/bash -l",
        f"#SBATCH --job-name={(job.meta_data or {}).get('jobName', 'job')}",
        f"#SBATCH --nodes={job.num_nodes}",
        f"#SBATCH --time={job.walltime // 3600:02d}:00:00",
    ]
    if gpus:
        lines.append(f"#SBATCH --gres=gpu:a100:{gpus}")
    lines += ["#SBATCH --export=NONE", "unset SLURM_EXPORT_ENV", f"cd $WORK/{job.project}"]
    return "\n".join(lines) + "\n" + APP_COMMANDS[app]


def pick_archetype(rng: np.random.Generator, job: Job, gpu_cluster: bool) -> str:
    """An archetype that fits the job's size (long multi-node only for ≥ 4 nodes, GPU on GPU nodes)."""
    r = rng.random()
    if gpu_cluster:
        return "gpu" if r < 0.7 else "idle" if r < 0.85 else "failing"
    if job.num_nodes >= 4 and r < 0.6:
        return "longmulti"
    for name, p in (
        ("compute", 0.42),
        ("memory", 0.2),
        ("idle", 0.15),
        ("highmem", 0.06),
        ("oversubscribed", 0.04),
    ):
        if r < p:
            return name
        r -= p
    return "failing"


_ramps: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _ramp(t: int) -> tuple[np.ndarray, np.ndarray]:
    """``(0…1 over t samples, memory growth curve)``, cached: jobs share few distinct lengths."""
    r = _ramps.get(t)
    if r is None:
        x = np.linspace(0.0, 1.0, t)
        r = _ramps[t] = (x, np.minimum(1.0, 0.4 + 0.9 * x))
    return r


def _profile(kind: str, t: int, rng: np.random.Generator) -> np.ndarray:
    """The time shape (1 = the archetype's level) shared by a job's metrics."""
    x = _ramp(t)[0]
    prof = np.ones(t)
    if t > 2:
        prof[0] = 0.3  # start-up
    if kind == "longmulti" and t > 12:
        # Checkpoints: every sixth of the run the computation pauses for I/O.
        period = max(2, t // 6)
        prof[period - 1 :: period] = 0.35
    elif kind == "failing" and t > 3:
        prof[int(t * 0.6) :] = 0.05
    elif kind == "idle":
        prof = np.where(rng.random(t) < 0.08, 6.0, prof)  # occasional bursts
    return prof + 0.02 * np.sin(x * 6.28 * rng.integers(1, 4))


class _Plan:
    """Per (cluster, subcluster): the metric table as arrays, so one job's series are a few numpy calls
    over all metrics at once instead of a dozen per metric."""

    def __init__(self, cluster: DemoCluster, sub: SubShape) -> None:
        specs = metric_specs(cluster)
        lim = limits(cluster, sub)
        self.names = [sp[0] for sp in specs]
        self.units = [
            {"base": sp[1][0], "prefix": sp[1][1]} if sp[1][1] else {"base": sp[1][0]} for sp in specs
        ]
        self.stat_units = [Unit(sp[1][0], sp[1][1]) for sp in specs]
        self.avg = np.array([sp[3] == "avg" for sp in specs])
        self.peaks = np.array([lim[n][0] for n in self.names])
        self.share_scaled = np.array([n in _SHARE_SCALED for n in self.names])
        self.cap = np.array([100.0 if n in ("cpu_user", "acc_utilization") else np.inf for n in self.names])
        self.mem_row = self.names.index("mem_used")
        self.acc_rows = [i for i, sp in enumerate(specs) if sp[2] == "accelerator"]
        self.levels = {
            a.name: np.array([a.levels.get(n, DEFAULT_LEVELS[n]) for n in self.names]) * self.peaks
            for a in ARCHETYPES.values()
        }
        self.accs = sub.accelerator_ids()

    def core_rows(self, metrics: tuple[str, ...]) -> list[int]:
        return [self.names.index(m) for m in metrics if m in self.names]


_plans: dict[tuple[str, str], _Plan] = {}


def _plan(cluster: DemoCluster, sub: SubShape) -> _Plan:
    key = (cluster.name, sub.name)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _Plan(cluster, sub)
    return plan


def _series(hosts: list[str], ids: list[str] | None, m: np.ndarray) -> list[dict[str, object]]:
    """JSON-ready series of the rows of ``m`` (already rounded), with their statistics."""
    mins = m.min(axis=-1).round(2).tolist()
    avgs = m.mean(axis=-1).round(2).tolist()
    maxs = m.max(axis=-1).round(2).tolist()
    data = m.tolist()
    if ids is None:
        return [
            {"hostname": h, "statistics": {"min": mins[i], "avg": avgs[i], "max": maxs[i]}, "data": data[i]}
            for i, h in enumerate(hosts)
        ]
    return [
        {
            "hostname": h,
            "id": ids[i],
            "statistics": {"min": mins[i], "avg": avgs[i], "max": maxs[i]},
            "data": data[i],
        }
        for i, h in enumerate(hosts)
    ]


_encoder = msgspec.json.Encoder()


def job_data(
    job: Job,
    cluster: DemoCluster,
    sub: SubShape,
    archetype: str,
    rng: np.random.Generator,
    detail: Detail,
) -> tuple[dict[str, JobStatistics], bytes]:
    """``(meta statistics, data.json bytes)`` of a finished job following ``archetype``."""
    plan = _plan(cluster, sub)
    arch = ARCHETYPES[archetype]
    full = detail.full_fraction >= 1.0 or rng.random() < detail.full_fraction
    samples = detail.max_samples if full else detail.bulk_samples
    steps = max(1, math.ceil(job.duration / TIMESTEP / samples))
    step = TIMESTEP * steps
    t = max(1, job.duration // step)
    nn = job.num_nodes
    hosts = [r.hostname for r in job.resources]
    nm = len(plan.names)
    # Share of the node a (shared) job has: its hwthreads relative to the node's.
    share = min(1.0, job.num_hwthreads / (sub.hwthreads * nn)) if job.num_hwthreads else 1.0
    levels = plan.levels[archetype] * np.where(plan.share_scaled, share, 1.0)
    shape = np.broadcast_to(_profile(archetype, t, rng), (nm, t)).copy()
    shape[plan.mem_row] = _ramp(t)[1]  # memory grows, then plateaus
    node_fac = 1.0 + (0.15 if archetype == "idle" else 0.03) * rng.standard_normal(nn)
    noise = 1.0 + arch.noise * rng.standard_normal((nm, nn, t))
    node = levels[:, None, None] * node_fac[None, :, None] * shape[:, None, :] * noise
    node = np.minimum(np.maximum(node, 0.0), plan.cap[:, None, None])
    extra: dict[int, tuple[str, list[dict[str, object]]]] = {}
    accs = plan.accs[: max(0, job.num_acc // nn)]
    if accs and plan.acc_rows and full:
        rows = plan.acc_rows
        na = len(accs)
        per = node[rows][:, :, None, :] * (1.0 + 0.05 * rng.standard_normal((len(rows), nn, na, t)))
        per = np.minimum(per, plan.cap[rows][:, None, None, None]).round(2)
        node[rows] = np.where(plan.avg[rows][:, None, None], per.mean(axis=2), per.sum(axis=2))
        acc_hosts = [h for h in hosts for _ in accs]
        for k, r in enumerate(rows):
            extra[r] = ("accelerator", _series(acc_hosts, accs * nn, per[k].reshape(nn * na, t)))
    with_cores = full and nn == 1 and (detail.core_fraction >= 1.0 or rng.random() < detail.core_fraction)
    cores = list(job.resources[0].hwthreads or ()) if with_cores else []
    rows = plan.core_rows(detail.core_metrics) if cores else []
    if rows:
        nc = len(cores)
        per = node[rows, 0][:, None, :] * (1.0 + 0.08 * rng.standard_normal((len(rows), nc, t)))
        per = np.where(plan.avg[rows][:, None, None], per, per / nc)
        per = np.minimum(per, plan.cap[rows][:, None, None]).round(2)
        node[rows, 0] = np.where(plan.avg[rows][:, None], per.mean(axis=1), per.sum(axis=1))
        ids = [str(c) for c in cores]
        for k, r in enumerate(rows):
            extra[r] = ("core", _series(hosts * nc, ids, per[k]))
    node = node.round(2)
    mins = node.min(axis=2)
    avgs = node.mean(axis=2)
    maxs = node.max(axis=2)
    m_min = mins.min(axis=1).round(2).tolist()
    m_avg = avgs.mean(axis=1).round(2).tolist()
    m_max = maxs.max(axis=1).round(2).tolist()
    mins_l, avgs_l, maxs_l = mins.round(2).tolist(), avgs.round(2).tolist(), maxs.round(2).tolist()
    values = node.tolist()
    data: dict[str, dict[str, object]] = {}
    stats: dict[str, JobStatistics] = {}
    written = None if full else set(plan.core_rows(detail.bulk_metrics))
    for m, name in enumerate(plan.names):
        stats[name] = JobStatistics(unit=plan.stat_units[m], avg=m_avg[m], min=m_min[m], max=m_max[m])
        if written is not None and m not in written:
            continue
        unit = plan.units[m]
        series = [
            {
                "hostname": h,
                "statistics": {"min": mins_l[m][i], "avg": avgs_l[m][i], "max": maxs_l[m][i]},
                "data": values[m][i],
            }
            for i, h in enumerate(hosts)
        ]
        scopes: dict[str, object] = {"node": {"unit": unit, "timestep": step, "series": series}}
        if m in extra:
            scope, ser = extra[m]
            scopes[scope] = {"unit": unit, "timestep": step, "series": ser}
        data[name] = scopes
    return stats, _encoder.encode(data) + b"\n"

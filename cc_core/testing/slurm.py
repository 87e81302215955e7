"""Slurm: a real single-node cluster from Debian's packages (munge, slurmctld, slurmd, slurm-client).

Everything lives in a temp directory: a fresh munge key and munged on its own socket, a ``slurm.conf``
with free ``SlurmctldPort``/``SlurmdPort``, state and spool directories, and one node ``cc-node1``
(2 sockets × 2 cores × 2 threads, declared with ``SlurmdParameters=config_overrides`` so it does not
depend on this machine's CPUs). The minimal plugins (``proctrack/linuxproc``, ``task/none``, no cgroups,
no accounting) run in a container without systemd. Clients find the cluster through ``SLURM_CONF``
(`SlurmCluster.env`). The daemons run as root — slurmd must switch to the job's user — so the fixture
needs root; a plain user gets a skip (a failure under CI).

`SlurmCluster.stop_controller` / `start_controller` take slurmctld away and bring it back with its saved
state, for tests of an unreachable scheduler.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._process import SERVICE_PREFIX, ServiceProcess, free_port, in_ci, require_binary, tail

SERVICE = "slurm"
APT = "munge slurmctld slurmd slurm-client"
CLUSTER = "cctest"
NODE = "cc-node1"
PARTITION = "debug"

_SUBMITTED = re.compile(rb"Submitted batch job (\d+)")


@dataclass
class SlurmCluster:
    """A running single-node Slurm cluster; run its client commands with `command` (env set)."""

    root: Path
    conf: Path
    cluster: str
    node: str
    partition: str
    bin_dir: Path
    _ctld: ServiceProcess
    _slurmd: ServiceProcess
    _munged: ServiceProcess

    @property
    def env(self) -> dict[str, str]:
        """The process environment with ``SLURM_CONF`` pointing at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def command(
        self, *args: str, check: bool = True, timeout: float = 20
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a Slurm client command (``sbatch``, ``scancel``, ...) against this cluster."""
        argv = [str(self.bin_dir / args[0]), *args[1:]]
        result = subprocess.run(argv, capture_output=True, env=self.env, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}")
        return result

    def sbatch(self, wrap: str, *extra: str) -> int:
        """Submit ``wrap`` as a batch job (``sbatch --wrap``); returns the job id."""
        out = self.command("sbatch", "--output=/dev/null", *extra, "--wrap", wrap).stdout
        m = _SUBMITTED.search(out)
        if m is None:
            raise RuntimeError(f"sbatch said: {out!r}")
        return int(m.group(1))

    def scancel(self, job_id: int) -> None:
        self.command("scancel", str(job_id))

    def job_ids(self) -> list[int]:
        """Ids of the jobs slurmctld knows that are not finished."""
        out = self.command("squeue", "-h", "-o", "%i").stdout.decode()
        return [int(x) for x in out.split()]

    def node_state(self) -> str:
        return self.command("sinfo", "-h", "-n", self.node, "-o", "%T").stdout.decode().strip()

    def cancel_all(self) -> None:
        """Cancel every unfinished job (tests clean up after themselves; teardown does it too)."""
        ids = self.job_ids()
        if ids:
            self.command("scancel", *map(str, ids), check=False)

    def stop_controller(self) -> None:
        """Stop slurmctld (its state is saved; slurmd and running jobs go on)."""
        self._ctld.stop(timeout=15)

    def start_controller(self) -> None:
        """Start slurmctld again with its saved state and wait until it answers."""
        self._ctld.start()
        self._ctld.wait_ready(lambda: self.command("sinfo", "-h", check=False, timeout=5).returncode == 0, 30)


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "slurmd must run as root to start jobs; run the Slurm tests as root"
    if in_ci():
        pytest.fail(f"{SERVICE}: {reason} (CI requires it)", pytrace=False)
    pytest.skip(f"{SERVICE_PREFIX} {reason}")


def _slurm_conf(root: Path, munge_socket: Path, ctld_port: int, slurmd_port: int) -> str:
    lines = [
        f"ClusterName={CLUSTER}",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/builtin",
        "SchedulerParameters=sched_interval=1",
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        # Finished jobs stay visible to squeue for this long (the plugin's window to see their end).
        "MinJobAge=300",
        "KillWait=1",
        "InactiveLimit=0",
        f"NodeName={NODE} NodeHostname=localhost NodeAddr=127.0.0.1 Sockets=2 CoresPerSocket=2 "
        "ThreadsPerCore=2 RealMemory=1000 State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def start_slurm(root: Path) -> SlurmCluster:
    """Write the configuration below ``root`` and start munged, slurmctld and slurmd; wait until the
    node is idle. Call `stop_slurm` afterwards."""
    _require_root()
    munged = require_binary(SERVICE, "munged", APT)
    slurmctld = require_binary(SERVICE, "slurmctld", APT)
    slurmd = require_binary(SERVICE, "slurmd", APT)
    sbatch = require_binary(SERVICE, "sbatch", APT)
    bin_dir = Path(sbatch).parent
    for d in ("munge", "state", "spool"):
        (root / d).mkdir(parents=True, exist_ok=True)
    munge_dir = root / "munge"
    munge_dir.chmod(0o755)  # clients of any user reach the socket
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket = munge_dir / "munge.socket"
    munge_proc = ServiceProcess(
        "munged",
        [
            munged,
            "--foreground",
            "--force",
            f"--socket={socket}",
            f"--key-file={key}",
            f"--pid-file={munge_dir / 'munged.pid'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
            f"--log-file={munge_dir / 'munged.log'}",
        ],
        root / "munged.out",
    ).start()
    munge_proc.wait_ready(socket.exists, timeout=15)

    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, socket, free_port(), free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    ctld = ServiceProcess("slurmctld", [slurmctld, "-D", "-i", "-f", conf], root / "slurmctld.out", env=env)
    slurmd_proc = ServiceProcess(
        "slurmd", [slurmd, "-D", "-N", NODE, "-f", conf], root / "slurmd.out", env=env
    )
    cluster = SlurmCluster(root, conf, CLUSTER, NODE, PARTITION, bin_dir, ctld, slurmd_proc, munge_proc)
    try:
        ctld.start()
        ctld.wait_ready(lambda: cluster.command("sinfo", "-h", check=False, timeout=5).returncode == 0, 30)
        # Later starts of slurmctld must recover the saved state, not clear it (-i ignores errors only).
        ctld.argv = [slurmctld, "-D", "-f", str(conf)]
        slurmd_proc.start()
        slurmd_proc.wait_ready(lambda: cluster.node_state() == "idle", 30)
    except BaseException:
        stop_slurm(cluster)
        raise
    return cluster


def stop_slurm(cluster: SlurmCluster) -> None:
    """Cancel what still runs, then stop slurmd, slurmctld and munged (in that order)."""
    try:
        if cluster._ctld.proc is not None:
            cluster.cancel_all()
            deadline = time.monotonic() + 5
            while cluster.job_ids() and time.monotonic() < deadline:
                time.sleep(0.2)
    except Exception as e:  # a controller that is already gone has nothing to cancel
        with (cluster.root / "teardown.log").open("a") as log:
            log.write(f"cancelling jobs at teardown: {e}\n")
    cluster._slurmd.stop(timeout=10)
    cluster._ctld.stop(timeout=10)
    cluster._munged.stop()


def logs(cluster: SlurmCluster, lines: int = 30) -> str:
    """The end of slurmctld's and slurmd's logs, for failure messages."""
    return "\n".join(
        f"--- {name} ---\n{tail(cluster.root / name, lines)}" for name in ("slurmctld.log", "slurmd.log")
    )


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A single-node Slurm cluster (``cctest``, node ``cc-node1``, partition ``debug``) for the session."""
    _require_root()
    # Slurm refuses paths longer than ~100 characters in places (sockets); keep the directory short.
    root = Path(tmp_path_factory.mktemp("slurm"))
    cluster = start_slurm(root)
    try:
        yield cluster
    finally:
        stop_slurm(cluster)


def wait_until_jobs_gone(cluster: SlurmCluster, ids: Sequence[int], timeout: float = 20) -> None:
    """Wait until none of ``ids`` is pending or running any more."""
    deadline = time.monotonic() + timeout
    while set(ids) & set(cluster.job_ids()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs {sorted(set(ids) & set(cluster.job_ids()))} still in the queue")
        time.sleep(0.2)

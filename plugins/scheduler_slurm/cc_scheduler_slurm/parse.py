"""Slurm's JSON output (``squeue --json``, ``sinfo --json``, ``sacct --json``) read into small records.

Slurm changes its JSON between releases: 22.05 (openapi v0.0.38, Debian bookworm) writes plain numbers,
a ``job_state`` string and ``job_resources.allocated_nodes`` with ``{socket: {cores: {core: state}}}``
maps; 23.02 and later write numbers as ``{"set", "infinite", "number"}`` objects, states as lists, and
``job_resources.nodes.allocation`` with lists of sockets and cores. The readers accept both, and a
missing field is a default, never a crash: one odd job must not stop the others from being reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Slurm's final job states and ours. NODE_FAIL has no separate state in the UI's filters: failed.
STOP_STATES: dict[str, str] = {
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMEOUT": "timeout",
    "OUT_OF_MEMORY": "out_of_memory",
    "NODE_FAIL": "failed",
    "PREEMPTED": "preempted",
    "BOOT_FAIL": "boot_fail",
    "DEADLINE": "deadline",
    "SPECIAL_EXIT": "failed",
    "REVOKED": "cancelled",
}
# States of a job that holds its nodes (COMPLETING hides the final state in 22.05's strings).
ACTIVE_STATES = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT"})


def number(value: Any, default: int = 0) -> int:
    """An integer from a plain number or Slurm's ``{"set", "infinite", "number"}`` object."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite", False):
            return default
        return number(value.get("number"), default)
    return default


def text(value: Any) -> str:
    """A string from a plain string or a list of strings (newer Slurm's flag lists): the first one."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def parse_tres(value: str) -> dict[str, str]:
    """``"cpu=4,mem=1000M,node=1,gres/gpu=2"`` → ``{"cpu": "4", ...}``."""
    out: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.partition("=")
        if sep:
            out[key.strip()] = val.strip()
    return out


def index_list(value: str) -> list[int]:
    """``"0-2,5"`` → ``[0, 1, 2, 5]`` (malformed parts are skipped)."""
    out: list[int] = []
    for part in value.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            if sep:
                out.extend(range(int(lo), int(hi) + 1))
            elif lo:
                out.append(int(lo))
        except ValueError:
            continue
    return out


_GRES_GPU = re.compile(r"^gpu(?::[^:(]*)?:(\d+)(?:\(IDX:([^)]*)\))?")


def _split_outside_parens(value: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_gpus(gres: str) -> tuple[int, list[int]]:
    """GPU count and indices in a GRES string like ``"gpu:a100:2(IDX:0-1),shard:0"``."""
    count, indices = 0, []
    for part in _split_outside_parens(gres):
        m = _GRES_GPU.match(part)
        if m:
            count += int(m.group(1))
            if m.group(2):
                indices.extend(index_list(m.group(2)))
    return count, indices


@dataclass(slots=True)
class NodeAllocation:
    """One node of a job: its name and the (socket, core) pairs Slurm allocated there."""

    hostname: str
    cores: list[tuple[int, int]] = field(default_factory=list)
    gpus: list[int] = field(default_factory=list)


@dataclass(slots=True)
class SlurmJob:
    """A Slurm job: what every sync needs is read at once, the rest from ``raw`` when asked for.

    A sync reads every job slurmctld holds, but maps only the few it starts to our job, so the per-node
    allocation, TRES counts and names are properties of the raw JSON object.
    """

    job_id: int
    state: str
    start_time: int = 0
    end_time: int = 0
    has_nodes: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    _nodes: list[NodeAllocation] | None = field(default=None, repr=False)

    @property
    def nodes(self) -> list[NodeAllocation]:
        if self._nodes is None:
            self._nodes = _allocations(self.raw)
        return self._nodes

    @property
    def stop_state(self) -> str | None:
        """Our final state when Slurm says the job is over, else None."""
        return STOP_STATES.get(self.state)

    @property
    def started(self) -> bool:
        """Whether the job ran on nodes (running now or finished after running)."""
        return (
            self.start_time > 0
            and self.has_nodes
            and (self.state in ACTIVE_STATES or self.state in STOP_STATES)
        )

    @property
    def user(self) -> str:
        return text(self.raw.get("user_name"))

    @property
    def account(self) -> str:
        return text(self.raw.get("account"))

    @property
    def partition(self) -> str:
        return text(self.raw.get("partition"))

    @property
    def name(self) -> str:
        return text(self.raw.get("name"))

    @property
    def array_job_id(self) -> int:
        return number(self.raw.get("array_job_id"))

    @property
    def submit_time(self) -> int:
        return number(self.raw.get("submit_time"))

    @property
    def time_limit_minutes(self) -> int:
        """0 when unlimited."""
        return number(self.raw.get("time_limit"))

    @property
    def node_count(self) -> int:
        return number(self.raw.get("node_count")) or len(self.nodes)

    @property
    def _tres(self) -> dict[str, str]:
        return parse_tres(text(self.raw.get("tres_alloc_str")) or text(self.raw.get("tres_req_str")))

    @property
    def cpus(self) -> int:
        cpu = self._tres.get("cpu", "")
        return int(cpu) if cpu.isdigit() else number(self.raw.get("cpus"))

    @property
    def gpus(self) -> int:
        gpu = self._tres.get("gres/gpu", "")
        return int(gpu) if gpu.isdigit() else sum(len(n.gpus) for n in self.nodes)

    @property
    def shared(self) -> str:
        return _shared(self.raw)


def _allocations(job: Mapping[str, Any]) -> list[NodeAllocation]:
    res = job.get("job_resources") or {}
    out: list[NodeAllocation] = []
    if isinstance(res.get("allocated_nodes"), list):  # 22.05
        for node in res["allocated_nodes"]:
            alloc = NodeAllocation(str(node.get("nodename", "")))
            for sock, info in (node.get("sockets") or {}).items():
                for core, status in ((info or {}).get("cores") or {}).items():
                    if str(status).lower().startswith("alloc"):
                        alloc.cores.append((int(sock), int(core)))
            out.append(alloc)
    elif isinstance(res.get("nodes"), Mapping):  # 23.02 and later
        for node in res["nodes"].get("allocation") or []:
            alloc = NodeAllocation(str(node.get("name") or node.get("hostname") or ""))
            for sock in node.get("sockets") or []:
                for core in sock.get("cores") or []:
                    if any(s.upper().startswith("ALLOC") for s in strings(core.get("status"))):
                        alloc.cores.append((number(sock.get("index")), number(core.get("index"))))
            out.append(alloc)
    out = [a for a in out if a.hostname]
    if not out:
        hostlist = text(job.get("nodes"))
        if hostlist and hostlist != "None assigned":
            out = [NodeAllocation(h) for h in expand_hostlist(hostlist)]
    for alloc, gres in zip(out, job.get("gres_detail") or [], strict=False):
        if isinstance(gres, str):
            alloc.gpus = parse_gpus(gres)[1]
    for alloc in out:
        alloc.cores.sort()
    return out


def expand_hostlist(value: str) -> list[str]:
    """Slurm host list → names (``"n[01-03],login"``); a list it cannot read is kept as one name."""
    from cc_core.schema.cluster import NodeList

    try:
        return NodeList.parse(value).expand()
    except Exception:
        return [value]


def _shared(job: Mapping[str, Any]) -> str:
    exclusive = job.get("exclusive")
    if exclusive is True or text(exclusive).lower() in ("true", "exclusive"):
        return "none"
    shared = text(job.get("shared")).lower()
    if shared in ("none", "exclusive"):
        return "none"
    if shared == "user":
        return "single_user"
    return "multi_user"


def parse_job(job: Mapping[str, Any]) -> SlurmJob:
    """One entry of ``squeue --json``'s ``jobs``."""
    hostlist = text(job.get("nodes"))
    res = job.get("job_resources")
    has_nodes = bool(hostlist and hostlist != "None assigned") or bool(
        isinstance(res, Mapping) and (res.get("allocated_nodes") or res.get("nodes"))
    )
    states = [x.upper() for x in strings(job.get("job_state"))]
    if "CONFIGURING" in states:  # nodes still booting: Slurm sets the real start time when they are up
        states = ["CONFIGURING"]
    return SlurmJob(
        job_id=number(job.get("job_id")),
        state=states[0] if states else "",
        start_time=number(job.get("start_time")),
        end_time=number(job.get("end_time")),
        has_nodes=has_nodes,
        raw=job,
    )


def parse_squeue(doc: Mapping[str, Any]) -> list[SlurmJob]:
    return [parse_job(j) for j in doc.get("jobs") or [] if isinstance(j, Mapping)]


@dataclass(slots=True)
class SlurmNode:
    """One node of ``sinfo --json``: states as Slurm words (``idle``, ``allocated``, ``DRAIN``...)."""

    name: str
    states: list[str]
    cpus_allocated: int = 0
    memory_allocated: int = 0
    gpus_allocated: int = 0
    sockets: int = 0
    cores: int = 0
    threads: int = 0


def parse_sinfo(doc: Mapping[str, Any]) -> list[SlurmNode]:
    """Nodes from ``sinfo --json`` (22.05: a ``nodes`` list) or 23.02+ (a ``sinfo`` list of node
    groups, whose CPU counts are summed over the group's nodes)."""
    out: dict[str, SlurmNode] = {}
    for node in doc.get("nodes") or []:
        name = text(node.get("name"))
        if not name:
            continue
        states = [*strings(node.get("state")), *strings(node.get("state_flags"))]
        out[name] = SlurmNode(
            name,
            states,
            cpus_allocated=number(node.get("alloc_cpus")),
            memory_allocated=number(node.get("alloc_memory")),
            gpus_allocated=parse_gpus(text(node.get("gres_used")))[0],
            sockets=number(node.get("sockets")),
            cores=number(node.get("cores")),
            threads=number(node.get("threads")),
        )
    for group in doc.get("sinfo") or []:
        names = strings((group.get("nodes") or {}).get("nodes"))
        if not names:
            continue
        states = strings((group.get("node") or {}).get("state"))
        cpus = number((group.get("cpus") or {}).get("allocated")) // len(names)
        mem = number((group.get("memory") or {}).get("allocated"))
        gpus = parse_gpus(text((group.get("gres") or {}).get("used")))[0]
        for name in names:
            node_ = out.setdefault(name, SlurmNode(name, [], cpus, mem, gpus))
            node_.states.extend(s for s in states if s not in node_.states)
    return list(out.values())


@dataclass(slots=True)
class AccountedJob:
    """A finished job as ``sacct --json`` has it (for jobs slurmctld has forgotten)."""

    job_id: int
    state: str
    start_time: int
    end_time: int


def parse_sacct(doc: Mapping[str, Any]) -> list[AccountedJob]:
    out = []
    for job in doc.get("jobs") or []:
        state = job.get("state") or {}
        times = job.get("time") or {}
        out.append(
            AccountedJob(
                job_id=number(job.get("job_id")),
                state=text(state.get("current") if isinstance(state, Mapping) else state).upper(),
                start_time=number(times.get("start")),
                end_time=number(times.get("end")),
            )
        )
    return out

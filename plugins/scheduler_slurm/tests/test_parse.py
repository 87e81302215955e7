"""Reading Slurm's JSON: the 22.05 shapes (as Debian bookworm's squeue/sinfo write them, checked against
the real cluster in test_slurm_scheduler.py) and the 23.02+ shapes (numbers as objects, states as lists,
``job_resources.nodes.allocation``), which the real cluster here cannot produce."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from cc_scheduler_slurm.parse import (
    STOP_STATES,
    index_list,
    number,
    parse_gpus,
    parse_job,
    parse_sacct,
    parse_sinfo,
)
from cc_scheduler_slurm.scheduler import SlurmConfig, SlurmScheduler

from cc_core.config import ConfigError, convert
from cc_core.testing.metric_contract import make_cluster

JOB_2205: dict[str, Any] = {
    "account": "proj1",
    "array_job_id": 0,
    "cluster": "cctest",
    "cpus": 4,
    "end_time": 1795504106,
    "gres_detail": ["gpu:a100:2(IDX:1,3)"],
    "job_id": 4,
    "job_resources": {
        "nodes": "cc-node1",
        "allocated_nodes": [
            {
                "sockets": {"0": {"cores": {"0": "allocated"}}, "1": {"cores": {"1": "allocated"}}},
                "nodename": "cc-node1",
            }
        ],
    },
    "job_state": "CANCELLED",
    "name": "wrap",
    "node_count": 1,
    "nodes": "cc-node1",
    "partition": "debug",
    "shared": None,
    "start_time": 1795504091,
    "submit_time": 1795504090,
    "time_limit": 10,
    "tres_alloc_str": "cpu=4,node=1,billing=4,gres/gpu=2",
    "user_name": "root",
}

JOB_2402: dict[str, Any] = {
    "account": "proj2",
    "array_job_id": {"set": True, "infinite": False, "number": 41},
    "cpus": {"set": True, "infinite": False, "number": 8},
    "end_time": {"set": True, "infinite": False, "number": 0},
    "gres_detail": [],
    "job_id": 42,
    "job_resources": {
        "nodes": {
            "allocation": [
                {
                    "index": 0,
                    "name": "n01",
                    "sockets": [
                        {"index": 1, "cores": [{"index": 0, "status": ["ALLOCATED"]}]},
                        {"index": 0, "cores": [{"index": 1, "status": ["UNALLOCATED"]}]},
                    ],
                },
                {"index": 1, "name": "n02", "sockets": []},
            ]
        }
    },
    "job_state": ["RUNNING"],
    "name": "sim",
    "node_count": {"set": True, "infinite": False, "number": 2},
    "partition": "main",
    "shared": ["user"],
    "start_time": {"set": True, "infinite": False, "number": 1700000000},
    "submit_time": {"set": True, "infinite": False, "number": 1699999999},
    "time_limit": {"set": False, "infinite": True, "number": 0},
    "tres_alloc_str": "cpu=8,node=2",
    "user_name": "alice",
}


def test_job_22_05() -> None:
    job = parse_job(JOB_2205)
    assert (job.job_id, job.state, job.stop_state, job.user, job.account) == (
        4,
        "CANCELLED",
        "cancelled",
        "root",
        "proj1",
    )
    assert (job.start_time, job.end_time, job.submit_time, job.time_limit_minutes) == (
        1795504091,
        1795504106,
        1795504090,
        10,
    )
    assert (job.cpus, job.gpus, job.node_count, job.shared) == (4, 2, 1, "multi_user")
    (node,) = job.nodes
    assert (node.hostname, node.cores, node.gpus) == ("cc-node1", [(0, 0), (1, 1)], [1, 3])
    assert job.started


def test_job_24_02() -> None:
    job = parse_job(JOB_2402)
    assert (job.job_id, job.state, job.stop_state, job.array_job_id) == (42, "RUNNING", None, 41)
    assert (job.cpus, job.node_count, job.time_limit_minutes, job.shared) == (8, 2, 0, "single_user")
    assert [(n.hostname, n.cores) for n in job.nodes] == [("n01", [(1, 0)]), ("n02", [])]
    assert job.started


def test_pending_and_unscheduled_jobs_are_not_started() -> None:
    pending = parse_job({"job_id": 5, "job_state": "PENDING", "start_time": 1795504999, "nodes": ""})
    assert not pending.started
    cancelled_in_queue = parse_job({"job_id": 6, "job_state": "CANCELLED", "start_time": 0, "nodes": ""})
    assert not cancelled_in_queue.started
    booting = parse_job(
        {"job_id": 8, "job_state": ["RUNNING", "CONFIGURING"], "start_time": 5, "nodes": "n1"}
    )
    assert not booting.started  # its start time changes once the nodes are up
    # Without job_resources the host list is expanded.
    listed = parse_job({"job_id": 7, "job_state": "RUNNING", "start_time": 5, "nodes": "n[01-03]"})
    assert [n.hostname for n in listed.nodes] == ["n01", "n02", "n03"]


def test_state_mapping_is_the_documented_one() -> None:
    assert {k: STOP_STATES[k] for k in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")} == {
        "COMPLETED": "completed",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
        "TIMEOUT": "timeout",
    }
    assert STOP_STATES["OUT_OF_MEMORY"] == "out_of_memory"
    assert STOP_STATES["NODE_FAIL"] == "failed"
    assert STOP_STATES["PREEMPTED"] == "preempted"


def test_small_readers() -> None:
    assert number({"set": True, "infinite": False, "number": 3}) == 3
    assert number({"set": False, "number": 3}) == 0
    assert number(None, 7) == 7
    assert index_list("0-2,5,x,7-6") == [0, 1, 2, 5]
    assert parse_gpus("gpu:a100:2(IDX:0-1),shard:a100:4(IDX:0-1)") == (2, [0, 1])
    assert parse_gpus("gpu:1(IDX:3)") == (1, [3])
    assert parse_gpus("") == (0, [])


def test_sinfo_both_shapes() -> None:
    (n,) = parse_sinfo(
        {
            "nodes": [
                {
                    "name": "cc-node1",
                    "state": "mixed",
                    "state_flags": ["DRAIN"],
                    "alloc_cpus": 2,
                    "alloc_memory": 100,
                    "gres_used": "gpu:a100:1(IDX:0)",
                    "sockets": 2,
                    "cores": 2,
                    "threads": 2,
                }
            ]
        }
    )
    assert (n.name, n.states, n.cpus_allocated, n.memory_allocated, n.gpus_allocated) == (
        "cc-node1",
        ["mixed", "DRAIN"],
        2,
        100,
        1,
    )
    grouped = parse_sinfo(
        {
            "sinfo": [
                {
                    "nodes": {"nodes": ["n01", "n02"]},
                    "node": {"state": ["ALLOCATED"]},
                    "cpus": {"allocated": 16},
                    "memory": {"allocated": 512},
                    "gres": {"used": ""},
                }
            ]
        }
    )
    assert [(g.name, g.states, g.cpus_allocated) for g in grouped] == [
        ("n01", ["ALLOCATED"], 8),
        ("n02", ["ALLOCATED"], 8),
    ]


def test_sacct() -> None:
    (rec,) = parse_sacct(
        {"jobs": [{"job_id": 9, "state": {"current": ["TIMEOUT"]}, "time": {"start": 10, "end": 70}}]}
    )
    assert (rec.job_id, rec.state, rec.start_time, rec.end_time) == (9, "TIMEOUT", 10, 70)


def test_job_mapping_uses_the_cluster_topology() -> None:
    """Slurm's (socket, core) pairs become the topology's hardware threads; GPU indices its ids."""

    class Catalog:
        def cluster(self, name: str) -> Any:
            return make_cluster(name)

    class Context:
        services = {"clusters": Catalog()}

    sched = SlurmScheduler(SlurmConfig(cluster="cctest"), Context())  # type: ignore[arg-type]
    job = sched.to_job(parse_job(JOB_2205), script="#!/bin/sh\n", info="JobId=4")
    (res,) = job.resources
    # Topology: socket 0 = threads {0,1,4,5}, cores [0,4],[1,5] ...; socket 1 core 1 = [3,7].
    assert res.hwthreads == [0, 3, 4, 7]
    assert res.accelerators == ["1", "3"]  # the test topology lists no accelerators
    assert (job.num_nodes, job.num_hwthreads, job.num_acc, job.walltime) == (1, 4, 2, 600)
    assert job.meta_data == {"jobName": "wrap", "slurmInfo": "JobId=4", "jobScript": "#!/bin/sh\n"}
    assert (job.project, job.partition, job.cluster) == ("proj1", "debug", "cctest")

    pci = SlurmScheduler(SlurmConfig(cluster="cctest", gpu_pci_addrs={"cc-node.*": ["a", "b", "c", "d"]}))
    assert pci.to_job(parse_job(JOB_2205)).resources[0].accelerators == ["b", "d"]


def test_config_is_validated_with_paths() -> None:
    with pytest.raises(ConfigError, match="poll-interval"):
        convert(
            {"cluster": "c", "poll-interval": 0}, SlurmConfig, file="config.json", base_path="$.schedulers[0]"
        )
    with pytest.raises(ConfigError, match="invalid regular expression"):
        convert({"cluster": "c", "ignore-hosts": "("}, SlurmConfig, file="config.json")
    with pytest.raises(ConfigError, match="accounting"):
        convert({"cluster": "c", "accounting": "maybe"}, SlurmConfig, file="config.json")
    cfg = msgspec.convert({"cluster": "c", "slurm-conf": "/etc/slurm/slurm.conf"}, SlurmConfig)
    assert (cfg.poll_interval, cfg.accounting, cfg.slurm_conf) == (30.0, "auto", "/etc/slurm/slurm.conf")

"""Shared helpers of the metric-store tests: a small cluster with a real topology and store configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from cc_metric_ccms.config import Checkpoints, InternalStoreConfig
from cc_metric_ccms.store import MetricInfo, MetricStore, metrics_from_clusters

from cc_core.schema import Job, Resource
from cc_core.schema.cluster import Cluster

# 2 sockets × 4 cores × 2 hardware threads; core c = hwthreads [c, c+8]; one memory domain per socket.
TOPOLOGY: dict[str, Any] = {
    "node": list(range(16)),
    "socket": [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]],
    "memoryDomain": [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]],
    "core": [[c, c + 8] for c in range(8)],
    "accelerators": [{"id": "0"}, {"id": "1"}],
}

PEAKS: dict[str, Any] = {
    "flopRateScalar": {"unit": {"base": "F/s", "prefix": "G"}, "value": 100.0},
    "flopRateSimd": {"unit": {"base": "F/s", "prefix": "G"}, "value": 400.0},
    "memoryBandwidth": {"unit": {"base": "B/s", "prefix": "G"}, "value": 200.0},
}

METRICS: list[dict[str, Any]] = [
    {
        "name": "flops_any",
        "scope": "hwthread",
        "aggregation": "sum",
        "timestep": 60,
        "unit": {"base": "F/s", "prefix": "G"},
    },
    {"name": "cpu_load", "scope": "node", "aggregation": "avg", "timestep": 60, "unit": {"base": ""}},
    {"name": "ipc", "scope": "core", "aggregation": "avg", "timestep": 60, "unit": {"base": "IPC"}},
    {
        "name": "mem_bw",
        "scope": "memoryDomain",
        "aggregation": "sum",
        "timestep": 60,
        "unit": {"base": "B/s", "prefix": "G"},
    },
    {"name": "pkg_pwr", "scope": "socket", "aggregation": "sum", "timestep": 60, "unit": {"base": "W"}},
    {"name": "acc_util", "scope": "accelerator", "aggregation": "avg", "timestep": 60, "unit": {"base": "%"}},
    {
        "name": "mem_used",
        "scope": "node",
        "aggregation": "",
        "timestep": 60,
        "unit": {"base": "B", "prefix": "G"},
    },
]


def make_cluster(name: str = "testcl") -> Cluster:
    doc = {
        "name": name,
        "metricConfig": METRICS,
        "subClusters": [{"name": "main", "nodes": "n[01-99]", "topology": TOPOLOGY, **PEAKS}],
    }
    return msgspec.convert(doc, Cluster).derive()


def make_store(block_size: int = 512, minimum_points: int = 1000) -> MetricStore:
    return MetricStore(
        metrics_from_clusters([make_cluster()]), block_size=block_size, minimum_points=minimum_points
    )


def simple_metrics() -> list[MetricInfo]:
    return [
        MetricInfo("flops_any", 60, "sum"),
        MetricInfo("cpu_load", 60, "avg"),
        MetricInfo("mem_used", 60, ""),
    ]


def make_config(
    directory: Path, *, file_format: str = "wal", max_wal_size: int = 0, retention: str = "48h"
) -> InternalStoreConfig:
    return InternalStoreConfig(
        retention_in_memory=retention,
        memory_cap=0,
        checkpoints=Checkpoints(file_format=file_format, directory=str(directory), max_wal_size=max_wal_size),
    )


def make_job(
    hosts: dict[str, list[int] | None],
    start: int,
    duration: int,
    *,
    accelerators: dict[str, list[str]] | None = None,
) -> Job:
    accelerators = accelerators or {}
    return Job(
        job_id=1,
        user="u",
        project="p",
        cluster="testcl",
        sub_cluster="main",
        start_time=start,
        duration=duration,
        num_nodes=len(hosts),
        num_acc=sum(len(a) for a in accelerators.values()),
        resources=[
            Resource(hostname=h, hwthreads=hw, accelerators=accelerators.get(h)) for h, hw in hosts.items()
        ],
    )

"""Job metadata: upstream's `schema.Job` (archive `meta.json`, REST start_job body, job JSON replies).

Reading is lenient (old archives carry keys such as `stopTime` or `exclusive`); the REST layer decodes
with `StrictJob`, which refuses unknown keys as upstream's `DisallowUnknownFields` does.
"""

from enum import IntEnum

import msgspec

from cc_core.schema.units import Unit, no_unit

JOB_STATES: tuple[str, ...] = (
    "boot_fail",
    "cancelled",
    "completed",
    "deadline",
    "failed",
    "node_fail",
    "out_of_memory",
    "pending",
    "preempted",
    "running",
    "suspended",
    "timeout",
)
SHARED_VALUES: tuple[str, ...] = ("none", "single_user", "multi_user")


class MonitoringStatus(IntEnum):
    DISABLED = 0
    RUNNING_OR_ARCHIVING = 1
    ARCHIVING_FAILED = 2
    ARCHIVING_SUCCESSFUL = 3


class Resource(msgspec.Struct, omit_defaults=True):
    hostname: str
    hwthreads: list[int] | None = None
    accelerators: list[str] | None = None
    configuration: str | None = None


class Tag(msgspec.Struct, omit_defaults=True):
    type: str
    name: str
    scope: str = "global"
    id: int | None = None


class JobStatistics(msgspec.Struct):
    unit: Unit = msgspec.field(default_factory=no_unit)
    avg: float = 0.0
    min: float = 0.0
    max: float = 0.0


class JobLink(msgspec.Struct, rename="camel"):
    id: int
    job_id: int


class ConcurrentJobs(msgspec.Struct):
    items: list[JobLink] = msgspec.field(default_factory=list)
    count: int = 0


class Job(msgspec.Struct, rename="camel", omit_defaults=True):
    job_id: int
    user: str
    project: str
    cluster: str
    start_time: int
    num_nodes: int
    resources: list[Resource]
    sub_cluster: str = ""
    partition: str = ""
    array_job_id: int = 0
    num_hwthreads: int = 0
    num_acc: int = 0
    shared: str = "none"
    monitoring_status: int = MonitoringStatus.RUNNING_OR_ARCHIVING
    smt: int = 0
    walltime: int = 0
    requested_memory: int = 0
    job_state: str = "running"
    submit_time: int = 0
    duration: int = 0
    meta_data: dict[str, str] | None = None
    tags: list[Tag] | None = None
    energy: float = 0.0
    energy_footprint: dict[str, float] | None = None
    footprint: dict[str, float] | None = None
    concurrent_jobs: ConcurrentJobs | None = None
    statistics: dict[str, JobStatistics] | None = None
    id: int | None = None


class StrictJob(Job, forbid_unknown_fields=True):
    """`Job` as a REST body: unknown keys are an error, as upstream's strict decoder has it."""

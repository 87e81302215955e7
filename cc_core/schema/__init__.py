"""Wire formats shared by the archive, the REST API and the metric backends (upstream cc-lib `schema`).

Structs here are msgspec structs whose JSON names are exactly upstream's, so a `meta.json` written by
Go cc-backend decodes here and ours decodes there.
"""

from cc_core.schema.job import (
    JOB_STATES,
    SHARED_VALUES,
    ConcurrentJobs,
    Job,
    JobLink,
    JobStatistics,
    MonitoringStatus,
    Resource,
    Tag,
)
from cc_core.schema.units import Unit

__all__ = [
    "JOB_STATES",
    "SHARED_VALUES",
    "ConcurrentJobs",
    "Job",
    "JobLink",
    "JobStatistics",
    "MonitoringStatus",
    "Resource",
    "Tag",
    "Unit",
]

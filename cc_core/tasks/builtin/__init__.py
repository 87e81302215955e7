"""The core's own tasks (contract §10), registered by `cc_core.builtins.tasks` through ``register_tasks``.

| task | when | configured by |
|---|---|---|
| ``update-duration`` | every ``cron.duration-worker`` (5m) | always |
| ``update-footprint`` | every ``cron.footprint-worker`` (10m) | a metric source is configured |
| ``stop-jobs-exceeding-walltime`` | daily 03:00 | ``main.stop-jobs-exceeding-walltime`` > 0 |
| ``archive-compression`` | daily 05:00 | always (``archive.compression`` days, default 7) |
| ``archive-retention`` | daily 03:00 / 04:00 / 05:00 | ``archive.retention.policy`` delete / copy / move |
| ``nodestate-retention`` | daily 02:00 / 02:30 | ``main.nodestate-retention.policy`` delete / move |

Upstream's ``commit-job-worker`` has nothing to do here: started jobs are written to ``job`` at once
(our migration 2 dropped ``job_cache``), so ``cron.commit-job-worker`` is accepted and ignored. LDAP
user sync is the auth-ldap plugin's task.

Built-in tasks read the core's own settings through `PluginContext.section` like plugins read theirs:
`publish_core_sections` exposes exactly the keys they use, under their JSON paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cc_core.config import Config

SECTION_CRON = "$.cron"
SECTION_RETENTION = "$.archive.retention"
SECTION_COMPRESSION = "$.archive.compression"
SECTION_WALLTIME = "$.main.stop-jobs-exceeding-walltime"
SECTION_NODESTATE = "$.main.nodestate-retention"


def publish_core_sections(config: Config) -> None:
    """Make the settings of the built-in tasks readable with ``context.section(path)``."""
    sections = config.plugin_configs
    sections[SECTION_CRON] = config.cron
    sections[SECTION_RETENTION] = config.retention
    sections[SECTION_COMPRESSION] = config.archive_compression_days
    sections[SECTION_WALLTIME] = config.main.stop_jobs_exceeding_walltime
    sections[SECTION_NODESTATE] = config.main.nodestate_retention

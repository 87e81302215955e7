"""Built-in plugin: the core's periodic services (contract §10), see `cc_core.tasks.builtin`."""

from __future__ import annotations

from cc_core.hookspecs import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    from cc_core.tasks.builtin.archive import ArchiveCompression, ArchiveRetention
    from cc_core.tasks.builtin.jobs import StopJobsExceedingWalltime, UpdateDuration, UpdateFootprint
    from cc_core.tasks.builtin.nodestate import NodeStateRetention

    for cls in (
        UpdateDuration,
        UpdateFootprint,
        StopJobsExceedingWalltime,
        ArchiveCompression,
        ArchiveRetention,
        NodeStateRetention,
    ):
        register(cls)

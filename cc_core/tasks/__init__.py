"""Periodic background services (contract §10): the task manager, schedules, and the built-in tasks.

`TaskManager` runs what plugins register through ``register_tasks`` (`cc_core.interfaces.Task`); the
core's own tasks live in `cc_core.tasks.builtin` and are registered by `cc_core.builtins.tasks` like
any plugin's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cc_core.tasks.manager import RunResult, ScheduledTask, TaskManager, build_tasks
from cc_core.tasks.schedule import Schedule, ScheduleError

if TYPE_CHECKING:
    from cc_core.services import CoreServices

__all__ = [
    "RunResult",
    "Schedule",
    "ScheduleError",
    "ScheduledTask",
    "TaskManager",
    "build_tasks",
    "create_task_manager",
]


def create_task_manager(services: CoreServices) -> TaskManager:
    """The manager with every task the configuration enables (built when the app or CLI is built, so a
    wrong task setting stops start-up with its message)."""
    from cc_core.tasks.builtin import publish_core_sections

    publish_core_sections(services.config)
    return TaskManager.from_context(services.context)

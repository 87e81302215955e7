"""Slurm integration for ClusterCockpit (``"schedulers": [{"kind": "slurm", "cluster": "fritz"}]``).

What sites otherwise run cc-slurm-adapter for: the core runs `SlurmScheduler.run` as a background service,
which polls ``squeue``/``sinfo`` and feeds job starts, stops and node states into the same lifecycle code
the REST API uses. Importing this module is cheap: the scheduler class is imported on registration.
"""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_schedulers(register):  # type: ignore[no-untyped-def]
    from cc_scheduler_slurm.scheduler import SlurmScheduler

    register(SlurmScheduler)

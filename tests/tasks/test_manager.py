"""The task manager: schedules, run loop, failure isolation, logging, run records, one run per due time
across managers sharing a database (SQLite and PostgreSQL), and the `tasks` CLI."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from cc_core.config import ConfigError
from cc_core.db import Database
from cc_core.tasks import Schedule, ScheduledTask, ScheduleError, TaskManager, build_tasks
from cc_core.testing.site import Site

from .conftest import postgres_url


class Recorder:
    """A task whose runs are appended to a shared list (name, due slot); ``fail`` makes it raise."""

    name: ClassVar[str] = "recorder"

    def __init__(self, schedule: float | str, runs: list[Any], *, fail: bool = False, name: str = "") -> None:
        self._schedule = schedule
        self.runs = runs
        self.fail = fail
        if name:
            self.name = name  # type: ignore[misc]

    @property
    def schedule(self) -> float | str:
        return self._schedule

    async def run(self) -> str:
        self.runs.append((self.name, time.time()))
        if self.fail:
            raise RuntimeError("boom")
        await asyncio.sleep(0.01)
        return "recorded"


def scheduled(task: Any) -> ScheduledTask:
    return ScheduledTask(task, Schedule.parse(task.schedule))


# ------------------------------------------------------------------------------------------ schedule


def test_interval_due_times_are_multiples_of_the_interval() -> None:
    s = Schedule.parse(300)
    assert s.next_due(1000.0) == 1200.0
    assert s.next_due(1200.0) == 1500.0  # strictly after now
    assert Schedule.parse(0.25).next_due(10.1) == 10.25
    assert s.describe() == "every 5m" and Schedule.parse(5400).describe() == "every 1h30m"


def test_daily_due_time_is_the_next_wall_clock_occurrence() -> None:
    s = Schedule.parse("03:00")
    assert s.describe() == "daily at 03:00"
    now = _dt.datetime(2026, 3, 10, 12, 0).astimezone()
    due = _dt.datetime.fromtimestamp(s.next_due(now.timestamp())).astimezone()
    assert (due.month, due.day, due.hour, due.minute) == (3, 11, 3, 0)
    early = _dt.datetime(2026, 3, 10, 2, 59).astimezone()
    due = _dt.datetime.fromtimestamp(s.next_due(early.timestamp())).astimezone()
    assert (due.day, due.hour) == (10, 3)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "24:00", "3", "12:60", "noon", True, None])
def test_invalid_schedules_are_refused(bad: Any) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(bad)


# --------------------------------------------------------------------------------------------- loop


def test_tasks_run_on_schedule_and_a_failing_one_never_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[Any] = []
    good = Recorder(0.1, runs, name="good")
    bad = Recorder(0.1, runs, fail=True, name="bad")

    async def main() -> TaskManager:
        manager = TaskManager([scheduled(good), scheduled(bad)], None)
        await manager.start()
        await asyncio.sleep(0.75)
        await manager.stop()
        return manager

    with caplog.at_level(logging.INFO, logger="cc_core.tasks"):
        manager = asyncio.run(main())
    good_runs = [r for r in runs if r[0] == "good"]
    bad_runs = [r for r in runs if r[0] == "bad"]
    # ~7 due times in 0.75 s (fewer when the machine is loaded), never more than the due times
    assert 3 <= len(good_runs) <= 8 and 3 <= len(bad_runs) <= 8
    assert manager.tasks["bad"].failures == len(bad_runs) and manager.tasks["good"].failures == 0
    last = manager.tasks["good"].history[-1]
    assert last.ok and last.message == "recorded" and 0.005 < last.duration < 3
    text = caplog.text
    assert "task good: ok in" in text and "recorded" in text
    assert "task bad: failed after" in text and "RuntimeError: boom" in text


def test_stop_waits_for_a_running_task_and_cancels_after_the_timeout() -> None:
    class Slow:
        name: ClassVar[str] = "slow"
        schedule = 0.05

        def __init__(self) -> None:
            self.finished = False
            self.cancelled = False

        async def run(self) -> None:
            try:
                await asyncio.sleep(5)
                self.finished = True
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    slow = Slow()

    async def main() -> float:
        manager = TaskManager([scheduled(slow)], None)
        await manager.start()
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        await manager.stop(timeout=0.2)
        return time.perf_counter() - t0

    took = asyncio.run(main())
    assert slow.cancelled and not slow.finished and took < 3.0


# ------------------------------------------------------------------------------------ build_tasks


class _Registry:
    def __init__(self, classes: dict[str, type]) -> None:
        self._classes = classes

    def classes(self, category: str) -> dict[str, type]:
        return self._classes

    def get(self, category: str, name: str) -> None:
        return None


class _Context:
    def __init__(self, classes: dict[str, type]) -> None:
        self.registry = _Registry(classes)
        self.services: dict[str, Any] = {}


def _task_class(name: str, create: Callable[[Any], Any]) -> type:
    return type(name, (), {"name": name, "create": classmethod(lambda cls, ctx: create(cls))})


def test_build_tasks_skips_disabled_and_broken_tasks_but_stops_on_config_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[Any] = []
    ok = _task_class("ok", lambda cls: Recorder(60, runs, name="ok"))
    off = _task_class("off", lambda cls: None)

    def broken(cls: Any) -> Any:
        raise RuntimeError("cannot reach the directory")

    def bad_schedule(cls: Any) -> Any:
        return Recorder("25:00", runs, name="late")

    tasks = build_tasks(
        _Context(  # type: ignore[arg-type]
            {
                "ok": ok,
                "off": off,
                "broken": _task_class("broken", broken),
                "late": _task_class("late", bad_schedule),
            }
        )
    )
    assert [t.name for t in tasks] == ["ok"]
    assert "task broken" in caplog.text and "cannot reach the directory" in caplog.text
    assert "task late" in caplog.text and "HH:MM" in caplog.text

    def config_error(cls: Any) -> Any:
        raise ConfigError("`sync-interval`: invalid duration", file="config.json", path="$.auth.ldap")

    with pytest.raises(ConfigError, match="sync-interval"):
        build_tasks(_Context({"ldap": _task_class("ldap", config_error)}))  # type: ignore[arg-type]


# ------------------------------------------------------------------- one run per due time, replicas


def _two_managers_share_the_runs(url: str | Path) -> None:
    runs: list[Any] = []
    claims: list[tuple[str, float, bool]] = []  # (holder, due, won) of every claim attempt
    dbs = [Database(url), Database(url)]

    def watch(manager: TaskManager) -> TaskManager:
        lease = manager.lease
        assert lease is not None
        claim = lease.claim

        async def recorded(name: str, due: float) -> bool:
            won = await claim(name, due)
            claims.append((lease.holder, due, won))
            return won

        lease.claim = recorded  # type: ignore[method-assign]
        return manager

    try:

        async def main() -> list[TaskManager]:
            managers = [
                watch(TaskManager([scheduled(Recorder(0.2, runs, name="shared"))], db, holder=f"replica{i}"))
                for i, db in enumerate(dbs)
            ]
            for m in managers:
                await m.start()
            await asyncio.sleep(1.5)
            for m in managers:
                await m.stop()
            return managers

        managers = asyncio.run(main())
        records = asyncio.run(managers[0].lease.records())  # type: ignore[union-attr]
    finally:
        for db in dbs:
            db.close_sync()
    won = [due for _, due, ok in claims if ok]
    assert len(runs) >= 3 and len(won) == len(runs)
    assert len(won) == len(set(won)), f"a due time ran twice: {sorted(won)}"
    contested = {due for due in won if sum(1 for _, d, _ in claims if d == due) == 2}
    assert contested, "the two managers never competed for a due time"
    assert sum(m.tasks["shared"].runs for m in managers) == len(runs)
    rec = records["shared"]
    assert rec.outcome == "ok" and rec.message == "recorded" and rec.holder in ("replica0", "replica1")
    assert rec.due_ms == round(max(won) * 1000)
    assert rec.duration_ms is not None and rec.duration_ms < 5000


def test_two_managers_on_one_sqlite_database_run_each_due_time_once(site: Site) -> None:
    _two_managers_share_the_runs(site.root / "var" / "job.db")


@pytest.mark.service("postgresql")
def test_two_managers_on_one_postgresql_database_run_each_due_time_once(
    request: pytest.FixtureRequest,
) -> None:
    url = postgres_url(request)
    Database(url).close_sync()  # create the schema once, before the two race to do it
    _two_managers_share_the_runs(url)


# ------------------------------------------------------------------------------------------- CLI


def test_tasks_cli_lists_and_runs(site: Site) -> None:
    from cc_core.cli import build_cli

    runner = CliRunner()
    args = ["--config", str(site.config_path)]
    env = {**site.environ, "CC_LOAD_PLUGINS": "archive-fs"}
    r = runner.invoke(build_cli(), [*args, "tasks", "list"], env=env)
    assert r.exit_code == 0, r.output
    assert "update-duration" in r.output and "every 5m" in r.output and "never run" in r.output
    assert "archive-compression" in r.output and "daily at 05:00" in r.output
    assert "archive-retention" not in r.output  # policy none: not enabled

    r = runner.invoke(build_cli(), [*args, "tasks", "run", "update-duration"], env=env)
    assert r.exit_code == 0, r.output
    assert "update-duration: ok in" in r.output and "running job(s) updated" in r.output
    r = runner.invoke(build_cli(), [*args, "tasks", "list"], env=env)
    assert "duration of 0 running job(s) updated" in r.output

    r = runner.invoke(build_cli(), [*args, "tasks", "run", "nope"], env=env)
    assert r.exit_code == 2 and "no enabled task 'nope'" in r.output

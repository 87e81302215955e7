"""When a task runs: every N seconds, or daily at ``"HH:MM"`` local time (upstream's gocron jobs).

Run times are absolute, not relative to when a server started: an interval task is due at every
multiple of its interval since the epoch, a daily task at HH:MM of each day. Every replica of a
server therefore computes the same due times, and `cc_core.tasks.lease` can let exactly one of them
claim each one.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A task's ``schedule`` is neither a positive number of seconds nor ``"HH:MM"``."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """``interval`` seconds (> 0) or a daily ``at`` = (hour, minute) in local time."""

    interval: float | None = None
    at: tuple[int, int] | None = None

    @classmethod
    def parse(cls, value: float | str) -> Schedule:
        if isinstance(value, bool):
            raise ScheduleError(f"schedule must be seconds or 'HH:MM', got {value!r}")
        if isinstance(value, int | float):
            if not math.isfinite(value) or value <= 0:
                raise ScheduleError(f"an interval must be a positive number of seconds, got {value!r}")
            return cls(interval=float(value))
        if isinstance(value, str):
            m = _HHMM.match(value.strip())
            if m is None:
                raise ScheduleError(f"a daily time must be 'HH:MM' (00:00 to 23:59), got {value!r}")
            return cls(at=(int(m.group(1)), int(m.group(2))))
        raise ScheduleError(f"schedule must be seconds or 'HH:MM', got {value!r}")

    def next_due(self, now: float) -> float:
        """The first due time strictly after ``now`` (epoch seconds)."""
        if self.interval is not None:
            return (math.floor(now / self.interval) + 1) * self.interval
        assert self.at is not None
        local = _dt.datetime.fromtimestamp(now).astimezone()
        due = local.replace(hour=self.at[0], minute=self.at[1], second=0, microsecond=0)
        if due.timestamp() <= now:
            # Next calendar day at the same wall-clock time (correct across DST changes).
            tomorrow = (local + _dt.timedelta(days=1)).date()
            naive = _dt.datetime.combine(tomorrow, _dt.time(self.at[0], self.at[1]))
            due = naive.astimezone()
        return due.timestamp()

    def describe(self) -> str:
        if self.interval is not None:
            return f"every {format_seconds(self.interval)}"
        assert self.at is not None
        return f"daily at {self.at[0]:02d}:{self.at[1]:02d}"


def format_seconds(seconds: float) -> str:
    """``90`` → ``1m30s``, ``0.5`` → ``0.5s``: Go-duration-like, for logs and ``tasks list``."""
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:g}s"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec or not (h or m) else "")
    return out

"""Rule directories of the taggers: built-in rules plus a site directory, reloaded when they change.

Upstream reads ``./var/tagger/apps`` and ``./var/tagger/jobclasses`` and watches them with fsnotify.
Here the rules shipped in this package (``rules/``, upstream's ``configs/tagger`` files) are the base
and a site's directories add or replace files by name; instead of a file watcher the directories'
listing (names, sizes, modification times) is compared at most once per ``check_interval`` seconds, and
the rules are rebuilt when it changed. A rule file that does not load is reported (`Problem`, with file
and position) and skipped; the other files still load.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).with_name("rules")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """A rule (file, or part of one) that could not be loaded; ``where`` is a position inside it."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


def byte_position(text: bytes, offset: int) -> str:
    """``line L, column C`` (1-based) of a byte offset, for JSON decode errors."""
    offset = max(0, min(offset, len(text)))
    line = text.count(b"\n", 0, offset) + 1
    col = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


_BYTE = re.compile(r"\(byte (\d+)\)")


def json_error_position(raw: bytes, message: str) -> tuple[str, str]:
    """Split a msgspec error into (position, message): ``(byte N)`` becomes line and column."""
    m = _BYTE.search(message)
    if m is None:
        return "", message
    return byte_position(raw, int(m.group(1))), (message[: m.start()] + message[m.end() :]).strip()


def is_rule_file(name: str) -> bool:
    """Hidden files and editor backups are never rules."""
    return not name.startswith(".") and not name.endswith(("~", ".swp", ".bak", ".orig"))


def rule_files(dirs: Sequence[Path], key: Callable[[str], str | None]) -> dict[str, Path]:
    """Files of ``dirs`` by ``key(name)`` (None: not a rule file); later directories win."""
    out: dict[str, Path] = {}
    for d in dirs:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("tagger: cannot read rule directory %s: %s", d, e)
            continue
        for entry in entries:
            if not is_rule_file(entry.name) or not entry.is_file():
                continue
            k = key(entry.name)
            if k is not None:
                out[k] = Path(entry.path)
    return out


def _signature(dirs: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    sig: list[tuple[str, int, int]] = []
    for d in dirs:
        try:
            with os.scandir(d) as it:
                for e in it:
                    if is_rule_file(e.name):
                        try:
                            st = e.stat()
                        except OSError:
                            continue
                        sig.append((e.path, st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append((str(d), -1, -1))
    return tuple(sorted(sig))


@dataclass
class HotRules(Generic[T]):
    """Rules built by ``loader`` from ``dirs``; `get` rebuilds them when a directory changed."""

    dirs: Sequence[Path]
    loader: Callable[[Sequence[Path]], tuple[T, list[Problem]]]
    check_interval: float = 1.0
    label: str = "rules"
    problems: list[Problem] = field(default_factory=list)
    _value: T | None = None
    _sig: tuple[tuple[str, int, int], ...] | None = None
    _checked: float = -1e18
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> T:
        now = time.monotonic()
        if self._value is not None and now - self._checked < self.check_interval:
            return self._value
        with self._lock:
            self._checked = now
            sig = _signature(self.dirs)
            if self._value is None or sig != self._sig:
                value, problems = self.loader(self.dirs)
                for p in problems:
                    log.warning("tagger %s: %s (skipped)", self.label, p)
                self._value, self._sig, self.problems = value, sig, problems
            return self._value

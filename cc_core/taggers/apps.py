"""Application detection from the job script (upstream ``AppTagger``, contract §9).

``apps/<app>.txt`` holds one regular expression per line (blank lines ignored); the tag is
``{type: "app", name: <app>, scope: "global"}`` with ``<app>`` the file name without its extension.
Upstream wraps each pattern as ``(?m)^[^#]*<pattern>`` and matches it against the lower-cased
``metaData.jobScript``: the pattern must start on a line before any ``#``, so commented lines (and
trailing comments) never count. Several apps can match one job.

Upstream uses Go's RE2, whose matching time is linear; Python's backtracking engine would be quadratic
on ``[^#]*`` over a long script. So the wrapper is not compiled: the pattern alone is searched and each
match is accepted only if no ``#`` precedes it on its line — the same set of scripts matches. Patterns
use Python's ``re`` in ASCII mode (RE2's ``\\b``, ``\\s``, ``\\w`` are ASCII); a pattern Python cannot
compile is reported with its file and line and skipped, as upstream skips one Go cannot compile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cc_core.interfaces import TaggerResult
from cc_core.schema.job import Tag
from cc_core.taggers.rules import BUILTIN_DIR, HotRules, Problem, rule_files

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema import Job

log = logging.getLogger(__name__)

TAG_TYPE = "app"
SITE_SUBDIR = Path("var/tagger/apps")
MAX_PATTERN = 1000


@dataclass(frozen=True, slots=True)
class AppRule:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    file: str


def _app_key(name: str) -> str:
    return Path(name).stem if "." in name else name


def load_app_rules(dirs: Sequence[Path]) -> tuple[list[AppRule], list[Problem]]:
    """Every app file of ``dirs`` (later directories replace earlier files of the same app)."""
    rules: list[AppRule] = []
    problems: list[Problem] = []
    for name, path in sorted(rule_files(dirs, _app_key).items()):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(str(path), "", f"cannot read: {e}"))
            continue
        patterns: list[re.Pattern[str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if len(line) > MAX_PATTERN:
                problems.append(Problem(str(path), f"line {lineno}", f"pattern longer than {MAX_PATTERN}"))
                continue
            try:
                patterns.append(re.compile(line, re.MULTILINE | re.ASCII))
            except re.error as e:
                where = f"line {lineno}, column {(e.pos or 0) + 1}"
                problems.append(Problem(str(path), where, f"invalid regular expression {line!r}: {e.msg}"))
        rules.append(AppRule(name, tuple(patterns), str(path)))
    return rules, problems


def _uncommented_match(pattern: re.Pattern[str], script: str) -> bool:
    """Whether ``(?m)^[^#]*<pattern>`` matches: a match of the pattern with no ``#`` before it on its line."""
    pos, n = 0, len(script)
    while pos <= n:
        m = pattern.search(script, pos)
        if m is None:
            return False
        start = m.start()
        line_start = script.rfind("\n", 0, start) + 1
        if script.find("#", line_start, start) < 0:
            return True
        # The '#' also precedes every later start on this line: continue on the next line.
        nl = script.find("\n", start)
        if nl < 0:
            return False
        pos = nl + 1
    return False


def detect_apps(rules: Sequence[AppRule], job_script: str) -> list[str]:
    """The apps whose patterns match ``job_script`` (lower-cased first, as upstream)."""
    script = job_script.lower()
    found: list[str] = []
    for rule in rules:
        for p in rule.patterns:
            if _uncommented_match(p, script):
                found.append(rule.name)
                break
    return found


class AppTagger:
    """Tags jobs with the applications their job script runs (event ``start``)."""

    kind: ClassVar[str] = "AppTagger"
    event: ClassVar[Literal["start", "stop"]] = "start"

    def __init__(
        self,
        context: PluginContext | None = None,
        *,
        site_dir: Path | None = None,
        builtin_dir: Path | None = BUILTIN_DIR / "apps",
        check_interval: float = 1.0,
    ) -> None:
        if site_dir is None and context is not None:
            site_dir = context.base_dir / SITE_SUBDIR
        dirs = [d for d in (builtin_dir, site_dir) if d is not None]
        self.rules: HotRules[list[AppRule]] = HotRules(
            dirs, load_app_rules, check_interval=check_interval, label="apps"
        )

    @property
    def problems(self) -> list[Problem]:
        self.rules.get()
        return self.rules.problems

    def match_script(self, job_script: str) -> list[str]:
        return detect_apps(self.rules.get(), job_script)

    async def match(self, job: Job) -> TaggerResult:
        script: Any = (job.meta_data or {}).get("jobScript")
        if not isinstance(script, str) or not script:
            return TaggerResult()
        return TaggerResult(
            tags=[Tag(type=TAG_TYPE, name=a, scope="global") for a in self.match_script(script)]
        )

"""Shared result table for benchmarks: each figure next to its physical limit and the target ratio."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

OUT_DIR = Path(__file__).parent / "out"


@dataclass(slots=True)
class Result:
    name: str
    ours: float  # seconds per operation (or a rate, see `unit`)
    limit: float | None  # the same measured for the physical limit (raw sqlite3, msgspec decode, ...)
    unit: str = "s"  # "s" = lower is better; "/s" = rate, higher is better
    target: str = ""  # e.g. "≤ 2×", "≥ 5000/s"
    limit_name: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.limit in (None, 0):
            return None
        if self.unit == "/s":
            return self.limit / self.ours if self.ours else None
        return self.ours / self.limit


def best_of(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Best wall time of ``number`` calls, over ``repeat`` rounds, per call (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def report(title: str, results: list[Result]) -> None:
    """Print the table and append the results as JSON to benchmarks/out/<title>.json."""
    table = Table(title=f"{title} — {platform.node()} ({os.cpu_count()} cores)")
    for col in ("benchmark", "ours", "limit", "limit is", "ratio", "target", "ok"):
        table.add_column(col)
    for r in results:
        ratio = r.ratio
        table.add_row(
            r.name,
            _fmt(r.ours, r.unit),
            _fmt(r.limit, r.unit),
            r.limit_name,
            f"{ratio:.2f}×" if ratio is not None else "-",
            r.target,
            {True: "yes", False: "NO", None: ""}[r.ok],
        )
    Console(width=180).print(table)
    OUT_DIR.mkdir(exist_ok=True)
    with open(OUT_DIR / f"{title.replace(' ', '_')}.json", "w") as f:
        json.dump([asdict(r) | {"ratio": r.ratio} for r in results], f, indent=2)

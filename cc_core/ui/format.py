"""Jinja filters for numbers, durations and times (the Python side of ``web/static/js/units.js``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

_PREFIXES = [("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)]
_PREFIX_VALUE = {"": 1.0, **dict(_PREFIXES), "m": 1e-3, "u": 1e-6, "n": 1e-9}


def duration(seconds: Any) -> str:
    """``3725`` → ``1h 2m 5s``; days shown as ``2d 3h``."""
    try:
        s = int(seconds or 0)
    except (TypeError, ValueError):
        return "-"
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def timestamp(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def si(value: Any, unit: str = "", prefix: str = "", digits: int = 2) -> str:
    """``value`` (in ``prefix``+``unit``) with the largest SI prefix that keeps it ≥ 1."""
    try:
        v = float(value) * _PREFIX_VALUE.get(prefix, 1.0)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(v):
        return "-"
    for p, scale in _PREFIXES:
        if abs(v) >= scale:
            return f"{v / scale:.{digits}f} {p}{unit}".rstrip()
    return f"{v:.{digits}f} {unit}".rstrip()


FILTERS = {"duration": duration, "timestamp": timestamp, "si": si}

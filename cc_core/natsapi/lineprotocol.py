"""InfluxDB line protocol as the NATS API receives it (cc-lib ``ccMessage``): a measurement, tags and
fields, where an *event* is a message with a string field ``event`` (contract §7).

    job,function=start_job event="{\\"jobId\\": 1, …}" 1700000000000000000

This is a complete, strict decoder of the general syntax (escapes in names, tags and quoted strings;
integer, unsigned, float, boolean and string fields; optional timestamp; ``#`` comments and blank
lines), small because events are few and short. The embedded metric store has its own decoder
tuned for numeric samples. Errors name the line and what is wrong there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class LineProtocolError(ValueError):
    """A line that is not valid line protocol; the message says which line and why."""


@dataclass(slots=True)
class Message:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    time: int | None = None

    @property
    def event(self) -> str | None:
        """The ``event`` string field (None: not an event message)."""
        v = self.fields.get("event")
        return v if isinstance(v, str) else None


_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+i$")
_UINT = re.compile(r"^\d+u$")
_TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
_FALSE = frozenset(("f", "F", "false", "False", "FALSE"))


def _unescaped_split(text: str, stops: str, pos: int) -> tuple[str, int]:
    """Read from ``pos`` up to the first unescaped character of ``stops``; ``\\x`` becomes ``x`` for
    the characters line protocol escapes there. Returns (text read, position of the stop or end)."""
    out: list[str] = []
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\" and pos + 1 < n and text[pos + 1] in stops + "\\=, ":
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        pos += 1
    return "".join(out), pos


def _string_value(text: str, pos: int, lineno: int) -> tuple[str, int]:
    """A double-quoted field value starting at ``pos`` (the quote); returns (value, position after)."""
    out: list[str] = []
    pos += 1
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\" and pos + 1 < n and text[pos + 1] in '"\\':
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    raise LineProtocolError(f"line {lineno}: unterminated string field value")


def _scalar(raw: str, key: str, lineno: int) -> Any:
    if _INT.match(raw):
        return int(raw[:-1])
    if _UINT.match(raw):
        return int(raw[:-1])
    if _NUMBER.match(raw):
        return float(raw)
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise LineProtocolError(f"line {lineno}: invalid value {raw[:40]!r} of field {key!r}")


def parse_line(line: str, lineno: int = 1) -> Message:
    name, pos = _unescaped_split(line, ", ", 0)
    if not name:
        raise LineProtocolError(f"line {lineno}: missing measurement name")
    msg = Message(name)
    n = len(line)
    while pos < n and line[pos] == ",":
        key, pos = _unescaped_split(line, "=, ", pos + 1)
        if pos >= n or line[pos] != "=" or not key:
            raise LineProtocolError(f"line {lineno}: malformed tag (expected key=value)")
        value, pos = _unescaped_split(line, ", ", pos + 1)
        if not value:
            raise LineProtocolError(f"line {lineno}: tag {key!r} has no value")
        msg.tags[key] = value
    if pos >= n or line[pos] != " ":
        raise LineProtocolError(f"line {lineno}: no fields")
    pos += 1
    while True:
        key, pos = _unescaped_split(line, "=, ", pos)
        if pos >= n or line[pos] != "=" or not key:
            raise LineProtocolError(f"line {lineno}: malformed field (expected key=value)")
        pos += 1
        if pos < n and line[pos] == '"':
            value, pos = _string_value(line, pos, lineno)
            msg.fields[key] = value
        else:
            end = pos
            while end < n and line[end] not in ", ":
                end += 1
            if end == pos:
                raise LineProtocolError(f"line {lineno}: field {key!r} has no value")
            msg.fields[key] = _scalar(line[pos:end], key, lineno)
            pos = end
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        break
    if pos < n:
        if line[pos] != " ":
            raise LineProtocolError(f"line {lineno}: unexpected {line[pos]!r} after the fields")
        ts = line[pos + 1 :].strip()
        if ts:
            if not re.fullmatch(r"-?\d+", ts):
                raise LineProtocolError(f"line {lineno}: invalid timestamp {ts[:40]!r}")
            msg.time = int(ts)
    return msg


def parse(data: bytes | str) -> tuple[list[Message], LineProtocolError | None]:
    """All messages up to the first invalid line, and that line's error (None if all are valid).

    Like upstream, the lines before a bad one are used and the rest of the batch is dropped.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        return [], LineProtocolError(f"not UTF-8 text: {e}")
    out: list[Message] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(parse_line(line, lineno))
        except LineProtocolError as e:
            return out, e
    return out, None


def escape_string(value: str) -> str:
    """A string field value for line protocol (quotes and backslashes escaped, quotes added)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

"""``/frontend/*``: what the web UI calls with its login session (contract §1.3).

* ``GET /frontend/jwt/?username=`` — an API token for a user of the database, signed with
  ``JWT_PRIVATE_KEY`` (``{sub, roles, iat, exp}``, ``exp`` from ``jwts.max-age``). Admins may ask for any
  user (upstream; logged), everybody else only for themselves.
* ``POST /frontend/configuration/`` — store one UI setting of the session's user (value: JSON text).
* ``GET /frontend/logs/`` — admins: the server's journal via ``journalctl`` (``--output=json``), with
  upstream's input checks (``since``/``search`` only ``[a-zA-Z0-9 :.-]``, ``lines`` 1..1000, ``level``
  0..7). The arguments go to ``journalctl`` as a list, never through a shell. Without ``journalctl`` on
  the host (containers, non-systemd systems) the answer is a 503 saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter

from cc_core.api.auth import AuthGroup, admin_session_guard, current_user, group_opt
from cc_core.api.errors import APIError
from cc_core.api.openapi import SESSION_SECURITY, errors, form_body, text_response
from cc_core.api.users import form_value
from cc_core.config import parse_duration

log = logging.getLogger(__name__)

SAFE_PATTERN = re.compile(r"^[a-zA-Z0-9 :\-\.]+$")
JOURNALCTL_TIMEOUT = 20.0
MAX_LINES = 1000


class ConfigurationForm(msgspec.Struct):
    key: str
    value: str


class LogEntry(msgspec.Struct):
    timestamp: str
    priority: int
    message: str
    unit: str


def _signing_key(request: Request[Any, Any, Any]) -> Any:
    from cc_core.auth.jwt_tokens import load_private_key

    state = request.app.state
    key = state.get("jwt_private_key")
    if key is None:
        secret = state["config"].secret("JWT_PRIVATE_KEY")
        if not secret:
            raise APIError(503, "this server cannot sign tokens: JWT_PRIVATE_KEY is not set")
        try:
            key = load_private_key(secret)
        except ValueError as e:
            raise APIError(503, f"this server cannot sign tokens: JWT_PRIVATE_KEY: {e}") from None
        state["jwt_private_key"] = key
    return key


@get(
    "/jwt",
    tags=["Frontend"],
    security=SESSION_SECURITY,
    media_type="text/plain",
    responses=errors(401, 403, 404, 503),
)
async def get_jwt(
    request: Request[Any, Any, Any],
    username: Annotated[str | None, Parameter(description="whose token (default: your own)")] = None,
) -> str:
    """An API token for ``username`` (text/plain)."""
    from cc_core.auth.jwt_tokens import mint

    me = current_user(request)
    target = username if username is not None else me.username
    if not me.has_role("admin") and target != me.username:
        raise PermissionDeniedException("only admins are allowed to sign JWTs not for themselves")
    stored = await request.app.state["services"].db.users.get(target)
    if stored is None:
        raise APIError(404, f"getting user failed: user {target!r} not found")
    key = _signing_key(request)
    if target != me.username:
        log.info("admin %s minted an API token for %s", me.username, target)
    config = request.app.state["config"]
    return mint(key, stored.username, list(stored.roles), max_age_seconds=parse_duration(config.jwts.max_age))


@post(
    "/configuration",
    status_code=200,
    tags=["Frontend"],
    security=SESSION_SECURITY,
    operation_class=form_body(ConfigurationForm, "one UI setting (value: JSON text)"),
    responses=text_response(200, "success") | errors(400, 401, 404),
)
async def update_configuration(request: Request[Any, Any, Any]) -> Response[str]:
    """Store one UI setting of the logged-in user."""
    form = await request.form()
    key, value = form_value(form, "key"), form_value(form, "value")
    await request.app.state["services"].db.user_config.update(current_user(request).username, key, value)
    return Response("success", media_type="text/plain")


def _entry(raw: Any) -> LogEntry | None:
    if not isinstance(raw, dict):
        return None
    priority = 6
    p = raw.get("PRIORITY")
    if (isinstance(p, str) and p.isdigit()) or isinstance(p, int | float):
        priority = int(p)

    def text(key: str) -> str:
        v = raw.get(key)
        return v if isinstance(v, str) else ""

    return LogEntry(
        timestamp=text("__REALTIME_TIMESTAMP"),
        priority=priority,
        message=text("MESSAGE"),
        unit=text("_SYSTEMD_UNIT"),
    )


@get(
    "/logs",
    guards=[admin_session_guard],
    tags=["Frontend"],
    security=SESSION_SECURITY,
    responses=errors(400, 401, 403, 503),
)
async def get_journal_log(
    request: Request[Any, Any, Any],
    since: Annotated[str | None, Parameter(description='journalctl time, default "1 hour ago"')] = None,
    lines: Annotated[str | None, Parameter(description="1..1000 (default 200)")] = None,
    level: Annotated[str | None, Parameter(description="highest priority 0..7")] = None,
    search: Annotated[str | None, Parameter(description="text to grep for")] = None,
) -> list[LogEntry]:
    """The server's systemd journal (admins)."""
    since = since or "1 hour ago"
    if not SAFE_PATTERN.match(since):
        raise APIError(400, "invalid 'since' parameter")
    n = 200
    if lines:
        if not lines.isdigit() or int(lines) < 1:
            raise APIError(400, "invalid 'lines' parameter")
        n = min(int(lines), MAX_LINES)
    unit = request.app.state["config"].main.systemd_unit or "clustercockpit.service"
    args = ["--output=json", "--no-pager", "-n", str(n), "--since", since, "-u", unit]
    if level:
        if not level.isdigit() or not 0 <= int(level) <= 7:
            raise APIError(400, "invalid 'level' parameter (must be 0-7)")
        args += ["--priority", str(int(level))]
    if search:
        if not SAFE_PATTERN.match(search):
            raise APIError(400, "invalid 'search' parameter")
        args += ["--grep", search]
    exe = shutil.which("journalctl")
    if exe is None:
        raise APIError(503, "journalctl is not available on this host (the log view needs systemd's journal)")
    try:
        proc = await asyncio.create_subprocess_exec(
            exe, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError as e:
        raise APIError(503, f"failed to start journalctl: {e}") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), JOURNALCTL_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise APIError(503, "journalctl did not answer in time") from None
    entries: list[LogEntry] = []
    for line in out.splitlines():
        try:
            entry = _entry(msgspec.json.decode(line))
        except msgspec.DecodeError:
            continue
        if entry is not None:
            entries.append(entry)
    return entries


def frontend_router() -> Router:
    return Router(
        path="/frontend",
        route_handlers=[get_jwt, update_configuration, get_journal_log],
        opt=group_opt(AuthGroup.FRONTEND),
    )

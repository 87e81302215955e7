"""Admin settings endpoints under ``/config/`` besides users (contract §1.3): the notice and the taggers.

``POST /config/notice/`` writes ``var/notice.txt`` next to the config (upstream: ``./var`` of the working
directory), atomically, at most 10,000 characters.

Taggers: ``GET /config/taggers/`` lists the taggers registered through the ``register_taggers`` hook with
the event they run on; ``POST /config/taggers/run/`` starts one over all finished jobs in the background
through the tagger service (``context.services["taggers"]``, `cc_core.taggers.service.TaggerService`);
a server built without one answers 503 — never a pretended success.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, Router, get, post

from cc_core.api.auth import AuthGroup, group_opt
from cc_core.api.errors import APIError
from cc_core.api.openapi import SESSION_SECURITY, errors, form_body, text_response
from cc_core.api.users import _require_admin, form_value

MAX_NOTICE = 10_000


class NoticeForm(msgspec.Struct, rename="kebab"):
    new_content: str = ""


class RunTaggerForm(msgspec.Struct):
    name: str


class TaggerInfo(msgspec.Struct):
    name: str
    type: str
    running: bool


def notice_path(config: Any) -> Path:
    return Path(config.base_dir) / "var" / "notice.txt"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".notice-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@post(
    "/config/notice",
    status_code=200,
    tags=["Config"],
    security=SESSION_SECURITY,
    operation_class=form_body(NoticeForm, "the new notice (empty: no notice)"),
    responses=text_response(200, "Update Notice Content Success") | errors(400, 401, 403, 500),
)
async def edit_notice(request: Request[Any, Any, Any]) -> Response[str]:
    """Set the notice shown on the start page."""
    _require_admin(request, "update the notice.txt file")
    content = form_value(await request.form(), "new-content")
    if len(content) > MAX_NOTICE:
        raise APIError(400, f"notice content exceeds maximum length of {MAX_NOTICE} characters")
    try:
        await anyio.to_thread.run_sync(_write, notice_path(request.app.state["config"]), content)
    except (OSError, UnicodeError) as e:
        raise APIError(500, f"writing to notice file failed: {e}") from None
    msg = "Update Notice Content Success" if content else "Empty Notice Content Success"
    return Response(msg, media_type="text/plain")


def _tagger_service(request: Request[Any, Any, Any]) -> Any:
    return request.app.state["context"].services.get("taggers")


@get("/config/taggers", tags=["Config"], security=SESSION_SECURITY, responses=errors(401, 403))
async def get_taggers(request: Request[Any, Any, Any]) -> list[TaggerInfo]:
    """The registered taggers: name, event (``start``/``stop``) and whether a run is in progress."""
    _require_admin(request, "list taggers")
    registry = request.app.state["registry"]
    service = _tagger_service(request)
    out = []
    for kind, cls in sorted(registry.classes("tagger").items()):
        running = bool(service.is_running(kind)) if service is not None else False
        out.append(TaggerInfo(name=kind, type=str(getattr(cls, "event", "")), running=running))
    return out


@post(
    "/config/taggers/run",
    status_code=200,
    tags=["Config"],
    security=SESSION_SECURITY,
    operation_class=form_body(RunTaggerForm, "the tagger to run"),
    responses=text_response(200, "Tagger <name> started") | errors(400, 401, 403, 409, 503),
)
async def run_tagger(request: Request[Any, Any, Any]) -> Response[str]:
    """Run a tagger over all finished jobs in the background (409: unknown or already running)."""
    _require_admin(request, "run taggers")
    name = form_value(await request.form(), "name")
    if not name:
        raise APIError(400, "missing required parameter: name")
    if name not in request.app.state["registry"].classes("tagger"):
        raise APIError(409, f"unknown tagger {name!r}")
    service = _tagger_service(request)
    if service is None:
        raise APIError(503, "running taggers is not available yet in this version (no tagger service)")
    if service.is_running(name):
        raise APIError(409, f"tagger {name!r} is already running")
    service.start(name)
    return Response(f"Tagger {name} started", media_type="text/plain")


def config_router() -> Router:
    return Router(
        path="/", route_handlers=[edit_notice, get_taggers, run_tagger], opt=group_opt(AuthGroup.CONFIG)
    )

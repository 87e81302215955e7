"""Upstream's error body, `{"status": "<HTTP status text>", "error": "<message>"}`, on every API path.

Paths under the API prefixes answer JSON; other paths answer an HTML page. Unexpected exceptions are
logged with their traceback and answered with a generic 500 body: no traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/userapi/", "/frontend/", "/config/")


class APIError(HTTPException):
    """Raise from a handler to answer ``{"status", "error"}`` with ``status_code``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(detail=message, status_code=status_code)


def is_api_path(path: str) -> bool:
    # "/config" itself is the settings page (HTML, login form when anonymous); "/config/…" is the API.
    return path.startswith(API_PREFIXES) or path in ("/api", "/userapi", "/frontend")


def error_body(status_code: int, message: str) -> dict[str, str]:
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = str(status_code)
    return {"status": phrase, "error": message}


def _message(exc: HTTPException) -> str:
    detail = str(exc.detail) if exc.detail else HTTPStatus(exc.status_code).phrase
    if isinstance(exc, ValidationException) and exc.extra:
        parts = []
        for item in exc.extra if isinstance(exc.extra, list) else [exc.extra]:
            if isinstance(item, dict):
                key = item.get("key") or item.get("source") or ""
                parts.append(f"{key}: {item.get('message', '')}".strip(": "))
            else:
                parts.append(str(item))
        if parts:
            detail = f"{detail}: {'; '.join(parts)}"
    return detail


def _html(status_code: int, message: str, request: Request[Any, Any, Any]) -> Response[Any]:
    from litestar.response import Template

    try:
        return Template(  # type: ignore[return-value]
            "error.html",
            context={
                "status_code": status_code,
                "status": HTTPStatus(status_code).phrase,
                "message": message,
            },
            status_code=status_code,
        )
    except Exception:  # no template engine configured: plain text is still an answer
        return Response(content=message, status_code=status_code, media_type=MediaType.TEXT)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, NotFoundException) and is_api_path(request.url.path):
        # Upstream's exact body for unknown API endpoints.
        body = {"status": "Resource not found", "error": "the requested endpoint does not exist"}
        if exc.detail and exc.detail != "Not Found":
            body = error_body(404, str(exc.detail))
        return Response(content=body, status_code=404, media_type=MediaType.JSON, headers=exc.headers)
    message = _message(exc)
    if (
        status == 401
        and not is_api_path(request.url.path)
        and request.url.path != "/query"
        and _wants_html(request)
    ):
        # A page needs a login: upstream answers 401 with the login form, which comes back here.
        from cc_core.api.login import login_page

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return login_page(request, message=message, msg_type="alert-danger", status_code=401, redirect=target)  # type: ignore[return-value]
    if is_api_path(request.url.path) or request.url.path == "/query" or not _wants_html(request):
        return Response(
            content=error_body(status, message),
            status_code=status,
            media_type=MediaType.JSON,
            headers=exc.headers,
        )
    return _html(status, message, request)


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in request.headers.get("accept", "") or request.method == "GET"


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    message = "internal server error (details are in the server log)"
    if is_api_path(request.url.path) or not _wants_html(request):
        return Response(content=error_body(500, message), status_code=500, media_type=MediaType.JSON)
    return _html(500, message, request)


def db_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """`cc_core.db.DBError` (and any exception with an HTTP ``status_code``, such as metric-data errors)
    → that status with the error body; the messages are written for clients. Server-side problems
    (status ≥ 500) are logged with their traceback and answered generically."""
    status = getattr(exc, "status_code", 500)
    if not isinstance(status, int) or not 400 <= status <= 599:
        status = 500
    if status >= 500:
        return internal_error_handler(request, exc)
    return http_exception_handler(
        request, HTTPException(detail=str(exc) or HTTPStatus(status).phrase, status_code=status)
    )

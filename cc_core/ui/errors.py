"""The error page of the UI's controllers: 403 for a page the visitor's roles do not open, 404 for
something that is not there (contract §6.2: pages beyond a role answer 403)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from cc_core.auth.user import User
from cc_core.ui.base import render

_STATUS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}


def error_page(request: Request[Any, Any, Any], status: int, message: str) -> Template:
    return render(
        request,
        "error.html",
        title=str(status),
        status_code=status,
        status=_STATUS.get(status, "Error"),
        message=message,
    )


def role_denied(request: Request[Any, Any, Any], user: User, *roles: str) -> Template | None:
    """A 403 page unless ``user`` has one of ``roles``."""
    if user.has_any_role(*roles):
        return None
    return error_page(request, 403, f"this page needs one of the roles {', '.join(roles)}")

"""Login, logout and the public pages (contract §1.5): ``/login``, ``/jwt-login``, ``/logout``, ``/imprint``,
``/privacy``.

``POST /login`` (form ``username``, ``password``, ``redirect``) and ``GET|POST /jwt-login``
(``?login-token=`` or ``Authorization: Bearer``, or the cross-login cookie) both run
`cc_core.auth.service.LoginService.login`. Success sets the signed ``session`` cookie and answers 302 to
``redirect`` when it is a same-site relative path (anything else, including ``//host`` and
``https://…``, goes to ``/``); failure and the rate limit answer 401 with the login page and the reason.
``POST /logout`` expires the cookie and shows the login page with "Logout successful".

The rate limit is per (client address, username); the client address is the socket peer, or the
forwarded address only when the peer is one of ``main.trusted-proxies`` (`client_address`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import HttpMethod, MediaType, Request, Response, Router, get, post, route
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Template

from cc_core.api.auth import AuthGroup, group_opt, session_user
from cc_core.api.security import client_address, is_https
from cc_core.api.users import form_value
from cc_core.auth.errors import LoginError
from cc_core.auth.jwt_login import DELETE_COOKIES_STATE
from cc_core.auth.ratelimit import safe_redirect_target
from cc_core.auth.service import LoginService
from cc_core.auth.user import User

log = logging.getLogger(__name__)


class LoginForm(msgspec.Struct):
    username: str
    password: str
    redirect: str = ""


def login_page(
    request: Request[Any, Any, Any],
    *,
    message: str = "",
    msg_type: str = "alert-warning",
    status_code: int = 200,
    redirect: str = "",
    title: str = "Login",
    cookies: list[Cookie] | None = None,
) -> Template:
    """The login page; ``redirect`` is put in the form only when it is a safe relative path."""
    service: LoginService | None = request.app.state.get("login")
    return Template(
        "login.html",
        context={
            "title": title,
            "message": message,
            "msg_type": msg_type,
            "redirect": safe_redirect_target(redirect, default=""),
            "auth_disabled": bool(service and service.disabled),
            "login_buttons": request.app.state.get("login_buttons", ()),
        },
        status_code=status_code,
        media_type=MediaType.HTML,
        cookies=cookies or [],
    )


def _service(request: Request[Any, Any, Any]) -> LoginService:
    return request.app.state["login"]  # type: ignore[no-any-return]


def session_cookie(request: Request[Any, Any, Any], service: LoginService, user: User) -> Cookie:
    """The signed ``session`` cookie for ``user`` (every login mechanism, plugins' included, sets this)."""
    secure = is_https(request.scope, request.app.state["config"].main.trusted_proxies)
    return Cookie(
        key=service.cookie_name,
        value=service.cookie_value(user),
        max_age=service.max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def expired_cookie(name: str, secure: bool = False) -> Cookie:
    """A cookie that deletes ``name`` (same path and flags as when it was set)."""
    return Cookie(
        key=name, value="", max_age=0, expires=0, path="/", httponly=True, samesite="lax", secure=secure
    )


@get("/login", media_type=MediaType.HTML, include_in_schema=False)
async def get_login(
    request: Request[Any, Any, Any], redirect: Annotated[str | None, Parameter(query="redirect")] = None
) -> Template:
    """The login form."""
    return login_page(request, redirect=redirect or "")


async def _do_login(request: Request[Any, Any, Any]) -> Response[Any]:
    service = _service(request)
    form = await request.form() if request.method == "POST" else {}
    username = form_value(form, "username") or str(request.query_params.get("username") or "")
    password = form_value(form, "password")
    redirect = form_value(form, "redirect") or str(request.query_params.get("redirect") or "")
    if service.disabled:
        return Response(b"", status_code=302, headers={"location": safe_redirect_target(redirect)})
    client = client_address(request.scope, request.app.state["config"].main.trusted_proxies)
    try:
        user = await service.login(request, username, password, client)
    except LoginError as e:
        log.info("login failed for %r from %s: %s", username, client, e)
        return login_page(request, message=str(e), status_code=401, redirect=redirect, title="Login failed")
    except Exception:  # a login backend failed (e.g. LDAP unreachable): say so, never a traceback
        log.exception("login of %r from %s: an authenticator failed", username, client)
        return login_page(
            request,
            message="the login service is unavailable, try again later",
            status_code=503,
            redirect=redirect,
            title="Login failed",
        )
    cookies = [session_cookie(request, service, user)]
    for name in request.state.get(DELETE_COOKIES_STATE) or ():
        cookies.append(expired_cookie(name))
    return Response(
        b"", status_code=302, headers={"location": safe_redirect_target(redirect)}, cookies=cookies
    )


@post("/login", status_code=302, include_in_schema=False)
async def post_login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Log in with the form's username and password (or a login token)."""
    return await _do_login(request)


@route("/jwt-login", http_method=[HttpMethod.GET, HttpMethod.POST], status_code=302, include_in_schema=False)
async def jwt_login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Log in with a cross-login token (``?login-token=``, ``Authorization``, or the JWT cookie)."""
    return await _do_login(request)


@post("/logout", status_code=200, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Template:
    """End the session: the cookie expires, the login page says so."""
    cookies = []
    if session_user(request) is not None or "session" in request.cookies:
        secure = is_https(request.scope, request.app.state["config"].main.trusted_proxies)
        cookies.append(expired_cookie(_service(request).cookie_name, secure))
    return login_page(
        request, message="Logout successful", msg_type="alert-info", title="Bye", cookies=cookies
    )


@get("/imprint", media_type=MediaType.HTML, include_in_schema=False)
async def imprint() -> Template:
    """The site's imprint (override the ``imprint.html`` template with a plugin's template directory)."""
    return Template("imprint.html", context={"title": "Imprint"})


@get("/privacy", media_type=MediaType.HTML, include_in_schema=False)
async def privacy() -> Template:
    """The site's privacy statement (override ``privacy.html`` like the imprint)."""
    return Template("privacy.html", context={"title": "Privacy"})


def login_router() -> Router:
    return Router(
        path="/",
        route_handlers=[get_login, post_login, jwt_login, logout, imprint, privacy],
        opt=group_opt(AuthGroup.PUBLIC),
    )

"""``GET /oidc-login`` and ``GET /oidc-callback`` (contract §1.5, §6.3), and the login page's button.

``/oidc-login`` makes a fresh ``state``, PKCE verifier and ``nonce``, keeps them in short-lived cookies
(1 h, HttpOnly, SameSite=Lax, Secure over HTTPS; as upstream) and sends the browser to the provider.
``/oidc-callback`` checks that the provider's ``state`` is this browser's, exchanges the code with the
verifier, verifies the ID token against the nonce cookie, sets the same signed ``session`` cookie as the
password login (`cc_core.api.login.session_cookie`), deletes the flow cookies and answers 307 to the
page the login started from (a relative path only) or ``/``.

Every failure renders the login page with the reason instead of a 500: a refused attempt (forged or
missing state, reused code, wrong nonce, expired or foreign ID token, the user cancelled at the
provider) is a 4xx; a provider that cannot be reached is a 503 and a logged warning.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated, Any
from urllib.parse import quote, unquote

from litestar import Request, Response, get
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import Parameter

from cc_auth_oidc.provider import LoginRefused, ProviderUnavailable
from cc_core.api.auth import AuthGroup, group_opt
from cc_core.api.login import expired_cookie, login_page, session_cookie
from cc_core.api.security import is_https
from cc_core.auth.errors import LoginError
from cc_core.auth.ratelimit import safe_redirect_target

log = logging.getLogger(__name__)

STATE_COOKIE = "oidc_state"
VERIFIER_COOKIE = "oidc_verifier"
NONCE_COOKIE = "oidc_nonce"
REDIRECT_COOKIE = "oidc_redirect"
FLOW_COOKIES = (STATE_COOKIE, VERIFIER_COOKIE, NONCE_COOKIE, REDIRECT_COOKIE)
FLOW_MAX_AGE = 3600
CALLBACK_PATH = "/oidc-callback"
UNAVAILABLE = "the identity provider is unavailable, try again later"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _authenticator(request: Request[Any, Any, Any]) -> Any:
    service = request.app.state.get("login")
    for a in getattr(service, "authenticators", ()):
        if getattr(a, "kind", None) == "oidc":
            return a
    return None


def _secure(request: Request[Any, Any, Any]) -> bool:
    return is_https(request.scope, request.app.state["config"].main.trusted_proxies)


def callback_url(request: Request[Any, Any, Any]) -> str:
    """``<scheme>://<Host>/oidc-callback`` as upstream builds it (register this URL at the provider)."""
    host = request.headers.get("host") or request.url.netloc
    return f"{'https' if _secure(request) else 'http'}://{host}{CALLBACK_PATH}"


def _flow_cookie(request: Request[Any, Any, Any], name: str, value: str) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        max_age=FLOW_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _clear_flow(request: Request[Any, Any, Any]) -> list[Cookie]:
    secure = _secure(request)
    return [expired_cookie(name, secure) for name in FLOW_COOKIES if name in request.cookies]


def _refused(request: Request[Any, Any, Any], message: str, status_code: int = 400) -> Any:
    return login_page(
        request, message=message, status_code=status_code, title="Login failed", cookies=_clear_flow(request)
    )


def _no_redirect_needed(request: Request[Any, Any, Any]) -> Response[Any] | None:
    service = request.app.state.get("login")
    if service is not None and service.disabled:
        return Response(b"", status_code=302, headers={"location": "/"})
    return None


@get("/oidc-login", include_in_schema=False, opt=group_opt(AuthGroup.PUBLIC))
async def oidc_login(
    request: Request[Any, Any, Any], redirect: Annotated[str | None, Parameter(query="redirect")] = None
) -> Any:
    """Start an OpenID Connect login: flow cookies, then 302 to the provider."""
    if (early := _no_redirect_needed(request)) is not None:
        return early
    authenticator = _authenticator(request)
    if authenticator is None:
        raise NotFoundException()
    try:
        auth = await authenticator.start(callback_url(request))
    except ProviderUnavailable as e:
        log.warning("OIDC login: the provider %s is unavailable: %s", authenticator.provider.issuer, e)
        return login_page(request, message=UNAVAILABLE, status_code=503, title="Login failed")
    except Exception:  # never a traceback page: say the login is unavailable, keep the details in the log
        log.exception("OIDC login: starting the login failed")
        return login_page(request, message=UNAVAILABLE, status_code=503, title="Login failed")
    cookies = [
        _flow_cookie(request, STATE_COOKIE, auth.state),
        _flow_cookie(request, VERIFIER_COOKIE, auth.verifier),
        _flow_cookie(request, NONCE_COOKIE, auth.nonce),
    ]
    target = safe_redirect_target(redirect or "", default="")
    if target:
        cookies.append(_flow_cookie(request, REDIRECT_COOKIE, quote(target, safe="/")))
    elif REDIRECT_COOKIE in request.cookies:
        cookies.append(expired_cookie(REDIRECT_COOKIE, _secure(request)))
    return Response(b"", status_code=302, headers={"location": auth.url}, cookies=cookies)


@get(CALLBACK_PATH, include_in_schema=False, opt=group_opt(AuthGroup.PUBLIC))
async def oidc_callback(request: Request[Any, Any, Any]) -> Any:
    """The provider's redirect back: verify everything, then set the session and 307 onwards."""
    if (early := _no_redirect_needed(request)) is not None:
        return early
    authenticator = _authenticator(request)
    if authenticator is None:
        raise NotFoundException()
    query = request.query_params
    error = str(query.get("error") or "")
    if error:
        code_text = error if _ERROR_CODE.match(error) else "error"
        status = 401 if error == "access_denied" else 400
        return _refused(request, f"the identity provider did not log you in ({code_text})", status)
    state = str(query.get("state") or "")
    expected = request.cookies.get(STATE_COOKIE) or ""
    verifier = request.cookies.get(VERIFIER_COOKIE) or ""
    nonce = request.cookies.get(NONCE_COOKIE) or ""
    if not expected or not verifier or not nonce:
        return _refused(
            request,
            "no OpenID Connect login was started in this browser, or it has expired; start the login again",
        )
    if not state or not hmac.compare_digest(state.encode(), expected.encode()):
        log.warning("OIDC callback with a state that is not this browser's (forged or stale)")
        return _refused(request, "the login response does not belong to this login attempt (state mismatch)")
    code = str(query.get("code") or "")
    if not code:
        return _refused(request, "the identity provider sent no authorization code")
    try:
        user = await authenticator.complete(code, callback_url(request), verifier, nonce)
    except (LoginRefused, LoginError) as e:
        log.info("OIDC login refused: %s", e)
        return _refused(request, str(e), 401 if isinstance(e, LoginError) else 400)
    except ProviderUnavailable as e:
        log.warning("OIDC callback: the provider %s is unavailable: %s", authenticator.provider.issuer, e)
        return _refused(request, UNAVAILABLE, 503)
    except Exception:  # as in the password login: a failing backend is a 503 with the reason logged
        log.exception("OIDC callback: finishing the login failed")
        return _refused(request, UNAVAILABLE, 503)
    service = request.app.state["login"]
    target = safe_redirect_target(unquote(request.cookies.get(REDIRECT_COOKIE) or ""))
    log.info("login: %s via oidc (roles %s)", user.username, ",".join(user.roles))
    cookies = [session_cookie(request, service, user), *_clear_flow(request)]
    return Response(b"", status_code=307, headers={"location": target}, cookies=cookies)

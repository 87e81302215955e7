"""The lean ``POST /api/write`` path (`cc_metric_ccms.fastwrite`): it answers accepted bodies itself and
leaves every refusal — 401, 403, 413, 400, a query it does not know — to the regular route, so the
answers are the API's usual ones. Each test also checks which of the two paths answered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cc_core.testing.fastpath import RouteCounter, answered_by
from cc_core.testing.metric_contract import CLUSTER, make_cluster
from cc_core.testing.site import make_site

from .conftest import App, open_app

T0 = 1_700_000_040
MAX_BODY = 20_000


def _lines(host: str, n: int, *, t0: int = T0) -> bytes:
    return "\n".join(f"cpu_load,hostname={host} value={k % 7} {t0 + 60 * k}" for k in range(n)).encode()


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, RouteCounter]]:
    root: Path = tmp_path_factory.mktemp("fastwrite")
    site = make_site(root / "site", [make_cluster()], config={"main": {"max-body-size": MAX_BODY}})
    with open_app(site) as client:
        from cc_metric_ccms.fastwrite import FastWrite

        counter = RouteCounter.install(client.app)
        assert isinstance(client.app.asgi_handler.routes[("POST", "/api/write")], FastWrite)
        yield App(client, site), counter


def _stored(app: App, host: str) -> int:
    r = app.client.get("/api/debug", params={"selector": f"{CLUSTER}:{host}"}, headers=app.auth())
    return 0 if r.status_code != 200 else r.json()["data"]["cpu_load"][0]["len"]


def test_accepted_bodies_are_answered_by_the_fast_path_like_the_route(fast: tuple[App, RouteCounter]) -> None:
    app, counter = fast
    c = app.client
    url = f"/api/write?cluster={CLUSTER}"
    r_fast = answered_by(counter, False, lambda: c.post(url, content=_lines("f1", 5), headers=app.auth()))
    assert r_fast.status_code == 200 and r_fast.content == b""
    assert _stored(app, "f1") == 5
    # A query parameter the fast path does not know: the route answers (and ignores it).
    r_route = answered_by(
        counter, True, lambda: c.post(url + "&x=1", content=_lines("f2", 5), headers=app.auth())
    )
    assert r_route.status_code == 200 and _stored(app, "f2") == 5
    skip = {"date"}
    assert {k: v for k, v in r_fast.headers.items() if k not in skip} == {
        k: v for k, v in r_route.headers.items() if k not in skip
    }, "same status, content type, length and security headers on both paths"
    # Every role combination the group rule accepts, with either token header.
    token = app.site.token(("admin", "api"))
    r = answered_by(
        counter, False, lambda: c.post(url, content=_lines("f3", 2), headers={"X-Auth-Token": token})
    )
    assert r.status_code == 200 and _stored(app, "f3") == 2
    r = answered_by(
        counter,
        False,
        lambda: c.post(
            f"/api/write/?cluster={CLUSTER}", content=_lines("f4", 2), headers=app.auth(("user", "api"))
        ),
    )
    assert r.status_code == 200 and _stored(app, "f4") == 2


def test_refused_tokens_get_the_routes_401_and_403(fast: tuple[App, RouteCounter]) -> None:
    app, counter = fast
    c = app.client
    url = f"/api/write?cluster={CLUSTER}"
    r = answered_by(counter, True, lambda: c.post(url, content=_lines("a1", 2)))
    assert r.status_code == 401 and set(r.json()) == {"status", "error"}
    r = answered_by(
        counter,
        True,
        lambda: c.post(url, content=_lines("a1", 2), headers={"Authorization": "Bearer not.a.token"}),
    )
    assert r.status_code == 401 and set(r.json()) == {"status", "error"}
    for roles in (("support", "api"), ("user",), ("admin",)):
        r = answered_by(
            counter, True, lambda roles=roles: c.post(url, content=_lines("a1", 2), headers=app.auth(roles))
        )
        assert r.status_code == 403, roles
        assert r.json()["status"] == "Forbidden"
    assert _stored(app, "a1") == 0


def test_bodies_over_the_limit_get_413(fast: tuple[App, RouteCounter]) -> None:
    app, counter = fast
    c = app.client
    url = f"/api/write?cluster={CLUSTER}"
    big = _lines("b1", 1000)
    assert len(big) > MAX_BODY
    r = answered_by(counter, True, lambda: c.post(url, content=big, headers=app.auth()))
    assert r.status_code == 413 and set(r.json()) == {"status", "error"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size counts
        for k in range(0, len(big), 4096):
            yield big[k : k + 4096]

    r = answered_by(counter, True, lambda: c.post(url, content=chunks(), headers=app.auth()))
    assert r.status_code == 413
    assert _stored(app, "b1") == 0
    r = answered_by(counter, False, lambda: c.post(url, content=_lines("b1", 100), headers=app.auth()))
    assert r.status_code == 200 and _stored(app, "b1") == 100


def test_a_bad_line_gets_the_routes_400_and_stores_nothing(fast: tuple[App, RouteCounter]) -> None:
    app, counter = fast
    c = app.client
    body = _lines("c1", 5) + b"\ncpu_load,hostname=c1 value=1.5.5 1700001000\n"
    r = answered_by(
        counter, True, lambda: c.post(f"/api/write?cluster={CLUSTER}", content=body, headers=app.auth())
    )
    assert r.status_code == 400
    assert r.json() == {"status": "Bad Request", "error": r.json()["error"]}
    assert r.json()["error"].startswith("line 6:")
    assert _stored(app, "c1") == 0
    r = answered_by(counter, True, lambda: c.post("/api/write", content=_lines("c1", 2), headers=app.auth()))
    assert r.status_code == 400 and "no default cluster" in r.json()["error"]


def test_cross_site_and_cors_requests_take_the_regular_path(fast: tuple[App, RouteCounter]) -> None:
    app, counter = fast
    c = app.client
    url = f"/api/write?cluster={CLUSTER}"
    r = answered_by(
        counter,
        True,
        lambda: c.post(url, content=_lines("d1", 2), headers={**app.auth(), "Sec-Fetch-Site": "cross-site"}),
    )
    assert r.status_code == 403 and _stored(app, "d1") == 0
    r = answered_by(
        counter,
        True,
        lambda: c.post(url, content=_lines("d1", 2), headers={**app.auth(), "Origin": "https://example.org"}),
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_the_fast_path_applies_the_group_the_route_is_in(fast: tuple[App, RouteCounter]) -> None:
    """The fast path checks `AuthGroup.METRIC_STORE`; that must stay the group of the route itself."""
    from types import SimpleNamespace

    from cc_core.api.auth import AuthGroup, route_group

    app, _ = fast
    routes = [r for r in app.client.app.routes if r.path in ("/api/write", "/api/write/")]
    assert routes  # Litestar may merge the two paths into one route
    for route in routes:
        for handler in route.route_handlers:
            conn = SimpleNamespace(scope={"path_template": route.path})
            assert route_group(conn, handler) is AuthGroup.METRIC_STORE  # type: ignore[arg-type]

"""``POST /query`` over HTTP inside the real application (security middleware, error handlers, API tokens),
and GraphiQL only in development mode, loading nothing from outside the server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from cc_core.app import create_app
from cc_core.auth.jwt_tokens import load_private_key, mint
from cc_core.cli.keys import generate_keypair
from cc_core.config import load_config
from cc_core.graphql import GraphQLServices, graphql_router
from cc_core.graphql.router import GRAPHIQL_ASSETS, graphiql_page
from cc_core.hookspecs import hookimpl
from cc_core.plugins import make_plugin_manager
from cc_core.web import Contribution

from .conftest import FakeJobs, make_job

PUB, PRIV = generate_keypair()


class _GraphQLPlugin:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw

    @hookimpl
    def litestar_plugins(self, context):  # type: ignore[no-untyped-def]
        # Mounted beside the app's own /query, so these tests choose their services and limits.
        return [Contribution(route_handlers=[graphql_router(path="/t", **self.kw)])]


def _client(tmp_path: Path, **router_kw: Any) -> TestClient[Any]:
    (tmp_path / "config.json").write_text(json.dumps({"main": {}, "auth": {"jwts": {"max-age": "1h"}}}))
    cfg = load_config(
        tmp_path / "config.json",
        environ={"JWT_PUBLIC_KEY": PUB, "JWT_PRIVATE_KEY": PRIV, "SESSION_KEY": "k" * 32},
    )
    registry = make_plugin_manager(environ={}, extra_plugins=[_GraphQLPlugin(**router_kw)])
    return TestClient(create_app(cfg, registry=registry), raise_server_exceptions=False)


def _token(roles: list[str]) -> str:
    return mint(load_private_key(PRIV), "alice", roles, max_age_seconds=3600)


def _post(c: TestClient[Any], body: Any, token: str | None = None, **headers: str) -> Any:
    h = {"content-type": "application/json", **headers}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return c.post("/t/query", content=body if isinstance(body, bytes) else json.dumps(body), headers=h)


def test_query_with_api_token(tmp_path: Path) -> None:
    services = GraphQLServices(jobs=FakeJobs(make_job()))
    with _client(tmp_path, services=services) as c:
        r = _post(
            c,
            {"query": "query J($id: ID!) { job(id: $id) { jobId user } }", "variables": {"id": "7"}},
            _token(["user"]),
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"data": {"job": {"jobId": 1234, "user": "alice"}}}
        assert r.headers["x-content-type-options"] == "nosniff"  # the app's middleware applies


def test_authentication_is_required(tmp_path: Path) -> None:
    with _client(tmp_path) as c:
        r = _post(c, {"query": "{ tags { id } }"})
        assert r.status_code == 401
        assert r.json()["status"] == "Unauthorized"
        r = _post(c, {"query": "{ tags { id } }"}, "not-a-token")
        assert r.status_code == 401


def test_post_only_json_only_and_bad_bodies(tmp_path: Path) -> None:
    tok = _token(["user"])
    with _client(tmp_path) as c:
        r = c.get("/t/query", params={"query": "{ tags { id } }"}, headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 405
        r = c.post(
            "/t/query",
            content="query={tags{id}}",
            headers={"Authorization": f"Bearer {tok}", "content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415
        assert "application/json" in r.json()["errors"][0]["message"]
        r = _post(c, b"{not json", tok)
        assert r.status_code == 400
        assert r.json()["errors"][0]["message"].startswith("json request body could not be decoded")
        r = _post(c, {"query": "{ clusters { name"}, tok)
        assert r.status_code == 422
        assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


def test_cross_site_post_is_blocked(tmp_path: Path) -> None:
    with _client(tmp_path) as c:
        r = _post(c, {"query": "{ tags { id } }"}, _token(["user"]), **{"sec-fetch-site": "cross-site"})
        assert r.status_code == 403


@pytest.mark.parametrize("dev", [False, True])
def test_graphiql_only_in_dev_mode(tmp_path: Path, dev: bool) -> None:
    with _client(tmp_path, dev=dev) as c:
        r = c.get("/t/playground")
        assert r.status_code == (200 if dev else 404)
        if dev:
            assert "GraphiQL" in r.text


def test_graphiql_page_loads_only_local_assets() -> None:
    page = graphiql_page()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == sorted(GRAPHIQL_ASSETS)
    assert all(u.startswith("/static/vendor/graphiql/") for u in urls)
    assert "http://" not in page and "https://" not in page
    assert '"/query"' in page

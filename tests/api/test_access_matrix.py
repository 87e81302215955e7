"""Every endpoint × every role (contract §1.1): who gets in, and what everybody else gets.

Roles: anonymous (no credential), api, user, manager, support, admin, admin+api. Each endpoint is
called with the credential its route group accepts — an API token for ``/api``, ``/userapi`` and the
metric store, a login session for ``/config`` and ``/frontend``, either for pages and ``/query`` — and
must answer 401 without a credential, 403 with one that lacks the roles, and its own answer (a fixed
status, or a set where the answer depends on what an earlier role did) to the roles it admits.
A second test checks that the wrong *kind* of credential never opens a group (a session on ``/api``, a
token on ``/config``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROLES, ApiSite, make_server, start_payload

ALL_ROLES = ["anonymous", *ROLES]

# Which roles each kind of route admits (contract §1.1 and the handlers' own admin checks).
ADMITS: dict[str, set[str]] = {
    "api": {"api", "admin+api"},
    "api-admin": {"admin+api"},
    "userapi": {"api", "admin+api"},
    "metricstore": {"api", "admin+api"},
    "config": {"admin", "admin+api"},
    "frontend": {"api", "user", "manager", "support", "admin", "admin+api"},
    "frontend-admin": {"admin", "admin+api"},
    "secured": {"api", "user", "manager", "support", "admin", "admin+api"},
    "secured-token": {"api", "user", "manager", "support", "admin", "admin+api"},
    "public": {"anonymous", *ROLES},
}
TOKEN_KINDS = {"api", "api-admin", "userapi", "metricstore", "secured-token"}

Req = Callable[[str, "Ctx"], tuple[str, str, dict[str, Any]]]


@dataclass
class Ctx:
    job: int  # a running job's db id
    job_id: int  # its scheduler jobId


@dataclass(frozen=True)
class Case:
    kind: str
    ok: frozenset[int]
    make: Req
    name: str


def case(name: str, kind: str, ok: int | set[int], make: Req) -> Case:
    return Case(kind, frozenset({ok} if isinstance(ok, int) else ok), make, name)


_n = iter(range(10_000, 100_000))


def _start(method: str) -> Req:
    return lambda role, ctx: (method, "/api/jobs/start_job/", {"json": start_payload(job_id=next(_n))})


CASES: list[Case] = [
    # ---- /api (token, role api alone or admin+api)
    case("start_job POST", "api", 201, _start("POST")),
    case("start_job PUT", "api", 201, _start("PUT")),
    case(
        "stop_job POST",
        "api",
        404,
        lambda r, c: ("POST", "/api/jobs/stop_job/", {"json": {"jobId": 99999, "stopTime": 1}}),
    ),
    case(
        "stop_job PUT",
        "api",
        404,
        lambda r, c: ("PUT", "/api/jobs/stop_job/", {"json": {"jobId": 99999, "stopTime": 1}}),
    ),
    case("jobs list", "api", 200, lambda r, c: ("GET", "/api/jobs/", {"params": {"state": "running"}})),
    case("job by id", "api", 200, lambda r, c: ("GET", f"/api/jobs/{c.job}", {})),
    case(
        "job metrics by list",
        "api",
        {200, 422, 503},
        lambda r, c: ("POST", f"/api/jobs/{c.job}", {"json": ["cpu_load"]}),
    ),
    case("job metrics (graphql)", "api", 200, lambda r, c: ("GET", f"/api/jobs/metrics/{c.job}", {})),
    case("used_nodes", "api", 200, lambda r, c: ("GET", "/api/jobs/used_nodes", {"params": {"ts": 1}})),
    case(
        "tag_job POST",
        "api",
        200,
        lambda r, c: ("POST", f"/api/jobs/tag_job/{c.job}", {"json": [{"type": "m", "name": "x"}]}),
    ),
    case(
        "tag_job PATCH",
        "api",
        200,
        lambda r, c: ("PATCH", f"/api/jobs/tag_job/{c.job}", {"json": [{"type": "m", "name": "y"}]}),
    ),
    case(
        "tag_job DELETE",
        "api",
        {200, 404},
        lambda r, c: (
            "DELETE",
            f"/api/jobs/tag_job/{c.job}",
            {"json": [{"type": "m", "name": "x", "scope": "global"}]},
        ),
    ),
    case(
        "tags DELETE",
        "api",
        200,
        lambda r, c: ("DELETE", "/api/tags/", {"json": [{"type": "z", "name": "z", "scope": "global"}]}),
    ),
    case(
        "edit_meta by id",
        "api",
        200,
        lambda r, c: ("PATCH", f"/api/jobs/edit_meta/{c.job}", {"json": {"key": "k", "value": r}}),
    ),
    case(
        "edit_meta by key",
        "api",
        200,
        lambda r, c: (
            "PATCH",
            "/api/jobs/edit_meta/",
            {"json": {"jobId": c.job_id, "payload": {"key": "k", "value": r}}},
        ),
    ),
    case("delete_job by id", "api", 422, lambda r, c: ("DELETE", "/api/jobs/delete_job/999999", {})),
    case(
        "delete_job by key",
        "api",
        422,
        lambda r, c: ("DELETE", "/api/jobs/delete_job/", {"json": {"jobId": 999999}}),
    ),
    case("delete_job_before", "api", 200, lambda r, c: ("DELETE", "/api/jobs/delete_job_before/1", {})),
    case("clusters", "api", 200, lambda r, c: ("GET", "/api/clusters/", {})),
    case("machine_state GET", "api", 200, lambda r, c: ("GET", "/api/machine_state/fritz/f0001", {})),
    case(
        "machine_state PUT",
        "api",
        201,
        lambda r, c: ("PUT", "/api/machine_state/fritz/f0001", {"content": b"{}"}),
    ),
    case(
        "machine_state POST",
        "api",
        201,
        lambda r, c: ("POST", "/api/machine_state/fritz/f0001", {"content": b"{}"}),
    ),
    case(
        "users list",
        "api-admin",
        200,
        lambda r, c: ("GET", "/api/users/", {"params": {"not-just-user": "true"}}),
    ),
    case(
        "user update",
        "api-admin",
        {200, 422},
        lambda r, c: ("POST", "/api/user/m-user", {"json": {"add-role": "support"}}),
    ),
    case("plugins", "api-admin", 200, lambda r, c: ("GET", "/api/plugins", {})),
    # ---- /userapi (token)
    case("userapi jobs list", "userapi", 200, lambda r, c: ("GET", "/userapi/jobs/", {})),
    case("userapi job by id", "userapi", 200, lambda r, c: ("GET", f"/userapi/jobs/{c.job}", {})),
    case(
        "userapi job metrics by list",
        "userapi",
        {200, 422, 503},
        lambda r, c: ("POST", f"/userapi/jobs/{c.job}", {"json": []}),
    ),
    case("userapi job metrics", "userapi", 200, lambda r, c: ("GET", f"/userapi/jobs/metrics/{c.job}", {})),
    # ---- /config (session, admin)
    case("config users list", "config", 200, lambda r, c: ("GET", "/config/users/", {})),
    case(
        "config create user POST",
        "config",
        200,
        lambda r, c: (
            "POST",
            "/config/users/",
            {"data": {"username": f"new-{r}", "password": "pw", "role": "user"}},
        ),
    ),
    case(
        "config create user PUT",
        "config",
        200,
        lambda r, c: (
            "PUT",
            "/config/users/",
            {"data": {"username": f"put-{r}", "password": "", "role": "api"}},
        ),
    ),
    case(
        "config delete user",
        "config",
        422,
        lambda r, c: ("DELETE", "/config/users/", {"data": {"username": "nobody"}}),
    ),
    case(
        "config update user",
        "config",
        {200, 422},
        lambda r, c: ("POST", "/config/user/m-user", {"data": {"add-role": "manager"}}),
    ),
    case("config roles", "config", 200, lambda r, c: ("GET", "/config/roles/", {})),
    case(
        "config notice",
        "config",
        200,
        lambda r, c: ("POST", "/config/notice/", {"data": {"new-content": f"hello {r}"}}),
    ),
    case("config taggers", "config", 200, lambda r, c: ("GET", "/config/taggers/", {})),
    case(
        "config taggers run",
        "config",
        409,
        lambda r, c: ("POST", "/config/taggers/run/", {"data": {"name": "nope"}}),
    ),
    # ---- /frontend (session)
    case(
        "frontend own jwt",
        "frontend",
        200,
        lambda r, c: ("GET", "/frontend/jwt/", {"params": {"username": f"m-{r}"}}),
    ),
    case(
        "frontend jwt for another user",
        "frontend-admin",
        200,
        lambda r, c: ("GET", "/frontend/jwt/", {"params": {"username": "other"}}),
    ),
    case(
        "frontend configuration",
        "frontend",
        200,
        lambda r, c: (
            "POST",
            "/frontend/configuration/",
            {"data": {"key": "job_list_usePaging", "value": "true"}},
        ),
    ),
    case(
        "frontend logs",
        "frontend-admin",
        {200, 503},
        lambda r, c: ("GET", "/frontend/logs/", {"params": {"lines": 5}}),
    ),
    # ---- pages and GraphQL (token first, else session)
    case(
        "start page (session)",
        "secured",
        200,
        lambda r, c: ("GET", "/", {"headers": {"accept": "text/html"}}),
    ),
    case(
        "graphql (session)",
        "secured",
        200,
        lambda r, c: ("POST", "/query", {"json": {"query": "{ clusters { name } }"}}),
    ),
    case(
        "graphql (token)",
        "secured-token",
        200,
        lambda r, c: ("POST", "/query", {"json": {"query": "{ clusters { name } }"}}),
    ),
    # ---- public
    case("login page", "public", 200, lambda r, c: ("GET", "/login", {})),
    case("imprint", "public", 200, lambda r, c: ("GET", "/imprint", {})),
    case("privacy", "public", 200, lambda r, c: ("GET", "/privacy", {})),
    case("healthz", "public", 200, lambda r, c: ("GET", "/healthz", {})),
]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiSite, Ctx]]:
    root: Path = tmp_path_factory.mktemp("matrix")
    state = root / "machine-state"
    (state / "fritz").mkdir(parents=True)
    (state / "fritz" / "f0001.json").write_text("{}")
    site = make_server(root / "site", main={"machine-state-dir": str(state)})
    for name, roles in ROLES.items():
        site.services.db.users.add_sync(f"m-{name}", password="pw", roles=roles)
    site.services.db.users.add_sync("other", password="pw", roles=["user"])
    r = site.api().post("/api/jobs/start_job/", json=start_payload(job_id=4242, user="m-user"))
    assert r.status_code == 201
    yield site, Ctx(job=r.json()["id"], job_id=4242)
    site.stop()


def _client(site: ApiSite, kind: str, role: str) -> Any:
    if role == "anonymous":
        return site.client()
    if kind in TOKEN_KINDS:
        return site.api(ROLES[role], username=f"m-{role}")
    return site.browser(ROLES[role], username=f"m-{role}")


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_endpoint_for_every_role(matrix: tuple[ApiSite, Ctx], c: Case) -> None:
    site, ctx = matrix
    got: dict[str, int] = {}
    for role in ALL_ROLES:
        method, path, kw = c.make(role, ctx)
        r = _client(site, c.kind, role).request(method, path, **kw)
        got[role] = r.status_code
        assert r.status_code < 500, (role, r.text)
        assert "Traceback" not in r.text
    want = {}
    for role in ALL_ROLES:
        if role in ADMITS[c.kind]:
            want[role] = got[role] if got[role] in c.ok else f"one of {sorted(c.ok)}"
        else:
            want[role] = 401 if role == "anonymous" else 403
    assert got == want


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/api/jobs/", {}),
        ("GET", "/api/users/", {}),
        ("GET", "/userapi/jobs/", {}),
    ],
)
def test_a_session_never_opens_token_groups(
    matrix: tuple[ApiSite, Ctx], method: str, path: str, kw: dict[str, Any]
) -> None:
    site, _ = matrix
    assert site.browser(["admin", "api"], "m-admin+api").request(method, path, **kw).status_code == 401


@pytest.mark.parametrize("path", ["/config/users/", "/config/roles/", "/frontend/jwt/"])
def test_a_token_never_opens_session_groups(matrix: tuple[ApiSite, Ctx], path: str) -> None:
    site, _ = matrix
    assert site.api(["admin", "api"], "m-admin+api").get(path).status_code == 401


def test_every_rest_route_is_in_the_matrix(matrix: tuple[ApiSite, Ctx]) -> None:
    """A new route must be added to CASES (and so get its access rules checked)."""
    site, _ = matrix
    covered = set()
    ctx = Ctx(job=1, job_id=1)
    for c in CASES:
        method, path, _ = c.make("api", ctx)
        covered.add((method, _template(path)))
    mine = {
        (m, p)
        for route in site.app.routes
        for m in getattr(route, "methods", ())
        if m not in ("HEAD", "OPTIONS")
        for p in [route.path]
        if p.startswith(("/api", "/userapi", "/config/", "/frontend"))  # "/config": the settings page
        and not p.startswith(("/api/write", "/api/free", "/api/debug", "/api/healthcheck", "/api/nodestate"))
    }
    missing = sorted(mine - covered)
    assert not missing, missing


def _template(path: str) -> str:
    import re

    path = path.rstrip("/") or "/"
    path = re.sub(r"/api/jobs/(tag_job|edit_meta|delete_job|metrics)/[^/]+$", r"/api/jobs/\1/{id:str}", path)
    path = re.sub(r"/api/jobs/delete_job_before/[^/]+$", "/api/jobs/delete_job_before/{ts:str}", path)
    path = re.sub(r"/(api|userapi)/jobs/metrics/\d+$", r"/\1/jobs/metrics/{id:str}", path)
    path = re.sub(r"/(api|userapi)/jobs/\d+$", r"/\1/jobs/{id:str}", path)
    path = re.sub(r"/api/machine_state/[^/]+/[^/]+$", "/api/machine_state/{cluster:str}/{host:str}", path)
    path = re.sub(r"/(api|config)/user/[^/]+$", r"/\1/user/{id:str}", path)
    return path

"""User management, settings and frontend endpoints (contract §1.3) over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from .conftest import ApiSite, make_server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiSite]:
    s = make_server(tmp_path_factory.mktemp("admin"))
    users = s.services.db.users
    users.add_sync("root", password="root-pw", roles=["admin"], name="Root", email="root@example.org")
    users.add_sync("plain", password="pw", roles=["user"])
    users.add_sync("boss", password="pw", roles=["manager"], projects=["p1"])
    users.add_sync("robot", password=None, roles=["api"])
    yield s
    s.stop()


def test_api_user_list_and_filter(site: ApiSite) -> None:
    c = site.api(["admin", "api"], "root")
    r = c.get("/api/users/")
    assert r.status_code == 200
    by_name = {u["username"]: u for u in r.json()}
    assert by_name["root"] == {
        "username": "root",
        "name": "Root",
        "roles": ["admin"],
        "authType": 0,
        "authSource": 0,
        "email": "root@example.org",
        "projects": [],
    }
    assert "password" not in r.text
    names = {u["username"] for u in c.get("/api/users/", params={"not-just-user": "true"}).json()}
    assert "plain" not in names and {"root", "boss", "robot"} <= names


def test_api_user_update(site: ApiSite) -> None:
    c = site.api(["admin", "api"], "root")
    site.services.db.users.add_sync("edit1", password="pw", roles=["user"])
    r = c.post("/api/user/edit1", json={"add-role": "manager"})
    assert r.status_code == 200 and r.json() == {"msg": "Add Role Success for user edit1"}
    assert c.post("/api/user/edit1", json={"add-role": "manager"}).status_code == 422
    assert c.post("/api/user/edit1", json={"add-project": "p9"}).json() == {
        "msg": "Add Project Success for user edit1"
    }
    r = c.post("/api/user/edit1", json={"remove-role": "manager"})
    assert r.status_code == 422 and "project" in r.json()["error"]
    assert c.post("/api/user/edit1", json={"remove-project": "p9"}).status_code == 200
    assert c.post("/api/user/edit1", json={"remove-role": "manager"}).status_code == 200
    assert c.post("/api/user/edit1", json={"add-role": "wizard"}).status_code == 422
    assert c.post("/api/user/edit1", json={}).status_code == 400
    assert c.post("/api/user/edit1", json={"add-role": "api", "bogus": 1}).status_code == 400
    assert c.post("/api/user/nobody", json={"add-role": "api"}).status_code == 422
    assert site.api(["api"]).post("/api/user/edit1", json={"add-role": "admin"}).status_code == 403
    assert site.services.db.users.get_sync("edit1").roles == ["user"]


def test_config_create_and_delete_users(site: ApiSite) -> None:
    c = site.browser(["admin"], "root")
    r = c.post(
        "/config/users/",
        data={"username": "newbie", "password": "newbie-pw", "role": "user", "name": "N", "email": "n@x"},
    )
    assert r.status_code == 200 and r.text == "User newbie successfully created!\n"
    login = site.client().post("/login", data={"username": "newbie", "password": "newbie-pw"})
    assert login.status_code == 302
    cases = [
        ({"username": "", "password": "x", "role": "user"}, 400),
        ({"username": "x" * 101, "password": "x", "role": "user"}, 400),
        ({"username": "nopw", "password": "", "role": "user"}, 400),
        ({"username": "mgr", "password": "x", "role": "manager"}, 400),
        ({"username": "prj", "password": "x", "role": "user", "project": "p"}, 400),
        ({"username": "badrole", "password": "x", "role": "wizard"}, 422),
        ({"username": "newbie", "password": "x", "role": "user"}, 422),
    ]
    for form, status in cases:
        r = c.post("/config/users/", data=form)
        assert r.status_code == status, (form, r.text)
    r = c.put(
        "/config/users/", files={"username": (None, "multi"), "password": (None, ""), "role": (None, "api")}
    )
    assert r.status_code == 200, r.text
    r = c.post(
        "/config/users/", data={"username": "mgr2", "password": "x", "role": "manager", "project": "p7"}
    )
    assert r.status_code == 200
    assert site.services.db.users.get_sync("mgr2").projects == ["p7"]
    assert c.request("DELETE", "/config/users/", data={"username": "newbie"}).status_code == 200
    assert site.services.db.users.get_sync("newbie") is None
    assert c.request("DELETE", "/config/users/", data={"username": "newbie"}).status_code == 422


def test_config_user_update_roles_notice_taggers(site: ApiSite) -> None:
    c = site.browser(["admin"], "root")
    site.services.db.users.add_sync("edit2", password="pw", roles=["user"])
    r = c.post("/config/user/edit2", data={"add-role": "support"})
    assert r.status_code == 200 and r.json() == {"msg": "Add Role Success"}
    assert c.post("/config/user/edit2", data={}).status_code == 400
    assert c.get("/config/roles/").json() == ["api", "user", "manager", "support", "admin"]
    r = c.post("/config/notice/", data={"new-content": "Maintenance <b>Friday</b>"})
    assert r.status_code == 200 and r.text == "Update Notice Content Success"
    notice = site.root / "var" / "notice.txt"
    assert notice.read_text() == "Maintenance <b>Friday</b>"
    assert c.post("/config/notice/", data={"new-content": ""}).text == "Empty Notice Content Success"
    assert c.post("/config/notice/", data={"new-content": "x" * 10001}).status_code == 400
    assert c.get("/config/taggers/").json() == [
        {"name": "AppTagger", "type": "start", "running": False},
        {"name": "JobClassTagger", "type": "stop", "running": False},
    ]
    assert c.post("/config/taggers/run/", data={}).status_code == 400
    r = c.post("/config/taggers/run/", data={"name": "NoSuchTagger"})
    assert r.status_code == 409 and "unknown tagger" in r.json()["error"]
    r = c.post("/config/taggers/run/", data={"name": "AppTagger"})
    assert r.status_code == 200 and r.text == "Tagger AppTagger started"


def test_frontend_jwt(site: ApiSite) -> None:
    admin = site.browser(["admin"], "root")
    r = admin.get("/frontend/jwt/", params={"username": "robot"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert site.client(headers={"X-Auth-Token": r.text}).get("/api/jobs/").status_code == 200
    assert admin.get("/frontend/jwt/", params={"username": "ghost"}).status_code == 404
    plain = site.browser(["user"], "plain")
    own = plain.get("/frontend/jwt/")
    assert own.status_code == 200
    # The user's own token has only the role user: /userapi needs api too.
    assert site.client(headers={"X-Auth-Token": own.text}).get("/userapi/jobs/").status_code == 403
    assert plain.get("/frontend/jwt/", params={"username": "root"}).status_code == 403


def test_frontend_configuration(site: ApiSite) -> None:
    c = site.browser(["user"], "plain")
    r = c.post("/frontend/configuration/", data={"key": "plot_general_lineWidth", "value": "2"})
    assert r.status_code == 200 and r.text == "success"
    import asyncio

    stored = asyncio.run(_config(site, "plain"))
    assert stored["plot_general_lineWidth"] == 2
    assert c.post("/frontend/configuration/", data={"key": "k", "value": "{not json"}).status_code == 400
    assert (
        site.browser(["user"], "ghost")
        .post("/frontend/configuration/", data={"key": "k", "value": "1"})
        .status_code
        == 404
    )


async def _config(site: ApiSite, username: str) -> dict:
    from cc_core.db import Database

    with Database(str(site.db_path)) as db:
        return await db.user_config.get(username)


def test_frontend_logs_checks_inputs_and_needs_admin(site: ApiSite) -> None:
    c = site.browser(["admin"], "root")
    for params in (
        {"since": "1 hour ago; rm -rf /"},
        {"since": "$(id)"},
        {"lines": "0"},
        {"lines": "x"},
        {"level": "9"},
        {"search": "a|b"},
    ):
        r = c.get("/frontend/logs/", params=params)
        assert r.status_code == 400, params
    r = c.get("/frontend/logs/", params={"lines": "5", "level": "6", "since": "2024-01-01 00:00:00"})
    if shutil.which("journalctl") is None:
        assert r.status_code == 503 and "journalctl" in r.json()["error"]
    else:
        assert r.status_code in (200, 503) and isinstance(r.json(), list | dict)
    assert site.browser(["support"], "helpdesk").get("/frontend/logs/").status_code == 403

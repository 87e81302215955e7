"""Tag scopes (§6.4), users and their UI configuration, nodes and node states."""

from __future__ import annotations

import anyio
import pytest

from cc_core.auth.user import AuthSource, User
from cc_core.db import (
    Database,
    InvalidInputError,
    JobNotFoundError,
    NodeFilter,
    NodeStateUpdate,
    PageRequest,
    PermissionDeniedError,
    StringInput,
    TagNotFoundError,
    UserExistsError,
    UserNotFoundError,
    UserUpdateError,
)
from cc_core.db.tags import can_delete, can_read, can_write, readable_scopes
from cc_core.schema.job import Tag
from tests.db.conftest import ADMIN, API, SUPPORT
from tests.db.test_lifecycle import make_job

ALICE = User("alice", ["user"])
BOB = User("bob", ["user"])
MANAGER = User("mia", ["manager"], projects=["p1"])


def run(fn, *args, **kw):
    return anyio.run(lambda: fn(*args, **kw))


@pytest.mark.parametrize(
    ("user", "scope", "read", "write", "delete"),
    [
        (ADMIN, "global", True, True, True),
        (ADMIN, "admin", True, True, True),
        (ADMIN, "alice", False, False, False),
        (SUPPORT, "global", True, True, False),
        (SUPPORT, "admin", True, False, False),
        (API, "global", True, True, False),
        (API, "admin", False, True, False),
        (ALICE, "global", True, False, False),
        (ALICE, "admin", False, False, False),
        (ALICE, "alice", True, True, True),
        (ALICE, "bob", False, False, False),
        (User("alice", ["user", "api"]), "admin", False, False, False),  # api + user is not pure api
        (User("admin", ["user"]), "admin", False, False, False),  # a user *called* admin gets no admin scope
    ],
)
def test_scope_rules(user: User, scope: str, read: bool, write: bool, delete: bool) -> None:
    assert (can_read(user, scope), can_write(user, scope), can_delete(user, scope)) == (read, write, delete)
    assert (scope in readable_scopes(user)) == read


def test_tags_end_to_end(db: Database) -> None:
    job = run(db.jobs.start, make_job(1))
    other = run(db.jobs.start, make_job(2, user="bob"))
    g = run(db.tags.create, ADMIN, "app", "vasp", "global")
    a = run(db.tags.create, ADMIN, "review", "vasp", "admin")  # same type+name, other scope: fine now
    p = run(db.tags.create, ALICE, "app", "vasp", "alice")
    assert len({g.id, a.id, p.id}) == 3
    assert run(db.tags.create, ADMIN, "app", "vasp", "global").id == g.id  # idempotent
    with pytest.raises(PermissionDeniedError):
        run(db.tags.create, ALICE, "app", "x", "global")
    with pytest.raises(PermissionDeniedError):
        run(db.tags.create, ALICE, "app", "x", "bob")
    with pytest.raises(InvalidInputError):
        run(db.tags.create, ADMIN, "", "x", "global")

    assert {t.id for t in run(db.tags.visible, ALICE)} == {g.id, p.id}
    assert {t.id for t in run(db.tags.visible, ADMIN)} == {g.id, a.id}
    assert {t.id for t in run(db.tags.visible, BOB)} == {g.id}

    # alice may attach her private tag, not the admin one; the job must be visible to her
    assert [t.id for t in run(db.tags.add_to_job, ALICE, job.id, [p.id])] == [p.id]
    with pytest.raises(PermissionDeniedError):
        run(db.tags.add_to_job, ALICE, job.id, [a.id])
    with pytest.raises(JobNotFoundError):
        run(db.tags.add_to_job, ALICE, other.id, [p.id])
    with pytest.raises(TagNotFoundError):
        run(db.tags.add_to_job, ADMIN, job.id, [9999])
    tags = run(db.tags.add_to_job, ADMIN, job.id, [g.id, a.id])
    assert {t.id for t in tags} == {g.id, a.id}  # admin does not see alice's private tag
    assert {t.id for t in run(db.tags.of_job, ALICE, job.id)} == {g.id, p.id}
    counts = {t.id: n for t, n in run(db.tags.counts, ALICE)}
    assert counts == {g.id: 1, p.id: 1}
    assert run(db.tags.job_has_tag, job.id, "review", "vasp")
    assert run(db.tags.get, ADMIN, a.id).scope == "admin"
    with pytest.raises(TagNotFoundError):
        run(db.tags.get, ALICE, a.id)

    assert {t.id for t in run(db.tags.remove_from_job, ADMIN, job.id, [a.id])} == {g.id}
    # REST by key: creates missing tags, only global/admin scopes may be removed by key
    got = run(
        db.tags.tag_job, API, job.id, [Tag(type="jobClass", name="lowutil"), Tag(type="app", name="vasp")]
    )
    assert {(t.type, t.name) for t in got} == {("jobClass", "lowutil"), ("app", "vasp")}
    left = run(
        db.tags.untag_job,
        ADMIN,
        job.id,
        [Tag(type="jobClass", name="lowutil"), Tag(type="app", name="vasp", scope="alice")],
    )
    assert {(t.type, t.name, t.scope) for t in left} == {("app", "vasp", "global")}
    with pytest.raises(TagNotFoundError):
        run(db.tags.untag_job, ADMIN, job.id, [Tag(type="no", name="such")])
    # automatic taggers write global tags without a user
    assert run(db.tags.tag_job, None, other.id, [Tag(type="app", name="gromacs")])
    with pytest.raises(JobNotFoundError):
        run(db.tags.tag_job, None, 999, [Tag(type="app", name="gromacs")])

    # deleting: admins delete global/admin tags, owners their private ones
    with pytest.raises(PermissionDeniedError):
        run(db.tags.delete, ALICE, [g.id])
    assert run(db.tags.delete, ALICE, [p.id]) == [p.id]
    assert run(db.tags.delete_by_key, ADMIN, [Tag(type="app", name="vasp"), Tag(type="x", name="y")]) == 1
    assert run(db.tags.find, "app", "vasp") is None
    assert run(db.tags.find, "review", "vasp", "admin") is not None
    assert run(db.tags.of_job, ADMIN, job.id) == []


def test_users(db: Database) -> None:
    u = db.users.add_sync("alice", password="s3cret", roles=["User", "api"], name="Alice", email="a@x")
    assert (u.roles, u.auth_source, u.name) == (["user", "api"], AuthSource.LOCAL, "Alice")
    assert u.password_hash and u.password_hash.startswith("$2")
    with pytest.raises(UserExistsError):
        db.users.add_sync("alice")
    with pytest.raises(InvalidInputError):
        db.users.add_sync("carol", roles=["wizard"])
    with pytest.raises(InvalidInputError):
        db.users.add_sync("")
    assert run(db.users.check_password, "alice", "s3cret") is not None
    assert run(db.users.check_password, "alice", "wrong") is None
    assert run(db.users.check_password, "nobody", "x") is None
    assert run(db.users.add_if_not_exists, "ldapuser", auth_source=AuthSource.LDAP, name="L")
    assert not run(db.users.add_if_not_exists, "ldapuser")
    assert run(db.users.ldap_usernames) == ["ldapuser"]
    assert run(db.users.check_password, "ldapuser", "") is None  # not a local user
    db.users.add_sync("mgr", roles=["manager"])
    assert [x.username for x in run(db.users.list, not_just_user=True)] == ["alice", "mgr"]
    assert [x.username for x in run(db.users.list)] == ["alice", "ldapuser", "mgr"]

    assert run(db.users.add_project, "mgr", "p1").projects == ["p1"]
    with pytest.raises(UserUpdateError):
        run(db.users.add_project, "mgr", "p1")
    with pytest.raises(UserUpdateError):
        run(db.users.add_project, "alice", "p1")  # not a manager
    with pytest.raises(UserUpdateError):
        run(db.users.remove_role, "mgr", "manager")  # still has projects
    assert run(db.users.remove_project, "mgr", "p1").projects == []
    with pytest.raises(UserUpdateError):
        run(db.users.remove_project, "mgr", "p1")
    assert run(db.users.remove_role, "mgr", "manager").roles == []
    assert run(db.users.add_role, "mgr", "Support").roles == ["support"]
    with pytest.raises(UserUpdateError):
        run(db.users.add_role, "mgr", "support")
    with pytest.raises(UserUpdateError):
        run(db.users.add_role, "mgr", "emperor")
    with pytest.raises(UserNotFoundError):
        run(db.users.add_role, "ghost", "user")
    updated = run(db.users.update, "alice", name="A.", email="", roles=["admin"], password="new")
    assert (updated.name, updated.email, updated.roles) == ("A.", "", ["admin"])
    assert run(db.users.check_password, "alice", "new") is not None
    assert updated.to_user().has_role("admin")

    # UI configuration: JSON values over defaults; the user must exist; deleting the user drops it
    run(db.user_config.update, "alice", "plot_list_selectedMetrics:fritz", '["flops_any", "mem_bw"]')
    run(db.user_config.update, "alice", "plot_list_selectedMetrics:fritz", '["clock"]')
    run(db.user_config.update, "alice", "jobList_showFootprint", "false")
    cfg = run(db.user_config.get, "alice", {"jobList_showFootprint": True, "x": 1})
    assert cfg == {"jobList_showFootprint": False, "x": 1, "plot_list_selectedMetrics:fritz": ["clock"]}
    assert run(db.user_config.get, None, {"x": 1}) == {"x": 1}
    with pytest.raises(InvalidInputError):
        run(db.user_config.update, "alice", "k", "{not json")
    with pytest.raises(UserNotFoundError):
        run(db.user_config.update, "ghost", "k", "1")
    run(db.user_config.delete, "alice", "jobList_showFootprint")
    assert "jobList_showFootprint" not in run(db.user_config.get, "alice")
    db.users.delete_sync("alice")
    assert run(db.users.get, "alice") is None
    assert run(db.user_config.get, "alice") == {}
    with pytest.raises(UserNotFoundError):
        db.users.delete_sync("alice")


def test_nodes(db: Database) -> None:
    skipped = run(
        db.nodes.update_states,
        "fritz",
        [
            NodeStateUpdate(
                hostname="f0001", state="allocated", subcluster="main", jobs_running=2, cpus_allocated=72
            ),
            NodeStateUpdate(hostname="f0002", state="idle", subcluster="main"),
            NodeStateUpdate(hostname="f9999", state="idle"),  # unknown and no subcluster: skipped
        ],
        time_stamp=100,
    )
    assert skipped == ["f9999"]
    run(
        db.nodes.update_states,
        "fritz",
        [
            NodeStateUpdate(
                hostname="f0001",
                state="down",
                health_state="failed",
                health_metrics={"missing": ["cpu_load"]},
            ),
            NodeStateUpdate(hostname="f0002", state="idle"),
        ],
        time_stamp=200,
    )
    run(
        db.nodes.update_states,
        "alex",
        [NodeStateUpdate(hostname="a0001", state="mixed", subcluster="a40")],
        time_stamp=150,
    )
    with pytest.raises(InvalidInputError):
        run(db.nodes.update_states, "fritz", [NodeStateUpdate(hostname="f0001", state="sleepy")])

    nodes = run(db.nodes.list, ADMIN, with_meta=True)
    assert [(n.hostname, n.scheduler_state, n.health_state, n.time_stamp) for n in nodes] == [
        ("a0001", "mixed", "full", 150),
        ("f0001", "down", "failed", 200),
        ("f0002", "idle", "full", 200),
    ]
    assert nodes[1].health_data == {"missing": ["cpu_load"]}
    fritz = [NodeFilter(cluster=StringInput(eq="fritz"))]
    assert run(db.nodes.count, SUPPORT, fritz) == 2
    assert run(db.nodes.count, SUPPORT, [NodeFilter(scheduler_state="idle")]) == 1
    assert [n.hostname for n in run(db.nodes.list, ADMIN, fritz, PageRequest(items_per_page=1, page=2))] == [
        "f0002"
    ]
    assert run(db.nodes.count_states, ADMIN) == [("down", 1), ("idle", 1), ("mixed", 1)]
    assert run(db.nodes.count_states, ADMIN, fritz, column="health_state") == [("failed", 1), ("full", 1)]
    timed = run(db.nodes.count_states_timed, ADMIN, fritz)
    assert [(t.state, t.times, t.counts) for t in timed] == [
        ("allocated", [100], [1]),
        ("down", [200], [1]),
        ("idle", [100, 200], [1, 1]),
    ]
    later = run(db.nodes.count_states_timed, ADMIN, [NodeFilter(time_start=150)])
    assert {t.state for t in later} == {"down", "idle"}
    for denied in (ALICE, MANAGER, API):
        with pytest.raises(PermissionDeniedError):
            run(db.nodes.list, denied)
    node = run(db.nodes.get, "f0001", "fritz")
    assert node is not None and node.scheduler_state == "down"
    assert run(db.nodes.get_by_id, node.id) == node
    assert run(db.nodes.get, "f0001", "alex") is None
    assert run(db.nodes.states_of_cluster, "fritz") == {
        "f0001": ("down", "failed"),
        "f0002": ("idle", "full"),
    }
    # retention keeps the latest state of every node, whatever its age
    assert run(db.nodes.delete_states_before, 1000) == 2
    assert run(db.nodes.count_states, ADMIN) == [("down", 1), ("idle", 1), ("mixed", 1)]
    run(db.nodes.delete, node.id)
    assert run(db.nodes.get, "f0001", "fritz") is None
    assert run(db.nodes.add, "w0001", "woody", "main") > 0

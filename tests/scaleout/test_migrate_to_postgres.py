"""``migrate-db --to postgresql://…``: an SQLite database copied into a real PostgreSQL database."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from cc_core.cli import build_cli
from cc_core.db import SYSTEM_USER, Database
from cc_core.db import tables as T
from cc_core.db.copy import COPY_ORDER
from cc_core.db.generate import generate_jobs
from cc_core.db.nodes import NodeStateUpdate

NOW = 1_760_000_000


def _fill(db_path: Path) -> dict[str, int]:
    """A generated site: jobs with tags, users with a setting, nodes with states, a task run."""
    with Database(db_path) as db:
        db.jobs.bulk_insert_sync(generate_jobs(1200, seed=5, now=NOW, users=60, projects=10))
        db.users.add_sync("alice", password="secret-pw", roles=["admin", "api"])
        db.users.add_sync("bob", password=None, roles=["user"])

        async def more() -> None:
            await db.user_config.update("alice", "plot_list_selectedMetrics", json.dumps(["flops_any"]))
            await db.nodes.update_states(
                "fritz",
                [NodeStateUpdate(hostname=f"f{i:04d}", state="idle", subcluster="main") for i in range(5)],
                time_stamp=NOW,
            )

        anyio.run(more)
        db.write_sync(lambda c: c.execute(T.task_run.insert().values(name="footprint", due_ms=NOW * 1000)))
        return db.read_sync(
            lambda c: {
                t.name: c.execute(select(func.count()).select_from(t)).scalar_one() for t in COPY_ORDER
            }
        )


def _cli(cfg: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(build_cli(), ["-c", str(cfg), *args], catch_exceptions=False)
    return r.exit_code, r.output


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    d = tmp_path_factory.mktemp("site")
    (d / "config.json").write_text(json.dumps({"main": {"db": "./var/job.db"}}))
    (d / "var").mkdir()
    counts = _fill(d / "var" / "job.db")
    assert counts["job"] == 1200 and counts["jobtag"] > 0 and counts["tag"] > 0 and counts["node_state"] == 5
    return d, counts


def test_copies_every_table_and_moves_sequences(
    sqlite_site: tuple[Path, dict[str, int]], postgresql_url: str
) -> None:
    d, counts = sqlite_site
    code, out = _cli(d / "config.json", "migrate-db", "--to", postgresql_url)
    assert code == 0, out
    assert "row counts verified" in out and "copied: jobtag" in out
    with Database(d / "var" / "job.db") as src, Database(postgresql_url) as dst:
        got = dst.read_sync(
            lambda c: {
                t.name: c.execute(select(func.count()).select_from(t)).scalar_one() for t in COPY_ORDER
            }
        )
        assert got == counts

        # Same rows: jobs with their tags, users with roles and password hash.
        def tagged(db: Database) -> list[tuple[int, str, str, str]]:
            q = (
                select(T.job.c.job_id, T.tag.c.tag_type, T.tag.c.tag_name, T.tag.c.tag_scope)
                .join(T.jobtag, T.jobtag.c.job_id == T.job.c.id)
                .join(T.tag, T.tag.c.id == T.jobtag.c.tag_id)
                .order_by(T.job.c.job_id, T.tag.c.tag_name)
            )
            return [tuple(r) for r in db.read_sync(lambda c: c.execute(q).all())]

        assert tagged(dst) == tagged(src)
        alice = dst.users.get_sync("alice")
        assert alice is not None and set(alice.roles) == {"admin", "api"}
        assert anyio.run(dst.users.check_password, "alice", "secret-pw") is not None
        first = anyio.run(dst.jobs.find_by_id, SYSTEM_USER, 1)
        assert first.job_id == anyio.run(src.jobs.find_by_id, SYSTEM_USER, 1).job_id
        # The sequences are past the copied ids: a new job gets a fresh id, not a collision.
        max_id = counts["job"]
        new = dst.jobs.start_sync(generate_jobs(1, seed=9, now=NOW + 100, first_job_id=99_000_000)[0])
        assert new.id is not None and new.id > max_id
        seq = dst.read_sync(lambda c: c.execute(text("SELECT MAX(id) FROM tag")).scalar_one())
        assert seq == dst.read_sync(lambda c: c.execute(select(func.max(T.tag.c.id))).scalar_one())


def test_refuses_a_non_empty_target(sqlite_site: tuple[Path, dict[str, int]], postgresql_url: str) -> None:
    d, _ = sqlite_site
    with Database(postgresql_url) as dst:
        dst.users.add_sync("existing", password=None, roles=["user"])
    code, out = _cli(d / "config.json", "migrate-db", "--to", postgresql_url)
    assert code != 0
    assert "not empty" in out and "hpc_user" in out
    with Database(postgresql_url) as dst:
        assert dst.read_sync(lambda c: c.execute(select(func.count()).select_from(T.job)).scalar_one()) == 0


def test_refuses_a_non_postgres_target(sqlite_site: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    d, _ = sqlite_site
    code, out = _cli(d / "config.json", "migrate-db", "--to", "mysql://x@localhost/db")
    assert code != 0 and "unsupported database URL scheme" in out

"""``clustercockpit init-db``: the reference archive, generated archives, broken jobs, atomicity.

Function-level tests call `cc_core.importer.init_db_sync` on a real file archive and a real database
(SQLite, and PostgreSQL where marked); CLI tests run the command against a config file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cc_core.archive import codec
from cc_core.archive.generate import generate_archive
from cc_core.db import SYSTEM_USER, Database, PageRequest
from cc_core.importer import InitDBReport, init_db_sync

from .conftest import FIXTURE_ARCHIVE, IMPORTER_FIXTURES, copy_tree, make_site

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service("postgresql"))]


def _fs(path: Path) -> Any:
    from cc_archive_fs.backend import FsArchive, FsArchiveConfig

    return FsArchive(FsArchiveConfig(path=str(path)))


def _pg_url(request: pytest.FixtureRequest) -> str:
    try:
        return request.getfixturevalue("postgresql_url")
    except pytest.FixtureLookupError:
        if os.environ.get("CI") == "true":
            pytest.fail("service: the postgresql_url fixture (cc_core.testing) is required under CI")
        pytest.skip("service: the postgresql_url fixture (cc_core.testing) is not available")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = str(tmp_path / "job.db") if request.param == "sqlite" else _pg_url(request)
    database = Database(url)
    try:
        yield database
    finally:
        database.close_sync()


def _all_jobs(db: Database) -> list[Any]:
    page = db.jobs.list_sync(SYSTEM_USER, None, PageRequest(-1, 1), with_tags=True, with_metadata=True)
    return sorted(page.items, key=lambda j: (j.cluster, j.job_id))


def _tags(db: Database) -> Counter[tuple[str, str, str]]:
    rows = db.read_sync(
        lambda c: c.exec_driver_sql(
            "SELECT t.tag_type, t.tag_name, t.tag_scope FROM jobtag jt JOIN tag t ON t.id = jt.tag_id"
        ).all()
    )
    return Counter(tuple(r) for r in rows)


# ---------------------------------------------------------------------------------- reference archive


def _check_emmy_jobs(jobs: list[Any]) -> None:
    assert [(j.cluster, j.job_id, j.start_time) for j in jobs] == [
        ("emmy", 1403244, 1608923076),
        ("emmy", 1404397, 1609300556),
    ]
    for j, duration in zip(jobs, (86486, 86525), strict=True):
        assert j.user == "emmyUser6" and j.project == "no project"
        assert j.sub_cluster == "haswell" and j.partition == "work"
        assert j.num_nodes == 32 and len(j.resources) == 32 and j.resources[0].hostname.startswith("e")
        assert j.duration == duration and j.walltime == 10
        assert j.job_state == "completed" and j.shared == "none"
        assert j.monitoring_status == 3
        # emmy's cluster.json marks no footprint or energy metric.
        assert j.footprint == {} and j.energy_footprint == {} and j.energy == 0.0
        assert not j.tags


def test_reference_archive_into_fresh_database(shared_reference: Path, tmp_path: Path) -> None:
    with Database(tmp_path / "job.db") as db:
        report = init_db_sync(db, _fs(shared_reference / "job-archive"))
        assert report.ok, report.errors
        assert (report.imported, report.failed, report.removed) == (2, 0, 0)
        _check_emmy_jobs(_all_jobs(db))


def test_fixture_archive_through_the_cli(tmp_path: Path) -> None:
    """The same through ``clustercockpit init-db`` with the project's own copy; quiet without a TTY."""
    site = make_site(tmp_path / "site", copy_tree(FIXTURE_ARCHIVE, tmp_path / "archive"))
    code, out, err = site.cli("init-db")
    assert code == 0, err
    assert err == ""  # no progress bar and no warnings when stderr is not a terminal
    assert "init-db: 2 jobs imported" in out and "0 failed" in out and "0 jobs were replaced" in out
    with Database(site.db) as db:
        _check_emmy_jobs(_all_jobs(db))
    # Again: the jobs are replaced, not duplicated.
    code, out, err = site.cli("init-db")
    assert code == 0, err
    assert "2 jobs imported" in out and "2 jobs were replaced" in out
    con = sqlite3.connect(site.db)
    assert con.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 2
    con.close()


def _place(archive: Path, meta: dict[str, Any]) -> Path:
    d = (
        archive
        / meta["cluster"]
        / str(meta["jobId"] // 1000)
        / f"{meta['jobId'] % 1000:03d}"
        / str(meta["startTime"])
    )
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps(meta))
    return d


def test_reference_fritz_footprint_energy_and_subcluster_assignment(
    shared_reference: Path, tmp_path: Path
) -> None:
    """Upstream's importer job on the reference archive's fritz config (cpu_power and mem_power are power
    metrics there), once on a main node and once, without subCluster, on a node that both spr1tb and
    spr2tb list: the smaller spr2tb wins, and its overrides drop flops_any and mem_bw from the footprint."""
    archive = copy_tree(shared_reference / "job-archive", tmp_path / "archive")
    meta = json.loads((IMPORTER_FIXTURES / "meta-fritzMinimal.input").read_text())
    _place(archive, meta)
    spr = dict(meta, jobId=398765, subCluster="", resources=[{"hostname": "f2181"}])
    del spr["subCluster"]
    _place(archive, spr)
    with Database(tmp_path / "job.db") as db:
        report = init_db_sync(db, _fs(archive))
        assert report.ok, report.errors
        jobs = {j.job_id: j for j in _all_jobs(db) if j.cluster == "fritz"}
    main, sprjob = jobs[398764], jobs[398765]
    assert main.sub_cluster == "main"
    assert main.footprint == {
        "cpu_load_avg": 31.64,
        "mem_used_max": 6.226,
        "flops_any_avg": 45.012,
        "mem_bw_avg": 4.872,
    }
    # 150.018 W × 1 node × 177 s = 0.0074 kWh → 0.01; mem_power 7.725 W → 0.00.
    assert main.energy_footprint == {"cpu_power": 0.01, "mem_power": 0.0}
    assert main.energy == 0.01
    assert sprjob.sub_cluster == "spr2tb"
    assert sprjob.footprint == {"cpu_load_avg": 31.64, "mem_used_max": 6.226}
    assert sprjob.energy == 0.01


# ---------------------------------------------------------------------------------- generated archive


@pytest.mark.parametrize("n", [3000])
def test_generated_archive(db: Database, tmp_path: Path, n: int) -> None:
    jobs = generate_archive(tmp_path / "archive", n, seed=3)
    seen: list[InitDBReport] = []
    report = init_db_sync(db, _fs(tmp_path / "archive"), progress=seen.append, batch_size=700)
    assert report.ok, report.errors[:5]
    assert report.imported == n and report.processed == n
    assert seen and seen[-1].processed == n  # progress ran, and ended at the total
    stored = _all_jobs(db)
    assert len(stored) == n
    truth = {(j.cluster, j.job_id): j for j in jobs}
    clusters = {c.name: c.derive() for c in _generated_clusters()}
    for job in stored:
        src = truth[(job.cluster, job.job_id)]
        assert job.start_time == src.start_time and job.duration == src.duration
        assert job.user == src.user and job.sub_cluster == src.sub_cluster
        assert job.monitoring_status == 3
        assert job.footprint == expected_footprint(clusters[job.cluster], src)
        energy_fp, energy = expected_energy(clusters[job.cluster], src)
        assert job.energy_footprint == energy_fp and job.energy == pytest.approx(energy)
    # Every tag with its scope (upstream's init-db would make them all global).
    want = Counter((t.type, t.name, t.scope) for j in jobs for t in j.tags or ())
    assert _tags(db) == want
    assert {s for _, _, s in want} - {"global", "admin"}, "the generator should produce user-scoped tags"


def expected_footprint(cluster: Any, job: Any) -> dict[str, float]:
    """Worked out independently of the importer: each footprint metric of the job's subcluster, with
    the statistic its (derived) config names."""
    sc = cluster.subcluster(job.sub_cluster)
    return {
        f"{mc.name}_{mc.footprint}": getattr(job.statistics[mc.name], mc.footprint)
        for mc in sc.metric_config
        if mc.footprint
    }


def expected_energy(cluster: Any, job: Any) -> tuple[dict[str, float], float]:
    """Power metrics: average W × nodes × hours / 1000 kWh, rounded half up to 2 decimals."""
    sc = cluster.subcluster(job.sub_cluster)
    out = {}
    for mc in sc.metric_config:
        if mc.energy == "power":
            kwh = job.statistics[mc.name].avg * job.num_nodes * job.duration / 3600 / 1000
            out[mc.name] = math.floor(kwh * 100 + 0.5) / 100
    return out, sum(out.values())


def _generated_clusters() -> list[Any]:
    from cc_core.archive.generate import cluster_config
    from cc_core.db.generate import CLUSTERS

    return [cluster_config(c) for c in CLUSTERS]


# ---------------------------------------------------------------------------------- broken jobs


def _broken_archive(root: Path) -> dict[str, str]:
    """The fixture archive plus broken jobs; returns {job directory: expected problem}."""
    archive = copy_tree(FIXTURE_ARCHIVE, root)
    good = json.loads((archive / "emmy/1403/244/1608923076/meta.json").read_text())
    problems: dict[str, str] = {}

    def add(meta: dict[str, Any], raw: bytes | None, problem: str, *, cluster_dir: str | None = None) -> None:
        m = dict(meta)
        if cluster_dir is not None:
            m["cluster"] = cluster_dir
        d = _place(archive, m)
        if raw is not None:
            (d / "meta.json").write_bytes(raw)
        problems[str(d)] = problem

    text = json.dumps(good).encode()
    add(dict(good, jobId=2000001), text[: len(text) // 2], "truncated JSON")
    add(dict(good, jobId=2000002), b"\x1f\x8b\x08\x00garbage", "invalid meta.json")
    add(dict(good, jobId=2000003, numNodes="32"), None, "Expected `int`, got `str` - at `$.numNodes`")
    add(dict(good, jobId=2000004, numNodes=3), None, "len(resources) does not equal numNodes (32 vs 3)")
    add(dict(good, jobId=2000005, subCluster="nehalem"), None, "subcluster 'nehalem' unknown")
    add(dict(good, jobId=2000006, jobState="vanished"), None, "not a valid job state: 'vanished'")
    wrong = dict(good, jobId=2000007)
    d = _place(archive, wrong)
    (d / "meta.json").write_text(json.dumps(dict(good, jobId=2000077)))
    problems[str(d)] = "meta.json describes job 2000077"
    add(dict(good, jobId=2000008), None, "no such cluster: 'ghost'", cluster_dir="ghost")
    # Two good extra jobs that must still be imported.
    _place(archive, dict(good, jobId=2000100, tags=[{"type": "note", "name": "x", "scope": "emmyUser6"}]))
    _place(archive, dict(good, jobId=2000101))
    return problems


def test_broken_jobs_are_reported_with_their_path_and_skipped(tmp_path: Path) -> None:
    problems = _broken_archive(tmp_path / "archive")
    with Database(tmp_path / "job.db") as db:
        report = init_db_sync(db, _fs(tmp_path / "archive"))
        imported = {j.job_id for j in _all_jobs(db)}
        assert _tags(db) == Counter({("note", "x", "emmyUser6"): 1})
    assert imported == {1403244, 1404397, 2000100, 2000101}
    assert report.imported == 4 and report.failed == len(problems) and not report.ok
    by_path = {f.path: f.problem for f in report.failures}
    assert set(by_path) == set(problems)
    for path, expect in problems.items():
        assert expect in by_path[path], (path, by_path[path])
    assert any("ghost/cluster.json" in e for e in report.cluster_errors)


def test_broken_jobs_through_the_cli(tmp_path: Path) -> None:
    problems = _broken_archive(tmp_path / "archive")
    site = make_site(tmp_path / "site", tmp_path / "archive")
    code, out, err = site.cli("init-db")
    assert code == 1
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    for path in problems:
        assert sum(line.startswith(f"error: {path}: ") for line in lines) == 1, path
    assert (
        "4 jobs imported" in out and f"{len(problems)} failed" in out and "1 unusable cluster config" in out
    )


def test_schema_invalid_meta_with_validation(tmp_path: Path) -> None:
    """With ``main.validate`` a meta.json that decodes but breaks the schema is skipped. (Generated jobs:
    upstream's own reference archive does not pass its schema — units such as "load", "Flops/s".)"""
    archive = tmp_path / "archive"
    jobs = generate_archive(archive, 5, seed=4)
    bad = msgspec.to_builtins(msgspec.structs.replace(jobs[0], job_id=2000009))
    del bad["statistics"]  # decodes fine, but the schema requires it
    d = _place(archive, bad)
    site = make_site(tmp_path / "site", archive, validate=True)
    code, out, err = site.cli("init-db")
    assert code == 1
    assert (
        f"error: {d}: meta.json does not match the JSON schema" in err and "'statistics' is a required" in err
    )
    assert len(err.splitlines()) == 1
    assert "5 jobs imported" in out
    code, out, err = site.cli("init-db", "--no-validate")
    assert code == 0, err
    assert "6 jobs imported" in out


# ---------------------------------------------------------------------------------- atomicity


def _refuse_job(db: Database, job_id: int) -> None:
    """A real trigger that makes the database refuse one job: a failure in the middle of the load."""
    if db.is_sqlite:
        sql = [
            f"CREATE TRIGGER refuse BEFORE INSERT ON job WHEN NEW.job_id = {job_id} "
            "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        ]
    else:
        sql = [
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.job_id = {job_id} THEN RAISE EXCEPTION 'refused by trigger'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON job FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]

    def run(conn: Any) -> None:
        for s in sql:
            conn.exec_driver_sql(s)

    db.write_sync(run)


def test_database_failure_leaves_the_old_content(db: Database, tmp_path: Path) -> None:
    first = generate_archive(tmp_path / "a1", 300, seed=1)
    assert init_db_sync(db, _fs(tmp_path / "a1")).ok
    before = [msgspec.to_builtins(j) for j in _all_jobs(db)]
    tags_before = _tags(db)
    assert len(before) == len(first) and tags_before
    second = generate_archive(tmp_path / "a2", 2000, seed=2)
    _refuse_job(db, second[1500].job_id)  # in the second batch of 1000
    with pytest.raises(Exception, match="refused by trigger"):
        init_db_sync(db, _fs(tmp_path / "a2"), batch_size=1000)
    assert [msgspec.to_builtins(j) for j in _all_jobs(db)] == before
    assert _tags(db) == tags_before
    # The job indexes dropped for the load are back (rolled back with everything else).
    q = db.jobs.list_sync(SYSTEM_USER, None, PageRequest(5, 1))
    assert q.count == len(first)


def test_database_failure_through_the_cli(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", copy_tree(FIXTURE_ARCHIVE, tmp_path / "archive"))
    assert site.cli("init-db")[0] == 0
    with Database(site.db) as db:
        _refuse_job(db, 1404397)
    code, out, err = site.cli("init-db")
    assert code == 1
    assert (
        err.strip().startswith("error: ")
        and "refused by trigger" in err
        and len(err.strip().splitlines()) == 1
    )
    assert out == ""
    with Database(site.db) as db:
        assert len(_all_jobs(db)) == 2


def test_empty_archive(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    (root / "version.txt").write_text("3\n")
    with Database(tmp_path / "job.db") as db:
        report = init_db_sync(db, _fs(root))
    assert report.ok and report.imported == 0


def test_generated_meta_decodes_with_the_archive_codec(tmp_path: Path) -> None:
    """The generator writes what the archive reads (and what the schema accepts)."""
    from cc_core.archive import validation

    generate_archive(tmp_path / "archive", 20, seed=5)
    metas = sorted((tmp_path / "archive").glob("*/*/*/*/meta.json"))
    assert len(metas) == 20
    for p in metas:
        codec.decode_meta(p.read_bytes(), str(p), validate=validation.available())
    for p in (tmp_path / "archive").glob("*/cluster.json"):
        codec.decode_cluster_file(p.read_bytes(), str(p), validate=validation.available())
    shutil.rmtree(tmp_path / "archive")


def test_cli_refuses_an_archive_without_clusters(tmp_path: Path) -> None:
    """A mistyped archive path must not empty the database."""
    site = make_site(tmp_path / "site", copy_tree(FIXTURE_ARCHIVE, tmp_path / "archive"))
    assert site.cli("init-db")[0] == 0
    empty = make_site(tmp_path / "site", tmp_path / "no-such-archive")
    code, _, err = empty.cli("init-db")
    assert code == 1
    assert err.startswith("error: ") and "holds no cluster" in err and len(err.splitlines()) == 1
    with Database(site.db) as db:
        assert len(_all_jobs(db)) == 2

"""``clustercockpit import-job``: upstream's importer golden files, round trips, and every way to fail.

The golden tests follow upstream's `TestHandleImportFlag`: an archive holding only the fritz cluster
config, ``import-job meta-<name>.input:data-<name>.json``, then the job is looked up by (jobId, cluster,
startTime) and compared with ``<name>-golden.json``. Beyond upstream's duration check they pin the
footprint and energy the importer computes from the meta's statistics (worked out by hand from the
input files and the cluster config) and that meta statistics and data reach the archive unchanged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cc_core.archive.codec import decode_meta
from cc_core.schema.metrics import decode_job_data

from .conftest import IMPORTER_FIXTURES, Site, fritz_archive, make_site

# Footprint keys and values from the input statistics: cpu_load avg, mem_used max (upstream's importer
# would store mem_used_avg: it ignores the metric's footprint setting, see cc_core.importer), flops_any
# avg, mem_bw avg. cluster-fritz.json sets no energy metric, so energy is 0 and the energy footprint {}.
FOOTPRINTS = {
    "fritzMinimal": {
        "cpu_load_avg": 31.64,
        "mem_used_max": 6.226,
        "flops_any_avg": 45.012,
        "mem_bw_avg": 4.872,
    },
    "fritzError": {
        "cpu_load_avg": 52.72,
        "mem_used_max": 27.613,
        "flops_any_avg": 635.672,
        "mem_bw_avg": 79.565,
    },
}
# With cpu_power and mem_power marked as power metrics: avg W × nodes × duration h / 1000, 2 decimals.
# fritzMinimal: 150.018 W × 1 × 177 s → 0.0074 kWh → 0.01; 7.725 W → 0.0004 → 0.00.
# fritzError:   407.767 W × 1 × 260 s → 0.0295 kWh → 0.03; 24.692 W → 0.0018 → 0.00.
ENERGY = {
    "fritzMinimal": ({"cpu_power": 0.01, "mem_power": 0.0}, 0.01),
    "fritzError": ({"cpu_power": 0.03, "mem_power": 0.0}, 0.03),
}


def _db_row(db: Path, job_id: int, cluster: str, start_time: int) -> dict[str, Any]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT * FROM job WHERE job_id = ? AND cluster = ? AND start_time = ?",
            (job_id, cluster, start_time),
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    return dict(rows[0])


def _archived(site: Site, cluster: str, job_id: int, start: int) -> Path:
    return site.archive / cluster / str(job_id // 1000) / f"{job_id % 1000:03d}" / str(start)


def _import_and_check(site: Site, ref: Path, name: str, *, energy: bool = False) -> None:
    meta_path, data_path = ref / f"meta-{name}.input", ref / f"data-{name}.json"
    code, out, err = site.cli("import-job", f"{meta_path}:{data_path}")
    assert code == 0, err
    golden = json.loads((ref / f"{name}-golden.json").read_text())
    assert f"imported job {golden['jobId']}" in out

    row = _db_row(site.db, golden["jobId"], golden["cluster"], golden["startTime"])
    assert row["duration"] == golden["duration"]  # upstream's check
    assert row["monitoring_status"] == 3
    assert row["subcluster"] == "main"
    assert json.loads(row["footprint"]) == FOOTPRINTS[name]
    if energy:
        fp, total = ENERGY[name]
        assert json.loads(row["energy_footprint"]) == fp
        assert row["energy"] == total
    else:
        assert json.loads(row["energy_footprint"]) == {}
        assert row["energy"] == 0.0

    # The archive holds the enriched meta (statistics untouched) and the data, as imported.
    d = _archived(site, golden["cluster"], golden["jobId"], golden["startTime"])
    meta = decode_meta((d / "meta.json").read_bytes(), str(d))
    given = json.loads(meta_path.read_text())
    assert msgspec.to_builtins(meta.statistics) == given["statistics"]
    assert meta.monitoring_status == 3
    assert meta.footprint == FOOTPRINTS[name]
    data_file = d / "data.json.gz"
    assert data_file.is_file()  # > 2000 bytes: gzipped as upstream
    stored = decode_job_data(asyncio.run(_load_data(site, meta)))
    assert stored == decode_job_data(data_path.read_bytes())


async def _load_data(site: Site, meta: Any) -> bytes:
    from cc_archive_fs.backend import FsArchive, FsArchiveConfig

    from cc_core.schema.metrics import encode_job_data

    backend = FsArchive(FsArchiveConfig(path=str(site.archive)))
    await backend.init()
    return encode_job_data(await backend.load_job_data(meta))


def test_fritz_minimal_golden_from_fixtures(fritz_site: Site) -> None:
    """The basic golden case with the project's own copy of the files (runs without ../shared)."""
    _import_and_check(fritz_site, IMPORTER_FIXTURES, "fritzMinimal")


@pytest.mark.parametrize("name", ["fritzMinimal", "fritzError"])
def test_upstream_golden_files(shared_reference: Path, tmp_path: Path, name: str) -> None:
    ref = shared_reference / "importer"
    archive = fritz_archive(tmp_path / "archive", ref / "cluster-fritz.json")
    _import_and_check(make_site(tmp_path / "site", archive), ref, name)


@pytest.mark.parametrize("name", ["fritzMinimal", "fritzError"])
def test_upstream_golden_files_with_energy_metrics(shared_reference: Path, tmp_path: Path, name: str) -> None:
    ref = shared_reference / "importer"
    cluster = json.loads((ref / "cluster-fritz.json").read_text())
    for mc in cluster["metricConfig"]:
        if mc["name"] in ("cpu_power", "mem_power"):
            mc["energy"] = "power"
    patched = tmp_path / "cluster-fritz-energy.json"
    patched.write_text(json.dumps(cluster))
    archive = fritz_archive(tmp_path / "archive", patched)
    _import_and_check(make_site(tmp_path / "site", archive), ref, name, energy=True)


def test_both_upstream_pairs_in_one_call(shared_reference: Path, tmp_path: Path) -> None:
    ref = shared_reference / "importer"
    site = make_site(tmp_path / "site", fritz_archive(tmp_path / "archive"))
    spec = ",".join(f"{ref}/meta-{n}.input:{ref}/data-{n}.json" for n in ("fritzMinimal", "fritzError"))
    code, out, err = site.cli("import-job", spec)
    assert code == 0, err
    assert out.count("imported job") == 2
    assert (
        _db_row(site.db, 398955, "fritz", 1675956725)["id"]
        != _db_row(site.db, 398764, "fritz", 1675954353)["id"]
    )


def test_validation_rejects_upstreams_own_unit(tmp_path: Path) -> None:
    """Upstream's input uses unit "%", which its own JSON schema does not allow: upstream's test runs
    without validation; with ``main.validate`` the file is refused with the schema path."""
    site = make_site(tmp_path / "site", fritz_archive(tmp_path / "archive"), validate=True)
    code, _, err = site.cli(
        "import-job",
        f"{IMPORTER_FIXTURES / 'meta-fritzMinimal.input'}:{IMPORTER_FIXTURES / 'data-fritzMinimal.json'}",
    )
    assert code == 1
    line = _error_line(err)
    assert "meta-fritzMinimal.input: does not match the JSON schema" in line
    assert "$.statistics.vectorization_ratio.unit.base: '%'" in line


# ------------------------------------------------------------------------------------------ tags


def test_tags_keep_their_scope(fritz_site: Site, tmp_path: Path) -> None:
    meta = json.loads((IMPORTER_FIXTURES / "meta-fritzMinimal.input").read_text())
    meta["tags"] = [
        {"type": "app", "name": "vasp", "scope": "global"},
        {"type": "note", "name": "mine", "scope": "k106eb10"},
        {"type": "review", "name": "odd", "scope": "admin"},
    ]
    meta_path = tmp_path / "meta.json"
    meta_path.write_text(json.dumps(meta))
    code, _, err = fritz_site.cli("import-job", f"{meta_path}:{IMPORTER_FIXTURES / 'data-fritzMinimal.json'}")
    assert code == 0, err
    con = sqlite3.connect(fritz_site.db)
    tags = con.execute(
        "SELECT t.tag_type, t.tag_name, t.tag_scope FROM tag t JOIN jobtag jt ON jt.tag_id = t.id ORDER BY 1"
    ).fetchall()
    con.close()
    assert tags == [("app", "vasp", "global"), ("note", "mine", "k106eb10"), ("review", "odd", "admin")]


# ------------------------------------------------------------------------------------------ failures


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _nothing_written(site: Site) -> None:
    assert not any(site.archive.glob("fritz/*/*/*/meta.json")), "archive changed"
    if site.db.exists():
        con = sqlite3.connect(site.db)
        assert con.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 0
        con.close()


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


MINIMAL = IMPORTER_FIXTURES / "meta-fritzMinimal.input"
DATA = IMPORTER_FIXTURES / "data-fritzMinimal.json"


def _meta(**changes: Any) -> str:
    doc = json.loads(MINIMAL.read_text())
    for k, v in changes.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("meta", "data", "expect"),
    [
        pytest.param(_meta(exclusive=1), None, "unknown field `exclusive`", id="unknown-meta-key"),
        pytest.param(
            _meta(resources=[{"hostname": "f0649", "gpu": 1}]),
            None,
            "unknown field `gpu` - at `$.resources[0]`",
            id="unknown-nested-meta-key",
        ),
        pytest.param(_meta()[:200], None, "truncated JSON", id="truncated-meta"),
        pytest.param(_meta(jobId="x"), None, "Expected `int`, got `str` - at `$.jobId`", id="wrong-type"),
        pytest.param(_meta(cluster="nowhere"), None, "no such cluster: 'nowhere'", id="unknown-cluster"),
        pytest.param(_meta(subCluster="gpu"), None, "subcluster 'gpu' unknown", id="unknown-subcluster"),
        pytest.param(
            _meta(subCluster=None, resources=[{"hostname": "x9999"}]),
            None,
            "no subcluster found for cluster fritz and host x9999",
            id="no-subcluster-for-host",
        ),
        pytest.param(_meta(jobState="exploded"), None, "not a valid job state", id="bad-state"),
        pytest.param(_meta(numNodes=2), None, "len(resources) does not equal numNodes", id="node-count"),
        pytest.param(
            None,
            '{"cpu_load": {"node": {"unit": {"base": ""}, "timestep": 60, "series": [], "avg": 1}}}',
            "unknown field `avg`",
            id="unknown-data-key",
        ),
        pytest.param(None, DATA.read_text()[:5000], "truncated JSON", id="truncated-data"),
    ],
)
def test_bad_input_fails_fast_with_one_line_and_writes_nothing(
    fritz_site: Site, tmp_path: Path, meta: str | None, data: str | None, expect: str
) -> None:
    meta_path = _write(tmp_path, "meta.json", meta) if meta is not None else MINIMAL
    data_path = _write(tmp_path, "data.json", data) if data is not None else DATA
    code, out, err = fritz_site.cli("import-job", f"{meta_path}:{data_path}")
    assert code == 1
    line = _error_line(err)
    assert expect in line, line
    named = data_path if data is not None else meta_path
    assert str(named) in line, line
    assert out == ""
    _nothing_written(fritz_site)


def test_schema_validation_names_the_file(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", fritz_archive(tmp_path / "archive"), validate=True)
    meta_path = _write(tmp_path, "meta.json", _meta(statistics=None))  # the schema requires statistics
    code, _, err = site.cli("import-job", f"{meta_path}:{DATA}")
    assert code == 1
    line = _error_line(err)
    assert f"{meta_path}: does not match the JSON schema" in line and "statistics" in line
    # --no-validate overrides main.validate: then the same file imports.
    code, _, err = site.cli("import-job", "--no-validate", f"{meta_path}:{DATA}")
    assert code == 0, err


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ("onlyone.json", "expected <meta.json>:<data.json>"),
        ("a:b:c", "expected <meta.json>:<data.json>"),
        ("/no/such/meta.json:/no/such/data.json", "/no/such/meta.json: cannot read"),
    ],
)
def test_bad_arguments(fritz_site: Site, spec: str, expect: str) -> None:
    code, _, err = fritz_site.cli("import-job", spec)
    assert code == 1
    assert expect in _error_line(err)


def test_second_pair_bad_means_nothing_imported(fritz_site: Site, tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.json", _meta(jobId=1, cluster="nowhere"))
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{DATA},{bad}:{DATA}")
    assert code == 1
    assert str(bad) in _error_line(err)
    _nothing_written(fritz_site)


def test_importing_twice_is_refused(fritz_site: Site) -> None:
    assert fritz_site.cli("import-job", f"{MINIMAL}:{DATA}")[0] == 0
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{DATA}")
    assert code == 1
    assert "is already in the database" in _error_line(err)
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{DATA},{MINIMAL}:{DATA}")
    assert "already in the database" in _error_line(err) or "the same job as" in _error_line(err)


def test_database_failure_removes_the_archive_copy(fritz_site: Site) -> None:
    """The insert fails after the archive write (a real SQLite trigger aborts it): the archive copy is
    removed again, so the archive holds no job the database does not know."""
    from cc_core.db import Database

    Database(fritz_site.db).close_sync()  # create the schema
    con = sqlite3.connect(fritz_site.db)
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON job BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    con.commit()
    con.close()
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{DATA}")
    assert code == 1
    line = _error_line(err)
    assert "database insert failed" in line and "disk on fire" in line and "removed the archive copy" in line
    _nothing_written(fritz_site)
    assert not any(p.name.startswith(".") for p in fritz_site.archive.rglob("*")), "temporary files left"


def test_database_failure_restores_a_replaced_archive_copy(fritz_site: Site, tmp_path: Path) -> None:
    """If the job was already in the archive (not in the database), a failed insert puts it back."""
    assert fritz_site.cli("import-job", f"{MINIMAL}:{DATA}")[0] == 0
    d = _archived(fritz_site, "fritz", 398764, 1675954353)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    con = sqlite3.connect(fritz_site.db)
    con.execute("DELETE FROM job")
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON job BEGIN SELECT RAISE(ABORT, 'no'); END")
    con.commit()
    con.close()
    changed = _write(tmp_path, "meta.json", _meta(duration=999))
    code, _, err = fritz_site.cli("import-job", f"{changed}:{DATA}")
    assert code == 1
    assert "put back the previous archive copy" in _error_line(err)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_archive_failure_leaves_the_database_alone(fritz_site: Site) -> None:
    # A file where the job's level-1 directory must go: the archive write fails.
    (fritz_site.archive / "fritz" / "398").write_text("in the way")
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{DATA}")
    assert code == 1
    assert "cannot write the job to the archive" in _error_line(err)
    con = sqlite3.connect(fritz_site.db)
    assert con.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 0
    con.close()


def test_gzipped_data_file_is_accepted(fritz_site: Site, tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "data.json.gz"
    gz.write_bytes(gzip.compress(DATA.read_bytes()))
    code, _, err = fritz_site.cli("import-job", f"{MINIMAL}:{gz}")
    assert code == 0, err


def test_unusable_cluster_config_is_named(tmp_path: Path) -> None:
    archive = fritz_archive(tmp_path / "archive")
    (archive / "fritz" / "cluster.json").write_text(
        '{"name": "fritz", "metricConfig": [], "subClusters": []}'
    )
    site = make_site(tmp_path / "site", archive)
    code, _, err = site.cli("import-job", f"{MINIMAL}:{DATA}")
    assert code == 1
    line = _error_line(err)
    assert "cluster 'fritz' cannot be used" in line and "has no metric configurations" in line
    _nothing_written(site)

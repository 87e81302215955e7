"""``clustercockpit archive``: info, validate, copy (resumable, fs ↔ s3), remove, migrate, convert."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cc_core.cli import build_cli

from .conftest import copy_tree

V2_META = {
    "jobId": 42001,
    "user": "bob",
    "project": "p1",
    "cluster": "fritz",
    "subCluster": "main",
    "numNodes": 1,
    "exclusive": 2,
    "startTime": 1650000000,
    "stopTime": 1650003600,
    "duration": 3600,
    "jobState": "completed",
    "resources": [{"hostname": "f0101"}],
    "flops_any_avg": 12.3,
    "mem_used_max": 4.5,
    "statistics": {"flops_any": {"unit": {"base": "F/s", "prefix": "G"}, "avg": 12.3, "min": 0, "max": 20}},
}


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(build_cli(), ["--config", "/nonexistent/config.json", *args], input=input)
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def write_v2_archive(root: Path) -> Path:
    """A version-2 archive: two fritz jobs with `exclusive` and legacy fields, one broken meta.json."""
    root.mkdir(parents=True)
    (root / "version.txt").write_text("2\n")
    for i, exclusive in enumerate((2, 0)):
        meta = dict(V2_META, jobId=42001 + i, exclusive=exclusive, startTime=1650000000 + i)
        d = root / "fritz" / "42" / f"{1 + i:03d}" / str(1650000000 + i)
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps(meta, indent=2))
        (d / "data.json").write_text(
            '{"cpu_load": {"node": {"unit": {"base": ""}, "timestep": 60, "series": []}}}'
        )
    return root


# ------------------------------------------------------------------------------------------ info / validate


def test_info_table(fixture_archive: Path) -> None:
    code, out, _ = run("archive", "info", str(fixture_archive))
    assert code == 0
    emmy = next(line for line in out.splitlines() if "emmy" in line)
    assert "│    2 │" in emmy and "2020-12-" in emmy
    assert "TOTAL" in out and "alex" in out and "fritz" in out


def test_validate_reports_each_broken_job_with_its_path(fixture_archive: Path) -> None:
    code, out, err = run("archive", "validate", "--no-schema", str(fixture_archive))
    assert code == 1
    assert (
        f"error: {fixture_archive}/emmy/1404/397/1609300556: job directory without data.json or data.json.gz"
        in err
    )
    assert "2 jobs checked" in out and "1 valid, 1 with problems" in out
    assert "Traceback" not in err


def test_validate_with_schema(fixture_archive: Path) -> None:
    from cc_core.archive import validation

    if not validation.available():
        pytest.skip("jsonschema not installed")
    code, out, err = run("archive", "validate", str(fixture_archive))
    assert code == 1
    assert "meta.json does not match the JSON schema" in err  # upstream's own test data is not schema-valid
    assert "cluster configs with problems" in out


def test_version_2_archive_is_a_one_line_error(tmp_path: Path) -> None:
    archive = write_v2_archive(tmp_path / "v2")
    code, out, err = run("archive", "info", str(archive))
    assert code == 1 and out == ""
    assert err.strip() == (
        f"error: {archive}/version.txt: this is a version-2 job archive; "
        "run `clustercockpit archive migrate` to upgrade it to version 3"
    )


def test_bad_archive_arguments(tmp_path: Path) -> None:
    code, _, err = run("archive", "info", '{"kind": "tape"}')
    assert code == 1 and "unknown archive backend kind 'tape'" in err
    code, _, err = run("archive", "info", '{"kind": "file", "path": "x", "bucket": "y"}')
    assert code == 1 and "unknown key" in err and "bucket" in err
    code, _, err = run("archive", "info", "{not json")
    assert code == 1 and "invalid JSON archive config" in err


# ------------------------------------------------------------------------------------------ copy


def test_copy_is_resumable_and_reports_broken_jobs(fixture_archive: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    code, out, err = run("archive", "copy", str(fixture_archive), str(dst))
    assert code == 1  # job 1404397 has no data in the fixture
    assert "1 jobs copied, 0 already there, 1 failed" in out
    assert "emmy/1404/397/1609300556: job directory without data.json or data.json.gz; not copied" in err
    src_files = fixture_archive / "emmy/1403/244/1608923076"
    for name in ("meta.json", "data.json.gz"):
        assert (dst / "emmy/1403/244/1608923076" / name).read_bytes() == (src_files / name).read_bytes()
    assert sorted(p.name for p in dst.iterdir()) == ["alex", "emmy", "fritz", "version.txt"]
    code, out, _ = run("archive", "copy", str(fixture_archive), str(dst))
    assert "0 jobs copied, 1 already there, 1 failed" in out


@pytest.mark.service("s3")
def test_copy_fs_to_s3_and_back(
    fixture_archive: Path, tmp_path: Path, s3_server: Any, s3_bucket: str
) -> None:
    s3 = json.dumps(
        {
            "kind": "s3",
            "bucket": s3_bucket,
            "endpoint": s3_server.endpoint,
            "access-key": s3_server.access_key,
            "secret-key": s3_server.secret_key,
            "usePathStyle": True,
        }
    )
    config_file = tmp_path / "s3.json"
    config_file.write_text(s3)
    code, out, _ = run("archive", "copy", "--workers", "4", str(fixture_archive), str(config_file))
    assert "1 jobs copied" in out
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert "emmy/1403/244/1608923076/data.json.gz" in keys and "fritz/cluster.json" in keys
    code, out, _ = run("archive", "info", s3)
    assert code == 0 and f"s3://{s3_bucket}" in out
    back = tmp_path / "back"
    code, out, _ = run("archive", "copy", s3, str(back))
    assert code == 0 and "1 jobs copied" in out
    meta = "emmy/1403/244/1608923076/meta.json"
    assert (back / meta).read_bytes() == (fixture_archive / meta).read_bytes()


# ------------------------------------------------------------------------------------------ remove


def test_remove(fixture_archive: Path) -> None:
    code, out, _ = run("archive", "remove", str(fixture_archive), "--before", "2020-Dec-28", "--dry-run")
    assert code == 0 and "would remove 1 job from" in out
    code, _, err = run("archive", "remove", str(fixture_archive), "--before", "2020-Dec-28", input="n\n")
    assert code == 1 and "Aborted" in err
    assert (fixture_archive / "emmy/1403/244/1608923076/meta.json").exists()
    code, out, _ = run("archive", "remove", str(fixture_archive), "--after", "2020-12-28", "--yes")
    assert code == 0 and "removed 1 job" in out
    assert not (fixture_archive / "emmy/1404").exists()  # empty directories are pruned
    code, out, _ = run("archive", "remove", str(fixture_archive), "--cluster", "emmy", "-y")
    assert code == 0 and "removed 1 job and cluster 'emmy'" in out
    assert not (fixture_archive / "emmy").exists()
    code, _, err = run("archive", "remove", str(fixture_archive), "--cluster", "nope", "-y")
    assert code == 1 and "no cluster 'nope'" in err
    code, _, err = run("archive", "remove", str(fixture_archive))
    assert code == 2 and "--before" in err
    code, _, err = run("archive", "remove", str(fixture_archive), "--before", "yesterday")
    assert code == 2 and "expected a date like 2024-Jan-31" in err


# ------------------------------------------------------------------------------------------ migrate


def test_migrate_version_2_archive(tmp_path: Path) -> None:
    archive = write_v2_archive(tmp_path / "v2")
    broken = archive / "fritz/42/003/1650000002"
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text(json.dumps(dict(V2_META, jobId=42003, exclusive=7)))
    first = archive / "fritz/42/001/1650000000/meta.json"
    original = first.read_bytes()

    code, out, _ = run("archive", "migrate", str(archive), "--dry-run")
    assert code == 1 and "would migrate 2 jobs" in out and "1 failed" in out
    assert first.read_bytes() == original

    code, _, err = run("archive", "migrate", str(archive), input="n\n")
    assert code == 1 and "Aborted" in err and first.read_bytes() == original

    code, out, err = run("archive", "migrate", str(archive), "--yes", "--workers", "2")
    assert code == 1
    assert f"error: {broken}/meta.json: invalid `exclusive` value: 7 (expected 0, 1 or 2)" in err
    assert "version.txt left at 2" in err
    assert (archive / "version.txt").read_text() == "2\n"

    (broken / "meta.json").unlink()
    broken.rmdir()
    code, out, _ = run("archive", "migrate", str(archive), "--yes")
    assert code == 0 and "0 failed" in out and "version.txt is now 3" in out
    doc = json.loads(first.read_text())
    assert doc["shared"] == "single_user" and "exclusive" not in doc
    assert (doc["submitTime"], doc["energy"], doc["requestedMemory"]) == (1650000000, 0.0, 0)
    assert "flops_any_avg" not in doc and "mem_used_max" not in doc
    second = json.loads((archive / "fritz/42/002/1650000001/meta.json").read_text())
    assert second["shared"] == "multi_user"
    code, out, _ = run("archive", "info", str(archive))
    assert code == 0 and "fritz" in out
    code, _, err = run("archive", "migrate", str(archive), "--yes")
    assert code == 1 and "already version 3" in err


# ------------------------------------------------------------------------------------------ convert


def test_convert_to_parquet_and_back(fixture_archive: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    pq_dir = tmp_path / "pq"
    code, out, _err = run("archive", "convert", str(fixture_archive), str(pq_dir), "--to", "parquet")
    assert code == 1 and "1 jobs written to 1 Parquet files, 1 failed" in out
    files = sorted(p.relative_to(pq_dir).as_posix() for p in pq_dir.rglob("*") if p.is_file())
    assert next(f for f in files if f.endswith(".parquet")).startswith("emmy/cc-archive-")
    assert {"alex/cluster.json", "emmy/cluster.json", "fritz/cluster.json"} <= set(files)
    assert "version.txt" not in files

    import pyarrow.parquet as pq

    table = pq.read_table(next(pq_dir.glob("emmy/*.parquet")))
    row = table.to_pylist()[0]
    assert (row["job_id"], row["cluster"], row["sub_cluster"], row["num_nodes"], row["exclusive"]) == (
        1403244,
        "emmy",
        "haswell",
        32,
        1,
    )
    assert table.schema.field("metric_data_gz").type == "binary"

    back = tmp_path / "back"
    code, out, _ = run("archive", "convert", str(pq_dir), str(back), "--to", "json")
    assert code == 0 and "1 jobs imported" in out
    job = "emmy/1403/244/1608923076"
    assert (back / job / "data.json.gz").read_bytes() == (fixture_archive / job / "data.json.gz").read_bytes()
    code, out, _ = run("archive", "convert", str(pq_dir), str(back), "--to", "json")
    assert "0 jobs imported, 1 already there" in out


def test_convert_without_pyarrow_says_what_to_install(
    fixture_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, _, err = run("archive", "convert", str(fixture_archive), str(tmp_path / "pq"), "--to", "parquet")
    assert code == 1
    assert err.strip() == 'error: Parquet support needs pyarrow: pip install "clustercockpit[parquet]"'


def test_archive_copy_of_reference(reference_archive: Path, tmp_path: Path) -> None:
    code, out, _ = run("archive", "copy", str(reference_archive), str(tmp_path / "c"))
    assert code == 0 and "2 jobs copied" in out
    copy_tree(tmp_path / "c", tmp_path / "c2")
    code, out, _ = run("archive", "validate", "--no-schema", str(tmp_path / "c2"))
    assert code == 0 and "2 valid" in out

"""Checkpoint cleanup: delete mode, archive mode (Parquet rows checked against the files), failures
that must not lose data, and the ``cleanup-checkpoints`` command on a real site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from cc_metric_ccms.checkpoint import (
    CheckpointFile,
    CheckpointLevel,
    CheckpointMetric,
    encode_binary,
    encode_json,
)
from cc_metric_ccms.cleanup import archive_old, delete_old, scope_of
from cc_metric_ccms.engine import MetricStoreEngine
from ccms_testlib import make_config, simple_metrics

T0 = 1_700_000_000
HOUR = 3600


def _series(seed: int, n: int = 60) -> np.ndarray:
    data = np.random.default_rng(seed).uniform(0, 100, n).astype(np.float32)
    data[[5, 17]] = np.nan  # gaps are not rows
    return data


def _file(frm: int, seed: int) -> CheckpointFile:
    node = CheckpointLevel(metrics={"load": CheckpointMetric(60, frm, _series(seed))})
    node.children["hwthread3"] = CheckpointLevel(
        metrics={"cpu_user": CheckpointMetric(60, frm, _series(seed + 1))}
    )
    node.children["accelerator00000000:3B:00.0"] = CheckpointLevel(
        metrics={"acc_util": CheckpointMetric(60, frm, _series(seed + 2, 30))}
    )
    return CheckpointFile(frm, frm + HOUR, node)


def _write_site(root: Path) -> dict[tuple[str, str], list[Path]]:
    """Two hosts of cluster ``c1`` with snapshots at T0, T0+1h, T0+2h (binary and JSON)."""
    files: dict[tuple[str, str], list[Path]] = {}
    for h, host in enumerate(("n01", "n02")):
        d = root / "c1" / host
        d.mkdir(parents=True)
        for i in range(3):
            frm = T0 + i * HOUR
            cf = _file(frm, 10 * h + i)
            p = d / (f"{frm}.bin" if i % 2 == 0 else f"{frm}.json")
            p.write_bytes(encode_binary(cf) if p.suffix == ".bin" else encode_json(cf))
            files.setdefault(("c1", host), []).append(p)
        (d / "current.wal").write_bytes(b"")
    return files


def _expected_rows(files: list[tuple[str, Path]]) -> set[tuple]:
    """Rows computed straight from the generator, not from the files."""
    rows = set()
    for host, p in files:
        frm = int(p.stem)
        h = 0 if host == "n01" else 1
        seed = 10 * h + (frm - T0) // HOUR
        for metric, scope, sid, data in (
            ("load", "node", "", _series(seed)),
            ("cpu_user", "hwthread", "3", _series(seed + 1)),
            ("acc_util", "accelerator", "00000000:3B:00.0", _series(seed + 2, 30)),
        ):
            for i, v in enumerate(data):
                if not np.isnan(v):
                    rows.add(("c1", host, metric, scope, sid, frm + 60 * i, 60, float(v)))
    return rows


def test_scope_of_child_names() -> None:
    assert scope_of("hwthread12") == ("hwthread", "12")
    assert scope_of("cpu7") == ("hwthread", "7")
    assert scope_of("socket1") == ("socket", "1")
    assert scope_of("memoryDomain0") == ("memoryDomain", "0")
    assert scope_of("core5") == ("core", "5")
    assert scope_of("accelerator00000000:3B:00.0") == ("accelerator", "00000000:3B:00.0")
    assert scope_of("coreish") == ("coreish", "")


def test_delete_mode_keeps_what_the_loader_needs(tmp_path: Path) -> None:
    files = _write_site(tmp_path)
    # cutoff inside the second file's window: the first is old, the second may reach into retention
    rep = delete_old(tmp_path, T0 + HOUR + 600)
    assert rep.files == 2 and not rep.errors
    for paths in files.values():
        assert not paths[0].exists() and paths[1].exists() and paths[2].exists()
        assert (paths[0].parent / "current.wal").exists()


def test_archive_mode_writes_every_sample_then_deletes(tmp_path: Path) -> None:
    ckpt, target = tmp_path / "ckpt", tmp_path / "archive"
    files = _write_site(ckpt)
    before = T0 + 2 * HOUR + 60
    rep = archive_old(ckpt, target, before)
    archived = [(host, paths[i]) for (_c, host), paths in files.items() for i in (0, 1)]
    assert rep.files == 4 and not rep.errors
    out = target / "c1" / f"{before}.parquet"
    assert rep.parquet_files == [out]
    table = pq.read_table(out)
    assert table.schema.names == [
        "cluster",
        "hostname",
        "metric",
        "scope",
        "scope_id",
        "timestamp",
        "frequency",
        "value",
    ]
    assert str(table.schema.field("value").type) == "float"
    got = set(zip(*(table.column(n).to_pylist() for n in table.schema.names), strict=True))
    assert got == _expected_rows(archived)
    assert table.num_rows == len(got) == rep.rows
    assert pq.ParquetFile(out).metadata.num_row_groups == 2  # one per host
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    for _host, p in archived:
        assert not p.exists()
    for paths in files.values():
        assert paths[2].exists()
    assert not list(target.rglob("*.tmp"))


def test_unreadable_file_is_left_and_reported(tmp_path: Path) -> None:
    ckpt, target = tmp_path / "ckpt", tmp_path / "archive"
    files = _write_site(ckpt)
    bad = files[("c1", "n02")][0]
    bad.write_bytes(b"\x00garbage")
    rep = archive_old(ckpt, target, T0 + HOUR + 60)
    assert len(rep.errors) == 1 and str(bad) in rep.errors[0]
    assert bad.exists()  # not archived, so not deleted
    assert not files[("c1", "n01")][0].exists()
    assert pq.read_table(target / "c1" / f"{T0 + HOUR + 60}.parquet").num_rows == len(
        _expected_rows([("n01", files[("c1", "n01")][0])])
    )


def test_failed_parquet_write_deletes_nothing(tmp_path: Path) -> None:
    ckpt, target = tmp_path / "ckpt", tmp_path / "archive"
    files = _write_site(ckpt)
    target.mkdir()
    (target / "c1").write_text("a file where the cluster directory should be")
    rep = archive_old(ckpt, target, T0 + 2 * HOUR + 60)
    assert rep.files == 0 and rep.errors
    assert all(p.exists() for paths in files.values() for p in paths)


def test_engine_cleanup_follows_the_config(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    files = _write_site(ckpt)
    cfg = make_config(ckpt, retention="1h")
    cfg.cleanup.mode = "archive"
    cfg.cleanup.directory = "parquet-out"
    engine = MetricStoreEngine(
        cfg, simple_metrics(), base_dir=tmp_path, fsync=False, clock=lambda: T0 + 3 * HOUR + 60
    )
    rep = engine.cleanup()
    assert rep.files == 4
    assert (tmp_path / "parquet-out" / "c1" / f"{T0 + 2 * HOUR + 60}.parquet").is_file()
    assert all(paths[2].exists() for paths in files.values())


def test_cleanup_checkpoints_command(tmp_path: Path) -> None:
    from cc_core.testing.site import make_site

    site = make_site(
        tmp_path / "site",
        [],
        config={
            "metric-store": {
                "retention-in-memory": "1h",
                "memory-cap": 0,
                "checkpoints": {"directory": "./var/checkpoints"},
                "cleanup": {"mode": "archive", "directory": "./var/parquet"},
            }
        },
    )
    files = _write_site(site.root / "var" / "checkpoints")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cc_core",
            "--config",
            str(site.config_path),
            "cleanup-checkpoints",
            "--before",
            str(T0 + 2 * HOUR + 60),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **site.environ},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 checkpoint files archived to Parquet" in proc.stdout
    assert (site.root / "var" / "parquet" / "c1" / f"{T0 + 2 * HOUR + 60}.parquet").is_file()
    assert sum(p.exists() for paths in files.values() for p in paths) == 2

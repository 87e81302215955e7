"""The example backend passes the core's metric-backend contract (the dataset written as CSV files), and
reports a malformed file by name and line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from cc_metric_ccms.store import MetricStoreError
from cc_metric_example.backend import COLUMNS, CSVBackend, CSVConfig

from cc_core.testing.metric_contract import (
    CLUSTER,
    LoopThread,
    MetricBackendContract,
    MetricDataset,
    make_cluster,
    plugin_context,
)


def write_csv(path: Path, dataset: MetricDataset, *, fresh: bool) -> None:
    """The dataset's series as one CSV file (written atomically: temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for s in dataset.series(fresh=fresh):
            for t, v in zip(s.ts.tolist(), s.values.tolist(), strict=True):
                out.writerow([t, CLUSTER, s.hostname, s.metric, s.type or "", s.type_id or "", v])
    tmp.replace(path)


class TestCSVBackend(MetricBackendContract):
    async def make_backend(self, dataset: MetricDataset, context: Any, tmp_path: Path) -> CSVBackend:
        write_csv(tmp_path / "job.csv", dataset, fresh=False)
        write_csv(tmp_path / "fresh.csv", dataset, fresh=True)
        backend = CSVBackend(CSVConfig(scope="*", directory=str(tmp_path)), context)
        await backend.start()
        return backend


def test_bad_rows_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(",".join(COLUMNS) + f"\n60,{CLUSTER},n1,cpu_load,,,x\n")
    loop = LoopThread()
    try:
        backend = CSVBackend(CSVConfig(scope="*", directory=str(tmp_path)), plugin_context([make_cluster()]))
        with pytest.raises(MetricStoreError, match=r"bad\.csv:2: timestamp/value is not a number"):
            loop.run(backend.load_node_data(CLUSTER, ["cpu_load"], ["n1"], ["node"], 0, 600))
    finally:
        loop.close()


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    loop = LoopThread()
    try:
        backend = CSVBackend(CSVConfig(scope="*", directory=str(tmp_path / "nope")))
        with pytest.raises(MetricStoreError, match="does not exist"):
            loop.run(backend.start())
    finally:
        loop.close()

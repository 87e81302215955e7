"""Metric series from CSV files (kind ``example-csv``): the worked example of docs/plugins.md.

A ``metric-store-external`` entry selects it::

    {"kind": "example-csv", "scope": "*", "directory": "/var/lib/cc-metrics"}

Every ``*.csv`` file in ``directory`` holds rows ``timestamp,cluster,hostname,metric,type,type-id,value``
with a header line; ``type``/``type-id`` are empty for node-level series and e.g. ``hwthread``/``3`` for
finer ones (the names cc-metric-collector uses). The files are re-read on every request, so whatever
writes them needs no coordination beyond writing each file atomically (temp file + rename).

Only `fetch` is written here: the base class `ScratchStoreBackend` turns the native series into every
`cc_core.interfaces.MetricBackend` answer (scope mapping, aggregation, resampling, statistics, health),
exactly as for the built-in Prometheus and InfluxDB backends.
"""

from __future__ import annotations

import asyncio
import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec
import numpy as np
from cc_metric_ccms.remote import RemoteSeries, ScratchStoreBackend
from cc_metric_ccms.store import MetricStoreError

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema.cluster import Cluster, MetricConfig

COLUMNS = ["timestamp", "cluster", "hostname", "metric", "type", "type-id", "value"]


class CSVConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    """The config section; `clustercockpit config-reference` documents it from these descriptions."""

    scope: Annotated[str, msgspec.Meta(description="Clusters served by this source (`*` = all).")]
    directory: Annotated[str, msgspec.Meta(description="Directory holding the `*.csv` metric files.")]

    def __post_init__(self) -> None:
        if not self.directory:
            raise ValueError("`directory` must not be empty")


SeriesKey = tuple[str, str, str | None, str | None]  # metric, host, type, type-id


class CSVBackend(ScratchStoreBackend):
    """See the module docstring."""

    kind: ClassVar[str] = "example-csv"
    Config: ClassVar[type] = CSVConfig

    def __init__(self, config: CSVConfig, context: PluginContext | None = None) -> None:
        super().__init__(context)
        self.config = config
        self.directory = Path(config.directory)

    async def start(self) -> None:
        if not self.directory.is_dir():
            raise MetricStoreError(f"example-csv: directory {str(self.directory)!r} does not exist")

    async def fetch(
        self,
        cluster: Cluster,
        metrics: Sequence[MetricConfig],
        hosts: Sequence[str] | None,
        start: int,
        stop: int,
    ) -> list[RemoteSeries]:
        if (hosts is not None and not hosts) or not metrics or stop <= start:
            return []
        names = {m.name for m in metrics}
        wanted = None if hosts is None else set(hosts)
        return await asyncio.to_thread(self._read, cluster.name, names, wanted, start, stop)

    def _read(
        self, cluster: str, names: set[str], hosts: set[str] | None, start: int, stop: int
    ) -> list[RemoteSeries]:
        samples: dict[SeriesKey, list[tuple[int, float]]] = defaultdict(list)
        for path in sorted(self.directory.glob("*.csv")):
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames != COLUMNS:
                    raise MetricStoreError(f"{path}: header must be {','.join(COLUMNS)}")
                for line, row in enumerate(reader, start=2):
                    if row["cluster"] != cluster or row["metric"] not in names:
                        continue
                    if hosts is not None and row["hostname"] not in hosts:
                        continue
                    try:
                        ts = int(row["timestamp"])
                        value = float(row["value"]) if row["value"] else math.nan
                    except ValueError:
                        raise MetricStoreError(f"{path}:{line}: timestamp/value is not a number") from None
                    if start <= ts < stop:
                        key = (row["metric"], row["hostname"], row["type"] or None, row["type-id"] or None)
                        samples[key].append((ts, value))
        out = []
        for (metric, host, typ, tid), rows in samples.items():
            ts_arr = np.array([t for t, _ in rows], dtype=np.int64)
            values = np.array([v for _, v in rows], dtype=np.float64)
            out.append(RemoteSeries(metric, host, typ if tid is not None else None, tid, ts_arr, values))
        return out

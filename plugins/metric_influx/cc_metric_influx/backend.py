"""InfluxDB 1.x as a ClusterCockpit metric backend (kind ``influxdb``), InfluxQL over HTTP.

A request becomes one ``SELECT mean(<field>) … GROUP BY time(<timestep>), <host>, <type>, <type-id>``
statement per metric, all sent in one ``/query`` call, so collectors that sample slightly off the grid
land in one bucket per interval (buckets start at multiples of the interval since the epoch). The
series go to the scratch-store machinery of `cc_metric_ccms.remote`, which does the scope mapping,
aggregation, LTTB and statistics exactly like the embedded store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import numpy as np
from cc_metric_ccms.remote import HTTPScratchStoreBackend, RemoteSeries, host_regex
from cc_metric_ccms.store import MetricStoreError

from cc_metric_influx.config import InfluxConfig

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema.cluster import Cluster, MetricConfig

log = logging.getLogger(__name__)


class _Series(msgspec.Struct):
    name: str = ""
    tags: dict[str, str] | None = None
    columns: list[str] = msgspec.field(default_factory=list)
    values: list[list[Any]] = msgspec.field(default_factory=list)


class _Result(msgspec.Struct):
    statement_id: int = 0
    series: list[_Series] = msgspec.field(default_factory=list)
    error: str | None = None


class _Reply(msgspec.Struct):
    results: list[_Result] = msgspec.field(default_factory=list)
    error: str | None = None


_DECODER = msgspec.json.Decoder(_Reply)


def ident(name: str) -> str:
    """An InfluxQL identifier (double-quoted)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL string literal (single-quoted)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxBackend(HTTPScratchStoreBackend):
    """See the module docstring."""

    kind: ClassVar[str] = "influxdb"
    Config: ClassVar[type] = InfluxConfig

    def __init__(self, config: InfluxConfig, context: PluginContext | None = None) -> None:
        super().__init__(config, context)

    # ----------------------------------------------------------------------------- InfluxQL

    def statement(
        self, metric: MetricConfig, cluster: str, hosts: Sequence[str] | None, start: int, stop: int
    ) -> str:
        c = self.config
        step = max(int(metric.timestep), 1)
        where = [f"time >= {int(start)}s", f"time < {int(stop)}s"]
        if c.cluster_tag:
            where.append(f"{ident(c.cluster_tag)} = {literal(cluster)}")
        if hosts is not None:
            regex = host_regex(hosts).replace("/", "\\/")
            where.append(f"{ident(c.host_tag)} =~ /^(?:{regex})$/")
        measurement = c.measurements.get(metric.name, metric.name)
        group = ", ".join(ident(t) for t in (c.host_tag, c.type_tag, c.type_id_tag) if t)
        # Every name is quoted by `ident`, every value by `literal` or the escaped host regex.
        return (
            f"SELECT mean({ident(c.field)}) FROM {ident(measurement)} WHERE {' AND '.join(where)} "  # noqa: S608
            f"GROUP BY time({step}s), {group} fill(none)"
        )

    async def query(self, statements: Sequence[str]) -> list[_Result]:
        """Run ``statements`` in one request (epoch seconds); a failing statement raises."""
        c = self.config
        url = f"{self.base_url}/query"
        form = {"db": c.database, "q": ";".join(statements), "epoch": "s"}
        if c.username:
            form.update(u=c.username, p=c.password)
        try:
            resp = await self._http().post(url, data=form)
        except Exception as e:
            raise MetricStoreError(f"'{url}': {type(e).__name__}: {e}") from None
        try:
            reply = _DECODER.decode(resp.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise MetricStoreError(f"'{url}': HTTP {resp.status_code}: {resp.text[:300]}") from None
        if resp.status_code != 200 or reply.error:
            raise MetricStoreError(f"InfluxDB: HTTP {resp.status_code}: {reply.error}")
        for r in reply.results:
            if r.error and "measurement not found" not in r.error:
                raise MetricStoreError(f"InfluxDB refused a query: {r.error}")
        return reply.results

    # ------------------------------------------------------------------------------ fetching

    def _series(self, metric: str, s: _Series) -> RemoteSeries | None:
        c = self.config
        tags = s.tags or {}
        host = tags.get(c.host_tag)
        if not host or not s.values:
            return None
        typ = tags.get(c.type_tag) or None
        tid = tags.get(c.type_id_tag) or None
        ts = np.fromiter((int(v[0]) for v in s.values), dtype=np.int64, count=len(s.values))
        vals = np.fromiter(
            (math.nan if v[1] is None else float(v[1]) for v in s.values),
            dtype=np.float64,
            count=len(s.values),
        )
        return RemoteSeries(metric, host, typ if tid is not None else None, tid, ts, vals)

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
        results = await self.query([self.statement(mc, cluster.name, hosts, start, stop) for mc in metrics])
        by_id = {r.statement_id: r for r in results}
        out: list[RemoteSeries] = []
        for i, mc in enumerate(metrics):
            r = by_id.get(i)
            for s in r.series if r is not None else ():
                rs = self._series(mc.name, s)
                if rs is not None:
                    out.append(rs)
        return out

"""Prometheus as a ClusterCockpit metric backend (kind ``prometheus``).

Each metric is a PromQL template (see `config`); a request evaluates it with ``query_range`` over the
hosts and time range in question, step = the metric's timestep, and hands the native series to the
scratch-store machinery of `cc_metric_ccms.remote`, which does the scope mapping, aggregation, LTTB and
statistics exactly like the embedded store. Requests go as POST form bodies (a node list of hundreds of
hosts does not fit into a URL) and ranges longer than ``max-points`` steps are split.

Prometheus repeats the last sample for up to its lookback delta (5 m) when a series stops; a job range
therefore ends one second before the job's end, and a health check sees a metric as fresh for up to
five minutes after its last sample (documented, not hidden).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import numpy as np
from cc_metric_ccms.remote import HTTPScratchStoreBackend, RemoteSeries, host_regex
from cc_metric_ccms.store import MetricStoreError

from cc_metric_prometheus.config import PrometheusConfig

if TYPE_CHECKING:
    from cc_core.context import PluginContext
    from cc_core.schema.cluster import Cluster, MetricConfig

log = logging.getLogger(__name__)


class _Matrix(msgspec.Struct):
    metric: dict[str, str]
    values: list[tuple[float, str]] = msgspec.field(default_factory=list)


class _Data(msgspec.Struct):
    resultType: str
    result: list[_Matrix] = msgspec.field(default_factory=list)


class _Reply(msgspec.Struct):
    status: str
    data: _Data | None = None
    error: str | None = None
    errorType: str | None = None


_DECODER = msgspec.json.Decoder(_Reply)


def _promql_string(s: str) -> str:
    """``s`` as the content of a double-quoted PromQL string."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusBackend(HTTPScratchStoreBackend):
    """See the module docstring."""

    kind: ClassVar[str] = "prometheus"
    Config: ClassVar[type] = PrometheusConfig

    def __init__(self, config: PrometheusConfig, context: PluginContext | None = None) -> None:
        super().__init__(config, context)

    def client_options(self) -> dict[str, Any]:
        if self.config.username:
            return {"auth": (self.config.username, self.config.password)}
        return {}

    # ------------------------------------------------------------------------------ PromQL

    def render(self, metric: MetricConfig, cluster: str, hosts: Sequence[str] | None) -> str:
        """The PromQL of ``metric`` for ``hosts`` (None: all hosts of the cluster)."""
        c = self.config
        step = max(int(metric.timestep), 1)
        matchers = []
        if c.cluster_label:
            matchers.append(f'{c.cluster_label}="{_promql_string(cluster)}"')
        regex = ".+" if hosts is None else host_regex(hosts)
        matchers.append(f'{c.host_label}=~"{_promql_string(regex)}"')
        text = c.template(metric.name).query
        for token, value in (
            ("{filter}", ",".join(matchers)),
            ("{hosts}", _promql_string(regex)),
            ("{cluster}", _promql_string(cluster)),
            ("{host_label}", c.host_label),
            ("{rate}", f"{max(4 * step, 60)}s"),
            ("{step}", f"{step}s"),
            ("{metric}", metric.name),
        ):
            text = text.replace(token, value)
        return text

    async def query_range(self, promql: str, start: int, end: int, step: int) -> list[_Matrix]:
        """``/api/v1/query_range`` (split into chunks of at most ``max-points`` steps)."""
        out: list[_Matrix] = []
        chunk = step * self.config.max_points
        t = start
        while t <= end:
            stop = min(end, t + chunk - step)
            out.extend(await self._query_range(promql, t, stop, step))
            t = stop + step
        return out

    async def _query_range(self, promql: str, start: int, end: int, step: int) -> list[_Matrix]:
        url = f"{self.base_url}/api/v1/query_range"
        form = {"query": promql, "start": str(start), "end": str(end), "step": f"{step}s"}
        try:
            resp = await self._http().post(url, data=form)
        except Exception as e:
            raise MetricStoreError(f"'{url}': {type(e).__name__}: {e}") from None
        try:
            reply = _DECODER.decode(resp.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise MetricStoreError(f"'{url}': HTTP {resp.status_code}: {resp.text[:300]}") from None
        if reply.status != "success" or reply.data is None:
            raise MetricStoreError(f"Prometheus refused {promql!r}: {reply.errorType}: {reply.error}")
        if reply.data.resultType != "matrix":
            raise MetricStoreError(f"PromQL {promql!r} gives a {reply.data.resultType}, not a range vector")
        return reply.data.result

    # ------------------------------------------------------------------------------- fetching

    def _series(self, metric: str, m: _Matrix) -> RemoteSeries | None:
        c = self.config
        host = m.metric.get(c.host_label)
        if not host or not m.values:
            return None
        spec = c.template(metric)
        typ: str | None = None
        tid: str | None = None
        if spec.type and spec.type_id_label and spec.type_id_label in m.metric:
            typ, tid = spec.type, m.metric[spec.type_id_label]
        elif c.type_label in m.metric and c.type_id_label in m.metric:
            typ, tid = m.metric[c.type_label], m.metric[c.type_id_label]
        ts = np.fromiter((round(p[0]) for p in m.values), dtype=np.int64, count=len(m.values))
        vals = np.fromiter((float(p[1]) for p in m.values), dtype=np.float64, count=len(m.values))
        vals[~np.isfinite(vals)] = math.nan
        return RemoteSeries(metric, host, typ, tid, ts, vals)

    async def fetch(
        self,
        cluster: Cluster,
        metrics: Sequence[MetricConfig],
        hosts: Sequence[str] | None,
        start: int,
        stop: int,
    ) -> list[RemoteSeries]:
        if hosts is not None and not hosts:
            return []

        async def one(mc: MetricConfig) -> list[RemoteSeries]:
            step = max(int(mc.timestep), 1)
            end = stop - 1  # [start, stop): Prometheus' end is inclusive
            if end < start:
                return []
            matrix = await self.query_range(self.render(mc, cluster.name, hosts), start, end, step)
            out = [self._series(mc.name, m) for m in matrix]
            return [s for s in out if s is not None]

        parts = await asyncio.gather(*(one(mc) for mc in metrics))
        return [s for part in parts for s in part]

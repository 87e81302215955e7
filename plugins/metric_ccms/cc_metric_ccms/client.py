"""Client of a cc-metric-store query API (kind ``cc-metric-store``, a ``metric-store-external`` entry).

Talks to Go cc-metric-store or to ``clustercockpit metric-store serve`` the way upstream's
``internal/metricstoreclient`` does (contract §8.3): the request JSON is the body of an HTTP **GET** to
``<url>/api/query?version=v2`` with ``Authorization: Bearer <token>``, 10 s timeout by default; any
status but 200 is an error. The scope mapping is the embedded store's (`scopes`, `query.build_job_queries`):
the server aggregates, we only name what to read.

One fix of upstream: a query that lists several type ids without aggregation is sent as one query per
id. The server leaves out series it has no data for, so upstream's client, which matches the n-th result
with the n-th id, labels series with the wrong core or socket when one in the middle is missing; with
one id per query the position says which is which.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import numpy as np

from cc_core.interfaces import NodeHealth
from cc_core.schema.metrics import JobData, JobMetric, JobStats, MetricStatistics, ScopedStats, Series

from . import query
from .api import RESPONSE_DECODER, APIMetricData, APIQuery, APIQueryResponse
from .backend import cluster_of
from .config import ExternalStoreConfig
from .scopes import ScopeQuery
from .store import MetricStoreError

if TYPE_CHECKING:
    import httpx

    from cc_core.context import PluginContext
    from cc_core.schema import Job

log = logging.getLogger(__name__)

_EMPTY = np.empty(0, dtype=np.float64)


@dataclass(slots=True)
class _Sent:
    """What one API query of a request stands for."""

    query: APIQuery
    scope: ScopeQuery
    series_id: str | None


def _api_queries(qs: Sequence[ScopeQuery], resolution: int) -> list[_Sent]:
    out: list[_Sent] = []
    for q in qs:
        if q.type is None:
            out.append(_Sent(APIQuery(q.metric, q.hostname, resolution=resolution), q, None))
        elif q.aggregate:
            api = APIQuery(
                q.metric, q.hostname, type=q.type, type_ids=q.type_ids, aggreg=True, resolution=resolution
            )
            out.append(_Sent(api, q, q.series_id))
        else:
            for tid in q.type_ids:
                api = APIQuery(q.metric, q.hostname, type=q.type, type_ids=[tid], resolution=resolution)
                out.append(_Sent(api, q, tid))
    return out


def _stats(r: APIMetricData, sanitize: bool = True) -> MetricStatistics:
    avg = math.nan if r.avg is None else r.avg
    mn = math.nan if r.min is None else r.min
    mx = math.nan if r.max is None else r.max
    if sanitize and (math.isnan(avg) or math.isnan(mn) or math.isnan(mx)):
        return MetricStatistics(0.0, 0.0, 0.0)
    return MetricStatistics(avg, mn, mx)


class ExternalStore:
    """See the module docstring."""

    kind: ClassVar[str] = "cc-metric-store"
    Config: ClassVar[type] = ExternalStoreConfig

    def __init__(self, config: ExternalStoreConfig, context: PluginContext | None = None) -> None:
        self.config = config
        self.context = context
        self.base_url = config.url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
            self._client = httpx.AsyncClient(
                timeout=self.config.timeout, headers=headers, trust_env=False, http2=False
            )
        return self._client

    async def _request(self, path: str, body: bytes) -> bytes:
        url = f"{self.base_url}{path}"
        try:
            resp = await self._http().request(
                "GET", url, content=body, headers={"Content-Type": "application/json"}
            )
        except Exception as e:  # connection refused, timeout, …: the message says which
            raise MetricStoreError(f"'{url}': {type(e).__name__}: {e}") from None
        if resp.status_code != 200:
            raise MetricStoreError(f"'{url}': HTTP Status: {resp.status_code} {resp.text[:300].strip()}")
        return resp.content

    async def _query(
        self,
        cluster: str,
        sent: Sequence[_Sent],
        frm: int,
        to: int,
        *,
        with_data: bool = True,
        for_all_nodes: Sequence[str] | None = None,
    ) -> APIQueryResponse:
        req: dict[str, Any] = {
            "cluster": cluster,
            "queries": [s.query for s in sent],
            "from": frm,
            "to": to,
            "with-stats": True,
            "with-data": with_data,
            "with-padding": False,
        }
        if for_all_nodes is not None:
            req["for-all-nodes"] = list(for_all_nodes)
        raw = await self._request("/api/query?version=v2", msgspec.json.encode(req))
        try:
            resp = RESPONSE_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MetricStoreError(f"{self.base_url}: invalid query response: {e}") from None
        if len(resp.results) != len(sent) and for_all_nodes is None:
            raise MetricStoreError(f"{self.base_url}: {len(resp.results)} results for {len(sent)} queries")
        return resp

    def _cluster(self, name: str) -> Any:
        return cluster_of(self.context, name)

    # -------------------------------------------------------------------------- MetricBackend

    def _assemble(
        self, configs: dict[str, Any], sent: Sequence[_Sent], resp: APIQueryResponse, what: str
    ) -> JobData:
        out: JobData = {}
        errors: list[str] = []
        for s, row in zip(sent, resp.results, strict=True):
            mc = configs.get(s.query.metric)
            if mc is None or not row:
                continue
            jm = out.setdefault(s.query.metric, {}).get(s.scope.scope)
            for r in row:
                if r.error is not None:
                    errors.append(f"failed to fetch '{s.query.metric}' from host '{s.query.host}': {r.error}")
                    continue
                if jm is None:
                    jm = JobMetric(unit=mc.unit, timestep=r.resolution or int(mc.timestep), series=[])
                    out[s.query.metric][s.scope.scope] = jm
                data = r.data if r.data is not None else _EMPTY
                jm.series.append(Series(s.query.host, data, _stats(r), s.series_id))
        if errors:
            log.warning("%s: partial metric data from %s: %s", what, self.base_url, "; ".join(errors))
        return {m: scoped for m, scoped in out.items() if scoped}

    async def load_data(
        self, job: Job, metrics: Sequence[str], scopes: Sequence[str], resolution: int
    ) -> JobData:
        cluster = self._cluster(job.cluster)
        sent = _api_queries(query.build_job_queries(cluster, job, metrics, scopes), resolution)
        frm, to = query._job_range(job, None)
        resp = await self._query(job.cluster, sent, frm, to)
        sub = job.sub_cluster or cluster.subcluster_for_node(job.resources[0].hostname) or ""
        return self._assemble(query.metric_configs(cluster, sub), sent, resp, f"job {job.job_id}")

    async def load_stats(self, job: Job, metrics: Sequence[str]) -> dict[str, dict[str, MetricStatistics]]:
        cluster = self._cluster(job.cluster)
        sent = _api_queries(query.build_job_queries(cluster, job, metrics, ["node"]), 0)
        frm, to = query._job_range(job, None)
        resp = await self._query(job.cluster, sent, frm, to, with_data=False)
        out: dict[str, dict[str, MetricStatistics]] = {}
        for s, row in zip(sent, resp.results, strict=True):
            for r in row:
                st = _stats(r, sanitize=False)
                if r.error is None and not any(math.isnan(x) for x in (st.avg, st.min, st.max)):  # type: ignore[arg-type]
                    out.setdefault(s.query.metric, {})[s.query.host] = st
        return out

    async def load_scoped_stats(self, job: Job, metrics: Sequence[str], scopes: Sequence[str]) -> JobStats:
        cluster = self._cluster(job.cluster)
        sent = _api_queries(query.build_job_queries(cluster, job, metrics, scopes), 0)
        frm, to = query._job_range(job, None)
        resp = await self._query(job.cluster, sent, frm, to, with_data=False)
        out: JobStats = {}
        for s, row in zip(sent, resp.results, strict=True):
            for r in row:
                if r.error is None:
                    out.setdefault(s.query.metric, {}).setdefault(s.scope.scope, []).append(
                        ScopedStats(s.query.host, _stats(r), s.series_id)
                    )
        return out

    async def load_node_data(
        self,
        cluster: str,
        metrics: Sequence[str],
        nodes: Sequence[str] | None,
        scopes: Sequence[str],
        start: int,
        stop: int,
    ) -> dict[str, dict[str, list[JobMetric]]]:
        c = self._cluster(cluster)
        configs = {mc.name: mc for mc in c.metric_config}
        names = [m for m in (metrics if metrics is not None else list(configs)) if m in configs]
        if nodes is None:
            resp = await self._query(cluster, [], start, stop, for_all_nodes=names)
            asked = list(resp.queries or [])
        else:
            sent = [_Sent(APIQuery(m, h), ScopeQuery(m, h, "node"), None) for h in nodes for m in names]
            resp = await self._query(cluster, sent, start, stop)
            asked = [s.query for s in sent]
        out: dict[str, dict[str, list[JobMetric]]] = {}
        for q, row in zip(asked, resp.results, strict=False):
            if not row or row[0].error is not None:
                continue
            r, mc = row[0], configs[q.metric]
            series = Series(q.host, r.data if r.data is not None else _EMPTY, _stats(r))
            jm = JobMetric(unit=mc.unit, timestep=int(mc.timestep), series=[series])
            out.setdefault(q.host, {}).setdefault(q.metric, []).append(jm)
        return out

    async def load_node_list_data(
        self,
        cluster: str,
        sub_cluster: str,
        nodes: Sequence[str],
        metrics: Sequence[str],
        scopes: Sequence[str],
        resolution: int,
        start: int,
        stop: int,
    ) -> dict[str, JobData]:
        c = self._cluster(cluster)
        per_host: list[tuple[str, dict[str, Any], list[_Sent]]] = []
        for host in nodes:
            qs, configs = query.build_node_queries(c, sub_cluster, host, metrics, scopes)
            per_host.append((host, configs, _api_queries(qs, resolution)))
        sent = [s for _, _, ss in per_host for s in ss]
        if not sent:
            return {}
        resp = await self._query(cluster, sent, start, stop)
        out: dict[str, JobData] = {}
        pos = 0
        for host, configs, ss in per_host:
            part = APIQueryResponse(results=resp.results[pos : pos + len(ss)])
            pos += len(ss)
            data = self._assemble(configs, ss, part, f"node {host}")
            if data:
                out[host] = data
        return out

    async def health_check(
        self, cluster: str, nodes: Sequence[str], metrics: Sequence[str]
    ) -> dict[str, NodeHealth]:
        body = msgspec.json.encode({"cluster": cluster, "nodes": list(nodes), "metric-names": list(metrics)})
        raw = await self._request("/api/healthcheck", body)
        try:
            results = msgspec.json.decode(raw, type=dict[str, dict[str, Any]])
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MetricStoreError(f"{self.base_url}: invalid health check response: {e}") from None
        out: dict[str, NodeHealth] = {}
        for host, r in results.items():
            state = r.get("State") or "failed"
            detail: dict[str, Any] = {}
            if r.get("HealthMetrics"):
                try:
                    detail = msgspec.json.decode(r["HealthMetrics"])
                except msgspec.DecodeError:
                    detail = {}
            out[host] = NodeHealth(
                state if state in ("full", "partial", "failed") else "failed",
                missing=list(detail.get("missing") or []),
                degraded=list(detail.get("degraded") or []),
            )
        return out

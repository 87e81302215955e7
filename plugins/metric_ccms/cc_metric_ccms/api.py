"""The metric store's HTTP API: ingest and maintenance routes, and cc-metric-store's query API.

The same handlers serve two apps. Inside the ClusterCockpit server (``litestar_plugins``) they are
cc-backend's ``/api/write``, ``/api/free`` and ``/api/debug`` (contract §1.4) behind the metric-store
guard. In the standalone server (`cc_metric_ccms.server`) they are joined by ``GET /api/query`` and
``GET /api/healthcheck`` with cc-metric-store's request and response JSON (contract §8.3), so that Go
cc-backend's ``metric-store-external`` client, or our `ExternalStore`, can use it.

Differences from upstream, on purpose: a rejected ``/api/write`` body stores nothing (400 names the
line); query statistics are taken from the native-resolution data, not the downsampled copy.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
from litestar import MediaType, Request, Response, get, post

from cc_core.api.errors import APIError

from .lineprotocol import LineProtocolError
from .store import MetricStore, MetricStoreError, NoDataError

if TYPE_CHECKING:
    from .backend import InternalStore

log = logging.getLogger(__name__)

# Bodies above this size are parsed in a worker thread so the event loop keeps serving meanwhile.
_THREAD_THRESHOLD = 256 * 1024

StoreGetter = Callable[[], "InternalStore | None"]


# ------------------------------------------------------------------------------------ query API


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is np.ndarray:
        if not isinstance(obj, list):
            raise TypeError(f"expected an array, got {type(obj).__name__}")
        return np.array(obj, dtype=np.float64)  # null → NaN
    raise NotImplementedError(f"cannot decode {type_!r}")


class APIQuery(msgspec.Struct, omit_defaults=True):
    """One query of a request: ``metric`` of ``host``, optionally at ``type``/``type-ids`` (and
    ``subtype``/``subtype-ids``), aggregated into one series with ``aggreg``."""

    metric: str
    host: str
    type: str | None = None
    subtype: str | None = None
    resolution: int = 0
    type_ids: list[str] | None = msgspec.field(default=None, name="type-ids")
    subtype_ids: list[str] | None = msgspec.field(default=None, name="subtype-ids")
    scale_by: float = msgspec.field(default=0.0, name="scale-by")
    aggreg: bool = False


class APIQueryRequest(msgspec.Struct):
    """``GET /api/query`` body. Defaults as cc-metric-store's handler: stats, data and padding on."""

    cluster: str = ""
    queries: list[APIQuery] = msgspec.field(default_factory=list)
    for_all_nodes: list[str] | None = msgspec.field(default=None, name="for-all-nodes")
    from_: int = msgspec.field(default=0, name="from")
    to: int = 0
    with_stats: bool = msgspec.field(default=True, name="with-stats")
    with_data: bool = msgspec.field(default=True, name="with-data")
    with_padding: bool = msgspec.field(default=True, name="with-padding")


class APIMetricData(msgspec.Struct):
    """One result series (decoding side; the server encodes by hand, see `_encode_result`)."""

    data: np.ndarray | None = None
    error: str | None = None
    from_: int = msgspec.field(default=0, name="from")
    to: int = 0
    resolution: int = 0
    avg: float | None = None
    min: float | None = None
    max: float | None = None


class APIQueryResponse(msgspec.Struct):
    results: list[list[APIMetricData]] = msgspec.field(default_factory=list)
    queries: list[APIQuery] | None = None


REQUEST_DECODER = msgspec.json.Decoder(APIQueryRequest)
RESPONSE_DECODER = msgspec.json.Decoder(APIQueryResponse, dec_hook=_dec_hook)
_enc = msgspec.json.Encoder()


def _f2(x: float) -> str:
    """upstream ``schema.Float``: two decimals, NaN → null."""
    return "null" if x != x or x in (math.inf, -math.inf) else "%.2f" % x  # noqa: UP031


def _float_array(data: np.ndarray) -> str:
    """upstream ``FloatArray``: three decimals each, NaN → null."""
    lst = data.tolist()
    if np.isfinite(data).all():
        return ",".join(map("%.3f".__mod__, lst))
    return ",".join("null" if x != x or x in (math.inf, -math.inf) else "%.3f" % x for x in lst)  # noqa: UP031


def _encode_result(
    data: np.ndarray | None, frm: int, to: int, res: int, avg: float, mn: float, mx: float, error: str | None
) -> str:
    head = f'{{"error":{_enc.encode(error).decode()},' if error is not None else "{"
    body = f'"data":[{_float_array(data)}],' if data is not None and len(data) else ""
    return (
        f'{head}{body}"from":{frm},"to":{to},"resolution":{res},'
        f'"avg":{_f2(avg)},"min":{_f2(mn)},"max":{_f2(mx)}}}'
    )


def _selectors(cluster: str, q: APIQuery) -> list[list[Any]]:
    """cc-metric-store's selector construction: one (group) selector when aggregated or without type,
    else one per type id (× subtype id)."""
    base: list[Any] = [cluster, q.host]
    type_ids = q.type_ids or []
    sub_ids = q.subtype_ids or []
    if q.aggreg or q.type is None:
        if q.type is None:
            return [base]
        sel = [*base, q.type + type_ids[0] if len(type_ids) == 1 else [q.type + i for i in type_ids]]
        if q.subtype is not None:
            sel.append(q.subtype + sub_ids[0] if len(sub_ids) == 1 else [q.subtype + i for i in sub_ids])
        return [sel]
    out = []
    for tid in type_ids:
        if q.subtype is not None:
            out.extend([*base, q.type + tid, q.subtype + sid] for sid in sub_ids)
        else:
            out.append([*base, q.type + tid])
    return out


def execute_query(store: MetricStore, req: APIQueryRequest) -> bytes:
    """Answer a query request with cc-metric-store's response JSON (contract §8.3)."""
    if req.from_ > req.to:
        raise MetricStoreError("invalid time range: 'from' must be before 'to'")
    queries = list(req.queries)
    echoed: list[APIQuery] = []
    if req.for_all_nodes is not None:
        if not req.cluster:
            raise MetricStoreError("cluster name cannot be empty")
        for node in store.list_children([req.cluster]):
            for metric in req.for_all_nodes:
                q = APIQuery(metric=metric, host=node)
                queries.append(q)
                echoed.append(q)
    rows: list[str] = []
    for q in queries:
        items: list[str] = []
        for sel in _selectors(req.cluster, q):
            try:
                r = store.read(sel, q.metric, req.from_, req.to, q.resolution, with_stats=req.with_stats)
            except NoDataError:
                continue
            except MetricStoreError as e:
                items.append(_encode_result(None, 0, 0, 0, 0.0, 0.0, 0.0, str(e)))
                continue
            data, avg, mn, mx = r.data, r.avg, r.min, r.max
            if q.scale_by and q.scale_by != 1:
                data = data * q.scale_by
                avg, mn, mx = avg * q.scale_by, mn * q.scale_by, mx * q.scale_by
            info = store.metrics.get(q.metric)
            if req.with_padding and info is not None:
                f = info.frequency
                pad = r.from_ // f - req.from_ // f
                if pad > 0:
                    data = np.concatenate([np.full(pad, np.nan), data])
            if not req.with_stats:
                avg = mn = mx = 0.0
            items.append(
                _encode_result(
                    data if req.with_data else None, r.from_, r.to, r.resolution, avg, mn, mx, None
                )
            )
        rows.append("[" + ",".join(items) + "]")
    out = '{"results":[' + ",".join(rows) + "]"
    if echoed:
        out += ',"queries":' + _enc.encode(echoed).decode()
    return (out + "}\n").encode()


class HealthCheckRequest(msgspec.Struct, forbid_unknown_fields=True):
    cluster: str
    nodes: list[str] = msgspec.field(default_factory=list)
    metric_names: list[str] = msgspec.field(default_factory=list, name="metric-names")


class HealthCheckResult(msgspec.Struct):
    """cc-metric-store's per-node answer (Go field names, no JSON tags upstream)."""

    State: str
    HealthMetrics: str = ""


# ------------------------------------------------------------------------------------ handlers


def _require(get_store: StoreGetter) -> InternalStore:
    store = get_store()
    if store is None or store.engine is None:
        raise APIError(503, "the metric store is not running")
    return store


def _selector_list(raw: Any) -> list[list[str]]:
    if not isinstance(raw, list) or not all(
        isinstance(s, list) and all(isinstance(x, str) for x in s) for s in raw
    ):
        raise APIError(400, "body must be a JSON array of selectors (arrays of strings)")
    return raw


def ingest_handlers(get_store: StoreGetter, guards: Sequence[Any]) -> list[Any]:
    """``POST /api/write``, ``POST /api/free``, ``GET /api/debug`` (each also with a trailing slash)."""

    @post(["/api/write", "/api/write/"], guards=list(guards), status_code=200, tags=["metric store"])
    async def write(request: Request[Any, Any, Any], cluster: str | None = None) -> Response[bytes]:
        """Ingest InfluxDB line protocol (cc-metric-collector's format, contract §8.1). ``cluster``
        is the default for lines without a ``cluster`` tag. A bad line is a 400 naming its line number,
        and then nothing of the body is stored."""
        store = _require(get_store)
        body = await request.body()
        try:
            if len(body) > _THREAD_THRESHOLD:
                await asyncio.to_thread(store.ingest, body, cluster or None)
            else:
                store.ingest(body, cluster or None)
        except LineProtocolError as e:
            raise APIError(400, str(e)) from None
        return Response(b"", status_code=200, media_type=MediaType.TEXT)

    @post(["/api/free", "/api/free/"], guards=list(guards), status_code=200, tags=["metric store"])
    async def free(request: Request[Any, Any, Any], to: str | None = None) -> Response[str]:
        """Free buffers older than ``to`` (epoch seconds) below each selector of the JSON body."""
        if not to:
            raise APIError(400, "'to' is a required query parameter")
        try:
            before = int(to)
        except ValueError:
            raise APIError(400, f"'to' must be an integer (epoch seconds), got {to!r}") from None
        try:
            selectors = _selector_list(msgspec.json.decode(await request.body()))
        except msgspec.DecodeError as e:
            raise APIError(400, f"invalid JSON body: {e}") from None
        engine = _require(get_store).engine
        assert engine is not None
        n = await asyncio.to_thread(engine.free, selectors, before)
        return Response(f"buffers freed: {n}\n", media_type=MediaType.TEXT)

    @get(["/api/debug", "/api/debug/"], guards=list(guards), tags=["metric store"])
    async def debug(selector: str | None = None) -> Response[bytes]:
        """The buffer tree below ``selector`` (``cluster:host:…``): start, length and end per block."""
        engine = _require(get_store).engine
        assert engine is not None
        parts = selector.split(":") if selector else []
        try:
            dump = await asyncio.to_thread(engine.store.debug_dump, parts)
        except MetricStoreError as e:
            raise APIError(400, str(e)) from None
        return Response(msgspec.json.encode(dump), media_type=MediaType.JSON)

    return [write, free, debug]


def query_handlers(get_store: StoreGetter, guards: Sequence[Any]) -> list[Any]:
    """cc-metric-store's ``GET /api/query`` and ``GET /api/healthcheck`` (JSON bodies on GET)."""

    @get(["/api/query", "/api/query/"], guards=list(guards), tags=["metric store"])
    async def query_api(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Query the store (contract §8.3); ``version`` is accepted and ignored (only v2 exists)."""
        engine = _require(get_store).engine
        assert engine is not None
        try:
            req = REQUEST_DECODER.decode(await request.body() or b"{}")
        except msgspec.DecodeError as e:
            raise APIError(400, f"invalid query: {e}") from None
        try:
            body = await asyncio.to_thread(execute_query, engine.store, req)
        except MetricStoreError as e:
            raise APIError(400, str(e)) from None
        return Response(body, media_type=MediaType.JSON)

    @get(["/api/healthcheck", "/api/healthcheck/"], guards=list(guards), tags=["metric store"])
    async def healthcheck(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Health of nodes from the freshness of their metrics (contract §8.6)."""
        engine = _require(get_store).engine
        assert engine is not None
        try:
            req = msgspec.json.decode(await request.body(), type=HealthCheckRequest)
        except msgspec.DecodeError as e:
            raise APIError(400, f"parsing request body failed: {e}") from None
        health = await asyncio.to_thread(engine.store.health_check, req.cluster, req.nodes, req.metric_names)
        out = {
            host: HealthCheckResult(
                State=h.state,
                HealthMetrics=msgspec.json.encode({"missing": h.missing, "degraded": h.degraded}).decode(),
            )
            for host, h in health.items()
        }
        return Response(msgspec.json.encode(out), media_type=MediaType.JSON)

    return [query_api, healthcheck]

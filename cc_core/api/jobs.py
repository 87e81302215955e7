"""``/api/jobs/*``, ``/api/tags/`` and the job part of ``/userapi`` (upstream ``internal/api/job.go``, contract §1.2).

Bodies are decoded strictly (unknown fields → 400, no coercion) with msgspec; answers keep upstream's
shapes (``GET /api/jobs/{id}`` → ``Meta``/``Data`` with capitals, the list → ``jobs``/``items``/``page``).

Fixes of upstream:

* ``start_job`` answers ``201 {"msg": "success", "id": <db id>}`` and the job is in the job table at once
  (upstream: no id, visible only after the next cache commit, up to 2 minutes);
* ``GET``/``POST /api/jobs/{id}`` answer an error when metric data cannot be loaded (upstream: an empty
  200) — 503 when this server has no metric dispatcher;
* tag and metadata edits of archived jobs also rewrite the archive's ``meta.json``; if that fails the
  answer says so (500) instead of pretending;
* every integer is range-checked (Go's decoder does it by type), huge pages are refused.

Status codes of lookups follow upstream per endpoint (``GET /api/jobs/{id}``: 422 when not found,
``tag_job``: 404, ``delete_job``: 422 …); everything else maps `cc_core.db.DBError` by its
``status_code`` (`cc_core.api.errors.db_error_handler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, HttpMethod, Request, Response, Router, delete, get, patch, post, route
from litestar.connection import ASGIConnection
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from cc_core.api.auth import AuthGroup, authenticate_group, current_user, group_opt
from cc_core.api.errors import APIError
from cc_core.api.fastpath import FastAnswer, json_answer
from cc_core.api.openapi import (
    API_SECURITY,
    SKIP_COMPRESSION,
    DefaultAPIResponse,
    errors,
    json_body,
    text_response,
)
from cc_core.db.errors import NotFoundError
from cc_core.db.filters import JobFilter, PageRequest, StringInput, TimeRange
from cc_core.lifecycle import INT64, check_range, is_archived, start_job, stop_job, sync_archive_meta
from cc_core.schema.job import JOB_STATES, Job, StrictJob, Tag
from cc_core.schema.metrics import JobData, encode_job_metric

log = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()

# ---------------------------------------------------------------------------------------------- bodies


class StopJobAPIRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Which job to stop (``jobId`` required; ``cluster``/``startTime`` narrow it) and how it ended."""

    job_id: int | None = None
    cluster: str | None = None
    start_time: int | None = None
    job_state: str = ""
    stop_time: int = 0


class DeleteJobAPIRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    job_id: int | None = None
    cluster: str | None = None
    start_time: int | None = None


class EditMetaRequest(msgspec.Struct, forbid_unknown_fields=True):
    key: str = ""
    value: str = ""


class JobMetaRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    job_id: int | None = None
    cluster: str | None = None
    start_time: int | None = None
    payload: EditMetaRequest = msgspec.field(default_factory=EditMetaRequest)


class APITag(msgspec.Struct, forbid_unknown_fields=True):
    """A tag by key; ``scope`` defaults to ``global`` (others: ``admin`` or a username)."""

    type: str = ""
    name: str = ""
    scope: str = ""


_START = msgspec.json.Decoder(StrictJob)
_STOP = msgspec.json.Decoder(StopJobAPIRequest)
_DELETE = msgspec.json.Decoder(DeleteJobAPIRequest)
_EDIT = msgspec.json.Decoder(EditMetaRequest)
_EDIT_BY_KEY = msgspec.json.Decoder(JobMetaRequest)
_TAGS = msgspec.json.Decoder(list[APITag])
_METRICS = msgspec.json.Decoder(list[str])


def decode_body(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """Strict decode; any problem (syntax, types, unknown fields, bad UTF-8) is a 400."""
    try:
        return decoder.decode(body)
    except (msgspec.MsgspecError, ValueError) as e:
        raise APIError(400, f"parsing request body failed: {e}") from None


# ---------------------------------------------------------------------------------------------- replies


class StartJobAPIResponse(msgspec.Struct):
    msg: str
    id: int


class GetJobsAPIResponse(msgspec.Struct):
    jobs: list[Job]
    items: int
    page: int


class GetUsedNodesAPIResponse(msgspec.Struct, rename="camel"):
    used_nodes: dict[str, list[str]]


# Documentation-only shapes of metric data (the real structs hold numpy arrays; see schema.metrics).
class UnitDoc(msgspec.Struct, omit_defaults=True):
    base: str
    prefix: str = ""


class StatisticsDoc(msgspec.Struct):
    min: float | None
    avg: float | None
    max: float | None


class SeriesDoc(msgspec.Struct):
    hostname: str
    statistics: StatisticsDoc
    data: list[float | None]
    id: str | None = None


class StatsSeriesDoc(msgspec.Struct):
    mean: list[float | None]
    median: list[float | None]
    min: list[float | None]
    max: list[float | None]


class JobMetricDoc(msgspec.Struct, rename={"statistics_series": "statisticsSeries"}):
    unit: UnitDoc
    timestep: int
    series: list[SeriesDoc]
    statistics_series: StatsSeriesDoc | None = None


class GetCompleteJobAPIResponse(msgspec.Struct, rename={"meta": "Meta", "data": "Data"}):
    meta: Job
    data: dict[str, dict[str, JobMetricDoc]] | None


class JobMetricWithName(msgspec.Struct):
    metric: JobMetricDoc
    name: str
    scope: str


class GetJobAPIResponse(msgspec.Struct, rename={"meta": "Meta", "data": "Data"}):
    meta: Job
    data: list[JobMetricWithName]


class JobMetricsData(msgspec.Struct, rename="camel"):
    job_metrics: list[JobMetricWithName]


class JobMetricsError(msgspec.Struct):
    message: str


class GetJobMetricsResponse(msgspec.Struct):
    data: JobMetricsData | None
    error: JobMetricsError | None


# ---------------------------------------------------------------------------------------------- helpers


def parse_db_id(text: str, what: str = "id") -> int:
    try:
        value = int(text)
    except ValueError:
        raise APIError(400, f"integer expected in path for {what}: {text!r}") from None
    if not INT64[0] <= value <= INT64[1]:
        raise APIError(400, f"{what} {value} is out of range")
    return value


@contextlib.contextmanager
def lookup_status(status: int, prefix: str = "") -> Iterator[None]:
    """Answer ``status`` for a failed lookup where upstream does (e.g. 422 instead of 404)."""
    try:
        yield
    except NotFoundError as e:
        raise APIError(status, f"{prefix}{e}") from None


def _services(request: Request[Any, Any, Any]) -> Any:
    return request.app.state["services"]


def _dispatcher(services: Any) -> Any:
    """The metric dispatcher (`cc_core.graphql.services.MetricDispatcher`), or a 503 naming what is missing."""
    dispatcher = getattr(services, "dispatcher", None) or getattr(services, "metrics", None)
    if dispatcher is None:
        raise APIError(503, "metric data is not available on this server (no metric dispatcher configured)")
    return dispatcher


def _resolution(services: Any, job: Job) -> int:
    cluster = services.clusters.cluster(job.cluster)
    if cluster is None:
        return 0
    return max((mc.timestep for mc in cluster.metric_config), default=0)


async def _load_data(services: Any, job: Job, metrics: list[str] | None) -> JobData:
    dispatcher = _dispatcher(services)
    scopes = ["core"] if job.num_nodes == 1 else ["node"]
    try:
        return dict(await dispatcher.load_data(job, metrics, scopes, _resolution(services, job)))
    except APIError:
        raise
    except Exception as e:
        status = getattr(e, "status_code", None)
        log.warning("REST: loading metric data of job %s (%s) failed: %s", job.job_id, job.cluster, e)
        raise APIError(
            status if isinstance(status, int) and status >= 400 else 503,
            f"loading metric data of job {job.id} failed: {e}",
        ) from None


async def _archive_synced(services: Any, job: Job, what: str) -> None:
    try:
        await sync_archive_meta(services, job)
    except Exception as e:
        log.error(
            "job %s: %s stored in the database, but the archive's meta.json was not updated: %s",
            job.id,
            what,
            e,
        )
        raise APIError(
            500, f"{what} stored in the database, but updating the job archive failed: {e}"
        ) from None


async def _tag_specs(request: Request[Any, Any, Any]) -> list[APITag]:
    return decode_body(_TAGS, await request.body())  # type: ignore[no-any-return]


async def _edit_job_tags(
    request: Request[Any, Any, Any], id: str, edit: Callable[[Any, Any, int], Awaitable[Any]]
) -> Job:
    """Shared by tag_job and its DELETE: the job must exist for the caller (404), then ``edit`` runs
    on the tag repository, and the job is answered with its visible tags (and its archived meta synced)."""
    db_id = parse_db_id(id)
    user = current_user(request)
    services = _services(request)
    with lookup_status(404, "finding job failed: "):
        await services.db.jobs.find_by_id(user, db_id, with_metadata=False)
    await edit(services.db.tags, user, db_id)
    job = await services.db.jobs.find_by_id(user, db_id, with_metadata=True, with_tags=True)
    await _archive_synced(services, job, "tags")
    return job  # type: ignore[no-any-return]


def _rest_lifecycle_enabled(app: Any) -> None:
    """Upstream mounts start_job/stop_job only without ``main.api-subjects``: with NATS configured, job
    events come from there alone (two sources would race). We keep the routes and say why."""
    if app.state["config"].main.api_subjects is not None:
        raise APIError(
            404, "start_job/stop_job over REST are off: main.api-subjects sends job events via NATS"
        )


def _json(value: Any) -> bytes:
    return _ENCODER.encode(value)


_SCOPES = ("node", "socket", "memoryDomain", "core", "hwthread", "accelerator")

# A database id in the path: an integer as text (the handler answers upstream's 400 for anything else).
DbId = Annotated[str, Parameter(description="database id of the job (integer)", pattern=r"^-?[0-9]+$")]


# ---------------------------------------------------------------------------------------------- queries


class JobQueryController(Controller):
    """Read endpoints, mounted under ``/api/jobs`` and ``/userapi/jobs``."""

    path = "/jobs"
    tags = ["Job query"]
    security = API_SECURITY

    @get(
        "/",
        responses=errors(400, 401, 403),
        description="Jobs the token's user may see, newest first. Unknown query parameters are an error.",
    )
    async def get_jobs(
        self,
        request: Request[Any, Any, Any],
        project: Annotated[str | None, Parameter(description="project (exact)")] = None,
        states: Annotated[
            list[str] | None, Parameter(query="state", description="job state (repeatable)")
        ] = None,
        cluster: Annotated[str | None, Parameter(description="cluster (exact)")] = None,
        start_time: Annotated[
            str | None, Parameter(query="start-time", description="`<from>-<to>`, epoch seconds")
        ] = None,
        page: Annotated[int, Parameter(ge=1, le=INT64[1], description="page (≥ 1)")] = 1,
        items_per_page: Annotated[
            int, Parameter(query="items-per-page", ge=1, le=INT64[1], description="jobs per page (≥ 1)")
        ] = 25,
        with_metadata: Annotated[
            str | None, Parameter(query="with-metadata", description="present: include metaData")
        ] = None,
    ) -> GetJobsAPIResponse:
        """List jobs (upstream ``getJobs``): ``jobs`` with visible ``tags`` and, for archived jobs, the
        archive's ``statistics``; ``items`` and ``page`` echo the page asked for."""
        known = {"project", "state", "cluster", "start-time", "page", "items-per-page", "with-metadata"}
        for key in request.query_params:
            if key not in known:
                raise APIError(400, f"invalid query parameter: {key}")
        for s in states or ():
            if s not in JOB_STATES:
                raise APIError(400, "invalid query parameter value: state")
        time_range = None
        if start_time is not None:
            parts = start_time.split("-")
            if len(parts) != 2:
                raise APIError(400, "invalid query parameter value: startTime")
            try:
                lo, hi = (check_range(int(p), "start-time") for p in parts)
            except ValueError:
                raise APIError(400, f"invalid query parameter value: start-time {start_time!r}") from None
            time_range = TimeRange(from_=lo, to=hi)
        if (page - 1) * items_per_page > INT64[1]:
            raise APIError(400, "page * items-per-page is out of range")
        filt = JobFilter(
            project=StringInput(eq=project) if project is not None else None,
            cluster=StringInput(eq=cluster) if cluster is not None else None,
            state=list(states) if states else None,
            start_time=time_range,
        )
        services = _services(request)
        result = await services.db.jobs.list(
            current_user(request),
            [filt],
            PageRequest(items_per_page=items_per_page, page=page),
            count=False,
            with_tags=True,
            with_metadata=with_metadata is not None,
        )
        jobs: list[Job] = list(result.items)
        await _add_statistics(services, jobs)
        return GetJobsAPIResponse(jobs=jobs, items=items_per_page, page=page)

    @get(
        "/{id:str}",
        responses={
            200: ResponseSpec(GetCompleteJobAPIResponse, description="the job", generate_examples=False)
        }
        | errors(400, 401, 403, 422, 503),
        description="`Data` is filled only with `?all-metrics=true` (scope core for single-node jobs, else "
        "node; resolution = the largest metric timestep of the cluster).",
    )
    async def get_complete_job(
        self,
        request: Request[Any, Any, Any],
        id: DbId,
        all_metrics: Annotated[
            str | None, Parameter(query="all-metrics", description="`true`: load all metrics")
        ] = None,
    ) -> Response[bytes]:
        """Job metadata (with tags and metaData) and optionally all its metric data."""
        db_id = parse_db_id(id)
        services = _services(request)
        with lookup_status(422, "finding job failed: "):
            job = await services.db.jobs.find_by_id(
                current_user(request), db_id, with_metadata=True, with_tags=True
            )
        data = b"null"
        if all_metrics == "true":
            from cc_core.schema.metrics import encode_job_data

            data = encode_job_data(await _load_data(services, job, None))
        return Response(b'{"Meta":' + _json(job) + b',"Data":' + data + b"}", media_type="application/json")

    @post(
        "/{id:str}",
        status_code=200,
        operation_class=json_body(list[str], "metric names"),
        responses={
            200: ResponseSpec(
                GetJobAPIResponse, description="the job and the metrics", generate_examples=False
            )
        }
        | errors(400, 401, 403, 422, 503),
    )
    async def get_job_metrics_by_list(
        self,
        request: Request[Any, Any, Any],
        id: DbId,
    ) -> Response[bytes]:
        """Job metadata and the named metrics (body: JSON array of metric names)."""
        db_id = parse_db_id(id)
        services = _services(request)
        with lookup_status(422, "finding job failed: "):
            job = await services.db.jobs.find_by_id(
                current_user(request), db_id, with_metadata=True, with_tags=True
            )
        metrics = decode_body(_METRICS, await request.body())
        data = await _load_data(services, job, metrics)
        parts = [
            b'{"metric":'
            + encode_job_metric(jm)
            + b',"name":'
            + _json(name)
            + b',"scope":'
            + _json(scope)
            + b"}"
            for name, scopes in data.items()
            for scope, jm in scopes.items()
        ]
        body = b'{"Meta":' + _json(job) + b',"Data":[' + b",".join(parts) + b"]}"
        return Response(body, media_type="application/json")

    @get(
        "/metrics/{id:str}",
        responses={
            200: ResponseSpec(GetJobMetricsResponse, description="always 200", generate_examples=False)
        }
        | errors(400, 401, 403),
    )
    async def get_job_metrics(
        self,
        request: Request[Any, Any, Any],
        id: DbId,
        metric: Annotated[list[str] | None, Parameter(description="metric name (repeatable)")] = None,
        scopes: Annotated[
            list[str] | None, Parameter(query="scope", description="metric scope (repeatable)")
        ] = None,
    ) -> Response[bytes]:
        """Metric data through the GraphQL ``jobMetrics`` resolver (its access checks apply). Always 200:
        ``{"data": {"jobMetrics": [...]}, "error": null}`` or ``{"data": null, "error": {"message"}}``."""
        for s in scopes or ():
            if s not in _SCOPES:
                raise APIError(400, f"unmarshaling scope failed: {s!r} is not a valid MetricScope")
        body = await _graphql_job_metrics(request, id, metric, scopes)
        return Response(body, media_type="application/json")


async def _add_statistics(services: Any, jobs: list[Job]) -> None:
    """``statistics`` from the archive's meta of archived jobs (a few reads at a time)."""
    archived = [j for j in jobs if is_archived(j)]
    if not archived:
        return
    sem = asyncio.Semaphore(8)

    async def one(job: Job) -> None:
        async with sem:
            try:
                meta = await services.archive.load_job_meta(job)
            except Exception as e:  # one unreadable archive entry must not hide the whole list
                log.warning("job %s: statistics not loaded from the archive: %s", job.id, e)
                return
            job.statistics = meta.statistics

    await asyncio.gather(*(one(j) for j in archived))


_JOB_METRICS_QUERY = """
query ($id: ID!, $metrics: [String!], $scopes: [MetricScope!]) {
  jobMetrics(id: $id, metrics: $metrics, scopes: $scopes) {
    name
    scope
    metric {
      unit { base prefix }
      timestep
      series { hostname id statistics { min avg max } data }
      statisticsSeries { mean median min max }
    }
  }
}
"""


class _GraphQLResult(msgspec.Struct):
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    errors: list[dict[str, Any]] | None = None


async def _graphql_job_metrics(
    request: Request[Any, Any, Any], id_: str, metrics: list[str] | None, scopes: list[str] | None
) -> bytes:
    from cc_core.graphql import GraphQLServices
    from cc_core.graphql.services import GraphQLContext

    engine = _graphql_engine(request)
    services = request.app.state.get("graphql_services")
    context = GraphQLContext(
        user=current_user(request),
        services=services if isinstance(services, GraphQLServices) else GraphQLServices(),
        request=request,
    )
    variables: dict[str, Any] = {"id": id_, "metrics": metrics, "scopes": scopes}
    result = await engine.execute(_JOB_METRICS_QUERY, variables, None, context, allow_mutations=False)
    parsed = msgspec.json.decode(result.body, type=_GraphQLResult)
    if parsed.errors:
        message = str(parsed.errors[0].get("message", "error"))
        return _json({"data": None, "error": {"message": message}})
    return b'{"data":' + bytes(parsed.data) + b',"error":null}'


def _graphql_engine(request: Request[Any, Any, Any]) -> Any:
    engine = request.app.state.get("graphql_engine")
    if engine is None:
        from cc_core.graphql.engine import GraphQLEngine

        engine = GraphQLEngine(dev=bool(request.app.state.get("dev")))
        request.app.state["graphql_engine"] = engine
    return engine


# ---------------------------------------------------------------------------------------------- writes


class JobWriteController(Controller):
    """Lifecycle and edit endpoints, ``/api/jobs`` only."""

    path = "/jobs"
    tags = ["Job add and modify"]
    security = API_SECURITY

    @route(
        "/start_job",
        http_method=[HttpMethod.POST, HttpMethod.PUT],
        status_code=201,
        operation_class=json_body(
            StrictJob, "the job (upstream `schema.Job`); jobState is forced to running"
        ),
        responses=errors(400, 401, 403, 422),
        opt={SKIP_COMPRESSION: True},
    )
    async def start_job(self, request: Request[Any, Any, Any]) -> StartJobAPIResponse:
        """Add a running job; answers its database id. 422 if the same jobId and cluster started less than
        24 h before."""
        _rest_lifecycle_enabled(request.app)
        job = decode_body(_START, await request.body())
        stored = await start_job(_services(request), job, current_user(request))
        return _started(stored)

    @route(
        "/stop_job",
        http_method=[HttpMethod.POST, HttpMethod.PUT],
        status_code=200,
        operation_class=json_body(StopJobAPIRequest, "the job to stop"),
        responses=errors(400, 401, 403, 404, 422),
    )
    async def stop_job(self, request: Request[Any, Any, Any]) -> Job:
        """Mark a running job stopped (``jobState`` default ``completed``) and queue it for archiving; answers
        the job."""
        _rest_lifecycle_enabled(request.app)
        req = decode_body(_STOP, await request.body())
        if req.job_id is None:
            raise APIError(400, "the field 'jobId' is required")
        return await stop_job(
            _services(request),
            req.job_id,
            stop_time=req.stop_time,
            state=req.job_state,
            cluster=req.cluster,
            start_time=req.start_time,
        )

    @get(
        "/used_nodes",
        responses=errors(400, 401, 403),
    )
    async def get_used_nodes(
        self,
        request: Request[Any, Any, Any],
        ts: Annotated[int, Parameter(ge=INT64[0], le=INT64[1], description="epoch seconds")],
    ) -> GetUsedNodesAPIResponse:
        """Hosts of running jobs that started before ``ts``, per cluster."""
        used = await _services(request).db.jobs.used_nodes(current_user(request), ts)
        return GetUsedNodesAPIResponse(used_nodes=used)

    @route(
        "/tag_job/{id:str}",
        http_method=[HttpMethod.POST, HttpMethod.PATCH],
        status_code=200,
        operation_class=json_body(list[APITag], "tags to add (created when missing)"),
        responses=errors(400, 401, 403, 404, 500),
    )
    async def tag_job(self, request: Request[Any, Any, Any], id: DbId) -> Job:
        """Add tags to a job; scope rules of contract §6.4 apply. Answers the job with its visible tags."""
        tags = [Tag(type=t.type, name=t.name, scope=t.scope or "global") for t in await _tag_specs(request)]
        return await _edit_job_tags(
            request, id, lambda tags_repo, user, db_id: tags_repo.tag_job(user, db_id, tags)
        )

    @delete(
        "/tag_job/{id:str}",
        status_code=200,
        operation_class=json_body(list[APITag], "tags to remove (only global and admin scopes)"),
        responses=errors(400, 401, 403, 404, 500),
    )
    async def remove_tag_job(self, request: Request[Any, Any, Any], id: DbId) -> Job:
        """Remove tags from a job (private tags are skipped, as upstream). Answers the job."""
        specs = await _tag_specs(request)
        tags = [Tag(type=t.type, name=t.name, scope=t.scope) for t in specs if t.scope in ("global", "admin")]
        return await _edit_job_tags(
            request, id, lambda tags_repo, user, db_id: tags_repo.untag_job(user, db_id, tags)
        )

    @patch(
        "/edit_meta/{id:str}",
        operation_class=json_body(EditMetaRequest, "metadata key and value to set"),
        responses=errors(400, 401, 403, 404, 500),
    )
    async def edit_meta(self, request: Request[Any, Any, Any], id: DbId) -> Job:
        """Set one key of the job's metaData (also in the archive for archived jobs). Answers the job."""
        db_id = parse_db_id(id)
        req = decode_body(_EDIT, await request.body())
        return await _edit_meta(request, db_id, req, not_found=404)

    @patch(
        "/edit_meta",
        operation_class=json_body(JobMetaRequest, "the job by key and the metadata to set"),
        responses=errors(400, 401, 403, 422, 500),
    )
    async def edit_meta_by_request(self, request: Request[Any, Any, Any]) -> Job:
        """Set one metaData key of the newest job matching jobId (and cluster, startTime)."""
        req = decode_body(_EDIT_BY_KEY, await request.body())
        if req.job_id is None:
            raise APIError(400, "the field 'jobId' is required")
        check_range(req.job_id, "jobId")
        if req.start_time is not None:
            check_range(req.start_time, "startTime")
        with lookup_status(422, "finding job failed: "):
            job = await _services(request).db.jobs.find(
                current_user(request), req.job_id, req.cluster, req.start_time
            )
        assert job.id is not None
        return await _edit_meta(request, job.id, req.payload, not_found=422)

    @delete(
        "/delete_job/{id:str}",
        status_code=200,
        responses=errors(400, 401, 403, 422),
    )
    async def delete_job_by_id(self, request: Request[Any, Any, Any], id: DbId) -> DefaultAPIResponse:
        """Remove a job from the database (the archive keeps it)."""
        db_id = parse_db_id(id)
        with lookup_status(422, "deleting job failed: "):
            await _services(request).db.jobs.delete(db_id)
        return DefaultAPIResponse(msg=f"Successfully deleted job {db_id}")

    @delete(
        "/delete_job",
        status_code=200,
        operation_class=json_body(DeleteJobAPIRequest, "the job by key (jobId required)"),
        responses=errors(400, 401, 403, 422),
    )
    async def delete_job_by_request(self, request: Request[Any, Any, Any]) -> DefaultAPIResponse:
        """Remove the newest job matching jobId (and cluster, startTime) from the database."""
        req = decode_body(_DELETE, await request.body())
        if req.job_id is None:
            raise APIError(400, "the field 'jobId' is required")
        check_range(req.job_id, "jobId")
        if req.start_time is not None:
            check_range(req.start_time, "startTime")
        with lookup_status(422, "finding job failed: "):
            db_id = await _services(request).db.jobs.delete_by_key(req.job_id, req.cluster, req.start_time)
        return DefaultAPIResponse(msg=f"Successfully deleted job {db_id}")

    @delete(
        "/delete_job_before/{ts:str}",
        status_code=200,
        responses=errors(400, 401, 403, 422),
    )
    async def delete_job_before(
        self,
        request: Request[Any, Any, Any],
        ts: Annotated[str, Parameter(description="epoch seconds (integer)", pattern=r"^-?[0-9]+$")],
        omit_tagged: Annotated[
            str | None, Parameter(query="omit-tagged", description="none (default), all or user")
        ] = None,
    ) -> DefaultAPIResponse:
        """Remove all jobs that started before ``ts`` from the database (the archive keeps them)."""
        before = parse_db_id(ts, "ts")
        mode = omit_tagged or "none"
        if mode not in ("none", "all", "user"):
            raise APIError(400, "omit-tagged must be one of: none, all, user")
        n = await _services(request).db.jobs.delete_before(before, omit_tagged=mode)
        return DefaultAPIResponse(msg=f"Successfully deleted {n} jobs")


async def _edit_meta(
    request: Request[Any, Any, Any], db_id: int, req: EditMetaRequest, *, not_found: int
) -> Job:
    services = _services(request)
    user = current_user(request)
    with lookup_status(not_found, "finding job failed: "):
        await services.db.jobs.find_by_id(user, db_id, with_metadata=False)
        await services.db.jobs.update_metadata(db_id, req.key, req.value)
    job = await services.db.jobs.find_by_id(user, db_id, with_metadata=True, with_tags=True)
    await _archive_synced(services, job, "metadata")
    return job  # type: ignore[no-any-return]


@delete(
    "/tags",
    status_code=200,
    operation_class=json_body(list[APITag], "tags to delete with all their job links (global/admin scopes)"),
    responses=text_response(200, "`Deleted Tags from DB: N successfull of M requested`")
    | errors(400, 401, 403),
    tags=["Tag remove"],
    security=API_SECURITY,
)
async def remove_tags(request: Request[Any, Any, Any]) -> Response[str]:
    """Delete tags by type, name and scope (private tags are skipped, as upstream)."""
    specs = decode_body(_TAGS, await request.body())
    keep = [Tag(type=t.type, name=t.name, scope=t.scope) for t in specs if t.scope in ("global", "admin")]
    n = await _services(request).db.tags.delete_by_key(current_user(request), keep)
    return Response(
        f"Deleted Tags from DB: {n} successfull of {len(specs)} requested\n", media_type="text/plain"
    )


def _started(stored: Job) -> StartJobAPIResponse:
    assert stored.id is not None
    log.info(
        "new job (id %d): cluster=%s jobId=%d user=%s start=%d",
        stored.id,
        stored.cluster,
        stored.job_id,
        stored.user,
        stored.start_time,
    )
    return StartJobAPIResponse(msg="success", id=stored.id)


async def _lifecycle_caller(app: Any, scope: Any) -> Any:
    """The fast twins' preamble, with the routes' code: REST lifecycle on, the ``/api`` group's rule
    (its errors send the request to the route, which answers them)."""
    _rest_lifecycle_enabled(app)
    return await authenticate_group(ASGIConnection(scope), AuthGroup.API)


class FastStartJob:
    """`JobWriteController.start_job`'s lean twin (`cc_core.api.fastpath`): every adapter calls it for
    every job, and Litestar's request machinery cost as much as the insert. Same checks, same code: the
    ``/api`` group's `authenticate_group`, the same strict decoder and `start_job`; anything it does not
    accept (also a duplicate or invalid job, which inserted nothing) is answered by the route itself."""

    methods = frozenset(("POST", "PUT"))
    paths = frozenset(("/api/jobs/start_job", "/api/jobs/start_job/"))

    async def answer(self, app: Any, scope: Any, body: bytes) -> FastAnswer | None:
        user = await _lifecycle_caller(app, scope)
        job = _START.decode(body)
        stored = await start_job(app.state["services"], job, user)
        return json_answer(201, _ENCODER.encode(_started(stored)))


class FastStopJob:
    """`JobWriteController.stop_job`'s lean twin, for the same reason and on the same terms as
    `FastStartJob`: a stop that is refused (not found, already stopped, bad time or state) changed
    nothing, and the route answers it."""

    methods = frozenset(("POST", "PUT"))
    paths = frozenset(("/api/jobs/stop_job", "/api/jobs/stop_job/"))

    async def answer(self, app: Any, scope: Any, body: bytes) -> FastAnswer | None:
        await _lifecycle_caller(app, scope)
        req = _STOP.decode(body)
        if req.job_id is None:
            return None
        job = await stop_job(
            app.state["services"],
            req.job_id,
            stop_time=req.stop_time,
            state=req.job_state,
            cluster=req.cluster,
            start_time=req.start_time,
        )
        return json_answer(200, _ENCODER.encode(job), app=app, scope=scope)


def job_routers() -> list[Router]:
    """``/api`` (queries, writes, tags) and ``/userapi`` (queries) job routers."""
    return [
        Router(
            path="/api",
            route_handlers=[JobQueryController, JobWriteController, remove_tags],
            opt=group_opt(AuthGroup.API),
        ),
        Router(path="/userapi", route_handlers=[JobQueryController], opt=group_opt(AuthGroup.USER_API)),
    ]

"""``GET /api/clusters/`` and the machine-state store ``/api/machine_state/{cluster}/{host}`` (contract §1.2).

Machine state is an opaque JSON document per host that external tools put and get. Upstream registers
the routes only with ``main.machine-state-dir`` and rejects ``..``, ``/`` and ``\\`` in the two path
parts (contract §15.14); we also reject empty names, ``.``, control characters and names too long for a
file name (which would otherwise end as a 500 from the file system), and write atomically (temporary
file + rename) so a reader never sees half a document.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import HttpMethod, Request, Response, Router, get, route
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from cc_core.api.auth import AuthGroup, group_opt
from cc_core.api.errors import APIError
from cc_core.api.openapi import API_SECURITY, errors, raw_body
from cc_core.schema.cluster import Cluster, encode_cluster

MAX_NAME = 200


class GetClustersAPIResponse(msgspec.Struct):
    clusters: list[Cluster]


@get(
    "/clusters",
    tags=["Cluster query"],
    security=API_SECURITY,
    responses={200: ResponseSpec(GetClustersAPIResponse, description="the clusters", generate_examples=False)}
    | errors(400, 401, 403),
)
async def get_clusters(
    request: Request[Any, Any, Any],
    cluster: Annotated[str | None, Parameter(description="only this cluster")] = None,
) -> Response[bytes]:
    """The clusters of the job archive as derived at start (per-subcluster metric configs)."""
    catalog = request.app.state["services"].clusters
    if cluster is not None:
        c = catalog.cluster(cluster)
        if c is None:
            raise APIError(400, f"unknown cluster: {cluster}")
        chosen = [c]
    else:
        chosen = list(catalog.clusters())
    body = b'{"clusters":[' + b",".join(encode_cluster(c).rstrip(b"\n") for c in chosen) + b"]}"
    return Response(body, media_type="application/json")


def validate_path_component(value: str, what: str) -> str:
    """A single file-name component: no separators, no traversal, no control characters."""
    if (
        not value
        or value in (".", "..")
        or ".." in value
        or "/" in value
        or "\\" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME
    ):
        raise APIError(400, f"invalid {what}")
    return value


def _state_dir(request: Request[Any, Any, Any]) -> Path:
    config = request.app.state["config"]
    raw = config.main.machine_state_dir
    if not raw:
        raise APIError(404, "machine state not enabled (main.machine-state-dir)")
    path = Path(raw)
    return path if path.is_absolute() else config.base_dir / path


def _file(request: Request[Any, Any, Any], cluster: str, host: str) -> Path:
    validate_path_component(cluster, "cluster name")
    validate_path_component(host, "host name")
    return _state_dir(request) / cluster / f"{host}.json"


@get(
    "/machine_state/{cluster:str}/{host:str}",
    tags=["Machine State"],
    security=API_SECURITY,
    responses=errors(400, 401, 403, 404),
)
async def get_machine_state(request: Request[Any, Any, Any], cluster: str, host: str) -> Response[bytes]:
    """The stored machine-state document of a host."""
    path = _file(request, cluster, host)
    try:
        data = await anyio.to_thread.run_sync(path.read_bytes)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise APIError(404, f"no machine state for {cluster}/{host}") from None
    return Response(data, media_type="application/json")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@route(
    "/machine_state/{cluster:str}/{host:str}",
    http_method=[HttpMethod.PUT, HttpMethod.POST],
    status_code=201,
    tags=["Machine State"],
    security=API_SECURITY,
    operation_class=raw_body("application/json", "the machine-state document, stored as sent"),
    responses=errors(400, 401, 403, 404, 500),
)
async def put_machine_state(request: Request[Any, Any, Any], cluster: str, host: str) -> Response[bytes]:
    """Store a host's machine-state document (replacing the previous one)."""
    path = _file(request, cluster, host)
    data = await request.body()
    try:
        await anyio.to_thread.run_sync(_write_atomic, path, data)
    except OSError as e:
        raise APIError(500, f"writing machine state failed: {e.strerror or e}") from None
    return Response(b"", status_code=201, media_type="application/json")


def cluster_router() -> Router:
    return Router(
        path="/api",
        route_handlers=[get_clusters, get_machine_state, put_machine_state],
        opt=group_opt(AuthGroup.API),
    )

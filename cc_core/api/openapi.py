"""OpenAPI documentation of the REST API: shared wire structs, request-body docs, security schemes.

Handlers decode their bodies themselves with strict msgspec decoders (unknown fields → 400, no type
coercion, one pass over the bytes — Litestar's own body parsing converts leniently, e.g. ``"7"`` to ``7``,
where upstream's Go decoder refuses). Litestar therefore cannot see the body type in the signature;
`json_body` / `form_body` put it back into the spec: they return an ``operation_class`` whose request
body refers to a component generated from the same msgspec type the handler decodes with, so spec
and decoder cannot drift apart. Response schemas come from the handlers' return annotations and
``responses=`` (`errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, OpenAPIMediaType, Operation, RequestBody, SecurityScheme

_REF_PREFIX = "#/$defs/"


# Handler ``opt`` key: the answer is always a few bytes, so the gzip middleware is skipped (app.py).
SKIP_COMPRESSION = "skip_compression"


class ErrorResponse(msgspec.Struct):
    """Upstream's error body (`api.ErrorResponse`)."""

    status: str
    error: str


class DefaultAPIResponse(msgspec.Struct):
    """Upstream's generic success body (`api.DefaultAPIResponse`)."""

    msg: str


# Body types registered by `json_body`/`form_body`, in registration order.
_BODY_TYPES: list[Any] = []


def _inline(node: Any, components: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Replace ``$ref``s by the referenced component (bodies are not recursive types)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            if name in seen:
                raise ValueError(f"recursive body type {name} cannot be inlined")
            return _inline(components[name], components, (*seen, name))
        return {k: _inline(v, components, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, components, seen) for v in node]
    return node


def _schema_of(type_: Any) -> dict[str, Any]:
    """The JSON schema of a msgspec type with every definition inlined.

    Litestar replaces ``components.schemas`` with the components it generates itself, so request-body
    schemas must be self-contained.
    """
    if type_ not in _BODY_TYPES:
        _BODY_TYPES.append(type_)
    (schema,), components = msgspec.json.schema_components([type_], ref_template=_REF_PREFIX + "{name}")
    return _inline(schema, components)  # type: ignore[no-any-return]


def _operation_with(body: RequestBody) -> type[Operation]:
    @dataclass
    class _BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return _BodyOperation


def json_body(type_: Any, description: str, *, required: bool = True) -> type[Operation]:
    """``operation_class`` documenting a JSON request body of msgspec type ``type_``."""
    content = {"application/json": OpenAPIMediaType(schema=_schema_of(type_))}  # type: ignore[arg-type]
    return _operation_with(RequestBody(content=content, description=description, required=required))


def form_body(type_: Any, description: str) -> type[Operation]:
    """``operation_class`` documenting an HTML form body (urlencoded or multipart), fields of ``type_``."""
    schema = _schema_of(type_)
    content = {
        "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),  # type: ignore[arg-type]
        "multipart/form-data": OpenAPIMediaType(schema=schema),  # type: ignore[arg-type]
    }
    return _operation_with(RequestBody(content=content, description=description, required=True))


def raw_body(media_type: str, description: str) -> type[Operation]:
    """``operation_class`` documenting an opaque body (stored as sent)."""
    content = {media_type: OpenAPIMediaType(schema={"type": "object"})}  # type: ignore[arg-type]
    return _operation_with(RequestBody(content=content, description=description, required=True))


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """``responses=`` entries for error codes, each with upstream's error body."""
    return {
        code: ResponseSpec(
            data_container=ErrorResponse, description=HTTPStatus(code).phrase, generate_examples=False
        )
        for code in codes
    }


def text_response(code: int, description: str) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(
            data_container=str, description=description, media_type="text/plain", generate_examples=False
        )
    }


SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "ApiKeyAuth": SecurityScheme(
        type="apiKey",
        name="X-Auth-Token",
        security_scheme_in="header",
        description="Ed25519 JWT (upstream's)",
    ),
    "BearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
    "SessionCookie": SecurityScheme(
        type="apiKey", name="session", security_scheme_in="cookie", description="login session (POST /login)"
    ),
}
API_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}, {"BearerAuth": []}]
SESSION_SECURITY: list[dict[str, list[str]]] = [{"SessionCookie": []}]
SECURED_SECURITY: list[dict[str, list[str]]] = [*API_SECURITY, *SESSION_SECURITY]


def components() -> Components:
    """The ``components`` of `cc_core.app`'s OpenAPI config: the security schemes."""
    return Components(security_schemes=dict(SECURITY_SCHEMES))  # type: ignore[arg-type]

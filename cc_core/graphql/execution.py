"""Numeric lists bypass graphql-core's per-element completion; the JSON stays the same.

graphql-core completes a list by calling ``complete_value`` on every element (path bookkeeping, null
checks, the scalar's serializer): about 1 µs per float, 90 ms for one job view of 64 nodes × 1,440
samples. `SeriesExecutor` (strawberry's executor with one method overridden) intercepts list fields
whose resolver returned a **numpy array** and whose element type is a numeric leaf:

* ``[NullableFloat!]`` — the array is queued in a per-operation `Fixed2Batch` and a `Fixed2Ref`
  placeholder goes into the result. When the response is encoded (`encode_response`), the first
  placeholder formats every queued array in one vectorised pass (`floats.encode_fixed2`), and each
  placeholder is written as its pre-formatted JSON array. Queuing instead of formatting at once is what
  makes 640 series of a 10-metric job view cost one numpy pass instead of 640.
* ``[Float!]``, ``[[Float!]!]`` (``rooflineHeatmap``) and ``[Int!]`` — encoded at once with msgspec from
  ``ndarray.tolist()``, the same text graphql-core's completion followed by msgspec would produce.

Anything else — a Python list, an array of another element type, non-finite values where the scalar
would raise — takes graphql-core's normal path, so behaviour and errors are unchanged. The output is
tested to be byte-identical to the naive path (`tests/graphql/test_bypass.py`).

The result dict therefore holds `msgspec.Raw` fragments and placeholders: encode it with
`encode_response`, never with the standard ``json`` module.
"""

from __future__ import annotations

import math
from inspect import isawaitable
from typing import Any

import msgspec
import numpy as np
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from cc_core.graphql.floats import encode_fixed2

__all__ = ["Fixed2Batch", "Fixed2Ref", "SeriesExecutor", "encode_response", "response_encoder"]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Fixed2Batch:
    """The `NullableFloat` arrays of one operation, formatted together on first use."""

    __slots__ = ("arrays", "encoded")

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.encoded: list[bytes] | None = None

    def add(self, array: np.ndarray) -> Fixed2Ref:
        if self.encoded is not None:  # formatted already (a late array): start over with all
            self.encoded = None
        self.arrays.append(array)
        return Fixed2Ref(self, len(self.arrays) - 1)

    def get(self, index: int) -> bytes:
        if self.encoded is None:
            self.encoded = encode_fixed2(self.arrays)
        return self.encoded[index]


class Fixed2Ref:
    """Placeholder for one formatted array in a response; `encode_response` writes its JSON."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Fixed2Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def raw(self) -> msgspec.Raw:
        return msgspec.Raw(self.batch.get(self.index))

    def __repr__(self) -> str:  # readable in test failures and debuggers
        return f"Fixed2Ref({self.batch.get(self.index).decode()})"


def _leaf(gql_type: Any) -> Any:
    return gql_type.of_type if isinstance(gql_type, GraphQLNonNull) else gql_type


def _fast_numeric_list(item_type: Any, value: np.ndarray) -> msgspec.Raw | None:
    """msgspec's encoding of ``value.tolist()`` if graphql-core would produce exactly those values."""
    leaf = _leaf(item_type)
    if isinstance(leaf, GraphQLList):
        inner = _leaf(leaf.of_type)
        is_float_matrix = (
            value.ndim == 2
            and isinstance(inner, GraphQLScalarType)
            and inner.name == "Float"
            and value.dtype.kind == "f"
        )
        if is_float_matrix and np.isfinite(value).all():
            return msgspec.Raw(msgspec.json.encode(value.tolist()))
        return None
    if value.ndim != 1 or not isinstance(leaf, GraphQLScalarType):
        return None
    if leaf.name == "Float" and value.dtype.kind in "fiu":
        as_float = value.astype(np.float64, copy=False)
        if np.isfinite(as_float).all():
            return msgspec.Raw(msgspec.json.encode(as_float.tolist()))
    elif (
        leaf.name == "Int"
        and value.dtype.kind in "iu"
        and (value.size == 0 or (int(value.min()) >= _INT32_MIN and int(value.max()) <= _INT32_MAX))
    ):
        return msgspec.Raw(msgspec.json.encode(value.tolist()))
    return None


class SeriesExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, completing numpy arrays of numeric leaves in one step (see module doc)."""

    _fixed2_batch: Fixed2Batch | None = None

    def complete_list_value(
        self,
        return_type: GraphQLList[Any],
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is np.ndarray:
            item_type = return_type.of_type
            leaf = _leaf(item_type)
            if (
                isinstance(leaf, GraphQLScalarType)
                and leaf.name == "NullableFloat"
                and result.ndim == 1
                and result.dtype.kind in "fiu"
            ):
                batch = self._fixed2_batch
                if batch is None:
                    batch = self._fixed2_batch = Fixed2Batch()
                return batch.add(result)
            raw = _fast_numeric_list(item_type, result)
            if raw is not None:
                return raw
        elif isinstance(result, list) and len(result) > 1:
            fast = complete_object_list(self, return_type.of_type, field_details_list, result)
            if fast is not None:
                return fast
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )


# ============================================================================ lists of objects

# A list of objects (a page of 50 jobs, their tags, resources and footprints) costs graphql-core one
# `execute_field` + `complete_value` per field and item — ~2,000 calls and 20 ms for the job list's
# first page, ten times the SQL. `complete_object_list` completes such a list with a plan compiled once
# per selection: per field the getter (attribute, or the field's synchronous resolver called with the
# parent and a context-only ``info``), the scalar's ``serialize`` and the nullability rule, nested for
# object and list fields. It produces what graphql-core produces for the same values; anything it does
# not model exactly — an awaitable, an error, a null in a non-null position, arguments, directives,
# abstract types, ``@defer`` — abandons the fast attempt and the whole list takes graphql-core's path,
# so errors and their paths are unchanged (tested against the naive executor in test_bypass.py).


class _Bail(Exception):
    """The fast completion cannot reproduce graphql-core here: use the normal path."""


class _ContextInfo:
    """The ``info`` handed to resolvers on the fast path: ``info.context`` only (anything else → bail)."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context

    def __getattr__(self, name: str) -> Any:
        raise _Bail(name)


_NOT_FAST = object()


def _getter(field_def: Any, info: _ContextInfo) -> Any:
    """``(getter, basic)``: ``value = getter(parent)`` of a strawberry field (``basic`` for a plain
    attribute), or ``(_NOT_FAST, False)``."""
    from strawberry.types.field import StrawberryField

    sf = (field_def.extensions or {}).get("strawberry-definition")
    if not isinstance(sf, StrawberryField) or sf.extensions or sf.permission_classes:
        return _NOT_FAST, False
    if field_def.args:
        return _NOT_FAST, False
    resolver = sf.base_resolver
    if resolver is None:
        name = sf.python_name
        if sf.default_resolver is getattr:
            from operator import attrgetter

            return attrgetter(name), True
        default = sf.default_resolver
        return (lambda parent: default(parent, name)), False
    if resolver.is_async or resolver.arguments or resolver.self_parameter is not None:
        return _NOT_FAST, False
    parent_param = resolver.parent_parameter or resolver.root_parameter
    info_param = resolver.info_parameter
    known = {p.name for p in (parent_param, info_param) if p is not None}
    if len(known) != len(resolver.signature.parameters):
        return _NOT_FAST, False
    func = resolver.wrapped_func
    parent_name = parent_param.name if parent_param is not None else None
    info_name = info_param.name if info_param is not None else None

    def call(parent: Any) -> Any:
        kw: dict[str, Any] = {}
        if parent_name is not None:
            kw[parent_name] = parent
        if info_name is not None:
            kw[info_name] = info
        return func(**kw)

    return call, False


def _completer(executor: Any, gql_type: Any, field_details_list: Any, info: _ContextInfo) -> Any:
    """``complete(value) -> JSON-ready value`` for ``gql_type``, or `_NOT_FAST`."""
    from graphql import GraphQLEnumType, GraphQLObjectType

    non_null = isinstance(gql_type, GraphQLNonNull)
    inner = gql_type.of_type if non_null else gql_type

    if isinstance(inner, (GraphQLScalarType, GraphQLEnumType)):
        serialize = inner.serialize
        # The built-in scalars' `serialize` returns these values unchanged; skip the call for them.
        exact = {"String": (str,), "ID": (str,), "Boolean": (bool,), "Int": (int,), "Float": (float,)}.get(
            inner.name, ()
        )
        check_int = inner.name == "Int"
        check_float = inner.name == "Float"
        int_id = inner.name == "ID"  # database ids are ints; `ID.serialize` writes them as strings

        def leaf(value: Any) -> Any:
            if value is None:
                if non_null:
                    raise _Bail
                return None
            if type(value) in exact:
                if check_int and not _INT32_MIN <= value <= _INT32_MAX:
                    raise _Bail
                if check_float and not math.isfinite(value):
                    raise _Bail
                return value
            if int_id and type(value) is int:
                return str(value)
            out = serialize(value)
            if out is None or not isinstance(out, (str, int, float, bool, list, dict)):
                raise _Bail
            return out

        return leaf
    if isinstance(inner, GraphQLList):
        item = _completer(executor, inner.of_type, field_details_list, info)
        if item is _NOT_FAST:
            return _NOT_FAST

        def many(value: Any) -> Any:
            if value is None:
                if non_null:
                    raise _Bail
                return None
            if not isinstance(value, (list, tuple)):
                raise _Bail  # numpy arrays, iterators: graphql-core's (and the numeric) path
            return [item(v) for v in value]

        return many
    if isinstance(inner, GraphQLObjectType):
        plan = _object_plan(executor, inner, field_details_list, info)
        if plan is None:
            return _NOT_FAST

        def obj(value: Any) -> Any:
            if value is None:
                if non_null:
                    raise _Bail
                return None
            return {key: complete(get(value)) for key, get, complete in plan}

        return obj
    return _NOT_FAST  # interfaces, unions


def _object_plan(
    executor: Any, object_type: Any, field_details_list: Any, info: _ContextInfo
) -> list[tuple[str, Any, Any]] | None:
    if object_type.is_type_of is not None:
        return None
    grouped, new_defer_usages, _forbidden = executor.collect_subfields(object_type, field_details_list)
    if new_defer_usages:
        return None
    plan: list[tuple[str, Any, Any]] = []
    for key, details in grouped.items():
        if any(d.node.directives or d.node.arguments for d in details):
            return None
        name = details[0].node.name.value
        if name == "__typename":
            type_name = object_type.name
            plan.append((key, lambda _v, n=type_name: n, lambda v: v))
            continue
        field_def = object_type.fields.get(name)
        if field_def is None:
            return None
        get, basic = _getter(field_def, info)
        if get is _NOT_FAST:
            return None
        complete = _completer(executor, field_def.type, details, info)
        if complete is _NOT_FAST:
            return None
        if basic:  # a plain attribute: no awaitable to expect
            plan.append((key, get, complete))
            continue

        def checked(value: Any, get: Any = get) -> Any:
            out = get(value)
            if isawaitable(out):
                if hasattr(out, "close"):
                    out.close()  # a coroutine that will run again on the normal path
                raise _Bail
            return out

        plan.append((key, checked, complete))
    return plan


def complete_object_list(executor: Any, item_type: Any, field_details_list: Any, items: list[Any]) -> Any:
    """The completed list, or None when the normal path must run (see above)."""
    cache: dict[Any, Any] = executor.__dict__.setdefault("_object_list_plans", {})
    key = (item_type, id(field_details_list))
    entry = cache.get(key)
    if entry is None:
        info = _ContextInfo(executor.context_value)
        try:
            complete = _completer(executor, item_type, field_details_list, info)
        except Exception:
            complete = _NOT_FAST
        entry = cache[key] = (complete, field_details_list)  # keep the list alive: its id is the key
    complete = entry[0]
    if complete is _NOT_FAST:
        return None
    try:
        return (
            [complete(v) for v in items]
            if isinstance(item_type, GraphQLNonNull)
            else _nullable(complete, items)
        )
    except Exception:  # _Bail, or an error the normal path reports with its path
        return None


def _nullable(complete: Any, items: list[Any]) -> list[Any]:
    return [None if v is None else complete(v) for v in items]


def _enc_hook(obj: Any) -> Any:
    if type(obj) is Fixed2Ref:
        return obj.raw()
    if isinstance(obj, np.generic):  # a numpy scalar left in an `Any` value
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot encode {type(obj).__name__} in a GraphQL response")


def response_encoder() -> msgspec.json.Encoder:
    """A msgspec encoder that writes `Fixed2Ref` placeholders and `msgspec.Raw` fragments verbatim."""
    return msgspec.json.Encoder(enc_hook=_enc_hook)


_ENCODER = response_encoder()


def encode_response(
    data: Any, errors: list[dict[str, Any]] | None = None, extensions: dict[str, Any] | None = None
) -> bytes:
    """The response body: ``{"errors": [...], "data": ...}`` with keys as gqlgen orders them."""
    body: dict[str, Any] = {}
    if errors:
        body["errors"] = errors
    body["data"] = data
    if extensions:
        body["extensions"] = extensions
    return _ENCODER.encode(body)

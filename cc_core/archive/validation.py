"""Optional JSON-schema validation of archive files (``main.validate``, ``clustercockpit archive validate``).

The schemas are upstream's (cc-lib ``schema/schemas``, MIT), shipped as data files in
``cc_core/schema/jsonschema``. Validation uses the ``jsonschema`` package, imported only when validation
is asked for: decoding with msgspec already enforces types, so the schema check is an extra that most
sites leave off (as upstream's default does).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

import msgspec

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema" / "jsonschema"
SCHEMA_FILES: dict[str, str] = {
    "meta": "job-meta.schema.json",
    "data": "job-data.schema.json",
    "cluster": "cluster.schema.json",
}
Kind = Literal["meta", "data", "cluster"]
MAX_ERRORS = 5


class SchemaUnavailableError(RuntimeError):
    """The ``jsonschema`` package is not installed."""


@functools.cache
def _validator(kind: str) -> Any:
    try:
        import jsonschema
        import referencing
        import referencing.jsonschema
    except ImportError:  # pragma: no cover - depends on the environment
        raise SchemaUnavailableError(
            "JSON-schema validation needs the `jsonschema` package: pip install jsonschema"
        ) from None
    spec = referencing.jsonschema.DRAFT202012
    resources = []
    docs: dict[str, Any] = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        docs[path.name] = doc
        # Upstream's files say "$schema": "http://…/draft/2020-12/schema" (http, not https); pin the
        # dialect instead of letting the library guess from that spelling.
        resources.append((doc["$id"], referencing.Resource(contents=doc, specification=spec)))
    registry = referencing.Registry().with_resources(resources)
    return jsonschema.Draft202012Validator(docs[SCHEMA_FILES[kind]], registry=registry)


def validate(kind: Kind, document: bytes | str | Any) -> list[str]:
    """Schema violations of a document (raw JSON or already-decoded builtins); empty when valid.

    Each message is ``"<json path>: <problem>"``; at most `MAX_ERRORS` are returned, first by position.
    Raises `SchemaUnavailableError` if ``jsonschema`` is missing and `msgspec.DecodeError` on bad JSON.
    """
    validator = _validator(kind)
    if isinstance(document, bytes | str):
        document = msgspec.json.decode(document)
    errors = sorted(validator.iter_errors(document), key=_position)
    out: list[str] = []
    for err in errors[:MAX_ERRORS]:
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(f"{where}: {err.message}")
    if len(errors) > MAX_ERRORS:
        out.append(f"... and {len(errors) - MAX_ERRORS} more")
    return out


def _position(err: Any) -> list[tuple[int, str]]:
    # Array indices sort numerically, keys alphabetically.
    return [(p, "") if isinstance(p, int) else (-1, str(p)) for p in err.absolute_path]


def available() -> bool:
    """Whether schema validation can run here."""
    try:
        _validator("meta")
    except SchemaUnavailableError:
        return False
    return True

"""The configuration reference (docs/configuration.md), generated from the config structs themselves.

Every key, its type and default come from the msgspec structs that validate ``config.json`` — the core's
and those of the installed plugins (by ``kind``) — so the reference cannot drift from what the server
accepts. Descriptions come, in this order, from a field's ``msgspec.Meta(description=...)``, a
``config_docs`` class attribute of the struct (``{"key-name": "text"}``, the way a third-party plugin
documents its section), or `cc_core.config_docs.DOCS`. A test fails when a key has no description or
the committed Markdown is stale; ``clustercockpit config-reference`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import msgspec.inspect as mi

if TYPE_CHECKING:
    from cc_core.plugins import PluginRegistry


@dataclass(slots=True)
class Key:
    path: str
    type: str
    default: str
    required: bool
    description: str


@dataclass(slots=True)
class Section:
    title: str
    path: str
    intro: str
    keys: list[Key] = field(default_factory=list)


def _type_name(t: Any) -> str:
    if isinstance(t, mi.Metadata):
        return _type_name(t.type)
    simple = {
        mi.StrType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
        mi.AnyType: "any",
        mi.NoneType: "null",
    }
    for cls, name in simple.items():
        if isinstance(t, cls):
            return name
    if isinstance(t, mi.ListType):
        return f"list of {_type_name(t.item_type)}"
    if isinstance(t, mi.DictType):
        return "object"
    if isinstance(t, mi.StructType):
        return "object"
    if isinstance(t, mi.UnionType):
        parts = [_type_name(x) for x in t.types if not isinstance(x, mi.NoneType)]
        return " or ".join(parts)
    return type(t).__name__.removesuffix("Type").lower()


def _inner_struct(t: Any) -> mi.StructType | None:
    if isinstance(t, mi.Metadata):
        return _inner_struct(t.type)
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.ListType):
        return _inner_struct(t.item_type)
    if isinstance(t, mi.UnionType):
        for x in t.types:
            s = _inner_struct(x)
            if s is not None:
                return s
    return None


def _default(f: mi.Field) -> str:
    if f.required:
        return "required"
    if f.default is not mi.NODEFAULT:
        return "" if f.default is None else msgspec.json.encode(f.default).decode()
    if f.default_factory is not mi.NODEFAULT:
        value = f.default_factory()
        if isinstance(value, msgspec.Struct):
            return ""
        return msgspec.json.encode(value).decode()
    return ""


def _description(cls: type, f: mi.Field) -> str:
    from cc_core.config_docs import DOCS

    t = f.type
    if isinstance(t, mi.Metadata) and t.extra_json_schema and t.extra_json_schema.get("description"):
        return str(t.extra_json_schema["description"])
    own = getattr(cls, "config_docs", None)
    if isinstance(own, dict) and f.encode_name in own:
        return str(own[f.encode_name])
    return DOCS.get(f"{cls.__module__}.{cls.__qualname__}", {}).get(f.encode_name, "")


def struct_keys(struct: type, prefix: str, *, skip: tuple[str, ...] = ()) -> list[Key]:
    """Every key of ``struct`` below ``prefix`` (nested sections flattened as ``a.b.c``)."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    out: list[Key] = []
    for f in info.fields:
        if f.encode_name in skip:
            continue
        path = f"{prefix}.{f.encode_name}" if prefix else f.encode_name
        inner = _inner_struct(f.type)
        out.append(Key(path, _type_name(f.type), _default(f), f.required, _description(struct, f)))
        if inner is not None and inner.cls is not struct:
            item = "[]" if isinstance(f.type, mi.ListType) else ""
            out.extend(struct_keys(inner.cls, path + item))
    return out


def reference(registry: PluginRegistry) -> list[Section]:
    """The reference for the core and every installed plugin's config section."""
    from cc_core import config as C

    sections = [
        Section(
            "main",
            "main",
            "The server itself: address, database, behaviour switches.",
            struct_keys(C.MainConfig, "main"),
        ),
        Section(
            "auth.jwts",
            "auth.jwts",
            "API tokens (JWT, Ed25519) and the JWT login paths. Keys: `JWT_PUBLIC_KEY` / `JWT_PRIVATE_KEY` in `.env`.",
            struct_keys(C.JWTConfig, "auth.jwts"),
        ),
    ]
    archive = Section(
        "archive",
        "archive",
        "The job archive. `kind` selects the backend; the keys below the core's belong to that backend.",
        [
            Key(
                "archive.kind",
                "string",
                '"file"',
                False,
                "Archive backend: " + ", ".join(f"`{k}`" for k in registry.kinds("archive")) + ".",
            ),
            Key(
                "archive.compression",
                "integer",
                "7",
                False,
                "Days after which finished jobs' `data.json` are gzip-compressed by the compression task (0 = never).",
            ),
            *struct_keys(C.Retention, "archive.retention"),
        ],
    )
    sections.append(archive)
    for kind, cls in sorted(registry.classes("archive").items()):
        struct = getattr(cls, "Config", None)
        if struct is not None:
            sections.append(
                Section(
                    f'archive (kind "{kind}")',
                    "archive",
                    _doc(registry, "archive", kind),
                    struct_keys(struct, "archive"),
                )
            )
    sections.append(
        Section(
            "cron",
            "cron",
            "Intervals of the server's periodic workers (Go-style durations).",
            struct_keys(C.CronConfig, "cron"),
        )
    )
    sections.append(
        Section(
            "nats",
            "nats",
            "Connection to a NATS server (used by the NATS API and metric ingest).",
            struct_keys(C.NatsConfig, "nats"),
        )
    )
    for kind, cls in sorted(registry.classes("metric").items()):
        struct = getattr(cls, "Config", None)
        if struct is None:
            continue
        if kind == C.INTERNAL_METRIC_STORE_KIND:
            sections.append(
                Section(
                    "metric-store",
                    "metric-store",
                    _doc(registry, "metric", kind),
                    struct_keys(struct, "metric-store"),
                )
            )
        else:
            keys = [
                Key(
                    "metric-store-external[].kind",
                    "string",
                    f'"{C.DEFAULT_METRIC_BACKEND_KIND}"',
                    False,
                    f"`{kind}` selects this backend.",
                )
            ]
            sections.append(
                Section(
                    f'metric-store-external[] (kind "{kind}")',
                    "metric-store-external[]",
                    _doc(registry, "metric", kind),
                    keys + struct_keys(struct, "metric-store-external[]"),
                )
            )
    for kind, cls in sorted(registry.classes("authenticator").items()):
        struct = getattr(cls, "Config", None)
        if struct is not None:
            sections.append(
                Section(
                    f"auth.{kind}",
                    f"auth.{kind}",
                    _doc(registry, "authenticator", kind),
                    struct_keys(struct, f"auth.{kind}"),
                )
            )
    for kind, cls in sorted(registry.classes("scheduler").items()):
        struct = getattr(cls, "Config", None)
        keys = [Key("schedulers[].kind", "string", "required", True, f"`{kind}` selects this scheduler.")]
        if struct is not None:
            keys += struct_keys(struct, "schedulers[]")
        sections.append(
            Section(f'schedulers[] (kind "{kind}")', "schedulers[]", _doc(registry, "scheduler", kind), keys)
        )
    sections.append(
        Section(
            "ui",
            "ui",
            "Defaults of the web UI (each user can override them in the settings).",
            struct_keys(C.UIConfig, "ui"),
        )
    )
    return sections


def _doc(registry: PluginRegistry, category: str, kind: str) -> str:
    """Which distribution provides the section, and the first paragraph of its config struct's docstring."""
    reg = registry.get(category, kind)
    if reg is None:
        return ""
    struct = getattr(reg.cls, "Config", None)
    own = struct.__dict__.get("__doc__") if struct is not None else None
    text = " ".join((own or "").strip().split("\n\n")[0].split())
    return f"Provided by `{reg.distribution}`." + (f" {text}" if text else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: list[Section]) -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `clustercockpit config-reference` from the config structs; do not edit by hand. -->",
        "",
        "`config.json` is a JSON object of the sections below (upstream's keys). A section may live in its",
        'own file: `"ui-file": "ui.json"`. Secrets can be written as `{"$env": "NAME"}` and are then read',
        "from the environment or `.env`. Unknown keys are errors, with the file, line and key named.",
        "Sections of plugins appear only when the plugin is installed (`clustercockpit plugins`).",
        "",
    ]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.intro:
            lines += [s.intro, ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for k in s.keys:
            default = f"`{k.default}`" if k.default and k.default != "required" else k.default
            lines.append(f"| `{k.path}` | {k.type} | {_cell(default)} | {_cell(k.description)} |")
        lines.append("")
    return "\n".join(lines)


def undocumented(sections: list[Section]) -> list[str]:
    return [k.path for s in sections for k in s.keys if not k.description]

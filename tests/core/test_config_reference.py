"""The generated configuration reference: complete, described, and the committed copy is current."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import msgspec

from cc_core.config_reference import reference, render_markdown, struct_keys, undocumented
from cc_core.plugins import make_plugin_manager

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_key_has_a_description() -> None:
    assert undocumented(reference(make_plugin_manager())) == []


def test_committed_reference_is_current() -> None:
    text = render_markdown(reference(make_plugin_manager()))
    assert DOC.read_text() == text, (
        "docs/configuration.md is stale: run `clustercockpit config-reference -o docs/configuration.md`"
    )


def test_reference_covers_upstream_keys_and_plugins() -> None:
    paths = {k.path for s in reference(make_plugin_manager()) for k in s.keys}
    for key in (
        "main.addr",
        "main.api-subjects.subject-job-event",
        "main.db-config.busy-timeout-ms",
        "auth.jwts.max-age",
        "archive.retention.omit-tagged",
        "archive.path",
        "archive.bucket",
        "metric-store.checkpoints.file-format",
        "metric-store-external[].url",
        "auth.ldap.user-bind",
        "auth.oidc.provider",
        "ui.plot-configuration.color-scheme",
    ):
        assert key in paths, key


class MyConfig(msgspec.Struct, rename="kebab"):
    config_docs: ClassVar[dict[str, str]] = {"poll-interval": "Seconds between polls."}
    url: Annotated[str, msgspec.Meta(description="Where the scheduler answers.")]
    poll_interval: float = 30.0
    nested: list[int] = msgspec.field(default_factory=list)


def test_plugin_structs_document_themselves() -> None:
    """A third-party plugin documents its keys on its struct: ``msgspec.Meta`` or ``config_docs``."""
    keys = {k.path: k for k in struct_keys(MyConfig, "schedulers[]")}
    assert keys["schedulers[].url"].description == "Where the scheduler answers."
    assert keys["schedulers[].url"].required and keys["schedulers[].url"].default == "required"
    assert keys["schedulers[].poll-interval"].description == "Seconds between polls."
    assert keys["schedulers[].poll-interval"].default == "30.0"
    assert (
        keys["schedulers[].nested"].type == "list of integer"
        and keys["schedulers[].nested"].description == ""
    )

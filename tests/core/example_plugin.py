"""An in-process plugin implementing every hook, used by the hook tests (and as a worked example)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import click
import msgspec
from litestar import get

from cc_core.hookspecs import hookimpl
from cc_core.interfaces import TaggerResult
from cc_core.schema import Tag
from cc_core.web import Contribution, NavItem

TEMPLATES = Path(__file__).parent / "example_templates"


class MemoryMetrics:
    kind: ClassVar[str] = "example-memory"

    class Config(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
        scope: str
        points: int = 10

    def __init__(self, config: Config, context: Any) -> None:
        self.config = config


class NullArchive:
    kind: ClassVar[str] = "example-null"

    class Config(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
        label: str = "null"

    def __init__(self, config: Config, context: Any) -> None:
        self.config = config

    async def init(self) -> int:
        return 3

    async def get_clusters(self) -> list[str]:
        return ["examplecluster"]

    async def load_cluster_config(self, name: str) -> Any:
        from cc_core.testing.archive_contract import make_cluster

        return make_cluster(name)

    async def close(self) -> None:
        pass


class TokenOnly:
    kind: ClassVar[str] = "example-token"

    class Config(msgspec.Struct, forbid_unknown_fields=True):
        header: str = "X-Example"


class GpuTagger:
    kind: ClassVar[str] = "example-gpu"
    event: ClassVar[str] = "start"

    async def match(self, job: Any) -> TaggerResult:
        return TaggerResult(tags=[Tag(type="hw", name="gpu")] if job.num_acc else [])


class FakeScheduler:
    kind: ClassVar[str] = "example-sched"

    class Config(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
        poll_interval: int = 30


class Heartbeat:
    name: ClassVar[str] = "example-heartbeat"
    schedule = 60.0

    async def run(self) -> str:
        return "ok"


@hookimpl
def register_metric_backends(register):  # type: ignore[no-untyped-def]
    register(MemoryMetrics)


@hookimpl
def register_archive_backends(register):  # type: ignore[no-untyped-def]
    register(NullArchive)


@hookimpl
def register_authenticators(register):  # type: ignore[no-untyped-def]
    register(TokenOnly)


@hookimpl
def register_taggers(register):  # type: ignore[no-untyped-def]
    register(GpuTagger)


@hookimpl
def register_schedulers(register):  # type: ignore[no-untyped-def]
    register(FakeScheduler)


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(Heartbeat)


@hookimpl
def register_cli_commands(cli):  # type: ignore[no-untyped-def]
    @cli.command("example-hello")
    @click.argument("name")
    def hello(name: str) -> None:
        """Greet someone (example plugin command)."""
        click.echo(f"hello {name}")


@get("/example/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"pong": "yes"}


@hookimpl
def litestar_plugins(context):  # type: ignore[no-untyped-def]
    label = context.section("$.archive").label if context.section("$.archive") else "?"
    return [
        Contribution(
            route_handlers=[ping],
            template_dirs=[TEMPLATES],
            nav_items=[NavItem(f"Example {label}", "/example/ping", icon="star")],
        )
    ]

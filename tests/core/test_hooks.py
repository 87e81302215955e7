"""Each hook, exercised through an in-process plugin (tests/core/example_plugin.py)."""

from __future__ import annotations

import json

import anyio
from click.testing import CliRunner
from litestar.testing import TestClient

from cc_core.app import create_app
from cc_core.cli import add_plugin_commands, build_cli
from cc_core.config import load_config
from cc_core.plugins import make_plugin_manager
from cc_core.schema import Job, Resource
from tests.core import example_plugin


def registry():  # type: ignore[no-untyped-def]
    return make_plugin_manager(environ={}, extra_plugins=[example_plugin])


def test_registration_hooks_register_classes_by_kind() -> None:
    reg = registry()
    assert reg.classes("metric")["example-memory"] is example_plugin.MemoryMetrics
    assert reg.classes("archive")["example-null"] is example_plugin.NullArchive
    assert reg.classes("authenticator")["example-token"] is example_plugin.TokenOnly
    assert reg.classes("tagger")["example-gpu"] is example_plugin.GpuTagger
    assert reg.classes("scheduler")["example-sched"] is example_plugin.FakeScheduler
    assert reg.classes("task")["example-heartbeat"] is example_plugin.Heartbeat
    info = reg.infos["tests.core.example_plugin"]
    assert info.kinds["task"] == ["example-heartbeat"]
    assert "register_cli_commands" in info.hooks and "litestar_plugins" in info.hooks


def test_registered_classes_validate_their_sections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(
        json.dumps(
            {
                "archive": {"kind": "example-null", "label": "L"},
                "metric-store-external": [{"kind": "example-memory", "scope": "*", "points": 3}],
                "auth": {"example-token": {"header": "X-T"}},
                "schedulers": [{"kind": "example-sched", "poll-interval": 5}],
            }
        )
    )
    cfg = load_config(cfg_file, environ={})
    cfg.validate_plugins(registry())
    assert cfg.plugin_configs["$.archive"].label == "L"
    assert cfg.plugin_configs["$.metric-store-external[0]"].points == 3
    assert cfg.plugin_configs["$.auth.example-token"].header == "X-T"
    assert cfg.plugin_configs["$.schedulers[0]"].poll_interval == 5


def test_tagger_and_task_objects_do_the_work() -> None:
    tagger = registry().classes("tagger")["example-gpu"]()
    job = Job(
        job_id=1,
        user="u",
        project="p",
        cluster="c",
        start_time=1,
        num_nodes=1,
        resources=[Resource(hostname="n1")],
        num_acc=2,
    )
    result = anyio.run(tagger.match, job)
    assert [(t.type, t.name) for t in result.tags] == [("hw", "gpu")]
    task = registry().classes("task")["example-heartbeat"]()
    assert anyio.run(task.run) == "ok"


def test_register_cli_commands_adds_a_working_command() -> None:
    group = build_cli()
    add_plugin_commands(group, registry())
    try:
        result = CliRunner().invoke(group, ["example-hello", "world"])
        assert result.exit_code == 0, result.output
        assert result.output == "hello world\n"
    finally:
        group.commands.pop("example-hello", None)


def test_cli_command_name_clash_is_refused() -> None:
    import click

    group = click.Group(commands={"example-hello": click.Command("example-hello")})
    original = group.commands["example-hello"]
    add_plugin_commands(group, registry())
    assert group.commands["example-hello"] is original


def test_litestar_plugins_add_routes_templates_and_navigation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg_file = tmp_path / "config.json"
    # Authentication off: this test is about plugin pages, not logins (every request is the anonymous admin).
    cfg_file.write_text(
        json.dumps(
            {"main": {"disable-authentication": True}, "archive": {"kind": "example-null", "label": "L"}}
        )
    )
    cfg = load_config(cfg_file, environ={})
    app = create_app(cfg, registry=registry())
    with TestClient(app) as client:
        assert client.get("/example/ping").json() == {"pong": "yes"}
        page = client.get("/")
        assert page.status_code == 200
        assert '<p id="override">Overridden start page for examplecluster</p>' in page.text
        assert 'href="/example/ping"' in page.text and "Example L" in page.text

"""Plugin discovery, the registry's rules, and the documentation meta-test for every hook."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import msgspec
import pytest

from cc_core import hookspecs
from cc_core.config import ConfigError
from cc_core.hookspecs import hookimpl
from cc_core.plugins import PendingBackend, PluginError, describe, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {
    "metric-ccms": "clustercockpit-metric-ccms",
    "metric-prometheus": "clustercockpit-metric-prometheus",
    "metric-influx": "clustercockpit-metric-influx",
    "archive-fs": "clustercockpit-archive-fs",
    "archive-s3": "clustercockpit-archive-s3",
    "auth-ldap": "clustercockpit-auth-ldap",
    "auth-oidc": "clustercockpit-auth-oidc",
    "scheduler-slurm": "clustercockpit-scheduler-slurm",
}


def test_every_shipped_plugin_is_discovered_with_its_kinds() -> None:
    registry = make_plugin_manager(environ={})
    found = {i.name: i.distribution for i in registry.infos.values() if not i.builtin}
    assert found == SHIPPED
    assert {"cc-metric-store", "cc-metric-store-internal", "prometheus", "influxdb"} <= set(
        registry.kinds("metric")
    )
    assert {"ldap", "oidc"} <= set(registry.kinds("authenticator"))
    listing = {p["name"]: p for p in describe(registry)}
    assert listing["metric-ccms"]["hooks"] == [
        "litestar_plugins",
        "register_cli_commands",
        "register_metric_backends",
    ]
    assert listing["auth-ldap"]["kinds"] == {"authenticator": ["ldap"], "task": ["ldap-sync"]}
    assert listing["scheduler-slurm"]["kinds"] == {"scheduler": ["slurm"]}


def test_load_and_disable_filters() -> None:
    only = make_plugin_manager(environ={"CC_LOAD_PLUGINS": "auth-ldap,clustercockpit-metric-influx"})
    assert {i.name for i in only.infos.values() if not i.builtin} == {"auth-ldap", "metric-influx"}
    none = make_plugin_manager(environ={"CC_LOAD_PLUGINS": ""})
    assert [i for i in none.infos.values() if not i.builtin] == []
    some = make_plugin_manager(environ={"CC_DISABLE_PLUGINS": "auth-oidc"})
    assert "auth-oidc" not in some.infos and "auth-ldap" in some.infos
    assert "oidc" not in some.kinds("authenticator")


class _Influx2(PendingBackend):
    kind = "influxdb"

    class Config(msgspec.Struct):
        url: str = ""


class _Duplicate:
    @hookimpl
    def register_metric_backends(self, register):  # type: ignore[no-untyped-def]
        register(_Influx2)


def test_duplicate_kind_is_refused_naming_both_distributions() -> None:
    with pytest.raises(PluginError) as e:
        make_plugin_manager(environ={}, extra_plugins=[_Duplicate()])
    msg = str(e.value)
    assert "'influxdb' is registered twice" in msg
    assert "clustercockpit-metric-influx" in msg and "<in-process>" in msg


def test_class_without_kind_is_refused() -> None:
    class NoKind:
        pass

    class Bad:
        @hookimpl
        def register_taggers(self, register):  # type: ignore[no-untyped-def]
            register(NoKind)

    with pytest.raises(PluginError, match="has no `kind` string"):
        make_plugin_manager(environ={"CC_LOAD_PLUGINS": ""}, extra_plugins=[Bad()])


def test_resolve_unknown_kind_message() -> None:
    registry = make_plugin_manager(environ={"CC_LOAD_PLUGINS": ""})
    with pytest.raises(ConfigError, match=r'pip install "clustercockpit\[prometheus\]"'):
        registry.resolve("metric", "prometheus", path="$.x")
    with pytest.raises(ConfigError, match="no known plugin provides it"):
        registry.resolve("scheduler", "pbs", path="$.schedulers[0].kind")


def test_pending_backend_refuses_to_pretend() -> None:
    with pytest.raises(PluginError, match="not available yet"):
        _Influx2(None, None)


# --- meta-test: every hook has a docstring, a section in the plugin guide and a test -------------------


def _hooks() -> list[str]:
    return hookspecs.hook_names()


def test_hook_list_is_the_documented_surface() -> None:
    assert _hooks() == sorted(
        [
            "litestar_plugins",
            "register_archive_backends",
            "register_authenticators",
            "register_cli_commands",
            "register_metric_backends",
            "register_schedulers",
            "register_taggers",
            "register_tasks",
        ]
    )


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_documented_and_tested(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 80, f"hook {hook} needs a docstring that serves as its reference"
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### {hook}$", guide, re.M), f"docs/plugins.md lacks a section for {hook}"
    # A test exercises the hook: a module of a test tree implements or calls it by name (this one aside).
    tests = [p for p in ROOT.glob("tests/**/*.py") if p.name != "test_plugins.py"]
    tests += list(ROOT.glob("plugins/*/tests/**/*.py"))
    assert any(f"def {hook}(" in p.read_text() or f".{hook}(" in p.read_text() for p in tests), (
        f"no test implements or calls the hook {hook}"
    )

"""Config loading: upstream files load unchanged; every kind of mistake gets a message with file and path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cc_core.config import ConfigError, load_config, parse_duration
from cc_core.plugins import make_plugin_manager

UPSTREAM = Path(__file__).parent.parent / "fixtures" / "upstream"


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_upstream_example_configs_load_unchanged(tmp_path: Path) -> None:
    # config.json includes "ui-file": "ui-config.json"; give it upstream's UI config under that name.
    site = tmp_path / "site"
    site.mkdir()
    (site / "config.json").write_bytes((UPSTREAM / "config.json").read_bytes())
    (site / "ui-config.json").write_bytes((UPSTREAM / "uiConfig.json").read_bytes())
    cfg = load_config(site / "config.json", environ={})
    assert cfg.main.addr == "0.0.0.0:443"
    assert cfg.main.api_subjects is not None
    assert cfg.main.api_subjects.subject_job_event == "cc.job.event"
    assert cfg.main.resampling is not None and cfg.main.resampling.resolutions == [240, 60]
    assert cfg.archive["kind"] == "s3"
    assert cfg.retention.policy == "move" and cfg.retention.age == 365
    assert cfg.ui.plot_configuration.plots_per_row == 3
    assert cfg.ui.metric_config.clusters[0].sub_clusters[0].job_list_metrics == ["mem_used", "flops_sp"]
    assert cfg.jwts.max_age == "2000h"
    assert [e["scope"] for e in cfg.metric_store_external or []] == ["*", "fritz", "fritz-spr1tb", "alex"]
    # The plugin-owned sections validate against the installed plugins' Config structs.
    cfg.validate_plugins(make_plugin_manager())
    assert cfg.plugin_configs["$.archive"].bucket == "jobarchive"
    assert cfg.plugin_configs["$.metric-store"].nats_subscriptions[1].cluster_tag == "alex"
    assert cfg.plugin_configs["$.metric-store-external[2]"].scope == "fritz-spr1tb"

    demo = load_config(UPSTREAM / "config-demo.json", environ={})
    demo.validate_plugins(make_plugin_manager())
    assert demo.cron.duration_worker == "3m"
    assert demo.archive == {"kind": "file", "path": "./var/job-archive"}


def test_defaults_without_a_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg.main.addr == "localhost:8080"
    assert cfg.main.db == "./var/job.db"
    assert cfg.metric_store is None
    # The embedded store becomes the metric source when its plugin is installed ...
    cfg.validate_plugins(make_plugin_manager(environ={}))
    assert cfg.plugin_configs["$.metric-store"].retention_in_memory == "48h"
    # ... and without it the server runs without live metric data instead of refusing to start.
    bare = load_config(None, environ={})
    bare.validate_plugins(make_plugin_manager(environ={"CC_DISABLE_PLUGINS": "metric-ccms"}))
    assert bare.metric_store is None and "$.metric-store" not in bare.plugin_configs


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.json")
    assert "nope.json" in str(e.value) and "not found" in str(e.value)
    assert "clustercockpit init" in str(e.value)


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, '{\n  "main": {\n    "addr": "x",\n  }\n}\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value)
    assert "line 4, column 3" in str(e.value)


def test_unknown_key_is_an_error_with_its_path(tmp_path: Path) -> None:
    p = write(tmp_path, {"main": {"addr": "localhost:1", "adr": "typo"}})
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.path == "$.main"
    assert "unknown key `adr`" in str(e.value)

    p = write(tmp_path, {"mian": {}})
    with pytest.raises(ConfigError, match="unknown key `mian`"):
        load_config(p)


def test_wrong_type(tmp_path: Path) -> None:
    p = write(tmp_path, {"main": {"short-running-jobs-duration": "300"}})
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.path == "$.main.short-running-jobs-duration"
    assert "Expected `int`, got `str`" in str(e.value)


def test_bad_duration_and_enum(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"max-age.*invalid duration .2000 hours."):
        load_config(write(tmp_path, {"auth": {"jwts": {"max-age": "2000 hours"}}}))
    with pytest.raises(ConfigError, match="policy"):
        load_config(write(tmp_path, {"archive": {"kind": "file", "retention": {"policy": "shred"}}}))


def test_unknown_kind_names_the_package_to_install(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {"archive": {"kind": "s3", "bucket": "b"}}))
    registry = make_plugin_manager(environ={"CC_DISABLE_PLUGINS": "archive-s3"})
    with pytest.raises(ConfigError) as e:
        cfg.validate_plugins(registry)
    assert e.value.path == "$.archive.kind"
    assert 'pip install "clustercockpit[s3]"' in str(e.value)

    cfg = load_config(write(tmp_path, {"metric-store-external": [{"kind": "graphite", "scope": "*"}]}))
    with pytest.raises(ConfigError, match="unknown metric backend kind 'graphite'") as e:
        cfg.validate_plugins(make_plugin_manager())
    assert e.value.path == "$.metric-store-external[0].kind"


def test_plugin_section_errors_carry_the_full_path(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {"metric-store": {"retention-in-memory": "24h"}}))
    with pytest.raises(ConfigError) as e:
        cfg.validate_plugins(make_plugin_manager())
    assert e.value.path == "$.metric-store"
    assert "missing required key `memory-cap`" in str(e.value)

    cfg = load_config(write(tmp_path, {"auth": {"ldap": {"url": "ldap://x", "user-base": "dc=x", "bad": 1}}}))
    with pytest.raises(ConfigError, match="unknown key `bad`") as e:
        cfg.validate_plugins(make_plugin_manager())
    assert e.value.path == "$.auth.ldap"


def test_missing_secret(tmp_path: Path) -> None:
    p = write(tmp_path, {"archive": {"kind": "s3", "bucket": "b", "secret-key": {"$env": "S3_SECRET"}}})
    with pytest.raises(ConfigError) as e:
        load_config(p, environ={})
    assert e.value.path == "$.archive.secret-key"
    assert "S3_SECRET" in str(e.value)
    cfg = load_config(p, environ={"S3_SECRET": "s3cr3t"})
    assert cfg.archive["secret-key"] == "s3cr3t"

    cfg = load_config(write(tmp_path, {}), environ={})
    with pytest.raises(ConfigError, match="SESSION_KEY is not set"):
        cfg.secret("SESSION_KEY", required_for="to sign login sessions")


def test_env_file_is_read_and_process_env_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('SESSION_KEY="from-file"\nJWT_PUBLIC_KEY=abc\n')
    cfg = load_config(write(tmp_path, {}), environ={"JWT_PUBLIC_KEY": "from-env"})
    assert cfg.secret("SESSION_KEY") == "from-file"
    assert cfg.secret("JWT_PUBLIC_KEY") == "from-env"


def test_section_include_errors_name_the_included_file(tmp_path: Path) -> None:
    write(tmp_path, '{"job-list": {"use-paging": "yes"}}', name="ui.json")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, {"ui-file": "ui.json"}))
    assert e.value.path == "$.ui.job-list.use-paging"
    write(tmp_path, "{oops", name="ui.json")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, {"ui-file": "ui.json"}))
    assert e.value.file is not None and e.value.file.endswith("ui.json")


@pytest.mark.parametrize(
    ("text", "seconds"), [("2000h", 7_200_000), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5), ("0", 0)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)

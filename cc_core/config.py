"""`config.json` (+ `.env`): upstream's layout and keys, validated strictly with errors a person can act on.

Loading has two phases. `load_config` reads the file, follows ``<section>-file`` includes, resolves
``{"$env": "NAME"}`` secrets and validates the sections the core owns. `Config.validate_plugins` (called by
`create_app` and the CLI once plugins are loaded) hands each plugin-owned section (``archive``,
``metric-store``, ``metric-store-external[]``, ``auth.<kind>``, ``schedulers[]``) to the ``Config`` struct
of the class its ``kind`` selects. Every error names the file, the JSON path and what was expected.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import msgspec
from dotenv import dotenv_values

log = logging.getLogger(__name__)

# Kinds whose plugin we ship, mapped to the extra that installs it (for "unknown kind" messages).
KIND_EXTRAS: dict[str, str] = {
    "file": "fs",
    "s3": "s3",
    "cc-metric-store": "ccms",
    "cc-metric-store-internal": "ccms",
    "prometheus": "prometheus",
    "influxdb": "influx",
    "ldap": "ldap",
    "oidc": "oidc",
    "slurm": "slurm",
}
INTERNAL_METRIC_STORE_KIND = "cc-metric-store-internal"
DEFAULT_METRIC_BACKEND_KIND = "cc-metric-store"
CORE_ARCHIVE_KEYS = ("kind", "compression", "retention")
DEFAULT_INTERNAL_METRIC_STORE: dict[str, Any] = {"retention-in-memory": "48h", "memory-cap": 0}

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(Exception):
    """A configuration problem, with where it is: file, JSON path, what was expected."""

    def __init__(self, message: str, *, file: str | os.PathLike[str] | None = None, path: str = "") -> None:
        self.file = str(file) if file is not None else None
        self.path = path
        self.message = message
        where = ": ".join(x for x in (self.file, path) if x)
        super().__init__(f"{where}: {message}" if where else message)


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"2000h"``, ``"1h30m"``, ``"500ms"``), as upstream's config uses."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f'invalid duration {text!r} (expected e.g. "90s", "10m", "24h", "1h30m")')
    return total


def _check_duration(value: str, key: str) -> None:
    try:
        parse_duration(value)
    except ValueError as e:
        raise ValueError(f"`{key}`: {e}") from None


class _Section(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    pass


class ApiSubjects(_Section):
    subject_job_event: str
    subject_node_state: str
    job_concurrency: int = 8
    node_concurrency: int = 2


class Resampling(_Section):
    minimum_points: int = 1000
    trigger: int = 0
    resolutions: list[int] = msgspec.field(default_factory=list)


class TargetStore(_Section):
    """Where retention services copy or move data (`target-*` keys of upstream)."""

    target_kind: str = "file"
    target_path: str = ""
    target_endpoint: str = ""
    target_bucket: str = ""
    target_access_key: str = ""
    target_secret_key: str = ""
    target_region: str = ""
    target_use_path_style: bool = False


class NodeStateRetention(TargetStore):
    policy: str = "delete"
    age: int = 24
    max_file_size_mb: int = 128

    def __post_init__(self) -> None:
        if self.policy not in ("delete", "move"):
            raise ValueError(f'`policy` must be "delete" or "move", got {self.policy!r}')


class DbConfig(_Section):
    cache_size_mb: int = 2048
    soft_heap_limit_mb: int = 16384
    max_open_connections: int = 4
    max_idle_connections: int = 4
    max_idle_time_minutes: int = 10
    busy_timeout_ms: int = 60000
    # Ours: WAL size (MB) at which a commit checkpoints it into the database file (SQLite's default is
    # ~4 MB). Larger means fewer checkpoints, each copying a hot page once instead of many times.
    wal_autocheckpoint_mb: int = 64
    # Ours: run start_job/stop_job writes right in the event loop when the writer is free (see
    # `Database.write_raw_inline`, `Database.write_grouped`); false = always hand them to the writer thread.
    inline_start_job: bool = True


class MainConfig(_Section):
    addr: str = "localhost:8080"
    api_allowed_ips: list[str] = msgspec.field(default_factory=list)
    api_subjects: ApiSubjects | None = None
    user: str = ""
    group: str = ""
    disable_authentication: bool = False
    embed_static_files: bool = True
    static_files: str = ""
    db: str = "./var/job.db"
    db_driver: str = "sqlite3"  # legacy key of older upstream configs; the URL in `db` decides now
    enable_job_taggers: bool = False
    validate: bool = False
    session_max_age: str = "168h"
    https_cert_file: str = ""
    https_key_file: str = ""
    redirect_http_to: str = ""
    machine_state_dir: str = ""
    stop_jobs_exceeding_walltime: int = 0
    short_running_jobs_duration: int = 300
    emission_constant: float = 0.0
    resampling: Resampling | None = None
    systemd_unit: str = ""
    nodestate_retention: NodeStateRetention | None = None
    db_config: DbConfig = msgspec.field(default_factory=DbConfig)
    # Ours: proxies whose X-Forwarded-For / X-Real-Ip we believe (upstream trusts any client's header).
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    # Ours: largest accepted request body, bytes (413 beyond).
    max_body_size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_duration(self.session_max_age, "session-max-age")
        if self.db_driver not in ("sqlite3", "postgres", "postgresql"):
            raise ValueError(f"`db-driver` {self.db_driver!r} is not supported (sqlite3 or postgresql)")


class JWTConfig(_Section):
    max_age: str = "0"
    cookie_name: str = ""
    validate_user: bool = False
    trusted_issuer: str = ""
    sync_user_on_login: bool = False
    update_user_on_login: bool = False

    def __post_init__(self) -> None:
        _check_duration(self.max_age, "max-age")


class Retention(TargetStore):
    policy: str = "none"
    format: str = "json"
    age: int = 7
    include_db: bool = True
    omit_tagged: str = "none"
    max_file_size_mb: int = 512
    location: str = ""  # present in upstream's example config, but read by nothing there; accepted

    def __post_init__(self) -> None:
        if self.policy not in ("none", "delete", "copy", "move"):
            raise ValueError(f"`policy` must be one of none, delete, copy, move; got {self.policy!r}")
        if self.format not in ("json", "parquet"):
            raise ValueError(f'`format` must be "json" or "parquet", got {self.format!r}')
        if self.omit_tagged not in ("none", "all", "user"):
            raise ValueError(f"`omit-tagged` must be none, all or user; got {self.omit_tagged!r}")


class CronConfig(_Section):
    commit_job_worker: str = "2m"
    duration_worker: str = "5m"
    footprint_worker: str = "10m"

    def __post_init__(self) -> None:
        for key in ("commit_job_worker", "duration_worker", "footprint_worker"):
            _check_duration(getattr(self, key), key.replace("_", "-"))


class NatsConfig(_Section):
    address: str
    username: str = ""
    password: str = ""
    creds_file_path: str = ""


class UIJobList(_Section):
    use_paging: bool = False
    show_footprint: bool = True


class UINodeList(_Section):
    use_paging: bool = False


class UIJobView(_Section):
    show_polar_plot: bool = True
    show_footprint: bool = True
    show_roofline: bool = True
    show_stat_table: bool = True


class UIMetricSelection(_Section):
    name: str = ""
    job_list_metrics: list[str] | None = None
    job_view_plot_metrics: list[str] | None = None
    job_view_table_metrics: list[str] | None = None


class UIClusterMetrics(UIMetricSelection):
    sub_clusters: list[UIMetricSelection] = msgspec.field(default_factory=list)


class UIMetricConfig(_Section):
    job_list_metrics: list[str] | None = None
    job_view_plot_metrics: list[str] | None = None
    job_view_table_metrics: list[str] | None = None
    clusters: list[UIClusterMetrics] = msgspec.field(default_factory=list)


class UIPlotConfiguration(_Section):
    color_background: bool = True
    plots_per_row: int = 3
    line_width: int = 3
    color_scheme: list[str] | None = None


class UIConfig(_Section):
    job_list: UIJobList = msgspec.field(default_factory=UIJobList)
    node_list: UINodeList = msgspec.field(default_factory=UINodeList)
    job_view: UIJobView = msgspec.field(default_factory=UIJobView)
    metric_config: UIMetricConfig = msgspec.field(default_factory=UIMetricConfig)
    plot_configuration: UIPlotConfiguration = msgspec.field(default_factory=UIPlotConfiguration)


def _default_archive() -> dict[str, Any]:
    return {"kind": "file", "path": "./var/job-archive"}


class Config(_Section, dict=True):
    """The whole `config.json`. Plugin-owned sections stay raw dicts until `validate_plugins`."""

    main: MainConfig = msgspec.field(default_factory=MainConfig)
    auth: dict[str, Any] = msgspec.field(default_factory=dict)
    archive: dict[str, Any] = msgspec.field(default_factory=_default_archive)
    cron: CronConfig = msgspec.field(default_factory=CronConfig)
    nats: NatsConfig | None = None
    metric_store: dict[str, Any] | None = None
    metric_store_external: list[dict[str, Any]] | None = None
    ui: UIConfig = msgspec.field(default_factory=UIConfig)
    # Ours: batch-system integrations, `[{"kind": "slurm", ...}]`.
    schedulers: list[dict[str, Any]] = msgspec.field(default_factory=list)

    # Not from JSON: where the config came from, and the environment (.env + process env).
    def __post_init__(self) -> None:
        self._meta: dict[str, Any] = {}

    @property
    def source(self) -> str:
        return self._meta.get("source", "<defaults>")

    @property
    def base_dir(self) -> Path:
        return self._meta.get("base_dir", Path.cwd())

    @property
    def env(self) -> dict[str, str]:
        return self._meta.setdefault("env", {})

    @property
    def jwts(self) -> JWTConfig:
        return self._meta["jwts"]

    @property
    def retention(self) -> Retention:
        return self._meta["retention"]

    @property
    def archive_compression_days(self) -> int:
        return int(self.archive.get("compression", 7))

    @property
    def plugin_configs(self) -> dict[str, Any]:
        """Validated plugin sections by JSON path (filled in by `validate_plugins`)."""
        return self._meta.setdefault("plugin_configs", {})

    def secret(self, name: str, *, required_for: str | None = None) -> str | None:
        """An environment secret; with ``required_for``, its absence is a `ConfigError` saying why."""
        value = self.env.get(name) or None
        if value is None and required_for:
            raise ConfigError(
                f"{name} is not set; it is required {required_for}. Put it in .env next to the config "
                "(`clustercockpit init` writes one) or in the environment.",
                file=self._meta.get("env_file") or ".env",
            )
        return value

    def validate_plugins(self, registry: Any) -> None:
        """Validate every plugin-owned section against the ``Config`` of the class its ``kind`` selects.

        ``registry`` is the `cc_core.plugins.PluginRegistry` of the loaded plugins.
        """
        out = self.plugin_configs
        archive = dict(self.archive)
        kind = archive.get("kind", "file")
        cls = registry.resolve("archive", kind, path="$.archive.kind", file=self.source)
        section = {k: v for k, v in archive.items() if k not in CORE_ARCHIVE_KEYS}
        out["$.archive"] = _convert_plugin(cls, section, "$.archive", self.source)

        if self.metric_store is None and not self.metric_store_external:
            # Upstream refuses to start without a metric source. We use the embedded store when its
            # plugin is installed, and otherwise run without live metric data (archived jobs still load).
            if registry.get("metric", INTERNAL_METRIC_STORE_KIND) is not None:
                self.metric_store = dict(DEFAULT_INTERNAL_METRIC_STORE)
            else:
                log.warning(
                    "no metric source configured and the embedded metric store is not installed "
                    '(pip install "clustercockpit[ccms]"): running jobs will have no metric data'
                )
        if self.metric_store is not None:
            cls = registry.resolve(
                "metric", INTERNAL_METRIC_STORE_KIND, path="$.metric-store", file=self.source
            )
            out["$.metric-store"] = _convert_plugin(cls, self.metric_store, "$.metric-store", self.source)
        for i, entry in enumerate(self.metric_store_external or []):
            path = f"$.metric-store-external[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError("expected an object", file=self.source, path=path)
            kind = entry.get("kind", DEFAULT_METRIC_BACKEND_KIND)
            cls = registry.resolve("metric", kind, path=f"{path}.kind", file=self.source)
            section = {k: v for k, v in entry.items() if k != "kind"}
            out[path] = _convert_plugin(cls, section, path, self.source)

        for key, section in self.auth.items():
            if key == "jwts":
                continue
            path = f"$.auth.{key}"
            cls = registry.resolve("authenticator", key, path=path, file=self.source)
            out[path] = _convert_plugin(cls, section, path, self.source)

        for i, entry in enumerate(self.schedulers):
            path = f"$.schedulers[{i}]"
            if not isinstance(entry, dict) or "kind" not in entry:
                raise ConfigError("expected an object with a `kind`", file=self.source, path=path)
            cls = registry.resolve("scheduler", entry["kind"], path=f"{path}.kind", file=self.source)
            out[path] = _convert_plugin(
                cls, {k: v for k, v in entry.items() if k != "kind"}, path, self.source
            )


def _convert_plugin(cls: type, section: Any, path: str, file: str) -> Any:
    struct = getattr(cls, "Config", None)
    if struct is None:
        if section:
            raise ConfigError(f"{cls.kind!r} takes no settings", file=file, path=path)
        return None
    return convert(section, struct, file=file, base_path=path)


_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


def convert(data: Any, type_: Any, *, file: str | None, base_path: str = "$") -> Any:
    """`msgspec.convert` with errors rewritten as `ConfigError(file, path, message)`."""
    try:
        return msgspec.convert(data, type_, str_keys=True)
    except msgspec.ValidationError as e:
        text = str(e)
        m = _MSGSPEC_PATH.search(text)
        sub = m.group(1) if m else ""
        msg = text[: m.start()] if m else text
        msg = msg.replace("Object contains unknown field", "unknown key").replace(
            "Object missing required field", "missing required key"
        )
        raise ConfigError(msg, file=file, path=base_path + sub) from None


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found (create a configuration with `clustercockpit init`)", file=path
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", file=path) from None


def _resolve_env_refs(node: Any, env: dict[str, str], file: Path, path: str = "$") -> Any:
    """Replace ``{"$env": "NAME"}`` by the variable's value; a missing variable is an error."""
    if isinstance(node, dict):
        if set(node) == {"$env"}:
            name = node["$env"]
            if not isinstance(name, str) or name not in env or env[name] == "":
                raise ConfigError(
                    f'environment variable {name!r} is not set (referenced as {{"$env": {name!r}}})',
                    file=file,
                    path=path,
                )
            return env[name]
        return {k: _resolve_env_refs(v, env, file, f"{path}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env_refs(v, env, file, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def load_environment(env_file: Path | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """`.env` values overlaid by the process environment (which wins, as with godotenv's Load)."""
    env: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    env_file: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Read and validate a config file. ``path=None`` gives the defaults (no file needed)."""
    cfg_path = Path(path) if path is not None else None
    base = cfg_path.parent if cfg_path else Path.cwd()
    envf = Path(env_file) if env_file is not None else base / ".env"
    env = load_environment(envf, environ)

    raw: Any = {} if cfg_path is None else _read_json(cfg_path)
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a JSON object", file=cfg_path)
    known = {f.encode_name for f in msgspec.structs.fields(Config)}
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        if key.endswith("-file") and key[: -len("-file")] in known:
            section = key[: -len("-file")]
            inc = Path(value) if isinstance(value, str) else None
            if inc is None:
                raise ConfigError("expected a file name", file=cfg_path, path=f"$.{key}")
            inc = inc if inc.is_absolute() else base / inc
            merged[section] = _resolve_env_refs(_read_json(inc), env, inc, f"$.{section}")
        else:
            merged[key] = _resolve_env_refs(value, env, cfg_path or Path("config.json"), f"$.{key}")

    source = str(cfg_path) if cfg_path else "<defaults>"
    cfg: Config = convert(merged, Config, file=source)
    cfg._meta.update(source=source, base_dir=base, env=env, env_file=str(envf))
    cfg._meta["jwts"] = convert(cfg.auth.get("jwts", {}), JWTConfig, file=source, base_path="$.auth.jwts")
    archive = cfg.archive
    if not isinstance(archive.get("kind", "file"), str):
        raise ConfigError("expected a string", file=source, path="$.archive.kind")
    comp = archive.get("compression", 7)
    if not isinstance(comp, int) or isinstance(comp, bool) or comp < 0:
        raise ConfigError("expected a non-negative integer (days)", file=source, path="$.archive.compression")
    cfg._meta["retention"] = convert(
        archive.get("retention", {}), Retention, file=source, base_path="$.archive.retention"
    )
    return cfg


def config_schema() -> dict[str, Any]:
    """JSON schema of the core's sections (for `docs/` and editors)."""
    return msgspec.json.schema(Config)

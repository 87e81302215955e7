"""Config of a Prometheus metric source (a `metric-store-external` entry with ``"kind": "prometheus"``)."""

from __future__ import annotations

import msgspec

from cc_core.plugins import PendingBackend


class PrometheusConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    scope: str
    url: str
    username: str = ""
    password: str = ""
    # metric name -> PromQL template; {hosts} is replaced by a regex of the job's hostnames.
    queries: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: float = 10.0


class Backend(PendingBackend):
    kind = "prometheus"
    Config = PrometheusConfig

"""Config of an InfluxDB 1.x metric source (a `metric-store-external` entry with ``"kind": "influxdb"``)."""

from __future__ import annotations

import msgspec

from cc_core.plugins import PendingBackend


class InfluxConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    scope: str
    url: str
    database: str = "ccmetrics"
    username: str = ""
    password: str = ""
    host_tag: str = "hostname"
    cluster_tag: str = "cluster"
    timeout: float = 10.0


class Backend(PendingBackend):
    kind = "influxdb"
    Config = InfluxConfig

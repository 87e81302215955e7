"""Config of an InfluxDB 1.x metric source (a ``metric-store-external`` entry with ``"kind": "influxdb"``).

```json
{"kind": "influxdb", "scope": "*", "url": "http://influx:8086", "database": "ccmetrics",
 "host-tag": "hostname", "cluster-tag": "cluster", "measurements": {"mem_used": "memory_used"}}
```

The defaults read what cc-metric-collector's InfluxDB sink writes: one measurement per metric (its
name), the sample in field ``value``, tags ``cluster``, ``hostname`` and, for sub-node metrics, ``type`` and
``type-id`` (``hwthread``/``3``, ``socket``/``0``, …).
"""

from __future__ import annotations

import msgspec


class InfluxConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    scope: str
    url: str
    database: str = "ccmetrics"
    username: str = ""
    password: str = ""
    host_tag: str = "hostname"
    cluster_tag: str = "cluster"  # "" = do not select by cluster
    type_tag: str = "type"
    type_id_tag: str = "type-id"
    field: str = "value"
    # metric name -> measurement name (default: the metric's name)
    measurements: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"`url` must start with http:// or https://, got {self.url!r}")
        if self.timeout <= 0:
            raise ValueError("`timeout` must be > 0 seconds")
        if not self.host_tag or not self.field or not self.database:
            raise ValueError("`host-tag`, `field` and `database` must not be empty")

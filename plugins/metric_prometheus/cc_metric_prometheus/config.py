"""Config of a Prometheus metric source (a ``metric-store-external`` entry with ``"kind": "prometheus"``).

```json
{"kind": "prometheus", "scope": "fritz", "url": "http://prometheus:9090",
 "host-label": "hostname", "cluster-label": "cluster",
 "queries": {"mem_used": "node_memory_Active_bytes{{filter}} / 1e9",
             "cpu_user": {"query": "100 * rate(node_cpu_seconds_total{mode=\\"user\\",{filter}}[{rate}])",
                          "type": "hwthread", "type-id-label": "cpu"}}}
```

A query template is PromQL with placeholders replaced before sending: ``{filter}`` (the label matchers
selecting the cluster and the hosts, to put inside ``{…}``), ``{hosts}`` (a regular expression of the
hostnames), ``{cluster}``, ``{metric}``, ``{host_label}``, ``{rate}`` (a range for ``rate()``: four
intervals, at least 1 m) and ``{step}`` (the metric's interval, e.g. ``60s``). Each result series must
carry the host label; a series that also carries ``type-label``/``type-id-label`` (cc-metric-collector's
``type``/``type_id``), or the label named by a template's own ``type-id-label``, is a series of that
hardware unit (hardware thread, socket, accelerator, …) and is aggregated to the requested scope like
in the embedded store. Metrics without a template use `default-query`: the metric under its own name, as
cc-metric-collector's Prometheus sink exports it. ``"query-defaults": "none"`` switches off the built-in
node-exporter templates (`DEFAULT_QUERIES`), for sites whose collectors export every metric by its name.
"""

from __future__ import annotations

import msgspec


class QuerySpec(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    """A template with the hardware unit its series are of (``type``) and the label holding the id."""

    query: str
    type: str = ""
    type_id_label: str = ""


# node-exporter metrics under ClusterCockpit's usual names (cluster.json units: load, GB, %, GB/s).
DEFAULT_QUERIES: dict[str, str | QuerySpec] = {
    "cpu_load": "node_load1{{filter}}",
    "mem_used": "(node_memory_MemTotal_bytes{{filter}} - node_memory_MemAvailable_bytes{{filter}}) / 1e9",
    "cpu_user": QuerySpec(
        query='100 * rate(node_cpu_seconds_total{mode="user",{filter}}[{rate}])',
        type="hwthread",
        type_id_label="cpu",
    ),
    "net_bw": (
        'sum by ({host_label}) (rate(node_network_receive_bytes_total{device!="lo",{filter}}[{rate}])'
        ' + rate(node_network_transmit_bytes_total{device!="lo",{filter}}[{rate}])) / 1e9'
    ),
    "disk_free": 'sum by ({host_label}) (node_filesystem_avail_bytes{fstype!~"tmpfs|overlay",{filter}}) / 1e9',
}
DEFAULT_QUERY = "{metric}{{filter}}"


class PrometheusConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, omit_defaults=True):
    scope: str
    url: str
    username: str = ""
    password: str = ""
    # metric name -> PromQL template (or QuerySpec); merged over DEFAULT_QUERIES.
    queries: dict[str, str | QuerySpec] = msgspec.field(default_factory=dict)
    default_query: str = DEFAULT_QUERY
    # Built-in templates under `queries`: "node-exporter" (DEFAULT_QUERIES) or "none".
    query_defaults: str = "node-exporter"
    host_label: str = "hostname"
    cluster_label: str = "cluster"  # "" = do not select by cluster
    type_label: str = "type"
    type_id_label: str = "type_id"
    timeout: float = 10.0
    # Prometheus refuses ranges of more than 11,000 points; longer ranges are split.
    max_points: int = 10_000

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"`url` must start with http:// or https://, got {self.url!r}")
        if self.timeout <= 0:
            raise ValueError("`timeout` must be > 0 seconds")
        if not 10 <= self.max_points <= 11_000:
            raise ValueError("`max-points` must be between 10 and 11000")
        if not self.host_label:
            raise ValueError("`host-label` must not be empty")
        if self.query_defaults not in ("node-exporter", "none"):
            raise ValueError(
                f'`query-defaults` must be "node-exporter" or "none", got {self.query_defaults!r}'
            )

    def template(self, metric: str) -> QuerySpec:
        defaults = DEFAULT_QUERIES if self.query_defaults == "node-exporter" else {}
        spec = self.queries.get(metric, defaults.get(metric, self.default_query))
        return spec if isinstance(spec, QuerySpec) else QuerySpec(query=spec)

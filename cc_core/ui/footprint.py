"""Footprint bars: each footprint value of a job against its metric's peak and thresholds (upstream's
``JobFootprint.svelte`` rules), computed on the server so the job list needs no extra request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cc_core.schema.cluster import Cluster, MetricConfig


@dataclass(frozen=True, slots=True)
class Bar:
    name: str  # metric name
    stat: str  # avg | min | max
    value: float
    unit: str
    peak: float
    percent: float  # of peak, 0..100
    level: str  # "alert" | "caution" | "normal" | "good" (Bootstrap: danger/warning/success/info)

    @property
    def css(self) -> str:
        return {"alert": "danger", "caution": "warning", "normal": "success"}.get(self.level, "info")


def subcluster_metric(cluster: Cluster | None, subcluster: str, metric: str) -> dict[str, Any] | None:
    """The metric's config with the subcluster's overrides applied (None: unknown or removed)."""
    if cluster is None:
        return None
    mc: MetricConfig | None = next((m for m in cluster.metric_config if m.name == metric), None)
    if mc is None:
        return None
    out = {
        "name": mc.name,
        "unit": {"base": mc.unit.base, "prefix": mc.unit.prefix},
        "scope": mc.scope,
        "timestep": mc.timestep,
        "peak": mc.peak,
        "normal": mc.normal,
        "caution": mc.caution,
        "alert": mc.alert,
        "lowerIsBetter": mc.lower_is_better,
        "footprint": mc.footprint,
        "energy": mc.energy,
    }
    for sc in mc.sub_clusters or ():
        if sc.name == subcluster:
            if sc.remove:
                return None
            out.update(peak=sc.peak, normal=sc.normal, caution=sc.caution, alert=sc.alert)
            if sc.footprint:
                out["footprint"] = sc.footprint
            out["lowerIsBetter"] = sc.lower_is_better or mc.lower_is_better
    return out


def metric_configs(cluster: Cluster | None, subcluster: str) -> dict[str, dict[str, Any]]:
    """Every metric's effective config on ``subcluster`` (for the page's JSON and the plots)."""
    if cluster is None:
        return {}
    out = {}
    for mc in cluster.metric_config:
        conf = subcluster_metric(cluster, subcluster, mc.name)
        if conf is not None:
            out[mc.name] = conf
    return out


def level(value: float, conf: Mapping[str, Any]) -> str:
    """``alert``/``caution``/``normal``/``good`` of ``value`` against the thresholds."""
    normal, caution, alert = conf.get("normal", 0), conf.get("caution", 0), conf.get("alert", 0)
    if conf.get("lowerIsBetter"):
        if alert and value >= alert:
            return "alert"
        if caution and value >= caution:
            return "caution"
        return "good" if value <= normal else "normal"
    if value <= alert:
        return "alert"
    if value <= caution:
        return "caution"
    return "normal" if value < normal else "good"


def footprint_bars(
    footprint: Mapping[str, float] | None, cluster: Cluster | None, subcluster: str
) -> list[Bar]:
    bars = []
    for key, value in (footprint or {}).items():
        name, _, stat = key.rpartition("_")
        conf = subcluster_metric(cluster, subcluster, name)
        if conf is None or value is None:
            continue
        peak = float(conf.get("peak") or 0.0)
        pct = max(0.0, min(100.0, 100.0 * value / peak)) if peak > 0 else 0.0
        unit = f"{conf['unit']['prefix']}{conf['unit']['base']}"
        bars.append(Bar(name, stat, float(value), unit, peak, pct, level(float(value), conf)))
    return bars

"""Node states reported by the scheduler: ``POST|PUT /api/nodestate/`` and ``POST /api/healthcheck``
(contract §1.2, §1.4, §8.6).

Each node's reported states become one scheduler state (allocated > reserved > idle+down ⇒ down >
idle > down > mixed > unknown, case-insensitive, as upstream's code — its release notes say idle+down
⇒ idle). Nodes that are not down get a health check from their subcluster's metric backend against the
subcluster's metric list; down nodes are ``full``, nodes without a result ``failed``. One
``node_state`` row per node is appended (unknown nodes are created with their subcluster; hosts that
match no subcluster are skipped, as upstream).

Fixes of upstream: the reply is ``200 {"msg": ...}`` saying how many nodes were stored and skipped
(upstream answers an empty 200); an unknown cluster is a 400 instead of silently storing nothing.

`update_node_states` is the shared implementation, also for the NATS node-state subject and scheduler
plugins (`JobEventSink.update_node_states`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import HttpMethod, Request, Router, post, route

from cc_core.api.auth import api_guard, metric_store_guard
from cc_core.api.errors import APIError

log = logging.getLogger(__name__)

# Highest priority first; "idle" together with "down" is down.
_PRIORITY = ("allocated", "reserved", "idle", "down", "mixed")


class NodePayload(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """One node of a report (cc-lib ``schema.NodePayload``); ``memoryAllocated`` in MB."""

    hostname: str
    states: list[str] = msgspec.field(default_factory=list)
    cpus_allocated: int = 0
    memory_allocated: int = 0
    gpus_allocated: int = 0
    jobs_running: int = 0


class UpdateNodeStatesRequest(msgspec.Struct, forbid_unknown_fields=True):
    cluster: str
    nodes: list[NodePayload] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(UpdateNodeStatesRequest)


def determine_state(states: Sequence[str]) -> str:
    """The scheduler state of a node from the states its scheduler reports (upstream ``determineState``)."""
    s = {x.lower() for x in states}
    if "allocated" in s:
        return "allocated"
    if "reserved" in s:
        return "reserved"
    if "idle" in s and "down" in s:
        return "down"
    for state in ("idle", "down", "mixed"):
        if state in s:
            return state
    return "unknown"


async def update_node_states(
    services: Any, cluster: str, nodes: Sequence[NodePayload]
) -> tuple[int, list[str]]:
    """Determine states, check health, store one row per node. Returns (stored, skipped hostnames).

    ``services`` is the app's `cc_core.services.CoreServices`. Raises `APIError` 400 for an unknown
    cluster.
    """
    from cc_core.db import NodeStateUpdate

    config = services.clusters.cluster(cluster)
    if config is None:
        raise APIError(400, f"unknown cluster {cluster!r}")
    states = {n.hostname: determine_state(n.states) for n in nodes}
    subclusters = {n.hostname: config.subcluster_for_node(n.hostname) or "" for n in nodes}
    by_sub: dict[str, list[str]] = {}
    for n in nodes:
        if states[n.hostname] != "down" and subclusters[n.hostname]:
            by_sub.setdefault(subclusters[n.hostname], []).append(n.hostname)
    health: dict[str, Any] = {}
    dispatcher = services.metrics
    for sub, hosts in by_sub.items():
        metrics = list(config.subcluster_metrics(sub)) or [mc.name for mc in config.metric_config]
        if dispatcher is None:
            continue
        try:
            health.update(await dispatcher.health_check(cluster, sub, hosts, metrics))
        except Exception as e:  # no backend or it is down: those nodes are "failed", the report is kept
            log.warning("node states of %s/%s: health check failed: %s", cluster, sub, e)
    updates = []
    for n in nodes:
        state = states[n.hostname]
        health_state, detail = "failed", None
        if state == "down":
            health_state = "full"
        elif n.hostname in health:
            h = health[n.hostname]
            health_state = h.state
            detail = {"missing": list(h.missing), "degraded": list(h.degraded)}
        updates.append(
            NodeStateUpdate(
                hostname=n.hostname,
                state=state,
                health_state=health_state,
                health_metrics=detail,
                cpus_allocated=n.cpus_allocated,
                memory_allocated=n.memory_allocated,
                gpus_allocated=n.gpus_allocated,
                jobs_running=n.jobs_running,
                subcluster=subclusters[n.hostname],
            )
        )
    skipped = await services.db.nodes.update_states(cluster, updates)
    return len(updates) - len(skipped), list(skipped)


async def _handle(request: Request[Any, Any, Any]) -> dict[str, str]:
    try:
        req = _DECODER.decode(await request.body())
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise APIError(400, f"parsing request body failed: {e}") from None
    stored, skipped = await update_node_states(request.app.state["services"], req.cluster, req.nodes)
    msg = f"updated states of {stored} node(s) of cluster {req.cluster}"
    if skipped:
        msg += f"; skipped {len(skipped)} host(s) that match no subcluster: {', '.join(skipped[:20])}"
    return {"msg": msg}


@route(
    ["/api/nodestate", "/api/nodestate/"],
    http_method=[HttpMethod.POST, HttpMethod.PUT],
    guards=[api_guard],
    status_code=200,
    tags=["nodes"],
)
async def node_state(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Store the scheduler's node states with metric health (body ``{"cluster", "nodes": [...]}``)."""
    return await _handle(request)


@post(["/api/healthcheck", "/api/healthcheck/"], guards=[metric_store_guard], status_code=200, tags=["nodes"])
async def post_healthcheck(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The same as ``/api/nodestate/`` behind the metric-store guard (upstream's alias)."""
    return await _handle(request)


def nodestate_router() -> Router:
    """The node-state routes, mounted at ``/`` by `cc_core.app.create_app`."""
    return Router(path="/", route_handlers=[node_state, post_healthcheck])

"""Nodes and their reported states (``node``, ``node_state``).

Every ``/api/nodestate/`` report appends one ``node_state`` row per node; a node's *current* state is
its latest row. Listing and counting are for admins and support only (upstream's AccessCheck);
``node(id)`` and the internal lookups have no role check, as upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from cc_core.auth.user import User
from cc_core.db import tables as T
from cc_core.db.convert import json_text
from cc_core.db.errors import InvalidInputError, NodeNotFoundError, PermissionDeniedError
from cc_core.db.filters import PageRequest, Sql, StringInput, check_page, string_condition

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


class NodeFilter(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """GraphQL ``NodeFilter``."""

    hostname: StringInput | None = None
    cluster: StringInput | None = None
    sub_cluster: StringInput | None = None
    scheduler_state: str | None = None
    health_state: str | None = None
    time_start: int | None = None


class NodeStateUpdate(msgspec.Struct, kw_only=True):
    """One node of a node-state report; ``subcluster`` is needed only for nodes not yet known."""

    hostname: str
    state: str
    health_state: str = "full"
    health_metrics: dict[str, list[str]] | None = None
    cpus_allocated: int = 0
    memory_allocated: int = 0
    gpus_allocated: int = 0
    jobs_running: int = 0
    subcluster: str = ""


class Node(msgspec.Struct, rename="camel", omit_defaults=True):
    """A node with its latest state (upstream ``schema.Node``)."""

    id: int
    hostname: str
    cluster: str
    sub_cluster: str
    scheduler_state: str = ""
    health_state: str = ""
    jobs_running: int = 0
    cpus_allocated: int = 0
    memory_allocated: int = 0
    gpus_allocated: int = 0
    time_stamp: int = 0
    meta_data: dict[str, str] | None = None
    health_data: dict[str, list[str]] | None = None


class NodeStatesTimed(msgspec.Struct):
    state: str
    counts: list[int]
    times: list[int]


def _check_access(user: User) -> None:
    if not user.has_any_role("admin", "support"):
        raise PermissionDeniedError("node tables are for admins and support only")


def latest_state() -> ColumnElement[bool]:
    """``node_state`` row = the node's newest report (index nodestates_nodeid_timestamp)."""
    ns2 = T.node_state.alias("ns2")
    newest = (
        select(ns2.c.id)
        .where(ns2.c.node_id == T.node.c.id)
        .order_by(ns2.c.time_stamp.desc(), ns2.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return T.node_state.c.id == newest


def _node_conditions(filters: Sequence[NodeFilter] | None, dialect: str) -> list[ColumnElement[bool]]:
    q = Sql(dialect)
    for f in filters or ():
        if f.cluster is not None:
            q.add(string_condition(q, "node.cluster", f.cluster))
        if f.sub_cluster is not None:
            q.add(string_condition(q, "node.subcluster", f.sub_cluster))
        if f.hostname is not None:
            q.add(string_condition(q, "node.hostname", f.hostname))
        if f.scheduler_state is not None:
            q.add(f"node_state.node_state = {q.bind(_state(f.scheduler_state))}")
        if f.health_state is not None:
            q.add(f"node_state.health_state = {q.bind(_health(f.health_state))}")
    return [q.clause()] if q.parts else []


def _state(value: str) -> str:
    if value not in T.NODE_STATES:
        raise InvalidInputError(f"invalid scheduler state {value!r} (valid: {', '.join(T.NODE_STATES)})")
    return value


def _health(value: str) -> str:
    if value not in T.HEALTH_STATES:
        raise InvalidInputError(f"invalid health state {value!r} (valid: {', '.join(T.HEALTH_STATES)})")
    return value


def _decode(raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return _dec.decode(raw)
    except msgspec.DecodeError:
        return None


class NodeRepository:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.dialect: str = db.dialect

    def _columns(self, with_meta: bool) -> list[Any]:
        n, s = T.node.c, T.node_state.c
        cols: list[Any] = [
            n.id,
            n.hostname,
            n.cluster,
            n.subcluster,
            s.node_state,
            s.health_state,
            s.jobs_running,
            s.cpus_allocated,
            s.memory_allocated,
            s.gpus_allocated,
            s.time_stamp,
        ]
        if with_meta:
            cols += [json_text(self.dialect, n.meta_data), json_text(self.dialect, s.health_metrics)]
        return cols

    @staticmethod
    def _row(r: Sequence[Any], with_meta: bool) -> Node:
        node = Node(
            id=r[0],
            hostname=r[1],
            cluster=r[2],
            sub_cluster=r[3],
            scheduler_state=r[4],
            health_state=r[5],
            jobs_running=r[6],
            cpus_allocated=r[7],
            memory_allocated=r[8],
            gpus_allocated=r[9],
            time_stamp=r[10],
        )
        if with_meta:
            meta = _decode(r[11])
            node.meta_data = {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else None
            health = _decode(r[12])
            node.health_data = health if isinstance(health, dict) else None
        return node

    def _query(self, with_meta: bool) -> Any:
        return (
            select(*self._columns(with_meta))
            .select_from(T.node.join(T.node_state, T.node_state.c.node_id == T.node.c.id))
            .where(latest_state())
        )

    # ------------------------------------------------------------------ writes

    async def add(
        self, hostname: str, cluster: str, subcluster: str, meta: dict[str, str] | None = None
    ) -> int:
        """Register a node (no state yet); its id."""

        def run(conn: Connection) -> int:
            res = conn.execute(
                insert(T.node)
                .values(hostname=hostname, cluster=cluster, subcluster=subcluster, meta_data=_json(meta))
                .returning(T.node.c.id)
            )
            return int(res.scalar_one())

        return await self.db.write(run)

    async def update_states(
        self, cluster: str, updates: Sequence[NodeStateUpdate], *, time_stamp: int | None = None
    ) -> list[str]:
        """Append one state row per node (creating unknown nodes) in one transaction.

        Unknown nodes without a ``subcluster`` are skipped (upstream skips hosts that match no
        subcluster); their hostnames are returned.
        """
        ts = int(self.db.clock()) if time_stamp is None else int(time_stamp)
        for u in updates:
            _state(u.state)
            _health(u.health_state)

        def run(conn: Connection) -> list[str]:
            hosts = [u.hostname for u in updates]
            known: dict[str, int] = {}
            for i in range(0, len(hosts), 900):
                q = select(T.node.c.hostname, T.node.c.id).where(
                    T.node.c.cluster == cluster, T.node.c.hostname.in_(hosts[i : i + 900])
                )
                known.update({h: int(i_) for h, i_ in conn.execute(q)})
            skipped: list[str] = []
            rows: list[dict[str, Any]] = []
            for u in updates:
                node_id = known.get(u.hostname)
                if node_id is None:
                    if not u.subcluster:
                        skipped.append(u.hostname)
                        continue
                    node_id = int(
                        conn.execute(
                            insert(T.node)
                            .values(hostname=u.hostname, cluster=cluster, subcluster=u.subcluster)
                            .returning(T.node.c.id)
                        ).scalar_one()
                    )
                    known[u.hostname] = node_id
                rows.append(
                    {
                        "time_stamp": ts,
                        "node_state": u.state,
                        "health_state": u.health_state,
                        "health_metrics": _json(u.health_metrics),
                        "cpus_allocated": u.cpus_allocated,
                        "memory_allocated": u.memory_allocated,
                        "gpus_allocated": u.gpus_allocated,
                        "jobs_running": u.jobs_running,
                        "node_id": node_id,
                    }
                )
            if rows:
                conn.execute(insert(T.node_state), rows)
            return skipped

        return await self.db.write(run)

    async def delete_states_before(self, cutoff: int) -> int:
        """Delete state rows older than ``cutoff``, always keeping each node's latest (retention)."""

        def run(conn: Connection) -> int:
            latest = (
                select(T.node_state.c.id)
                .select_from(T.node.join(T.node_state, T.node_state.c.node_id == T.node.c.id))
                .where(latest_state())
                .correlate(None)
            )
            q = delete(T.node_state).where(
                T.node_state.c.time_stamp < cutoff, T.node_state.c.id.not_in(latest)
            )
            return int(conn.execute(q).rowcount)

        return await self.db.write(run)

    async def delete(self, node_id: int) -> None:
        """Delete a node and its state history."""

        def run(conn: Connection) -> None:
            conn.execute(delete(T.node_state).where(T.node_state.c.node_id == node_id))
            if conn.execute(delete(T.node).where(T.node.c.id == node_id)).rowcount == 0:
                raise NodeNotFoundError(f"node {node_id} not found")

        await self.db.write(run)

    # ------------------------------------------------------------------ reads

    async def get(self, hostname: str, cluster: str, *, with_meta: bool = False) -> Node | None:
        def run(conn: Connection) -> Node | None:
            q = self._query(with_meta).where(T.node.c.hostname == hostname, T.node.c.cluster == cluster)
            row = conn.execute(q).first()
            return self._row(row, with_meta) if row else None

        return await self.db.read(run)

    async def get_by_id(self, node_id: int, *, with_meta: bool = False) -> Node | None:
        def run(conn: Connection) -> Node | None:
            row = conn.execute(self._query(with_meta).where(T.node.c.id == node_id)).first()
            return self._row(row, with_meta) if row else None

        return await self.db.read(run)

    async def list(
        self,
        user: User,
        filters: Sequence[NodeFilter] | None = None,
        page: PageRequest | None = None,
        *,
        with_meta: bool = False,
    ) -> list[Node]:
        """Nodes with their latest state, by hostname (GraphQL ``nodes``/``nodesWithMeta``)."""
        _check_access(user)
        conds = _node_conditions(filters, self.dialect)
        limit, offset = check_page(page) if page is not None else (None, 0)

        def run(conn: Connection) -> list[Node]:
            q = self._query(with_meta).where(*conds).order_by(T.node.c.hostname, T.node.c.cluster)
            if limit is not None:
                q = q.limit(limit).offset(offset)
            return [self._row(r, with_meta) for r in conn.execute(q)]

        return await self.db.read(run)

    async def count(self, user: User, filters: Sequence[NodeFilter] | None = None) -> int:
        _check_access(user)
        conds = _node_conditions(filters, self.dialect)

        def run(conn: Connection) -> int:
            q = (
                select(func.count())
                .select_from(T.node.join(T.node_state, T.node_state.c.node_id == T.node.c.id))
                .where(latest_state(), *conds)
            )
            return int(conn.execute(q).scalar_one())

        return await self.db.read(run)

    async def count_states(
        self, user: User, filters: Sequence[NodeFilter] | None = None, *, column: str = "node_state"
    ) -> list[tuple[str, int]]:
        """How many nodes are in each (latest) scheduler state or health state."""
        _check_access(user)
        if column not in ("node_state", "health_state"):
            raise InvalidInputError("column must be node_state or health_state")
        conds = _node_conditions(filters, self.dialect)

        def run(conn: Connection) -> list[tuple[str, int]]:
            col = T.node_state.c[column]
            q = (
                select(col, func.count())
                .select_from(T.node.join(T.node_state, T.node_state.c.node_id == T.node.c.id))
                .where(latest_state(), *conds)
                .group_by(col)
                .order_by(col)
            )
            return [(r[0], int(r[1])) for r in conn.execute(q)]

        return await self.db.read(run)

    async def count_states_timed(
        self, user: User, filters: Sequence[NodeFilter] | None = None, *, column: str = "node_state"
    ) -> list[NodeStatesTimed]:
        """Per state, the number of nodes reporting it at each report time (after ``timeStart``)."""
        _check_access(user)
        if column not in ("node_state", "health_state"):
            raise InvalidInputError("column must be node_state or health_state")
        conds = _node_conditions(filters, self.dialect)
        for f in filters or ():
            if f.time_start is not None:
                conds.append(T.node_state.c.time_stamp > int(f.time_start))

        def run(conn: Connection) -> list[NodeStatesTimed]:
            col = T.node_state.c[column]
            ts = T.node_state.c.time_stamp
            q = (
                select(col, ts, func.count())
                .select_from(T.node.join(T.node_state, T.node_state.c.node_id == T.node.c.id))
                .where(*conds)
                .group_by(col, ts)
                .order_by(ts, col)
            )
            out: dict[str, NodeStatesTimed] = {}
            for state, t, n in conn.execute(q):
                entry = out.setdefault(state, NodeStatesTimed(state=state, counts=[], times=[]))
                entry.times.append(int(t))
                entry.counts.append(int(n))
            return [out[k] for k in sorted(out)]

        return await self.db.read(run)

    async def states_of_cluster(self, cluster: str) -> dict[str, tuple[str, str]]:
        """hostname → (scheduler state, health state) of a cluster's nodes (internal, no role check)."""

        def run(conn: Connection) -> dict[str, tuple[str, str]]:
            q = self._query(False).where(T.node.c.cluster == cluster)
            return {r[1]: (r[4], r[5]) for r in conn.execute(q)}

        return await self.db.read(run)


def _json(value: Any) -> str | None:
    return None if value is None else _enc.encode(value).decode()

"""The node list of the systems view (``nodeMetricsList``): which hosts a page shows, with their states.

Upstream (``NodeRepository.GetNodesForList``) pages over the node table, filtered by cluster, subcluster,
scheduler state and a hostname substring. Two special cases come from the cluster topology instead:

* ``stateFilter: "notindb"`` lists the topology's hosts that have no row in the node table (sorted,
  then paged) — nodes the metric store knows but the scheduler never reported;
* ``stateFilter: "all"`` on a cluster whose node table is empty falls back to all topology hosts, so
  the view works on a site that does not send node states.

The node table is read through `cc_core.db.NodeRepository` (role check inside: admin/support only);
the topology from the cluster catalogue (``subCluster.nodes`` node lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cc_core.graphql.services import ClusterCatalog, NodeListPage

__all__ = ["DatabaseNodeLister"]


class DatabaseNodeLister:
    """`NodeLister` over the node table and the clusters' topology."""

    def __init__(self, nodes: Any, clusters: ClusterCatalog) -> None:
        self.nodes = nodes
        self.clusters = clusters

    def _topology_hosts(self, cluster: str, sub_cluster: str, node_filter: str) -> list[str]:
        from cc_core.schema.cluster import NodeList

        config = self.clusters.cluster(cluster)
        hosts: list[str] = []
        for sc in config.sub_clusters if config is not None else ():
            if sub_cluster and sc.name != sub_cluster:
                continue
            try:
                hosts.extend(NodeList.parse(sc.nodes).expand())
            except ValueError:  # a wildcard node list names no hosts
                continue
        if node_filter:
            hosts = [h for h in hosts if node_filter in h]
        return sorted(set(hosts))

    @staticmethod
    def _page(hosts: Sequence[str], page: Any) -> tuple[list[str], bool]:
        if page is None or page.items_per_page == -1:
            return list(hosts), False
        start = (page.page - 1) * page.items_per_page
        end = start + page.items_per_page
        return list(hosts[start:end]), end < len(hosts)

    async def node_list_page(
        self,
        user: Any,
        cluster: str,
        sub_cluster: str,
        state_filter: str,
        node_filter: str,
        page: Any,
    ) -> NodeListPage:
        from cc_core.db.filters import StringInput
        from cc_core.db.nodes import NodeFilter

        filters = []
        if cluster:
            filters.append(NodeFilter(cluster=StringInput(eq=cluster)))
        if sub_cluster:
            filters.append(NodeFilter(sub_cluster=StringInput(eq=sub_cluster)))
        if node_filter and state_filter != "notindb":
            filters.append(NodeFilter(hostname=StringInput(contains=node_filter)))
        if state_filter not in ("all", "notindb"):
            filters.append(NodeFilter(scheduler_state=state_filter))

        if state_filter == "notindb":
            known = {n.hostname for n in await self.nodes.list(user, filters[:2])}
            missing = [h for h in self._topology_hosts(cluster, sub_cluster, node_filter) if h not in known]
            hosts, more = self._page(missing, page)
            return NodeListPage(hosts, {}, {}, len(missing), more)

        rows = await self.nodes.list(user, filters, page)
        total = await self.nodes.count(user, filters)
        if state_filter == "all" and total == 0:
            topology = self._topology_hosts(cluster, sub_cluster, node_filter)
            hosts, more = self._page(topology, page)
            return NodeListPage(hosts, {}, {}, len(topology), more)
        more = page is not None and page.items_per_page != -1 and page.page * page.items_per_page < total
        return NodeListPage(
            [n.hostname for n in rows],
            {n.hostname: n.scheduler_state for n in rows},
            {n.hostname: n.health_state for n in rows},
            total,
            more,
        )

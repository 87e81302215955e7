// Node views: the overview (one metric, every node), the node list (metric rows per node, paging) and
// one node (every metric). One GraphQL request per page draw; text goes in with textContent only.

import { gql } from "./graphql.js";
import { metricPlot } from "./plots.js";

const data = JSON.parse(document.getElementById("systems-data").textContent);
const plots = document.getElementById("sys-plots");
const msg = document.getElementById("sys-msg");
const to = new Date();
const from = new Date(to.getTime() - data.rangeHours * 3600 * 1000);

const METRIC = `name scope metric { unit { base prefix } timestep statisticsSeries { min mean max } series { hostname id data statistics { min avg max } } }`;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function nodeLink(host) {
  const a = el("a", "fw-bold", host);
  a.href = `/monitoring/node/${encodeURIComponent(data.cluster)}/${encodeURIComponent(host)}`;
  return a;
}

function stateBadge(state) {
  const cls = { allocated: "text-bg-success", mixed: "text-bg-info", idle: "text-bg-secondary", down: "text-bg-danger" }[state] || "text-bg-light border";
  return el("span", `badge ${cls} ms-1`, state || "unknown");
}

function plot(cell, metric, width, height) {
  const found = metric?.metric;
  const drawn = metricPlot(cell, { metric: metric?.name, scope: "node", data: found, config: data.metricConfig[metric?.name], numNodes: 1, width, height, plotConfig: data.plot, legend: false });
  // How many series were drawn (0 = no data): the tests and a glance in the inspector read it.
  cell.dataset.series = drawn ? String(drawn.series.length - 1) : "0";
}

function fail(e) {
  msg.textContent = `could not load the node metrics: ${e.message}`;
  msg.classList.remove("d-none");
  plots.replaceChildren();
}

async function overview() {
  const q = `query($c: String!, $m: [String!], $from: Time!, $to: Time!) { nodeMetrics(cluster: $c, metrics: $m, scopes: [node], from: $from, to: $to) { host nodeState subCluster metrics { ${METRIC} } } }`;
  const result = await gql(q, { c: data.cluster, m: [data.metric], from: from.toISOString(), to: to.toISOString() });
  const nodes = [...result.nodeMetrics].sort((a, b) => a.host.localeCompare(b.host));
  plots.replaceChildren();
  if (!nodes.length) plots.append(el("p", "text-muted", "No node has data for this metric in this time range."));
  for (const n of nodes) {
    const col = el("div", "col-12 col-md-6 col-xl-3 cc-node");
    col.dataset.host = n.host;
    const head = el("div", "small");
    head.append(nodeLink(n.host), stateBadge(n.nodeState));
    const cell = el("div", "cc-plot");
    col.append(head, cell);
    plots.append(col);
    plot(cell, n.metrics.find((m) => m.name === data.metric), Math.max(200, col.clientWidth - 12), 150);
  }
}

async function nodeList() {
  // One request: the page of hosts (node table + topology, state/host filters, paging) with their
  // metrics (nodeMetricsList), and the running jobs for the per-node counts.
  const q = `query($c: String!, $sc: String!, $state: String!, $nf: String!, $m: [String!], $from: Time!, $to: Time!, $page: PageRequest) {
    nodeMetricsList(cluster: $c, subCluster: $sc, stateFilter: $state, nodeFilter: $nf, metrics: $m, scopes: [node], from: $from, to: $to, page: $page) {
      items { host nodeState subCluster metrics { ${METRIC} } } totalNodes hasNextPage }
    jobs(filter: [{cluster: {eq: $c}}, {state: [running]}], page: {itemsPerPage: -1, page: 1}) { items { resources { hostname } } } }`;
  const result = await gql(q, {
    c: data.cluster, sc: data.subCluster || "", state: data.state || "all", nf: data.host || "", m: data.metrics,
    from: from.toISOString(), to: to.toISOString(), page: { itemsPerPage: data.perPage, page: data.page },
  });
  const list = result.nodeMetricsList;
  const running = {};
  for (const j of result.jobs.items) for (const r of j.resources) running[r.hostname] = (running[r.hostname] || 0) + 1;
  const table = el("table", "table table-sm table-bordered");
  table.id = "node-table";
  const head = el("tr");
  head.append(el("th", "", `Node (${list.totalNodes ?? list.items.length})`));
  for (const m of data.metrics) head.append(el("th", "", m));
  table.append(el("thead", "table-light"), el("tbody"));
  table.tHead.append(head);
  for (const n of list.items) {
    const tr = el("tr");
    tr.dataset.host = n.host;
    const info = el("td", "small");
    info.append(nodeLink(n.host), stateBadge(n.nodeState), el("div", "", `${running[n.host] || 0} running job(s)`));
    tr.append(info);
    const cells = data.metrics.map(() => el("td", "p-1"));
    tr.append(...cells);
    table.tBodies[0].append(tr);
    plots.replaceChildren(table);
    data.metrics.forEach((m, i) => {
      const cell = el("div", "cc-plot");
      cells[i].append(cell);
      plot(cell, n.metrics.find((x) => x.name === m), 220, 120);
    });
  }
  if (!list.items.length) plots.replaceChildren(el("p", "text-muted", "No node matches."));
  const pager = document.getElementById("sys-pager");
  const link = (label, page, disabled) => {
    const li = el("li", `page-item${disabled ? " disabled" : ""}`);
    const a = el("a", "page-link", label);
    const url = new URL(window.location.href);
    url.searchParams.set("page", String(page));
    a.href = url.pathname + url.search;
    li.append(a);
    return li;
  };
  pager.replaceChildren(link("«", data.page - 1, data.page <= 1), link(`page ${data.page}`, data.page, true), link("»", data.page + 1, !list.hasNextPage));
}

async function node() {
  const q = `query($c: String!, $n: [String!], $m: [String!], $from: Time!, $to: Time!) { nodeMetrics(cluster: $c, nodes: $n, metrics: $m, scopes: [node], from: $from, to: $to) { host metrics { ${METRIC} } } }`;
  const result = await gql(q, { c: data.cluster, n: [data.host], m: data.metrics, from: from.toISOString(), to: to.toISOString() });
  const metrics = result.nodeMetrics[0]?.metrics || [];
  plots.replaceChildren();
  for (const name of data.metrics) {
    const col = el("div", "col-12 col-md-6 col-xl-4");
    const cell = el("div", "cc-plot");
    cell.dataset.metric = name;
    col.append(el("h2", "h6", name), cell);
    plots.append(col);
    plot(cell, metrics.find((m) => m.name === name), Math.max(240, col.clientWidth - 12), 200);
  }
}

// The node list's metric selection, stored as the user's nodeList_selectedMetrics:<cluster> setting
// (GraphQL updateConfiguration, as upstream's MetricSelection does); then the list is drawn again.
async function applyNodeMetrics() {
  const menu = document.getElementById("node-metric-select");
  const selected = [...menu.querySelectorAll("input[data-metric]:checked")].map((i) => i.value);
  const error = document.getElementById("node-metric-error");
  error.textContent = "";
  try {
    await gql("mutation($name: String!, $value: String!) { updateConfiguration(name: $name, value: $value) }", { name: data.metricKey, value: JSON.stringify(selected) });
  } catch (e) {
    error.textContent = `could not store the selection: ${e.message}`;
    return;
  }
  window.location.reload();
}
document.getElementById("node-metric-apply")?.addEventListener("click", applyNodeMetrics);

const views = { overview, list: nodeList, node };
views[data.view]().catch(fail).finally(() => { document.body.dataset.plotsReady = "1"; });

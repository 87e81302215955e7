// The status page and the kiosk dashboard: pies, node states over time and histograms from the data
// the server rendered; the cluster metric totals from one GraphQL clusterMetrics request.

import { pie, statesOverTime, timeLine } from "./charts.js";
import { gql } from "./graphql.js";
import { colors, histogram, roofline } from "./plots.js";

const data = JSON.parse(document.getElementById("status-data").textContent);
const width = (el) => Math.max(240, el.parentElement.clientWidth - 8);

function drawAll() {
  for (const el of document.querySelectorAll("[data-chart]")) {
    if (el.dataset.drawn || !el.offsetParent) continue; // hidden tabs are drawn when shown
    el.dataset.drawn = "1";
    const kind = el.dataset.chart;
    if (kind === "states") pie(el, data.states.map((s) => ({ label: s.state, value: s.count })));
    else if (kind === "health") pie(el, data.health.map((s) => ({ label: s.state, value: s.count })));
    else if (kind === "timed") statesOverTime(el, data.timed, { width: width(el), range: data.timedRange });
    else if (kind.startsWith("top-")) pie(el, data.top[kind.slice(4)].map((t) => ({ label: t.id, value: t.nodes })), { size: 160 });
    else if (kind === "hist") {
      const points = data.hist[el.dataset.hist].map((p) => (el.dataset.hist === "duration" ? { value: p.value / 3600, count: p.count } : p));
      histogram(el, { data: points, xlabel: el.dataset.hist === "duration" ? "hours" : el.dataset.hist === "numNodes" ? "nodes" : "cores", width: width(el), height: 180 });
    }
  }
  const palette = colors({});
  for (const sw of document.querySelectorAll(".cc-swatch[data-index]")) sw.style.background = palette[Number(sw.dataset.index) % palette.length];
}

async function totals() {
  const cells = [...document.querySelectorAll("[data-chart=total]")];
  if (!cells.length) return;
  const to = new Date();
  const from = new Date(to.getTime() - 2 * 3600 * 1000);
  try {
    const result = await gql(
      "query($c: String!, $m: [String!], $from: Time!, $to: Time!) { clusterMetrics(cluster: $c, metrics: $m, from: $from, to: $to) { nodeCount metrics { name unit { base prefix } timestep data } } }",
      { c: data.cluster, m: data.totalMetrics, from: from.toISOString(), to: to.toISOString() },
    );
    for (const cell of cells) {
      const m = result.clusterMetrics.metrics.find((x) => x.name === cell.dataset.metric);
      timeLine(cell, { from: from.getTime() / 1000, timestep: m?.timestep, data: m?.data, unit: m?.unit, label: cell.dataset.metric, width: width(cell) });
    }
  } catch (e) {
    for (const cell of cells) {
      const div = document.createElement("div");
      div.className = "cc-plot-msg";
      div.textContent = `not available: ${e.message}`;
      cell.replaceChildren(div);
    }
  }
}

// The running jobs on the roofline: ONE jobsMetricStats request, a point per job (its node averages).
async function runningRoofline() {
  const el = document.getElementById("status-roofline");
  if (!el) return;
  try {
    const result = await gql(
      `query($f: [JobFilter!]!) { jobsMetricStats(filter: $f, metrics: ["flops_any", "mem_bw"]) { id stats { name data { avg } } } }`,
      { f: [{ cluster: { eq: data.cluster } }, { state: ["running"] }] },
    );
    const avg = (job, name) => job.stats.find((s) => s.name === name)?.data.avg ?? null;
    const jobs = result.jobsMetricStats;
    const plot = roofline(el, { flops: jobs.map((j) => avg(j, "flops_any")), membw: jobs.map((j) => avg(j, "mem_bw")), peaks: data.peaks, width: width(el), height: 280 });
    el.dataset.points = plot ? String(plot.data[0].length) : "0";
  } catch (e) {
    const div = document.createElement("div");
    div.className = "cc-plot-msg";
    div.textContent = `not available: ${e.message}`;
    el.replaceChildren(div);
    el.dataset.points = "0";
  }
}

document.querySelectorAll('button[data-bs-toggle="tab"]').forEach((b) => b.addEventListener("shown.bs.tab", drawAll));
drawAll();
Promise.all([totals(), runningRoofline()]).finally(() => { document.body.dataset.plotsReady = "1"; });

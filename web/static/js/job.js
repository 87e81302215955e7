// The job view: every plot, the roofline, the polar plot and the statistics table from ONE GraphQL
// jobMetrics request; per-plot scope selection and zoom (which asks for a finer resolution of just
// that metric); tag management through the createTag / addTagsToJob / removeTagsFromJob mutations.
// All job-provided text is put into the page with textContent, never as HTML.

import { gql, JOB_METRIC_FIELDS } from "./graphql.js";
import { metricPlot, polar, roofline } from "./plots.js";
import { si } from "./units.js";

const page = JSON.parse(document.getElementById("job-page-data").textContent);
const SCOPE_ORDER = ["node", "socket", "memoryDomain", "core", "hwthread", "accelerator"];
// name → scope → JobMetric (what has been loaded so far)
const loaded = {};

function remember(list) {
  for (const m of list || []) {
    loaded[m.name] ||= {};
    loaded[m.name][m.scope] = m.metric;
  }
}

async function loadMetrics(metrics, scopes, resolution) {
  const res = resolution ? ", resolution: $res" : "";
  const query = `query($id: ID!, $metrics: [String!], $scopes: [MetricScope!]${resolution ? ", $res: Int" : ""}) {
    jobMetrics(id: $id, metrics: $metrics, scopes: $scopes${res}) { ${JOB_METRIC_FIELDS} } }`;
  const variables = { id: String(page.id), metrics, scopes };
  if (resolution) variables.res = resolution;
  return (await gql(query, variables)).jobMetrics;
}

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------------------------ metric plots

function plotWidth(container) {
  return Math.max(250, container.clientWidth - 10);
}

function drawMetric(cell, name, scope) {
  const target = cell.querySelector(".cc-plot");
  const data = loaded[name]?.[scope];
  const config = page.metricConfig[name];
  const plot = metricPlot(target, {
    metric: name,
    scope,
    data,
    config,
    numNodes: page.numNodes,
    width: plotWidth(cell),
    height: 220,
    plotConfig: page.plot,
    legend: true,
    onZoom: (min, max) => zoom(cell, name, scope, min, max),
  });
  target.dataset.series = plot ? String(plot.series.length - 1) : "0";
  target.dataset.timestep = data ? String(data.timestep) : "";
  target.dataset.drawn = plot ? "1" : "0";
  target.dataset.band = plot?.ccBand ? "1" : "0";
  return plot;
}

/** Zoom: when the plotted data is resampled, fetch the next finer resolution and keep the window. */
async function zoom(cell, name, scope, min, max) {
  const current = loaded[name]?.[scope]?.timestep || 0;
  const native = page.metricConfig[name]?.timestep || 0;
  const finer = page.resolutions.filter((r) => r < current).sort((a, b) => b - a)[0] || (native && native < current ? native : null);
  if (!finer) return;
  const target = cell.querySelector(".cc-plot");
  target.dataset.loading = "1";
  try {
    remember(await loadMetrics([name], [scope], finer));
  } catch (e) {
    target.dataset.error = e.message;
    return;
  } finally {
    delete target.dataset.loading;
  }
  const plot = drawMetric(cell, name, scope);
  plot?.setScale("x", { min, max });
  target.dataset.resolution = String(finer);
}

function scopesOf(name) {
  const have = Object.keys(loaded[name] || {});
  const native = page.metricConfig[name]?.scope || "node";
  const finest = SCOPE_ORDER.indexOf(native);
  const possible = SCOPE_ORDER.filter((s, i) => i <= Math.max(finest, 0) && (s !== "accelerator" || native === "accelerator"));
  return [...new Set([...have, ...possible])].sort((a, b) => SCOPE_ORDER.indexOf(a) - SCOPE_ORDER.indexOf(b));
}

function buildGrid() {
  const grid = document.getElementById("job-plots");
  const perRow = Math.max(1, Math.min(4, Number(page.plot.plotConfiguration_plotsPerRow) || 3));
  const col = `col-lg-${Math.floor(12 / perRow)}`;
  for (const name of page.plotMetrics) {
    const cell = el("div", { class: `${col} col-12 cc-metric`, "data-metric": name });
    const head = el("div", { class: "d-flex justify-content-between align-items-center small" });
    const unit = page.metricConfig[name]?.unit;
    head.appendChild(el("span", { class: "fw-bold" }, `${name}${unit?.base ? ` [${unit.prefix || ""}${unit.base}]` : ""}`));
    const select = el("select", { class: "form-select form-select-sm w-auto", "aria-label": `${name} scope` });
    const scopes = scopesOf(name);
    for (const s of scopes) select.appendChild(el("option", { value: s }, s));
    select.value = loaded[name]?.node ? "node" : scopes[0];
    select.addEventListener("change", async () => {
      const scope = select.value;
      if (!loaded[name]?.[scope]) {
        try {
          remember(await loadMetrics([name], [scope], null));
        } catch (e) {
          cell.querySelector(".cc-plot").textContent = `error: ${e.message}`;
          return;
        }
      }
      drawMetric(cell, name, scope);
    });
    head.appendChild(select);
    cell.appendChild(head);
    cell.appendChild(el("div", { class: "cc-plot cc-plot-big" }));
    grid.appendChild(cell);
    const scope = select.value;
    if (loaded[name]?.[scope]) drawMetric(cell, name, scope);
    else cell.querySelector(".cc-plot").appendChild(el("div", { class: "cc-plot-msg" }, "no data"));
  }
}

// --------------------------------------------------------------------------- summary plots, stats

function nodeAverage(name) {
  const series = loaded[name]?.node?.series || [];
  if (!series.length) return null;
  const n = Math.max(...series.map((s) => s.data.length));
  const out = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    let sum = 0, k = 0;
    for (const s of series) { const v = s.data[i]; if (v !== null && v !== undefined) { sum += v; k++; } }
    out[i] = k ? sum / k : null;
  }
  return out;
}

function drawRoofline() {
  const target = document.getElementById("job-roofline");
  if (!target) return;
  const flops = nodeAverage("flops_any"), membw = nodeAverage("mem_bw");
  const plot = flops && membw ? roofline(target, { flops, membw, peaks: page.roofline || {}, width: target.clientWidth || 300, height: 260 }) : null;
  if (!plot) target.textContent = "no flops_any / mem_bw data for a roofline";
  target.dataset.drawn = plot ? "1" : "0";
}

function drawPolar() {
  const target = document.getElementById("job-polar");
  if (!target) return;
  const names = Object.keys(page.metricConfig).filter((m) => page.metricConfig[m].footprint && page.metricConfig[m].peak);
  const avg = [], max = [];
  for (const m of names) {
    const peak = page.metricConfig[m].peak;
    const series = loaded[m]?.node?.series || [];
    const stats = series.map((s) => s.statistics).filter(Boolean);
    const mean = stats.length ? stats.reduce((a, s) => a + (s.avg || 0), 0) / stats.length : page.footprint[`${m}_avg`] ?? 0;
    const top = stats.length ? Math.max(...stats.map((s) => s.max || 0)) : mean;
    avg.push(mean / peak);
    max.push(top / peak);
  }
  const canvas = polar(target, {
    labels: names,
    datasets: [
      { label: "avg", values: avg, color: "rgb(0, 102, 204)" },
      { label: "max", values: max, color: "rgb(204, 0, 0)" },
    ],
    size: Math.min(target.clientWidth || 260, 260),
  });
  target.dataset.drawn = canvas ? "1" : "0";
}

function drawStats() {
  const root = document.getElementById("job-stats");
  if (!root) return;
  root.replaceChildren();
  const table = el("table", { class: "table table-sm table-striped" });
  const head = el("tr");
  for (const h of ["metric", "scope", "series", "min", "avg", "max"]) head.appendChild(el("th", {}, h));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const name of page.tableMetrics) {
    for (const [scope, jm] of Object.entries(loaded[name] || {}).sort((a, b) => SCOPE_ORDER.indexOf(a[0]) - SCOPE_ORDER.indexOf(b[0]))) {
      for (const s of jm.series || []) {
        const row = el("tr");
        row.appendChild(el("td", {}, name));
        row.appendChild(el("td", {}, scope));
        row.appendChild(el("td", {}, s.id !== null && s.id !== undefined ? `${s.hostname}:${s.id}` : s.hostname));
        for (const k of ["min", "avg", "max"]) row.appendChild(el("td", { class: "text-end" }, si(s.statistics?.[k], jm.unit?.base || "", jm.unit?.prefix || "")));
        body.appendChild(row);
      }
    }
  }
  table.appendChild(body);
  root.appendChild(table);
}

// -------------------------------------------------------------------------------------------- tags

let tags = page.tags;

function renderTags() {
  const root = document.getElementById("job-tags");
  root.replaceChildren();
  if (!tags.length) root.appendChild(el("span", { class: "text-muted" }, "no tags"));
  for (const t of tags) {
    const badge = el("span", { class: "badge text-bg-info cc-tag", "data-tag": String(t.id) }, `${t.type}: ${t.name}`);
    const remove = el("button", { type: "button", class: "btn-close btn-close-white ms-1", "aria-label": `remove tag ${t.name}`, style: "font-size: .5rem" });
    remove.addEventListener("click", () => removeTag(t.id));
    badge.appendChild(remove);
    root.appendChild(badge);
  }
}

function tagError(message) {
  document.getElementById("tag-error").textContent = message || "";
}

async function addTag(event) {
  event.preventDefault();
  const form = event.target;
  const type = form.elements.type.value.trim();
  const name = form.elements.name.value.trim();
  const scope = form.elements.scope.value === "private" ? page.username : form.elements.scope.value;
  tagError("");
  try {
    const known = (await gql("{ tags { id type name scope } }")).tags;
    let tag = known.find((t) => t.type === type && t.name === name && t.scope === scope);
    if (!tag) {
      tag = (await gql("mutation($type: String!, $name: String!, $scope: String!) { createTag(type: $type, name: $name, scope: $scope) { id type name scope } }", { type, name, scope })).createTag;
    }
    tags = (await gql("mutation($job: ID!, $ids: [ID!]!) { addTagsToJob(job: $job, tagIds: $ids) { id type name scope } }", { job: String(page.id), ids: [String(tag.id)] })).addTagsToJob;
    renderTags();
    form.reset();
  } catch (e) {
    tagError(e.message);
  }
}

async function removeTag(id) {
  tagError("");
  try {
    tags = (await gql("mutation($job: ID!, $ids: [ID!]!) { removeTagsFromJob(job: $job, tagIds: $ids) { id type name scope } }", { job: String(page.id), ids: [String(id)] })).removeTagsFromJob;
    renderTags();
  } catch (e) {
    tagError(e.message);
  }
}

// ------------------------------------------------------------------------------------ concurrent jobs

// Jobs that shared this job's nodes while it ran (upstream's concurrentJobs: only for shared-node jobs
// longer than the configured minimum; otherwise null): links to each job and to the list of all.
async function loadConcurrent() {
  const box = document.getElementById("job-concurrent");
  const badge = document.getElementById("concurrent-count");
  let found;
  try {
    found = (await gql("query($id: ID!) { job(id: $id) { concurrentJobs { items { id jobId } count listQuery } } }", { id: String(page.id) })).job?.concurrentJobs;
  } catch (e) {
    box.replaceChildren(el("p", { class: "text-danger" }, `could not load the concurrent jobs: ${e.message}`));
    badge.textContent = "!";
    return;
  }
  badge.textContent = String(found?.count ?? 0);
  if (!found || !found.count) {
    box.replaceChildren(el("p", { class: "text-muted" }, found ? "No concurrent jobs." : "Not a shared-node job: no concurrent jobs are listed."));
    return;
  }
  const list = el("ul", { class: "list-inline mb-1", id: "concurrent-list" });
  for (const item of found.items) {
    const li = el("li", { class: "list-inline-item" });
    li.append(el("a", { href: `/monitoring/job/${encodeURIComponent(item.id)}` }, String(item.jobId)));
    list.append(li);
  }
  const all = el("a", { href: `/monitoring/jobs/?${found.listQuery}`, id: "concurrent-all" }, `show all ${found.count} in the job list`);
  box.replaceChildren(list, all);
}

// ------------------------------------------------------------------------------------------- start

async function main() {
  renderTags();
  document.getElementById("tag-form").addEventListener("submit", addTag);
  const scopeSelect = document.querySelector("#tag-form select[name=scope]");
  if (!page.canGlobalTags) scopeSelect.querySelector("option[value=global]").remove();
  if (!page.canAdminTags) scopeSelect.querySelector("option[value=admin]").remove();
  loadConcurrent();
  const wanted = [...new Set([...page.plotMetrics, ...page.tableMetrics, "flops_any", "mem_bw"])].filter((m) => page.metricConfig[m]);
  try {
    remember(await loadMetrics(wanted, page.scopes, null));
  } catch (e) {
    document.getElementById("job-plots").textContent = `could not load the metrics: ${e.message}`;
    return;
  }
  buildGrid();
  drawRoofline();
  drawPolar();
  drawStats();
  document.body.dataset.plotsReady = "1";
}

main();

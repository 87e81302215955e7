// The job list: draws the small metric plots of every visible row from ONE GraphQL request, again
// after each htmx swap of #job-table; keeps empty filter fields out of the URL; stores the metric
// selection as the user's UI setting (upstream's metricConfig_jobListMetrics[:cluster]).

import { jobMetricsBatch } from "./graphql.js";
import { metricPlot } from "./plots.js";
import { setupCompare } from "./compare.js";

// Every loaded page of rows carries its own plot data (continuous scrolling appends pages): merge them.
function pageData() {
  const blocks = [...document.querySelectorAll("#job-table script.job-plot-data")].map((el) => JSON.parse(el.textContent));
  if (!blocks.length) return null;
  const merged = { ...blocks[0], jobs: [], metricConfig: {} };
  for (const b of blocks) {
    merged.jobs.push(...b.jobs);
    Object.assign(merged.metricConfig, b.metricConfig);
  }
  return merged;
}

export async function drawJobPlots() {
  const data = pageData();
  if (!data) return;
  const cells = [...document.querySelectorAll("#job-table .cc-plot[data-job]:not([data-drawn])")];
  if (!cells.length) return;
  for (const cell of cells) cell.dataset.drawn = "1";
  const wanted = new Set(cells.map((c) => c.dataset.job));
  const jobs = data.jobs.filter((j) => wanted.has(String(j.id)));
  let result;
  try {
    result = await jobMetricsBatch(jobs.map((j) => ({ id: j.id, metrics: j.metrics })), { scopes: ["node"], resolution: data.resolution });
  } catch (e) {
    for (const cell of cells) cell.querySelector(".cc-plot-msg")?.replaceChildren(document.createTextNode(`error: ${e.message}`));
    return;
  }
  const byId = Object.fromEntries(data.jobs.map((j) => [String(j.id), j]));
  for (const cell of cells) {
    const job = byId[cell.dataset.job];
    const metric = cell.dataset.metric;
    if (result[job?.id] instanceof Error) {
      cell.replaceChildren(Object.assign(document.createElement("div"), { className: "cc-plot-msg text-danger", textContent: result[job.id].message }));
      continue;
    }
    const found = (result[job?.id] || []).find((m) => m.name === metric && m.scope === "node") || (result[job?.id] || []).find((m) => m.name === metric);
    const config = data.metricConfig[job?.key]?.[metric];
    metricPlot(cell, {
      metric,
      scope: found?.scope || "node",
      data: found?.metric,
      config,
      numNodes: job?.numNodes || 1,
      width: Math.max(180, cell.parentElement.clientWidth - 8),
      height: 130,
      plotConfig: data.plot,
      legend: false,
    });
  }
}

function stripEmpty(event) {
  const params = event.detail.parameters;
  if (params instanceof FormData) {
    // htmx 2 passes FormData: keep only the non-empty values of every key.
    for (const key of [...new Set(params.keys())]) {
      const values = params.getAll(key).filter((v) => v !== "");
      params.delete(key);
      for (const v of values) params.append(key, v);
    }
  } else {
    for (const key of Object.keys(params)) if (params[key] === "") delete params[key];
  }
}

async function applyMetrics() {
  const menu = document.getElementById("metric-select");
  const selected = [...menu.querySelectorAll("input[data-metric]:checked")].map((i) => i.value);
  const body = new URLSearchParams({ key: menu.dataset.key, value: JSON.stringify(selected) });
  const response = await fetch("/frontend/configuration/", { method: "POST", credentials: "same-origin", body });
  const error = document.getElementById("metric-error");
  error.textContent = "";
  if (!response.ok) {
    let reason = `HTTP ${response.status}`;
    try {
      reason = (await response.json()).error || reason;
    } catch {
      // not JSON: keep the status
    }
    error.textContent = `could not store the selection: ${reason}`;
    return;
  }
  htmx.trigger("#job-filters", "submit");
}

document.body.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.elt?.id === "job-filters") stripEmpty(event);
});
// After any swap (outerHTML replaces #job-table itself): draw the plots of the new rows.
document.body.addEventListener("htmx:afterSettle", () => drawJobPlots());
// Back/forward restores a DOM snapshot whose canvases are blank: draw again.
document.body.addEventListener("htmx:historyRestore", () => {
  for (const cell of document.querySelectorAll("#job-table .cc-plot[data-drawn]")) {
    delete cell.dataset.drawn;
    cell.replaceChildren();
  }
  drawJobPlots();
});
document.getElementById("metric-apply")?.addEventListener("click", applyMetrics);

// The start-time range picker: two datetime-local inputs (UTC) written into the startTime select as
// upstream's "<from>-<to>" epoch seconds; the select's change then submits the filter form.
function utcSeconds(value) {
  return Math.floor(Date.parse(`${value}:00Z`) / 1000);
}
function applyStartRange() {
  const from = document.getElementById("f-start-from").value;
  const to = document.getElementById("f-start-to").value;
  const select = document.getElementById("f-startTime");
  if (!from) return;
  const end = to ? utcSeconds(to) : Math.floor(Date.now() / 1000);
  const value = `${utcSeconds(from)}-${end}`;
  let option = [...select.options].find((o) => o.value === value);
  if (!option) {
    for (const o of [...select.options]) if (/^\d+-\d+$/.test(o.value)) o.remove();
    option = new Option(value, value);
    select.add(option);
  }
  select.value = value;
}
for (const id of ["f-start-from", "f-start-to"]) document.getElementById(id)?.addEventListener("change", applyStartRange);
document.getElementById("f-startTime")?.addEventListener("change", (event) => {
  // A named range chosen by hand clears the pickers.
  if (!/^\d+-\d+$/.test(event.target.value)) for (const id of ["f-start-from", "f-start-to"]) document.getElementById(id).value = "";
});

// The refresher (upstream's Refresher): re-fetches the table partial of the current URL.
let refreshTimer = null;
document.getElementById("job-refresh")?.addEventListener("change", (event) => {
  clearInterval(refreshTimer);
  refreshTimer = null;
  const seconds = Number(event.target.value);
  if (seconds > 0) {
    refreshTimer = setInterval(() => {
      htmx.ajax("GET", location.pathname + location.search, { target: "#job-table", swap: "outerHTML" });
    }, seconds * 1000);
  }
});

setupCompare();
drawJobPlots();

// The user page: the duration, node-count and footprint-metric histograms from the data the server
// rendered into #user-hist-data (one jobsStatistics call on the server; no request here).

import { histogram } from "./plots.js";

const data = JSON.parse(document.getElementById("user-hist-data").textContent);
const grid = document.getElementById("user-histograms");

for (const h of data.metrics) {
  const col = document.createElement("div");
  col.className = "col-md-6 col-xl-4";
  const title = document.createElement("h2");
  title.className = "h6";
  title.textContent = `${h.metric} (${h.stat || "avg"})${h.unit ? ` [${h.unit}]` : ""}`;
  const plot = document.createElement("div");
  plot.className = "cc-plot";
  plot.dataset.hist = `metric:${h.metric}`;
  col.append(title, plot);
  grid.append(col);
}

function draw() {
  for (const el of grid.querySelectorAll(".cc-plot[data-hist]")) {
    const key = el.dataset.hist;
    const width = Math.max(240, el.parentElement.clientWidth - 8);
    if (key === "duration") {
      // bin upper edges in seconds → hours
      histogram(el, { data: data.duration.map((p) => ({ value: p.value / 3600, count: p.count })), xlabel: "duration [h]", width, height: 200 });
    } else if (key === "numNodes") {
      histogram(el, { data: data.numNodes, xlabel: "nodes", width, height: 200 });
    } else {
      const h = data.metrics.find((m) => `metric:${m.metric}` === key);
      histogram(el, { data: h?.data || [], xlabel: h?.unit || "", width, height: 200, color: "rgba(25, 135, 84, 0.6)" });
    }
  }
  document.body.dataset.histReady = "1";
}

draw();

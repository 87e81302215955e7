// The analysis page: pies and histograms from the server's data; the roofline heatmap and the
// footprint scatter plots from ONE GraphQL request (rooflineHeatmap + jobsFootprints, ≤ 500 jobs).

import { pie } from "./charts.js";
import { gql } from "./graphql.js";
import { colors, histogram } from "./plots.js";
import { shortNumber, unitLabel } from "./units.js";

const data = JSON.parse(document.getElementById("analysis-data").textContent);
const width = (el) => Math.max(240, el.parentElement.clientWidth - 8);
const ROWS = 40;
const COLS = 40;
const MIN_X = 0.01;
const MAX_X = 1000;
const MIN_Y = 1;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function message(target, text) {
  target.replaceChildren(el("div", "cc-plot-msg", text));
}

for (const kind of ["user", "project"]) {
  const target = document.querySelector(`[data-pie=${kind}]`);
  pie(target, data.top[kind].map((t) => ({ label: t.id, value: t.value })), { size: 150, plotConfig: data.plot });
  target.querySelector("ul")?.remove(); // the table next to it is the legend
}
for (const target of document.querySelectorAll("[data-hist]")) {
  const key = target.dataset.hist;
  const points = data.hist[key].map((p) => (key === "duration" ? { value: p.value / 3600, count: p.count } : p));
  histogram(target, { data: points, xlabel: key === "duration" ? "hours" : "cores", width: width(target), height: 200 });
}
const hists = document.getElementById("analysis-metric-hists");
for (const h of data.hist.metrics) {
  const col = el("div", "col-md-6 col-xl-4");
  const cell = el("div", "cc-plot");
  col.append(el("h3", "h6", `${h.metric} (${h.stat || "avg"})${h.unit ? ` [${h.unit}]` : ""}`), cell);
  hists.append(col);
  histogram(cell, { data: h.data, xlabel: h.unit, width: width(cell), height: 180, color: "rgba(25, 135, 84, 0.6)" });
}

function heatmap(target, tiles, maxY) {
  if (!tiles.length || !tiles.some((row) => row.some((v) => v > 0))) {
    message(target, "no flop rate / memory bandwidth data for these jobs");
    return;
  }
  const max = Math.max(...tiles.flat());
  const lx = [Math.log10(MIN_X), Math.log10(MAX_X)];
  const ly = [Math.log10(MIN_Y), Math.log10(maxY)];
  target.replaceChildren();
  new uPlot(
    {
      width: width(target),
      height: 300,
      legend: { show: false },
      scales: { x: { time: false, distr: 3, range: [MIN_X, MAX_X] }, y: { distr: 3, range: [MIN_Y, maxY] } },
      axes: [{ label: "arithmetic intensity [flop/byte]" }, { label: "flop rate [GF/s]", values: (u, t) => t.map(shortNumber) }],
      series: [{}, { show: false }],
      hooks: {
        draw: [
          (u) => {
            const { ctx } = u;
            ctx.save();
            tiles.forEach((row, r) => row.forEach((v, c) => {
              if (!v) return;
              const x0 = u.valToPos(10 ** (lx[0] + ((lx[1] - lx[0]) * c) / COLS), "x", true);
              const x1 = u.valToPos(10 ** (lx[0] + ((lx[1] - lx[0]) * (c + 1)) / COLS), "x", true);
              const y0 = u.valToPos(10 ** (ly[0] + ((ly[1] - ly[0]) * r) / ROWS), "y", true);
              const y1 = u.valToPos(10 ** (ly[0] + ((ly[1] - ly[0]) * (r + 1)) / ROWS), "y", true);
              ctx.fillStyle = `rgba(13, 110, 253, ${0.15 + 0.85 * (v / max)})`;
              ctx.fillRect(x0, y1, x1 - x0, y0 - y1);
            }));
            ctx.restore();
          },
        ],
      },
    },
    [[MIN_X, MAX_X], [null, null]],
    target,
  );
}

function axisLabel(metric) {
  const unit = unitLabel(data.units[metric]);
  return unit ? `${metric} [${unit}]` : metric;
}

function scatter(target, xs, ys, [mx, my]) {
  const points = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) => x !== null && y !== null).sort((a, b) => a[0] - b[0]);
  if (!points.length) {
    message(target, "no data");
    return;
  }
  target.replaceChildren();
  const color = colors(data.plot)[0];
  new uPlot(
    {
      width: width(target),
      height: 240,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: axisLabel(mx), values: (u, t) => t.map(shortNumber) }, { label: axisLabel(my), values: (u, t) => t.map(shortNumber) }],
      series: [{}, { stroke: color, fill: color, paths: () => null, points: { show: true, size: 6, fill: color } }],
    },
    [points.map((p) => p[0]), points.map((p) => p[1])],
    target,
  );
}

async function fromGraphQL() {
  const heat = document.getElementById("roofline-heatmap");
  const scatterRow = document.getElementById("analysis-scatter");
  const cells = data.pairs.map((pair) => {
    const col = el("div", "col-md-6 col-xl-4");
    const cell = el("div", "cc-plot");
    col.append(el("h3", "h6", `${pair[0]} vs ${pair[1]}`), cell);
    scatterRow.append(col);
    return cell;
  });
  if (!data.totalJobs) {
    message(heat, "no jobs match");
    for (const c of cells) message(c, "no jobs match");
    return;
  }
  if (data.totalJobs > 500) {
    const text = `${data.totalJobs} jobs: the roofline and the scatter plots need at most 500 — narrow the filter`;
    message(heat, text);
    for (const c of cells) message(c, text);
    return;
  }
  const metrics = [...new Set(data.pairs.flat())];
  const maxY = Math.max(10, data.peaks.flops || 10000);
  try {
    const result = await gql(
      `query($f: [JobFilter!]!, $m: [String!]!, $maxY: Float!) {
        rooflineHeatmap(filter: $f, rows: ${ROWS}, cols: ${COLS}, minX: ${MIN_X}, minY: ${MIN_Y}, maxX: ${MAX_X}, maxY: $maxY)
        jobsFootprints(filter: $f, metrics: $m) { timeWeights { nodeHours } metrics { metric data } } }`,
      { f: data.filter, m: metrics, maxY },
    );
    heatmap(heat, result.rooflineHeatmap, maxY);
    const byMetric = Object.fromEntries((result.jobsFootprints?.metrics || []).map((m) => [m.metric, m.data]));
    data.pairs.forEach((pair, i) => scatter(cells[i], byMetric[pair[0]] || [], byMetric[pair[1]] || [], pair));
  } catch (e) {
    message(heat, `not available: ${e.message}`);
    for (const c of cells) message(c, `not available: ${e.message}`);
  }
}

fromGraphQL().finally(() => { document.body.dataset.plotsReady = "1"; });

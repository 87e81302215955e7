// Charts beyond plots.js: pie (a plain canvas — uPlot has no pies), a stacked step plot of node states
// over time and a plain line plot of one series over wall-clock time (both uPlot).

import { colors } from "./plots.js";
import { shortNumber, si } from "./units.js";

function message(el, text) {
  const div = document.createElement("div");
  div.className = "cc-plot-msg";
  div.textContent = text;
  el.replaceChildren(div);
}

/** Pie: items [{label, value}], opts {size, plotConfig}; returns the colours used (for legends). */
export function pie(el, items, { size = 200, plotConfig = {} } = {}) {
  const palette = colors(plotConfig);
  const total = items.reduce((s, i) => s + i.value, 0);
  if (!total) {
    message(el, "no data");
    el.style.minHeight = `${Math.min(size, 80)}px`;
    el.style.position = "relative";
    return palette;
  }
  const dpr = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  canvas.width = size * dpr;
  canvas.height = size * dpr;
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  let angle = -Math.PI / 2;
  items.forEach((item, i) => {
    const step = (item.value / total) * 2 * Math.PI;
    ctx.beginPath();
    ctx.moveTo(size / 2, size / 2);
    ctx.arc(size / 2, size / 2, size / 2 - 2, angle, angle + step);
    ctx.closePath();
    ctx.fillStyle = palette[i % palette.length];
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    angle += step;
  });
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", items.map((i) => `${i.label}: ${i.value}`).join(", "));
  const legend = document.createElement("ul");
  legend.className = "list-unstyled small mb-0 mt-1";
  items.forEach((item, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "cc-swatch";
    sw.style.background = palette[i % palette.length];
    li.append(sw, document.createTextNode(` ${item.label}: ${item.value}`));
    legend.append(li);
  });
  el.replaceChildren(canvas, legend);
  return palette;
}

/** Node states over time: series [{state, times, counts}] (epoch s) as stepped lines. ``range``
 * ([from, to], epoch s) fixes the time axis to the window asked for: one report must not make the
 * axis span years, nor a short burst look like a whole day. */
export function statesOverTime(el, series, { width, height = 200, plotConfig = {}, range = null } = {}) {
  if (!series.length) {
    message(el, "no node state reports in this time range");
    return null;
  }
  const times = [...new Set(series.flatMap((s) => s.times))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const palette = colors(plotConfig);
  const columns = [times];
  const uSeries = [{}];
  series.forEach((s, i) => {
    const col = new Array(times.length).fill(null);
    s.times.forEach((t, k) => { col[index.get(t)] = s.counts[k]; });
    columns.push(col);
    uSeries.push({ label: s.state, stroke: palette[i % palette.length], width: 2, paths: uPlot.paths.stepped({ align: 1 }), spanGaps: false });
  });
  el.replaceChildren();
  const scales = range ? { x: { time: true, range: () => [range[0], range[1]] } } : {};
  // data-x-range: what the time axis shows (for tests and debugging)
  const hooks = { setScale: [(u, key) => { if (key === "x") el.dataset.xRange = `${u.scales.x.min} ${u.scales.x.max}`; }] };
  return new uPlot({ width: width || el.clientWidth || 400, height, scales, hooks, series: uSeries, axes: [{}, { label: "nodes", values: (u, t) => t.map(shortNumber) }] }, columns, el);
}

/** One series over wall-clock time: {from (epoch s), timestep, data, unit}. */
export function timeLine(el, { from, timestep, data, unit = {}, label = "", width, height = 200, color = "#0d6efd" }) {
  if (!data || !data.length || !timestep) {
    message(el, "no data");
    return null;
  }
  const xs = data.map((_, i) => from + i * timestep);
  el.replaceChildren();
  return new uPlot(
    {
      width: width || el.clientWidth || 400,
      height,
      series: [{}, { label, stroke: color, width: 2, spanGaps: false, value: (u, v) => (v === null ? "-" : si(v, unit.base || "", unit.prefix || "")) }],
      axes: [{}, { label: `${unit.prefix || ""}${unit.base || ""}`, values: (u, t) => t.map(shortNumber) }],
    },
    [xs, data],
    el,
  );
}

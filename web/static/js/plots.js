// uPlot wrappers for every plot of the UI (uPlot is loaded as the global `uPlot` from
// /static/vendor/uplot/uPlot.iife.min.js before the page modules).
//
//   metricPlot(el, opts)  time series of one metric (all series, or a min/mean/max band when many),
//                         threshold lines from the metric config, gaps stay gaps, drag-zoom callback
//   histogram(el, opts)   bars of {value, count}
//   roofline(el, opts)    flop rate vs arithmetic intensity over time, with the subcluster's roofs
//   polar(el, opts)       footprint radar (plain canvas: uPlot has no polar coordinates)
//   colors(plotConfig)    the series colours (plotConfiguration_colorScheme, colour-blind mode)

import { elapsed, shortNumber, si, unitLabel } from "./units.js";

/** Upstream's default scheme: distinguishable on white. */
export const DEFAULT_COLORS = [
  "#00bfff", "#0000ff", "#ff00ff", "#ff0000", "#ff8000", "#ffff00", "#80ff00",
  "#00ff00", "#00ff80", "#00ffff", "#0080ff", "#8000ff", "#ff0080", "#808080",
];
/** Okabe–Ito: readable with the common colour-vision deficiencies. */
export const COLORBLIND_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"];
const THRESHOLD_COLORS = { alert: "rgba(220, 53, 69, 0.8)", caution: "rgba(255, 153, 0, 0.8)", normal: "rgba(25, 135, 84, 0.6)", peak: "rgba(100, 100, 100, 0.6)" };
const BACKGROUND = { alert: "rgba(255, 0, 0, 0.08)", caution: "rgba(255, 200, 0, 0.12)" };
// More series than this are drawn as a min/mean/max band (when the server sent statisticsSeries).
export const MAX_LINES = 8;

export function colors(plotConfig = {}) {
  if (plotConfig.plotConfiguration_colorblindMode) return COLORBLIND_COLORS;
  const scheme = plotConfig.plotConfiguration_colorScheme;
  return Array.isArray(scheme) && scheme.length ? scheme : DEFAULT_COLORS;
}

function lineWidth(plotConfig) {
  const w = Number(plotConfig?.plotConfiguration_lineWidth);
  return Number.isFinite(w) && w > 0 ? Math.min(w, 6) / window.devicePixelRatio : 1;
}

function mean(values) {
  let sum = 0, n = 0;
  for (const v of values) if (v !== null && v !== undefined && !Number.isNaN(v)) { sum += v; n++; }
  return n ? sum / n : null;
}

/** "alert" | "caution" | "normal" of a value against a metric config's thresholds. */
export function thresholdLevel(value, config) {
  if (value === null || !config) return "normal";
  if (config.lowerIsBetter) {
    if (config.alert && value >= config.alert) return "alert";
    if (config.caution && value >= config.caution) return "caution";
    return "normal";
  }
  if (config.alert && value <= config.alert) return "alert";
  if (config.caution && value <= config.caution) return "caution";
  return "normal";
}

/** Thresholds for a scope finer than node: a summed metric's node thresholds split over its units. */
function scaledThresholds(config, scope, seriesCount, numNodes) {
  if (!config) return null;
  const per = scope === "node" || config.aggregation === "avg" ? 1 : Math.max(1, Math.round(seriesCount / Math.max(1, numNodes)));
  return { peak: config.peak / per, normal: config.normal / per, caution: config.caution / per, alert: config.alert / per, lowerIsBetter: config.lowerIsBetter };
}

function seriesLabel(s) {
  return s.id !== null && s.id !== undefined && s.id !== "" ? `${s.hostname}:${s.id}` : s.hostname;
}

function message(el, text) {
  el.replaceChildren();
  const div = document.createElement("div");
  div.className = "cc-plot-msg";
  div.textContent = text;
  el.appendChild(div);
}

/**
 * A metric's time series.
 * opts: {metric, scope, data: JobMetric, config: metric config, numNodes, width, height, plotConfig,
 *        onZoom(minSeconds, maxSeconds), legend (bool), title}
 * Returns the uPlot instance (null when there is no data; a message is shown instead).
 */
export function metricPlot(el, opts) {
  const { data, config, plotConfig = {} } = opts;
  const series = data?.series || [];
  if (!series.length || !data.timestep) {
    message(el, "no data");
    return null;
  }
  const n = Math.max(...series.map((s) => (s.data || []).length));
  const xs = Array.from({ length: n }, (_, i) => i * data.timestep);
  const palette = colors(plotConfig);
  const width = lineWidth(plotConfig);
  const band = series.length > MAX_LINES && data.statisticsSeries;
  const unit = unitLabel(data.unit || config?.unit);
  const uSeries = [{ label: "time", value: (u, v) => (v === null ? "-" : elapsed(v)) }];
  const columns = [xs];
  const fmt = (u, v) => (v === null || v === undefined ? "-" : si(v, data.unit?.base || "", data.unit?.prefix || ""));
  if (band) {
    const st = data.statisticsSeries;
    columns.push(st.min, st.mean, st.max);
    uSeries.push(
      { label: "min", stroke: "rgb(255,0,0)", width, value: fmt },
      { label: "mean", stroke: "rgb(0,0,0)", width, value: fmt },
      { label: "max", stroke: "rgb(0,128,0)", width, value: fmt },
    );
  } else {
    series.forEach((s, i) => {
      columns.push(s.data);
      uSeries.push({ label: seriesLabel(s), stroke: palette[i % palette.length], width, value: fmt, spanGaps: false });
    });
  }
  const thresholds = scaledThresholds(config, opts.scope || "node", series.length, opts.numNodes || 1);
  const avg = mean(series.map((s) => s.statistics?.avg ?? mean(s.data || [])));
  const level = thresholdLevel(avg, thresholds);
  const hooks = {
    drawClear: [
      (u) => {
        if (!plotConfig.plotConfiguration_colorBackground || !BACKGROUND[level]) return;
        const { ctx } = u;
        ctx.save();
        ctx.fillStyle = BACKGROUND[level];
        ctx.fillRect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.restore();
      },
    ],
    draw: [
      (u) => {
        if (!thresholds) return;
        const { ctx } = u;
        ctx.save();
        ctx.setLineDash([5, 5]);
        ctx.lineWidth = 1;
        for (const key of ["peak", "caution", "alert"]) {
          const value = thresholds[key];
          if (!value) continue;
          const y = u.valToPos(value, "y", true);
          if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
          ctx.strokeStyle = THRESHOLD_COLORS[key];
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
        }
        ctx.restore();
      },
    ],
  };
  if (opts.onZoom) {
    hooks.setSelect = [
      (u) => {
        if (u.select.width < 2) return;
        const min = u.posToVal(u.select.left, "x");
        const max = u.posToVal(u.select.left + u.select.width, "x");
        opts.onZoom(Math.max(0, min), max);
      },
    ];
  }
  const peak = thresholds?.peak || 0;
  const options = {
    width: opts.width || el.clientWidth || 300,
    height: opts.height || 150,
    title: opts.title,
    series: uSeries,
    legend: { show: opts.legend ?? (!band && series.length <= 4), live: true },
    // The band: min to max filled (series 1 = min, 3 = max).
    bands: band ? [{ series: [3, 1], fill: "rgba(0, 0, 0, 0.08)" }] : [],
    cursor: { drag: { x: true, y: false, setScale: true } },
    scales: {
      x: { time: false },
      y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, peak ? Math.min(peak, (max ?? 0) * 1.2) : 0) || 1] },
    },
    axes: [
      { values: (u, ticks) => ticks.map(elapsed), size: 30 },
      { values: (u, ticks) => ticks.map(shortNumber), label: unit, size: 45, labelSize: 14 },
    ],
    hooks,
  };
  el.replaceChildren();
  const plot = new uPlot(options, columns, el);
  plot.ccLevel = level;
  plot.ccBand = Boolean(band);
  return plot;
}

/** Bars: opts {data: [{value, count}], xlabel, ylabel, width, height, color} */
export function histogram(el, opts) {
  const points = opts.data || [];
  if (!points.length) {
    message(el, "no data");
    return null;
  }
  const xs = points.map((p) => p.value);
  const ys = points.map((p) => p.count);
  el.replaceChildren();
  return new uPlot(
    {
      width: opts.width || el.clientWidth || 300,
      height: opts.height || 200,
      title: opts.title,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: opts.xlabel || "", values: (u, t) => t.map(shortNumber) }, { label: opts.ylabel || "count", values: (u, t) => t.map(shortNumber) }],
      series: [{}, { label: opts.ylabel || "count", fill: opts.color || "rgba(0, 123, 255, 0.6)", stroke: opts.color || "rgb(0, 123, 255)", paths: uPlot.paths.bars({ size: [0.8, 100] }), points: { show: false } }],
    },
    [xs, ys],
    el,
  );
}

/**
 * Roofline: one point per time step, x = arithmetic intensity (flop/byte), y = flop rate (GF/s),
 * coloured from early (blue) to late (red); roofs from the subcluster's peaks.
 * opts: {flops: [..], membw: [..], peaks: {flopRateSimd, flopRateScalar, memoryBandwidth}, width, height}
 */
export function roofline(el, opts) {
  const xs = [], ys = [], t = [];
  const n = Math.min(opts.flops?.length || 0, opts.membw?.length || 0);
  for (let i = 0; i < n; i++) {
    const f = opts.flops[i], b = opts.membw[i];
    if (f === null || b === null || !(f > 0) || !(b > 0)) continue;
    xs.push(f / b); ys.push(f); t.push(i / Math.max(1, n - 1));
  }
  if (!xs.length) {
    message(el, "no data for the roofline");
    return null;
  }
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const sx = order.map((i) => xs[i]), sy = order.map((i) => ys[i]), st = order.map((i) => t[i]);
  const peaks = opts.peaks || {};
  const drawPoints = (u) => {
    const { ctx } = u;
    ctx.save();
    for (let i = 0; i < sx.length; i++) {
      const x = u.valToPos(sx[i], "x", true), y = u.valToPos(sy[i], "y", true);
      ctx.fillStyle = `rgb(${Math.round(255 * st[i])}, 0, ${Math.round(255 * (1 - st[i]))})`;
      ctx.beginPath();
      ctx.arc(x, y, 2.5 * window.devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  };
  const drawRoofs = (u) => {
    if (!peaks.memoryBandwidth || !peaks.flopRateSimd) return;
    const { ctx } = u;
    const [x0, x1] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.lineWidth = 2;
    for (const [flops, color] of [[peaks.flopRateSimd, "#000"], [peaks.flopRateScalar, "#777"]]) {
      if (!flops) continue;
      const knee = flops / peaks.memoryBandwidth;
      ctx.strokeStyle = color;
      ctx.beginPath();
      const start = Math.max(x0, 1e-3);
      ctx.moveTo(u.valToPos(start, "x", true), u.valToPos(start * peaks.memoryBandwidth, "y", true));
      ctx.lineTo(u.valToPos(knee, "x", true), u.valToPos(flops, "y", true));
      ctx.lineTo(u.valToPos(Math.max(x1, knee), "x", true), u.valToPos(flops, "y", true));
      ctx.stroke();
    }
    ctx.restore();
  };
  const ymax = Math.max(...sy, peaks.flopRateSimd || 0) * 2;
  el.replaceChildren();
  return new uPlot(
    {
      width: opts.width || el.clientWidth || 400,
      height: opts.height || 300,
      title: opts.title,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, distr: 3, range: [0.01, Math.max(1000, ...sx)] },
        y: { distr: 3, range: [0.01, ymax] },
      },
      axes: [
        { label: "Intensity [FLOPS/Byte]", values: (u, ticks) => ticks.map(shortNumber) },
        { label: "Performance [GFLOPS]", values: (u, ticks) => ticks.map(shortNumber), size: 50 },
      ],
      series: [{}, { label: "flops", stroke: "transparent", points: { show: false } }],
      hooks: { draw: [drawRoofs, drawPoints] },
    },
    [sx, sy],
    el,
  );
}

/**
 * Footprint radar: opts {labels: [..], datasets: [{label, values: [0..1 of peak], color}], size}.
 * Draws on a plain canvas; returns the canvas.
 */
export function polar(el, opts) {
  const labels = opts.labels || [];
  if (labels.length < 3) {
    message(el, "too few footprint metrics for a polar plot");
    return null;
  }
  const size = opts.size || Math.min(el.clientWidth || 300, 320);
  const dpr = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  canvas.width = size * dpr; canvas.height = size * dpr;
  canvas.style.width = `${size}px`; canvas.style.height = `${size}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.font = "11px sans-serif";
  const widest = Math.max(...labels.map((l) => ctx.measureText(l).width));
  const c = size / 2, r = Math.max(30, size / 2 - Math.max(20, widest + 8));
  const angle = (i) => (2 * Math.PI * i) / labels.length - Math.PI / 2;
  ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#333"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
  for (const f of [0.25, 0.5, 0.75, 1]) {
    ctx.beginPath();
    labels.forEach((_, i) => { const a = angle(i); ctx.lineTo(c + f * r * Math.cos(a), c + f * r * Math.sin(a)); });
    ctx.closePath(); ctx.stroke();
  }
  labels.forEach((label, i) => {
    const a = angle(i);
    ctx.beginPath(); ctx.moveTo(c, c); ctx.lineTo(c + r * Math.cos(a), c + r * Math.sin(a)); ctx.stroke();
    const cos = Math.cos(a);
    ctx.textAlign = Math.abs(cos) < 0.2 ? "center" : cos > 0 ? "left" : "right";
    ctx.fillText(label, c + (r + 6) * cos, c + (r + 12) * Math.sin(a) + 4);
  });
  for (const ds of opts.datasets || []) {
    ctx.beginPath();
    ds.values.forEach((v, i) => { const a = angle(i), f = Math.max(0, Math.min(1, v ?? 0)); ctx.lineTo(c + f * r * Math.cos(a), c + f * r * Math.sin(a)); });
    ctx.closePath();
    ctx.strokeStyle = ds.color; ctx.fillStyle = ds.color.replace("rgb(", "rgba(").replace(")", ", 0.2)");
    ctx.fill(); ctx.stroke();
  }
  el.replaceChildren(canvas);
  const legend = document.createElement("div");
  legend.className = "small text-center";
  for (const ds of opts.datasets || []) {
    const span = document.createElement("span");
    span.className = "me-2";
    span.style.color = ds.color;
    span.textContent = `■ ${ds.label}`;
    legend.appendChild(span);
  }
  el.appendChild(legend);
  return canvas;
}

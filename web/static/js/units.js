// Numbers with SI prefixes, durations and times: the browser side of cc_core/ui/format.py.

const PREFIXES = [["E", 1e18], ["P", 1e15], ["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]];
const PREFIX_VALUE = { "": 1, E: 1e18, P: 1e15, T: 1e12, G: 1e9, M: 1e6, k: 1e3, m: 1e-3, u: 1e-6, n: 1e-9 };

/** "GB/s" from a metric config's unit {base, prefix}. */
export function unitLabel(unit) {
  if (!unit) return "";
  return `${unit.prefix || ""}${unit.base || ""}`;
}

/** A value already in `prefix` units, rescaled to the best SI prefix: si(1500, "B", "G") → "1.50 TB". */
export function si(value, base = "", prefix = "", digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  const v = value * (PREFIX_VALUE[prefix] ?? 1);
  for (const [p, scale] of PREFIXES) {
    if (Math.abs(v) >= scale) return `${(v / scale).toFixed(digits)} ${p}${base}`.trim();
  }
  return `${v.toFixed(digits)} ${base}`.trim();
}

/** Short axis labels: 1200 → "1.2k" (no unit). */
export function shortNumber(value) {
  if (value === null || value === undefined) return "";
  const a = Math.abs(value);
  for (const [p, scale] of PREFIXES) {
    if (a >= scale) return `${+(value / scale).toFixed(1)}${p}`;
  }
  if (a === 0) return "0";
  return a < 0.01 ? value.toExponential(1) : `${+value.toFixed(2)}`;
}

/** Seconds → "1h 2m", "3d 4h", "45s". */
export function duration(seconds) {
  let s = Math.max(0, Math.round(seconds || 0));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Seconds since job start → "hh:mm" (the time axis of metric plots). */
export function elapsed(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}`;
}

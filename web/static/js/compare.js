// Job comparison on the job list (upstream's JobCompare / "Comparogram"): the rows' checkboxes select
// jobs; "Compare" asks ONE `jobsMetricStats` query for the selected jobs and draws, per metric, the
// jobs' node-level min/avg/max (x: the jobs in start order, labelled by job id) with uPlot.

import { gql } from "./graphql.js";
import { colors } from "./plots.js";

const QUERY = `query ($filter: [JobFilter!]!, $metrics: [String!]) {
  jobsMetricStats(filter: $filter, metrics: $metrics) {
    id jobId startTime cluster subCluster numNodes
    stats { name data { min avg max } }
  }
}`;

function selected() {
  return [...document.querySelectorAll('#job-table input[name="compare"]:checked')].map((i) => i.value);
}

function shownMetrics() {
  return [...document.querySelectorAll("#job-table .cc-plot[data-metric]")].map((c) => c.dataset.metric).filter((m, i, all) => all.indexOf(m) === i);
}

function updateButton() {
  const n = selected().length;
  document.getElementById("compare-n").textContent = String(n);
  document.getElementById("compare-btn").disabled = n < 2;
}

function message(text) {
  document.getElementById("compare-msg").textContent = text;
}

function drawMetric(container, metric, jobs) {
  const palette = colors({});
  const box = document.createElement("div");
  box.className = "cc-compare-plot";
  box.dataset.metric = metric;
  container.append(box);
  const xs = jobs.map((_, i) => i + 1);
  const pick = (job, key) => {
    const s = job.stats.find((x) => x.name === metric);
    return s ? s.data[key] : null;
  };
  const labels = jobs.map((j) => String(j.jobId));
  new uPlot(
    {
      title: metric,
      width: 380,
      height: 220,
      scales: { x: { time: false, range: [0.5, jobs.length + 0.5] } },
      axes: [{ values: (_, ticks) => ticks.map((t) => (Number.isInteger(t) ? labels[t - 1] ?? "" : "")), incrs: [1] }, {}],
      series: [
        { label: "job" },
        { label: "min", stroke: palette[2], points: { show: true, size: 6 } },
        { label: "avg", stroke: palette[0], width: 2, points: { show: true, size: 7 } },
        { label: "max", stroke: palette[1], points: { show: true, size: 6 } },
      ],
    },
    [xs, jobs.map((j) => pick(j, "min")), jobs.map((j) => pick(j, "avg")), jobs.map((j) => pick(j, "max"))],
    box,
  );
}

async function compare(event) {
  event.preventDefault();
  const ids = selected();
  const metrics = shownMetrics();
  const panel = document.getElementById("compare-panel");
  const plots = document.getElementById("compare-plots");
  panel.classList.remove("d-none");
  document.getElementById("compare-close").classList.remove("d-none");
  plots.replaceChildren();
  message(`comparing ${ids.length} jobs…`);
  let jobs;
  try {
    jobs = (await gql(QUERY, { filter: [{ dbId: ids }], metrics })).jobsMetricStats;
  } catch (e) {
    message(`error: ${e.message}`);
    return;
  }
  if (!jobs.length) {
    message("none of the selected jobs has statistics");
    return;
  }
  message(`${jobs.length} jobs: ${jobs.map((j) => `${j.jobId} (${j.cluster})`).join(", ")} — node-level min / avg / max`);
  for (const metric of metrics) if (jobs.some((j) => j.stats.some((s) => s.name === metric))) drawMetric(plots, metric, jobs);
}

export function setupCompare() {
  const form = document.getElementById("job-compare");
  if (!form) return;
  form.addEventListener("submit", compare);
  document.getElementById("compare-close").addEventListener("click", () => {
    document.getElementById("compare-panel").classList.add("d-none");
    document.getElementById("compare-close").classList.add("d-none");
  });
  document.body.addEventListener("change", (event) => {
    if (event.target.name === "compare") updateButton();
  });
  document.body.addEventListener("htmx:afterSettle", updateButton);
}

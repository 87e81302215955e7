// The journal view: GET /frontend/logs/ with the form's parameters; entries and errors as text.

const form = document.getElementById("log-form");
const body = document.querySelector("#log-table tbody");
const msg = document.getElementById("log-msg");
const LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const ROW_CLASS = { 0: "table-danger", 1: "table-danger", 2: "table-danger", 3: "table-danger", 4: "table-warning" };

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function load() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== "") params.set(k, v);
  msg.classList.add("d-none");
  let response;
  try {
    response = await fetch(`/frontend/logs/?${params}`, { credentials: "same-origin" });
  } catch (e) {
    msg.textContent = `could not reach the server: ${e.message}`;
    msg.classList.remove("d-none");
    return;
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    msg.textContent = `The log is not available: ${answer?.error || `HTTP ${response.status}`}`;
    msg.classList.remove("d-none");
    body.replaceChildren();
    return;
  }
  body.replaceChildren(
    ...answer.map((e) => {
      const tr = document.createElement("tr");
      tr.className = ROW_CLASS[e.priority] || "";
      const micros = Number(e.timestamp);
      const when = Number.isFinite(micros) && micros > 0 ? new Date(micros / 1000).toISOString().replace("T", " ").slice(0, 19) : e.timestamp;
      tr.append(cell(when), cell(LEVELS[e.priority] || String(e.priority)), cell(e.unit), cell(e.message));
      return tr;
    }),
  );
  if (!answer.length) {
    msg.textContent = "No log entries in this time range.";
    msg.className = "alert alert-info";
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load().finally(() => { document.body.dataset.logsReady = "1"; });
});
load().finally(() => { document.body.dataset.logsReady = "1"; });

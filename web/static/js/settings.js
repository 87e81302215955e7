// The settings page: stores UI settings one key at a time (POST /frontend/configuration/, value =
// JSON), fetches an API token (GET /frontend/jwt/), and for admins drives the /config/ REST routes
// (users, roles/projects, notice, taggers). Every answer is shown as text, never as HTML.

const msg = document.getElementById("cc-settings-msg");

function show(text, ok = true) {
  msg.textContent = text;
  msg.className = `alert ${ok ? "alert-success" : "alert-danger"}`;
  msg.scrollIntoView({ block: "nearest" });
}

async function send(url, method, fields) {
  const response = await fetch(url, { method, credentials: "same-origin", body: new URLSearchParams(fields) });
  const text = await response.text();
  let message = text;
  try {
    const body = JSON.parse(text);
    message = body.error || body.msg || body.message || text;
  } catch { /* plain text answer */ }
  if (!response.ok) throw new Error(`${message || `HTTP ${response.status}`}`);
  return message;
}

async function saveSetting(key, value) {
  await send("/frontend/configuration/", "POST", { key, value: JSON.stringify(value) });
}

document.getElementById("cc-user-settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    for (const el of event.target.querySelectorAll("[data-key]")) {
      const value = "bool" in el.dataset ? el.checked : Number(el.value);
      await saveSetting(el.dataset.key, value);
    }
    show("Settings saved.");
  } catch (e) {
    show(`could not save the settings: ${e.message}`, false);
  }
});

for (const form of document.querySelectorAll(".cc-metric-form")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input:checked")].map((i) => i.value);
    try {
      await saveSetting(form.dataset.key, chosen);
      show("Metric selection saved.");
    } catch (e) {
      show(`could not save the metric selection: ${e.message}`, false);
    }
  });
}

async function token(username) {
  const url = username ? `/frontend/jwt/?${new URLSearchParams({ username })}` : "/frontend/jwt/";
  const response = await fetch(url, { credentials: "same-origin" });
  const text = await response.text();
  if (!response.ok) {
    let error = text;
    try { error = JSON.parse(text).error || text; } catch { /* text */ }
    show(`could not generate a token: ${error}`, false);
    return;
  }
  const area = document.getElementById("cc-jwt");
  area.value = text.trim();
  area.classList.remove("d-none");
  show(username ? `Token for ${username} generated.` : "Token generated.");
}

document.getElementById("cc-gen-jwt").addEventListener("click", () => token(null));
for (const b of document.querySelectorAll(".cc-jwt-for")) b.addEventListener("click", () => token(b.dataset.user));

async function admin(action) {
  try {
    show(await action());
    setTimeout(() => window.location.reload(), 600);
  } catch (e) {
    show(e.message, false);
  }
}

document.getElementById("cc-add-user")?.addEventListener("submit", (event) => {
  event.preventDefault();
  admin(() => send("/config/users/", "POST", Object.fromEntries(new FormData(event.target))));
});

document.getElementById("cc-edit-user")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const f = Object.fromEntries(new FormData(event.target));
  admin(() => send(`/config/user/${encodeURIComponent(f.user)}`, "POST", { [f.op]: f.value }));
});

for (const b of document.querySelectorAll(".cc-delete-user")) {
  b.addEventListener("click", () => {
    if (!window.confirm(`Delete the user ${b.dataset.user}?`)) return;
    admin(() => send("/config/users/", "DELETE", { username: b.dataset.user }));
  });
}

document.getElementById("cc-notice-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    show(await send("/config/notice/", "POST", Object.fromEntries(new FormData(event.target))));
  } catch (e) {
    show(`could not save the notice: ${e.message}`, false);
  }
});

for (const b of document.querySelectorAll(".cc-run-tagger")) {
  b.addEventListener("click", async () => {
    try {
      show(await send("/config/taggers/run/", "POST", { name: b.dataset.name }));
    } catch (e) {
      show(`could not run the tagger: ${e.message}`, false);
    }
  });
}

// postop: the little JavaScript the pages need. Forms marked .api-form are sent as JSON
// to the REST API with the session's CSRF token; the dashboard follows Server-Sent
// Events; the header button subscribes this browser to Web Push.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    // answers (errors included) in the page's language, not the browser's
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(),
               "Accept-Language": document.documentElement.lang || "fr" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    // the server's sentence is already in the reader's language
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : words().failed || `HTTP ${res.status}`);
  }
  return data;
}

// translated words the script needs, from the page (base.html)
const words = () => {
  try { return JSON.parse(document.body.dataset.words || "{}"); } catch { return {}; }
};

function copyButtons(root) {
  root.querySelectorAll("button.copy").forEach((b) => {
    b.onclick = async () => {
      const text = b.previousElementSibling?.textContent || "";
      try { await navigator.clipboard.writeText(text); b.textContent = words().copied || "✓"; }
      catch { window.getSelection().selectAllChildren(b.previousElementSibling); }
    };
  });
}

// an answer shown as labelled lines, each with a copy button (never raw JSON)
function showResult(form, data) {
  const out = form.querySelector(".result");
  if (!out) return;
  let labels = {};
  try { labels = JSON.parse(form.dataset.resultLabels || "{}"); } catch { labels = {}; }
  out.replaceChildren();
  out.hidden = false;
  if (form.dataset.resultTitle) {
    const p = document.createElement("p");
    p.className = "ok";
    p.textContent = form.dataset.resultTitle;
    out.append(p);
  }
  if (form.dataset.resultWarning) {
    const p = document.createElement("p");
    p.className = "warn";
    p.textContent = form.dataset.resultWarning;
    out.append(p);
  }
  const dl = document.createElement("dl");
  for (const [key, label] of Object.entries(labels)) {
    if (!data || data[key] === undefined || data[key] === null) continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    const code = document.createElement("code");
    code.textContent = String(data[key]);
    dd.append(code);
    if (form.dataset.copy !== undefined) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "copy quiet"; b.textContent = words().copy || "Copy";
      dd.append(" ", b);
    }
    dl.append(dt, dd);
  }
  out.append(dl);
  if (form.dataset.resultLink && data) {
    const a = document.createElement("a");
    a.href = form.dataset.resultLink.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(data[k]));
    a.textContent = form.dataset.resultLinkText || a.href;
    out.append(a);
  }
  copyButtons(out);
}

// a new shared link: labelled, with copy buttons, added to the list at once
function showShareLink(form, data) {
  const panel = document.getElementById("share-result");
  if (!panel) return;
  panel.hidden = false;
  // the server gives the full address when a public base URL is set, a path otherwise
  const full = /^https?:\/\//.test(data.url) ? data.url : `${location.origin}${data.url}`;
  panel.querySelector('[data-field="url"]').textContent = full;
  panel.querySelectorAll(".code-row").forEach((el) => { el.hidden = !data.code; });
  panel.querySelector('[data-field="code"]').textContent = data.code || "";
  const expires = new Date(data.expires_at);
  const fmt = new Intl.DateTimeFormat(document.body.dataset.locale || document.documentElement.lang,
    { dateStyle: "medium", timeStyle: "short", timeZone: document.body.dataset.viewerZone });
  panel.querySelector('[data-field="expires"]').textContent = fmt.format(expires);
  copyButtons(panel);
  const body = document.querySelector("#share-links-table tbody");
  if (body) {
    const row = document.createElement("tr");
    row.dataset.linkId = data.link_id;
    const lang = form.querySelector("select[name=language]");
    const cells = [form.querySelector("input[name=recipient]")?.value || "—",
      lang ? lang.options[lang.selectedIndex].text : "", words().you || "", fmt.format(expires),
      words().never_used || "", words().active || ""];
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; row.append(td); }
    row.append(document.createElement("td"));
    body.prepend(row);
  }
}

// Dates are typed as the viewer's locale writes them (data-pattern: dd/MM/yyyy, M/d/yyyy...),
// not as the browser's own language would; a value that does not parse goes as typed, and
// the server answers which field is wrong.
function parseTyped(value, pattern, withTime) {
  const order = (pattern.match(/[dMy]+/g) || []).map((t) => t[0]);
  const m = value.trim().match(/^(\d{1,4})\D(\d{1,2})\D(\d{1,4})(?:[ T,]+(\d{1,2})[:h.](\d{2})\s*([AaPp][Mm])?)?$/);
  if (!m || order.length !== 3 || (withTime && m[4] === undefined)) return null;
  const part = {};
  order.forEach((k, i) => { part[k] = Number(m[i + 1]); });
  let hour = m[4] === undefined ? 0 : Number(m[4]);
  const minute = m[5] === undefined ? 0 : Number(m[5]);
  if (m[6]) hour = (hour % 12) + (m[6].toLowerCase() === "pm" ? 12 : 0);
  if (part.y < 1000 || part.M < 1 || part.M > 12 || part.d < 1 || hour > 23 || minute > 59) return null;
  const at = new Date(part.y, part.M - 1, part.d, hour, minute);
  if (at.getDate() !== part.d) return null;  // 31/02 and the like
  return at;
}

function formBody(form) {
  const body = {};
  let path = form.dataset.url;
  for (const el of form.elements) {
    if (!el.name || el.value === "") continue;
    let value = el.type === "checkbox" ? el.checked : el.value;
    if (el.dataset.path) { path = path.replace(`{${el.dataset.path}}`, encodeURIComponent(value)); continue; }
    if (el.type === "number" || el.dataset.type === "int") value = Number(value);
    if (el.dataset.type === "local-time") {
      const at = parseTyped(value, el.dataset.pattern || "dd/MM/yyyy", true);
      if (at) value = at.toISOString();
    }
    if (el.dataset.type === "date") {
      const at = parseTyped(value, el.dataset.pattern || "dd/MM/yyyy", false);
      if (at) value = `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, "0")}-${String(at.getDate()).padStart(2, "0")}`;
    }
    const names = el.name.split("|");
    const values = names.length > 1 ? String(value).split("|") : [value];
    names.forEach((name, i) => {
      const keys = name.split(".");
      let target = body;
      keys.slice(0, -1).forEach((k) => { target = target[k] = target[k] || {}; });
      target[keys[keys.length - 1]] = values[i];
    });
  }
  return { path, body };
}

document.addEventListener("submit", async (ev) => {
  const form = ev.target.closest(".api-form");
  if (!form) return;
  ev.preventDefault();
  const error = form.querySelector(".error");
  if (error) error.textContent = "";
  // destructive actions say what will happen and wait for a yes
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const { path, body } = formBody(form);
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const data = await api(form.dataset.method || "POST", path, body);
    if (form.dataset.then === "reload") { location.reload(); return; }
    if (form.dataset.then === "redirect") { location.assign(form.dataset.redirect); return; }
    if (form.dataset.then === "share-link") { showShareLink(form, data); return; }
    if (form.dataset.then === "patient-app-link") { showPatientAppLink(data); return; }
    showResult(form, data);
    if (form.dataset.keep === undefined) form.reset();
  } catch (err) {
    if (error) error.textContent = err.message;
  } finally {
    if (button) button.disabled = false;
  }
});

// Dashboard: reload the rows when the server says a patient's alerts or data changed.
async function refreshQuestions() {
  const section = document.getElementById("questions");
  if (!section || !section.dataset.url) return;
  const res = await fetch(section.dataset.url, { credentials: "same-origin" });
  if (res.ok) document.getElementById("question-rows").innerHTML = await res.text();
}

function followDashboard() {
  const table = document.getElementById("dashboard");
  if (!table) return;
  const state = document.getElementById("live-state");
  let pending = null;
  const refresh = async (flash) => {
    const res = await fetch(table.dataset.rowsUrl, { credentials: "same-origin" });
    if (!res.ok) return;
    document.getElementById("dashboard-rows").innerHTML = await res.text();
    for (const id of flash) {
      document.querySelector(`tr[data-patient-id="${id}"]`)?.classList.add("changed");
    }
  };
  const source = new EventSource(table.dataset.liveUrl);
  source.addEventListener("open", () => { state.textContent = state.dataset.on || "live"; state.className = "live on"; });
  source.addEventListener("error", () => { state.className = "live off"; });
  source.addEventListener("alert", (ev) => refresh(JSON.parse(ev.data).patients));
  const banner = document.getElementById("system-alerts");
  const refreshBanner = async () => {
    const res = await fetch(banner.dataset.url, { credentials: "same-origin" });
    if (res.ok) banner.innerHTML = await res.text();
  };
  source.addEventListener("system", refreshBanner);
  source.addEventListener("resync", () => { refresh([]); refreshBanner(); refreshQuestions(); });
  // a home physician asked (or a colleague answered): the worklist is read again
  source.addEventListener("question", () => refreshQuestions());
  source.addEventListener("vitals", () => {
    // new readings arrive often: fold them into one refresh every few seconds
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh([]); }, 5000);
  });
}

function b64urlToBytes(s) {
  const pad = "=".repeat((4 - (s.length % 4)) % 4);
  const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// Web Push: register the service worker, and subscribe when the clinician asks.
async function setUpPush() {
  const button = document.getElementById("push-enable");
  const state = document.getElementById("push-state");
  if (!button || !("serviceWorker" in navigator)) return;
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  window.postopServiceWorker = registration;
  navigator.serviceWorker.addEventListener("message", (ev) => {
    if (ev.data && ev.data.type === "push") {
      const note = document.createElement("div");
      note.className = "push-toast";
      note.textContent = ev.data.title + " — " + ev.data.body;
      document.body.prepend(note);
    }
  });
  if (!("PushManager" in window)) return;
  const { public_key: key } = await api("GET", "/api/v1/push/public-key");
  if (!key) return;
  const existing = await registration.pushManager.getSubscription();
  if (existing) { state.textContent = button.dataset.done || "🔔"; return; }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      if ((await Notification.requestPermission()) !== "granted") throw new Error(words().push_refused || "permission refused");
      const sub = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: b64urlToBytes(key),
      });
      await api("POST", "/api/v1/push/subscriptions", sub.toJSON());
      button.hidden = true;
      state.textContent = "🔔";
    } catch (err) {
      state.textContent = err.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  // the server checks every form and answers in the reader's language
  document.querySelectorAll("form.api-form").forEach((f) => { f.noValidate = true; });
  copyButtons(document);
  followDashboard();
  setUpPush().catch((err) => console.warn("push unavailable:", err.message));
});

// a new enrollment link of the patient app: its QR code on the printable sheet (in the
// patient's language), the link with a copy button, shown once
function showPatientAppLink(data) {
  const panel = document.getElementById("patient-app-result");
  if (!panel) return;
  panel.hidden = false;
  const full = /^https?:\/\//.test(data.url) ? data.url : `${location.origin}${data.url}`;
  panel.querySelector('[data-field="url"]').textContent = full;
  panel.querySelector('[data-field="qr"]').src =
    "data:image/svg+xml;charset=utf-8," + encodeURIComponent(data.qr_svg);
  const fmt = new Intl.DateTimeFormat(document.body.dataset.locale || document.documentElement.lang,
    { dateStyle: "medium", timeStyle: "short", timeZone: document.body.dataset.viewerZone });
  panel.querySelector('[data-field="expires"]').textContent = fmt.format(new Date(data.expires_at));
  copyButtons(panel);
  const print = panel.querySelector("button.print-sheet");
  if (print) print.onclick = () => {
    document.body.classList.add("print-sheet");
    window.print();
    document.body.classList.remove("print-sheet");
  };
}

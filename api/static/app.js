// postop: the little JavaScript the pages need. Forms marked .api-form are sent as JSON
// to the REST API with the session's CSRF token; the dashboard follows Server-Sent
// Events; the header button subscribes this browser to Web Push.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : `HTTP ${res.status}`);
  }
  return data;
}

function formBody(form) {
  const body = {};
  let path = form.dataset.url;
  for (const el of form.elements) {
    if (!el.name || el.value === "") continue;
    if (el.type === "checkbox") { body[el.name] = el.checked; continue; }
    let value = el.value;
    if (el.dataset.path) { path = path.replace(`{${el.dataset.path}}`, encodeURIComponent(value)); continue; }
    if (el.type === "number" || el.dataset.type === "int") value = Number(value);
    if (el.dataset.type === "local-time") value = new Date(value).toISOString();
    const names = el.name.split("|");
    const values = names.length > 1 ? value.split("|") : [value];
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
  const result = form.querySelector(".result");
  if (error) error.textContent = "";
  const { path, body } = formBody(form);
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const data = await api(form.dataset.method || "POST", path, body);
    if (form.dataset.then === "reload") { location.reload(); return; }
    if (result && data && data.url) {
      // a new shared link: the full address and the code, once
      const full = /^https?:\/\//.test(data.url) ? data.url : `${location.origin}${data.url}`;
      result.textContent = full + (data.code ? `\n${data.code}` : "");
    } else if (result) result.textContent = JSON.stringify(data, null, 2);
    form.reset();
  } catch (err) {
    if (error) error.textContent = err.message;
  } finally {
    if (button) button.disabled = false;
  }
});

// Dashboard: reload the rows when the server says a patient's alerts or data changed.
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
  source.addEventListener("resync", () => refresh([]));
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
      if ((await Notification.requestPermission()) !== "granted") throw new Error("permission refused");
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
  followDashboard();
  setUpPush().catch((err) => console.warn("push unavailable:", err.message));
});

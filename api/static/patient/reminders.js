// Turning reminders on from the patient app: the phone subscribes with the app's service
// worker (registered by the app for /p/) and the subscription is sent again on each
// visit, so it follows this phone's current connection to the follow-up.
"use strict";

(async () => {
  const panel = document.getElementById("reminders");
  if (!panel) return;
  const state = panel.querySelector(".state");
  const button = panel.querySelector("button");
  const unavailable = () => { state.textContent = panel.dataset.unavailable; };
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) { unavailable(); return; }
  const registration = await navigator.serviceWorker.getRegistration("/p/");
  if (!registration) { unavailable(); return; }
  const keyRes = await fetch("/p/api/push/public-key", { credentials: "same-origin" });
  const key = keyRes.ok ? (await keyRes.json()).public_key : null;
  if (!key) { unavailable(); return; }
  const bytes = (s) => {
    const raw = atob((s + "=".repeat((4 - (s.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const send = async (sub) => {
    const res = await fetch("/p/api/push/subscriptions", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(sub.toJSON()),
    });
    const answer = await res.json().catch(() => ({}));
    state.textContent = answer.detail || "";
    return res.ok;
  };
  const existing = await registration.pushManager.getSubscription();
  if (existing) { await send(existing); return; }
  button.hidden = false;
  button.addEventListener("click", async () => {
    if ((await Notification.requestPermission()) !== "granted") {
      state.textContent = panel.dataset.refused;
      return;
    }
    const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) });
    if (await send(sub)) button.hidden = true;
  });
})();

// postop service worker: shows alert notifications (no clinical detail, by design) and
// opens the alert's page, behind login, when one is clicked. A push carries codes
// (reason, priority, minutes) and an English fallback; the words, in the clinician's
// language, come from /api/v1/push/texts with the session, kept in Cache Storage for a
// push that arrives after the session ended.
"use strict";

const TEXTS = "/api/v1/push/texts";
const TEXT_CACHE = "postop-push-texts";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (ev) => ev.waitUntil(self.clients.claim()));

async function pushTexts() {
  try {
    const res = await fetch(TEXTS, { credentials: "same-origin" });
    if (res.ok) {
      const texts = await res.json();
      const cache = await caches.open(TEXT_CACHE);
      await cache.put(TEXTS, new Response(JSON.stringify(texts)));
      return texts;
    }
  } catch (_) { /* offline or signed out: the words kept last time */ }
  try {
    const kept = await (await caches.open(TEXT_CACHE)).match(TEXTS);
    if (kept) return await kept.json();
  } catch (_) { /* no cache: the English fallback */ }
  return null;
}

async function worded(msg) {
  if (!msg.reason) return msg;
  const texts = await pushTexts();
  if (!texts) return msg;
  const title = texts.titles && texts.titles[msg.reason];
  const bodyKey = msg.reason === "no_data" ? "no_data" : msg.priority;
  const body = texts.bodies && texts.bodies[bodyKey];
  return {
    ...msg,
    title: title || msg.title,
    body: body ? body.replace("{minutes}", String(msg.minutes || "")) : msg.body,
  };
}

self.addEventListener("push", (ev) => {
  let msg = { title: "postop", body: "", url: "/", tag: "postop" };
  try { msg = { ...msg, ...ev.data.json() }; } catch (_) { /* keep the default text */ }
  ev.waitUntil((async () => {
    msg = await worded(msg);
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const w of windows) w.postMessage({ type: "push", ...msg });
    await self.registration.showNotification(msg.title, {
      body: msg.body, tag: msg.tag, data: { url: msg.url }, requireInteraction: true,
    });
  })());
});

self.addEventListener("notificationclick", (ev) => {
  ev.notification.close();
  ev.waitUntil(self.clients.openWindow(ev.notification.data?.url || "/"));
});

// postop service worker: shows alert notifications (no clinical detail, by design) and
// opens the alert's page, behind login, when one is clicked.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (ev) => ev.waitUntil(self.clients.claim()));

self.addEventListener("push", (ev) => {
  let msg = { title: "postop", body: "", url: "/", tag: "postop" };
  try { msg = { ...msg, ...ev.data.json() }; } catch (_) { /* keep the default text */ }
  ev.waitUntil((async () => {
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

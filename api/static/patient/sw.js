// postop patient app: the service worker of /p/ (the team's pages have their own, /sw.js).
// It keeps the app's shell and one offline screen (the team's phone and the emergency
// number, nothing clinical); the screens themselves are never cached: they hold health
// data and are answered no-store. Web Push handlers for the patient's reminders go here.
"use strict";

const CACHE = "postop-patient-v1";
const SHELL = ["/static/patient/app.css", "/static/patient/app.js", "/p/icon-192.png"];
const OFFLINE = "/p/offline";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL);
    // the offline screen is the patient's own (their team's phone, their country's number)
    try { await cache.add(new Request(OFFLINE, { credentials: "same-origin" })); } catch { /* not enrolled */ }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

// the offline screen follows changes of the team's phone: refreshed at most hourly
let offlineFetchedAt = 0;
async function refreshOffline() {
  if (Date.now() - offlineFetchedAt < 3600_000) return;
  offlineFetchedAt = Date.now();
  try {
    const response = await fetch(OFFLINE, { credentials: "same-origin" });
    if (response.ok) await (await caches.open(CACHE)).put(OFFLINE, response);
  } catch { /* offline: keep the last one */ }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // always the network (fresh, never stored); the offline screen when it fails
    event.respondWith(fetch(request).catch(async () =>
      (await caches.match(OFFLINE)) || Response.error()));
    event.waitUntil(refreshOffline());
    return;
  }
  if (SHELL.includes(url.pathname)) {
    // the shell: the network first (a new version at once), the cache without one
    event.respondWith(fetch(request).then(async (response) => {
      if (response.ok) (await caches.open(CACHE)).put(request, response.clone());
      return response;
    }).catch(async () => (await caches.match(request)) || Response.error()));
  }
});

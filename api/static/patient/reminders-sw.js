// Reminders in the patient app's service worker (imported by it with importScripts): the
// push names the reminder only; its words, in the patient's language, come from the app
// (kept in Cache Storage for a push that arrives while the app cannot answer). One tag
// per reminder and day: a reminder delivered twice shows once. A request to measure again
// (kind "remeasure", alerts/remeasure.py) names its request kind and is worded the same
// way, one tag per request, as is a request to charge a device (kind "battery",
// alerts/battery_requests.py) or to take a full set of measurements (kind "full_set",
// alerts/full_set_requests.py).
"use strict";

const REMINDER_TEXTS = "/p/api/reminders/texts";
const REMINDER_CACHE = "postop-reminder-texts";

async function reminderWords(reminder) {
  let texts = null;
  try {
    const res = await fetch(REMINDER_TEXTS, { credentials: "same-origin" });
    if (res.ok) {
      texts = await res.json();
      const cache = await caches.open(REMINDER_CACHE);
      await cache.put(REMINDER_TEXTS, new Response(JSON.stringify(texts)));
    }
  } catch (_) { /* offline: the words kept last time */ }
  if (!texts) {
    const kept = await (await caches.open(REMINDER_CACHE)).match(REMINDER_TEXTS);
    if (kept) texts = await kept.json();
  }
  return (texts && (texts[reminder] || texts.default)) || { title: "postop", body: "" };
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (_) { return; }
  const key = data.kind === "reminder" ? data.reminder
    : ["remeasure", "battery", "full_set"].includes(data.kind) ? data.request : null;
  if (!key) return;
  event.waitUntil(reminderWords(key).then((words) =>
    self.registration.showNotification(words.title, {
      body: words.body, tag: data.tag, renotify: false, data: { url: data.url || "/p/" },
    })));
});

self.addEventListener("notificationclick", (event) => {
  const url = event.notification.data && event.notification.data.url;
  if (!url) return;
  event.notification.close();
  event.waitUntil(self.clients.openWindow(url));
});

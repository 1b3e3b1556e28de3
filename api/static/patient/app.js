// postop patient app: registers the app's service worker (scope /p/) and sends the
// "I have read this" taps. Everything else is server-rendered in the patient's language.
"use strict";

if ("serviceWorker" in navigator && document.querySelector(".help")) {
  // only on the patient's own screens (the worker keeps their offline screen)
  navigator.serviceWorker.register("/p/sw.js", { scope: "/p/" }).catch(() => {});
}

async function postJson(url) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Accept": "application/json" },
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new Error((data && data.detail) || `HTTP ${res.status}`);
  return data;
}

document.querySelectorAll("button.mark-read").forEach((button) => {
  button.addEventListener("click", async () => {
    const status = button.parentElement.querySelector(".error");
    button.disabled = true;
    try {
      const data = await postJson(button.dataset.url);
      const done = document.createElement("p");
      done.className = "read-at ok";
      done.textContent = button.dataset.done.replace("{time}", data.shown);
      button.closest("article").classList.remove("unread");
      button.parentElement.replaceWith(done);
    } catch (error) {
      button.disabled = false;
      if (status) status.textContent = error.message;
    }
  });
});

// The patient's wound photos on the team's patient page: listed through the audited API,
// each image fetched with the clinician's session (no credential in any URL), and a new
// photo shown within seconds without reload when the live stream says the patient sent one.
"use strict";

(() => {
  const section = document.getElementById("wound-photos");
  if (!section) return;
  const list = section.querySelector("ol.photos");
  const state = section.querySelector(".photos-state");
  const patientId = Number(section.dataset.patientId);
  const zone = document.body.dataset.viewerZone || undefined;
  const locale = document.body.dataset.locale || document.documentElement.lang || "fr";
  const fmt = new Intl.DateTimeFormat(locale, { timeZone: zone, dateStyle: "medium", timeStyle: "short" });
  const local = new Intl.DateTimeFormat(locale, { timeZone: section.dataset.patientZone, timeStyle: "short" });
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const headers = { "Accept-Language": document.documentElement.lang || "fr" };

  function item(photo) {
    const li = document.createElement("li");
    li.dataset.photoId = String(photo.photo_id);
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = photo.image_url;
    img.alt = section.dataset.alt;
    img.loading = "lazy";
    img.width = Math.min(320, photo.width_px);
    img.height = Math.round(img.width * photo.height_px / photo.width_px);
    const caption = document.createElement("figcaption");
    const taken = new Date(photo.taken_at);
    caption.textContent = `${fmt.format(taken)} (${section.dataset.patientWord} ${local.format(taken)})`;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = photo.shared_with_physician;
    box.addEventListener("change", async () => {
      box.disabled = true;
      const res = await fetch(`${section.dataset.listUrl}/${photo.photo_id}/sharing`, {
        method: "PUT", credentials: "same-origin",
        headers: { ...headers, "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ shared_with_physician: box.checked }),
      });
      if (!res.ok) { box.checked = !box.checked; state.textContent = section.dataset.failed; }
      box.disabled = false;
    });
    label.append(box, " ", section.dataset.share);
    figure.append(img, caption, label);
    li.append(figure);
    return li;
  }

  async function load() {
    const res = await fetch(section.dataset.listUrl, { credentials: "same-origin", headers });
    if (!res.ok) { state.textContent = section.dataset.failed; return; }
    const photos = await res.json();
    const shown = new Set([...list.children].map((li) => li.dataset.photoId));
    photos.slice().reverse().forEach((photo) => {
      if (!shown.has(String(photo.photo_id))) list.prepend(item(photo));
    });
    state.textContent = photos.length ? "" : section.dataset.empty;
    section.dataset.count = String(photos.length);
  }

  load();
  const source = new EventSource(section.dataset.liveUrl);
  source.addEventListener("reported", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.what === "wound_photo" && data.patients.includes(patientId)) load();
  });
  source.addEventListener("resync", () => load());
})();

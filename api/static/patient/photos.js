// The wound photo screen: the phone's camera (the file input's capture), a preview to
// check before sending, then the file sent as it is; the server checks and re-encodes it
// and answers one sentence in the patient's language, whether it kept it or not.
"use strict";

(() => {
  const form = document.getElementById("photo-form");
  if (!form) return;
  const input = document.getElementById("photo-input");
  const preview = document.getElementById("photo-preview");
  const send = document.getElementById("photo-send");
  const status = document.getElementById("photo-status");
  const error = document.getElementById("photo-error");
  const locale = document.body.dataset.locale || document.documentElement.lang;
  const fmt = new Intl.DateTimeFormat(locale, { timeZone: form.dataset.zone, dateStyle: "medium", timeStyle: "short" });
  let shown = null;

  input.addEventListener("change", () => {
    error.textContent = "";
    status.textContent = "";
    if (shown) URL.revokeObjectURL(shown);
    const file = input.files && input.files[0];
    if (!file) { preview.hidden = true; send.disabled = true; return; }
    shown = URL.createObjectURL(file);
    preview.src = shown;
    preview.hidden = false;
    send.disabled = false;
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = input.files && input.files[0];
    if (!file) return;
    send.disabled = true;
    error.textContent = "";
    status.textContent = form.dataset.sending;
    try {
      const res = await fetch(form.dataset.url, {
        method: "POST", credentials: "same-origin", body: file,
        headers: { "Content-Type": file.type || "application/octet-stream" },
      });
      const answer = await res.json().catch(() => ({}));
      if (!res.ok) {
        status.textContent = "";
        error.textContent = answer.detail || form.dataset.failed;
        send.disabled = false;
        return;
      }
      status.textContent = answer.detail;
      const item = document.createElement("li");
      item.textContent = fmt.format(new Date());
      document.getElementById("sent-photos").prepend(item);
      document.getElementById("none-sent").hidden = true;
      form.reset();
      preview.hidden = true;
    } catch {
      status.textContent = "";
      error.textContent = form.dataset.failed;
      send.disabled = false;
    }
  });
})();

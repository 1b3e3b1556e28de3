// Shared pages: times into the viewer's own time zone (the server wrote them in the
// patient's zone, which stays beside them in brackets), and the print button.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // the page's language, in the region the server chose for it (one format on the page)
  const lang = document.body.dataset.locale || document.documentElement.lang;
  const fmt = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  document.querySelectorAll("time.viewer").forEach((el) => {
    el.textContent = fmt.format(new Date(el.getAttribute("datetime")));
  });
  document.body.dataset.viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.getElementById("print-now")?.addEventListener("click", () => window.print());
});

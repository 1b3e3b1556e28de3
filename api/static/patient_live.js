// Patient page, live: when the events stream says the patient answered a questionnaire,
// the response joins the timeline (fetched as a fragment through the audited page route)
// and the charts redraw with the pain scores, without reloading the page.
"use strict";

(() => {
  const timeline = document.getElementById("timeline");
  const patient = document.getElementById("patient");
  if (!timeline || !patient || !window.EventSource) return;
  const me = Number(patient.dataset.patientId);
  const charted = ["pain_score", "pain_movement_score"];
  const source = new EventSource(timeline.dataset.liveUrl);
  source.addEventListener("vitals", async (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (!data.questionnaire || !(data.patients || []).includes(me)) return;
    if (document.getElementById(`response-${data.questionnaire}`)) return;
    const url = timeline.dataset.fragmentUrl + encodeURIComponent(data.questionnaire);
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) return;
    const holder = document.createElement("template");
    holder.innerHTML = (await res.text()).trim();
    const item = holder.content.firstElementChild;
    if (!item || document.getElementById(item.id)) return;
    timeline.querySelector("li.muted:only-child")?.remove();  // "no alert and no note yet"
    timeline.prepend(item);
    item.classList.add("changed");
    const chart = document.getElementById("chart");
    if (chart) {
      const shown = chart.dataset.metrics.split(",").filter(Boolean);
      chart.dataset.metrics = [...shown, ...charted.filter((m) => !shown.includes(m))].join(",");
    }
    document.dispatchEvent(new CustomEvent("postop:data-changed"));
  });
})();

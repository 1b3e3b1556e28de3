// Trend charts (Plotly, from the plotly package on PyPI): one panel per metric on a shared
// time axis; zooming fetches finer buckets for the visible range.
"use strict";

(() => {
  const chart = document.getElementById("chart");
  const patient = document.getElementById("patient");
  if (!chart || !patient || !window.Plotly) return;
  // the clinician's zone comes from their account; a shared page uses the browser's
  const viewerZone = document.body.dataset.viewerZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const patientZone = patient.dataset.patientZone;
  const metrics = chart.dataset.metrics.split(",").filter(Boolean);
  const labels = JSON.parse(chart.dataset.labels);
  const base = chart.dataset.trendsUrl || `/api/v1/patients/${patient.dataset.patientId}/trends`;
  // 'sv-SE' formats as YYYY-MM-DD HH:MM:SS, which Plotly reads as a wall-clock time
  const inZone = (zone) => new Intl.DateTimeFormat("sv-SE", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const viewerFmt = inZone(viewerZone);
  const patientFmt = inZone(patientZone);
  const toUtc = (wall) => {
    // a wall-clock time in the viewer's zone back to UTC (zoom ranges)
    const guess = new Date(wall.replace(" ", "T") + "Z");
    const shown = new Date(viewerFmt.format(guess).replace(" ", "T") + "Z");
    return new Date(guess.getTime() - (shown.getTime() - guess.getTime()));
  };
  let drawn = false;

  async function load(query) {
    const params = new URLSearchParams(query);
    metrics.forEach((m) => params.append("metric", m));
    const res = await fetch(`${base}?${params}`, { credentials: "same-origin" });
    if (!res.ok) { chart.textContent = `HTTP ${res.status}`; return; }
    const data = await res.json();
    const traces = [];
    const layout = {
      height: 170 * metrics.length, margin: { l: 60, r: 20, t: 10, b: 40 }, showlegend: false,
      grid: { rows: metrics.length, columns: 1, pattern: "coupled" }, hovermode: "x unified",
    };
    data.series.forEach((s, i) => {
      const axis = i === 0 ? "" : String(i + 1);
      const x = s.points.map((p) => viewerFmt.format(new Date(p.t)));
      const local = s.points.map((p) => patientFmt.format(new Date(p.t)));
      const common = { x, xaxis: "x", yaxis: `y${axis}`, type: "scatter", mode: "lines", hoverinfo: "skip" };
      traces.push({ ...common, y: s.points.map((p) => p.min), line: { width: 0 } });
      traces.push({ ...common, y: s.points.map((p) => p.max), fill: "tonexty", line: { width: 0 },
                    fillcolor: "rgba(31,119,180,0.15)" });
      traces.push({ x, xaxis: "x", yaxis: `y${axis}`, type: "scatter", mode: "lines+markers",
                    marker: { size: 3 }, y: s.points.map((p) => p.avg), customdata: local,
                    name: labels[s.metric] || s.metric,
                    hovertemplate: `%{y:.1f} ${s.unit}<br>${patientZone}: %{customdata}<extra>${labels[s.metric] || s.metric}</extra>` });
      layout[`yaxis${axis}`] = { title: { text: `${labels[s.metric] || s.metric} (${s.unit})`, font: { size: 11 } } };
    });
    layout.xaxis = { type: "date", title: { text: viewerZone } };
    if (drawn) await Plotly.react(chart, traces, layout, { responsive: true });
    else await Plotly.newPlot(chart, traces, layout, { responsive: true, displaylogo: false });
    chart.dataset.bucketS = data.bucket_s;
    chart.dataset.points = data.series.reduce((n, s) => n + s.points.length, 0);
    if (!drawn) {
      chart.on("plotly_relayout", (ev) => {
        const a = ev["xaxis.range[0]"], b = ev["xaxis.range[1]"];
        if (a && b) load({ start: toUtc(a).toISOString(), end: toUtc(b).toISOString() });
      });
      drawn = true;
    }
    chart.classList.add("ready");
  }

  document.querySelectorAll("button.range").forEach((b) =>
    b.addEventListener("click", () => load({ range: b.dataset.range })));
  load({ range: "24h" });
})();
